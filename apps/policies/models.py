"""ABAC policies: who may send what where, and what happens to it on the way.

The data plane never reads these rows per request: apps.policies.engine compiles the
enabled ones into the configuration snapshot. The rule language (attributes, operators,
effects) and the evaluation order are documented in docs/policies.md.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone


class PolicyQuerySet(models.QuerySet):
    def for_tenants(self, tenant_ids):
        return self.filter(tenant_id__in=tenant_ids)

    def enabled(self):
        return self.filter(enabled=True)


class Policy(models.Model):
    """A named set of rules for every tenant (no tenant) or one tenant.

    `scope` narrows the requests it applies to ({"projects": [...], "keys": [...],
    "groups": [...], "classifications": [...]}, an empty list: all). `rules` is a list of
    {"id", "description", "when": [conditions], "effect": {...}}; both are checked by
    apps.policies.validation before every save. In `log_only` mode the policy is evaluated
    on live traffic and reported, never enforced. `version` counts saved changes.
    """

    class Mode(models.TextChoices):
        ENFORCE = "enforce", "Enforce"
        LOG_ONLY = "log_only", "Log only"

    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The tenant whose requests it governs; empty: every tenant's.",
    )
    name = models.SlugField(max_length=100, help_text="Unique within its tenant (or globally).")
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ENFORCE)
    priority = models.IntegerField(default=0, help_text="Higher is evaluated first.")
    scope = models.JSONField(default=dict, blank=True)
    rules = models.JSONField(default=list, blank=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PolicyQuerySet.as_manager()

    class Meta:
        ordering = ["-priority", "tenant", "name"]
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="policy_unique_name"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(tenant__isnull=True), name="policy_unique_global_name"
            ),
            models.CheckConstraint(
                condition=Q(mode__in=["enforce", "log_only"]), name="policy_mode_known"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def owner_label(self) -> str:
        return self.tenant.slug if self.tenant_id else "global"

    def clean(self) -> None:
        from apps.policies.validation import errors_by_field, validate_policy

        problems = validate_policy(
            {
                "name": self.name,
                "mode": self.mode,
                "priority": self.priority,
                "scope": self.scope,
                "rules": self.rules,
            },
            with_others=False,
        )
        errors = errors_by_field(problems)
        if errors:
            raise ValidationError(errors)
