"""Forms of the console's rate limit, budget and notifier pages.

Forms parse what a person typed; apps.costs.services decides and writes, and its
ValidationErrors land next to the field they name. What a limit or budget applies to is
one choice, "Applies to", among the plans, tenants, projects and keys the viewer may use;
it is fixed once the row exists (the services refuse to move a row).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import QuerySet

from apps.costs.models import Budget, Notifier, Scope
from apps.tenants.models import ApiKey, Plan, Project, Tenant

# Nothing that could hide in a name: control characters, NUL, lone surrogates.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _printable(value: str, what: str = "This") -> str:
    if _UNPRINTABLE.search(value):
        raise forms.ValidationError(f"{what} may not contain control characters.")
    return value


def _usd(label: str, *, required: bool, help_text: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=required,
        min_value=Decimal(0),
        max_digits=14,
        decimal_places=6,
        help_text=help_text,
    )


# --- what a row applies to ------------------------------------------------------------------

TARGET_FIELDS = ("scope", "plan", "tenant", "project", "api_key")


class TargetField(forms.ChoiceField):
    """One choice among `plan:<name>`, `tenant:<slug>`, `project:<id>` and `key:<id>`, in
    groups; its cleaned value is the services' fields (scope, plan, tenant, project, api_key)."""

    def __init__(
        self,
        *,
        tenants: QuerySet[Tenant],
        projects: QuerySet[Project],
        keys: QuerySet[ApiKey],
        plans: bool,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("label", "Applies to")
        super().__init__(**kwargs)
        self.tenants = {t.slug: t for t in tenants.order_by("slug")}
        self.projects = {str(p.pk): p for p in projects.order_by("tenant__slug", "slug")}
        self.keys = {str(k.pk): k for k in keys.order_by("tenant__slug", "name")}
        self.plans = plans
        groups: list[tuple[str, Any]] = [("", "Choose what it applies to")]
        if plans:
            groups.append(
                (
                    "Plans (every key on the plan)",
                    [(f"plan:{value}", label) for value, label in Plan.choices if value],
                )
            )
        groups.append(
            (
                "Tenants",
                [(f"tenant:{slug}", f"{slug} ({t.name})") for slug, t in self.tenants.items()],
            )
        )
        if self.projects:
            groups.append(
                ("Projects", [(f"project:{pk}", str(p)) for pk, p in self.projects.items()])
            )
        if self.keys:
            groups.append(
                (
                    "API keys",
                    [
                        (f"key:{pk}", f"{k.tenant.slug} / {k.name} ({k.prefix}…)")
                        for pk, k in self.keys.items()
                    ],
                )
            )
        self.choices = groups

    SCOPES = {
        "plan": Scope.PLAN,
        "tenant": Scope.TENANT,
        "project": Scope.PROJECT,
        "key": Scope.KEY,
    }

    def clean(self, value: Any) -> dict[str, Any]:
        value = super().clean(value)
        kind, _, ref = value.partition(":")
        scope = self.SCOPES.get(kind)
        if scope == Scope.PLAN and self.plans and ref and ref in Plan.values:
            return {"scope": scope, "plan": ref}
        if scope == Scope.TENANT and ref in self.tenants:
            return {"scope": scope, "tenant": self.tenants[ref]}
        if scope == Scope.PROJECT and ref in self.projects:
            project = self.projects[ref]
            return {"scope": scope, "tenant": project.tenant, "project": project}
        if scope == Scope.KEY and ref in self.keys:
            key = self.keys[ref]
            return {"scope": scope, "tenant": key.tenant, "api_key": key}
        raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")

    @staticmethod
    def value_of(
        *, tenant: Tenant | None = None, project: Any = None, api_key: Any = None
    ) -> str | None:
        """The choice naming a project, key or tenant (to preselect it)."""
        if api_key is not None:
            return f"key:{api_key.pk}"
        if project is not None:
            return f"project:{project.pk}"
        if tenant is not None:
            return f"tenant:{tenant.slug}"
        return None


class TargetFormMixin:
    """Puts the "Applies to" choice first."""

    fields: dict[str, Any]
    order_fields: Any

    def add_target(self, *, plans: bool, **choices: Any) -> None:
        field = TargetField(plans=plans, **choices)
        field.error_messages["invalid_choice"] = (
            "Choose one of the tenants, projects or keys you may set this for."
        )
        self.fields["target"] = field
        self.order_fields(["target"])


# --- rate limits ----------------------------------------------------------------------------


class RateLimitForm(forms.Form):
    requests_per_minute = forms.IntegerField(
        required=False, min_value=0, label="Requests per minute", help_text="Empty: no limit."
    )
    tokens_per_minute = forms.IntegerField(
        required=False,
        min_value=0,
        label="Tokens per minute",
        help_text="Input and output tokens together. Empty: no limit.",
    )
    max_concurrent = forms.IntegerField(
        required=False,
        min_value=0,
        label="Concurrent requests",
        help_text="Requests in flight at once. Empty: no limit.",
    )
    cost_per_hour_usd = _usd(
        "Cost per hour (USD)",
        required=False,
        help_text="Spend in any rolling hour. Empty: no limit.",
    )

    FIGURES = ("requests_per_minute", "tokens_per_minute", "max_concurrent", "cost_per_hour_usd")

    @classmethod
    def initial_of(cls, rate_limit: Any) -> dict[str, Any]:
        return {name: getattr(rate_limit, name) for name in cls.FIGURES}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.errors and all(data.get(name) is None for name in self.FIGURES):
            raise forms.ValidationError("Give at least one limit.")
        return data


class RateLimitCreateForm(TargetFormMixin, RateLimitForm):
    def __init__(self, *args: Any, plans: bool, **kwargs: Any) -> None:
        choices = {name: kwargs.pop(name) for name in ("tenants", "projects", "keys")}
        super().__init__(*args, **kwargs)
        self.add_target(plans=plans, **choices)
        self.fields["target"].help_text = (
            "A plan's limits apply to each key on that plan and replace the plan's defaults; "
            "a tenant's or project's are shared by all of its keys. Every limit that applies "
            "to a request is checked."
        )


# --- budgets --------------------------------------------------------------------------------


class ThresholdsField(forms.CharField):
    """Percentages typed as one line, e.g. "50, 80, 100"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 200)
        super().__init__(*args, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        return value

    def to_python(self, value: Any) -> list[int | float]:
        text = super().to_python(value) or ""
        marks: list[int | float] = []
        for part in re.split(r"[,\s%]+", text):
            if not part:
                continue
            try:
                number = float(part)
            except ValueError:
                raise forms.ValidationError(
                    f"'{part}' is not a percentage; give numbers such as 50, 80, 100."
                ) from None
            marks.append(int(number) if number.is_integer() else number)
        return marks


class BudgetForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Unique within the tenant.")
    period = forms.ChoiceField(choices=Budget.Period.choices, initial=Budget.Period.MONTHLY)
    limit_usd = _usd("Limit (USD)", required=True, help_text="Spend allowed in each period.")
    time_zone = forms.CharField(
        max_length=64,
        required=False,
        label="Time zone",
        help_text="IANA name of the zone periods start in, e.g. Europe/Paris. "
        "Empty: the tenant's time zone, else UTC.",
    )
    thresholds = ThresholdsField(
        label="Alert at (%)",
        help_text="Percentages of the limit that raise an alert, e.g. 50, 80, 100. "
        "Empty: 50, 80 and 100.",
    )
    action = forms.ChoiceField(
        choices=Budget.Action.choices,
        initial=Budget.Action.BLOCK,
        label="When spent",
    )
    downgrade_to = forms.CharField(
        max_length=200,
        required=False,
        label="Downgrade to",
        help_text="The model or route requests use once the budget is spent (with “Downgrade”).",
    )
    enabled = forms.BooleanField(
        required=False,
        initial=True,
        help_text="A disabled budget counts nothing and blocks nothing.",
    )

    FIELDS = (
        "name",
        "period",
        "limit_usd",
        "time_zone",
        "thresholds",
        "action",
        "downgrade_to",
        "enabled",
    )

    @classmethod
    def initial_of(cls, budget: Budget) -> dict[str, Any]:
        return {name: getattr(budget, name) for name in cls.FIELDS}

    def clean_name(self) -> str:
        return _printable(self.cleaned_data["name"].strip(), "A name")


class BudgetCreateForm(TargetFormMixin, BudgetForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        choices = {name: kwargs.pop(name) for name in ("tenants", "projects", "keys")}
        super().__init__(*args, **kwargs)
        self.add_target(plans=False, **choices)
        self.fields["target"].help_text = "A tenant, one of its projects or one of its keys."


# --- notifiers ------------------------------------------------------------------------------


def _secret_field(help_text: str) -> forms.CharField:
    return forms.CharField(
        max_length=200,
        required=False,
        strip=False,
        label="Signing secret",
        # Never rendered back into the page, and kept out of the browser's password store.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=help_text,
    )


class NotifierForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Unique; shown in alert delivery errors.")
    target = forms.CharField(
        max_length=2000,
        label="Send to",
        help_text="E-mail: addresses separated by commas. Webhook: its http(s) URL.",
    )
    secret = _secret_field(
        "Webhooks only. Leave empty to keep the current secret; it is never shown."
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def clean_name(self) -> str:
        return _printable(self.cleaned_data["name"].strip(), "A name")

    def clean_target(self) -> str:
        return _printable(self.cleaned_data["target"].strip(), "A target")


class NotifierCreateForm(NotifierForm):
    kind = forms.ChoiceField(choices=Notifier.Kind.choices, initial=Notifier.Kind.EMAIL)
    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.none(),
        to_field_name="slug",
        required=False,
        empty_label="Every tenant (a platform notifier)",
        help_text="Alerts of this tenant's budgets only, or of every tenant's.",
    )
    field_order = ["name", "kind", "tenant", "target", "secret", "enabled"]

    def __init__(self, *args: Any, tenants: QuerySet[Tenant], every_tenant: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["secret"].help_text = (
            "Webhooks: the key each body is signed with (HMAC-SHA256, header X-ATP-Signature). "
            "Never shown again."
        )
        tenant = self.fields["tenant"]
        tenant.queryset = tenants
        tenant.error_messages["invalid_choice"] = "Choose one of the tenants you may notify for."
        if not every_tenant:
            tenant.required = True
            tenant.empty_label = "Choose a tenant"
