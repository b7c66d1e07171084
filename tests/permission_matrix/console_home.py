"""Rows of the site's landing page."""

from __future__ import annotations

from tests.permission_matrix.rows import Row, row

# fmt: off
ROWS: list[Row] = [
    #    id            URL name   method  an  st  ro  tm  ta  au  co  se  pl  mg  sa  su
    row("home",        "home",    "get",  "200 200 200 200 200 200 200 200 200 200 200 200"),
]
# fmt: on
