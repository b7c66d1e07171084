"""Console forms of providers and model deployments: they parse; the services decide."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from apps.providers.credentials import allowed_patterns, env_reference_error
from apps.providers.models import Capability, ModelDeployment, Provider

CREDENTIAL_FIELDS = ("base_url", "api_key", "api_key_env", "clear_api_key")


class ProviderForm(forms.Form):
    """Create or edit a provider. The key is write-only: never rendered back, blank keeps it.

    Without the dedicated credentials permission an existing provider's base URL and
    credential source are shown read-only (a new base URL would receive its key)."""

    name = forms.SlugField(max_length=100, help_text="Letters, digits, - and _ (e.g. openai-eu).")
    kind = forms.ChoiceField(label="Protocol", choices=Provider.Kind.choices)
    base_url = forms.URLField(
        label="Base URL",
        max_length=500,
        required=False,
        assume_scheme="https",
        help_text="E.g. https://api.openai.com/v1. Not needed for the built-in simulator.",
    )
    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again.",
    )
    api_key_env = forms.CharField(
        label="API key from environment variable",
        max_length=200,
        required=False,
        help_text="Instead of a stored key: a variable of the server's environment.",
    )
    region = forms.CharField(max_length=64, required=False)
    connect_timeout = forms.FloatField(label="Connect timeout (s)", required=False, min_value=0.01)
    first_byte_timeout = forms.FloatField(
        label="First byte timeout (s)", required=False, min_value=0.01
    )
    total_timeout = forms.FloatField(label="Total timeout (s)", required=False, min_value=0.01)
    options = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text='A JSON object of protocol options, e.g. {"api_version": "2024-06-01"}.',
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(
        self,
        data: Any = None,
        *,
        instance: Provider | None = None,
        may_change_credentials: bool = False,
    ) -> None:
        self.instance = instance
        initial = {}
        if instance is not None:
            initial = {
                field: getattr(instance, field)
                for field in (
                    "name",
                    "kind",
                    "base_url",
                    "api_key_env",
                    "region",
                    "connect_timeout",
                    "first_byte_timeout",
                    "total_timeout",
                    "enabled",
                )
            }
            initial["options"] = json.dumps(instance.options or {}) if instance.options else ""
        super().__init__(data, initial=initial)
        patterns = ", ".join(allowed_patterns())
        self.fields["api_key_env"].help_text += f" Allowed names: {patterns}."
        if instance is not None:
            self.fields["api_key"].help_text = (
                "Leave blank to keep the stored key. " + self.fields["api_key"].help_text
                if instance.has_stored_api_key
                else self.fields["api_key"].help_text
            )
            if instance.has_stored_api_key:
                self.fields["clear_api_key"] = forms.BooleanField(
                    label="Remove the stored key", required=False
                )
            if not may_change_credentials:
                note = " Changing it needs the permission providers.change_provider_credentials."
                for name in CREDENTIAL_FIELDS:
                    if name in self.fields:
                        self.fields[name].disabled = True
                        self.fields[name].help_text += note
        elif not may_change_credentials:
            self.fields["api_key_env"].disabled = True
            self.fields[
                "api_key_env"
            ].help_text += (
                " Reading a variable needs the permission providers.change_provider_credentials."
            )

    def clean_api_key_env(self) -> str:
        name = self.cleaned_data.get("api_key_env", "").strip()
        if name and (problem := env_reference_error(name)):
            raise forms.ValidationError(problem)
        return name

    def clean_options(self) -> dict[str, Any]:
        raw = self.cleaned_data.get("options", "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Must be a JSON object ({...}).")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("api_key") and data.get("api_key_env"):
            self.add_error(
                "api_key_env", "Give either an API key or an environment variable, not both."
            )
        needs_url = data.get("kind") and data["kind"] != Provider.Kind.SIMULATOR
        if (
            needs_url
            and "base_url" in data
            and not data["base_url"]
            and "base_url" not in self.errors
        ):
            self.add_error("base_url", "A base URL is required for this protocol.")
        return data

    def service_arguments(self) -> dict[str, Any]:
        """Keyword arguments for provider_create / provider_update (only what changes)."""
        data = dict(self.cleaned_data)
        fields = {
            name: data[name]
            for name in (
                "name",
                "kind",
                "region",
                "connect_timeout",
                "first_byte_timeout",
                "total_timeout",
                "options",
                "enabled",
            )
        }
        if self.instance is None:
            fields["base_url"] = data.get("base_url") or ""
            fields["api_key_env"] = data.get("api_key_env") or ""
            if data.get("api_key"):
                fields["api_key"] = data["api_key"]
            return fields
        if not self.fields["base_url"].disabled:
            fields["base_url"] = data.get("base_url") or ""
        if not self.fields["api_key_env"].disabled:
            if data.get("api_key_env") != self.instance.api_key_env:
                fields["api_key_env"] = data.get("api_key_env") or ""
            if data.get("api_key"):
                fields["api_key"] = data["api_key"]
            elif data.get("clear_api_key"):
                fields["api_key"] = None
        return fields


def _price(label: str, *, required: bool = False) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=required,
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=6,
        help_text="USD per 1M tokens." if required else "USD per 1M tokens; blank: none.",
    )


class DeploymentForm(forms.Form):
    """Create or edit a model deployment (its provider is chosen once, at creation)."""

    provider = forms.ModelChoiceField(queryset=Provider.objects.none(), empty_label=None)
    public_name = forms.CharField(
        label="Public name", max_length=200, help_text="The name callers use (e.g. gpt-4o-mini)."
    )
    upstream_model = forms.CharField(
        label="Upstream model", max_length=200, help_text="The name the provider knows it by."
    )
    aliases = forms.CharField(
        required=False, max_length=2000, help_text="Other names callers may use, comma-separated."
    )
    input_price = _price("Input price", required=True)
    output_price = _price("Output price", required=True)
    cached_input_price = _price("Cached input price")
    cache_write_price = _price("Cache write price")
    reasoning_price = _price("Reasoning price")
    context_window = forms.IntegerField(label="Context window (tokens)", min_value=1)
    max_output_tokens = forms.IntegerField(label="Max output tokens", min_value=1, required=False)
    capabilities = forms.MultipleChoiceField(
        choices=Capability.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    quality_score = forms.FloatField(
        label="Quality score",
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="0 to 1; the score strategy weighs it against cost and latency.",
    )
    region = forms.CharField(max_length=64, required=False)
    weight = forms.IntegerField(min_value=0, help_text="Share of traffic among equals.")
    enabled = forms.BooleanField(required=False)
    listed = forms.BooleanField(
        required=False, help_text=ModelDeployment._meta.get_field("listed").help_text
    )

    def __init__(
        self,
        data: Any = None,
        *,
        instance: ModelDeployment | None = None,
        providers: Any = None,
        provider: Provider | None = None,
    ) -> None:
        self.instance = instance
        if instance is not None:
            initial = {f: getattr(instance, f) for f in self.base_fields if f != "aliases"}
            initial["aliases"] = ", ".join(instance.aliases or ())
            initial["provider"] = instance.provider_id
        else:
            initial = {
                "context_window": 128_000,
                "quality_score": 0.5,
                "weight": 100,
                "enabled": True,
                "listed": True,
                "capabilities": ["chat", "streaming"],
                "provider": provider.pk if provider is not None else None,
            }
        super().__init__(data, initial=initial)
        if instance is not None:
            del self.fields["provider"]
        else:
            self.fields["provider"].queryset = providers

    def clean_aliases(self) -> list[str]:
        raw = self.cleaned_data.get("aliases", "")
        return [a.strip() for a in raw.split(",") if a.strip()]

    def service_arguments(self) -> dict[str, Any]:
        return dict(self.cleaned_data)


class DeploymentPricesForm(forms.Form):
    """A deployment's prices alone (what the cost-admin role may change)."""

    input_price = _price("Input price", required=True)
    output_price = _price("Output price", required=True)
    cached_input_price = _price("Cached input price")
    cache_write_price = _price("Cache write price")
    reasoning_price = _price("Reasoning price")

    def __init__(self, data: Any = None, *, instance: ModelDeployment) -> None:
        self.instance = instance
        super().__init__(data, initial={f: getattr(instance, f) for f in self.base_fields})

    def service_arguments(self) -> dict[str, Any]:
        return dict(self.cleaned_data)
