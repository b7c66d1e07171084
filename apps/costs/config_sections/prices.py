"""The configuration file's `prices` section: price versions scheduled per model
(atp_site.lib.config_file; the format is in docs/configuration.md).

A model's current prices stay under `providers`; this section adds versions that start
later. A version whose start has passed is history: it is kept, never changed or pruned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from apps.costs import catalog
from apps.costs.models import PriceVersion
from apps.providers.models import ModelDeployment
from atp_site.lib import config_file as cf

VERSION_KEYS = {"provider", "model", "effective_from", "prices", "note"}


@dataclass
class VersionSpec:
    path: str
    provider: str
    model: str
    effective_from: datetime
    prices: dict[str, Decimal | None]  # every price field
    note: str

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}@{self.effective_from.isoformat()}"


def _deployment(spec: VersionSpec) -> ModelDeployment:
    found = (
        ModelDeployment.objects.select_related("provider")
        .filter(provider__name=spec.provider, public_name=spec.model)
        .first()
    )
    if found is None:
        raise cf.ConfigError(
            cf.join(spec.path, "model"), f"no model {spec.model!r} of provider {spec.provider!r}"
        )
    return found


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@cf.register
class PriceSection(cf.Section):
    key = "prices"
    # After providers: a version names its model by provider and name.
    order = 15
    unique = ("label", "price version (provider/model@effective_from)")

    def parse_item(self, data: Any, path: str, environ: Mapping[str, str]) -> VersionSpec:
        data = cf.mapping(data, path, VERSION_KEYS)
        prices_path = cf.join(path, "prices")
        prices = cf.mapping(
            cf.get(data, "prices", path, cf.an_object, cf.MISSING),
            prices_path,
            set(catalog.PRICE_KEYS),
        )
        values = {
            name: cf.get(
                prices,
                key,
                prices_path,
                cf.number,
                cf.MISSING if key in ("input", "output") else None,
            )
            for key, name in catalog.PRICE_KEYS.items()
        }
        return VersionSpec(
            path=path,
            provider=cf.get(data, "provider", path, cf.string, cf.MISSING),
            model=cf.get(data, "model", path, cf.string, cf.MISSING),
            effective_from=cf.get(data, "effective_from", path, cf.date_time, cf.MISSING),
            prices=values,
            note=cf.get(data, "note", path, cf.optional_string, "")[:500],
        )

    def apply(self, specs: list[VersionSpec], run: cf.Run) -> None:
        report = run.report
        now = timezone.now()
        wanted: set[tuple[Any, datetime]] = set()
        latest_past: dict[Any, VersionSpec] = {}
        for spec in specs:
            deployment = _deployment(spec)
            wanted.add((deployment.pk, spec.effective_from))
            in_history = False
            with cf.at(spec.path, {v: f"prices.{k}" for k, v in catalog.PRICE_KEYS.items()}):
                if spec.effective_from > now:
                    self._apply_upcoming(deployment, spec, run)
                else:
                    in_history = self._apply_past(deployment, spec, run)
            if in_history:
                known = latest_past.get(deployment.pk)
                if known is None or known.effective_from < spec.effective_from:
                    latest_past[deployment.pk] = spec
        for deployment_pk, spec in latest_past.items():
            self._check_current(deployment_pk, spec, wanted)
        if run.prune:
            upcoming = PriceVersion.objects.select_related("deployment__provider").filter(
                effective_from__gt=now
            )
            for version in upcoming:
                if (version.deployment_id, version.effective_from) in wanted:
                    continue
                d = version.deployment
                label = f"{d.provider.name}/{d.public_name}@{version.effective_from.isoformat()}"
                catalog.price_version_cancel(version=version)
                report.add("price version", label, "deleted")

    @staticmethod
    def _apply_upcoming(deployment: ModelDeployment, spec: VersionSpec, run: cf.Run) -> None:
        existing = PriceVersion.objects.filter(
            deployment=deployment, effective_from=spec.effective_from
        ).first()
        if existing is not None:
            changed = [
                name
                for name, value in spec.prices.items()
                if catalog.field_prices(existing)[name] != value
            ]
            if existing.note != spec.note:
                changed.append("note")
            if not changed:
                run.report.add("price version", spec.label, "unchanged")
                return
        catalog.price_version_schedule(
            deployment=deployment,
            prices=spec.prices,
            effective_from=spec.effective_from,
            source=PriceVersion.Source.CONFIG,
            note=spec.note,
        )
        if existing is None:
            run.report.add("price version", spec.label, "created")
        else:
            run.report.add("price version", spec.label, "updated", tuple(sorted(changed)))

    @staticmethod
    def _apply_past(deployment: ModelDeployment, spec: VersionSpec, run: cf.Run) -> bool:
        """A version whose start has passed is history, which is never rewritten: requests
        served since were costed at the prices then in force. It must be in the history
        already (True), or superseded there by a later version (a model created since)."""
        versions = PriceVersion.objects.filter(deployment=deployment)
        existing = versions.filter(effective_from=spec.effective_from).first()
        if existing is not None:
            if catalog.field_prices(existing) != spec.prices:
                raise cf.ConfigError(
                    cf.join(spec.path, "prices"),
                    f"in force since {_moment(spec.effective_from)} with other prices; "
                    "past prices cannot be changed (schedule a new version instead)",
                )
            run.report.add("price version", spec.label, "unchanged")
            return True
        if versions.filter(effective_from__gt=spec.effective_from).exists():
            run.report.add("price version", spec.label, "unchanged", ("superseded",))
            return False
        raise cf.ConfigError(
            cf.join(spec.path, "effective_from"),
            f"{_moment(spec.effective_from)} has passed and this version is not in the "
            "model's price history; past prices cannot be changed: give the model these "
            "prices under providers, or a future effective_from",
        )

    @staticmethod
    def _check_current(deployment_pk: Any, spec: VersionSpec, wanted: set) -> None:
        """The file's latest version in force must still be the model's price unless
        something newer than the file set it: a file whose `providers` prices were not
        updated when its scheduled version came into force would set them back."""
        newer = (
            PriceVersion.objects.filter(
                deployment_id=deployment_pk,
                effective_from__gt=spec.effective_from,
                effective_from__lte=timezone.now(),
            )
            .order_by("-effective_from")
            .first()
        )
        if (
            newer is None
            or (deployment_pk, newer.effective_from) in wanted
            or newer.source != PriceVersion.Source.CONFIG
            or catalog.field_prices(newer) == spec.prices
        ):
            return
        raise cf.ConfigError(
            cf.join(spec.path, "prices"),
            f"in force since {_moment(spec.effective_from)}, but the model's prices under "
            "providers differ: give the model these prices there, or remove this entry",
        )

    def export(self, notes: list[str]) -> list[dict[str, Any]]:
        upcoming = (
            PriceVersion.objects.select_related("deployment__provider")
            .filter(effective_from__gt=timezone.now())
            .order_by("deployment__provider__name", "deployment__public_name", "effective_from")
        )
        out = []
        for version in upcoming:
            prices = {
                key: cf.number_out(getattr(version, name))
                for key, name in catalog.PRICE_KEYS.items()
                if getattr(version, name) is not None
            }
            item: dict[str, Any] = {
                "provider": version.deployment.provider.name,
                "model": version.deployment.public_name,
                "effective_from": version.effective_from,
                "prices": prices,
            }
            if version.note:
                item["note"] = version.note
            out.append(item)
        return out
