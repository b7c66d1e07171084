"""Tenants, their API keys and personal admin tokens for the management API."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Plan(models.TextChoices):
    """Service plans: each brings default rate limits and a service priority
    (apps.costs.limits.PLAN_DEFAULTS). No plan: no plan limits, standard priority."""

    NONE = "", "No plan"
    FREE = "free", "Free"
    PREMIUM = "premium", "Premium"
    ENTERPRISE = "enterprise", "Enterprise"


def validate_time_zone(value: str) -> None:
    if not value:
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"'{value}' is not a known time zone (use an IANA name such as Europe/Paris)."
        ) from None


class DataClassification(models.TextChoices):
    """How sensitive a request's data is, lowest first (apps.routing.pipeline.govern)."""

    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted"


def _check_regions(regions, field: str) -> None:
    if not isinstance(regions, list) or not all(isinstance(r, str) and r.strip() for r in regions):
        raise ValidationError({field: "Give a list of region names."})


class Tenant(models.Model):
    """A customer organisation; every request, key and record belongs to one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    store_bodies = models.BooleanField(
        default=False,
        help_text="Keep prompt and response bodies, encrypted at rest, for audit and review.",
    )
    # Routing preferences, applied when a request gives no hint of its own.
    cost_mode = models.CharField(
        max_length=16,
        choices=[
            ("aggressive", "Aggressive cost optimisation"),
            ("balanced", "Balanced"),
            ("quality_first", "Quality first"),
        ],
        default="balanced",
    )
    preferred_regions = models.JSONField(
        default=list, blank=True, help_text='Regions to prefer, e.g. ["eu", "us-east"].'
    )
    carbon_aware = models.BooleanField(
        default=False, help_text="Prefer deployments in regions with lower carbon intensity."
    )
    # Governance: the classification of a request that says nothing (callers may raise it,
    # never lower it) and the regions its requests may be served in (data residency).
    data_classification = models.CharField(
        max_length=16,
        choices=DataClassification.choices,
        default=DataClassification.INTERNAL,
        help_text="Classification of requests that give none; callers may only raise it.",
    )
    allowed_regions = models.JSONField(
        default=list,
        blank=True,
        help_text='Regions requests may be served in, e.g. ["eu"]; empty means any.',
    )
    plan = models.CharField(
        max_length=16,
        choices=Plan.choices,
        default=Plan.NONE,
        blank=True,
        help_text="Default rate limits and service priority of the tenant's keys.",
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text="IANA time zone its budget periods follow (empty: UTC).",
    )
    # Savings: what each request would have cost on this model (the one the tenant used
    # before ATP), and the share of the savings that is ATP's fee (gain share).
    baseline_model = models.CharField(
        max_length=200, blank=True, help_text="Public model name savings are measured against."
    )
    gain_share_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Share of the realized savings reported as the gain-share fee.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        # Granted per tenant object with django-guardian (or globally, for every tenant);
        # apps.tenants.permissions.TENANT_SCOPES says which action each one allows.
        permissions = [
            ("audit_tenant", "Can read the audit records of this tenant"),
            ("view_tenant_bodies", "Can view the stored prompt and response bodies of this tenant"),
            ("manage_tenant_keys", "Can create, change, revoke and rotate this tenant's API keys"),
            ("manage_tenant_retention", "Can manage this tenant's retention policies"),
            ("export_tenant_subjects", "Can export a data subject's records of this tenant"),
            ("erase_tenant_subjects", "Can erase a data subject's records of this tenant"),
            ("manage_tenant_members", "Can give and take away roles on this tenant"),
            # Global only: gives the roles (groups) the holder could assign
            # (apps.tenants.roles.role_assignable).
            ("assign_roles", "Can assign global roles to users"),
        ]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        regions = self.preferred_regions
        if not isinstance(regions, list) or not all(
            isinstance(r, str) and r.strip() for r in regions
        ):
            raise ValidationError({"preferred_regions": "Give a list of region names."})
        _check_regions(self.allowed_regions, "allowed_regions")


class Project(models.Model):
    """A team or application inside a tenant. A key may belong to one; limits and budgets
    can be set on the project as on its tenant and keys."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="projects")
    slug = models.SlugField(max_length=100, help_text="Unique within its tenant.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="project_unique_slug"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id and self.tenant.slug}/{self.slug}"


class ApiKeyQuerySet(models.QuerySet):
    def usable(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, tenant__is_active=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ApiKey(models.Model):
    """A data-plane credential. Only its SHA-256 is stored; the plaintext is shown once.

    Keys are 256-bit random strings, so an unsalted SHA-256 cannot be brute-forced and
    lets the data plane find a key with one dictionary look-up.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    # A project of the same tenant, or none. A deleted project leaves its keys working,
    # directly under the tenant.
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="api_keys"
    )
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, help_text="The visible start of the key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Public model names this key may use; empty means all."
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # A key replaced by a rotation keeps working until then (its grace period); it is
    # revoked all the same: its replacement is the live key.
    grace_until = models.DateTimeField(null=True, blank=True)
    plan = models.CharField(
        max_length=16,
        choices=Plan.choices,
        default=Plan.NONE,
        blank=True,
        help_text="Overrides the tenant's plan for this key (empty: the tenant's).",
    )
    data_classification = models.CharField(
        max_length=16,
        choices=DataClassification.choices,
        blank=True,
        help_text="Overrides the tenant's default classification (empty: the tenant's).",
    )
    allowed_regions = models.JSONField(
        default=list,
        blank=True,
        help_text="Regions this key's requests may be served in, within the tenant's; "
        "empty means the tenant's.",
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "name"]
        permissions = [
            ("revoke_apikey", "Can revoke API keys"),
            ("rotate_apikey", "Can rotate API keys"),
        ]
        constraints = [
            # Only live keys need distinct names: a rotated key keeps its name on the revoked
            # row, so history stays readable and the replacement can reuse the name.
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=Q(revoked_at__isnull=True),
                name="apikey_unique_active_name_per_tenant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def clean(self) -> None:
        if self.project_id is not None and self.project.tenant_id != self.tenant_id:
            raise ValidationError({"project": "The project belongs to another tenant."})
        _check_regions(self.allowed_regions, "allowed_regions")

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


class AdminToken(models.Model):
    """A personal token for the management REST API; hashed like API keys."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="admin_tokens"
    )
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["user", "name"]
        permissions = [
            ("revoke_admintoken", "Can revoke their admin tokens"),
            # Dedicated: a token acts with its user's permissions, so minting one for
            # somebody else borrows theirs.
            ("add_admintoken_for_others", "Can create admin tokens for other users"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
