"""Filters of the console's rate limit, budget, budget alert and notifier lists (django-filter).

Only tenants and budgets the viewer may see are offered; another one is "not a valid
choice", so the list shows nothing rather than somebody else's rows.
"""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from apps.costs import selectors
from apps.costs.models import Budget, BudgetAlert, Notifier, RateLimit, Scope
from apps.tenants import permissions
from apps.tenants.models import Tenant
from atp_site.console.filters import AnyYesNo


def _tenants_for(model: type) -> object:
    def visible(request) -> QuerySet[Tenant]:
        user = getattr(request, "user", None)
        if user is None:
            return Tenant.objects.none()
        return permissions.allowed_tenants(user, model, "view")

    return visible


def _visible_budgets(request) -> QuerySet[Budget]:
    user = getattr(request, "user", None)
    if user is None:
        return Budget.objects.none()
    return permissions.restrict(selectors.budget_list(), user, "view").order_by("name")


class RateLimitFilterSet(django_filters.FilterSet):
    scope = django_filters.ChoiceFilter(choices=Scope.choices, empty_label="Any scope")
    tenant = django_filters.ModelChoiceFilter(
        queryset=_tenants_for(RateLimit), empty_label="Any tenant", to_field_name="slug"
    )

    class Meta:
        model = RateLimit
        fields = ["scope", "tenant"]


class BudgetFilterSet(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(
        queryset=_tenants_for(Budget), empty_label="Any tenant", to_field_name="slug"
    )
    period = django_filters.ChoiceFilter(choices=Budget.Period.choices, empty_label="Any period")
    action = django_filters.ChoiceFilter(
        choices=Budget.Action.choices, empty_label="Any action", label="When spent"
    )
    enabled = django_filters.BooleanFilter(widget=AnyYesNo())

    class Meta:
        model = Budget
        fields = ["tenant", "period", "action", "enabled"]


class BudgetAlertFilterSet(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(
        queryset=_tenants_for(BudgetAlert), empty_label="Any tenant", to_field_name="slug"
    )
    budget = django_filters.ModelChoiceFilter(queryset=_visible_budgets, empty_label="Any budget")

    class Meta:
        model = BudgetAlert
        fields = ["tenant", "budget"]


class NotifierFilterSet(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Notifier.Kind.choices, empty_label="Any kind")
    tenant = django_filters.ModelChoiceFilter(
        queryset=_tenants_for(Notifier), empty_label="Any tenant", to_field_name="slug"
    )

    class Meta:
        model = Notifier
        fields = ["kind", "tenant"]
