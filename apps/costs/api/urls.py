"""Management API routes of apps.costs, mounted under /api/v1/."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from apps.costs.api import prices, usage

app_name = "costs-api"

router = SimpleRouter()

urlpatterns = router.urls + usage.urlpatterns + prices.urlpatterns
