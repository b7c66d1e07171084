"""Rows of the costs management API (apps/costs/api/urls.py): rate limits, budgets, budget
alerts, notifiers, and usage with its forecast and savings. They sit in a console_*.py module so rows.py gathers them; being under
/api/, they are called as API clients call.

A tenant's members see its rows (tenants.view_tenant, also held globally by several roles);
writes need the global costs permissions (cost-admin, super-admin). Rows of another tenant,
a plan's limits and notifiers of every tenant are not found (404) by acme's tenant roles;
a write by someone without the permission is a 403 whichever row it addresses.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from tests.permission_matrix.rows import Lazy, Row, row
from tests.permission_matrix.world import World

C = "costs-api:"


def extend_world(world: World) -> None:
    """Limits, a budget with an alert and a notifier of acme and globex, plus rows of no
    tenant (the free plan's limits, a notifier of every tenant). One row per limit target:
    console_costs.py's world takes the projects' and the enterprise plan's."""
    from apps.costs import services
    from apps.costs.models import BudgetAlert

    extra = world.extra
    extra["api_limit_plan"] = services.rate_limit_create(
        scope="plan", plan="free", requests_per_minute=60
    )
    for name, tenant in (("acme", world.acme), ("globex", world.globex)):
        extra[f"api_limit_{name}"] = services.rate_limit_create(
            scope="tenant", tenant=tenant, requests_per_minute=600
        )
        budget = services.budget_create(scope="tenant", tenant=tenant, name="api-m", limit_usd=10)
        extra[f"api_budget_{name}"] = budget
        extra[f"api_alert_{name}"] = BudgetAlert.objects.create(
            budget=budget,
            tenant=tenant,
            period_start=timezone.now() - timedelta(days=1),
            threshold=50,
            spent_usd=Decimal(5),
            limit_usd=budget.limit_usd,
        )
        extra[f"api_notifier_{name}"] = services.notifier_create(
            name=f"api-{name}", kind="email", tenant=tenant, target=f"ops@{name}.example"
        )
    extra["api_notifier_all"] = services.notifier_create(
        name="api-hook", kind="webhook", target="https://hooks.example/atp", secret="whsec-matrix"
    )


def obj(name: str) -> Lazy:
    return lambda w, r: w.extra[name].pk


def limit_on(key: str) -> Lazy:
    return lambda w, r: {"scope": "key", "api_key": str(getattr(w, key).pk), "max_concurrent": 2}


def budget_on(tenant: str) -> Lazy:
    def data(w: World, r: str) -> dict[str, Any]:
        tenant_id = str(getattr(w, tenant).pk)
        return {"scope": "tenant", "tenant": tenant_id, "name": "new", "limit_usd": "5"}

    return data


def notifier_of(tenant: str | None) -> Lazy:
    def data(w: World, r: str) -> dict[str, Any]:
        body: dict[str, Any] = {"name": "api-new", "kind": "email", "target": "x@example.com"}
        if tenant:
            body["tenant"] = str(getattr(w, tenant).pk)
        return body

    return data


# Columns:  anon staff read tmem tadm audi cost secu plat mgr  sadm super
# fmt: off
ROWS: list[Row] = [
    #    id                                  URL name                     method    an  st  ro  tm  ta  au  co  se  pl  mg  sa  su
    # --- rate limits ----------------------------------------------------------------------------------------------------------
    row("rate limit list",                   C + "rate-limit-list",       "get",    "401 403 200 200 200 403 200 200 200 200 200 200"),
    row("rate limit create",                 C + "rate-limit-list",       "post",   "401 403 403 403 403 403 201 403 403 403 201 201", data=limit_on("key_a")),
    row("rate limit create elsewhere",       C + "rate-limit-list",       "post",   "401 403 403 403 403 403 201 403 403 403 201 201", data=limit_on("key_b")),
    row("plan rate limit create",            C + "rate-limit-list",       "post",   "401 403 403 403 403 403 201 403 403 403 201 201", data={"scope": "plan", "plan": "premium"}),
    row("own rate limit",                    C + "rate-limit-detail",     "get",    "401 403 200 200 200 403 200 200 200 200 200 200", target=obj("api_limit_acme")),
    row("other rate limit",                  C + "rate-limit-detail",     "get",    "401 403 200 404 404 403 200 200 200 200 200 200", target=obj("api_limit_globex")),
    row("plan rate limit",                   C + "rate-limit-detail",     "get",    "401 403 200 404 404 403 200 200 200 200 200 200", target=obj("api_limit_plan")),
    row("own rate limit put",                C + "rate-limit-detail",     "put",    "401 403 403 403 403 403 200 403 403 403 200 200", target=obj("api_limit_acme"), data={"requests_per_minute": 5}),
    row("own rate limit patch",              C + "rate-limit-detail",     "patch",  "401 403 403 403 403 403 200 403 403 403 200 200", target=obj("api_limit_acme"), data={"max_concurrent": 5}),
    row("other rate limit patch",            C + "rate-limit-detail",     "patch",  "401 403 403 403 403 403 200 403 403 403 200 200", target=obj("api_limit_globex"), data={"max_concurrent": 5}),
    row("plan rate limit patch",             C + "rate-limit-detail",     "patch",  "401 403 403 403 403 403 200 403 403 403 200 200", target=obj("api_limit_plan"), data={"max_concurrent": 5}),
    row("own rate limit delete",             C + "rate-limit-detail",     "delete", "401 403 403 403 403 403 204 403 403 403 204 204", target=obj("api_limit_acme")),
    row("plan rate limit delete",            C + "rate-limit-detail",     "delete", "401 403 403 403 403 403 204 403 403 403 204 204", target=obj("api_limit_plan")),
    # --- budgets --------------------------------------------------------------------------------------------------------------
    row("budget list",                       C + "budget-list",           "get",    "401 403 200 200 200 403 200 200 200 200 200 200"),
    row("budget create",                     C + "budget-list",           "post",   "401 403 403 403 403 403 201 403 403 403 201 201", data=budget_on("acme")),
    row("budget create elsewhere",           C + "budget-list",           "post",   "401 403 403 403 403 403 201 403 403 403 201 201", data=budget_on("globex")),
    row("own budget",                        C + "budget-detail",         "get",    "401 403 200 200 200 403 200 200 200 200 200 200", target=obj("api_budget_acme")),
    row("other budget",                      C + "budget-detail",         "get",    "401 403 200 404 404 403 200 200 200 200 200 200", target=obj("api_budget_globex")),
    row("own budget put",                    C + "budget-detail",         "put",    "401 403 403 403 403 403 200 403 403 403 200 200", target=obj("api_budget_acme"), data={"name": "api-m", "limit_usd": "20"}),
    row("own budget patch",                  C + "budget-detail",         "patch",  "401 403 403 403 403 403 200 403 403 403 200 200", target=obj("api_budget_acme"), data={"enabled": False}),
    row("other budget patch",                C + "budget-detail",         "patch",  "401 403 403 403 403 403 200 403 403 403 200 200", target=obj("api_budget_globex"), data={"enabled": False}),
    row("own budget delete",                 C + "budget-detail",         "delete", "401 403 403 403 403 403 204 403 403 403 204 204", target=obj("api_budget_acme")),
    row("other budget delete",               C + "budget-detail",         "delete", "401 403 403 403 403 403 204 403 403 403 204 204", target=obj("api_budget_globex")),
    # --- budget alerts (read-only) --------------------------------------------------------------------------------------------
    row("budget alert list",                 C + "budget-alert-list",     "get",    "401 403 200 200 200 403 200 200 200 200 200 200"),
    row("own budget alert",                  C + "budget-alert-detail",   "get",    "401 403 200 200 200 403 200 200 200 200 200 200", target=obj("api_alert_acme")),
    row("other budget alert",                C + "budget-alert-detail",   "get",    "401 403 200 404 404 403 200 200 200 200 200 200", target=obj("api_alert_globex")),
    # --- notifiers (the secret is write-only) ---------------------------------------------------------------------------------
    row("notifier list",                     C + "notifier-list",         "get",    "401 403 200 200 200 403 200 200 200 200 200 200"),
    row("notifier create",                   C + "notifier-list",         "post",   "401 403 403 403 403 403 201 403 403 403 201 201", data=notifier_of("acme")),
    row("notifier create for all",           C + "notifier-list",         "post",   "401 403 403 403 403 403 201 403 403 403 201 201", data=notifier_of(None)),
    row("own notifier",                      C + "notifier-detail",       "get",    "401 403 200 200 200 403 200 200 200 200 200 200", target=obj("api_notifier_acme")),
    row("other notifier",                    C + "notifier-detail",       "get",    "401 403 200 404 404 403 200 200 200 200 200 200", target=obj("api_notifier_globex")),
    row("notifier for all",                  C + "notifier-detail",       "get",    "401 403 200 404 404 403 200 200 200 200 200 200", target=obj("api_notifier_all")),
    row("own notifier put",                  C + "notifier-detail",       "put",    "401 403 403 403 403 403 200 403 403 403 200 200", target=obj("api_notifier_acme"), data={"name": "api-acme", "target": "a@example.com"}),
    row("own notifier patch",                C + "notifier-detail",       "patch",  "401 403 403 403 403 403 200 403 403 403 200 200", target=obj("api_notifier_acme"), data={"enabled": False}),
    row("notifier for all patch",            C + "notifier-detail",       "patch",  "401 403 403 403 403 403 200 403 403 403 200 200", target=obj("api_notifier_all"), data={"enabled": False}),
    row("own notifier delete",               C + "notifier-detail",       "delete", "401 403 403 403 403 403 204 403 403 403 204 204", target=obj("api_notifier_acme")),
    row("notifier for all delete",           C + "notifier-detail",       "delete", "401 403 403 403 403 403 204 403 403 403 204 204", target=obj("api_notifier_all")),
    # --- usage, forecast and savings (reads; a tenant's members see their own) --------------------------------------------------
    row("usage",                             C + "usage",                 "get",    "401 403 200 200 200 403 200 200 200 200 200 200"),
    row("own usage",                         C + "usage",                 "get",    "401 403 200 200 200 403 200 200 200 200 200 200", query={"tenant": "acme", "group_by": "model,day"}),
    row("other usage",                       C + "usage",                 "get",    "401 403 200 400 400 403 200 200 200 200 200 200", query={"tenant": "globex"}),
    row("usage csv",                         C + "usage",                 "get",    "401 403 200 200 200 403 200 200 200 200 200 200", query={"format": "csv", "group_by": "tenant"}),
    row("own forecast",                      C + "usage-forecast",        "get",    "401 403 200 200 200 403 200 200 200 200 200 200", query={"tenant": "acme"}),
    row("other forecast",                    C + "usage-forecast",        "get",    "401 403 200 400 400 403 200 200 200 200 200 200", query={"tenant": "globex"}),
    row("own savings",                       C + "usage-savings",         "get",    "401 403 200 200 200 403 200 200 200 200 200 200", query={"tenant": "acme"}),
    row("other savings",                     C + "usage-savings",         "get",    "401 403 200 400 400 403 200 200 200 200 200 200", query={"tenant": "globex"}),
]
# fmt: on
