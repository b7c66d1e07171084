"""Declarative configuration: apply a YAML document, or export one.

The document has a `version` and one top-level section per kind of object. Each app owns
its sections, in its `config_sections.py` (providers and their models in apps.providers,
tenants and their keys in apps.tenants, routes in apps.routing, retention policies in
apps.audit), registered with `@register`; this module knows none of them:

    @register
    class RouteSection(Section):
        key = "routes"
        order = 30                      # applied and exported in this order
        unique = ("name", "route name")  # duplicate names in the list are an error

        def parse_item(self, data, path, environ): ...   # -> a spec with .path
        def apply(self, specs, run): ...                  # through the services
        def export(self, notes): ...                      # -> list of items

`apply_config` validates the whole document first, then converges the database on it in one
transaction, section by section, so a file that fails anywhere changes nothing. The format
is documented in docs/configuration.md.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import yaml
from django.core.exceptions import NON_FIELD_ERRORS, ImproperlyConfigured, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

VERSION = 1
ENV_PREFIX = "env:"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MISSING: Any = object()


class ConfigError(Exception):
    """The document is invalid; the message starts with the path of the offending value."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


# --- the report ----------------------------------------------------------------------------


@dataclass
class Change:
    """What applying did (or, in a dry run, would do) to one object."""

    kind: str  # provider | deployment | tenant | api key | route | retention policy
    name: str
    action: str  # created | updated | unchanged | replaced | deleted | revoked
    fields: tuple[str, ...] = ()
    # The plaintext of a key the file did not supply: shown once, never stored.
    secret: str | None = None

    def line(self) -> str:
        text = f"{self.kind} {self.name}: {self.action}"
        if self.fields:
            text += f" ({', '.join(self.fields)})"
        if self.secret:
            text += f"\n    key (shown once, store it now): {self.secret}"
        return text


@dataclass
class ApplyReport:
    dry_run: bool = False
    changes: list[Change] = field(default_factory=list)

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.changes.append(Change(*args, **kwargs))

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def changed(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)

    def summary(self) -> str:
        actions = ("created", "updated", "replaced", "deleted", "revoked", "unchanged")
        counts = ", ".join(f"{self.count(a)} {a}" for a in actions)
        if self.dry_run:
            return f"Dry run, nothing applied: {counts}."
        return f"Applied: {counts}." if self.changed else f"No changes: {counts}."

    def lines(self) -> list[str]:
        return [c.line() for c in self.changes] + [self.summary()]


@dataclass
class Run:
    """One application of a document: where sections report, and how."""

    report: ApplyReport
    prune: bool
    dry_run: bool


# --- checking values -------------------------------------------------------------------------


def mapping(value: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(path, "must be a mapping")
    for key in value:
        if key not in allowed:
            raise ConfigError(
                join(path, str(key)), f"unknown key (expected one of {sorted(allowed)})"
            )
    return value


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def get(
    data: Mapping[str, Any], key: str, path: str, check: Callable[[Any, str], Any], default: Any
) -> Any:
    """`data[key]` checked by `check`; absent or null gives `default` (MISSING: required)."""
    if data.get(key) is None:
        if default is MISSING:
            raise ConfigError(join(path, key), "is required")
        return default
    return check(data[key], join(path, key))


def string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(path, "must be a non-empty string")
    return value.strip()


def optional_string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(path, "must be a string")
    return value.strip()


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, "must be true or false")
    return value


def number(value: Any, path: str) -> Decimal:
    """A non-negative number with at most 6 decimals (prices are stored to a millionth)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ConfigError(path, "must be a number >= 0")
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(path, "must be a number >= 0") from None
    if not parsed.is_finite() or parsed < 0:
        raise ConfigError(path, "must be a number >= 0")
    if parsed.as_tuple().exponent < -6:
        raise ConfigError(path, "must have at most 6 decimal places")
    return parsed


def seconds(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(path, "must be a number of seconds > 0")
    return float(value)


def fraction(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(path, "must be a number between 0 and 1")
    return float(value)


def positive_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(path, "must be a whole number >= 1")
    return value


def non_negative_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(path, "must be a whole number >= 0")
    return value


def string_list(value: Any, path: str) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError(path, "must be a list of strings")
    items = [string(item, join(path, i)) for i, item in enumerate(value)]
    return list(dict.fromkeys(items))


def an_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(path, "must be a mapping")
    return dict(value)


def date_time(value: Any, path: str) -> datetime:
    if isinstance(value, str):
        parsed = parse_datetime(value.strip())
        if parsed is None:
            raise ConfigError(path, "must be a date and time such as 2027-01-01T00:00:00Z")
        value = parsed
    if not isinstance(value, datetime):
        raise ConfigError(path, "must be a date and time such as 2027-01-01T00:00:00Z")
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


def choice(choices: Sequence[str]) -> Callable[[Any, str], str]:
    def check(value: Any, path: str) -> str:
        if value not in choices:
            raise ConfigError(path, f"must be one of {', '.join(choices)}")
        return value

    return check


def items_of(data: Mapping[str, Any], key: str, path: str) -> list[Any] | None:
    """The list under `key`; None when the key is absent (null is an empty list)."""
    if key not in data:
        return None
    value = data[key]
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(join(path, key), "must be a list")
    return value


def unique(items: list[Any], attr: str, path: str, what: str) -> None:
    seen: set[str] = set()
    for item in items:
        name = getattr(item, attr)
        if name in seen:
            raise ConfigError(item.path, f"duplicate {what} {name!r}")
        seen.add(name)


def env_name(value: str, path: str) -> str:
    """The variable an `env:NAME` value names."""
    name = value[len(ENV_PREFIX) :].strip()
    if not _ENV_NAME.match(name):
        raise ConfigError(path, "env: must be followed by an environment variable name")
    return name


# --- applying through the services -----------------------------------------------------------


@contextmanager
def at(path: str, paths: Mapping[str, str] | None = None) -> Iterator[None]:
    """Report a service's ValidationError at the document path of the offending value
    (`paths` maps a service's field names back to the document's keys)."""
    try:
        yield
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            fld, messages = next(iter(exc.message_dict.items()))
            where = path if fld == NON_FIELD_ERRORS else join(path, (paths or {}).get(fld, fld))
        else:
            where, messages = path, exc.messages
        raise ConfigError(where, " ".join(messages)) from None


def _same(current: Any, desired: Any) -> bool:
    if isinstance(current, Decimal) or isinstance(desired, Decimal):
        if current is None or desired is None:
            return current is desired
        return Decimal(str(current)) == Decimal(str(desired))
    return current == desired


def diff(instance: Any, desired: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `desired` that `instance` does not have yet."""
    return {k: v for k, v in desired.items() if not _same(getattr(instance, k), v)}


def upsert(
    report: ApplyReport,
    what: str,
    label: str,
    current: Any,
    desired: Mapping[str, Any],
    *,
    create: Callable[[], Any],
    update: Callable[..., Any],
) -> None:
    """Create the object when there is none, else update the fields that differ from
    `desired` (`update(**changed)`), and report which it was (created, updated with the
    fields, unchanged)."""
    if current is None:
        create()
        report.add(what, label, "created")
        return
    changed = diff(current, desired)
    if changed:
        update(**changed)
        report.add(what, label, "updated", tuple(sorted(changed)))
    else:
        report.add(what, label, "unchanged")


def number_out(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


# --- sections --------------------------------------------------------------------------------


class Section:
    """One top-level list of the document; see the module docstring."""

    key: ClassVar[str]
    order: ClassVar[int]
    # (attribute of a spec, what to call it): two items of the list may not share it.
    unique: ClassVar[tuple[str, str] | None] = None

    def parse_item(self, data: Any, path: str, environ: Mapping[str, str]) -> Any:
        raise NotImplementedError

    def parse(self, items: list[Any], environ: Mapping[str, str]) -> list[Any]:
        specs = [self.parse_item(item, join(self.key, i), environ) for i, item in enumerate(items)]
        if self.unique:
            unique(specs, self.unique[0], self.key, self.unique[1])
        return specs

    def apply(self, specs: list[Any], run: Run) -> None:
        raise NotImplementedError

    def export(self, notes: list[str]) -> list[dict[str, Any]]:
        raise NotImplementedError


_SECTIONS: dict[str, Section] = {}
_discovered = False


def register(section: type[Section]) -> type[Section]:
    """Class decorator: the document gains `section.key`."""
    if section.key in _SECTIONS and type(_SECTIONS[section.key]) is not section:
        raise ImproperlyConfigured(f"two configuration sections named {section.key!r}")
    _SECTIONS[section.key] = section()
    return section


def sections() -> list[Section]:
    """Every registered section, in order (each project app's `config_sections` imported)."""
    global _discovered
    if not _discovered:
        from django.apps import apps

        for app in apps.get_app_configs():
            module = f"{app.name}.config_sections"
            if app.name.startswith("apps.") and importlib.util.find_spec(module):
                importlib.import_module(module)
        _discovered = True
    return sorted(_SECTIONS.values(), key=lambda s: s.order)


# --- the document ----------------------------------------------------------------------------


def parse_config(data: Any, *, environ: Mapping[str, str] | None = None) -> dict[str, list[Any]]:
    """Validate a whole document: its specs by section key, for the sections it has (an
    absent section is neither applied nor pruned). `env:` references are resolved here."""
    environ = os.environ if environ is None else environ
    known = sections()
    data = mapping(data, "", {"version", *(s.key for s in known)})
    if data.get("version") != VERSION:
        raise ConfigError("version", f"must be {VERSION}")
    specs = {}
    for section in known:
        items = items_of(data, section.key, "")
        if items is not None:
            specs[section.key] = section.parse(items, environ)
    return specs


def load_config_file(path: str) -> Any:
    """Read a YAML file ('-' for standard input); unreadable input is a ConfigError."""
    try:
        if path == "-":
            return yaml.safe_load(sys.stdin)
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{path} is not valid YAML: {exc}") from None


def apply_config(
    data: Any,
    *,
    prune: bool = False,
    dry_run: bool = False,
    environ: Mapping[str, str] | None = None,
) -> ApplyReport:
    """Converge the database on `data` (a parsed document) in one transaction.

    Sections absent from the document are left alone, even with `prune`. A dry run does
    everything, then rolls back, so it reports exactly what applying would do.
    Raises ConfigError, with nothing applied, when the document is invalid.
    """
    from apps.audit.context import AuditActor, acting_as, current_actor

    specs = parse_config(data, environ=environ)
    run = Run(ApplyReport(dry_run=dry_run), prune=prune, dry_run=dry_run)
    # Changes from a document with no one else named as acting are the config file's.
    actor = current_actor()
    if actor.source == "system":
        actor = AuditActor(actor="config", source="config")
    with acting_as(actor), transaction.atomic():
        for section in sections():
            if section.key in specs:
                section.apply(specs[section.key], run)
        if dry_run:
            transaction.set_rollback(True)
    return run.report


def _export() -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    data: dict[str, Any] = {"version": VERSION}
    for section in sections():
        data[section.key] = section.export(notes)
    return data, notes


def export_config() -> dict[str, Any]:
    """The current configuration as a document `apply_config` accepts; secrets as env refs.

    API keys are listed without their key (only its prefix), so applying the export to the
    same database changes nothing.
    """
    return _export()[0]


def export_config_yaml() -> str:
    """`export_config()` as YAML, with notes on the values that must be supplied."""
    data, notes = _export()
    header = ["# ATP configuration (docs/configuration.md)."]
    header += [f"# NOTE: {note}" for note in notes]
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return "\n".join(header) + "\n" + body
