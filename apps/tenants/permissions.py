"""Who may do what: the one entry point that narrows querysets and checks actions by permission.

Every management action is a Django permission named `<app>.<action>_<model>`
(`tenants.view_apikey`, `tenants.revoke_apikey`, `audit.export_auditevent`) or one of the few
named in ACTION_PERMISSIONS. A user holds it in one of three ways:

- as a superuser (every permission, implicitly);
- globally, directly or through a group (Django model permissions): on every object;
- on one tenant, for the models in TENANT_SCOPES: a django-guardian object permission on the
  Tenant row (`tenants.manage_tenant_keys` on `acme` lets a user create, change, revoke and
  rotate acme's API keys and nobody else's). A tenant permission held globally counts for
  every tenant.

`is_staff` plays no part: it only opens the Django admin. Anonymous and inactive users hold
nothing. `user=None` stands for an internal caller (a job, the CLI) and may do everything.

The API for views, selectors and (next) console pages:

    restrict(queryset, user, "view")        objects of the queryset the user may view
    tenant_ids(user, Model, "export")       None (every tenant) or the tenant ids allowed
    may(user, Model, "add")                 whether the user may do it anywhere at all
    may_for_tenant(user, Model, "erase_subject", tenant_id)
    may_on(user, obj, "change")             whether the user may do it to this object
    allowed_tenants(user, Model, "add")     the Tenant rows a new object may belong to
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import Model, QuerySet
from guardian.shortcuts import get_objects_for_user

from apps.tenants.models import Tenant

User = AbstractBaseUser | AnonymousUser

# --- tenant permissions (granted per tenant with django-guardian, or globally) ---------------
VIEW_TENANT = "tenants.view_tenant"
CHANGE_TENANT = "tenants.change_tenant"
DELETE_TENANT = "tenants.delete_tenant"
AUDIT_TENANT = "tenants.audit_tenant"
VIEW_TENANT_BODIES = "tenants.view_tenant_bodies"
MANAGE_TENANT_KEYS = "tenants.manage_tenant_keys"
MANAGE_TENANT_RETENTION = "tenants.manage_tenant_retention"
EXPORT_TENANT_SUBJECTS = "tenants.export_tenant_subjects"
MANAGE_TENANT_MEMBERS = "tenants.manage_tenant_members"
ERASE_TENANT_SUBJECTS = "tenants.erase_tenant_subjects"

# --- dedicated permissions: reach secrets or destroy evidence; no role has them by default ----
CHANGE_PROVIDER_CREDENTIALS = "providers.change_provider_credentials"
ADD_ADMIN_TOKEN_FOR_OTHERS = "tenants.add_admintoken_for_others"
ERASE_DATA_SUBJECT = "audit.erase_data_subject"
CHANGE_AUDIT_RETENTION = "audit.change_audit_retention"
VIEW_EXCHANGE_BODY = "audit.view_exchange_body"

# Granted to a named user only (apps.tenants.roles.dedicated_permission_set), never to a role.
DEDICATED = frozenset(
    {
        CHANGE_PROVIDER_CREDENTIALS,
        ADD_ADMIN_TOKEN_FOR_OTHERS,
        ERASE_DATA_SUBJECT,
        CHANGE_AUDIT_RETENTION,
        ERASE_TENANT_SUBJECTS,
        VIEW_EXCHANGE_BODY,
        VIEW_TENANT_BODIES,
    }
)

# Actions whose permission does not follow `<app>.<action>_<model>`.
ACTION_PERMISSIONS: dict[tuple[str, str], str] = {
    ("audit.auditevent", "export_subject"): "audit.export_data_subject",
    ("audit.auditevent", "erase_subject"): ERASE_DATA_SUBJECT,
    ("audit.storedexchange", "view_body"): VIEW_EXCHANGE_BODY,
    ("tenants.tenant", "manage_members"): MANAGE_TENANT_MEMBERS,
    ("auth.user", "assign_roles"): "tenants.assign_roles",
}


@dataclass(frozen=True, slots=True)
class TenantScope:
    """How a model belongs to a tenant, and which tenant permission grants each action.

    `tenant_field` leads from the model to its tenant's id (`pk` for Tenant itself). Actions not
    in `grants` can only be held globally. Rows without a tenant (a retention policy for
    every tenant, a sign-in event) are visible only to global holders.
    """

    tenant_field: str
    grants: Mapping[str, str] = field(default_factory=dict)


TENANT_SCOPES: dict[str, TenantScope] = {
    "tenants.tenant": TenantScope(
        "pk",
        {
            "view": VIEW_TENANT,
            "change": CHANGE_TENANT,
            "delete": DELETE_TENANT,
            "manage_members": MANAGE_TENANT_MEMBERS,
        },
    ),
    "tenants.apikey": TenantScope(
        "tenant_id",
        {
            "view": VIEW_TENANT,
            "add": MANAGE_TENANT_KEYS,
            "change": MANAGE_TENANT_KEYS,
            "revoke": MANAGE_TENANT_KEYS,
            "rotate": MANAGE_TENANT_KEYS,
        },
    ),
    # A tenant's admins organise its projects (CHANGE_TENANT); its members see them.
    "tenants.project": TenantScope(
        "tenant_id",
        {
            "view": VIEW_TENANT,
            "add": CHANGE_TENANT,
            "change": CHANGE_TENANT,
            "delete": CHANGE_TENANT,
        },
    ),
    "audit.auditevent": TenantScope(
        "tenant_id",
        {
            "view": AUDIT_TENANT,
            "export": AUDIT_TENANT,
            "report": AUDIT_TENANT,
            # Verification reports only sequence numbers and hashes of the whole chain.
            "verify": AUDIT_TENANT,
            "export_subject": EXPORT_TENANT_SUBJECTS,
            "erase_subject": ERASE_TENANT_SUBJECTS,
        },
    ),
    "audit.storedexchange": TenantScope(
        "tenant_id", {"view": AUDIT_TENANT, "view_body": VIEW_TENANT_BODIES}
    ),
    "audit.retentionpolicy": TenantScope(
        "tenant_id",
        {
            "view": VIEW_TENANT,
            "add": MANAGE_TENANT_RETENTION,
            "change": MANAGE_TENANT_RETENTION,
            "delete": MANAGE_TENANT_RETENTION,
        },
    ),
    # A tenant's members see its requests (the request log, the overview's request stream
    # and spend); the log's metadata only: bodies stay with audit.storedexchange's view_body.
    "routing.requestlog": TenantScope("tenant_id", {"view": VIEW_TENANT}),
    # Limits, budgets, alerts, notifiers and spend: a tenant's members see its own; only
    # holders of the global costs permissions (the cost-admin role) change them.
    "costs.ratelimit": TenantScope("tenant_id", {"view": VIEW_TENANT}),
    "costs.budget": TenantScope("tenant_id", {"view": VIEW_TENANT}),
    "costs.budgetalert": TenantScope("tenant_id", {"view": VIEW_TENANT}),
    "costs.notifier": TenantScope("tenant_id", {"view": VIEW_TENANT}),
    "costs.usagerecord": TenantScope("tenant_id", {"view": VIEW_TENANT}),
    "costs.usagerollup": TenantScope("tenant_id", {"view": VIEW_TENANT}),
    # A tenant's members see its policies; its admins write them (CHANGE_TENANT). Policies
    # of every tenant (no tenant) are seen and changed by global holders only.
    "policies.policy": TenantScope(
        "tenant_id",
        {
            "view": VIEW_TENANT,
            "add": CHANGE_TENANT,
            "change": CHANGE_TENANT,
            "delete": CHANGE_TENANT,
        },
    ),
}


# Every permission that can be held on one tenant.
TENANT_PERMISSIONS = frozenset(p for scope in TENANT_SCOPES.values() for p in scope.grants.values())


def _label(model: type[Model] | Model) -> str:
    return model._meta.label_lower


def _named(label: str, action: str) -> str:
    app_label, model_name = label.split(".")
    return ACTION_PERMISSIONS.get((label, action), f"{app_label}.{action}_{model_name}")


def permission_name(model: type[Model] | Model, action: str) -> str:
    """The global permission that allows `action` on `model`: `app.action_model` by default."""
    return _named(_label(model), action)


def tenant_permission(model: type[Model] | Model, action: str) -> str | None:
    """The Tenant permission that allows `action` on one tenant's `model` rows, if any."""
    scope = TENANT_SCOPES.get(_label(model))
    return scope.grants.get(action) if scope else None


def _holds_nothing(user: User) -> bool:
    return not user.is_authenticated or not user.is_active


def tenant_ids(
    user: User | None, model: type[Model] | Model, action: str
) -> frozenset[uuid.UUID] | None:
    """The tenants on whose `model` rows `user` may do `action`; None means every tenant.

    An empty set means none: for a model that is not tenant-scoped (providers, routes) a
    user either holds the global permission (None) or nothing.
    """
    if user is None:
        return None
    if _holds_nothing(user):
        return frozenset()
    if user.is_superuser or user.has_perm(permission_name(model, action)):
        return None
    granted = tenant_permission(model, action)
    if granted is None:
        return frozenset()
    if user.has_perm(granted):
        return None
    return _granted_tenants(user, granted)


def _granted_tenants(user: Any, granted: str) -> frozenset[uuid.UUID]:
    """The tenants `user` holds `granted` on, read once per user object.

    Like Django's own permission cache on the user, this lives as long as the user object:
    one request (a page asks the menu, the tabs and the table), or one re-check of a socket.
    """
    cache = getattr(user, "_atp_tenant_grants", None)
    if cache is None or cache.get("epoch") != _grants_epoch:
        cache = {"epoch": _grants_epoch}
        with contextlib.suppress(AttributeError):  # an object taking no attributes: no cache
            user._atp_tenant_grants = cache
    if granted not in cache:
        tenants = get_objects_for_user(
            user, granted, klass=Tenant, accept_global_perms=False, with_superuser=False
        )
        cache[granted] = frozenset(tenants.values_list("pk", flat=True))
    return cache[granted]


# Bumped when this process changes any object permission or group membership, so a user
# object that already asked sees the change (another process's users are new objects).
_grants_epoch = 0


def _grants_changed(**_: Any) -> None:
    global _grants_epoch
    _grants_epoch += 1


def watch_grants() -> None:
    from django.contrib.auth import get_user_model
    from django.db.models.signals import m2m_changed, post_delete, post_save
    from guardian.models import GroupObjectPermission, UserObjectPermission

    for model in (UserObjectPermission, GroupObjectPermission):
        post_save.connect(_grants_changed, sender=model, dispatch_uid=f"atp-grants-{model}")
        post_delete.connect(_grants_changed, sender=model, dispatch_uid=f"atp-grants-d-{model}")
    m2m_changed.connect(
        _grants_changed, sender=get_user_model().groups.through, dispatch_uid="atp-grants-groups"
    )


def may(user: User | None, model: type[Model] | Model, action: str) -> bool:
    """Whether `user` may do `action` on `model` rows of at least one tenant (or globally).

    This decides 403 versus going on; which rows are reachable is `restrict`'s business.
    """
    return tenant_ids(user, model, action) != frozenset()


def may_for_tenant(
    user: User | None,
    model: type[Model] | Model,
    action: str,
    tenant_id: uuid.UUID | str | None,
) -> bool:
    """Whether `user` may do `action` on `model` rows of one tenant (None: tenant-less rows)."""
    allowed = tenant_ids(user, model, action)
    if allowed is None:
        return True
    if tenant_id is None:
        return False
    try:
        return uuid.UUID(str(tenant_id)) in allowed
    except ValueError:
        return False


def tenant_of(obj: Model) -> Any:
    """The id of the tenant `obj` belongs to (None when it has none or is not scoped)."""
    scope = TENANT_SCOPES.get(_label(obj))
    if scope is None:
        return None
    return obj.pk if scope.tenant_field == "pk" else getattr(obj, scope.tenant_field)


def may_on(user: User | None, obj: Model, action: str) -> bool:
    """Whether `user` may do `action` on `obj` (its tenant's grant counts for scoped models)."""
    return may_for_tenant(user, type(obj), action, tenant_of(obj))


def restrict(queryset: QuerySet, user: User | None, action: str = "view") -> QuerySet:
    """`queryset` narrowed to the rows `user` may do `action` on (NetBox's `restrict`).

    Global holders get the queryset unchanged; per-tenant holders get their tenants' rows;
    everyone else gets none.
    """
    allowed = tenant_ids(user, queryset.model, action)
    if allowed is None:
        return queryset
    if not allowed:
        return queryset.none()
    scope = TENANT_SCOPES[_label(queryset.model)]
    return queryset.filter(**{f"{scope.tenant_field}__in": allowed})


def allowed_tenants(user: User | None, model: type[Model] | Model, action: str) -> QuerySet:
    """The tenants a `model` row may belong to when `user` does `action` (e.g. creates it)."""
    allowed = tenant_ids(user, model, action)
    tenants = Tenant.objects.all()
    if allowed is None:
        return tenants
    return tenants.filter(pk__in=allowed) if allowed else tenants.none()


# --- ready-made global permission sets -------------------------------------------------------
# Management models and the actions the management API offers on each.
MANAGEMENT_ACTIONS: dict[str, tuple[str, ...]] = {
    "tenants.tenant": ("view", "add", "change", "delete"),
    "tenants.apikey": ("view", "add", "change", "revoke", "rotate"),
    "tenants.admintoken": ("view", "add", "revoke"),
    "providers.provider": ("view", "add", "change", "delete"),
    "providers.modeldeployment": ("view", "add", "change", "delete"),
    "routing.route": ("view", "add", "change", "delete"),
    "audit.auditevent": ("view", "verify", "export", "report"),
    "audit.storedexchange": ("view",),
    "audit.retentionpolicy": ("view", "add", "change", "delete"),
}


# Reads every management object's metadata (not stored bodies).
VIEWER_PERMISSIONS = frozenset(_named(label, "view") for label in MANAGEMENT_ACTIONS)
# Every management action except the dedicated ones and stored bodies: what staff users
# could do before permissions were checked (the `atp-managers` group of the upgrade).
MANAGER_PERMISSIONS = frozenset(
    _named(label, action) for label, actions in MANAGEMENT_ACTIONS.items() for action in actions
) | {_named("audit.auditevent", "export_subject")}
