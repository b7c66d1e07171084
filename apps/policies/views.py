"""Console pages of policies: the list, a policy's rules, the editor (with validation,
simulation and impact preview) and deletion.

Who may do what is apps.tenants.permissions' business, as on the management API: the
`policies.*` permissions (the security-admin role) reach every policy; `tenants.view_tenant`
on a tenant shows its policies and `tenants.change_tenant` writes them (its admins). Policies
of every tenant (no tenant) are global holders' only. Every write goes through
apps.policies.services, which validates, audits and bumps the configuration version.

A simulation evaluates a sample request against the enabled policies (and the draft being
edited) with the same compiled evaluator the data plane uses. An impact preview replays the
latest request-log rows of the draft's tenant against the policies with and without it. In
both, a matched policy the viewer may not see (a global one, for a tenant admin) is named but
its rule and conditions are not shown.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse

from apps.policies import selectors, services
from apps.policies.engine import Decision, Evaluator, Facts, compile_policies, describe
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
from apps.routing.models import RequestLog
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
# How many changed requests an impact preview lists (it counts them all).
IMPACT_LISTED = 50


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


def draft_policy(form: PolicyForm, *, tenant: Tenant | None, pk: int | None) -> Policy:
    """An unsaved policy from a valid editor form, enabled (a preview shows what it would do
    once it applies). `pk` is the policy it replaces, so its matches name that policy."""
    fields = form.service_fields()
    fields.pop("tenant", None)
    fields["enabled"] = True
    policy = Policy(tenant=tenant, **fields)
    policy.pk = pk
    return policy


def evaluators(draft: Policy | None) -> tuple[Evaluator, Evaluator]:
    """The enabled policies compiled as they are, and with `draft` in place of the policy it
    replaces (or added)."""
    enabled = list(selectors.policy_list().filter(enabled=True))
    current = compile_policies(selectors.policy_specs(policies=enabled))
    if draft is None:
        return current, current
    others = [p for p in enabled if p.pk != draft.pk]
    return current, compile_policies(selectors.policy_specs(policies=[*others, draft]))


def _resolve(rows: QuerySet, value: str, field: str) -> str:
    """A key or project typed by name (or slug) as the id requests carry, else as typed."""
    if not value:
        return ""
    found = rows.filter(**{field: value}).values_list("pk", flat=True).first()
    return str(found) if found is not None else value


def sample_facts(data: dict[str, Any]) -> Facts:
    """The facts of a sample request. Keys and projects are looked up in its tenant only."""
    tenant = data.get("sample_tenant")
    key = (data.get("sample_key") or "").strip()
    project = (data.get("sample_project") or "").strip()
    if tenant is not None:
        key = _resolve(tenant_selectors.api_key_list(tenant=tenant), key, "name")
        project = _resolve(tenant_selectors.project_list(tenant=tenant), project, "slug")
    return Facts(
        tenant=tenant.slug if tenant else "",
        tenant_id=str(tenant.pk) if tenant else "",
        project=project,
        key=key,
        end_user=(data.get("sample_end_user") or "").strip(),
        role=(data.get("sample_role") or "").strip(),
        groups=frozenset(data.get("sample_groups") or ()),
        endpoint=data.get("sample_endpoint") or "chat",
        classification=data.get("sample_classification") or "internal",
        entities=frozenset(data.get("sample_entities") or ()),
        tokens=data.get("sample_tokens") or 0,
        hour=data.get("sample_hour") or 0,
        weekday=data.get("sample_weekday") or 0,
        model=(data.get("sample_model") or "").strip(),
    )


# The request log's endpoint names, as policies name them.
_ENDPOINTS = {"chat.completions": "chat", "realtime.chat.completions": "realtime"}


def log_facts(row: RequestLog) -> Facts:
    """What the data plane knew of a logged request. The log keeps no end-user groups, role
    or hints, and of the entity types only those it redacted."""
    key = row.api_key
    created = row.created_at
    redacted = row.redactions if isinstance(row.redactions, dict) else {}
    return Facts(
        tenant=row.tenant.slug if row.tenant_id and row.tenant else "",
        tenant_id=str(row.tenant_id) if row.tenant_id else "",
        project=str(key.project_id) if key is not None and key.project_id else "",
        key=str(row.api_key_id) if row.api_key_id else "",
        end_user=row.end_user,
        endpoint=_ENDPOINTS.get(row.endpoint, row.endpoint.split(".", 1)[0]),
        classification=row.classification or "internal",
        entities=frozenset(name for name, count in redacted.items() if count),
        tokens=row.input_tokens,
        hour=created.hour,
        weekday=created.weekday(),
        model=row.requested_model or row.model,
    )


def _effective(decision: Decision) -> dict[str, Any]:
    """What a decision does to a request (its matches and log-only reports aside)."""
    found = decision.to_dict()
    for name in ("matched", "logged"):
        found.pop(name, None)
    return found


@dataclass
class Impact:
    replayed: int = 0
    outcome_changed: int = 0
    constraints_changed: int = 0
    logged_by_draft: int = 0
    transitions: Counter = field(default_factory=Counter)
    changed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed_total(self) -> int:
        return self.outcome_changed + self.constraints_changed


def impact_of(
    rows: list[RequestLog], current: Evaluator, proposed: Evaluator, draft_id: int
) -> Impact:
    """How the decisions on `rows` change from `current` to `proposed` policies."""
    impact = Impact(replayed=len(rows))
    for row in rows:
        facts = log_facts(row)
        before, after = current.evaluate(facts), proposed.evaluate(facts)
        if any(m.policy_id == draft_id for m in after.logged):
            impact.logged_by_draft += 1
        if _effective(before) == _effective(after):
            continue
        if before.outcome != after.outcome:
            impact.outcome_changed += 1
            impact.transitions[(before.outcome, after.outcome)] += 1
        else:
            impact.constraints_changed += 1
        if len(impact.changed) < IMPACT_LISTED:
            impact.changed.append({"row": row, "before": before, "after": after, "facts": facts})
    return impact


def shown_matches(matches: Any, visible: set[int], draft_id: int | None) -> list[dict[str, Any]]:
    """Matches as a page shows them: a policy the viewer may not see keeps only its name."""
    shown = []
    for match in matches:
        item = match.to_dict()
        item["visible"] = match.policy_id in visible or match.policy_id == draft_id
        item["draft"] = draft_id is not None and match.policy_id == draft_id
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

    def as_policy(self) -> Policy:
        return draft_policy(self.form, tenant=self.tenant, pk=self.pk or 0)


def posted_draft(request: HttpRequest) -> Draft:
    """The draft in a POST: of the policy named by `policy` (which the viewer must be allowed
    to change) or a new one (of a tenant the viewer may add policies for). Validated."""
    user = request.user
    ref = request.POST.get("policy", "")
    if ref:
        if not ref.isdigit():
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
        facts = sample_facts(data)
        current, proposed = evaluators(draft.as_policy() if draft else None)
        evaluator = proposed if draft else current
        decision = evaluator.evaluate(facts)
        visible = set(visible_policies(self.request.user).values_list("pk", flat=True))
        draft_id = (draft.pk or 0) if draft else None
        result: dict[str, Any] = {
            "decision": decision,
            "summary": _effective(decision),
            "matched": shown_matches(decision.matched, visible, draft_id),
            "logged": shown_matches(decision.logged, visible, draft_id),
            "deployment_rules": shown_matches(
                [r.match for r in decision.resource_rules], visible, draft_id
            ),
            "in_scope": [
                {
                    "name": spec.name,
                    "id": spec.id,
                    "visible": spec.id in visible or spec.id == draft_id,
                    "draft": spec.id == draft_id,
                    "tenant": spec.tenant or "every tenant",
                }
                for spec in evaluator.policies_for(facts)
            ],
        }
        if draft is not None:
            before = current.evaluate(facts)
            result["before"] = before
            result["changed"] = _effective(before) != _effective(decision)
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
            last = form.cleaned_data.get("last") or 200
            rows = selectors.recent_requests(
                tenant_id=draft.tenant.pk if draft.tenant else None, last=last
            )
            # A global draft replays every tenant's requests: only its global writers get here
            # (posted_draft), and they may see every tenant's policies. Defence in depth:
            allowed = permissions.tenant_ids(request.user, Policy, "view")
            if allowed is not None:
                rows = [r for r in rows if r.tenant_id in allowed]
            current, proposed = evaluators(draft.as_policy())
            impact = impact_of(rows, current, proposed, draft.pk or 0)
            for item in impact.changed:
                item["link"] = permissions.may_on(request.user, item["row"], "view")
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
