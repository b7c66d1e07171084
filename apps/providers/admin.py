"""Django admin for providers and deployments; writes go through services, keys stay hidden."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.providers import selectors, services
from apps.providers.models import HealthCheck, ModelDeployment, Provider
from apps.routing.resilience import breaker
from apps.tenants.admin import adopt
from apps.tenants.permissions import CHANGE_PROVIDER_CREDENTIALS


class ProviderForm(forms.ModelForm):
    """The API key is write-only: typed in, stored encrypted, never rendered back."""

    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted. Leave empty to keep the current key.",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored API key")

    class Meta:
        model = Provider
        fields = [
            "name",
            "kind",
            "base_url",
            "api_key_env",
            "region",
            "connect_timeout",
            "first_byte_timeout",
            "total_timeout",
            "options",
            "enabled",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("api_key") and cleaned.get("clear_api_key"):
            self.add_error("clear_api_key", "Either enter a new key or remove it, not both.")
        if cleaned.get("api_key") and cleaned.get("api_key_env"):
            self.add_error(
                "api_key_env", "Give either an API key or an environment variable, not both."
            )
        if not isinstance(cleaned.get("options", {}), dict):
            self.add_error("options", "Must be a JSON object.")
        return cleaned


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = [
        "name",
        "kind",
        "base_url",
        "region",
        "enabled",
        "has_api_key",
        "api_key_env",
        "health",
        "health_latency",
        "health_checked",
    ]
    list_filter = ["kind", "enabled", "region"]
    search_fields = ["name", "base_url"]
    readonly_fields = ["id", "has_api_key", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["id", "name", "kind", "base_url", "region", "enabled"]}),
        ("Credentials", {"fields": ["has_api_key", "api_key", "clear_api_key", "api_key_env"]}),
        (
            "Timeouts (seconds)",
            {"fields": ["connect_timeout", "first_byte_timeout", "total_timeout"]},
        ),
        ("Other", {"fields": ["options", "created_at", "updated_at"]}),
    ]

    @admin.display(boolean=True, description="stored key")
    def has_api_key(self, obj: Provider) -> bool:
        return obj.has_stored_api_key

    # Without `providers.change_provider_credentials` the base URL and credentials of an
    # existing provider are shown, not edited, and a new one cannot read the environment.
    def _credentials_locked(self, request: HttpRequest) -> bool:
        return not request.user.has_perm(CHANGE_PROVIDER_CREDENTIALS)

    def get_readonly_fields(self, request: HttpRequest, obj: Provider | None = None) -> list:
        fields = list(super().get_readonly_fields(request, obj))
        if self._credentials_locked(request):
            fields += ["api_key_env"] if obj is None else ["base_url", "api_key_env"]
        return fields

    _KEY_INPUTS = ("api_key", "clear_api_key")

    def get_fieldsets(self, request: HttpRequest, obj: Provider | None = None) -> list:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not self._credentials_locked(request):
            return fieldsets
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f not in self._KEY_INPUTS]})
            for name, opts in fieldsets
        ]

    def get_form(self, request: HttpRequest, obj: Provider | None = None, **kwargs: Any):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None and self._credentials_locked(request):
            # Declared form fields stay on a form whatever the fieldsets say.
            for name in self._KEY_INPUTS:
                form.base_fields.pop(name, None)
        return form

    def get_queryset(self, request: HttpRequest) -> QuerySet[Provider]:
        return selectors.provider_list_with_health()

    @admin.display(description="health", ordering="health_status")
    def health(self, obj: Provider) -> str:
        status = getattr(obj, "health_status", None)
        if not status:
            return "not checked"
        error = getattr(obj, "health_error", "")
        return f"{status}: {error[:80]}" if error else status

    @admin.display(description="probe ms")
    def health_latency(self, obj: Provider) -> int | None:
        return getattr(obj, "health_latency_ms", None)

    @admin.display(description="checked", ordering="health_checked_at")
    def health_checked(self, obj: Provider) -> str:
        checked = getattr(obj, "health_checked_at", None)
        return timezone.localtime(checked).strftime("%Y-%m-%d %H:%M:%S") if checked else ""

    def save_model(self, request: HttpRequest, obj: Provider, form: forms.Form, change: bool):
        data = form.cleaned_data
        fields = {f: data[f] for f in services.PROVIDER_FIELDS if f in data}
        by = request.user
        if not change:
            adopt(
                obj,
                services.provider_create(api_key=data.get("api_key") or None, by=by, **fields),
            )
            return
        if data.get("clear_api_key"):
            services.provider_update(provider=obj, api_key=None, by=by, **fields)
        elif data.get("api_key"):
            services.provider_update(provider=obj, api_key=data["api_key"], by=by, **fields)
        else:
            services.provider_update(provider=obj, by=by, **fields)

    def delete_model(self, request: HttpRequest, obj: Provider) -> None:
        services.provider_delete(provider=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            services.provider_delete(provider=provider)


@admin.register(ModelDeployment)
class ModelDeploymentAdmin(admin.ModelAdmin):
    list_display = [
        "public_name",
        "provider",
        "upstream_model",
        "input_price",
        "output_price",
        "quality_score",
        "weight",
        "region",
        "enabled",
        "listed",
        "circuit",
    ]
    list_filter = ["enabled", "listed", "provider", "region"]
    actions = ["reset_circuit"]
    search_fields = ["public_name", "upstream_model", "provider__name"]
    list_select_related = ["provider"]
    readonly_fields = ["id", "created_at", "updated_at"]

    @admin.display(description="circuit")
    def circuit(self, obj: ModelDeployment) -> str:
        state = breaker.state_of(str(obj.id))
        if state["state"] == breaker.CLOSED:
            return f"closed ({state['failures']}/{state['requests']} failed)"
        if state["state"] == breaker.OPEN and state["open_until"]:
            left = max(0, int(state["open_until"] - timezone.now().timestamp()))
            return f"open ({left}s to half-open)"
        return state["state"]

    @admin.action(description="Close the circuit breaker of the selected deployments")
    def reset_circuit(self, request: HttpRequest, queryset: QuerySet[ModelDeployment]) -> None:
        breakers = breaker.get_breakers()
        for deployment in queryset:
            breakers.reset_sync(str(deployment.id))
        self.message_user(
            request, f"Reset {queryset.count()} circuit breaker(s).", messages.SUCCESS
        )

    def get_readonly_fields(
        self, request: HttpRequest, obj: ModelDeployment | None = None
    ) -> list[str]:
        # A deployment stays with its provider; create another one to move it.
        if obj is not None:
            return [*self.readonly_fields, "provider"]
        return list(self.readonly_fields)

    def save_model(
        self, request: HttpRequest, obj: ModelDeployment, form: forms.Form, change: bool
    ) -> None:
        data = form.cleaned_data
        fields = {f: data[f] for f in services.DEPLOYMENT_FIELDS if f in data}
        if change:
            services.deployment_update(deployment=obj, **fields)
        else:
            adopt(obj, services.deployment_create(provider=data["provider"], **fields))

    def delete_model(self, request: HttpRequest, obj: ModelDeployment) -> None:
        services.deployment_delete(deployment=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ModelDeployment]) -> None:
        for deployment in queryset:
            services.deployment_delete(deployment=deployment)


@admin.register(HealthCheck)
class HealthCheckAdmin(admin.ModelAdmin):
    """Read-only: checks are written by the periodic health job."""

    list_display = ["provider", "status", "latency_ms", "error", "checked_at"]
    list_filter = ["status", "provider"]
    search_fields = ["provider__name", "error"]
    list_select_related = ["provider"]
    date_hierarchy = "checked_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: HealthCheck | None = None) -> bool:
        return False
