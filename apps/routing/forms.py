"""Console forms of routes: the route editor and the "try it" box.

The editor validates with the management API's RouteSerializer, then the service's checks
(apps.routing.route_services), so a route the console accepts is one the API would too and
every error lands next to its field.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

from apps.routing.api.serializers import RouteSerializer
from apps.routing.models import Route

JSON_FIELDS = ("candidate_filter", "retry", "timeouts")
LIST_FIELDS = ("candidates", "fallbacks")
MAX_PROMPT = 20_000


def _names_text(value: Any) -> str:
    return "\n".join(value or ())


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) if value else ""


class RouteForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="What callers put in `model`: team/coding.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    enabled = forms.BooleanField(required=False, initial=True)
    strategy = forms.ChoiceField(
        required=False,
        choices=[("", "Inherit (built-in's, wrapped model's balancing, or score)")]
        + list(Route.Strategy.choices),
    )
    tier = forms.ChoiceField(
        required=False,
        choices=[("", "Inherit (built-in's, else balanced)")] + list(Route.Tier.choices),
    )
    candidates = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text="Public model names, one a line, in order; empty: select by the filter.",
    )
    candidate_filter = forms.CharField(
        required=False,
        label="Candidate filter",
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text=(
            "JSON: capabilities, regions, providers (lists); min_quality (0..1); "
            "max_input_price, max_output_price (USD per million tokens). "
            'Example: {"capabilities": ["tools"], "min_quality": 0.7}'
        ),
    )
    fallbacks = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text="Public model names tried after the candidates, one a line.",
    )
    retry = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text="JSON: max_attempts, initial_backoff_ms, multiplier, max_backoff_ms, jitter.",
    )
    timeouts = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text='JSON, seconds: connect, first_byte, total. Example: {"total": 30}',
    )
    exploration = forms.BooleanField(required=False, initial=True)
    exploration_rate = forms.FloatField(
        initial=0.1, help_text="Upper bound on the share of requests spent exploring (0..1)."
    )
    challenger = forms.CharField(
        required=False, max_length=200, help_text="Public model name mirrored in the background."
    )
    challenger_share = forms.FloatField(
        initial=0.0, help_text="Share of traffic (0..1) mirrored to the challenger."
    )
    cache_ttl_seconds = forms.IntegerField(
        initial=0, min_value=0, label="Cache lifetime (seconds)", help_text="0 turns it off."
    )
    semantic_cache = forms.BooleanField(required=False)
    semantic_threshold = forms.FloatField(initial=0.92)

    def __init__(self, data: Any = None, *, instance: Route | None = None, **kwargs: Any):
        self.instance = instance
        initial = kwargs.pop("initial", None) or {}
        if instance is not None:
            for name in self.base_fields:
                value = getattr(instance, name)
                if name in LIST_FIELDS:
                    value = _names_text(value)
                elif name in JSON_FIELDS:
                    value = _json_text(value)
                initial[name] = value
        super().__init__(data, initial=initial, **kwargs)
        self.validated: dict[str, Any] = {}

    def _parse(self) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        for name, value in list(self.cleaned_data.items()):
            if name in LIST_FIELDS:
                payload[name] = [
                    line.strip() for line in value.replace(",", "\n").splitlines() if line.strip()
                ]
            elif name in JSON_FIELDS:
                text = value.strip()
                if not text:
                    payload[name] = {}
                    continue
                try:
                    payload[name] = json.loads(text)
                except ValueError as exc:
                    self.add_error(name, f"Not valid JSON: {exc.msg} (line {exc.lineno}).")
                    continue
                if not isinstance(payload[name], dict):
                    self.add_error(name, "Must be a JSON object: {...}.")
            else:
                payload[name] = value
        return payload

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        payload = self._parse()
        if self.errors:
            return cleaned
        serializer = RouteSerializer(instance=self.instance, data=payload)
        if not serializer.is_valid():
            for field, errors in serializer.errors.items():
                messages = errors if isinstance(errors, list) else [errors]
                text = " ".join(_flatten(messages))
                self.add_error(field if field in self.fields else None, text)
            return cleaned
        self.validated = dict(serializer.validated_data)
        return cleaned


def _flatten(errors: Any) -> list[str]:
    if isinstance(errors, dict):
        return [f"{k}: {m}" for k, v in errors.items() for m in _flatten(v)]
    if isinstance(errors, list):
        return [m for item in errors for m in _flatten(item)]
    return [str(errors)]


class TryRouteForm(forms.Form):
    """A prompt, optional routing hints and the key whose view of the route to rank from."""

    prompt = forms.CharField(
        max_length=MAX_PROMPT,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What a caller would send; it is ranked, never sent to a provider.",
    )
    hints = forms.CharField(
        required=False,
        label="Hints",
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}),
        help_text=(
            "The request's `atp` object as JSON: quality, max_cost_usd, latency_slo_ms, "
            'region, required_capabilities, carbon_aware. Example: {"quality": "high"}'
        ),
    )
    max_tokens = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)
    key = forms.ChoiceField(
        required=False,
        label="As API key",
        help_text="Rank with this key's allowed models and its tenant's preferences.",
    )

    def __init__(self, data: Any = None, *, keys: list[tuple[str, str]] = (), **kwargs: Any):
        super().__init__(data, **kwargs)
        self.fields["key"].choices = [("", "Neutral: every model, no tenant preferences")] + list(
            keys
        )

    def clean_hints(self) -> dict[str, Any]:
        text = self.cleaned_data.get("hints", "").strip()
        if not text:
            return {}
        try:
            hints = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from exc
        if not isinstance(hints, dict):
            raise forms.ValidationError('Must be a JSON object, such as {"quality": "high"}.')
        return hints
