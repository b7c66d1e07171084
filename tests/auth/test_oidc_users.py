"""Users from the OpenID provider: created once, found by issuer and subject, their roles and
tenant memberships replaced at every sign-in; ID tokens checked for issuer and audience."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import SuspiciousOperation

from apps.audit.models import AuditEvent
from apps.tenants.models import Tenant
from apps.tenants.roles import user_memberships, user_roles
from atp_site.auth.claims import ClaimMapping, parse_role_mapping, parse_tenant_mapping
from atp_site.auth.models import OidcIdentity
from atp_site.auth.oidc import OidcBackend
from atp_site.auth.services import SignInRefused, oidc_user_sign_in

pytestmark = pytest.mark.django_db

ISSUER = "https://login.example.com"
MAPPING = ClaimMapping(
    role_mapping=parse_role_mapping('{"ops": "platform-admin", "audit": "auditor"}'),
    tenant_mapping=parse_tenant_mapping('{"acme-admins": "acme:tenant-admin"}'),
)


def _sign_in(**claims):
    return oidc_user_sign_in(
        issuer=ISSUER,
        claims={"sub": "u-1", "preferred_username": "olivia", **claims},
        mapping=MAPPING,
        username_claim="preferred_username",
    )


def _tenant_role(user, tenant) -> str | None:
    return {t.slug: role for t, role in user_memberships(user).items()}.get(tenant.slug)


@pytest.fixture
def acme():
    return Tenant.objects.create(slug="acme", name="Acme")


def test_first_sign_in_creates_the_user_with_the_mapped_roles(acme):
    user = _sign_in(
        email="olivia@example.com",
        given_name="Olivia",
        groups=["ops", "elsewhere"],
        atp_tenants=["acme:tenant-member"],
    )
    assert user.username == "olivia" and user.email == "olivia@example.com"
    assert user.first_name == "Olivia" and not user.has_usable_password()
    assert not user.is_staff and not user.is_superuser
    assert OidcIdentity.objects.get(user=user).subject == "u-1"
    assert user_roles(user) == {"platform-admin"}
    assert _tenant_role(user, acme) == "tenant-member"
    [created] = AuditEvent.objects.filter(event_type="user.created")
    assert created.data == {"username": "olivia", "source": "oidc", "issuer": ISSUER}
    [changed] = AuditEvent.objects.filter(event_type="user.roles_changed")
    assert changed.data["source"] == "oidc"


def test_every_sign_in_replaces_roles_and_memberships(acme):
    _sign_in(groups=["ops", "acme-admins"])
    user = _sign_in(groups=["audit"], preferred_username="renamed-at-the-provider")
    assert user.username == "olivia"  # found by subject, not by name
    assert user_roles(user) == {"auditor"}
    assert _tenant_role(user, acme) is None
    user = _sign_in(groups=["audit"])
    events = AuditEvent.objects.filter(event_type="user.roles_changed").count()
    assert events == 2  # nothing changed the third time, nothing recorded
    user = _sign_in()
    assert user_roles(user) == set()


def test_with_roles_from_claims_off_sign_ins_leave_roles_alone(acme):
    user = _sign_in(groups=["ops"])
    user = oidc_user_sign_in(
        issuer=ISSUER,
        claims={"sub": "u-1", "groups": ["audit"]},
        mapping=MAPPING,
        username_claim="preferred_username",
        roles_from_claims=False,
    )
    assert user_roles(user) == {"platform-admin"}


def test_the_strongest_tenant_role_wins_and_unknown_tenants_are_skipped(acme):
    user = _sign_in(groups=["acme-admins"], atp_tenants=["acme:tenant-member", "nope:tenant-admin"])
    assert _tenant_role(user, acme) == "tenant-admin"


def test_a_local_account_with_the_same_name_is_never_taken_over(user_factory):
    local = user_factory(username="olivia", is_superuser=True)
    with pytest.raises(SignInRefused, match="already exists and is not linked"):
        _sign_in(groups=["ops"])
    local.refresh_from_db()
    assert local.is_superuser and not OidcIdentity.objects.exists()


def test_a_disabled_user_is_refused():
    user = _sign_in()
    user.is_active = False
    user.save()
    with pytest.raises(SignInRefused, match="disabled"):
        _sign_in()


def test_the_username_falls_back_to_email_then_subject():
    user = oidc_user_sign_in(
        issuer=ISSUER,
        claims={"sub": "abc", "email": "e@example.com"},
        mapping=MAPPING,
        username_claim="upn",
    )
    assert user.username == "e@example.com"
    user = oidc_user_sign_in(
        issuer=ISSUER, claims={"sub": "xyz"}, mapping=MAPPING, username_claim="upn"
    )
    assert user.username == "xyz"


def test_no_subject_is_refused():
    with pytest.raises(SignInRefused):
        oidc_user_sign_in(issuer=ISSUER, claims={}, mapping=MAPPING, username_claim="sub")


# --- ID token checks ------------------------------------------------------------------------


@pytest.fixture
def backend():
    backend = object.__new__(OidcBackend)
    backend.OIDC_RP_CLIENT_ID = "atp"
    backend.issuer = ISSUER
    return backend


@pytest.fixture
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _token(key, **claims):
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": "atp", "sub": "u-1", "iat": now, "exp": now + 300}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, "RS256")


def test_a_good_id_token_passes(backend, key):
    assert backend._verify_jws(_token(key), key.public_key())["sub"] == "u-1"


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "https://evil.example.com"},
        {"aud": "another-client"},
        {"exp": int(time.time()) - 3600},
        {"exp": None},
        {"sub": None},
    ],
)
def test_a_token_for_someone_else_or_expired_is_refused(backend, key, claims):
    with pytest.raises(jwt.InvalidTokenError):
        backend._verify_jws(_token(key, **claims), key.public_key())


def test_a_token_signed_with_another_key_or_algorithm_is_refused(backend, key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(jwt.InvalidSignatureError):
        backend._verify_jws(_token(other), key.public_key())
    hs = jwt.encode({"iss": ISSUER, "aud": "atp", "sub": "x"}, "secret-key-" * 4, "HS256")
    with pytest.raises(SuspiciousOperation):
        backend._verify_jws(hs, key.public_key())
