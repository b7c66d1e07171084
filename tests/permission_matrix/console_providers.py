"""Rows of the providers' console pages."""

from __future__ import annotations

from tests.permission_matrix.rows import Row, pk, row

# fmt: off
ROWS: list[Row] = [
    #    id                          URL name                       method  an  st  ro  tm  ta  au  co  se  pl  mg  sa  su
    row("provider page list",        "providers:provider-list",     "get",  "302 403 200 403 403 403 200 403 200 200 200 200"),
    row("provider page list htmx",   "providers:provider-list",     "get",  "401 403 200 403 403 403 200 403 200 200 200 200", htmx=True),
    row("provider page",             "providers:provider-detail",   "get",  "302 403 200 403 403 403 200 403 200 200 200 200", target=pk("provider")),
]
# fmt: on
