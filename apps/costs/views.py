"""Console pages of rate limits, budgets, budget alerts and notifiers.

A tenant's members see its limits, budgets, alerts and notifiers (TENANT_SCOPES); only
holders of the global costs permissions (the cost-admin role) change them, and every write
goes through the audited services the configuration file uses (apps.costs.services).
Rows without a tenant (a plan's limits, a platform notifier) are visible to global holders
only. A notifier's secret is write-only: no page renders it, not even as a form value.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpResponse
from django.urls import reverse

from apps.costs import selectors, services
from apps.costs.filters import (
    BudgetAlertFilterSet,
    BudgetFilterSet,
    NotifierFilterSet,
    RateLimitFilterSet,
)
from apps.costs.forms import (
    TARGET_FIELDS,
    BudgetCreateForm,
    BudgetForm,
    NotifierCreateForm,
    NotifierForm,
    RateLimitCreateForm,
    RateLimitForm,
    TargetField,
)
from apps.costs.limits import PLAN_DEFAULTS
from apps.costs.models import Budget, BudgetAlert, Notifier, RateLimit, Scope
from apps.costs.tables import (
    BudgetAlertTable,
    BudgetTable,
    NotifierTable,
    RateLimitTable,
    alert_delivery,
)
from apps.tenants import permissions
from apps.tenants import selectors as tenant_selectors
from apps.tenants.models import ApiKey, Project, Tenant
from apps.tenants.views import PermissionFirst
from atp_site.console.views import (
    FormView,
    ObjectActionView,
    ObjectDetailView,
    ObjectFormView,
    ObjectListView,
    hx_redirect,
)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class TargetFormView(FormView):
    """A create form whose "Applies to" choice offers what the viewer may set rows for.

    The tenants are those the viewer may add `model` rows to; projects and live keys are
    those of these tenants that the viewer may see. Plans (rows without a tenant) are
    offered to global holders only. `?tenant=`, `?project=` or `?key=` preselects one."""

    model: type

    def target_choices(self) -> dict[str, Any]:
        user = self.request.user
        tenants = permissions.allowed_tenants(user, self.model, "add")
        projects = permissions.restrict(tenant_selectors.project_list(), user, "view")
        keys = permissions.restrict(tenant_selectors.api_key_list(), user, "view")
        return {
            "tenants": tenants,
            "projects": projects.filter(tenant__in=tenants),
            "keys": keys.filter(tenant__in=tenants, revoked_at__isnull=True),
        }

    def initial_target(self) -> dict[str, Any]:
        query = self.request.GET
        found: dict[str, Any] = {}
        if (ref := query.get("key")) and _is_uuid(ref):
            found["api_key"] = ApiKey.objects.filter(pk=ref).first()
        elif (ref := query.get("project")) and _is_uuid(ref):
            found["project"] = Project.objects.filter(pk=ref).first()
        elif ref := query.get("tenant"):
            found["tenant"] = Tenant.objects.filter(slug=ref).first()
        value = TargetField.value_of(**found)
        return {"target": value} if value else {}

    def form_error(self, form: Any, exc: Exception) -> bool:
        # The services name the scope's own fields; on this form they are one choice.
        if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
            for field in TARGET_FIELDS:
                if field in exc.error_dict:
                    form.add_error("target", exc.error_dict.pop(field))
        return super().form_error(form, exc)

    def check_target(self, fields: dict[str, Any]) -> None:
        tenant = fields.get("tenant")
        if not permissions.may_for_tenant(
            self.request.user, self.model, "add", tenant.pk if tenant else None
        ):
            raise PermissionDenied


# What a row applies to is fixed once it exists (the services refuse to move it).
FIXED_TARGET = "Applies to the {target}; to set it for something else, add another."


# --- rate limits ----------------------------------------------------------------------------


class RateLimitListView(ObjectListView):
    model = RateLimit
    title = "Rate limits"
    table_class = RateLimitTable
    filterset_class = RateLimitFilterSet
    search_fields = ("tenant__slug", "project__slug", "api_key__name", "=plan")
    search_placeholder = "Search by tenant, project, key or plan"
    add_action = ("costs:ratelimit-add", "Add rate limit", ("costs.ratelimit", "add"))

    def get_queryset(self) -> QuerySet[RateLimit]:
        return selectors.rate_limit_list()


class RateLimitDetailView(PermissionFirst, ObjectDetailView):
    model = RateLimit
    template_name = "costs/ratelimit_detail.html"

    def get_queryset(self) -> QuerySet[RateLimit]:
        return selectors.rate_limit_list()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        limit, user = self.object, self.request.user
        context.update(
            title=f"Limits of the {limit.target_label}",
            plan_default=PLAN_DEFAULTS.get(limit.plan) if limit.scope == Scope.PLAN else None,
            may_change=permissions.may_on(user, limit, "change"),
            may_delete=permissions.may_on(user, limit, "delete"),
            may_view_tenant=limit.tenant_id is not None
            and permissions.may_on(user, limit.tenant, "view"),
        )
        return context


class RateLimitCreateView(TargetFormView):
    permission = ("costs.ratelimit", "add")
    model = RateLimit
    title = "New rate limit"
    submit_label = "Add rate limit"
    success_message = "Rate limit saved."

    def get_form(self, data: Any = None) -> RateLimitCreateForm:
        every_tenant = permissions.may_for_tenant(self.request.user, RateLimit, "add", None)
        return RateLimitCreateForm(
            data, plans=every_tenant, initial=self.initial_target(), **self.target_choices()
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(cancel_url=reverse("costs:ratelimit-list"), **kwargs)

    def perform(self, form: RateLimitCreateForm) -> RateLimit:
        data = dict(form.cleaned_data)
        target = data.pop("target")
        self.check_target(target)
        # Said on the field, as the API says it; the service would refuse it all the same.
        if existing := selectors.rate_limit_of(**target):
            raise ValidationError(
                {"target": f"The {existing.target_label} already has rate limits; change those."}
            )
        return services.rate_limit_create(**target, **data)

    def success(self, result: RateLimit) -> HttpResponse:
        return hx_redirect(self.request, reverse("costs:ratelimit-detail", args=[result.pk]))


class RateLimitEditView(PermissionFirst, ObjectFormView):
    model = RateLimit
    template_name = "costs/object_edit.html"
    form_class = RateLimitForm
    submit_label = "Save"
    success_message = "Rate limit saved."

    def get_queryset(self) -> QuerySet[RateLimit]:
        return selectors.rate_limit_list()

    def get_form(self, data: Any = None) -> RateLimitForm:
        return RateLimitForm(data, initial=RateLimitForm.initial_of(self.object))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            title=f"Edit the limits of the {self.object.target_label}",
            fixed=FIXED_TARGET.format(target=self.object.target_label),
            cancel_url=reverse("costs:ratelimit-detail", args=[self.object.pk]),
            **kwargs,
        )

    def perform(self, form: RateLimitForm) -> RateLimit:
        # A fresh row: a refused change must not leave the page's object half changed.
        limit = selectors.rate_limit_list().get(pk=self.object.pk)
        return services.rate_limit_update(rate_limit=limit, **form.cleaned_data)

    def success(self, result: RateLimit) -> HttpResponse:
        return hx_redirect(self.request, reverse("costs:ratelimit-detail", args=[result.pk]))


class RateLimitDeleteView(PermissionFirst, ObjectActionView):
    model = RateLimit
    object_action = "delete"
    verb = "Delete"
    question = "Delete these rate limits?"
    consequence = (
        "Requests are no longer counted against them (a plan's defaults apply again); the "
        "audit log keeps a record."
    )
    success_message = "Rate limits deleted."

    def get_queryset(self) -> QuerySet[RateLimit]:
        return selectors.rate_limit_list()

    def perform(self, obj: RateLimit) -> RateLimit:
        services.rate_limit_delete(rate_limit=obj)
        return obj

    def success(self, result: RateLimit) -> HttpResponse:
        return hx_redirect(self.request, reverse("costs:ratelimit-list"))


# --- budgets --------------------------------------------------------------------------------


class BudgetListView(ObjectListView):
    model = Budget
    title = "Budgets"
    table_class = BudgetTable
    filterset_class = BudgetFilterSet
    search_fields = ("name", "tenant__slug")
    search_placeholder = "Search budgets"
    add_action = ("costs:budget-add", "Add budget", ("costs.budget", "add"))

    def get_queryset(self) -> QuerySet[Budget]:
        return selectors.budget_list()


class BudgetDetailView(PermissionFirst, ObjectDetailView):
    model = Budget
    template_name = "costs/budget_detail.html"

    def get_queryset(self) -> QuerySet[Budget]:
        return selectors.budget_list()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        budget, user = self.object, self.request.user
        alerts = permissions.restrict(selectors.budget_alert_list(budget=budget), user, "view")
        context.update(
            title=budget.name,
            spend=selectors.budget_period_spend(budget),
            alerts=[(alert, alert_delivery(alert)) for alert in alerts[:25]],
            may_change=permissions.may_on(user, budget, "change"),
            may_delete=permissions.may_on(user, budget, "delete"),
            may_view_tenant=permissions.may_on(user, budget.tenant, "view"),
        )
        return context


class BudgetCreateView(TargetFormView):
    permission = ("costs.budget", "add")
    model = Budget
    title = "New budget"
    submit_label = "Add budget"
    success_message = "Budget {obj.name} saved."

    def get_form(self, data: Any = None) -> BudgetCreateForm:
        return BudgetCreateForm(data, initial=self.initial_target(), **self.target_choices())

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(cancel_url=reverse("costs:budget-list"), **kwargs)

    def perform(self, form: BudgetCreateForm) -> Budget:
        data = dict(form.cleaned_data)
        target = data.pop("target")
        self.check_target(target)
        return services.budget_create(**target, **data)

    def success(self, result: Budget) -> HttpResponse:
        return hx_redirect(self.request, reverse("costs:budget-detail", args=[result.pk]))


class BudgetEditView(PermissionFirst, ObjectFormView):
    model = Budget
    template_name = "costs/object_edit.html"
    form_class = BudgetForm
    submit_label = "Save"
    success_message = "Budget {obj.name} saved."

    def get_queryset(self) -> QuerySet[Budget]:
        return selectors.budget_list()

    def get_form(self, data: Any = None) -> BudgetForm:
        return BudgetForm(data, initial=BudgetForm.initial_of(self.object))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            title=f"Edit {self.object.name}",
            fixed=FIXED_TARGET.format(target=self.object.target_label),
            cancel_url=reverse("costs:budget-detail", args=[self.object.pk]),
            **kwargs,
        )

    def perform(self, form: BudgetForm) -> Budget:
        budget = selectors.budget_list().get(pk=self.object.pk)
        return services.budget_update(budget=budget, **form.cleaned_data)

    def success(self, result: Budget) -> HttpResponse:
        return hx_redirect(self.request, reverse("costs:budget-detail", args=[result.pk]))


class BudgetDeleteView(PermissionFirst, ObjectActionView):
    model = Budget
    object_action = "delete"
    verb = "Delete"
    question = "Delete this budget?"
    consequence = (
        "Its spend is no longer capped and its alerts are deleted with it; the audit log "
        "keeps a record."
    )
    success_message = "Budget {obj.name} deleted."

    def get_queryset(self) -> QuerySet[Budget]:
        return selectors.budget_list()

    def perform(self, obj: Budget) -> Budget:
        services.budget_delete(budget=obj)
        return obj

    def success(self, result: Budget) -> HttpResponse:
        return hx_redirect(self.request, reverse("costs:budget-list"))


# --- budget alerts (recorded by the data plane; read only) ----------------------------------


class BudgetAlertListView(ObjectListView):
    model = BudgetAlert
    title = "Budget alerts"
    table_class = BudgetAlertTable
    filterset_class = BudgetAlertFilterSet
    search_fields = ("budget__name",)
    search_placeholder = "Search by budget"

    def get_queryset(self) -> QuerySet[BudgetAlert]:
        return selectors.budget_alert_list()


class BudgetAlertDetailView(PermissionFirst, ObjectDetailView):
    model = BudgetAlert
    template_name = "costs/budgetalert_detail.html"

    def get_queryset(self) -> QuerySet[BudgetAlert]:
        return selectors.budget_alert_list()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        alert, user = self.object, self.request.user
        context.update(
            title=str(alert),
            delivery=alert_delivery(alert),
            may_view_budget=permissions.may_on(user, alert.budget, "view"),
        )
        return context


# --- notifiers ------------------------------------------------------------------------------


class NotifierListView(ObjectListView):
    model = Notifier
    title = "Notifiers"
    filterset_class = NotifierFilterSet
    search_fields = ("name",)
    search_placeholder = "Search notifiers"
    add_action = ("costs:notifier-add", "Add notifier", ("costs.notifier", "add"))

    def get_queryset(self) -> QuerySet[Notifier]:
        return selectors.notifier_list()

    @property
    def table_class(self) -> Any:  # type: ignore[override]
        # The costs permissions that change rows are global only: one answer for every row.
        return partial(
            NotifierTable,
            may_change=self.may("costs.notifier", "change"),
            may_delete=self.may("costs.notifier", "delete"),
        )


class NotifierCreateView(FormView):
    permission = ("costs.notifier", "add")
    title = "New notifier"
    submit_label = "Add notifier"
    success_message = "Notifier {obj.name} saved."

    def get_form(self, data: Any = None) -> NotifierCreateForm:
        user = self.request.user
        initial = {"tenant": slug} if (slug := self.request.GET.get("tenant")) else {}
        return NotifierCreateForm(
            data,
            tenants=permissions.allowed_tenants(user, Notifier, "add"),
            every_tenant=permissions.may_for_tenant(user, Notifier, "add", None),
            initial=initial,
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(cancel_url=reverse("costs:notifier-list"), **kwargs)

    def perform(self, form: NotifierCreateForm) -> Notifier:
        data = dict(form.cleaned_data)
        tenant = data["tenant"]
        if not permissions.may_for_tenant(
            self.request.user, Notifier, "add", tenant.pk if tenant else None
        ):
            raise PermissionDenied
        return services.notifier_create(**data)

    def success(self, result: Notifier) -> HttpResponse:
        return hx_redirect(self.request, reverse("costs:notifier-list"))


class NotifierEditView(PermissionFirst, ObjectFormView):
    model = Notifier
    form_class = NotifierForm
    template_name = "costs/object_edit.html"
    submit_label = "Save"
    success_message = "Notifier {obj.name} saved."

    def get_queryset(self) -> QuerySet[Notifier]:
        return selectors.notifier_list()

    def get_form(self, data: Any = None) -> NotifierForm:
        notifier = self.object
        initial = {"name": notifier.name, "target": notifier.target, "enabled": notifier.enabled}
        return NotifierForm(data, initial=initial)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        notifier = self.object
        whose = f"tenant {notifier.tenant.slug}" if notifier.tenant_id else "every tenant"
        return super().get_context_data(
            title=f"Edit {notifier.name}",
            fixed=f"{notifier.get_kind_display()} for {whose}; kind and tenant stay as made.",
            cancel_url=reverse("costs:notifier-list"),
            may_delete=permissions.may_on(self.request.user, notifier, "delete"),
            delete_url=reverse("costs:notifier-delete", args=[notifier.pk]),
            **kwargs,
        )

    def perform(self, form: NotifierForm) -> Notifier:
        notifier = selectors.notifier_list().get(pk=self.object.pk)
        data = dict(form.cleaned_data)
        if not data["secret"]:
            del data["secret"]  # empty: keep the secret it has
        return services.notifier_update(notifier=notifier, **data)

    def success(self, result: Notifier) -> HttpResponse:
        return hx_redirect(self.request, reverse("costs:notifier-list"))


class NotifierDeleteView(PermissionFirst, ObjectActionView):
    model = Notifier
    object_action = "delete"
    verb = "Delete"
    question = "Delete this notifier?"
    consequence = "Budget alerts are no longer sent through it; the audit log keeps a record."
    success_message = "Notifier {obj.name} deleted."

    def get_queryset(self) -> QuerySet[Notifier]:
        return selectors.notifier_list()

    def perform(self, obj: Notifier) -> Notifier:
        services.notifier_delete(notifier=obj)
        return obj

    def success(self, result: Notifier) -> HttpResponse:
        return hx_redirect(self.request, reverse("costs:notifier-list"))
