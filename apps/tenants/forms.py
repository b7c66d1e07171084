"""Forms of the console's tenant, API key, admin token and user pages.

Forms parse and check what a person typed; the services (apps.tenants.services and
apps.tenants.roles) decide and write, and their ValidationErrors land next to the field.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from apps.tenants import roles
from apps.tenants.models import DataClassification, Plan, Project, Tenant
from apps.tenants.permissions import DEDICATED, TENANT_PERMISSIONS

# Nothing that could hide in a name: control characters, NUL, lone surrogates.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _printable(value: str, what: str = "This") -> str:
    if _UNPRINTABLE.search(value):
        raise forms.ValidationError(f"{what} may not contain control characters.")
    return value


class ListField(forms.CharField):
    """A list of names typed as one line, separated by commas or spaces."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value

    def to_python(self, value: Any) -> list[str]:
        text = super().to_python(value) or ""
        _printable(text)
        return list(dict.fromkeys(part for part in re.split(r"[,\s]+", text) if part))


class ExpiryField(forms.DateTimeField):
    """A moment in the future, typed in the browser's date-and-time picker (UTC)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "UTC. Leave empty for a key that does not expire.")
        super().__init__(*args, **kwargs)

    # The value already held: it may stay even once past (the picker shows whole minutes).
    current: Any = None

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value is None or value > timezone.now():
            return
        current = self.current
        if current is not None and value == current.replace(second=0, microsecond=0):
            return
        raise forms.ValidationError("Must be in the future.")


# --- tenants --------------------------------------------------------------------------------


class TenantForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(
        max_length=100, help_text="Lower-case letters, digits and hyphens; used in URLs and logs."
    )
    is_active = forms.BooleanField(
        required=False, initial=True, help_text="Inactive tenants' keys are refused."
    )
    cost_mode = forms.ChoiceField(
        choices=Tenant._meta.get_field("cost_mode").choices, initial="balanced"
    )
    preferred_regions = ListField(
        max_length=500, help_text="Regions to prefer, e.g. eu, us-east. Empty: no preference."
    )
    carbon_aware = forms.BooleanField(
        required=False, help_text="Prefer deployments in regions with lower carbon intensity."
    )
    data_classification = forms.ChoiceField(
        choices=DataClassification.choices,
        initial=DataClassification.INTERNAL,
        required=False,
        label="Data classification",
        help_text="Of requests that give none; callers may only raise it.",
    )
    allowed_regions = ListField(
        max_length=500,
        required=False,
        label="Allowed regions",
        help_text="Data residency: regions requests may be served in, e.g. eu. Empty: any.",
    )
    store_bodies = forms.BooleanField(
        required=False,
        label="Store bodies",
        help_text="Keep prompt and response bodies, encrypted at rest, for audit and review.",
    )
    plan = forms.ChoiceField(
        choices=Plan.choices,
        required=False,
        help_text="Default rate limits and service priority of the tenant's keys.",
    )
    time_zone = forms.CharField(
        max_length=64,
        required=False,
        label="Time zone",
        help_text="IANA name, e.g. Europe/Paris: where its budget periods start. Empty: UTC.",
    )
    baseline_model = forms.CharField(
        max_length=200,
        required=False,
        label="Baseline model",
        help_text="The model the tenant used before ATP; savings are measured against it.",
    )
    gain_share_percent = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_value=Decimal(100),
        max_digits=5,
        decimal_places=2,
        label="Gain share (%)",
        help_text="Share of the realized savings reported as the gain-share fee. Empty: 0.",
    )

    def clean_name(self) -> str:
        return _printable(self.cleaned_data["name"].strip(), "A name")

    def clean_data_classification(self) -> str:
        return self.cleaned_data["data_classification"] or DataClassification.INTERNAL

    def clean_time_zone(self) -> str:
        return self.cleaned_data["time_zone"].strip()

    def clean_baseline_model(self) -> str:
        return _printable(self.cleaned_data["baseline_model"].strip(), "A model name")

    def clean_gain_share_percent(self) -> Decimal:
        value = self.cleaned_data["gain_share_percent"]
        return Decimal(0) if value is None else value

    @classmethod
    def initial_of(cls, tenant: Tenant) -> dict[str, Any]:
        return {name: getattr(tenant, name) for name in cls.base_fields}


# --- projects -------------------------------------------------------------------------------


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the slug.")
    slug = forms.SlugField(
        max_length=100, help_text="Unique within the tenant; lower-case letters, digits, hyphens."
    )
    description = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        return _printable(name, "A name") if name else ""


class ProjectCreateForm(ProjectForm):
    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.none(), to_field_name="slug", empty_label="Choose a tenant"
    )
    field_order = ["tenant", "slug", "name", "description"]

    def __init__(self, *args: Any, tenants: QuerySet[Tenant], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = tenants
        self.fields["tenant"].error_messages["invalid_choice"] = (
            "Choose one of the tenants you may add projects to."
        )


def _project_field(projects: QuerySet[Project], *, with_tenant: bool) -> forms.ModelChoiceField:
    field = forms.ModelChoiceField(
        queryset=projects,
        required=False,
        empty_label="No project",
        help_text="Optional: the team or application the key belongs to.",
    )
    if with_tenant:
        field.label_from_instance = lambda p: f"{p.tenant.slug} / {p.name}"
    else:
        field.label_from_instance = lambda p: p.name
    return field


# --- API keys -------------------------------------------------------------------------------

# A key's plan overrides its tenant's; none follows the tenant's.
KEY_PLAN_CHOICES = [
    ("", "The tenant's plan"),
    *((value, label) for value, label in Plan.choices if value),
]


def _key_plan_field() -> forms.ChoiceField:
    return forms.ChoiceField(
        choices=KEY_PLAN_CHOICES,
        required=False,
        help_text="Rate limits and service priority of this key; by default its tenant's.",
    )


class ApiKeyCreateForm(forms.Form):
    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.none(), to_field_name="slug", empty_label="Choose a tenant"
    )
    name = forms.CharField(max_length=200, help_text="Say who uses it, e.g. billing-service.")
    allowed_models = ListField(
        max_length=2000,
        label="Allowed models",
        help_text="Model or route names this key may use, separated by commas. Empty: all.",
    )
    expires_at = ExpiryField(label="Expires")
    plan = _key_plan_field()

    def __init__(
        self,
        *args: Any,
        tenants: QuerySet[Tenant],
        projects: QuerySet[Project] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = tenants
        self.fields["tenant"].error_messages["invalid_choice"] = (
            "Choose one of the tenants you may create keys for."
        )
        if projects is not None and projects.exists():
            self.fields["project"] = _project_field(projects, with_tenant=True)
            self.order_fields(["tenant", "project", "name"])

    def clean_name(self) -> str:
        return _printable(self.cleaned_data["name"].strip(), "A name")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        project, tenant = data.get("project"), data.get("tenant")
        if project is not None and tenant is not None and project.tenant_id != tenant.pk:
            self.add_error("project", f"Choose a project of {tenant.name}, or none.")
        return data


class ApiKeyEditForm(forms.Form):
    name = forms.CharField(max_length=200)
    allowed_models = ListField(
        max_length=2000,
        label="Allowed models",
        help_text="Model or route names this key may use, separated by commas. Empty: all.",
    )
    expires_at = ExpiryField(label="Expires")
    plan = _key_plan_field()

    def __init__(self, *args: Any, projects: QuerySet[Project] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if projects is not None and projects.exists():
            self.fields["project"] = _project_field(projects, with_tenant=False)

    def clean_name(self) -> str:
        return _printable(self.cleaned_data["name"].strip(), "A name")


HOUR = 3600
GRACE_CHOICES = [
    (0, "None: the current key stops working at once"),
    (HOUR, "1 hour"),
    (24 * HOUR, "24 hours"),
    (7 * 24 * HOUR, "7 days"),
]


class ApiKeyRotateForm(forms.Form):
    """How long the rotated key keeps working beside its replacement."""

    grace_seconds = forms.TypedChoiceField(
        coerce=int,
        required=False,
        empty_value=None,
        label="Grace period",
        help_text="The current key keeps working this long beside the new one, so its "
        "callers can switch without an outage.",
    )

    def __init__(self, *args: Any, default: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = list(GRACE_CHOICES)
        if default not in dict(choices):
            choices.append((default, f"{default:,} seconds"))
        field = self.fields["grace_seconds"]
        field.choices = [
            (seconds, f"{label} (the default)" if seconds == default else label)
            for seconds, label in choices
        ]
        field.initial = default


# --- admin tokens ---------------------------------------------------------------------------


class AdminTokenCreateForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Say where it is used, e.g. ci-deploy.")
    expires_at = ExpiryField(
        label="Expires", help_text="UTC. Leave empty for a token that does not expire."
    )

    def __init__(self, *args: Any, users: QuerySet | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if users is not None:
            # Only with the dedicated permission: a token acts with its user's permissions.
            self.fields["user"] = forms.ModelChoiceField(
                queryset=users,
                to_field_name="username",
                required=False,
                empty_label="Myself",
                label="For user",
                help_text="Minting a token for somebody else is audited.",
            )

    def clean_name(self) -> str:
        return _printable(self.cleaned_data["name"].strip(), "A name")


# --- users and roles ------------------------------------------------------------------------


class UserRolesForm(forms.Form):
    """The global roles the viewer may give or take; the others are shown, not offered."""

    roles = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Global roles"
    )

    def __init__(self, *args: Any, assignable: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["roles"].choices = [
            (name, f"{roles.GLOBAL_ROLES[name].label}: {roles.GLOBAL_ROLES[name].description}")
            for name in assignable
        ]


TENANT_ROLE_CHOICES = [
    ("", "No role (remove)"),
    (roles.TENANT_MEMBER, "Tenant member: sees the tenant's keys, requests and spend"),
    (roles.TENANT_ADMIN, "Tenant admin: manages the tenant, its keys and members"),
]


class MembershipForm(forms.Form):
    """Give `user` a role on one tenant (or take it away)."""

    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.none(), to_field_name="slug", empty_label="Choose a tenant"
    )
    role = forms.ChoiceField(choices=TENANT_ROLE_CHOICES, required=False, label="Tenant role")

    def __init__(self, *args: Any, tenants: QuerySet[Tenant], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = tenants
        self.fields["tenant"].error_messages["invalid_choice"] = (
            "Choose one of the tenants whose members you manage."
        )


class MemberForm(MembershipForm):
    """On a tenant's page: give a user, named by username, a role on this tenant."""

    username = forms.CharField(max_length=150, label="User")

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, tenants=Tenant.objects.filter(pk=tenant.pk), **kwargs)
        self.fields["tenant"].widget = forms.HiddenInput()
        self.fields["tenant"].initial = tenant.slug
        self.order_fields(["username", "role"])


DEDICATED_CHOICES = [(name, name) for name in sorted(DEDICATED)]


class DedicatedPermissionForm(forms.Form):
    permission = forms.ChoiceField(choices=DEDICATED_CHOICES)
    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.all(),
        to_field_name="slug",
        required=False,
        empty_label="Every tenant (global)",
        help_text="Only tenant permissions can be held on one tenant.",
    )
    granted = forms.TypedChoiceField(
        choices=[("true", "Grant"), ("false", "Take back")],
        coerce=lambda v: v == "true",
        initial="true",
        label="Change",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("tenant") is not None and data.get("permission") not in TENANT_PERMISSIONS:
            self.add_error("tenant", "This permission can only be held globally.")
        return data
