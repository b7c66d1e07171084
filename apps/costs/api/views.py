"""Management API views for rate limits, budgets, budget alerts and notifiers.

A tenant's members see its rows (tenants.view_tenant); writes need the global `costs.*`
permissions (the cost-admin role). Rows of no tenant (a plan's limits, a notifier for every
tenant) are seen and changed by global holders only.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from rest_framework import viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.serializers import BaseSerializer

from apps.costs import selectors, services
from apps.costs.api.serializers import (
    BudgetAlertSerializer,
    BudgetSerializer,
    BudgetUpdateSerializer,
    NotifierSerializer,
    NotifierUpdateSerializer,
    RateLimitSerializer,
    RateLimitUpdateSerializer,
)
from apps.costs.models import Budget, BudgetAlert, Notifier, RateLimit, Scope
from apps.tenants import permissions
from apps.tenants.api.permissions import ScopedQuerysetMixin
from apps.tenants.api.views import ServiceModelViewSet
from apps.tenants.models import ApiKey, Plan, Project, Tenant


def _user(request: Request | None) -> Any:
    return getattr(request, "user", None)


# A tenant, project, key or budget the caller may not see is refused in a filter like one
# that does not exist.
def _visible_tenants(request: Request | None) -> QuerySet[Tenant]:
    return permissions.allowed_tenants(_user(request), Tenant, "view")


def _visible_projects(request: Request | None) -> QuerySet[Project]:
    return permissions.restrict(Project.objects.all(), _user(request), "view")


def _visible_keys(request: Request | None) -> QuerySet[ApiKey]:
    return permissions.restrict(ApiKey.objects.all(), _user(request), "view")


def _visible_budgets(request: Request | None) -> QuerySet[Budget]:
    return permissions.restrict(Budget.objects.all(), _user(request), "view")


class ScopedFilterSet(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(queryset=_visible_tenants)
    project = django_filters.ModelChoiceFilter(queryset=_visible_projects)
    api_key = django_filters.ModelChoiceFilter(queryset=_visible_keys)
    scope = django_filters.ChoiceFilter(choices=Scope.choices)


class RateLimitFilterSet(ScopedFilterSet):
    plan = django_filters.ChoiceFilter(choices=[p for p in Plan.choices if p[0]])

    class Meta:
        model = RateLimit
        fields = ["tenant", "project", "api_key", "scope", "plan"]


class BudgetFilterSet(ScopedFilterSet):
    class Meta:
        model = Budget
        fields = ["tenant", "project", "api_key", "scope", "name", "period", "action", "enabled"]


class BudgetAlertFilterSet(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(queryset=_visible_tenants)
    budget = django_filters.ModelChoiceFilter(queryset=_visible_budgets)

    class Meta:
        model = BudgetAlert
        fields = ["tenant", "budget"]


class NotifierFilterSet(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(queryset=_visible_tenants)

    class Meta:
        model = Notifier
        fields = ["tenant", "kind", "enabled", "name"]


class CostsViewSet(ServiceModelViewSet):
    """Writes through apps.costs.services. On create, the tenant, project and key choices are
    those of the tenants the caller may see or add to (anything else reads as not found),
    and the caller needs the add permission for the row's tenant (a global one for rows of
    no tenant)."""

    def get_serializer(self, *args: Any, **kwargs: Any) -> BaseSerializer:
        serializer = super().get_serializer(*args, **kwargs)
        if self.action == "create":
            user = self.request.user
            tenants = permissions.allowed_tenants(
                user, self.permission_model, "view"
            ) | permissions.allowed_tenants(user, self.permission_model, "add")
            fields = serializer.fields
            fields["tenant"].queryset = tenants
            if "project" in fields:
                fields["project"].queryset = Project.objects.filter(tenant__in=tenants)
            if "api_key" in fields:
                fields["api_key"].queryset = ApiKey.objects.filter(
                    tenant__in=tenants, revoked_at__isnull=True
                )
        return serializer

    def check_add(self, data: dict[str, Any]) -> None:
        tenant = data.get("tenant")
        for name in ("project", "api_key"):
            if tenant is None and data.get(name) is not None:
                tenant = data[name].tenant
        tenant_id = tenant.pk if tenant is not None else None
        if not permissions.may_for_tenant(
            self.request.user, self.permission_model, "add", tenant_id
        ):
            if tenant is None:
                raise PermissionDenied("Only a global permission covers rows of every tenant.")
            raise PermissionDenied(f"You may not do this for tenant '{tenant.slug}'.")


class RateLimitViewSet(CostsViewSet):
    """Rate limits: requests and tokens per minute, concurrent requests and cost per hour,
    for every key on a plan, a tenant, a project or a key. A target has one row; its
    target is fixed once made."""

    serializer_class = RateLimitSerializer
    update_serializer_class = RateLimitUpdateSerializer
    permission_model = RateLimit
    filterset_class = RateLimitFilterSet
    search_fields = ["plan", "tenant__slug", "project__slug", "api_key__name"]
    ordering_fields = ["scope", "created_at", "updated_at"]

    def base_queryset(self) -> QuerySet[RateLimit]:
        return selectors.rate_limit_list()

    def create_object(self, data: dict[str, Any]) -> RateLimit:
        self.check_add(data)
        return services.rate_limit_create(**data)

    def update_object(self, instance: RateLimit, data: dict[str, Any]) -> RateLimit:
        return services.rate_limit_update(rate_limit=instance, **data)

    def delete_object(self, instance: RateLimit) -> None:
        services.rate_limit_delete(rate_limit=instance)


class BudgetViewSet(CostsViewSet):
    """Budgets: spend allowed to a tenant, project or key per calendar period. Responses
    carry the current period's start and spend. The target is fixed once made."""

    serializer_class = BudgetSerializer
    update_serializer_class = BudgetUpdateSerializer
    permission_model = Budget
    filterset_class = BudgetFilterSet
    search_fields = ["name", "tenant__slug", "project__slug", "api_key__name"]
    ordering_fields = ["name", "limit_usd", "created_at", "updated_at"]

    def base_queryset(self) -> QuerySet[Budget]:
        return selectors.budget_list()

    def create_object(self, data: dict[str, Any]) -> Budget:
        self.check_add(data)
        return services.budget_create(**data)

    def update_object(self, instance: Budget, data: dict[str, Any]) -> Budget:
        return services.budget_update(budget=instance, **data)

    def delete_object(self, instance: Budget) -> None:
        services.budget_delete(budget=instance)


class BudgetAlertViewSet(ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """Thresholds budgets crossed, newest first; written by the data plane, read-only here."""

    serializer_class = BudgetAlertSerializer
    permission_model = BudgetAlert
    filterset_class = BudgetAlertFilterSet
    ordering_fields = ["created_at", "period_start", "threshold"]
    ordering = ["-created_at"]

    def base_queryset(self) -> QuerySet[BudgetAlert]:
        return selectors.budget_alert_list()


class NotifierViewSet(CostsViewSet):
    """Where budget alerts go: e-mail, or a webhook signed with its secret (write-only). A
    notifier of one tenant gets that tenant's alerts; one of no tenant every tenant's."""

    serializer_class = NotifierSerializer
    update_serializer_class = NotifierUpdateSerializer
    permission_model = Notifier
    filterset_class = NotifierFilterSet
    search_fields = ["name", "target", "tenant__slug"]
    ordering_fields = ["name", "created_at"]

    def base_queryset(self) -> QuerySet[Notifier]:
        return selectors.notifier_list()

    def create_object(self, data: dict[str, Any]) -> Notifier:
        self.check_add(data)
        return services.notifier_create(**data)

    def update_object(self, instance: Notifier, data: dict[str, Any]) -> Notifier:
        return services.notifier_update(notifier=instance, **data)

    def delete_object(self, instance: Notifier) -> None:
        services.notifier_delete(notifier=instance)
