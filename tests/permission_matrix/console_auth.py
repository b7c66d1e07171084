"""Rows of the sign-in package's pages (the sign-in and sign-out pages themselves are open by
design and excluded in tests/test_permission_matrix.py)."""

from __future__ import annotations

from tests.permission_matrix.rows import Row, row

# fmt: off
ROWS: list[Row] = [
    #    id                  URL name        method  an  st  ro  tm  ta  au  co  se  pl  mg  sa  su
    row("account",           "auth:account", "get",  "302 200 200 200 200 200 200 200 200 200 200 200"),
    # A form without an action goes back to the page; signed out, a POST is a 401.
    row("account-post",      "auth:account", "post", "401 302 302 302 302 302 302 302 302 302 302 302",
        data={"action": ""}),
    row("account-htmx",      "auth:account", "get",  "401 200 200 200 200 200 200 200 200 200 200 200",
        htmx=True),
]
# fmt: on
