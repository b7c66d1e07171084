"""Rows of the console's own pages: the overview at /."""

from __future__ import annotations

from tests.permission_matrix.rows import Row, row

# fmt: off
ROWS: list[Row] = [
    #    id                   URL name              method  an  st  ro  tm  ta  au  co  se  pl  mg  sa  su
    row("overview",           "console:overview",   "get",  "302 200 200 200 200 200 200 200 200 200 200 200"),
    row("overview htmx",      "console:overview",   "get",  "401 200 200 200 200 200 200 200 200 200 200 200", htmx=True),
]
# fmt: on
