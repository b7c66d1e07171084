"""The pricing catalog: each deployment's price history, the price in force at a moment, and
the refresh that reads published prices from a catalog file or URL.

Every change of a deployment's prices, by any path (console, API, Django admin,
configuration file, catalog refresh), records a PriceVersion: the providers' deployment
services call `price_history_record` in their transaction. A version may start in the
future; the data plane's snapshot carries the upcoming ones (`price_book`), so a request
that starts after a version's `effective_from` is costed at it (`prices_at`) without waiting
for a rebuild, and `price_versions_promote` later copies it into the deployment's current
price fields. The format of a catalog and the refresh rules are in docs/pricing-catalog.md.
"""

from __future__ import annotations

import json
import logging
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.audit.context import AuditActor, acting_as, current_actor
from apps.audit.selectors import AuditEventFilters, audit_event_list
from apps.audit.services import audit_record
from apps.costs.models import PriceVersion
from apps.costs.pricing import Prices
from apps.providers.models import ModelDeployment, Provider
from atp_site.lib import config_version
from atp_site.lib.errors import ATPError

logger = logging.getLogger(__name__)

PRICE_FIELDS = (
    "input_price",
    "output_price",
    "cached_input_price",
    "cache_write_price",
    "reasoning_price",
)
# The short names a catalog, the configuration file and Prices use, to the field names.
PRICE_KEYS = {
    "input": "input_price",
    "output": "output_price",
    "cached_input": "cached_input_price",
    "cache_write": "cache_write_price",
    "reasoning": "reasoning_price",
}
BUNDLED_CATALOG = Path(__file__).resolve().parent / "data" / "price_catalog.json"
CATALOG_VERSION = 1
# A catalog fetched over HTTP: the most bytes read and the seconds waited.
FETCH_MAX_BYTES = 5 << 20
FETCH_TIMEOUT_SECONDS = 10.0
# A version asked to start this little in the past starts now (a client's clock, a round
# trip); further back is refused: requests already served keep the cost they were given.
CLOCK_SKEW = timedelta(seconds=60)
# Dated or pinned model names match the catalog entry of their family name:
# gpt-4o-2024-08-06, claude-sonnet-4-5-20250929, claude-3-5-haiku-latest, gemini-2.0-flash-001.
_VERSION_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3}|latest)$")

PriceValues = dict[str, Decimal | None]  # field name -> price, every one of PRICE_FIELDS


# --- prices as values ------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def field_prices(obj: Any) -> PriceValues:
    """The five prices of a deployment or a price version, by field name."""
    return {name: _decimal(getattr(obj, name)) for name in PRICE_FIELDS}


def as_prices(values: Mapping[str, Decimal | None]) -> Prices:
    return Prices(
        input=values["input_price"] or Decimal(0),
        output=values["output_price"] or Decimal(0),
        cached_input=values.get("cached_input_price"),
        cache_write=values.get("cache_write_price"),
        reasoning=values.get("reasoning_price"),
    )


def prices_text(values: Mapping[str, Decimal | None]) -> dict[str, str | None]:
    """Prices as JSON-safe text, by short name (audit events, reports)."""
    out: dict[str, str | None] = {}
    for key, name in PRICE_KEYS.items():
        value = values.get(name)
        out[key] = None if value is None else format(value.normalize(), "f")
    return out


def _same(a: Mapping[str, Decimal | None], b: Mapping[str, Decimal | None]) -> bool:
    return all(a.get(name) == b.get(name) for name in PRICE_FIELDS)


def clean_prices(prices: Mapping[str, Any]) -> PriceValues:
    """All five prices from `prices` (field names): input and output required, the others
    None when left out (billed at the plain input or output rate). Raises ValidationError."""
    unknown = set(prices) - set(PRICE_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "Not a price."})
    values: PriceValues = {}
    for name in PRICE_FIELDS:
        raw = prices.get(name)
        if raw is None:
            if name in ("input_price", "output_price"):
                raise ValidationError({name: "This price is required."})
            values[name] = None
            continue
        if isinstance(raw, bool):
            raise ValidationError({name: "Must be a number."})
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            raise ValidationError({name: "Must be a number."}) from None
        if not value.is_finite() or value < 0:
            raise ValidationError({name: "Must be a number >= 0."})
        values[name] = value
    return values


# --- who is writing: the source recorded with a version ----------------------------------------


@dataclass(frozen=True, slots=True)
class _Writer:
    source: str
    note: str = ""
    # The version is recorded already (a schedule, a promotion): the providers' hook skips it.
    recorded: bool = False


_writer: ContextVar[_Writer | None] = ContextVar("atp_price_writer", default=None)


@contextmanager
def _writing(writer: _Writer) -> Iterator[None]:
    token = _writer.set(writer)
    try:
        yield
    finally:
        _writer.reset(token)


def _source_and_note() -> tuple[str, str]:
    """The source of a change made through the providers' services, from who is acting."""
    writer = _writer.get()
    if writer is not None:
        return writer.source, writer.note
    actor = current_actor()
    source = PriceVersion.Source.CONFIG if actor.source == "config" else PriceVersion.Source.MANUAL
    note = f"by {actor.actor} ({actor.source})" if actor.actor not in ("", "system") else ""
    return source, note[:500]


# --- history: writes ---------------------------------------------------------------------------


def _record(
    deployment: ModelDeployment, values: PriceValues, when: datetime, source: str, note: str
) -> PriceVersion:
    """Store the version of `deployment` starting at `when`; one already starting then is
    replaced (two changes in the same instant: the later one wins)."""
    version = PriceVersion.objects.filter(deployment=deployment, effective_from=when).first()
    if version is None:
        version = PriceVersion(deployment=deployment, effective_from=when)
    for name, value in values.items():
        setattr(version, name, value)
    version.source = source
    version.note = note[:500]
    version.full_clean()
    version.save()
    return version


def _ensure_baseline(deployment: ModelDeployment, values: PriceValues) -> None:
    """A deployment made before prices had a history gets its first version (the prices it
    had) from its creation, so `price_at` answers for any time since."""
    if deployment.pk is None or PriceVersion.objects.filter(deployment=deployment).exists():
        return
    _record(
        deployment,
        values,
        deployment.created_at,
        PriceVersion.Source.MANUAL,
        "Prices held when the price history began.",
    )


def price_history_record(
    *, deployment: ModelDeployment, before: Mapping[str, Any] | None
) -> PriceVersion | None:
    """Record a deployment's prices after the providers' services wrote them.

    `before` is the stored row's audit snapshot before the write (None: just created, and
    the version starts at its creation). Nothing is recorded when no price changed. Called
    inside the write's transaction, so the version commits or rolls back with it.
    """
    writer = _writer.get()
    if writer is not None and writer.recorded:
        return None
    after = field_prices(deployment)
    source, note = _source_and_note()
    if before is None:
        return _record(deployment, after, deployment.created_at, source, note)
    previous = {name: _decimal(before.get(name)) for name in PRICE_FIELDS}
    if _same(previous, after):
        return None
    _ensure_baseline(deployment, previous)
    return _record(deployment, after, timezone.now(), source, note)


def _set_current(deployment: ModelDeployment, values: PriceValues, writer: _Writer) -> None:
    from apps.providers.services import deployment_set_prices

    with _writing(writer):
        deployment_set_prices(deployment=deployment, **values)


@transaction.atomic
def price_version_schedule(
    *,
    deployment: ModelDeployment,
    prices: Mapping[str, Any],
    effective_from: datetime | None = None,
    source: str = PriceVersion.Source.MANUAL,
    note: str = "",
) -> PriceVersion:
    """Record `prices` (field names; see `clean_prices`) for `deployment` from
    `effective_from` on, and return the version.

    Left out (or within a minute of now), the prices apply at once: a version from now,
    and the deployment's current prices, audited as its update. A future start schedules
    the version (audited `price.scheduled`); the data plane costs requests that start after
    it at these prices. A start further in the past is refused: requests already served
    keep their cost. A version of the same prices is still recorded: it confirms them
    (see the stale warning of `price_catalog_refresh`).
    """
    values = clean_prices(prices)
    now = timezone.now()
    if effective_from is not None and effective_from < now - CLOCK_SKEW:
        raise ValidationError(
            {
                "effective_from": "Must not be in the past: requests already served keep "
                "their cost. Leave it out to change the prices now."
            }
        )
    _ensure_baseline(deployment, field_prices(deployment))
    if effective_from is None or effective_from <= now:
        version = _record(deployment, values, now, source, note)
        _set_current(deployment, values, _Writer(source, note, recorded=True))
        return version
    version = _record(deployment, values, effective_from, source, note)
    audit_record(
        event_type="price.scheduled",
        action="schedule",
        resource_type="deployment",
        resource_id=str(deployment.pk),
        data={
            "version": str(version.pk),
            "effective_from": effective_from.isoformat(),
            "prices": prices_text(values),
            "source": source,
        },
    )
    transaction.on_commit(config_version.bump)
    return version


@transaction.atomic
def price_version_cancel(*, version: PriceVersion) -> None:
    """Delete a version that has not started yet; history in force is never removed."""
    if version.effective_from <= timezone.now():
        raise ValidationError(
            {"effective_from": "This version is in force or past; the history is kept."}
        )
    data = {
        "version": str(version.pk),
        "effective_from": version.effective_from.isoformat(),
        "prices": prices_text(field_prices(version)),
    }
    deployment_id = version.deployment_id
    version.delete()
    audit_record(
        event_type="price.cancelled",
        action="cancel",
        resource_type="deployment",
        resource_id=str(deployment_id),
        data=data,
    )
    transaction.on_commit(config_version.bump)


def _in_force(now: datetime) -> QuerySet[PriceVersion]:
    """The version in force at `now` of every deployment that has one (one query)."""
    newest = (
        PriceVersion.objects.filter(deployment=OuterRef("deployment"), effective_from__lte=now)
        .order_by("-effective_from")
        .values("pk")[:1]
    )
    return PriceVersion.objects.filter(effective_from__lte=now, pk=Subquery(newest))


@transaction.atomic
def price_versions_promote(*, now: datetime | None = None) -> list[PriceVersion]:
    """Copy each version that has come into force into its deployment's current prices
    (audited as the deployment's update); returns the versions copied."""
    now = now or timezone.now()
    promoted = []
    for version in _in_force(now).select_related("deployment"):
        deployment = version.deployment
        values = field_prices(version)
        if _same(field_prices(deployment), values):
            continue
        _set_current(deployment, values, _Writer(version.source, version.note, recorded=True))
        promoted.append(version)
    return promoted


# --- history: reads ----------------------------------------------------------------------------


def price_version_list(*, deployment: Any = None) -> QuerySet[PriceVersion]:
    """Price versions, newest start first per deployment (all deployments, or one)."""
    versions = PriceVersion.objects.select_related("deployment__provider")
    if deployment is not None:
        versions = versions.filter(deployment=deployment)
    return versions.order_by("deployment__public_name", "deployment_id", "-effective_from")


def price_at(deployment_id: Any, when: datetime) -> Prices | None:
    """The prices of a deployment in force at `when`, for reports and checks: the latest
    version started at or before it (before its first version, that one; without any, the
    deployment's current prices). None when the deployment does not exist."""
    versions = PriceVersion.objects.filter(deployment_id=deployment_id)
    version = versions.filter(effective_from__lte=when).order_by("-effective_from").first()
    if version is None:
        version = versions.order_by("effective_from").first()
    if version is not None:
        return as_prices(field_prices(version))
    deployment = ModelDeployment.objects.filter(pk=deployment_id).first()
    return None if deployment is None else as_prices(field_prices(deployment))


# --- the data plane ----------------------------------------------------------------------------

Upcoming = tuple[tuple[float, Prices], ...]  # (start as epoch seconds, prices), in order


def price_book(now: float) -> dict[str, tuple[Prices | None, Upcoming]]:
    """For the snapshot (one query): by deployment id, the prices in force at `now` (None
    when the deployment has no version: its current fields are the price) and the versions
    still to come."""
    moment = datetime.fromtimestamp(now, UTC)
    newest = (
        PriceVersion.objects.filter(deployment=OuterRef("deployment"), effective_from__lte=moment)
        .order_by("-effective_from")
        .values("pk")[:1]
    )
    rows = PriceVersion.objects.filter(
        Q(effective_from__gt=moment) | Q(pk=Subquery(newest))
    ).order_by("deployment_id", "effective_from")
    current: dict[str, Prices | None] = {}
    upcoming: dict[str, list[tuple[float, Prices]]] = {}
    for version in rows:
        key = str(version.deployment_id)
        prices = as_prices(field_prices(version))
        if version.effective_from <= moment:
            current[key] = prices
        else:
            upcoming.setdefault(key, []).append((version.effective_from.timestamp(), prices))
    return {
        key: (current.get(key), tuple(upcoming.get(key, ())))
        for key in set(current) | set(upcoming)
    }


def prices_at(dep: Any, when: datetime) -> Prices:
    """The prices of a snapshot deployment (DeploymentInfo) in force at `when`: its current
    prices, or the latest of its upcoming versions that has started by then. No work on the
    common path, where nothing is upcoming."""
    upcoming = dep.upcoming_prices
    if not upcoming:
        return dep.prices
    moment = when.timestamp()
    prices = dep.prices
    for start, later in upcoming:
        if moment < start:
            break
        prices = later
    return prices


# --- the catalog -------------------------------------------------------------------------------


class CatalogError(ATPError):
    """The price catalog is not a valid catalog (docs/pricing-catalog.md)."""

    status = 502
    code = "price_catalog_invalid"


class CatalogUnavailable(CatalogError):
    """The price catalog could not be read (a transient failure: retried)."""

    code = "price_catalog_unavailable"
    retryable = True


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    upstream_model: str
    provider_kind: str  # "" matches every kind (with `provider`)
    provider: str  # a provider name; "" matches every provider of the kind
    prices: dict[str, Decimal | None]  # field name -> price, only those the entry gives
    effective_from: datetime | None
    note: str = ""

    def matches(self, provider: Provider, upstream_model: str) -> int:
        """0 when it does not match; higher when more specific (provider name, exact model)."""
        if self.provider and self.provider != provider.name:
            return 0
        if self.provider_kind and self.provider_kind != provider.kind:
            return 0
        if upstream_model == self.upstream_model:
            exact = 2
        elif upstream_model.startswith(self.upstream_model) and _VERSION_SUFFIX.fullmatch(
            upstream_model[len(self.upstream_model) :]
        ):
            exact = 1
        else:
            return 0
        return exact + (4 if self.provider else 0)


@dataclass(frozen=True, slots=True)
class Catalog:
    as_of: date
    entries: tuple[CatalogEntry, ...]
    source: str  # where it was read, without credentials or query

    def entry_for(self, deployment: ModelDeployment) -> CatalogEntry | None:
        best, score = None, 0
        for entry in self.entries:
            found = entry.matches(deployment.provider, deployment.upstream_model)
            if found > score:
                best, score = entry, found
        return best


def _source_label(source: str) -> str:
    if not source:
        return "bundled"
    if source.startswith(("http://", "https://")):
        parts = urllib.parse.urlsplit(source)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return f"{parts.scheme}://{host}{parts.path}"
    return Path(source).name


def _fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
            body = response.read(FETCH_MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise CatalogUnavailable(
            f"The price catalog at {_source_label(url)} answered HTTP {exc.code}."
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CatalogUnavailable(
            f"The price catalog at {_source_label(url)} could not be read: {reason}."
        ) from None
    if len(body) > FETCH_MAX_BYTES:
        raise CatalogError(f"The price catalog at {_source_label(url)} is larger than 5 MiB.")
    return body


def catalog_load(source: str | None = None) -> Catalog:
    """Read and check the catalog at `source` (default: ATP_PRICE_CATALOG; empty: the bundled
    one): a JSON file's path or an http(s) URL, fetched only when so configured."""
    source = settings.ATP_PRICE_CATALOG if source is None else source
    label = _source_label(source)
    if source.startswith(("http://", "https://")):
        raw = _fetch(source)
    else:
        path = Path(source) if source else BUNDLED_CATALOG
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CatalogUnavailable(
                f"The price catalog {label} could not be read: {exc.strerror}."
            ) from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CatalogError(f"The price catalog {label} is not valid JSON: {exc}.") from None
    return parse_catalog(data, source=label)


def _catalog_error(path: str, message: str) -> CatalogError:
    return CatalogError(f"Price catalog: {path}: {message}.")


def _entry(data: Any, path: str) -> CatalogEntry:
    if not isinstance(data, dict) or set(data) - {"match", "prices", "effective_from", "note"}:
        raise _catalog_error(path, "must be an object of match, prices, effective_from, note")
    match = data.get("match")
    if not isinstance(match, dict) or set(match) - {"provider_kind", "provider", "upstream_model"}:
        raise _catalog_error(
            f"{path}.match", "must be an object of provider_kind, provider, upstream_model"
        )
    texts = {}
    for key in ("provider_kind", "provider", "upstream_model"):
        value = match.get(key, "")
        if not isinstance(value, str):
            raise _catalog_error(f"{path}.match.{key}", "must be a string")
        texts[key] = value.strip()
    if not texts["upstream_model"]:
        raise _catalog_error(f"{path}.match.upstream_model", "is required")
    if not (texts["provider_kind"] or texts["provider"]):
        raise _catalog_error(f"{path}.match", "needs provider_kind or provider")
    if texts["provider_kind"] and texts["provider_kind"] not in Provider.Kind.values:
        raise _catalog_error(
            f"{path}.match.provider_kind", f"must be one of {', '.join(Provider.Kind.values)}"
        )
    prices = data.get("prices")
    if not isinstance(prices, dict) or not prices or set(prices) - set(PRICE_KEYS):
        raise _catalog_error(
            f"{path}.prices", f"must be an object of some of {', '.join(PRICE_KEYS)}"
        )
    values: dict[str, Decimal | None] = {}
    for key, raw in prices.items():
        if raw is None and key not in ("input", "output"):
            values[PRICE_KEYS[key]] = None
            continue
        value = None
        if isinstance(raw, int | float | str) and not isinstance(raw, bool):
            try:
                value = Decimal(str(raw))
            except InvalidOperation:
                value = None
        if value is None or not value.is_finite() or value < 0:
            raise _catalog_error(f"{path}.prices.{key}", "must be a number >= 0")
        if value.as_tuple().exponent < -6:
            raise _catalog_error(f"{path}.prices.{key}", "must have at most 6 decimal places")
        values[PRICE_KEYS[key]] = value
    effective_from = None
    if data.get("effective_from") is not None:
        effective_from = _moment(data["effective_from"])
        if effective_from is None:
            raise _catalog_error(
                f"{path}.effective_from", "must be a date or date and time (ISO 8601)"
            )
    note = data.get("note", "")
    if not isinstance(note, str):
        raise _catalog_error(f"{path}.note", "must be a string")
    return CatalogEntry(
        upstream_model=texts["upstream_model"],
        provider_kind=texts["provider_kind"],
        provider=texts["provider"],
        prices=values,
        effective_from=effective_from,
        note=note.strip()[:200],
    )


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 date (its midnight UTC) or date and time (UTC when naive)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            return None
        moment = datetime(day.year, day.month, day.day)
    return moment.replace(tzinfo=UTC) if timezone.is_naive(moment) else moment


def parse_catalog(data: Any, *, source: str = "") -> Catalog:
    """A catalog document checked into a Catalog; CatalogError names the first bad value."""
    if not isinstance(data, dict):
        raise _catalog_error("(document)", "must be an object")
    if data.get("version") != CATALOG_VERSION:
        raise _catalog_error("version", f"must be {CATALOG_VERSION}")
    as_of = parse_date(data["as_of"]) if isinstance(data.get("as_of"), str) else None
    if as_of is None:
        raise _catalog_error("as_of", "must be a date such as 2025-12-01")
    models = data.get("models")
    if not isinstance(models, list):
        raise _catalog_error("models", "must be a list")
    entries = tuple(_entry(item, f"models[{i}]") for i, item in enumerate(models))
    return Catalog(as_of=as_of, entries=entries, source=source)


# --- the refresh -------------------------------------------------------------------------------


@dataclass
class RefreshReport:
    """What a refresh did: prices changed or scheduled, changes flagged for an admin,
    differences kept (an admin's newer word), versions put in force, stale prices."""

    source: str = ""
    as_of: str = ""
    changed: list[dict[str, Any]] = field(default_factory=list)
    flagged: list[dict[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    promoted: list[dict[str, Any]] = field(default_factory=list)
    stale: list[dict[str, Any]] = field(default_factory=list)
    matched: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "as_of": self.as_of,
            "matched": self.matched,
            "changed": self.changed,
            "flagged": self.flagged,
            "kept": self.kept,
            "promoted": self.promoted,
            "stale": self.stale,
        }


def change_percent(before: PriceValues, after: PriceValues) -> float:
    """The largest change of any rate, in percent of the old rate (inf from a zero rate).
    Rates left unset compare as what they are billed at (the input or output rate)."""
    old, new = as_prices(before), as_prices(after)
    worst = 0.0
    for rate in ("input", "output", "cached_input_rate", "cache_write_rate", "reasoning_rate"):
        a, b = getattr(old, rate), getattr(new, rate)
        if a == b:
            continue
        if a == 0:
            return math.inf
        worst = max(worst, float(abs(b - a) / a * 100))
    return worst


def _item(deployment: ModelDeployment, **extra: Any) -> dict[str, Any]:
    return {
        "deployment": str(deployment.pk),
        "provider": deployment.provider.name,
        "model": deployment.public_name,
        "upstream_model": deployment.upstream_model,
        **extra,
    }


def _percent(value: float) -> float | None:
    return None if math.isinf(value) else round(value, 2)


def _already_flagged(deployment: ModelDeployment, proposal: dict[str, Any], since: datetime):
    """Whether this very proposal was flagged for this deployment since `since`."""
    events = audit_event_list(
        AuditEventFilters(
            event_type="price.change_flagged",
            resource_id=str(deployment.pk),
            since=since,
        )
    )
    wanted = {k: proposal[k] for k in ("after", "effective_from")}
    return any(
        {k: (event.data or {}).get(k) for k in wanted} == wanted for event in events.only("data")
    )


class _Refresh:
    """One run of the refresh over every deployment (see `price_catalog_refresh`)."""

    def __init__(self, catalog: Catalog, now: datetime) -> None:
        self.catalog = catalog
        self.now = now
        self.report = RefreshReport(source=catalog.source, as_of=catalog.as_of.isoformat())
        self.threshold = float(settings.ATP_PRICE_CHANGE_ALERT_PERCENT)
        self.auto_apply = bool(settings.ATP_PRICE_CATALOG_AUTO_APPLY_FLAGGED)
        self.confirmed: set[Any] = set()
        as_of = catalog.as_of
        self.catalog_date = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)

    def note(self, entry: CatalogEntry) -> str:
        text = f"Price catalog {self.catalog.source} as of {self.catalog.as_of.isoformat()}"
        return f"{text}: {entry.note}" if entry.note else text

    def run(self, deployments: Iterable[ModelDeployment]) -> None:
        for deployment in deployments:
            entry = self.catalog.entry_for(deployment)
            if entry is None:
                continue
            self.report.matched += 1
            if entry.effective_from is not None and entry.effective_from > self.now:
                self.upcoming(deployment, entry)
            else:
                self.current(deployment, entry)

    def _flag(
        self,
        deployment: ModelDeployment,
        before: PriceValues,
        after: PriceValues,
        start: datetime | None,
    ) -> bool:
        """Flag a change above the threshold (audited and logged once per proposal, reported
        every run); returns whether it may still be applied."""
        percent = change_percent(before, after)
        proposal = {
            "before": prices_text(before),
            "after": prices_text(after),
            "effective_from": start.isoformat() if start else None,
            "change_percent": _percent(percent),
            "threshold_percent": self.threshold,
            "applied": self.auto_apply,
            "catalog": self.catalog.source,
            "as_of": self.catalog.as_of.isoformat(),
        }
        newest = PriceVersion.objects.filter(deployment=deployment).order_by("-created_at").first()
        since = newest.created_at if newest else deployment.created_at
        if not _already_flagged(deployment, proposal, since):
            audit_record(
                event_type="price.change_flagged",
                action="flag",
                resource_type="deployment",
                resource_id=str(deployment.pk),
                data=proposal,
            )
            logger.warning(
                "price catalog: %s/%s prices change by %s%% (threshold %s%%): %s",
                deployment.provider.name,
                deployment.public_name,
                proposal["change_percent"] if proposal["change_percent"] is not None else "inf",
                self.threshold,
                "applied" if self.auto_apply else "left for an admin",
            )
        self.report.flagged.append(
            _item(deployment, **{k: v for k, v in proposal.items() if k != "catalog"})
        )
        return self.auto_apply

    def current(self, deployment: ModelDeployment, entry: CatalogEntry) -> None:
        before = field_prices(deployment)
        after = {**before, **entry.prices}
        if _same(before, after):
            self.confirmed.add(deployment.pk)
            return
        versions = PriceVersion.objects.filter(deployment=deployment, effective_from__lte=self.now)
        in_force = versions.order_by("-effective_from").first()
        unpriced = not before["input_price"] and not before["output_price"]
        catalog_owned = in_force is not None and in_force.source == PriceVersion.Source.CATALOG
        if in_force is not None:
            said_at = max(in_force.created_at, in_force.effective_from)
        else:
            said_at = deployment.updated_at
        news_at = entry.effective_from or self.catalog_date
        if not (unpriced or catalog_owned or said_at < news_at):
            # An admin's (or the file's) price newer than what the catalog knows stands.
            self.report.kept.append(
                _item(deployment, prices=prices_text(before), catalog=prices_text(after))
            )
            return
        percent = change_percent(before, after)
        flagged = not unpriced and percent > self.threshold
        if flagged and not self._flag(deployment, before, after, None):
            return
        price_version_schedule(
            deployment=deployment,
            prices=after,
            source=PriceVersion.Source.CATALOG,
            note=self.note(entry),
        )
        self.confirmed.add(deployment.pk)
        self.report.changed.append(
            _item(
                deployment,
                before=prices_text(before),
                after=prices_text(after),
                effective_from=None,
                change_percent=_percent(percent),
            )
        )

    def upcoming(self, deployment: ModelDeployment, entry: CatalogEntry) -> None:
        start = entry.effective_from
        assert start is not None
        versions = PriceVersion.objects.filter(deployment=deployment)
        existing = versions.filter(effective_from=start).first()
        previous = versions.filter(effective_from__lt=start).order_by("-effective_from").first()
        before = field_prices(previous) if previous else field_prices(deployment)
        after = {**before, **entry.prices}
        if existing is not None:
            if _same(field_prices(existing), after):
                return
            if existing.source != PriceVersion.Source.CATALOG:
                self.report.kept.append(
                    _item(
                        deployment,
                        prices=prices_text(field_prices(existing)),
                        catalog=prices_text(after),
                        effective_from=start.isoformat(),
                    )
                )
                return
        elif _same(before, after):
            return
        percent = change_percent(before, after)
        priced = bool(before["input_price"] or before["output_price"])
        flagged = priced and percent > self.threshold
        if flagged and not self._flag(deployment, before, after, start):
            return
        price_version_schedule(
            deployment=deployment,
            prices=after,
            effective_from=start,
            source=PriceVersion.Source.CATALOG,
            note=self.note(entry),
        )
        self.report.changed.append(
            _item(
                deployment,
                before=prices_text(before),
                after=prices_text(after),
                effective_from=start.isoformat(),
                change_percent=_percent(percent),
            )
        )

    def stale(self, deployments: Iterable[ModelDeployment]) -> None:
        """Warn (audit `price.stale`, a log line) of enabled deployments whose prices nobody
        confirmed for ATP_PRICE_STALE_DAYS: once per deployment per period."""
        days = settings.ATP_PRICE_STALE_DAYS
        cutoff = self.now - timedelta(days=days)
        latest = dict(
            PriceVersion.objects.values("deployment_id")
            .annotate(latest=Max("created_at"))
            .values_list("deployment_id", "latest")
        )
        for deployment in deployments:
            if (
                deployment.pk in self.confirmed
                or not (deployment.enabled and deployment.provider.enabled)
                or deployment.provider.kind == Provider.Kind.SIMULATOR
            ):
                continue
            confirmed_at = max(
                latest.get(deployment.pk, deployment.created_at), deployment.created_at
            )
            if confirmed_at >= cutoff:
                continue
            warned = audit_event_list(
                AuditEventFilters(
                    event_type="price.stale",
                    resource_id=str(deployment.pk),
                    since=max(confirmed_at, cutoff),
                )
            ).exists()
            age = (self.now - confirmed_at).days
            item = _item(
                deployment,
                last_confirmed=confirmed_at.isoformat(),
                days=age,
                warned_now=not warned,
            )
            self.report.stale.append(item)
            if warned:
                continue
            audit_record(
                event_type="price.stale",
                action="warn",
                resource_type="deployment",
                resource_id=str(deployment.pk),
                data={k: v for k, v in item.items() if k != "warned_now"} | {"stale_days": days},
            )
            logger.warning(
                "price of %s/%s not confirmed for %d days (ATP_PRICE_STALE_DAYS=%d): "
                "check it, or confirm it with the price catalog or a price version",
                deployment.provider.name,
                deployment.public_name,
                age,
                days,
            )


def price_catalog_refresh(
    *, source: str | None = None, now: datetime | None = None
) -> RefreshReport:
    """Refresh the deployments' prices from the catalog (docs/pricing-catalog.md).

    Puts versions whose time has come in force; then, for each deployment matched by
    provider kind (or name) and upstream model: records the catalog's prices when they
    differ (a future `effective_from` schedules them), unless an admin's or the file's
    price is newer than the catalog's information; flags a change above
    ATP_PRICE_CHANGE_ALERT_PERCENT (audit `price.change_flagged`) and leaves it for an admin
    unless ATP_PRICE_CATALOG_AUTO_APPLY_FLAGGED; and warns of stale prices. Raises
    CatalogError (CatalogUnavailable when reading failed) before changing anything.
    """
    catalog = catalog_load(source)
    now = now or timezone.now()
    actor = current_actor()
    if actor.source == "system":
        actor = AuditActor(actor="price-catalog", source="system")
    with acting_as(actor), transaction.atomic():
        run = _Refresh(catalog, now)
        for version in price_versions_promote(now=now):
            run.report.promoted.append(
                _item(
                    version.deployment,
                    prices=prices_text(field_prices(version)),
                    effective_from=version.effective_from.isoformat(),
                )
            )
        deployments = list(
            ModelDeployment.objects.select_related("provider").order_by(
                "provider__name", "public_name"
            )
        )
        run.run(deployments)
        run.stale(deployments)
    return run.report
