"""Serializers of the tenants management API; key hashes never leave the server."""

from __future__ import annotations

from rest_framework import serializers

from apps.tenants.models import AdminToken, ApiKey, Project, Tenant
from apps.tenants.roles import GLOBAL_ROLES, TENANT_ROLE_NAMES
from apps.tenants.services import MAX_ROTATION_GRACE_SECONDS
from atp_site.lib.api_input import LineField, ModelSerializer


class TenantSerializer(ModelSerializer):
    class Meta:
        model = Tenant
        fields = [
            "id",
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
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class TenantBriefSerializer(ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "slug", "name"]


class ProjectSerializer(ModelSerializer):
    live_keys = serializers.IntegerField(read_only=True, help_text="Keys not revoked.")

    class Meta:
        model = Project
        fields = [
            "id",
            "tenant",
            "slug",
            "name",
            "description",
            "live_keys",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"name": {"required": False, "help_text": "Defaults to the slug."}}
        # Slug uniqueness within the tenant is checked by the service, which names the field.
        validators: list = []


class ProjectUpdateSerializer(ProjectSerializer):
    """A project stays with its tenant."""

    class Meta(ProjectSerializer.Meta):
        read_only_fields = [*ProjectSerializer.Meta.read_only_fields, "tenant"]


class ApiKeySerializer(ModelSerializer):
    allowed_models = serializers.ListField(child=LineField(max_length=200), required=False)
    is_revoked = serializers.BooleanField(read_only=True)
    is_expired = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "tenant",
            "project",
            "name",
            "prefix",
            "allowed_models",
            "plan",
            "expires_at",
            "revoked_at",
            "grace_until",
            "is_revoked",
            "is_expired",
            "last_used_at",
            "created_at",
            "created_by",
        ]
        read_only_fields = [
            "id",
            "prefix",
            "revoked_at",
            "grace_until",
            "last_used_at",
            "created_at",
            "created_by",
        ]
        # Name uniqueness among live keys is checked by the service, which names the field.
        validators: list = []


class ApiKeyUpdateSerializer(ApiKeySerializer):
    """A key stays with its tenant; its name, project, allow-list and expiry change."""

    class Meta(ApiKeySerializer.Meta):
        read_only_fields = [*ApiKeySerializer.Meta.read_only_fields, "tenant"]


class ApiKeyRotateInputSerializer(serializers.Serializer):
    """A rotation's optional grace period; an empty body takes the default."""

    grace_seconds = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=MAX_ROTATION_GRACE_SECONDS,
        help_text="How long the old key keeps working beside its replacement, in seconds "
        "(0: it stops now; omitted: ATP_KEY_ROTATION_GRACE_SECONDS).",
    )


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """A new key with its plaintext, which is shown in this one response only."""

    key = serializers.CharField(read_only=True, help_text="The key; it is not shown again.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class AdminTokenSerializer(ModelSerializer):
    class Meta:
        model = AdminToken
        fields = ["id", "name", "prefix", "expires_at", "revoked_at", "last_used_at", "created_at"]
        read_only_fields = ["id", "prefix", "revoked_at", "last_used_at", "created_at"]


class AdminTokenCreatedSerializer(AdminTokenSerializer):
    """A new admin token with its plaintext, which is shown in this one response only."""

    token = serializers.CharField(read_only=True, help_text="The token; it is not shown again.")

    class Meta(AdminTokenSerializer.Meta):
        fields = [*AdminTokenSerializer.Meta.fields, "token"]


# --- users, roles and tenant members -------------------------------------------------------

ROLE_CHOICES = [(name, role.label) for name, role in GLOBAL_ROLES.items()]
TENANT_ROLE_CHOICES = [(name, name) for name in TENANT_ROLE_NAMES]


class MembershipSerializer(serializers.Serializer):
    tenant = TenantBriefSerializer(read_only=True)
    role = serializers.ChoiceField(choices=TENANT_ROLE_CHOICES, read_only=True)


class UserSerializer(serializers.Serializer):
    """A user with their global roles and the tenant roles the viewer may see."""

    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    email = serializers.CharField(read_only=True)
    first_name = serializers.CharField(read_only=True)
    last_name = serializers.CharField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    is_staff = serializers.BooleanField(read_only=True)
    is_superuser = serializers.BooleanField(read_only=True)
    last_login = serializers.DateTimeField(read_only=True, allow_null=True)
    date_joined = serializers.DateTimeField(read_only=True)
    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=ROLE_CHOICES), read_only=True
    )
    memberships = MembershipSerializer(many=True, read_only=True)


class UserRolesInputSerializer(serializers.Serializer):
    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=ROLE_CHOICES),
        allow_empty=True,
        max_length=len(ROLE_CHOICES),
        help_text="Every global role the user is to hold; the others are taken away.",
    )


class MembershipInputSerializer(serializers.Serializer):
    tenant = LineField(max_length=100, help_text="The tenant's slug or id.")
    role = serializers.ChoiceField(choices=TENANT_ROLE_CHOICES)


class UserMembershipsInputSerializer(serializers.Serializer):
    # A ListField, not many=True: its errors are keyed by the item's index, the documented shape.
    memberships = serializers.ListField(
        child=MembershipInputSerializer(),
        allow_empty=True,
        max_length=1000,
        help_text="The user's role on each tenant; tenants the caller manages that are not "
        "listed lose the user's role (others are left as they are).",
    )


class MemberUserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)


class MemberSerializer(serializers.Serializer):
    user = MemberUserSerializer(read_only=True)
    role = serializers.ChoiceField(choices=TENANT_ROLE_CHOICES, read_only=True)


class TenantMembersSerializer(serializers.Serializer):
    members = MemberSerializer(many=True, read_only=True)


class MemberInputSerializer(serializers.Serializer):
    user = LineField(max_length=150, help_text="The user's username or id.")
    role = serializers.ChoiceField(choices=TENANT_ROLE_CHOICES)


class TenantMembersInputSerializer(serializers.Serializer):
    members = serializers.ListField(
        child=MemberInputSerializer(),
        allow_empty=True,
        max_length=1000,
        help_text="Every member of the tenant with their role; users not listed lose theirs.",
    )
