"""The permission matrix as data: one row per endpoint or page, method and target; one status
per role.

Columns follow world.ROLES:

    anonymous       no credentials
    staff           is_staff, no permission (is_staff only opens the Django admin)
    read_only       the read-only role (group)
    tenant_member   tenant-member of acme (django-guardian), nothing global
    tenant_admin    tenant-admin of acme (django-guardian), nothing global
    auditor         the auditor role
    cost_admin      the cost-admin role
    security_admin  the security-admin role
    platform_admin  the platform-admin role
    manager         staff in `atp-managers` (what the upgrade gives staff); on the API by
                    admin token, on console pages by session
    super_admin     the super-admin role
    superuser       everything, implicitly

apps/tenants/roles.py and docs/permissions.md say what each role holds.

Status rules: 401 without credentials, 403 without the permission, 404 for an object
outside the tenants the caller may see; a tenant named in a body or query that the caller
may not see reads as one that does not exist (400 naming the field). The dedicated
permissions (provider credentials, tokens for others, data-subject erasure, retention of
audit classifications, stored bodies) belong to no role, super-admin included, so only the
superuser passes those rows. Console pages: signed out, a GET is a 302 to the sign-in page
with ?next= (the runner checks where it goes) and an htmx or other request a 401.

Every (URL name, method) outside test_permission_matrix.EXCLUDED must have at least one row;
a new endpoint or page without one fails tests/test_permission_matrix.py. HEAD and OPTIONS are
answered as GET. To add a role: add it to world.ROLES and a column to every row.

Console pages: put their rows in a module `console_<app>.py` beside this one, defining
`ROWS` built with this module's `row()` (and `pk`, `seq`, ...), and, if the rows address
objects the world lacks, `extend_world(world)` adding them to `world.extra`. They are
gathered here; a row whose URL is not under /api/ is called as a browser would: a session,
form-encoded bodies, `htmx=True` adds the `HX-Request` header.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.permission_matrix.world import ROLES, SUBJECT, World

# A value computed from the world and the acting role.
Lazy = Callable[[World, str], Any]


@dataclass(frozen=True)
class Row:
    id: str
    url: str  # namespaced URL name
    method: str
    expect: dict[str, int]
    target: Lazy | None = None  # the URL's object id
    lookup: str = "pk"
    data: Lazy | None = None  # JSON body (API) or form fields (console)
    query: Lazy | None = None  # query string
    kwargs: Lazy | None = None  # more URL kwargs
    htmx: bool = False  # send HX-Request: true

    @property
    def label(self) -> str:
        return f"{self.id} ({self.method.upper()} {self.url}{' htmx' if self.htmx else ''})"

    def value(self, attr: str, world: World, role: str) -> Any:
        found = getattr(self, attr)
        return found(world, role) if callable(found) else found


def row(
    id: str,
    url: str,
    method: str,
    expect: str,
    *,
    target: Lazy | None = None,
    lookup: str = "pk",
    data: Lazy | dict | None = None,
    query: Lazy | dict | None = None,
    kwargs: Lazy | dict | None = None,
    htmx: bool = False,
) -> Row:
    """A row: `expect` is one status per column of world.ROLES, separated by spaces.

    `target` gives the URL's `lookup` kwarg (default `pk`), `kwargs` any others; `data`,
    `query` and `kwargs` are values or callables `(world, role) -> value`.
    """
    statuses = [int(s) for s in expect.split()]
    assert len(statuses) == len(ROLES), f"{id}: one status per role in {ROLES}"

    def lazy(value: Any) -> Lazy | None:
        if value is None or callable(value):
            return value
        return lambda w, r: value

    expected = dict(zip(ROLES, statuses, strict=True))
    return Row(
        id, url, method, expected, target, lookup, lazy(data), lazy(query), lazy(kwargs), htmx
    )


def pk(attr: str) -> Lazy:
    return lambda w, r: getattr(w, attr).pk


def seq(attr: str) -> Lazy:
    return lambda w, r: getattr(w, attr).sequence


def own_token(w: World, role: str) -> Any:
    return w.own_token(role).pk


def outsider_token(w: World, role: str) -> Any:
    return w.tokens["outsider"][0].pk


PERIOD = {"since": "2000-01-01", "until": "2100-01-01"}


def subject(tenant: str) -> dict[str, str]:
    return {"tenant": tenant, "subject": SUBJECT}


T = "tenants-api:"
P = "providers-api:"
A = "audit-api:"
R = "routing-api:"
C = "costs-api:"


def price_versions_of(w: World, role: str) -> dict[str, str]:
    return {"deployment": str(w.deployment.pk)}


def price_version(w: World, role: str) -> dict[str, Any]:
    return {
        "deployment": str(w.deployment.pk),
        "effective_from": "2099-01-01T00:00:00Z",
        "input_price": "0.5",
        "output_price": "1.5",
    }


# Request bodies the rows send.
NEW_PROVIDER = {"name": "new", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"}


def provider_put(w: World, role: str) -> dict[str, Any]:
    p = w.provider
    return {"name": p.name, "kind": p.kind, "base_url": p.base_url, "region": "eu"}


def new_deployment(w: World, role: str) -> dict[str, Any]:
    return {
        "provider": str(w.provider.pk),
        "public_name": "new-model",
        "upstream_model": "new-model",
        "input_price": "1",
        "output_price": "2",
    }


DEPLOYMENT_PUT = {
    "public_name": "matrix-model",
    "upstream_model": "other",
    "input_price": "1",
    "output_price": "2",
}


def key_for(tenant: str, project: str | None = None) -> Lazy:
    def data(w: World, r: str) -> dict[str, Any]:
        body = {"tenant": str(getattr(w, tenant).pk), "name": "new-key"}
        if project:
            body["project"] = str(getattr(w, project).pk)
        return body

    return data


def project_for(tenant: str) -> Lazy:
    return lambda w, r: {"tenant": str(getattr(w, tenant).pk), "slug": "mobile"}


def policy_for(tenant: str | None, classification: str, days: int) -> Lazy:
    def data(w: World, r: str) -> dict[str, Any]:
        body: dict[str, Any] = {"classification": classification, "days": days}
        if tenant:
            body["tenant_id"] = str(getattr(w, tenant).pk)
        return body

    return data


def user_pk(name: str) -> Lazy:
    return lambda w, r: w.users[name].pk


def members(*entries: tuple[str, str]) -> dict[str, Any]:
    return {"members": [{"user": f"m-{user}", "role": role} for user, role in entries]}


# Users of the world by column name in member bodies ("outsider" included).
ACME_MEMBERS = members(("tenant_admin", "tenant-admin"), ("outsider", "tenant-member"))
ONE_MEMBERSHIP = {"memberships": [{"tenant": "acme", "role": "tenant-member"}]}


# Columns:  anon staff read tmem tadm audi cost secu plat mgr  sadm super
# fmt: off
ROWS: list[Row] = [
    #    id                              URL name                          method    an  st  ro  tm  ta  au  co  se  pl  mg  sa  su
    # --- tenants --------------------------------------------------------------------------------------------------
    row("tenant list",                   T + "tenant-list",                "get",    "401 403 200 200 200 403 200 200 200 200 200 200"),
    row("tenant create",                 T + "tenant-list",                "post",   "401 403 403 403 403 403 403 201 403 201 201 201", data={"slug": "initech", "name": "Initech"}),
    row("own tenant",                    T + "tenant-detail",              "get",    "401 403 200 200 200 403 200 200 200 200 200 200", target=pk("acme")),
    row("other tenant",                  T + "tenant-detail",              "get",    "401 403 200 404 404 403 200 200 200 200 200 200", target=pk("globex")),
    row("own tenant put",                T + "tenant-detail",              "put",    "401 403 403 403 200 403 403 200 403 200 200 200", target=pk("acme"), data={"slug": "acme", "name": "Acme Renamed"}),
    row("own tenant patch",              T + "tenant-detail",              "patch",  "401 403 403 403 200 403 403 200 403 200 200 200", target=pk("acme"), data={"name": "Acme Renamed"}),
    row("other tenant patch",            T + "tenant-detail",              "patch",  "401 403 403 403 404 403 403 200 403 200 200 200", target=pk("globex"), data={"name": "Globex Renamed"}),
    # The tenant roles may not delete tenants at all: 403, whichever tenant; security-admin neither.
    row("own tenant delete",             T + "tenant-detail",              "delete", "401 403 403 403 403 403 403 403 403 204 204 204", target=pk("acme")),
    row("other tenant delete",           T + "tenant-detail",              "delete", "401 403 403 403 403 403 403 403 403 204 204 204", target=pk("globex")),
    # --- tenant members (tenants.manage_tenant_members on the tenant) ---------------------------------------------
    row("own members",                   T + "tenant-members",             "get",    "401 403 403 403 200 403 403 403 403 403 200 200", target=pk("acme")),
    row("other members",                 T + "tenant-members",             "get",    "401 403 403 403 404 403 403 403 403 403 200 200", target=pk("globex")),
    row("own members put",               T + "tenant-members",             "put",    "401 403 403 403 200 403 403 403 403 403 200 200", target=pk("acme"), data=ACME_MEMBERS),
    row("other members put",             T + "tenant-members",             "put",    "401 403 403 403 404 403 403 403 403 403 200 200", target=pk("globex"), data=ACME_MEMBERS),
    # --- users and their roles (auth.view_user; tenants.assign_roles; super-admin only by superusers) -------------
    row("user list",                     T + "user-list",                  "get",    "401 403 200 403 403 403 403 403 403 403 200 200"),
    row("user",                          T + "user-detail",                "get",    "401 403 200 403 403 403 403 403 403 403 200 200", target=user_pk("outsider")),
    row("user roles put",                T + "user-roles",                 "put",    "401 403 403 403 403 403 403 403 403 403 200 200", target=user_pk("outsider"), data={"roles": ["auditor"]}),
    row("user super-admin put",          T + "user-roles",                 "put",    "401 403 403 403 403 403 403 403 403 403 403 200", target=user_pk("outsider"), data={"roles": ["super-admin"]}),
    row("user memberships put",          T + "user-memberships",           "put",    "401 403 403 403 403 403 403 403 403 403 200 200", target=user_pk("outsider"), data=ONE_MEMBERSHIP),
    # --- API keys (revoked, never deleted) ------------------------------------------------------------------------
    # --- projects (a tenant-admin organises its tenant's through change_tenant) -------------------------------------
    row("project list",                  T + "project-list",               "get",    "401 403 200 200 200 403 200 200 200 200 200 200"),
    row("project create",                T + "project-list",               "post",   "401 403 403 403 201 403 403 201 403 201 201 201", data=project_for("acme")),
    row("project create elsewhere",      T + "project-list",               "post",   "401 403 403 403 400 403 403 201 403 201 201 201", data=project_for("globex")),
    row("own project",                   T + "project-detail",             "get",    "401 403 200 200 200 403 200 200 200 200 200 200", target=pk("project_a")),
    row("other project",                 T + "project-detail",             "get",    "401 403 200 404 404 403 200 200 200 200 200 200", target=pk("project_b")),
    row("own project put",               T + "project-detail",             "put",    "401 403 403 403 200 403 403 200 403 200 200 200", target=pk("project_a"), data={"slug": "web", "name": "Web shop"}),
    row("own project patch",             T + "project-detail",             "patch",  "401 403 403 403 200 403 403 200 403 200 200 200", target=pk("project_a"), data={"name": "Web shop"}),
    row("other project patch",           T + "project-detail",             "patch",  "401 403 403 403 404 403 403 200 403 200 200 200", target=pk("project_b"), data={"name": "Web shop"}),
    row("own project delete",            T + "project-detail",             "delete", "401 403 403 403 204 403 403 204 403 204 204 204", target=pk("project_a")),
    row("other project delete",          T + "project-detail",             "delete", "401 403 403 403 404 403 403 204 403 204 204 204", target=pk("project_b")),
    # --- API keys -------------------------------------------------------------------------------------------------
    row("key list",                      T + "api-key-list",               "get",    "401 403 200 200 200 403 200 200 200 200 200 200"),
    row("key create",                    T + "api-key-list",               "post",   "401 403 403 403 201 403 403 201 403 201 201 201", data=key_for("acme")),
    row("key create elsewhere",          T + "api-key-list",               "post",   "401 403 403 403 400 403 403 201 403 201 201 201", data=key_for("globex")),
    row("key create in own project",     T + "api-key-list",               "post",   "401 403 403 403 201 403 403 201 403 201 201 201", data=key_for("acme", "project_a")),
    row("key create, other's project",   T + "api-key-list",               "post",   "401 403 403 403 400 403 403 400 403 400 400 400", data=key_for("acme", "project_b")),
    row("own key",                       T + "api-key-detail",             "get",    "401 403 200 200 200 403 200 200 200 200 200 200", target=pk("key_a")),
    row("other key",                     T + "api-key-detail",             "get",    "401 403 200 404 404 403 200 200 200 200 200 200", target=pk("key_b")),
    row("own key put",                   T + "api-key-detail",             "put",    "401 403 403 403 200 403 403 200 403 200 200 200", target=pk("key_a"), data={"name": "renamed"}),
    row("own key patch",                 T + "api-key-detail",             "patch",  "401 403 403 403 200 403 403 200 403 200 200 200", target=pk("key_a"), data={"name": "renamed"}),
    row("other key patch",               T + "api-key-detail",             "patch",  "401 403 403 403 404 403 403 200 403 200 200 200", target=pk("key_b"), data={"name": "renamed"}),
    row("key delete",                    T + "api-key-detail",             "delete", "401 405 405 405 405 405 405 405 405 405 405 405", target=pk("key_a")),
    row("own key revoke",                T + "api-key-revoke",             "post",   "401 403 403 403 200 403 403 200 403 200 200 200", target=pk("key_a")),
    row("other key revoke",              T + "api-key-revoke",             "post",   "401 403 403 403 404 403 403 200 403 200 200 200", target=pk("key_b")),
    row("own key rotate",                T + "api-key-rotate",             "post",   "401 403 403 403 201 403 403 201 403 201 201 201", target=pk("key_a")),
    row("other key rotate",              T + "api-key-rotate",             "post",   "401 403 403 403 404 403 403 201 403 201 201 201", target=pk("key_b")),
    # --- admin tokens (personal: nobody reaches another user's) ----------------------------------------------------
    row("token list",                    T + "admin-token-list",           "get",    "401 403 200 403 403 403 403 200 403 200 200 200"),
    row("token create",                  T + "admin-token-list",           "post",   "401 403 403 403 403 403 403 403 403 201 201 201", data={"name": "new-token"}),
    row("own token",                     T + "admin-token-detail",         "get",    "401 403 200 403 403 403 403 200 403 200 200 200", target=own_token),
    row("other's token",                 T + "admin-token-detail",         "get",    "401 403 404 403 403 403 403 404 403 404 404 404", target=outsider_token),
    row("own token revoke",              T + "admin-token-revoke",         "post",   "401 403 403 403 403 403 403 200 403 200 200 200", target=own_token),
    row("other's token revoke",          T + "admin-token-revoke",         "post",   "401 403 403 403 403 403 403 404 403 404 404 404", target=outsider_token),
    # --- providers (changing where a key goes or comes from is dedicated) -----------------------------------------
    row("provider list",                 P + "provider-list",              "get",    "401 403 200 403 403 403 200 403 200 200 200 200"),
    row("provider create",               P + "provider-list",              "post",   "401 403 403 403 403 403 403 403 201 201 201 201", data=NEW_PROVIDER),
    row("provider create reading env",   P + "provider-list",              "post",   "401 403 403 403 403 403 403 403 403 403 403 201", data={**NEW_PROVIDER, "api_key_env": "NEW_API_KEY"}),
    row("provider reading DATABASE_URL", P + "provider-list",              "post",   "401 403 403 403 403 403 403 403 400 400 400 400", data={**NEW_PROVIDER, "api_key_env": "DATABASE_URL"}),
    row("provider",                      P + "provider-detail",            "get",    "401 403 200 403 403 403 200 403 200 200 200 200", target=pk("provider")),
    row("provider put",                  P + "provider-detail",            "put",    "401 403 403 403 403 403 403 403 200 200 200 200", target=pk("provider"), data=provider_put),
    row("provider patch",                P + "provider-detail",            "patch",  "401 403 403 403 403 403 403 403 200 200 200 200", target=pk("provider"), data={"region": "eu"}),
    row("provider base_url patch",       P + "provider-detail",            "patch",  "401 403 403 403 403 403 403 403 403 403 403 200", target=pk("provider"), data={"base_url": "https://collector.example/v1"}),
    row("provider key patch",            P + "provider-detail",            "patch",  "401 403 403 403 403 403 403 403 403 403 403 200", target=pk("provider"), data={"api_key": "sk-replaced-0123456789"}),
    row("provider delete",               P + "provider-detail",            "delete", "401 403 403 403 403 403 403 403 204 204 204 204", target=pk("provider")),
    # --- deployments ----------------------------------------------------------------------------------------------
    row("deployment list",               P + "deployment-list",            "get",    "401 403 200 403 403 403 200 403 200 200 200 200"),
    row("deployment create",             P + "deployment-list",            "post",   "401 403 403 403 403 403 403 403 201 201 201 201", data=new_deployment),
    row("deployment",                    P + "deployment-detail",          "get",    "401 403 200 403 403 403 200 403 200 200 200 200", target=pk("deployment")),
    row("deployment put",                P + "deployment-detail",          "put",    "401 403 403 403 403 403 403 403 200 200 200 200", target=pk("deployment"), data=DEPLOYMENT_PUT),
    row("deployment patch",              P + "deployment-detail",          "patch",  "401 403 403 403 403 403 403 403 200 200 200 200", target=pk("deployment"), data={"weight": 50}),
    row("deployment prices",             P + "deployment-prices",          "post",   "401 403 403 403 403 403 200 403 200 200 200 200", target=pk("deployment"), data={"input_price": "0.25"}),
    row("deployment prices, none given", P + "deployment-prices",          "post",   "401 403 403 403 403 403 400 403 400 400 400 400", target=pk("deployment"), data={}),
    row("deployment delete",             P + "deployment-detail",          "delete", "401 403 403 403 403 403 403 403 204 204 204 204", target=pk("deployment")),
    # --- routes ---------------------------------------------------------------------------------------------------
    row("route list",                    R + "route-list",                 "get",    "401 403 200 403 403 403 403 403 200 200 200 200"),
    row("route create",                  R + "route-list",                 "post",   "401 403 403 403 403 403 403 403 201 201 201 201", data={"name": "team/new"}),
    row("route",                         R + "route-detail",               "get",    "401 403 200 403 403 403 403 403 200 200 200 200", target=pk("route")),
    row("route put",                     R + "route-detail",               "put",    "401 403 403 403 403 403 403 403 200 200 200 200", target=pk("route"), data={"name": "team/matrix", "description": "changed"}),
    row("route patch",                   R + "route-detail",               "patch",  "401 403 403 403 403 403 403 403 200 200 200 200", target=pk("route"), data={"enabled": False}),
    row("route delete",                  R + "route-detail",               "delete", "401 403 403 403 403 403 403 403 204 204 204 204", target=pk("route")),
    # --- the audit log (a tenant-admin reads and verifies its tenant's; a member does not) ------------------------
    row("event list",                    A + "event-list",                 "get",    "401 403 200 403 200 200 403 200 403 200 200 200"),
    row("own event",                     A + "event-detail",               "get",    "401 403 200 403 200 200 403 200 403 200 200 200", target=seq("event_a"), lookup="sequence"),
    row("other event",                   A + "event-detail",               "get",    "401 403 200 403 404 200 403 200 403 200 200 200", target=seq("event_b"), lookup="sequence"),
    row("tenant-less event",             A + "event-detail",               "get",    "401 403 200 403 404 200 403 200 403 200 200 200", target=seq("event_none"), lookup="sequence"),
    row("export",                        A + "export",                     "get",    "401 403 403 403 200 200 403 403 403 200 200 200", query={"format": "json"}),
    row("own report",                    A + "report",                     "get",    "401 403 403 403 200 200 403 403 403 200 200 200", query={**PERIOD, "tenant": "acme"}),
    row("other report",                  A + "report",                     "get",    "401 403 403 403 400 200 403 403 403 200 200 200", query={**PERIOD, "tenant": "globex"}),
    row("report of every tenant",        A + "report",                     "get",    "401 403 403 403 400 200 403 403 403 200 200 200", query=PERIOD),
    row("verify",                        A + "verify",                     "get",    "401 403 403 403 200 200 403 200 403 200 200 200"),
    # --- data subjects (export: auditor and tenant-admin; erasure is dedicated) -----------------------------------
    row("own subject export",            A + "subject-export",             "post",   "401 403 403 403 200 200 403 403 403 200 200 200", data=subject("acme")),
    row("other subject export",          A + "subject-export",             "post",   "401 403 403 403 400 200 403 403 403 200 200 200", data=subject("globex")),
    row("own subject erase",             A + "subject-erase",              "post",   "401 403 403 403 403 403 403 403 403 403 403 200", data=subject("acme")),
    row("other subject erase",           A + "subject-erase",              "post",   "401 403 403 403 403 403 403 403 403 403 403 200", data=subject("globex")),
    # --- stored exchanges (the detail shows decrypted bodies: dedicated; another tenant's is not found) ------------
    row("exchange list",                 A + "exchange-list",              "get",    "401 403 200 403 200 200 403 403 403 200 200 200"),
    row("own exchange",                  A + "exchange-detail",            "get",    "401 403 403 403 403 403 403 403 403 403 403 200", target=pk("exchange_a")),
    row("other exchange",                A + "exchange-detail",            "get",    "401 403 403 403 404 403 403 403 403 403 403 200", target=pk("exchange_b")),
    # --- retention policies (tenants.view_tenant shows a tenant's; audit classifications are dedicated) ----------
    row("policy list",                   A + "retention-policy-list",      "get",    "401 403 200 200 200 403 200 200 200 200 200 200"),
    row("policy create",                 A + "retention-policy-list",      "post",   "401 403 403 403 201 403 403 201 403 201 201 201", data=policy_for("acme", "bodies", 7)),
    row("policy create elsewhere",       A + "retention-policy-list",      "post",   "401 403 403 403 400 403 403 201 403 201 201 201", data=policy_for("globex", "bodies", 7)),
    row("policy create for all",         A + "retention-policy-list",      "post",   "401 403 403 403 403 403 403 201 403 201 201 201", data=policy_for(None, "requests", 90)),
    row("audit policy create",           A + "retention-policy-list",      "post",   "401 403 403 403 403 403 403 403 403 403 403 201", data=policy_for("acme", "internal", 400)),
    row("audit policy below the floor",  A + "retention-policy-list",      "post",   "401 403 403 403 403 403 403 403 403 403 403 400", data=policy_for(None, "restricted", 1)),
    row("own policy",                    A + "retention-policy-detail",    "get",    "401 403 200 200 200 403 200 200 200 200 200 200", target=pk("policy_a")),
    row("other policy",                  A + "retention-policy-detail",    "get",    "401 403 200 404 404 403 200 200 200 200 200 200", target=pk("policy_b")),
    row("policy for all",                A + "retention-policy-detail",    "get",    "401 403 200 404 404 403 200 200 200 200 200 200", target=pk("policy_all")),
    row("own policy put",                A + "retention-policy-detail",    "put",    "401 403 403 403 200 403 403 200 403 200 200 200", target=pk("policy_a"), data=policy_for("acme", "requests", 60)),
    row("own policy patch",              A + "retention-policy-detail",    "patch",  "401 403 403 403 200 403 403 200 403 200 200 200", target=pk("policy_a"), data={"days": 45}),
    row("own policy moved elsewhere",    A + "retention-policy-detail",    "patch",  "401 403 403 403 400 403 403 200 403 200 200 200", target=pk("policy_a"), data=policy_for("globex", "bodies", 30)),
    row("other policy patch",            A + "retention-policy-detail",    "patch",  "401 403 403 403 404 403 403 200 403 200 200 200", target=pk("policy_b"), data={"days": 45}),
    row("audit policy patch",            A + "retention-policy-detail",    "patch",  "401 403 403 403 404 403 403 403 403 403 403 200", target=pk("policy_audit"), data={"days": 500}),
    row("own policy delete",             A + "retention-policy-detail",    "delete", "401 403 403 403 204 403 403 204 403 204 204 204", target=pk("policy_a")),
    row("audit policy delete",           A + "retention-policy-detail",    "delete", "401 403 403 403 404 403 403 403 403 403 403 204", target=pk("policy_audit")),
    # --- prices: history and catalog (not a tenant's: view, or change the deployment or its prices) ----------------
    row("price versions",                C + "price-version-list",         "get",    "401 403 200 403 403 403 200 403 200 200 200 200", query=price_versions_of),
    row("price version schedule",        C + "price-version-list",         "post",   "401 403 403 403 403 403 201 403 201 201 201 201", data=price_version),
    row("price catalog refresh",         C + "price-catalog-refresh",      "post",   "401 403 403 403 403 403 200 403 200 200 200 200"),
    # --- the schema and its docs (documentation, not data; signed-in users only) ---------------------------------
    row("schema",                        "api-schema",                     "get",    "401 200 200 200 200 200 200 200 200 200 200 200"),
    row("docs",                          "api-docs",                       "get",    "401 200 200 200 200 200 200 200 200 200 200 200"),
    row("redoc",                         "api-redoc",                      "get",    "401 200 200 200 200 200 200 200 200 200 200 200"),
]
# fmt: on


def _console_rows() -> list[Row]:
    """The rows of every console_*.py module beside this one (each defines ROWS)."""
    here = Path(__file__).parent
    found: list[Row] = []
    for path in sorted(here.glob("console_*.py")):
        module = importlib.import_module(f"{__package__}.{path.stem}")
        found.extend(module.ROWS)
    return found


ROWS += _console_rows()
