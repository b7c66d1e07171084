"""Rendering rows and objects as a table, JSON, YAML or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import yaml

FORMATS = ("table", "json", "yaml", "csv")


def render_rows(rows: list[dict[str, Any]], columns: Sequence[str], fmt: str) -> str:
    """A list: every field in JSON and YAML, the given columns in a table and in CSV."""
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return _yaml(rows)
    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    headers = [column.upper() if fmt == "table" else column for column in columns]
    if fmt == "csv":
        return _csv([list(columns), *cells])
    return table(headers, cells)


def render_object(obj: dict[str, Any], fmt: str, fields: Sequence[str] | None = None) -> str:
    """One object: every field in JSON and YAML; `fields` (default all) as FIELD VALUE lines in
    a table, or as a header row and one row in CSV."""
    if fmt == "json":
        return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return _yaml(obj)
    names = list(fields) if fields else list(obj)
    if fmt == "csv":
        return _csv([names, [cell(obj.get(name)) for name in names]])
    return table(["FIELD", "VALUE"], [[name, cell(obj.get(name))] for name in names])


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned with two spaces between them."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))
    lines = []
    for row in [list(headers), *rows]:
        line = "  ".join(value.ljust(widths[i]) for i, value in enumerate(row))
        lines.append(line.rstrip())
    return "\n".join(lines) + "\n"


def cell(value: Any) -> str:
    """A value as one line of text: nested objects by their name, lists comma-separated."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # Positional, never 5.2e-05: costs are read by people.
        return format(Decimal(repr(value)), "f")
    if isinstance(value, dict):
        for key in ("name", "slug", "username", "id"):
            if key in value:
                return cell(value[key])
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, list):
        return ",".join(cell(item) for item in value)
    return " ".join(str(value).split())


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([_formula_safe(value) for value in row])
    return buffer.getvalue()


def _formula_safe(value: str) -> str:
    # A cell a spreadsheet would run as a formula is quoted (OWASP's CSV injection advice).
    if value and value[0] in "=+-@\t\r" and not _is_number(value):
        return "'" + value
    return value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
