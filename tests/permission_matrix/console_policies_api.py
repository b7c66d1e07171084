"""Rows of the policies management API (apps/policies/api/urls.py): CRUD, validate, simulate and
impact. They sit in a console_*.py module so rows.py gathers them; being under /api/, they are
called as API clients call.

A tenant's members see its policies (tenants.view_tenant, also held globally by several
roles); its admins write them (tenants.change_tenant, also held globally by the managers);
the global `policies.*` permissions (security-admin, super-admin) cover every policy, those
of no tenant included. Policies of another tenant and of no tenant are not found (404) by
acme's tenant roles; a tenant named in a body that the caller may not see reads as one that
does not exist (400 naming `tenant`).
"""

from __future__ import annotations

from typing import Any

from tests.permission_matrix.rows import Lazy, Row, row
from tests.permission_matrix.world import World

P = "policies-api:"
RULES = [
    {
        "id": "no-secrets",
        "when": [{"attr": "request.entities", "op": "contains", "value": "SECRET"}],
        "effect": {"type": "deny", "message": "Secrets stay home."},
    }
]


def extend_world(world: World) -> None:
    """A policy of acme, one of globex and a global one."""
    from apps.policies import services

    extra = world.extra
    extra["abac_acme"] = services.policy_create(tenant=world.acme, name="m-acme", rules=RULES)
    extra["abac_globex"] = services.policy_create(tenant=world.globex, name="m-globex", rules=RULES)
    extra["abac_all"] = services.policy_create(name="m-all", rules=RULES)


def obj(name: str) -> Lazy:
    return lambda w, r: w.extra[name].pk


def policy_of(tenant: str | None) -> Lazy:
    def data(w: World, r: str) -> dict[str, Any]:
        body: dict[str, Any] = {"name": "m-new", "rules": RULES}
        if tenant:
            body["tenant"] = str(getattr(w, tenant).pk)
        return body

    return data


def named(tenant: str | None, **more: Any) -> dict[str, Any]:
    return ({"tenant": tenant} if tenant else {}) | more


DRAFT = {"name": "d", "rules": RULES}
SAMPLE = {"entities": ["SECRET"]}

# Columns:  anon staff read tmem tadm audi cost secu plat mgr  sadm super
# fmt: off
ROWS: list[Row] = [
    #    id                                  URL name                     method    an  st  ro  tm  ta  au  co  se  pl  mg  sa  su
    row("abac policy list",                       P + "policy-list",           "get",    "401 403 200 200 200 403 200 200 200 200 200 200"),
    row("abac policy create",                     P + "policy-list",           "post",   "401 403 403 403 201 403 403 201 403 201 201 201", data=policy_of("acme")),
    row("abac policy create elsewhere",           P + "policy-list",           "post",   "401 403 403 403 400 403 403 201 403 201 201 201", data=policy_of("globex")),
    row("abac global policy create",              P + "policy-list",           "post",   "401 403 403 403 403 403 403 201 403 201 201 201", data=policy_of(None)),
    row("abac own policy",                        P + "policy-detail",         "get",    "401 403 200 200 200 403 200 200 200 200 200 200", target=obj("abac_acme")),
    row("abac other policy",                      P + "policy-detail",         "get",    "401 403 200 404 404 403 200 200 200 200 200 200", target=obj("abac_globex")),
    row("abac global policy",                     P + "policy-detail",         "get",    "401 403 200 404 404 403 200 200 200 200 200 200", target=obj("abac_all")),
    row("abac own policy put",                    P + "policy-detail",         "put",    "401 403 403 403 200 403 403 200 403 200 200 200", target=obj("abac_acme"), data={"name": "m-acme", "rules": RULES, "priority": 2}),
    row("abac own policy patch",                  P + "policy-detail",         "patch",  "401 403 403 403 200 403 403 200 403 200 200 200", target=obj("abac_acme"), data={"enabled": False}),
    row("abac other policy patch",                P + "policy-detail",         "patch",  "401 403 403 403 404 403 403 200 403 200 200 200", target=obj("abac_globex"), data={"enabled": False}),
    row("abac global policy patch",               P + "policy-detail",         "patch",  "401 403 403 403 404 403 403 200 403 200 200 200", target=obj("abac_all"), data={"enabled": False}),
    row("abac own policy delete",                 P + "policy-detail",         "delete", "401 403 403 403 204 403 403 204 403 204 204 204", target=obj("abac_acme")),
    row("abac global policy delete",              P + "policy-detail",         "delete", "401 403 403 403 404 403 403 204 403 204 204 204", target=obj("abac_all")),
    # --- validate and simulate (reads), impact (a preview for those who may add policies) ----------------------------------------
    row("abac policy validate",                   P + "policy-validate",       "post",   "401 403 200 200 200 403 200 200 200 200 200 200", data=named("acme", **DRAFT)),
    row("abac policy validate elsewhere",         P + "policy-validate",       "post",   "401 403 200 400 400 403 200 200 200 200 200 200", data=named("globex", **DRAFT)),
    row("abac global policy validate",            P + "policy-validate",       "post",   "401 403 200 403 403 403 200 200 200 200 200 200", data=DRAFT),
    row("abac policy simulate",                   P + "policy-simulate",       "post",   "401 403 200 200 200 403 200 200 200 200 200 200", data={"tenant": "acme", "request": SAMPLE}),
    row("abac policy simulate elsewhere",         P + "policy-simulate",       "post",   "401 403 200 400 400 403 200 200 200 200 200 200", data={"tenant": "globex", "request": SAMPLE}),
    row("abac policy simulate drafts",            P + "policy-simulate",       "post",   "401 403 403 403 200 403 403 200 403 200 200 200", data={"tenant": "acme", "request": SAMPLE, "policies": [DRAFT]}),
    row("abac policy impact",                     P + "policy-impact",         "post",   "401 403 403 403 200 403 403 200 403 200 200 200", data={"tenant": "acme", "policy": DRAFT, "last": 10}),
    row("abac policy impact elsewhere",           P + "policy-impact",         "post",   "401 403 403 403 400 403 403 200 403 200 200 200", data={"tenant": "globex", "policy": DRAFT, "last": 10}),
    row("abac global policy impact",              P + "policy-impact",         "post",   "401 403 403 403 403 403 403 200 403 200 200 200", data={"policy": DRAFT, "last": 10}),
]
# fmt: on
