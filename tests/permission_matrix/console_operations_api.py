"""Rows of the management API's operations endpoints (what atpctl calls beyond CRUD): a
provider's connectivity test, a route simulation, and the configuration file applied or
exported. They sit in a console_*.py module so rows.py gathers them; being under /api/, they
are called as API clients call.

A connectivity test needs the provider's change permission (as the console's button does);
a simulation the route's view permission. The configuration document reaches every object
at once, dedicated permissions included, so applying and exporting it is for superusers only.
"""

from __future__ import annotations

from tests.permission_matrix.rows import Row, pk, row

P = "providers-api:"
R = "routing-api:"
T = "tenants-api:"

DOCUMENT = {"version": 1, "routes": [{"name": "team/from-file", "description": "applied"}]}

# Columns:  anon staff read tmem tadm audi cost secu plat mgr  sadm super
# fmt: off
ROWS: list[Row] = [
    #    id                              URL name                          method    an  st  ro  tm  ta  au  co  se  pl  mg  sa  su
    row("provider test",                 P + "provider-test",              "post",   "401 403 403 403 403 403 403 403 200 200 200 200", target=pk("provider")),
    row("route simulate",                R + "route-simulate",             "post",   "401 403 200 403 403 403 403 403 200 200 200 200", data={"route": "team/matrix", "prompt": "Hello"}),
    row("route simulate, no prompt",     R + "route-simulate",             "post",   "401 403 400 403 403 403 403 403 400 400 400 400", data={"route": "team/matrix"}),
    row("config apply, dry run",         T + "config-apply",               "post",   "401 403 403 403 403 403 403 403 403 403 403 200", data=DOCUMENT, query={"dry_run": "true"}),
    row("config apply",                  T + "config-apply",               "post",   "401 403 403 403 403 403 403 403 403 403 403 200", data=DOCUMENT),
    row("config apply, invalid",         T + "config-apply",               "post",   "401 403 403 403 403 403 403 403 403 403 403 400", data={"version": 2}),
    row("config export",                 T + "config-export",              "get",    "401 403 403 403 403 403 403 403 403 403 403 200"),
]
# fmt: on
