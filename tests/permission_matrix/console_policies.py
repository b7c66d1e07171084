"""Rows of the console's policy pages (apps/policies/urls.py).

Reading follows the tenant (apps.tenants.permissions.TENANT_SCOPES): a tenant's members see
its policies and get 404 for another tenant's and for the global ones; holders of
tenants.view_tenant globally, and of policies.view_policy, see every policy. Writing a
tenant's policies takes tenants.change_tenant on it (its admins) or the policies
permissions (security-admin, super-admin); whoever may write none gets 403 before any
policy is looked up. The editor's panels (validate, impact preview, a simulation with the
draft) are writes' business; a simulation of the enabled policies alone is a read.
"""

from __future__ import annotations

from typing import Any

from tests.permission_matrix.rows import Lazy, Row, row
from tests.permission_matrix.world import World

PO = "policies:"

RULES = (
    '[{"id": "no-restricted", "when": [{"attr": "request.classification", "op": "eq", '
    '"value": "restricted"}], "effect": {"type": "deny"}}]'
)


def extend_world(world: World) -> None:
    """A policy of acme's, one of globex's and a global one."""
    from apps.policies import services

    world.extra["policy_acme"] = services.policy_create(
        tenant=world.acme, name="matrix-console-acme", rules=[]
    )
    world.extra["policy_globex"] = services.policy_create(
        tenant=world.globex, name="matrix-console-globex", rules=[]
    )
    world.extra["policy_global"] = services.policy_create(
        tenant=None, name="matrix-console-global", rules=[]
    )


def x(name: str) -> Lazy:
    return lambda w, r: w.extra[name].pk


def editor(tenant: str | None = None, policy: str | None = None) -> Lazy:
    """The editor's fields: a new policy of `tenant` ("" for a global one), or `policy`'s."""

    def data(w: World, r: str) -> dict[str, Any]:
        fields = {
            "name": "matrix-draft",
            "mode": "enforce",
            "priority": "1",
            "enabled": "on",
            "rules": RULES,
        }
        if policy is not None:
            fields["policy"] = str(w.extra[policy].pk)
            fields["name"] = w.extra[policy].name
        else:
            fields["tenant"] = tenant or ""
        return fields

    return data


SAMPLE = {"sample_tenant": "acme", "sample_endpoint": "chat", "sample_classification": "internal"}


def with_draft(policy: str, tenant: str = "acme") -> Lazy:
    """A draft of `policy` simulated on a sample request of its own tenant (a tenant's draft
    is simulated on that tenant's requests only)."""
    sample = {**SAMPLE, "sample_tenant": tenant}
    return lambda w, r: {**sample, **editor(policy=policy)(w, r), "with_draft": "1"}


# fmt: off
ROWS: list[Row] = [
    #    id                                      URL name                    method  an  st  ro  tm  ta  au  co  se  pl  mg  sa  su
    row("console policies",                      PO + "policy-list",         "get",  "302 403 200 200 200 403 200 200 200 200 200 200"),
    row("console policies htmx",                 PO + "policy-list",         "get",  "401 403 200 200 200 403 200 200 200 200 200 200", htmx=True, query={"tenant": "acme"}),
    row("console policy add form",               PO + "policy-add",          "get",  "302 403 403 403 200 403 403 200 403 200 200 200"),
    row("console policy add",                    PO + "policy-add",          "post", "401 403 403 403 303 403 403 303 403 303 303 303", data=editor("acme")),
    row("console other policy add",              PO + "policy-add",          "post", "401 403 403 403 200 403 403 303 403 303 303 303", data=editor("globex")),
    row("console global policy add",             PO + "policy-add",          "post", "401 403 403 403 200 403 403 303 403 303 303 303", data=editor("")),
    row("console own policy",                    PO + "policy-detail",       "get",  "302 403 200 200 200 403 200 200 200 200 200 200", target=x("policy_acme")),
    row("console other policy",                  PO + "policy-detail",       "get",  "302 403 200 404 404 403 200 200 200 200 200 200", target=x("policy_globex")),
    row("console global policy",                 PO + "policy-detail",       "get",  "302 403 200 404 404 403 200 200 200 200 200 200", target=x("policy_global")),
    row("console own policy edit form",          PO + "policy-edit",         "get",  "302 403 403 403 200 403 403 200 403 200 200 200", target=x("policy_acme")),
    row("console own policy edit",               PO + "policy-edit",         "post", "401 403 403 403 303 403 403 303 403 303 303 303", target=x("policy_acme"), data=editor(policy="policy_acme")),
    row("console other policy edit",             PO + "policy-edit",         "post", "401 403 403 403 404 403 403 303 403 303 303 303", target=x("policy_globex"), data=editor(policy="policy_globex")),
    row("console global policy edit",            PO + "policy-edit",         "post", "401 403 403 403 404 403 403 303 403 303 303 303", target=x("policy_global"), data=editor(policy="policy_global")),
    row("console own policy delete confirm",     PO + "policy-delete",       "get",  "302 403 403 403 200 403 403 200 403 200 200 200", target=x("policy_acme")),
    row("console own policy delete",             PO + "policy-delete",       "post", "401 403 403 403 303 403 403 303 403 303 303 303", target=x("policy_acme")),
    row("console other policy delete",           PO + "policy-delete",       "post", "401 403 403 403 404 403 403 303 403 303 303 303", target=x("policy_globex")),
    row("console global policy delete",          PO + "policy-delete",       "post", "401 403 403 403 404 403 403 303 403 303 303 303", target=x("policy_global")),
    row("console policy simulate form",          PO + "policy-simulate",     "get",  "302 403 200 200 200 403 200 200 200 200 200 200"),
    row("console policy simulate",               PO + "policy-simulate",     "post", "401 403 200 200 200 403 200 200 200 200 200 200", data=SAMPLE),
    row("console policy simulate htmx",          PO + "policy-simulate",     "post", "401 403 200 200 200 403 200 200 200 200 200 200", data=SAMPLE, htmx=True),
    row("console own policy draft simulate",     PO + "policy-simulate",     "post", "401 403 403 403 200 403 403 200 403 200 200 200", data=with_draft("policy_acme")),
    row("console other policy draft simulate",   PO + "policy-simulate",     "post", "401 403 403 403 404 403 403 200 403 200 200 200", data=with_draft("policy_globex", "globex")),
    row("console own policy validate",           PO + "policy-validate",     "post", "401 403 403 403 200 403 403 200 403 200 200 200", data=editor(policy="policy_acme"), htmx=True),
    row("console other policy validate",         PO + "policy-validate",     "post", "401 403 403 403 404 403 403 200 403 200 200 200", data=editor(policy="policy_globex"), htmx=True),
    row("console new policy validate",           PO + "policy-validate",     "post", "401 403 403 403 200 403 403 200 403 200 200 200", data=editor("acme")),
    row("console own policy impact",             PO + "policy-impact",       "post", "401 403 403 403 200 403 403 200 403 200 200 200", data=editor(policy="policy_acme"), htmx=True),
    row("console other policy impact",           PO + "policy-impact",       "post", "401 403 403 403 404 403 403 200 403 200 200 200", data=editor(policy="policy_globex")),
    row("console global policy impact",          PO + "policy-impact",       "post", "401 403 403 403 404 403 403 200 403 200 200 200", data=editor(policy="policy_global")),
]
# fmt: on
