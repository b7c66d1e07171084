"""Writes of the sign-in package: users from an OpenID provider, TOTP devices. Each audited."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.audit.services import audit_record
from apps.tenants.models import Tenant
from atp_site.auth.claims import ClaimMapping, claim_values, describe, grants_for
from atp_site.auth.models import OidcIdentity

logger = logging.getLogger(__name__)

OIDC_SOURCE = "oidc"
USERNAME_MAX = 150


class SignInRefused(Exception):
    """The provider vouched for someone ATP will not sign in; the message is safe to show."""


def _username_from(claims: Mapping[str, Any], username_claim: str) -> str:
    for name in (username_claim, "preferred_username", "email", "sub"):
        values = claim_values(claims, name)
        if values and values[0].strip():
            return values[0].strip()[:USERNAME_MAX]
    raise SignInRefused("The provider sent no name for this account.")


def _profile(claims: Mapping[str, Any]) -> dict[str, str]:
    fields = {
        "email": claims.get("email") if claims.get("email_verified", True) else "",
        "first_name": claims.get("given_name"),
        "last_name": claims.get("family_name"),
    }
    return {k: str(v)[:150] for k, v in fields.items() if isinstance(v, str)}


def _apply_grants(*, user: AbstractBaseUser, claims: Mapping[str, Any], mapping: ClaimMapping):
    """Replace the user's global roles and tenant memberships with what the claims grant."""
    from apps.tenants.roles import tenant_memberships_set, user_roles_set

    grants = grants_for(claims, mapping)
    tenants = {t.slug: t for t in Tenant.objects.filter(slug__in=list(grants.tenants))}
    unknown = sorted(set(grants.tenants) - set(tenants))
    if unknown or grants.ignored:
        logger.warning(
            "OIDC sign-in of %s: no tenant %s; values not understood: %s",
            user.get_username(),
            describe(unknown),
            describe(grants.ignored),
        )
    user_roles_set(user=user, roles=sorted(grants.roles), actor=None, source=OIDC_SOURCE)
    tenant_memberships_set(
        user=user,
        memberships={
            tenants[slug]: role for slug, role in grants.tenants.items() if slug in tenants
        },
        actor=None,
        source=OIDC_SOURCE,
    )
    return grants


@transaction.atomic
def oidc_user_sign_in(
    *,
    issuer: str,
    claims: Mapping[str, Any],
    mapping: ClaimMapping,
    username_claim: str,
    roles_from_claims: bool = True,
) -> AbstractBaseUser:
    """The user `claims` (verified ID token claims) identify, created on first sign-in.

    The profile (email, names) follows the provider, and (unless `roles_from_claims` is
    off) the user's global roles and tenant memberships are replaced by what the claims
    grant, so a change at the provider takes effect at the next sign-in.
    """
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise SignInRefused("The provider's ID token has no subject.")
    User = get_user_model()
    identity = (
        OidcIdentity.objects.select_related("user")
        .select_for_update()
        .filter(issuer=issuer, subject=subject)
        .first()
    )
    profile = _profile(claims)
    if identity is None:
        username = _username_from(claims, username_claim)
        if User.objects.filter(**{f"{User.USERNAME_FIELD}__iexact": username}).exists():
            raise SignInRefused(
                f"An account named {username!r} already exists and is not linked to this "
                "provider. Ask an administrator to rename or remove it."
            )
        user = User(**{User.USERNAME_FIELD: username}, **profile)
        user.set_unusable_password()
        try:
            user.full_clean(exclude=["password"])
        except ValidationError as exc:
            raise SignInRefused(f"The provider's name {username!r} cannot be used here.") from exc
        try:
            with transaction.atomic():
                user.save()
                identity = OidcIdentity.objects.create(user=user, issuer=issuer, subject=subject)
        except IntegrityError:
            raise SignInRefused(
                "This account is being created by another sign-in; retry."
            ) from None
        audit_record(
            event_type="user.created",
            action="create",
            resource_type="user",
            resource_id=str(user.pk),
            data={"username": username, "source": OIDC_SOURCE, "issuer": issuer},
        )
    else:
        user = identity.user
        if not user.is_active:
            raise SignInRefused("This account is disabled.")
        changed = [k for k, v in profile.items() if getattr(user, k) != v]
        if changed:
            for key in changed:
                setattr(user, key, profile[key])
            user.save(update_fields=changed)
    identity.last_login_at = timezone.now()
    identity.save(update_fields=["last_login_at"])
    if roles_from_claims:
        _apply_grants(user=user, claims=claims, mapping=mapping)
    return user


# --- TOTP second factor -----------------------------------------------------------------------


def _audit_device(event_type: str, user: AbstractBaseUser, device: TOTPDevice, **data: Any):
    audit_record(
        event_type=event_type,
        action=event_type.rsplit(".", 1)[1],
        resource_type="user",
        resource_id=str(user.pk),
        data={"username": user.get_username(), "device": device.name, **data},
    )


@transaction.atomic
def totp_device_start(*, user: AbstractBaseUser) -> TOTPDevice:
    """An unconfirmed TOTP device for `user` (the one already started, if any).

    It signs nothing in until `totp_device_confirm` accepts a code from it.
    """
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


@transaction.atomic
def totp_device_confirm(*, user: AbstractBaseUser, device: TOTPDevice) -> bool:
    """Confirm `device`, whose current code the user has just given; it replaces any other."""
    if device.user_id != user.pk or device.confirmed:
        return False
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    _audit_device("auth.otp_enrolled", user, device)
    return True


@transaction.atomic
def totp_device_remove(*, user: AbstractBaseUser) -> int:
    """Remove the user's TOTP devices; the number removed."""
    devices = list(TOTPDevice.objects.filter(user=user))
    for device in devices:
        if device.confirmed:
            _audit_device("auth.otp_removed", user, device)
        device.delete()
    return len(devices)
