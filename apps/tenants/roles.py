"""The roles: global roles as Django groups, per-tenant roles as django-guardian grants.

Global roles are groups with exactly the names in GLOBAL_ROLES; each holds the management
permissions its declaration resolves to (explicit names and `app.codename` patterns matched
against the Permission table, never a dedicated one). A data migration creates the groups and
a post_migrate receiver (`roles_sync`) re-resolves their permissions after every migrate, so a
permission that a later migration adds joins the roles whose patterns match it.

Per-tenant roles (TENANT_ROLES) are sets of tenant permissions held on one Tenant row through
django-guardian; apps.tenants.permissions.TENANT_SCOPES says what each permission allows.

Dedicated permissions (apps.tenants.permissions.DEDICATED) belong to no role; a superuser
grants them to a named user with `dedicated_permission_set`.

Writes, each audited in its own transaction (sources: "console", "oidc", "api", "cli"):

    user_roles_set(user=, roles=, actor=, source=)              replace the global roles
    tenant_memberships_set(user=, memberships=, actor=, source=) replace every tenant role
    tenant_role_set(user=, tenant=, role=, actor=, source=)      one tenant (None removes)
    dedicated_permission_set(user=, permission=, granted=, actor=, source=)

Reads:

    user_roles(user) -> set[str]
    user_memberships(user) -> dict[Tenant, str]
    tenant_members(tenant) -> list[(user, role)]
    user_list(viewer) -> the users `viewer` may see
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.signals import m2m_changed, post_delete, post_save
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, remove_perm

from apps.audit.context import current_actor
from apps.audit.services import audit_record
from apps.tenants import permissions
from apps.tenants.models import Tenant
from apps.tenants.permissions import (
    AUDIT_TENANT,
    CHANGE_TENANT,
    DEDICATED,
    EXPORT_TENANT_SUBJECTS,
    MANAGE_TENANT_KEYS,
    MANAGE_TENANT_MEMBERS,
    MANAGE_TENANT_RETENTION,
    VIEW_TENANT,
)

logger = logging.getLogger(__name__)

SUPER_ADMIN = "super-admin"
PLATFORM_ADMIN = "platform-admin"
SECURITY_ADMIN = "security-admin"
COST_ADMIN = "cost-admin"
AUDITOR = "auditor"
READ_ONLY = "read-only"

TENANT_ADMIN = "tenant-admin"
TENANT_MEMBER = "tenant-member"

ASSIGN_ROLES = "tenants.assign_roles"

SOURCES = ("console", "oidc", "api", "cli")

# The apps whose permissions are management permissions (auth adds the user ones by name).
PROJECT_APPS = ("tenants", "providers", "routing", "audit", "costs", "policies")

# Records nobody edits (evidence, counters, learned state): their add/change/delete
# permissions belong to no role; the code that writes them needs no permission.
RECORDS = (
    "audit.auditevent",
    "audit.auditchainhead",
    "audit.auditsignedhead",
    "audit.storedexchange",
    "audit.scheduledrun",
    "routing.requestlog",
    "routing.configversion",
    "routing.learnedstate",
    "routing.banditarm",
    "routing.feedback",
    "providers.healthcheck",
    "costs.budgetalert",
    "costs.usagerecord",
    "costs.usagerollup",
    "costs.rollupcursor",
    "costs.spendanomaly",
)
NEVER_GRANTED = tuple(
    f"{label.split('.')[0]}.{verb}_{label.split('.')[1]}"
    for label in RECORDS
    for verb in ("add", "change", "delete")
)


@dataclass(frozen=True, slots=True)
class Role:
    """A global role: the group `name`, holding what `grants` resolves to minus `excludes`.

    Entries are `app_label.codename`; one with `*` is a pattern (fnmatch) resolved against the
    Permission table, so permissions added later (costs, policies) join when they exist. A name
    without `*` must exist once every migration has run.
    """

    name: str
    label: str
    description: str
    grants: tuple[str, ...]
    excludes: tuple[str, ...] = ()


def _app_patterns(*apps: str) -> tuple[str, ...]:
    return tuple(f"{app}.*" for app in apps)


GLOBAL_ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        Role(
            SUPER_ADMIN,
            "Super admin",
            "Every management permission except the dedicated ones; assigns roles.",
            (*_app_patterns(*PROJECT_APPS), "auth.view_user", "auth.change_user", ASSIGN_ROLES),
        ),
        Role(
            PLATFORM_ADMIN,
            "Platform admin",
            "Providers, deployments and their prices, health, circuits and tests; routes and "
            "what they learned; views tenants, keys, the request log and the runs of the "
            "periodic jobs.",
            (
                "providers.*",
                "routing.*_route",
                "routing.view_*",
                "tenants.view_tenant",
                "tenants.view_project",
                "tenants.view_apikey",
                "audit.view_scheduledrun",
            ),
        ),
        Role(
            SECURITY_ADMIN,
            "Security admin",
            "Tenants, their projects and API keys, admin tokens (view, revoke), policies, "
            "retention policies "
            "and auditor grants; views and verifies the audit log.",
            (
                "tenants.view_tenant",
                "tenants.add_tenant",
                "tenants.change_tenant",
                "tenants.*_project",
                "tenants.view_apikey",
                "tenants.add_apikey",
                "tenants.change_apikey",
                "tenants.revoke_apikey",
                "tenants.rotate_apikey",
                "tenants.view_admintoken",
                "tenants.revoke_admintoken",
                "policies.*",
                "audit.*_retentionpolicy",
                "audit.*auditor*",
                "audit.view_auditevent",
                "audit.verify_auditevent",
            ),
        ),
        Role(
            COST_ADMIN,
            "Cost admin",
            "Prices, budgets, limits and spend; views tenants, keys and the request log.",
            (
                "providers.view_provider",
                "providers.view_modeldeployment",
                "providers.*price*",
                "costs.*",
                "tenants.view_tenant",
                "tenants.view_project",
                "tenants.view_apikey",
                "routing.view_requestlog",
            ),
        ),
        Role(
            AUDITOR,
            "Auditor",
            "Reads, exports, reports on and verifies the audit log; data-subject exports; "
            "stored-exchange metadata (never bodies); the request log.",
            (
                "audit.view_auditevent",
                "audit.export_auditevent",
                "audit.report_auditevent",
                "audit.verify_auditevent",
                "audit.export_data_subject",
                "audit.view_auditchainhead",
                "audit.view_auditsignedhead",
                "audit.view_storedexchange",
                "routing.view_requestlog",
            ),
        ),
        Role(
            READ_ONLY,
            "Read only",
            # tenants.view_admintoken lists one's own tokens only: nobody sees another's.
            "Views everything except stored bodies and other users' admin tokens.",
            (*(f"{app}.view_*" for app in PROJECT_APPS), "auth.view_user"),
        ),
    )
}

# Per-tenant roles: tenant permissions held on one Tenant row (django-guardian).
TENANT_ROLES: dict[str, tuple[str, ...]] = {
    TENANT_ADMIN: (
        VIEW_TENANT,
        CHANGE_TENANT,
        MANAGE_TENANT_KEYS,
        MANAGE_TENANT_RETENTION,
        AUDIT_TENANT,
        EXPORT_TENANT_SUBJECTS,
        MANAGE_TENANT_MEMBERS,
    ),
    TENANT_MEMBER: (VIEW_TENANT,),
}

ROLE_NAMES = tuple(GLOBAL_ROLES)
TENANT_ROLE_NAMES = tuple(TENANT_ROLES)

for _role in GLOBAL_ROLES.values():
    _explicit = {g for g in _role.grants if "*" not in g}
    assert not _explicit & DEDICATED, f"{_role.name} names a dedicated permission"
for _name, _granted in TENANT_ROLES.items():
    assert not set(_granted) & DEDICATED, f"{_name} names a dedicated permission"


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def role_permission_names(role: Role, available: Iterable[str]) -> frozenset[str]:
    """The permissions (`app.codename`) `role` holds, out of the `available` ones.

    Never a dedicated permission, nor a write on records nobody edits.
    """
    available = set(available)
    missing = {g for g in role.grants if "*" not in g} - available
    if missing:
        raise LookupError(f"role {role.name} names permissions that do not exist: {missing}")
    held = frozenset(
        name
        for name in available
        if _matches(name, role.grants)
        and not _matches(name, role.excludes)
        and name not in NEVER_GRANTED
        and name not in DEDICATED
    )
    assert not held & DEDICATED
    return held


# --- the groups -----------------------------------------------------------------------------


def _all_permission_names() -> dict[str, Permission]:
    found = Permission.objects.select_related("content_type")
    return {f"{p.content_type.app_label}.{p.codename}": p for p in found}


def roles_sync(**_: Any) -> None:
    """Create the role groups if missing and give each exactly its declared permissions.

    Connected to post_migrate: runs after every migrate, when every app's permissions exist,
    so permissions added by later migrations join the roles whose patterns match them.
    Changes to a group that held permissions are audited (`role.permissions_changed`); a sync
    that changes nothing records nothing.
    """
    available = _all_permission_names()
    with transaction.atomic(), recorded_by_service():
        for role in GLOBAL_ROLES.values():
            group, _ = Group.objects.get_or_create(name=role.name)
            wanted = role_permission_names(role, available)
            held = {
                f"{p.content_type.app_label}.{p.codename}"
                for p in group.permissions.select_related("content_type")
            }
            if held == wanted:
                continue
            group.permissions.set([available[name] for name in sorted(wanted)])
            if not held:
                # A group just made (by its migration, or again after a flush) is filled as
                # part of the install: nobody's access changes, nothing to record.
                continue
            audit_record(
                event_type="role.permissions_changed",
                action="change",
                resource_type="group",
                resource_id=str(group.pk),
                before={"permissions": sorted(held)},
                after={"permissions": sorted(wanted)},
                data={"role": role.name},
                classification="restricted",
            )


def roles_sync_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver: sync the roles once the last app's permissions exist.

    Skipped when the tables or the permissions the roles name are not there yet (a migrate
    to an earlier state); the next full migrate syncs them.
    """
    from django.apps import apps as global_apps
    from django.db import connections

    # The signal is sent once per app with models, in INSTALLED_APPS order.
    last = [c for c in global_apps.get_app_configs() if c.models_module is not None][-1]
    if sender is not last or using != "default":
        return
    tables = set(connections[using].introspection.table_names())
    from apps.audit.models import AuditEvent

    needed = {Group._meta.db_table, Permission._meta.db_table, AuditEvent._meta.db_table}
    if not needed <= tables:
        return
    from apps.audit.apps import ensure_chain_head

    ensure_chain_head(using=using)
    try:
        roles_sync()
    except LookupError as missing:
        logger.warning("roles not synced: %s", missing)


def role_permissions(role: str) -> frozenset[str]:
    """The permissions the role's group holds now (a global role) or its tenant permissions."""
    if role in TENANT_ROLES:
        return frozenset(TENANT_ROLES[role])
    group = Group.objects.filter(name=role).first()
    if group is None:
        return frozenset()
    return frozenset(
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    )


# --- auditing ------------------------------------------------------------------------------

# Set while a service below changes roles: it records one event for the whole change, so the
# receivers that audit changes made elsewhere (the Django admin, a shell) stay quiet.
_services_recording: ContextVar[bool] = ContextVar("atp_roles_recording", default=False)


@contextmanager
def recorded_by_service() -> Iterator[None]:
    token = _services_recording.set(True)
    try:
        yield
    finally:
        _services_recording.reset(token)


def changes_recorded_by_service() -> bool:
    """Whether a role service is making the current change (and records it itself)."""
    return _services_recording.get()


def _actor_of(actor: Any):
    """The audit actor: the request's, or `actor` when the change is made on their behalf."""
    current = current_actor()
    if actor is None or not getattr(actor, "pk", None) or current.user_id == str(actor.pk):
        return None
    return current.but(user_id=str(actor.pk), actor=actor.get_username())


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")


# Callers whose word is taken as it is: the identity provider's claims at sign-in, an
# operator at the command line. Changes from the console or the API are checked.
TRUSTED_SOURCES = ("oidc", "cli")


def _checked(actor: Any, source: str) -> bool:
    return actor is not None and source not in TRUSTED_SOURCES


# --- global roles --------------------------------------------------------------------------


def role_assignable(actor: Any, role: str) -> bool:
    """Whether `actor` may give (or take away) the global role `role`.

    Superusers may assign every role. Others need `tenants.assign_roles`, and may assign only
    roles whose permissions they hold themselves; super-admin is for superusers to give.
    """
    if actor is None:
        return True
    if not (actor.is_authenticated and actor.is_active):
        return False
    if actor.is_superuser:
        return True
    if role == SUPER_ADMIN or not actor.has_perm(ASSIGN_ROLES):
        return False
    return role_permissions(role) <= actor.get_all_permissions()


def _group_names(user: Any) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


@transaction.atomic
def user_roles_set(*, user: Any, roles: Iterable[str], actor: Any, source: str) -> None:
    """Replace `user`'s global roles with `roles`; groups that are not roles stay as they are.

    Audited as one `user.roles_changed` event (the user's groups before and after), none when
    nothing changes. From the console or the API, `actor` must be able to assign every role
    added or removed (`role_assignable`, PermissionDenied otherwise).
    """
    _check_source(source)
    if isinstance(roles, str):
        raise ValidationError({"roles": ["Give a list of role names."]})
    wanted = set(roles)
    unknown = wanted - set(GLOBAL_ROLES)
    if unknown:
        raise ValidationError(
            {
                "roles": [
                    f"No role {name!r}; roles: {', '.join(ROLE_NAMES)}." for name in sorted(unknown)
                ]
            }
        )
    held = user_roles(user)
    changed = held ^ wanted
    if not changed:
        return
    if _checked(actor, source):
        refused = sorted(name for name in changed if not role_assignable(actor, name))
        if refused:
            raise PermissionDenied(f"You may not assign the roles {', '.join(refused)}.")
    groups = {g.name: g for g in Group.objects.filter(name__in=changed)}
    missing = changed - set(groups)
    if missing:
        raise LookupError(f"role groups missing (run migrate): {sorted(missing)}")
    before = _group_names(user)
    with recorded_by_service():
        user.groups.remove(*(groups[name] for name in held - wanted))
        user.groups.add(*(groups[name] for name in wanted - held))
    audit_record(
        event_type="user.roles_changed",
        action="change",
        resource_type="user",
        resource_id=str(user.pk),
        before={"groups": before},
        after={"groups": _group_names(user)},
        data={"username": user.get_username(), "source": source},
        classification="restricted",
        actor=_actor_of(actor),
    )


# --- tenant roles --------------------------------------------------------------------------

_ROLE_CODENAMES = {name: {p.split(".")[1] for p in perms} for name, perms in TENANT_ROLES.items()}
_ALL_ROLE_CODENAMES = set().union(*_ROLE_CODENAMES.values())


def _tenant_role_of(codenames: set[str]) -> str | None:
    """The role that a set of tenant permissions amounts to (the widest one fully held)."""
    for name in (TENANT_ADMIN, TENANT_MEMBER):
        if _ROLE_CODENAMES[name] <= codenames:
            return name
    return None


def _tenant_grants(user: Any, tenant: Tenant | None = None) -> dict[str, set[str]]:
    """The role permissions `user` holds per tenant id (str), from django-guardian."""
    rows = UserObjectPermission.objects.filter(
        user=user,
        content_type=ContentType.objects.get_for_model(Tenant),
        permission__codename__in=_ALL_ROLE_CODENAMES,
    )
    if tenant is not None:
        rows = rows.filter(object_pk=str(tenant.pk))
    held: dict[str, set[str]] = {}
    for object_pk, codename in rows.values_list("object_pk", "permission__codename"):
        held.setdefault(object_pk, set()).add(codename)
    return held


def _role_record(
    *, user: Any, tenant: Tenant, before: str | None, after: str | None, actor: Any, source: str
) -> None:
    audit_record(
        event_type="user.tenant_role_changed",
        action="change",
        tenant_id=tenant.pk,
        resource_type="user",
        resource_id=str(user.pk),
        before={"role": before},
        after={"role": after},
        data={"username": user.get_username(), "tenant": tenant.slug, "source": source},
        classification="restricted",
        actor=_actor_of(actor),
    )


def _apply_tenant_role(
    *, user: Any, tenant: Tenant, held: set[str], role: str | None, actor: Any, source: str
) -> None:
    before = _tenant_role_of(held)
    wanted = _ROLE_CODENAMES[role] if role else set()
    if held == wanted:
        return
    if _checked(actor, source) and not permissions.may_for_tenant(
        actor, Tenant, "manage_members", tenant.pk
    ):
        raise PermissionDenied(f"You may not manage the members of tenant '{tenant.slug}'.")
    with recorded_by_service():
        for codename in sorted(held - wanted):
            remove_perm(f"tenants.{codename}", user, tenant)
        for codename in sorted(wanted - held):
            assign_perm(f"tenants.{codename}", user, tenant)
    if before != role or held - wanted:
        _role_record(
            user=user, tenant=tenant, before=before, after=role, actor=actor, source=source
        )


def _check_tenant_role(role: str | None, field: str = "role") -> None:
    if role is not None and role not in TENANT_ROLES:
        raise ValidationError(
            {field: [f"No tenant role {role!r}; tenant roles: {', '.join(TENANT_ROLE_NAMES)}."]}
        )


@transaction.atomic
def tenant_role_set(
    *, user: Any, tenant: Tenant, role: str | None, actor: Any, source: str
) -> None:
    """Make `user` `role` ("tenant-admin" | "tenant-member") of `tenant`; None removes them.

    Only the role permissions change: a dedicated per-tenant grant stays. Audited as one
    `user.tenant_role_changed` event on the tenant's trail. From the console or the API,
    `actor` needs `tenants.manage_tenant_members` on the tenant (PermissionDenied otherwise).
    """
    _check_source(source)
    _check_tenant_role(role)
    held = _tenant_grants(user, tenant).get(str(tenant.pk), set())
    _apply_tenant_role(user=user, tenant=tenant, held=held, role=role, actor=actor, source=source)


@transaction.atomic
def tenant_memberships_set(
    *, user: Any, memberships: Mapping[Tenant, str], actor: Any, source: str
) -> None:
    """Replace every tenant role of `user` with `memberships` (tenant -> role name).

    Tenants left out lose the user's role there. One event per tenant whose role changes.
    """
    _check_source(source)
    for role in memberships.values():
        _check_tenant_role(role, "memberships")
    grants = _tenant_grants(user)
    wanted = {str(tenant.pk): (tenant, role) for tenant, role in memberships.items()}
    gone = Tenant.objects.filter(pk__in=[pk for pk in grants if pk not in wanted])
    for tenant in gone:
        _apply_tenant_role(
            user=user,
            tenant=tenant,
            held=grants[str(tenant.pk)],
            role=None,
            actor=actor,
            source=source,
        )
    for key in sorted(wanted, key=lambda k: wanted[k][0].slug):
        tenant, role = wanted[key]
        _apply_tenant_role(
            user=user,
            tenant=tenant,
            held=grants.get(key, set()),
            role=role,
            actor=actor,
            source=source,
        )


# --- dedicated permissions ------------------------------------------------------------------


@transaction.atomic
def dedicated_permission_set(
    *,
    user: Any,
    permission: str,
    granted: bool,
    actor: Any,
    source: str,
    tenant: Tenant | None = None,
) -> None:
    """Grant (or take back) one dedicated permission to a named user, globally or on `tenant`.

    Only a superuser may (an operator at the command line: `actor` None). Audited as
    `permission.granted` / `permission.revoked`; nothing is recorded when nothing changes.
    """
    from apps.tenants.services import permission_grant, permission_revoke

    _check_source(source)
    if permission not in DEDICATED:
        raise ValidationError(
            {
                "permission": [
                    f"{permission} is not dedicated; dedicated: {', '.join(sorted(DEDICATED))}."
                ]
            }
        )
    if actor is not None and not (actor.is_active and actor.is_superuser):
        raise PermissionDenied("Only a superuser may grant dedicated permissions.")
    app_label, codename = permission.split(".")
    if tenant is None:
        held = user.user_permissions.filter(
            content_type__app_label=app_label, codename=codename
        ).exists()
    else:
        held = codename in {
            c
            for (c,) in UserObjectPermission.objects.filter(
                user=user,
                content_type=ContentType.objects.get_for_model(Tenant),
                object_pk=str(tenant.pk),
            ).values_list("permission__codename")
        }
    if held == granted:
        return
    change = permission_grant if granted else permission_revoke
    with recorded_by_service():
        change(permission=permission, user=user, tenant=tenant)


# --- reads ---------------------------------------------------------------------------------


def user_roles(user: Any) -> set[str]:
    """The global roles `user` holds (role groups only; other groups are not roles)."""
    return set(user.groups.filter(name__in=ROLE_NAMES).values_list("name", flat=True))


def user_memberships(user: Any) -> dict[Tenant, str]:
    """The tenants `user` has a role on, with that role, by tenant slug."""
    return memberships_of([user]).get(user.pk, {})


def memberships_of(users: Iterable[Any]) -> dict[Any, dict[Tenant, str]]:
    """`user_memberships` of several users in two queries: user pk -> {tenant: role}."""
    rows = UserObjectPermission.objects.filter(
        user__in=[u.pk for u in users],
        content_type=ContentType.objects.get_for_model(Tenant),
        permission__codename__in=_ALL_ROLE_CODENAMES,
    ).values_list("user_id", "object_pk", "permission__codename")
    held: dict[tuple[Any, str], set[str]] = {}
    for user_id, object_pk, codename in rows:
        held.setdefault((user_id, object_pk), set()).add(codename)
    tenants = {str(t.pk): t for t in Tenant.objects.filter(pk__in={pk for _, pk in held})}
    found: dict[Any, dict[Tenant, str]] = {}
    for (user_id, object_pk), codenames in sorted(
        held.items(), key=lambda item: tenants[item[0][1]].slug if item[0][1] in tenants else ""
    ):
        role = _tenant_role_of(codenames)
        if role and object_pk in tenants:
            found.setdefault(user_id, {})[tenants[object_pk]] = role
    return found


def tenant_members(tenant: Tenant) -> list[tuple[Any, str]]:
    """The users with a role on `tenant`, by username, each with that role."""
    rows = UserObjectPermission.objects.filter(
        content_type=ContentType.objects.get_for_model(Tenant),
        object_pk=str(tenant.pk),
        permission__codename__in=_ALL_ROLE_CODENAMES,
    ).values_list("user_id", "permission__codename")
    held: dict[Any, set[str]] = {}
    for user_id, codename in rows:
        held.setdefault(user_id, set()).add(codename)
    users = get_user_model()._default_manager.filter(pk__in=list(held)).order_by("username")
    members = []
    for user in users:
        role = _tenant_role_of(held[user.pk])
        if role:
            members.append((user, role))
    return members


def user_list(viewer: Any) -> QuerySet:
    """The users `viewer` may see: everyone with `auth.view_user`; otherwise the members of
    the tenants whose members they manage; otherwise nobody."""
    users = get_user_model()._default_manager.order_by("username").prefetch_related("groups")
    if viewer is None:
        return users
    if not (viewer.is_authenticated and viewer.is_active):
        return users.none()
    if viewer.is_superuser or viewer.has_perm("auth.view_user"):
        return users
    managed = permissions.tenant_ids(viewer, Tenant, "manage_members")
    if managed is None:
        return users.filter(Q(pk__in=_members_of(None)) | Q(pk=viewer.pk))
    if not managed:
        return users.none()
    return users.filter(pk__in=_members_of(managed))


def _members_of(tenant_ids: Iterable[Any] | None) -> QuerySet:
    rows = UserObjectPermission.objects.filter(
        content_type=ContentType.objects.get_for_model(Tenant),
        permission__codename__in=_ALL_ROLE_CODENAMES,
    )
    if tenant_ids is not None:
        rows = rows.filter(object_pk__in=[str(pk) for pk in tenant_ids])
    return rows.values("user_id")


# --- changes made elsewhere (the Django admin, a shell) ------------------------------------


def _perm_names(pks: Iterable[Any]) -> list[str]:
    return sorted(
        f"{app}.{codename}"
        for app, codename in Permission.objects.filter(pk__in=list(pks)).values_list(
            "content_type__app_label", "codename"
        )
    )


# What a clear() is about to remove, by (relation, instance): m2m_changed's post_clear says
# nothing of what was there.
_cleared: ContextVar[dict | None] = ContextVar("atp_roles_cleared", default=None)


def _on_user_groups(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    """One `user.roles_changed` event per change of a user's groups made outside the services."""
    if changes_recorded_by_service():
        return
    users_model = get_user_model()
    if action == "pre_clear":
        if reverse:  # a group's user_set cleared: every member changes
            pk_set = set(instance.user_set.values_list("pk", flat=True))
        else:
            pk_set = set(instance.groups.values_list("pk", flat=True))
        _cleared.set({**(_cleared.get() or {}), ("groups", reverse, instance.pk): pk_set})
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if action == "post_clear":
        pk_set = (_cleared.get() or {}).pop(("groups", reverse, instance.pk), set())
    if not pk_set:
        return
    if reverse:  # group.user_set.add(users): each user gained or lost `instance`
        changes = [
            (user, {instance.name}) for user in users_model._default_manager.filter(pk__in=pk_set)
        ]
    else:
        changes = [
            (instance, set(Group.objects.filter(pk__in=pk_set).values_list("name", flat=True)))
        ]
    for user, names in changes:
        after = set(_group_names(user))
        before = after - names if action == "post_add" else after | names
        audit_record(
            event_type="user.roles_changed",
            action="change",
            resource_type="user",
            resource_id=str(user.pk),
            before={"groups": sorted(before)},
            after={"groups": sorted(after)},
            data={"username": user.get_username(), "source": current_actor().source},
            classification="restricted",
        )


def _on_user_permissions(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    """One `permission.granted`/`permission.revoked` event per change of a user's own
    (global) permissions made outside the services."""
    if changes_recorded_by_service():
        return
    if action == "pre_clear":
        if reverse:
            pk_set = set(instance.user_set.values_list("pk", flat=True))
        else:
            pk_set = set(instance.user_permissions.values_list("pk", flat=True))
        _cleared.set({**(_cleared.get() or {}), ("perms", reverse, instance.pk): pk_set})
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if action == "post_clear":
        pk_set = (_cleared.get() or {}).pop(("perms", reverse, instance.pk), set())
    if not pk_set:
        return
    users_model = get_user_model()
    if reverse:  # permission.user_set.add(users)
        changes = [
            (u, _perm_names([instance.pk]))
            for u in users_model._default_manager.filter(pk__in=pk_set)
        ]
    else:
        changes = [(instance, _perm_names(pk_set))]
    granted = action == "post_add"
    for user, names in changes:
        audit_record(
            event_type="permission.granted" if granted else "permission.revoked",
            action="grant" if granted else "revoke",
            resource_type="user",
            resource_id=str(user.pk),
            data={
                "username": user.get_username(),
                "permissions": names,
                "permission": names[0] if len(names) == 1 else "",
                "tenant": "",
                "dedicated": sorted(set(names) & DEDICATED),
            },
            classification="restricted",
        )


def _group_permission_names(group: Group) -> list[str]:
    return _perm_names(group.permissions.values_list("pk", flat=True))


def _on_group_permissions(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    """One `group.permissions_changed` event per change of a group's permissions (what a role
    or any other group holds) made outside the services."""
    if changes_recorded_by_service():
        return
    if action == "pre_clear":
        if reverse:
            pk_set = set(instance.group_set.values_list("pk", flat=True))
        else:
            pk_set = set(instance.permissions.values_list("pk", flat=True))
        _cleared.set({**(_cleared.get() or {}), ("group", reverse, instance.pk): pk_set})
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if action == "post_clear":
        pk_set = (_cleared.get() or {}).pop(("group", reverse, instance.pk), set())
    if not pk_set:
        return
    if reverse:  # permission.group_set.add(groups)
        changes = [(g, _perm_names([instance.pk])) for g in Group.objects.filter(pk__in=pk_set)]
    else:
        changes = [(instance, _perm_names(pk_set))]
    for group, names in changes:
        after = set(_group_permission_names(group))
        before = after - set(names) if action == "post_add" else after | set(names)
        audit_record(
            event_type="group.permissions_changed",
            action="change",
            resource_type="group",
            resource_id=str(group.pk),
            before={"permissions": sorted(before)},
            after={"permissions": sorted(after)},
            data={"group": group.name, "role": group.name in GLOBAL_ROLES},
            classification="restricted",
        )


def _on_object_permission(sender, instance, created: bool = True, **kwargs) -> None:
    """One event per django-guardian object permission given or taken outside the services."""
    if changes_recorded_by_service() or kwargs.get("raw") or not created:
        return
    granted = kwargs.get("signal") is post_save
    permission = instance.permission
    name = f"{permission.content_type.app_label}.{permission.codename}"
    holder = instance.user if isinstance(instance, UserObjectPermission) else instance.group
    is_user = isinstance(instance, UserObjectPermission)
    tenant = None
    if instance.content_type.model_class() is Tenant:
        tenant = Tenant.objects.filter(pk=instance.object_pk).first()
    audit_record(
        event_type="permission.granted" if granted else "permission.revoked",
        action="grant" if granted else "revoke",
        tenant_id=tenant.pk if tenant else None,
        resource_type="user" if is_user else "group",
        resource_id=str(holder.pk),
        data={
            ("username" if is_user else "group"): (
                holder.get_username() if is_user else holder.name
            ),
            "permission": name,
            "tenant": tenant.slug if tenant else "",
            "object": f"{instance.content_type.app_label}.{instance.content_type.model}:"
            f"{instance.object_pk}",
        },
        classification="restricted",
    )


def connect_audit_receivers() -> None:
    """Audit role and permission changes that do not go through the services."""
    from guardian.models import GroupObjectPermission

    user_model = get_user_model()
    m2m_changed.connect(
        _on_user_groups, sender=user_model.groups.through, dispatch_uid="tenants.roles.groups"
    )
    m2m_changed.connect(
        _on_user_permissions,
        sender=user_model.user_permissions.through,
        dispatch_uid="tenants.roles.user_permissions",
    )
    m2m_changed.connect(
        _on_group_permissions,
        sender=Group.permissions.through,
        dispatch_uid="tenants.roles.group_permissions",
    )
    for model in (UserObjectPermission, GroupObjectPermission):
        post_save.connect(
            _on_object_permission, sender=model, dispatch_uid=f"tenants.roles.{model.__name__}+"
        )
        post_delete.connect(
            _on_object_permission, sender=model, dispatch_uid=f"tenants.roles.{model.__name__}-"
        )
