"""Writes to tenants, API keys, admin tokens and permission grants: audited, bumping the config
version on commit where the data plane reads them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from apps.audit.services import audit_record
from apps.audit.snapshots import audit_change, snapshot_of, stored_snapshot
from apps.tenants.keys import (
    generate_admin_token,
    generate_api_key,
    hash_key,
    key_strength_error,
    visible_prefix,
)
from apps.tenants.models import AdminToken, ApiKey, Project, Tenant
from apps.tenants.permissions import ADD_ADMIN_TOKEN_FOR_OTHERS, TENANT_PERMISSIONS
from apps.tenants.roles import recorded_by_service
from atp_site.lib import config_version


class _Unset:
    """Marks an optional argument the caller did not pass (None is a meaningful value)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()

TENANT_FIELDS = frozenset(
    {
        "slug",
        "name",
        "is_active",
        "store_bodies",
        "cost_mode",
        "preferred_regions",
        "carbon_aware",
        "data_classification",
        "allowed_regions",
        "plan",
        "time_zone",
        "baseline_model",
        "gain_share_percent",
    }
)


def _bump_on_commit() -> None:
    transaction.on_commit(config_version.bump)


# --- tenants --------------------------------------------------------------------------------


@transaction.atomic
def tenant_create(*, slug: str, name: str, is_active: bool = True, **options: Any) -> Tenant:
    """Create a tenant; `options` are any other of TENANT_FIELDS (body storage, routing)."""
    unknown = set(options) - TENANT_FIELDS
    if unknown:
        raise TypeError(f"tenant_create() got unexpected fields: {sorted(unknown)}")
    tenant = Tenant(slug=slug, name=name, is_active=is_active, **options)
    tenant.full_clean()
    tenant.save()
    audit_change(
        event_type="tenant.created",
        resource_id=tenant.pk,
        tenant_id=tenant.pk,
        after=snapshot_of(tenant),
    )
    _bump_on_commit()
    return tenant


@transaction.atomic
def tenant_update(*, tenant: Tenant, **fields: Any) -> Tenant:
    """Change any of `slug`, `name`, `is_active`; other names are a programming error."""
    unknown = set(fields) - TENANT_FIELDS
    if unknown:
        raise TypeError(f"tenant_update() got unexpected fields: {sorted(unknown)}")
    before = stored_snapshot(tenant)
    for field, value in fields.items():
        setattr(tenant, field, value)
    tenant.full_clean()
    tenant.save()
    audit_change(
        event_type="tenant.updated",
        resource_id=tenant.pk,
        tenant_id=tenant.pk,
        before=before,
        after=snapshot_of(tenant),
    )
    _bump_on_commit()
    return tenant


@transaction.atomic
def tenant_delete(*, tenant: Tenant) -> None:
    """Delete the tenant and, by cascade, its API keys."""
    tenant_id, before = tenant.pk, snapshot_of(tenant)
    keys = list(tenant.api_keys.values_list("id", flat=True))
    tenant.delete()
    audit_change(
        event_type="tenant.deleted",
        resource_id=tenant_id,
        tenant_id=tenant_id,
        before=before,
        data={"deleted_api_keys": [str(k) for k in keys]},
    )
    _bump_on_commit()


# --- projects -------------------------------------------------------------------------------

PROJECT_FIELDS = frozenset({"slug", "name", "description"})


def _check_project_slug_free(*, tenant: Tenant, slug: str, exclude_pk: Any = None) -> None:
    taken = Project.objects.filter(tenant=tenant, slug=slug).exclude(pk=exclude_pk)
    if taken.exists():
        message = f"Tenant '{tenant.slug}' already has a project '{slug}'."
        raise ValidationError({"slug": ValidationError(message, code="unique")})


@transaction.atomic
def project_create(*, tenant: Tenant, slug: str, name: str = "", description: str = "") -> Project:
    """Create a project in `tenant`; its name defaults to the slug."""
    _check_project_slug_free(tenant=tenant, slug=slug)
    project = Project(tenant=tenant, slug=slug, name=name or slug, description=description)
    project.full_clean()
    project.save()
    audit_change(
        event_type="project.created",
        resource_id=project.pk,
        tenant_id=tenant.pk,
        after=snapshot_of(project),
    )
    _bump_on_commit()
    return project


@transaction.atomic
def project_update(*, project: Project, **fields: Any) -> Project:
    """Change a project's slug, name or description; it stays with its tenant."""
    unknown = set(fields) - PROJECT_FIELDS
    if unknown:
        raise TypeError(f"project_update() got unexpected fields: {sorted(unknown)}")
    if "slug" in fields:
        _check_project_slug_free(tenant=project.tenant, slug=fields["slug"], exclude_pk=project.pk)
    before = stored_snapshot(project)
    for field_name, value in fields.items():
        setattr(project, field_name, value)
    project.full_clean()
    project.save()
    audit_change(
        event_type="project.updated",
        resource_id=project.pk,
        tenant_id=project.tenant_id,
        before=before,
        after=snapshot_of(project),
    )
    _bump_on_commit()
    return project


@transaction.atomic
def project_delete(*, project: Project) -> None:
    """Delete the project; its keys keep working, directly under the tenant."""
    project_id, tenant_id, before = project.pk, project.tenant_id, snapshot_of(project)
    keys = [str(k) for k in project.api_keys.values_list("id", flat=True)]
    project.delete()
    audit_change(
        event_type="project.deleted",
        resource_id=project_id,
        tenant_id=tenant_id,
        before=before,
        data={"keys_moved_to_tenant": keys},
    )
    _bump_on_commit()


# --- API keys -------------------------------------------------------------------------------


def _clean_allowed_models(value: Iterable[str]) -> list[str]:
    if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
        raise ValidationError({"allowed_models": "Must be a list of model names."})
    # Keep the caller's order but drop repeats so comparisons stay stable.
    return list(dict.fromkeys(value))


def _check_name_free(*, tenant: Tenant, name: str, exclude_pk: Any = None) -> None:
    clash = ApiKey.objects.filter(tenant=tenant, name=name, revoked_at__isnull=True)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ValidationError(
            {
                "name": ValidationError(
                    "This tenant already has a live key with this name.", code="unique"
                )
            }
        )


@transaction.atomic
def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    allowed_models: Iterable[str] = (),
    expires_at: datetime | None = None,
    plaintext: str | None = None,
    created_by: AbstractBaseUser | None = None,
    project: Project | None = None,
    plan: str = "",
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never stored or shown again.

    A given `plaintext` (a key already distributed, e.g. from a config file) is used as it
    is when it is strong enough (apps.tenants.keys.key_strength_error) and not in use;
    otherwise a new random key is made.
    """
    api_key, plaintext = _api_key_create(
        tenant=tenant,
        name=name,
        allowed_models=allowed_models,
        expires_at=expires_at,
        plaintext=plaintext,
        created_by=created_by,
        project=project,
        plan=plan,
    )
    audit_change(
        event_type="api_key.created",
        resource_id=api_key.pk,
        tenant_id=api_key.tenant_id,
        after=snapshot_of(api_key),
    )
    return api_key, plaintext


def _api_key_create(
    *,
    tenant: Tenant,
    name: str,
    allowed_models: Iterable[str] = (),
    expires_at: datetime | None = None,
    plaintext: str | None = None,
    created_by: AbstractBaseUser | None = None,
    project: Project | None = None,
    plan: str = "",
) -> tuple[ApiKey, str]:
    if plaintext is not None:
        if problem := key_strength_error(plaintext):
            raise ValidationError({"key": f"The key {name!r} {problem}."})
        if ApiKey.objects.filter(key_hash=hash_key(plaintext)).exists():
            raise ValidationError({"key": "This key is already in use."})
    else:
        plaintext = generate_api_key()
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Must be in the future."})
    _check_name_free(tenant=tenant, name=name)
    api_key = ApiKey(
        tenant=tenant,
        project=project,
        name=name,
        prefix=visible_prefix(plaintext),
        key_hash=hash_key(plaintext),
        allowed_models=_clean_allowed_models(allowed_models),
        expires_at=expires_at,
        created_by=created_by,
        plan=plan,
    )
    api_key.full_clean()
    api_key.save()
    _bump_on_commit()
    return api_key, plaintext


@transaction.atomic
def api_key_update(
    *,
    api_key: ApiKey,
    name: str = UNSET,
    allowed_models: Iterable[str] = UNSET,
    expires_at: datetime | None = UNSET,
    project: Project | None = UNSET,
    plan: str = UNSET,
) -> ApiKey:
    """Change a live key's name, model allow-list, expiry, project (one of its tenant's,
    or None) or plan; revoked keys are frozen."""
    if api_key.is_revoked:
        raise ValidationError("A revoked key cannot be changed.")
    before = stored_snapshot(api_key)
    if name is not UNSET:
        _check_name_free(tenant=api_key.tenant, name=name, exclude_pk=api_key.pk)
        api_key.name = name
    if allowed_models is not UNSET:
        api_key.allowed_models = _clean_allowed_models(allowed_models)
    if expires_at is not UNSET:
        api_key.expires_at = expires_at
    if project is not UNSET:
        api_key.project = project
    if plan is not UNSET:
        api_key.plan = plan
    api_key.full_clean()
    api_key.save()
    audit_change(
        event_type="api_key.updated",
        resource_id=api_key.pk,
        tenant_id=api_key.tenant_id,
        before=before,
        after=snapshot_of(api_key),
    )
    _bump_on_commit()
    return api_key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke the key; revoking an already revoked key keeps its original revocation time,
    and ends the grace period of a rotated key that is still in it."""
    in_grace = api_key.grace_until is not None and api_key.grace_until > timezone.now()
    if api_key.revoked_at is None or in_grace:
        before = snapshot_of(api_key)
        if in_grace:
            api_key.grace_until = None
            api_key.save(update_fields=["grace_until"])
            _bump_on_commit()
        if api_key.revoked_at is None:
            _api_key_revoke(api_key)
        audit_change(
            event_type="api_key.revoked",
            resource_id=api_key.pk,
            tenant_id=api_key.tenant_id,
            before=before,
            after=snapshot_of(api_key),
        )
    return api_key


def _api_key_revoke(api_key: ApiKey) -> None:
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    _bump_on_commit()


@transaction.atomic
def api_key_rotate(
    *,
    api_key: ApiKey,
    plaintext: str | None = None,
    created_by: AbstractBaseUser | None = None,
    grace_seconds: int | None = None,
) -> tuple[ApiKey, str]:
    """Revoke the key and create its replacement with the same name and settings.

    `plaintext` sets the replacement's key (as in `api_key_create`); by default it is random.
    For `grace_seconds` (default ATP_KEY_ROTATION_GRACE_SECONDS) the old key keeps working
    beside its replacement, so callers can switch without an outage.
    One `api_key.rotated` event records it: `before` is the old key as it was, `after` the
    replacement, and `resource_id` the old key's id.
    """
    if api_key.is_revoked:
        raise ValidationError("A revoked key cannot be rotated; create a new key instead.")
    before = snapshot_of(api_key)
    if grace_seconds is None:
        grace_seconds = settings.ATP_KEY_ROTATION_GRACE_SECONDS
    if grace_seconds < 0 or grace_seconds > MAX_ROTATION_GRACE_SECONDS:
        raise ValidationError(
            {"grace_seconds": f"Must be between 0 and {MAX_ROTATION_GRACE_SECONDS} seconds."}
        )
    _api_key_revoke(api_key)
    if grace_seconds:
        api_key.grace_until = api_key.revoked_at + timedelta(seconds=grace_seconds)
        api_key.save(update_fields=["grace_until"])
    # A past expiry is carried over as none: the replacement should be usable.
    expires_at = api_key.expires_at if not api_key.is_expired else None
    new_key, new_plaintext = _api_key_create(
        tenant=api_key.tenant,
        name=api_key.name,
        allowed_models=api_key.allowed_models,
        expires_at=expires_at,
        plaintext=plaintext,
        created_by=created_by or api_key.created_by,
        project=api_key.project,
        plan=api_key.plan,
    )
    audit_change(
        event_type="api_key.rotated",
        resource_id=api_key.pk,
        tenant_id=api_key.tenant_id,
        before=before,
        after=snapshot_of(new_key),
        data={
            "replaced_by": str(new_key.pk),
            "revoked_at": api_key.revoked_at.isoformat(),
            "grace_until": api_key.grace_until.isoformat() if api_key.grace_until else None,
        },
    )
    return new_key, new_plaintext


def api_keys_touch(last_used: dict[Any, datetime]) -> None:
    """Move keys' last-used times forward (the usage ledger's writer calls this behind the
    responses; not audited, not a configuration change)."""
    for key_id, when in last_used.items():
        ApiKey.objects.filter(pk=key_id).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=when)
        ).update(last_used_at=when)


MAX_ROTATION_GRACE_SECONDS = 30 * 86400


# --- admin tokens ---------------------------------------------------------------------------


@transaction.atomic
def admin_token_create(
    *,
    user: AbstractBaseUser,
    name: str,
    expires_at: datetime | None = None,
    by: AbstractBaseUser | None = None,
    parent: AdminToken | None = None,
) -> tuple[AdminToken, str]:
    """Create a personal management-API token for `user`; the plaintext is returned once.

    `by` is who asks (None: an operator at the command line). A token acts with its user's
    permissions, so making one for somebody else needs the dedicated permission
    `tenants.add_admintoken_for_others` (PermissionDenied otherwise). `parent` is the admin
    token the request was authenticated with: the new token may not outlive it, so with no
    expiry asked for it gets the parent's, and a later one is refused.
    """
    if by is not None and by.pk != user.pk and not by.has_perm(ADD_ADMIN_TOKEN_FOR_OTHERS):
        raise PermissionDenied("You may create admin tokens only for yourself.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Must be in the future."})
    if parent is not None and parent.expires_at is not None:
        if expires_at is None:
            expires_at = parent.expires_at
        elif expires_at > parent.expires_at:
            raise ValidationError(
                {
                    "expires_at": "Must not be later than the expiry of the admin token "
                    f"making it ({parent.expires_at.isoformat()})."
                }
            )
    plaintext = generate_admin_token()
    token = AdminToken(
        user=user,
        name=name,
        prefix=visible_prefix(plaintext),
        token_hash=hash_key(plaintext),
        expires_at=expires_at,
    )
    token.full_clean()
    token.save()
    audit_change(event_type="admin_token.created", resource_id=token.pk, after=snapshot_of(token))
    return token, plaintext


@transaction.atomic
def admin_token_revoke(*, token: AdminToken) -> AdminToken:
    if token.revoked_at is None:
        before = snapshot_of(token)
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_change(
            event_type="admin_token.revoked",
            resource_id=token.pk,
            before=before,
            after=snapshot_of(token),
        )
    return token


# --- permission grants ----------------------------------------------------------------------


def _permission(name: str) -> Permission:
    app_label, _, codename = name.partition(".")
    found = Permission.objects.filter(
        content_type__app_label=app_label, codename=codename
    ).select_related("content_type")
    permission = found.first()
    if permission is None:
        raise ValidationError({"permission": f"No permission {name!r} (app_label.codename)."})
    return permission


def _grant_target(user: Any, group: Group | None) -> tuple[Any, str, str, dict[str, str]]:
    if (user is None) == (group is None):
        raise TypeError("give exactly one of user and group")
    if user is not None:
        return user, "user", str(user.pk), {"username": user.get_username()}
    return group, "group", str(group.pk), {"group": group.name}


@transaction.atomic
def permission_grant(
    *, permission: str, user: Any = None, group: Group | None = None, tenant: Tenant | None = None
) -> None:
    """Give a user or a group `permission` (`app_label.codename`), audited.

    Without `tenant` it is held globally, on every object; with one it must be one of
    apps.tenants.permissions.TENANT_PERMISSIONS and is held on that tenant only, through
    django-guardian (TENANT_SCOPES there says what each allows).
    """
    _permission_change(permission, user, group, tenant, grant=True)


@transaction.atomic
def permission_revoke(
    *, permission: str, user: Any = None, group: Group | None = None, tenant: Tenant | None = None
) -> None:
    """Take back what `permission_grant` gave (globally, or on `tenant`), audited."""
    _permission_change(permission, user, group, tenant, grant=False)


def _permission_change(
    name: str, user: Any, group: Group | None, tenant: Tenant | None, *, grant: bool
) -> None:
    holder, kind, holder_id, who = _grant_target(user, group)
    permission = _permission(name)
    if tenant is not None and name not in TENANT_PERMISSIONS:
        raise ValidationError(
            {
                "permission": f"{name} cannot be held on one tenant; per-tenant permissions: "
                f"{', '.join(sorted(TENANT_PERMISSIONS))}."
            }
        )
    # This records its own event; the receivers auditing changes made elsewhere stay quiet.
    with recorded_by_service():
        if tenant is None:
            permissions_of = holder.user_permissions if kind == "user" else holder.permissions
            (permissions_of.add if grant else permissions_of.remove)(permission)
        else:
            (assign_perm if grant else remove_perm)(permission, holder, tenant)
    audit_record(
        event_type="permission.granted" if grant else "permission.revoked",
        action="grant" if grant else "revoke",
        tenant_id=tenant.pk if tenant else None,
        resource_type=kind,
        resource_id=holder_id,
        data={**who, "permission": name, "tenant": tenant.slug if tenant else ""},
        classification="restricted",
    )
