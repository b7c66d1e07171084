"""Rows of the console's spend, savings, rate limit, budget, budget alert and notifier pages
(apps/costs/urls.py).

Reading follows the tenant: a tenant's members see its rows and get 404 for another
tenant's, and for rows of no tenant (a plan's limits, a platform notifier); holders of
tenants.view_tenant globally see every tenant's, and so do the costs permissions' holders.
Changing is global only (the cost-admin role, super-admin): whoever may change no row at
all gets 403 before any row is looked up. The spend pages read as the usage API does
(costs.view_usagerollup, or tenants.view_tenant on a tenant); another tenant in their filter
is not a valid choice, so the page shows no figures (200), as the lists' filters do.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from tests.permission_matrix.rows import Lazy, Row, row
from tests.permission_matrix.world import World

C = "costs:"


def extend_world(world: World) -> None:
    """Limits of a project of acme's, one of globex's and of a plan; a budget and an alert
    of each tenant; a notifier of each tenant and one of the platform; a day of spend of
    each tenant, rolled up, for the spend pages."""
    from apps.costs import services
    from apps.costs.models import BudgetAlert, UsageRecord
    from apps.costs.rollups import rollup_run

    acme, globex = world.acme, world.globex
    extra = world.extra
    # Projects' limits and the enterprise plan's: the API rows' world has the tenants' and
    # the free plan's, and there is one row per target.
    extra["limit_a"] = services.rate_limit_create(
        scope="project", project=world.project_a, requests_per_minute=100
    )
    extra["limit_b"] = services.rate_limit_create(
        scope="project", project=world.project_b, requests_per_minute=100
    )
    extra["limit_plan"] = services.rate_limit_create(
        scope="plan", plan="enterprise", requests_per_minute=10
    )
    extra["budget_a"] = services.budget_create(
        scope="tenant", tenant=acme, name="acme budget", limit_usd=10
    )
    extra["budget_b"] = services.budget_create(
        scope="tenant", tenant=globex, name="globex budget", limit_usd=10
    )
    for tenant, name in ((acme, "a"), (globex, "b")):
        extra[f"alert_{name}"] = BudgetAlert.objects.create(
            budget=extra[f"budget_{name}"],
            tenant=tenant,
            period_start=timezone.now() - timedelta(days=1),
            threshold=50,
            spent_usd=Decimal(5),
            limit_usd=Decimal(10),
        )
    extra["notifier_a"] = services.notifier_create(
        name="acme mail", kind="email", tenant=acme, target="ops@acme.example"
    )
    extra["notifier_b"] = services.notifier_create(
        name="globex mail", kind="email", tenant=globex, target="ops@globex.example"
    )
    for tenant, key in ((acme, world.key_a), (globex, world.key_b)):
        UsageRecord.objects.create(
            request_id=f"matrix-spend-{tenant.slug}",
            created_at=timezone.now() - timedelta(days=1),
            tenant_id=tenant.pk,
            api_key_id=key.pk,
            model=world.deployment.public_name,
            provider_id=world.deployment.provider_id,
            deployment_id=world.deployment.pk,
            input_tokens=100,
            output_tokens=50,
            cost_usd=Decimal("0.0002"),
        )
    rollup_run()
    extra["notifier_all"] = services.notifier_create(
        name="platform hook",
        kind="webhook",
        target="https://hooks.example.com/atp",
        secret="matrix-secret-0123456789",
    )


def x(name: str) -> Lazy:
    return lambda w, r: w.extra[name].pk


def limit_for_key(w: World, r: str) -> dict[str, Any]:
    return {"target": f"key:{w.key_a.pk}", "requests_per_minute": "10"}


LIMIT_PLAN = {"target": "plan:premium", "requests_per_minute": "10"}
LIMIT_EDIT = {"requests_per_minute": "50"}
BUDGET_NEW = {
    "target": "tenant:acme",
    "name": "matrix-new",
    "period": "monthly",
    "limit_usd": "10",
    "action": "block",
}
BUDGET_EDIT = {
    "name": "matrix budget",
    "period": "monthly",
    "limit_usd": "20",
    "action": "block",
    "enabled": "on",
}
NOTIFIER_NEW = {"name": "matrix-new", "kind": "email", "tenant": "acme", "target": "a@acme.example"}
NOTIFIER_ALL = {"name": "matrix-all", "kind": "email", "target": "a@atp.example"}
NOTIFIER_EDIT = {"name": "matrix mail", "target": "ops@acme.example", "enabled": "on"}
HOOK_EDIT = {"name": "matrix hook", "target": "https://hooks.example.com/new", "enabled": "on"}

# fmt: off
ROWS: list[Row] = [
    #    id                                      URL name                    method  an  st  ro  tm  ta  au  co  se  pl  mg  sa  su
    # --- spend and savings (reads; a tenant's members see their own) ----------------------------------------------------------------------
    row("console spend",                         C + "spend",                "get",  "302 403 200 200 200 403 200 200 200 200 200 200"),
    row("console own spend",                     C + "spend",                "get",  "302 403 200 200 200 403 200 200 200 200 200 200", query={"tenant": "acme", "days": "7"}),
    row("console other spend",                   C + "spend",                "get",  "302 403 200 200 200 403 200 200 200 200 200 200", query={"tenant": "globex"}),
    row("console spend htmx",                    C + "spend",                "get",  "401 403 200 200 200 403 200 200 200 200 200 200", htmx=True, query={"days": "90"}),
    row("console savings",                       C + "spend-savings",        "get",  "302 403 200 200 200 403 200 200 200 200 200 200"),
    row("console own savings",                   C + "spend-savings",        "get",  "302 403 200 200 200 403 200 200 200 200 200 200", query={"tenant": "acme", "months": "3"}),
    row("console other savings",                 C + "spend-savings",        "get",  "302 403 200 200 200 403 200 200 200 200 200 200", query={"tenant": "globex"}),
    # --- rate limits ---------------------------------------------------------------------------------------------------------------------
    row("console rate limits",                   C + "ratelimit-list",       "get",  "302 403 200 200 200 403 200 200 200 200 200 200"),
    row("console rate limits htmx",              C + "ratelimit-list",       "get",  "401 403 200 200 200 403 200 200 200 200 200 200", htmx=True, query={"scope": "tenant"}),
    row("console rate limit add form",           C + "ratelimit-add",        "get",  "302 403 403 403 403 403 200 403 403 403 200 200"),
    row("console rate limit add",                C + "ratelimit-add",        "post", "401 403 403 403 403 403 303 403 403 403 303 303", data=limit_for_key),
    row("console plan rate limit add",           C + "ratelimit-add",        "post", "401 403 403 403 403 403 303 403 403 403 303 303", data=LIMIT_PLAN),
    row("console own rate limit",                C + "ratelimit-detail",     "get",  "302 403 200 200 200 403 200 200 200 200 200 200", target=x("limit_a")),
    row("console other rate limit",              C + "ratelimit-detail",     "get",  "302 403 200 404 404 403 200 200 200 200 200 200", target=x("limit_b")),
    row("console plan rate limit",               C + "ratelimit-detail",     "get",  "302 403 200 404 404 403 200 200 200 200 200 200", target=x("limit_plan")),
    row("console own rate limit edit form",      C + "ratelimit-edit",       "get",  "302 403 403 403 403 403 200 403 403 403 200 200", target=x("limit_a")),
    row("console own rate limit edit",           C + "ratelimit-edit",       "post", "401 403 403 403 403 403 303 403 403 403 303 303", target=x("limit_a"), data=LIMIT_EDIT),
    row("console plan rate limit edit",          C + "ratelimit-edit",       "post", "401 403 403 403 403 403 303 403 403 403 303 303", target=x("limit_plan"), data=LIMIT_EDIT),
    row("console own rate limit delete confirm", C + "ratelimit-delete",     "get",  "302 403 403 403 403 403 200 403 403 403 200 200", target=x("limit_a")),
    row("console own rate limit delete",         C + "ratelimit-delete",     "post", "401 403 403 403 403 403 303 403 403 403 303 303", target=x("limit_a")),
    row("console other rate limit delete",       C + "ratelimit-delete",     "post", "401 403 403 403 403 403 303 403 403 403 303 303", target=x("limit_b")),
    # --- budgets -------------------------------------------------------------------------------------------------------------------------
    row("console budgets",                       C + "budget-list",          "get",  "302 403 200 200 200 403 200 200 200 200 200 200"),
    row("console budgets htmx",                  C + "budget-list",          "get",  "401 403 200 200 200 403 200 200 200 200 200 200", htmx=True, query={"tenant": "acme"}),
    row("console budget add form",               C + "budget-add",           "get",  "302 403 403 403 403 403 200 403 403 403 200 200"),
    row("console budget add",                    C + "budget-add",           "post", "401 403 403 403 403 403 303 403 403 403 303 303", data=BUDGET_NEW),
    row("console own budget",                    C + "budget-detail",        "get",  "302 403 200 200 200 403 200 200 200 200 200 200", target=x("budget_a")),
    row("console other budget",                  C + "budget-detail",        "get",  "302 403 200 404 404 403 200 200 200 200 200 200", target=x("budget_b")),
    row("console own budget edit form",          C + "budget-edit",          "get",  "302 403 403 403 403 403 200 403 403 403 200 200", target=x("budget_a")),
    row("console own budget edit",               C + "budget-edit",          "post", "401 403 403 403 403 403 303 403 403 403 303 303", target=x("budget_a"), data=BUDGET_EDIT),
    row("console other budget edit",             C + "budget-edit",          "post", "401 403 403 403 403 403 303 403 403 403 303 303", target=x("budget_b"), data=BUDGET_EDIT),
    row("console own budget delete confirm",     C + "budget-delete",        "get",  "302 403 403 403 403 403 200 403 403 403 200 200", target=x("budget_a")),
    row("console own budget delete",             C + "budget-delete",        "post", "401 403 403 403 403 403 303 403 403 403 303 303", target=x("budget_a")),
    # --- budget alerts (records: read only) ----------------------------------------------------------------------------------------------
    row("console budget alerts",                 C + "budgetalert-list",     "get",  "302 403 200 200 200 403 200 200 200 200 200 200"),
    row("console budget alerts htmx",            C + "budgetalert-list",     "get",  "401 403 200 200 200 403 200 200 200 200 200 200", htmx=True, query={"tenant": "acme"}),
    row("console own budget alert",              C + "budgetalert-detail",   "get",  "302 403 200 200 200 403 200 200 200 200 200 200", target=x("alert_a")),
    row("console other budget alert",            C + "budgetalert-detail",   "get",  "302 403 200 404 404 403 200 200 200 200 200 200", target=x("alert_b")),
    # --- notifiers -----------------------------------------------------------------------------------------------------------------------
    row("console notifiers",                     C + "notifier-list",        "get",  "302 403 200 200 200 403 200 200 200 200 200 200"),
    row("console notifier add form",             C + "notifier-add",         "get",  "302 403 403 403 403 403 200 403 403 403 200 200"),
    row("console notifier add",                  C + "notifier-add",         "post", "401 403 403 403 403 403 303 403 403 403 303 303", data=NOTIFIER_NEW),
    row("console platform notifier add",         C + "notifier-add",         "post", "401 403 403 403 403 403 303 403 403 403 303 303", data=NOTIFIER_ALL),
    row("console own notifier edit form",        C + "notifier-edit",        "get",  "302 403 403 403 403 403 200 403 403 403 200 200", target=x("notifier_a")),
    row("console own notifier edit",             C + "notifier-edit",        "post", "401 403 403 403 403 403 303 403 403 403 303 303", target=x("notifier_a"), data=NOTIFIER_EDIT),
    row("console platform notifier edit",        C + "notifier-edit",        "post", "401 403 403 403 403 403 303 403 403 403 303 303", target=x("notifier_all"), data=HOOK_EDIT),
    row("console own notifier delete confirm",   C + "notifier-delete",      "get",  "302 403 403 403 403 403 200 403 403 403 200 200", target=x("notifier_a")),
    row("console other notifier delete confirm", C + "notifier-delete",      "get",  "401 403 403 403 403 403 200 403 403 403 200 200", target=x("notifier_b"), htmx=True),
    row("console own notifier delete",           C + "notifier-delete",      "post", "401 403 403 403 403 403 303 403 403 403 303 303", target=x("notifier_a")),
]
# fmt: on
