"""Forms of the console's policy pages: the editor, and the sample request of a simulation.

Forms parse what a person typed. apps.policies.validation decides what is wrong with a
draft and apps.policies.services writes it; their problems land next to the field their
path names (`rules[0].when[1].op` on the rules, `scope.projects` on the projects).
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from django import forms
from django.db.models import QuerySet

from apps.policies.detection import ENTITY_TYPES
from apps.policies.engine import CLASSIFICATIONS, ENDPOINTS
from apps.policies.models import Policy
from apps.tenants.forms import ListField
from apps.tenants.models import Tenant

# Nothing that could hide in a text: control characters other than line breaks and tabs.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
MAX_RULES_TEXT = 200_000
SCOPE_FIELDS = {
    "projects": "scope_projects",
    "keys": "scope_keys",
    "groups": "scope_groups",
    "classifications": "scope_classifications",
}
RULES_HELP = (
    "A JSON (or YAML) list of rules, walked in order. Each rule: "
    '{"id": "no-secrets", "when": [{"attr": "request.entities", "op": "contains", '
    '"value": "SECRET"}], "effect": {"type": "deny", "message": "No secrets."}}. '
    "Attributes, operators and effects are listed in docs/policies.md."
)


def rules_text(rules: Any) -> str:
    """Rules as the editor shows them: indented JSON."""
    return json.dumps(rules if rules is not None else [], indent=2, ensure_ascii=False)


def parse_rules(text: str) -> Any:
    """The rules a person typed, as JSON or YAML (JSON is YAML); ValidationError if neither."""
    text = (text or "").strip()
    if not text:
        return []
    if len(text) > MAX_RULES_TEXT:
        raise forms.ValidationError(f"At most {MAX_RULES_TEXT:,} characters.")
    if _UNPRINTABLE.search(text):
        raise forms.ValidationError("The rules may not contain control characters.")
    try:
        return json.loads(text)
    except ValueError as json_error:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as yaml_error:
            mark = getattr(yaml_error, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise forms.ValidationError(
                f"Not valid JSON or YAML: {json_error.msg} at line {json_error.lineno}, "
                f"column {json_error.colno}; as YAML{where}: "
                f"{getattr(yaml_error, 'problem', None) or yaml_error}."
            ) from None


def field_of(path: str) -> str | None:
    """The editor's field a validation problem's path points into (None: the whole form)."""
    head = re.split(r"[.\[]", path, maxsplit=1)[0]
    if head == "scope":
        key = path[len("scope.") :].split("[", 1)[0] if path.startswith("scope.") else ""
        return SCOPE_FIELDS.get(key)
    if head in ("name", "mode", "priority", "rules", "description", "enabled"):
        return head
    return None


class PolicyForm(forms.Form):
    """The editor of an existing policy (its tenant is fixed once made)."""

    name = forms.SlugField(
        max_length=100, help_text="Letters, digits, - and _; unique within its tenant."
    )
    description = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    enabled = forms.BooleanField(
        required=False, initial=True, help_text="A disabled policy is never evaluated."
    )
    mode = forms.ChoiceField(
        choices=Policy.Mode.choices,
        initial=Policy.Mode.ENFORCE,
        help_text="Log only: evaluated on live traffic and recorded, never enforced.",
    )
    priority = forms.IntegerField(
        initial=0,
        min_value=-1_000_000,
        max_value=1_000_000,
        help_text="Higher is evaluated first; a tenant's before a global one at equal priority.",
    )
    scope_projects = ListField(
        max_length=4000,
        label="Projects",
        help_text="Project slugs or ids, separated by commas. Empty: every project.",
    )
    scope_keys = ListField(
        max_length=4000,
        label="API keys",
        help_text="Key names or ids, separated by commas. Empty: every key.",
    )
    scope_groups = ListField(
        max_length=4000,
        label="End-user groups",
        help_text="The policy applies to requests of end users in any of these. Empty: all.",
    )
    scope_classifications = forms.MultipleChoiceField(
        required=False,
        choices=[(c, c.capitalize()) for c in CLASSIFICATIONS],
        widget=forms.CheckboxSelectMultiple,
        label="Classifications",
        help_text="Requests of these data classifications only. None ticked: all.",
    )
    rules = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 18, "class": "mono", "spellcheck": "false", "autocomplete": "off"}
        ),
        help_text=RULES_HELP,
    )

    EDITABLE = ("name", "description", "enabled", "mode", "priority")

    @classmethod
    def initial_of(cls, policy: Policy) -> dict[str, Any]:
        scope = policy.scope or {}
        initial: dict[str, Any] = {name: getattr(policy, name) for name in cls.EDITABLE}
        for key, field in SCOPE_FIELDS.items():
            values = scope.get(key) or []
            initial[field] = list(values)
        initial["rules"] = rules_text(policy.rules)
        return initial

    def clean_description(self) -> str:
        value = self.cleaned_data["description"]
        if _UNPRINTABLE.search(value):
            raise forms.ValidationError("The description may not contain control characters.")
        return value

    def clean_rules(self) -> Any:
        return parse_rules(self.cleaned_data["rules"])

    def scope(self) -> dict[str, list[str]]:
        data = self.cleaned_data
        scope: dict[str, list[str]] = {}
        for key, field in SCOPE_FIELDS.items():
            value = data.get(field)
            values = list(value or [])
            if values:
                scope[key] = values
        return scope

    def service_fields(self) -> dict[str, Any]:
        """What the services take (policy_update; policy_create adds the tenant)."""
        data = self.cleaned_data
        fields = {name: data[name] for name in self.EDITABLE}
        fields["scope"] = self.scope()
        fields["rules"] = data["rules"]
        return fields

    def draft(self, *, policy_id: int | None = None) -> dict[str, Any]:
        """The draft as apps.policies.validation checks it: what parsed of it (a field the
        form refused is left out, so the rest is still checked)."""
        data = self.cleaned_data
        draft: dict[str, Any] = {"id": policy_id, "scope": self.scope()}
        for name in ("name", "mode", "priority", "rules"):
            if name in data:
                draft[name] = data[name]
        return draft

    def add_problems(self, problems: list[dict[str, str]]) -> None:
        """Each error next to the field its path points into, prefixed with the path inside
        it. A field the form itself refused keeps its own error only."""
        self.own_errors = {name: list(errors) for name, errors in self.errors.items()}
        for problem in problems:
            if problem["severity"] != "error":
                continue
            path = problem["path"]
            field = field_of(path)
            if field is not None and field not in self.fields:
                field = None
            if field in self.own_errors:
                continue
            text = f"{path}: {problem['message']}" if path and path != field else problem["message"]
            self.add_error(field, text)


class PolicyCreateForm(PolicyForm):
    """A new policy: its tenant is one the viewer may write policies for."""

    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.none(),
        to_field_name="slug",
        required=False,
        empty_label="Every tenant (a global policy)",
        help_text="The tenant whose requests it governs; fixed once the policy is made.",
    )
    field_order = ["name", "tenant", "description", "enabled", "mode", "priority"]

    def __init__(
        self, *args: Any, tenants: QuerySet[Tenant], every_tenant: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["tenant"]
        field.queryset = tenants.order_by("slug")
        field.error_messages["invalid_choice"] = "Choose one of the tenants you may write for."
        if not every_tenant:
            field.required = True
            field.empty_label = "Choose a tenant"

    def service_fields(self) -> dict[str, Any]:
        return {"tenant": self.cleaned_data.get("tenant"), **super().service_fields()}


class SampleForm(forms.Form):
    """A sample request for a simulation: what the data plane would know of it."""

    sample_tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.none(),
        to_field_name="slug",
        required=False,
        label="Tenant",
        empty_label="No tenant (global policies only)",
    )
    sample_key = forms.CharField(
        required=False, max_length=200, label="API key", help_text="Its name or id."
    )
    sample_project = forms.CharField(
        required=False, max_length=200, label="Project", help_text="Its slug or id."
    )
    sample_end_user = forms.CharField(required=False, max_length=256, label="End user")
    sample_groups = ListField(
        max_length=2000,
        label="End-user groups",
        help_text="Separated by commas.",
    )
    sample_role = forms.CharField(required=False, max_length=100, label="End-user role")
    sample_endpoint = forms.ChoiceField(
        choices=[(e, e) for e in ENDPOINTS], initial="chat", label="Endpoint"
    )
    sample_classification = forms.ChoiceField(
        choices=[(c, c.capitalize()) for c in CLASSIFICATIONS],
        initial="internal",
        label="Classification",
    )
    sample_entities = forms.MultipleChoiceField(
        required=False,
        choices=[(e, e) for e in ENTITY_TYPES],
        widget=forms.CheckboxSelectMultiple,
        label="Entity types found",
    )
    sample_model = forms.CharField(
        required=False, max_length=200, label="Model", help_text="The model asked for."
    )
    sample_tokens = forms.IntegerField(
        required=False, min_value=0, max_value=10_000_000, initial=500, label="Tokens"
    )
    sample_hour = forms.IntegerField(
        required=False, min_value=0, max_value=23, initial=12, label="Hour (UTC)"
    )
    sample_weekday = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=6,
        initial=0,
        label="Weekday",
        help_text="0 is Monday.",
    )

    def __init__(
        self, *args: Any, tenants: QuerySet[Tenant], every_tenant: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["sample_tenant"]
        field.queryset = tenants.order_by("slug")
        field.error_messages["invalid_choice"] = "Choose one of the tenants you may see."
        if not every_tenant:
            field.required = True
            field.empty_label = "Choose a tenant"


class ImpactForm(forms.Form):
    """How many of the latest requests an impact preview replays."""

    last = forms.IntegerField(
        min_value=1,
        max_value=1000,
        initial=200,
        required=False,
        label="Requests to replay",
        help_text="The latest requests of the draft's tenant (of every tenant for a global one).",
    )
