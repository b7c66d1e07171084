"""From ID-token claims to roles and tenant memberships, and the mapping's checks."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.tenants import roles
from atp_site.auth.claims import (
    GLOBAL_ROLES,
    TENANT_ROLES,
    ClaimMapping,
    claim_values,
    grants_for,
    parse_role_mapping,
    parse_tenant_mapping,
    parse_tenant_role,
)

MAPPING = ClaimMapping(
    role_mapping=parse_role_mapping(
        '{"atp-admins": "super-admin", "ops": ["platform-admin", "read-only"]}'
    ),
    tenant_mapping=parse_tenant_mapping('{"acme-admins": "acme:tenant-admin"}'),
)


def test_the_role_names_are_the_role_services_names():
    assert set(roles.ROLE_NAMES) == GLOBAL_ROLES
    assert set(roles.TENANT_ROLE_NAMES) == set(TENANT_ROLES)


def test_mapped_groups_grant_their_roles_and_others_are_ignored():
    grants = grants_for({"groups": ["ops", "atp-admins", "marketing"]}, MAPPING)
    assert grants.roles == {"super-admin", "platform-admin", "read-only"}
    assert grants.tenants == {}


def test_no_claim_grants_nothing():
    grants = grants_for({"sub": "1"}, MAPPING)
    assert grants.roles == frozenset() and grants.tenants == {}


def test_tenants_come_from_the_tenants_claim_and_the_tenant_mapping():
    claims = {
        "groups": ["acme-admins"],
        "atp_tenants": ["globex:tenant-member", "initech:tenant-admin", "bad", "x:owner"],
    }
    grants = grants_for(claims, MAPPING)
    assert grants.tenants == {
        "acme": "tenant-admin",
        "globex": "tenant-member",
        "initech": "tenant-admin",
    }
    assert grants.ignored == ("bad", "x:owner")


def test_a_tenant_named_twice_keeps_the_strongest_role():
    claims = {"groups": ["acme-admins"], "atp_tenants": ["acme:tenant-member"]}
    assert grants_for(claims, MAPPING).tenants == {"acme": "tenant-admin"}
    claims = {"atp_tenants": ["acme:tenant-member", "acme:tenant-admin", "acme:tenant-member"]}
    assert grants_for(claims, MAPPING).tenants == {"acme": "tenant-admin"}


def test_a_single_string_claim_and_a_nested_claim_are_read():
    assert claim_values({"groups": "ops"}, "groups") == ["ops"]
    keycloak = {"realm_access": {"roles": ["ops", 7, "", "atp-admins"]}}
    assert claim_values(keycloak, "realm_access.roles") == ["ops", "atp-admins"]
    assert claim_values(keycloak, "realm_access.missing") == []
    assert claim_values({"groups": {"not": "a list"}}, "groups") == []
    nested = ClaimMapping(roles_claim="realm_access.roles", role_mapping=MAPPING.role_mapping)
    assert grants_for(keycloak, nested).roles == {"super-admin", "platform-admin", "read-only"}


def test_tenant_role_values():
    assert parse_tenant_role("acme:tenant-admin") == ("acme", "tenant-admin")
    assert parse_tenant_role(" acme:tenant-member ") == ("acme", "tenant-member")
    assert parse_tenant_role("acme") is None
    assert parse_tenant_role(":tenant-admin") is None
    assert parse_tenant_role("acme:super-admin") is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"x": "superadmin"}', "unknown role(s) superadmin"),
        ('{"x": ["auditor", "owner"]}', "unknown role(s) owner"),
        ('{"x": 3}', "must be a name or a list of names"),
        ('{"x": []}', "must be a name or a list of names"),
        ('["auditor"]', "must be a JSON object"),
        ("{not json", "is not valid JSON"),
    ],
)
def test_a_bad_role_mapping_is_refused_with_a_reason(raw, message):
    with pytest.raises(ImproperlyConfigured, match="ATP_OIDC_ROLE_MAPPING") as error:
        parse_role_mapping(raw)
    assert message in str(error.value)


def test_a_bad_tenant_mapping_is_refused_with_a_reason():
    with pytest.raises(ImproperlyConfigured, match="slug:tenant-admin or slug:tenant-member"):
        parse_tenant_mapping('{"x": "acme:auditor"}')
    assert parse_tenant_mapping("") == {}
