"""Console URLs of spend, savings, rate limits, budgets, budget alerts and notifiers.

The management API is in api/urls.py."""

from __future__ import annotations

from django.urls import path

from apps.costs import spend_views, views
from atp_site.console.routes import object_urls

app_name = "costs"

urlpatterns = [
    path("spend/", spend_views.SpendView.as_view(), name="spend"),
    path("spend/savings/", spend_views.SavingsView.as_view(), name="spend-savings"),
    *object_urls(
        "rate-limits",
        "ratelimit",
        list=views.RateLimitListView,
        add=views.RateLimitCreateView,
        detail=views.RateLimitDetailView,
        edit=views.RateLimitEditView,
        delete=views.RateLimitDeleteView,
    ),
    *object_urls(
        "budgets",
        "budget",
        list=views.BudgetListView,
        add=views.BudgetCreateView,
        detail=views.BudgetDetailView,
        edit=views.BudgetEditView,
        delete=views.BudgetDeleteView,
    ),
    *object_urls(
        "budget-alerts",
        "budgetalert",
        list=views.BudgetAlertListView,
        detail=views.BudgetAlertDetailView,
    ),
    *object_urls(
        "notifiers",
        "notifier",
        list=views.NotifierListView,
        add=views.NotifierCreateView,
        edit=views.NotifierEditView,
        delete=views.NotifierDeleteView,
    ),
]
