"""Permission-matrix rows of the console's route and request-log pages.

Columns (world.ROLES): anonymous staff read_only tenant_member tenant_admin auditor
cost_admin security_admin platform_admin manager super_admin superuser.

Routes belong to no tenant: their view permission is read_only's, platform_admin's,
manager's and super_admin's; changing them platform_admin's, manager's and super_admin's.
The request log is tenant-scoped: tenant roles see acme's requests (globex's are 404);
read_only, auditor, cost_admin and platform_admin see every tenant's, and so do
security_admin and manager: they hold tenants.view_tenant globally, which is the request
log's tenant grant (apps.tenants.permissions.TENANT_SCOPES) on every tenant. Stored bodies are a dedicated permission: only
the superuser reads them. htmx POSTs answer 204 with HX-Redirect on success.
"""

from __future__ import annotations

from apps.routing.models import RequestLog
from tests.permission_matrix.rows import pk, row


def _log(request_id: str):
    return lambda w, r: RequestLog.objects.get(request_id=request_id).pk


ROUTE_FORM = {
    "name": "team/matrix",
    "exploration_rate": "0.1",
    "challenger_share": "0",
    "cache_ttl_seconds": "0",
    "semantic_threshold": "0.92",
    "enabled": "on",
}
NEW_ROUTE = {**ROUTE_FORM, "name": "team/matrix-new"}
TRY = {"route": "team/matrix", "prompt": "Summarise this paragraph.", "hints": "{}"}

#                anon staff ro  tmem tadm aud cost sec plat mgr super su
ROUTE_VIEW = "   302  403  200 403  403  403 403  403 200  200 200   200"
ROUTE_VIEW_HX = "401  403  200 403  403  403 403  403 200  200 200   200"
ROUTE_CHANGE = " 302  403  403 403  403  403 403  403 200  200 200   200"
ROUTE_DONE = "   401  403  403 403  403  403 403  403 204  204 204   204"
LOG_VIEW = "     302  403  200 200  200  200 200  200 200  200 200   200"
LOG_OTHER = "    302  403  200 404  404  200 200  200 200  200 200   200"
BODY = "         401  403  403 403  403  403 403  403 403  403 403   200"
BODY_OTHER = "   401  403  403 404  404  403 403  403 403  403 403   200"

ROWS = [
    row("console-route-list", "routing:route-list", "get", ROUTE_VIEW),
    row("console-route-detail", "routing:route-detail", "get", ROUTE_VIEW, target=pk("route")),
    row(
        "console-route-builtin",
        "routing:route-builtin",
        "get",
        ROUTE_VIEW,
        target=lambda w, r: "atp/fast",
        lookup="name",
    ),
    row("console-route-try", "routing:route-try", "post", ROUTE_VIEW_HX, data=TRY, htmx=True),
    row("console-route-add-form", "routing:route-add", "get", ROUTE_CHANGE),
    row("console-route-add", "routing:route-add", "post", ROUTE_DONE, data=NEW_ROUTE, htmx=True),
    row("console-route-edit-form", "routing:route-edit", "get", ROUTE_CHANGE, target=pk("route")),
    row(
        "console-route-edit",
        "routing:route-edit",
        "post",
        ROUTE_DONE,
        target=pk("route"),
        data=ROUTE_FORM,
        htmx=True,
    ),
    row(
        "console-route-delete-confirm",
        "routing:route-delete",
        "get",
        ROUTE_CHANGE,
        target=pk("route"),
    ),
    row(
        "console-route-delete",
        "routing:route-delete",
        "post",
        ROUTE_DONE,
        target=pk("route"),
        htmx=True,
    ),
    row(
        "console-route-toggle-confirm",
        "routing:route-toggle",
        "get",
        ROUTE_CHANGE,
        target=pk("route"),
    ),
    row(
        "console-route-toggle",
        "routing:route-toggle",
        "post",
        ROUTE_DONE,
        target=pk("route"),
        htmx=True,
    ),
    row("console-requestlog-list", "routing:requestlog-list", "get", LOG_VIEW),
    row(
        "console-requestlog-detail-own",
        "routing:requestlog-detail",
        "get",
        LOG_VIEW,
        target=_log("r-acme"),
    ),
    row(
        "console-requestlog-detail-other",
        "routing:requestlog-detail",
        "get",
        LOG_OTHER,
        target=_log("r-globex"),
    ),
    row(
        "console-requestlog-body-own",
        "routing:requestlog-body",
        "post",
        BODY,
        target=_log("r-acme"),
        htmx=True,
    ),
    row(
        "console-requestlog-body-other",
        "routing:requestlog-body",
        "post",
        BODY_OTHER,
        target=_log("r-globex"),
        htmx=True,
    ),
]
