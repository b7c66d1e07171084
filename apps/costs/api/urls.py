"""Management API routes of apps.costs, mounted under /api/v1/."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from apps.costs.api import prices, usage
from apps.costs.api.views import (
    BudgetAlertViewSet,
    BudgetViewSet,
    NotifierViewSet,
    RateLimitViewSet,
)

app_name = "costs-api"

router = SimpleRouter()
router.register("rate-limits", RateLimitViewSet, basename="rate-limit")
router.register("budgets", BudgetViewSet, basename="budget")
router.register("budget-alerts", BudgetAlertViewSet, basename="budget-alert")
router.register("notifiers", NotifierViewSet, basename="notifier")

urlpatterns = router.urls + usage.urlpatterns + prices.urlpatterns
