"""Forms of the console's audit pages; they validate input, services do the work."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.audit import reports
from apps.audit.models import AuditEvent, RetentionPolicy
from apps.audit.retention import BODIES, REQUESTS
from apps.tenants import permissions
from apps.tenants.models import Tenant

EXPORT_FORMATS = (
    ("csv", "CSV (spreadsheets; cells never start a formula)"),
    ("jsonl", "JSON Lines with the signed manifest"),
    ("json", "JSON with the signed manifest"),
)

RETENTION_CLASSIFICATIONS = (
    (REQUESTS, "requests — the request log"),
    (BODIES, "bodies — stored prompts and responses"),
    ("", "any — every audit classification"),
    ("public", "public (audit events)"),
    ("internal", "internal (audit events)"),
    ("confidential", "confidential (audit events)"),
    ("restricted", "restricted (audit events)"),
)

CONTROL = set(map(chr, range(32))) | {"\x7f"}


def _one_line(value: str, field: str = "This") -> str:
    value = (value or "").strip()
    if any(c in CONTROL for c in value):
        raise forms.ValidationError(f"{field} may not contain control characters.")
    return value


def _tenant_field(queryset: Any, *, required: bool, empty_label: str) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=queryset, required=required, empty_label=empty_label, to_field_name="slug"
    )


class VerifyForm(forms.Form):
    full = forms.BooleanField(
        required=False,
        label="Walk the whole chain",
        help_text="By default verification starts at the latest signed, verified checkpoint "
        "and checks what was added since.",
    )


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=EXPORT_FORMATS, initial="csv")


class ReportForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), required=False)
    since = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="From")
    until = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}),
        label="Through",
        help_text="The report covers whole days in UTC, this one included.",
    )
    format = forms.ChoiceField(
        choices=[("pdf", "PDF"), ("csv", "CSV"), ("json", "JSON")], initial="pdf"
    )
    full = forms.BooleanField(
        required=False, label="Verify the whole chain", help_text="Slower on a long chain."
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.every_tenant = permissions.tenant_ids(user, AuditEvent, "report") is None
        field = _tenant_field(
            permissions.allowed_tenants(user, AuditEvent, "report").order_by("slug"),
            required=not self.every_tenant,
            empty_label="All tenants" if self.every_tenant else None,
        )
        field.label = "Tenant"
        self.fields["tenant"] = field
        today = timezone.now().date()
        self.fields["since"].initial = today - timedelta(days=30)
        self.fields["until"].initial = today

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until:
            if since > until:
                self.add_error("until", "Must not be before 'From'.")
            else:
                cleaned["since_at"] = reports.period_bound(since, end=False)
                cleaned["until_at"] = reports.period_bound(until, end=True)
        return cleaned


class SubjectForm(forms.Form):
    """A data subject: the id a tenant's application sends as `user`, at one tenant."""

    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none())
    subject = forms.CharField(
        max_length=256,
        label="Subject id",
        help_text="The id the tenant's application sends as `user` (or a console user name).",
    )

    def __init__(self, *args: Any, user: Any, action: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = _tenant_field(
            permissions.allowed_tenants(user, AuditEvent, action).order_by("slug"),
            required=True,
            empty_label=None,
        )
        field.label = "Tenant"
        self.fields = {"tenant": field, **{k: v for k, v in self.fields.items() if k != "tenant"}}

    def clean_subject(self) -> str:
        value = _one_line(self.cleaned_data["subject"], "The subject id")
        if not value:
            raise forms.ValidationError("Give the subject's id.")
        return value


class SubjectExportForm(SubjectForm):
    bodies = forms.BooleanField(
        required=False,
        label="Include stored prompt and response bodies",
        help_text="Only with the body permission for this tenant; each body revealed is audited.",
    )


class SubjectEraseForm(SubjectForm):
    confirm = forms.CharField(
        max_length=256,
        required=False,
        widget=forms.HiddenInput,
    )


class RetentionPolicyForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), required=False)
    classification = forms.ChoiceField(choices=RETENTION_CLASSIFICATIONS, required=False)
    days = forms.IntegerField(min_value=1, max_value=36500, label="Keep for (days)")

    def __init__(self, *args: Any, user: Any, action: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        every = permissions.tenant_ids(user, RetentionPolicy, action) is None
        field = _tenant_field(
            permissions.allowed_tenants(user, RetentionPolicy, action).order_by("slug"),
            required=not every,
            empty_label="Every tenant" if every else None,
        )
        field.label = "Tenant"
        self.fields["tenant"] = field
        self.order_fields(["tenant", "classification", "days"])


class AuditorGrantForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), to_field_name="username", label="User"
    )
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), to_field_name="slug")
    bodies = forms.BooleanField(
        required=False,
        label="Also stored prompt and response bodies",
        help_text="A dedicated permission: only a superuser may grant it.",
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = (
            get_user_model().objects.filter(is_active=True).order_by("username")
        )
        self.fields["tenant"].queryset = Tenant.objects.order_by("slug")
        if not user.is_superuser:
            del self.fields["bodies"]
