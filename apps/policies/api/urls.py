"""Management API routes of apps.policies, mounted under /api/v1/."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from apps.policies.api.views import PolicyViewSet

app_name = "policies-api"

# With or without a trailing slash: /api/v1/policies/simulate and .../simulate/ alike.
router = SimpleRouter()
router.trailing_slash = "/?"
router.register("policies", PolicyViewSet, basename="policy")

urlpatterns = router.urls
