"""CSV cells safe to open in a spreadsheet (OWASP CSV injection).

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a formula by
Excel, LibreOffice and Google Sheets; such cells get a leading single quote, which they
show as text. Objects and lists are written as JSON with every string inside them treated
the same way, so no part of a cell can start a formula when someone splits or pastes it.
"""

from __future__ import annotations

import json
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell value a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _neutralised(value: Any) -> Any:
    if isinstance(value, dict):
        return {csv_cell(str(k)): _neutralised(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_neutralised(v) for v in value]
    return csv_cell(value)


def csv_row(values: list[Any]) -> list[Any]:
    """One CSV row: objects and lists as JSON, every string neutralised, inside JSON too."""
    return [
        csv_cell(json.dumps(_neutralised(v))) if isinstance(v, dict | list) else csv_cell(v)
        for v in values
    ]
