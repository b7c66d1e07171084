"""Permission-matrix rows of the live overview (atp_site.console.urls).

Every signed-in user may open the overview; what it shows is narrowed to the viewer's
scope (tests/console/test_overview.py checks the figures, tests/permission_matrix/topics.py
the WebSocket topics). The figures endpoint is the page's polling fallback, fetched by
script: signed out it answers 401 rather than a redirect to the sign-in page.
"""

from __future__ import annotations

from tests.permission_matrix.rows import row

CONSOLE = "console:"

# fmt: off
ROWS = [
    #    id                          URL name                  method  anon staff ro  tmem tadm aud cost sec plat mgr super su
    row("console overview",          CONSOLE + "overview",           "get",  "302 200 200 200 200 200 200 200 200 200 200 200"),
    row("console overview figures",  CONSOLE + "overview-figures",   "get",  "401 200 200 200 200 200 200 200 200 200 200 200"),
]
# fmt: on
