"""Permission-matrix rows of the console's provider and model pages.

Providers and models belong to no tenant: holding the model's view permission opens the
lists and details (read-only, cost-admin, platform-admin, managers, super-admin); the
writes (add, change, enable/disable, delete, connectivity test, circuit reset) need the
model's add/change/delete permission (platform-admin, managers, super-admin); a model's
prices alone also yield to `providers.change_deployment_prices` (cost-admin). Everyone else
signed in gets 403, never 404 (there is no tenant to hide). Signed out: a page GET redirects
to the sign-in page (302), an htmx request or a POST gets 401.

Successful POSTs: a confirmed action or a valid form answers 303 to the next page; an
invalid form re-renders with its errors (200); the connectivity test without htmx answers
303 back to the provider (its result as a message), with htmx 200 (the result fragment).
"""

from __future__ import annotations

from tests.permission_matrix.rows import pk, row

COLUMNS = (
    "anonymous",
    "staff",
    "read_only",
    "tenant_member",
    "tenant_admin",
    "auditor",
    "cost_admin",
    "security_admin",
    "platform_admin",
    "manager",
    "super_admin",
    "superuser",
)
READERS = frozenset(
    {"read_only", "cost_admin", "platform_admin", "manager", "super_admin", "superuser"}
)
WRITERS = frozenset({"platform_admin", "manager", "super_admin", "superuser"})
# Prices alone: the deployment's change permission or providers.change_deployment_prices.
PRICERS = WRITERS | {"cost_admin"}


def expect(signed_out: int, allowed: frozenset[str], ok: int) -> str:
    """One status per column: `signed_out` for anonymous, `ok` for `allowed`, else 403."""
    return " ".join(
        str(signed_out if role == "anonymous" else ok if role in allowed else 403)
        for role in COLUMNS
    )


PAGE = expect(302, READERS, 200)  # a page only readers may open
WRITE_PAGE = expect(302, WRITERS, 200)  # a form or confirmation writers may open
WRITE_DIALOG = expect(401, WRITERS, 200)  # the confirmation as an htmx dialog
WRITE_DONE = expect(401, WRITERS, 303)  # a POST that did its work and redirects
FORM_INVALID = expect(401, WRITERS, 200)  # a POST whose form is re-rendered with errors

provider = pk("provider")
deployment = pk("deployment")

ROWS = [
    # --- providers ---
    row("console-provider-list", "providers:provider-list", "get", PAGE),
    row(
        "console-provider-list-table",
        "providers:provider-list",
        "get",
        expect(401, READERS, 200),
        htmx=True,
    ),
    row("console-provider-detail", "providers:provider-detail", "get", PAGE, target=provider),
    row("console-provider-add", "providers:provider-add", "get", WRITE_PAGE),
    row(
        "console-provider-add-invalid",
        "providers:provider-add",
        "post",
        FORM_INVALID,
        data={"name": "", "kind": "openai"},
    ),
    row("console-provider-edit", "providers:provider-edit", "get", WRITE_PAGE, target=provider),
    row(
        "console-provider-edit-invalid",
        "providers:provider-edit",
        "post",
        FORM_INVALID,
        target=provider,
        data={"name": "not a slug", "kind": "openai_compatible"},
    ),
    row(
        "console-provider-toggle",
        "providers:provider-toggle",
        "get",
        WRITE_PAGE,
        target=provider,
    ),
    row(
        "console-provider-toggle-dialog",
        "providers:provider-toggle",
        "get",
        WRITE_DIALOG,
        target=provider,
        htmx=True,
    ),
    row(
        "console-provider-toggle-post",
        "providers:provider-toggle",
        "post",
        WRITE_DONE,
        target=provider,
    ),
    row(
        "console-provider-delete",
        "providers:provider-delete",
        "get",
        WRITE_PAGE,
        target=provider,
    ),
    row(
        "console-provider-delete-post",
        "providers:provider-delete",
        "post",
        WRITE_DONE,
        target=provider,
    ),
    row("console-provider-test", "providers:provider-test", "post", WRITE_DONE, target=provider),
    row(
        "console-provider-test-htmx",
        "providers:provider-test",
        "post",
        expect(401, WRITERS, 200),
        target=provider,
        htmx=True,
    ),
    # --- models (deployments) ---
    row("console-deployment-list", "providers:deployment-list", "get", PAGE),
    row(
        "console-deployment-detail",
        "providers:deployment-detail",
        "get",
        PAGE,
        target=deployment,
    ),
    row("console-deployment-add", "providers:deployment-add", "get", WRITE_PAGE),
    row(
        "console-deployment-add-invalid",
        "providers:deployment-add",
        "post",
        FORM_INVALID,
        data={"public_name": "", "input_price": "-1"},
    ),
    row(
        "console-deployment-edit",
        "providers:deployment-edit",
        "get",
        WRITE_PAGE,
        target=deployment,
    ),
    row(
        "console-deployment-edit-invalid",
        "providers:deployment-edit",
        "post",
        FORM_INVALID,
        target=deployment,
        data={"public_name": "", "input_price": "-1"},
    ),
    row(
        "console-deployment-prices",
        "providers:deployment-prices",
        "get",
        expect(302, PRICERS, 200),
        target=deployment,
    ),
    row(
        "console-deployment-prices-invalid",
        "providers:deployment-prices",
        "post",
        expect(401, PRICERS, 200),
        target=deployment,
        data={"input_price": "-1", "output_price": "1"},
    ),
    row(
        "console-deployment-prices-post",
        "providers:deployment-prices",
        "post",
        expect(401, PRICERS, 303),
        target=deployment,
        data={"input_price": "0.5", "output_price": "1.5"},
    ),
    row(
        "console-deployment-toggle",
        "providers:deployment-toggle",
        "get",
        WRITE_PAGE,
        target=deployment,
    ),
    row(
        "console-deployment-toggle-post",
        "providers:deployment-toggle",
        "post",
        WRITE_DONE,
        target=deployment,
    ),
    row(
        "console-deployment-delete",
        "providers:deployment-delete",
        "get",
        WRITE_PAGE,
        target=deployment,
    ),
    row(
        "console-deployment-delete-post",
        "providers:deployment-delete",
        "post",
        WRITE_DONE,
        target=deployment,
    ),
    row(
        "console-deployment-reset-circuit",
        "providers:deployment-reset-circuit",
        "get",
        WRITE_PAGE,
        target=deployment,
    ),
    row(
        "console-deployment-reset-circuit-dialog",
        "providers:deployment-reset-circuit",
        "get",
        WRITE_DIALOG,
        target=deployment,
        htmx=True,
    ),
    row(
        "console-deployment-reset-circuit-post",
        "providers:deployment-reset-circuit",
        "post",
        WRITE_DONE,
        target=deployment,
    ),
]
