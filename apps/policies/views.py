"""Console pages of policies: the list, a policy's rules, the editor (with validation,
simulation and impact preview) and deletion.

Who may do what is apps.tenants.permissions' business, as on the management API: the
`policies.*` permissions (the security-admin role) reach every policy; `tenants.view_tenant`
on a tenant shows its policies and `tenants.change_tenant` writes them (its admins). Policies
of every tenant (no tenant) are global holders' only. Every write goes through
apps.policies.services, which validates, audits and bumps the configuration version.

Simulation and impact preview are apps.policies.simulate's (the management API's too): a
sample request, or the latest logged requests of the draft's tenant, evaluated by the
engine the gateway runs, with the draft being edited in place of its stored version. A
matched policy the viewer may not see (a global one, for a tenant admin) is named but its
rule and conditions are not shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse

from apps.policies import selectors, services
from apps.policies import simulate as simulation
from apps.policies.engine import describe
from apps.policies.filters import PolicyFilterSet
from apps.policies.forms import (
    ImpactForm,
    PolicyCreateForm,
    PolicyForm,
    SampleForm,
    field_of,
    rules_text,
)
from apps.policies.models import Policy
from apps.policies.tables import PolicyTable, scope_summary
from apps.policies.validation import has_errors, validate_policy
from apps.routing import selectors as routing_selectors
from apps.tenants import permissions
from apps.tenants import selectors as tenant_selectors
from apps.tenants.models import Tenant
from apps.tenants.views import PermissionFirst
from atp_site.console.views import (
    ConsoleView,
    FormView,
    ObjectActionView,
    ObjectDetailView,
    ObjectFormView,
    ObjectListView,
    hx_redirect,
    is_htmx,
)

# Shown instead of the rule and conditions of a matched policy the viewer may not see.
HIDDEN = "a policy you may not view"


# --- reading rules --------------------------------------------------------------------------


def effect_text(effect: Any) -> str:
    """A rule's effect in words: `deny ("No secrets.")`, `redact EMAIL, PHONE (mask)`."""
    if not isinstance(effect, dict):
        return "allow"
    kind = effect.get("type", "allow")
    if kind == "deny":
        message = effect.get("message")
        return f'deny ("{message}")' if message else "deny"
    if kind == "redact":
        return f"redact {', '.join(effect.get('entities') or [])} ({effect.get('mode', '')})"
    if kind == "route":
        parts = []
        if effect.get("regions") is not None:
            parts.append(f"regions {', '.join(effect['regions']) or '(none)'}")
        if effect.get("local_only"):
            parts.append("local models only")
        if effect.get("exclude_providers"):
            parts.append(f"not {', '.join(effect['exclude_providers'])}")
        return "route: " + ("; ".join(parts) or "unconstrained")
    if kind == "cap_cost":
        return f"cap cost at ${effect.get('max_usd')}"
    if kind == "retention":
        return f"keep for {effect.get('days')} days at most"
    if kind == "guard":
        parts = []
        if injection := effect.get("injection"):
            parts.append(
                f"prompt injection above {injection.get('threshold')}: {injection.get('action')}"
            )
        if egress := effect.get("egress"):
            parts.append(
                f"egress of {', '.join(egress.get('entities') or [])}: {egress.get('mode')}"
            )
        return "guard: " + "; ".join(parts)
    return str(kind)


def condition_text(cond: Any) -> str:
    """A condition as `attr op value` (its JSON when it is not one)."""
    try:
        return describe(cond)
    except (KeyError, TypeError):
        return json.dumps(cond, ensure_ascii=False)


def readable_rules(rules: Any) -> list[dict[str, Any]]:
    if not isinstance(rules, list):
        return []
    shown = []
    for i, rule in enumerate(rules):
        rule = rule if isinstance(rule, dict) else {}
        shown.append(
            {
                "id": rule.get("id") or f"rule-{i + 1}",
                "description": rule.get("description", ""),
                "when": [condition_text(c) for c in rule.get("when") or []],
                "effect": effect_text(rule.get("effect") or {"type": "allow"}),
                "kind": (rule.get("effect") or {}).get("type", "allow"),
            }
        )
    return shown


# --- evaluating drafts and samples ----------------------------------------------------------


def _resolve(rows: QuerySet, value: str, field: str) -> str:
    """A key or project typed by name (or slug) as the id requests carry, else as typed."""
    if not value:
        return ""
    found = rows.filter(**{field: value}).values_list("pk", flat=True).first()
    return str(found) if found is not None else value


def sample_request(data: dict[str, Any]) -> dict[str, Any]:
    """A sample request as apps.policies.simulate takes it. Keys and projects typed by name
    are looked up in the sample's tenant only."""
    tenant = data.get("sample_tenant")
    key = (data.get("sample_key") or "").strip()
    project = (data.get("sample_project") or "").strip()
    if tenant is not None:
        key = _resolve(tenant_selectors.api_key_list(tenant=tenant), key, "name")
        project = _resolve(tenant_selectors.project_list(tenant=tenant), project, "slug")
    return {
        "project": project,
        "key": key,
        "end_user": (data.get("sample_end_user") or "").strip(),
        "role": (data.get("sample_role") or "").strip(),
        "groups": list(data.get("sample_groups") or []),
        "endpoint": data.get("sample_endpoint") or "chat",
        "classification": data.get("sample_classification") or "internal",
        "entities": list(data.get("sample_entities") or []),
        "tokens": data.get("sample_tokens") or 0,
        "hour": data.get("sample_hour") or 0,
        "weekday": data.get("sample_weekday") or 0,
        "model": (data.get("sample_model") or "").strip(),
    }


def draft_of(form: PolicyForm) -> dict[str, Any]:
    """A valid editor form as a draft for apps.policies.simulate, enabled: a preview shows
    what it would do once it applies. It takes the place of its tenant's policy of that name."""
    fields = form.service_fields()
    fields.pop("tenant", None)
    return {**fields, "enabled": True}


def shown_matches(matches: Any, visible: set[int]) -> list[dict[str, Any]]:
    """Matches as a page shows them: a draft's (a negative id) and those of policies the
    viewer may see in full; any other keeps only its name."""
    shown = []
    for match in matches:
        item = dict(match)
        item["draft"] = item["policy_id"] < 0
        item["visible"] = item["draft"] or item["policy_id"] in visible
        if not item["visible"]:
            item["rule"], item["why"] = "", HIDDEN
        shown.append(item)
    return shown


# --- pages ----------------------------------------------------------------------------------


def visible_policies(user: Any) -> QuerySet[Policy]:
    return permissions.restrict(selectors.policy_list(), user, "view")


class PolicyListView(ObjectListView):
    model = Policy
    title = "Policies"
    table_class = PolicyTable
    filterset_class = PolicyFilterSet
    search_fields = ("name", "description")
    search_placeholder = "Search policies"
    add_action = ("policies:policy-add", "Add policy", ("policies.policy", "add"))
    template_name = "policies/policy_list.html"

    def get_queryset(self) -> QuerySet[Policy]:
        return selectors.policy_list()


class PolicyDetailView(PermissionFirst, ObjectDetailView):
    model = Policy
    template_name = "policies/policy_detail.html"

    def get_queryset(self) -> QuerySet[Policy]:
        return selectors.policy_list()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        from apps.audit.selectors import audit_event_scope, audit_reader

        context = super().get_context_data(**kwargs)
        policy, user = self.object, self.request.user
        history = []
        if audit_reader(user):
            history = list(
                audit_event_scope(user=user)
                .filter(event_type__startswith="policy.", resource_id=str(policy.pk))
                .order_by("-sequence")[:10]
            )
        context.update(
            title=policy.name,
            rules=readable_rules(policy.rules),
            scope=scope_summary(policy),
            history=history,
            may_change=permissions.may_on(user, policy, "change"),
            may_delete=permissions.may_on(user, policy, "delete"),
            may_view_tenant=policy.tenant_id is not None
            and permissions.may_on(user, policy.tenant, "view"),
        )
        return context


class EditorMixin:
    """The editor's side panels: the sample request and the impact preview's form."""

    request: HttpRequest

    def editor_context(self, *, policy: Policy | None, tenant: Tenant | None) -> dict[str, Any]:
        user = self.request.user
        initial = {"sample_tenant": tenant.slug} if tenant is not None else {}
        return {
            "policy": policy,
            "sample_form": SampleForm(
                tenants=permissions.allowed_tenants(user, Policy, "view"),
                every_tenant=permissions.tenant_ids(user, Policy, "view") is None,
                initial=initial,
            ),
            "impact_form": ImpactForm(),
            "validate_url": reverse("policies:policy-validate"),
            "simulate_url": reverse("policies:policy-simulate"),
            "impact_url": reverse("policies:policy-impact"),
            "with_draft": True,
        }


class _Problems(Exception):
    """A draft the validation refused: its problems go next to the fields they name."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("invalid policy")
        self.problems = problems


class PolicyEditorView(EditorMixin, FormView):
    """Shared by the create and edit pages: validation first (every problem on its field),
    then the service."""

    template_name = "policies/policy_edit.html"
    form_template = "policies/partials/policy_form.html"
    problems: list[dict[str, str]] | None = None

    def owner(self, form: PolicyForm) -> tuple[Tenant | None, int | None]:
        """The tenant and id of the policy being edited (None for a new one)."""
        raise NotImplementedError

    def check(self, form: PolicyForm) -> None:
        tenant, pk = self.owner(form)
        problems = validate_policy(
            form.draft(policy_id=pk), tenant_id=str(tenant.pk) if tenant else None
        )
        self.problems = problems
        if has_errors(problems):
            raise _Problems(problems)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = self.get_form(request.POST)
        if form.is_valid():
            return super().post(request, *args, **kwargs)
        # What parsed is validated too, so every problem shows at once.
        try:
            self.check(form)
        except _Problems as problems:
            form.add_problems(problems.problems)
        context = self.get_context_data(form=form)
        template = self.form_template if is_htmx(request) else self.template_name
        return self.render(template, context, status=422 if is_htmx(request) else 200)

    def form_error(self, form: Any, exc: Exception) -> bool:
        if isinstance(exc, _Problems):
            form.add_problems(exc.problems)
            return True
        if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
            scope = exc.error_dict.pop("scope", None)
            if scope:
                form.add_error(None, scope)
        return super().form_error(form, exc)

    def saved(self, policy: Policy) -> None:
        for warning in getattr(policy, "warnings", None) or []:
            messages.warning(self.request, f"{warning['path']}: {warning['message']}")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(problems=self.problems, **kwargs)


class PolicyCreateView(PolicyEditorView):
    permission = ("policies.policy", "add")
    title = "New policy"
    submit_label = "Add policy"
    success_message = "Policy {obj.name} saved."

    def get_form(self, data: Any = None) -> PolicyCreateForm:
        user = self.request.user
        initial: dict[str, Any] = {"rules": rules_text([])}
        if slug := self.request.GET.get("tenant"):
            initial["tenant"] = slug
        return PolicyCreateForm(
            data,
            tenants=permissions.allowed_tenants(user, Policy, "add"),
            every_tenant=permissions.may_for_tenant(user, Policy, "add", None),
            initial=initial,
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        tenant = Tenant.objects.filter(slug=self.request.GET.get("tenant") or "").first()
        return super().get_context_data(
            cancel_url=reverse("policies:policy-list"),
            **self.editor_context(policy=None, tenant=tenant),
            **kwargs,
        )

    def owner(self, form: PolicyForm) -> tuple[Tenant | None, int | None]:
        return form.cleaned_data.get("tenant"), None

    def perform(self, form: PolicyCreateForm) -> Policy:
        tenant = form.cleaned_data.get("tenant")
        if not permissions.may_for_tenant(
            self.request.user, Policy, "add", tenant.pk if tenant else None
        ):
            raise PermissionDenied
        self.check(form)
        policy = services.policy_create(**form.service_fields())
        self.saved(policy)
        return policy

    def success(self, result: Policy) -> HttpResponse:
        return hx_redirect(self.request, reverse("policies:policy-detail", args=[result.pk]))


class PolicyEditView(PermissionFirst, ObjectFormView, PolicyEditorView):
    model = Policy
    submit_label = "Save"
    success_message = "Policy {obj.name} saved."

    def get_queryset(self) -> QuerySet[Policy]:
        return selectors.policy_list()

    def get_form(self, data: Any = None) -> PolicyForm:
        return PolicyForm(data, initial=PolicyForm.initial_of(self.object))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        policy = self.object
        whose = f"tenant {policy.tenant.slug}" if policy.tenant_id else "every tenant"
        return super().get_context_data(
            title=f"Edit {policy.name}",
            fixed=f"Governs the requests of {whose}; the tenant stays as made (version "
            f"{policy.version}).",
            cancel_url=reverse("policies:policy-detail", args=[policy.pk]),
            may_delete=permissions.may_on(self.request.user, policy, "delete"),
            delete_url=reverse("policies:policy-delete", args=[policy.pk]),
            **self.editor_context(policy=policy, tenant=policy.tenant),
            **kwargs,
        )

    def owner(self, form: PolicyForm) -> tuple[Tenant | None, int | None]:
        return self.object.tenant, self.object.pk

    def perform(self, form: PolicyForm) -> Policy:
        # A fresh row: a refused change must not leave the page's object half changed.
        policy = selectors.policy_list().get(pk=self.object.pk)
        self.check(form)
        policy = services.policy_update(policy=policy, **form.service_fields())
        self.saved(policy)
        return policy

    def success(self, result: Policy) -> HttpResponse:
        return hx_redirect(self.request, reverse("policies:policy-detail", args=[result.pk]))


class PolicyDeleteView(PermissionFirst, ObjectActionView):
    model = Policy
    object_action = "delete"
    verb = "Delete"
    question = "Delete this policy?"
    consequence = (
        "Its rules stop applying to requests as soon as the gateway reloads its configuration; "
        "the audit log keeps a record."
    )
    success_message = "Policy {obj.name} deleted."

    def get_queryset(self) -> QuerySet[Policy]:
        return selectors.policy_list()

    def perform(self, obj: Policy) -> Policy:
        services.policy_delete(policy=obj)
        return obj

    def success(self, result: Policy) -> HttpResponse:
        return hx_redirect(self.request, reverse("policies:policy-list"))


# --- the editor's panels: validate, simulate, impact ----------------------------------------


@dataclass
class Draft:
    """The editor's fields as posted along with a panel's own."""

    form: PolicyForm
    policy: Policy | None  # the policy being edited; None for a new one
    tenant: Tenant | None
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def pk(self) -> int | None:
        return self.policy.pk if self.policy is not None else None

    @property
    def valid(self) -> bool:
        return self.form.is_valid() and not has_errors(self.problems)

    def as_draft(self) -> dict[str, Any]:
        return draft_of(self.form)


def posted_draft(request: HttpRequest) -> Draft:
    """The draft in a POST: of the policy named by `policy` (which the viewer must be allowed
    to change) or a new one (of a tenant the viewer may add policies for). Validated."""
    user = request.user
    ref = request.POST.get("policy", "")
    if ref:
        # Whoever may change no policy at all: 403 before any policy is looked up.
        if not ref.isdigit() or not permissions.may(user, Policy, "change"):
            raise PermissionDenied
        policy = get_object_or_404(visible_policies(user), pk=int(ref))
        if not permissions.may_on(user, policy, "change"):
            raise PermissionDenied
        form: PolicyForm = PolicyForm(request.POST)
        draft = Draft(form, policy, policy.tenant)
    else:
        if not permissions.may(user, Policy, "add"):
            raise PermissionDenied
        form = PolicyCreateForm(
            request.POST,
            tenants=permissions.allowed_tenants(user, Policy, "add"),
            every_tenant=permissions.may_for_tenant(user, Policy, "add", None),
        )
        draft = Draft(form, None, None)
    form.is_valid()
    if draft.policy is None:
        draft.tenant = form.cleaned_data.get("tenant")
    draft.problems = validate_policy(
        form.draft(policy_id=draft.pk),
        tenant_id=str(draft.tenant.pk) if draft.tenant else None,
    )
    form.add_problems(draft.problems)
    return draft


def form_problems(form: PolicyForm, problems: list[dict[str, str]]) -> list[dict[str, str]]:
    """Every problem to list: what the form itself refused (rules that do not parse, a name
    that is no slug), then the validation's errors and warnings on the other fields."""
    own = getattr(form, "own_errors", {})
    found = [
        {"path": "" if name == "__all__" else name, "message": error, "severity": "error"}
        for name, errors in own.items()
        for error in errors
    ]
    for problem in problems:
        if problem["severity"] == "error" and field_of(problem["path"]) in own:
            continue
        found.append(problem)
    return found


class EditorPanelView(ConsoleView):
    """A POST from the editor: its fields come along (hx-include) with the panel's own."""

    http_method_names = ["post"]

    def has_permission(self) -> bool:
        user = self.request.user
        return permissions.may(user, Policy, "add") or permissions.may(user, Policy, "change")


class PolicyValidateView(EditorPanelView):
    """The editor's "Validate" button: every problem of the draft, nothing saved."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        draft = posted_draft(request)
        problems = form_problems(draft.form, draft.problems)
        return self.render(
            "policies/partials/problems.html",
            {"problems": problems, "checked": True, "form": draft.form},
        )


class PolicySimulateView(EditorMixin, ConsoleView):
    """A sample request against the enabled policies, and the draft being edited when the
    editor sends one: the decision, what matched and why."""

    permission = ("policies.policy", "view")
    title = "Simulate a request"
    template_name = "policies/policy_simulate.html"
    partial = "policies/partials/simulate.html"

    def sample_form(self, data: Any = None, initial: dict[str, Any] | None = None) -> SampleForm:
        user = self.request.user
        return SampleForm(
            data,
            tenants=permissions.allowed_tenants(user, Policy, "view"),
            every_tenant=permissions.tenant_ids(user, Policy, "view") is None,
            initial=initial or {},
        )

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        initial = {}
        if slug := request.GET.get("tenant"):
            initial["sample_tenant"] = slug
        context = self.get_context_data(
            sample_form=self.sample_form(initial=initial),
            simulate_url=reverse("policies:policy-simulate"),
            with_draft=False,
        )
        return self.render(self.template_name, context)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = self.sample_form(request.POST)
        draft = posted_draft(request) if request.POST.get("with_draft") else None
        result = None
        if (
            form.is_valid()
            and draft is not None
            and draft.tenant is not None
            and form.cleaned_data.get("sample_tenant") != draft.tenant
        ):
            form.add_error(
                "sample_tenant",
                f"The draft governs tenant {draft.tenant.slug}'s requests: simulate one of those.",
            )
        if form.is_valid() and (draft is None or draft.valid):
            result = self.simulate(form.cleaned_data, draft)
        context = self.get_context_data(
            sample_form=form,
            result=result,
            draft=draft,
            draft_problems=form_problems(draft.form, draft.problems) if draft else [],
            simulate_url=reverse("policies:policy-simulate"),
            with_draft=draft is not None,
            policy=draft.policy if draft else None,
        )
        status = 200 if result is not None else 422
        if is_htmx(request):
            return self.render(self.partial, context, status=status)
        return self.render(self.template_name, context, status=200 if result else 400)

    def simulate(self, data: dict[str, Any], draft: Draft | None) -> dict[str, Any]:
        tenant = data.get("sample_tenant")
        request = sample_request(data)
        drafts = [draft.as_draft()] if draft is not None else []
        try:
            found = simulation.simulate(request=request, tenant=tenant, drafts=drafts)
            before = simulation.simulate(request=request, tenant=tenant) if drafts else None
        except ValidationError as error:
            # The form checked every field; a draft of another tenant than the sample's is
            # still checked against its own.
            return {"error": " ".join(error.messages)}
        viewer = self.request.user
        visible = set(visible_policies(viewer).values_list("pk", flat=True))
        names = {p["name"] for p in found["evaluated"]}
        ids = {
            (p.tenant.slug if p.tenant_id else None, p.name): p.pk
            for p in visible_policies(viewer).filter(name__in=names)
        }
        mine = (tenant.slug if tenant else None, drafts[0]["name"]) if drafts else None
        result: dict[str, Any] = {
            **found,
            "matched": shown_matches(found["matched"], visible),
            "logged": shown_matches(found["logged"], visible),
            "in_scope": [
                {
                    **p,
                    "id": ids.get((p["tenant"], p["name"])),
                    "draft": (p["tenant"], p["name"]) == mine,
                }
                for p in found["evaluated"]
            ],
        }
        if before is not None:
            result["before"] = before
            result["changed"] = before["decision"] != found["decision"]
        return result


class PolicyImpactView(EditorPanelView):
    """The editor's impact preview: the latest requests of the draft's tenant (every
    tenant's, for a global draft) replayed against the enabled policies with and without it."""

    title = "Impact preview"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        draft = posted_draft(request)
        form = ImpactForm(request.POST)
        impact = None
        if form.is_valid() and draft.valid:
            # Only the draft's tenant's requests (every tenant's for a global draft, which
            # only global writers may post: posted_draft).
            impact = simulation.impact(
                draft=draft.as_draft(),
                tenant=draft.tenant,
                last=form.cleaned_data.get("last") or 200,
            )
            impact["outcome_changed"] = sum(
                1 for r in impact["requests"] if r["before"]["outcome"] != r["after"]["outcome"]
            )
            logs = permissions.restrict(
                routing_selectors.requestlog_list().filter(
                    request_id__in=[r["request_id"] for r in impact["requests"]]
                ),
                request.user,
                "view",
            )
            links = dict(logs.values_list("request_id", "pk"))
            for item in impact["requests"]:
                item["pk"] = links.get(item["request_id"])
        context = self.get_context_data(
            impact=impact,
            impact_form=form,
            draft=draft,
            draft_problems=form_problems(draft.form, draft.problems),
            impact_url=reverse("policies:policy-impact"),
            policy=draft.policy,
        )
        status = 200 if impact is not None else 422
        if is_htmx(request):
            return self.render("policies/partials/impact.html", context, status=status)
        return self.render("policies/policy_impact.html", context, status=status)
