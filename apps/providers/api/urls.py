"""Management API routes of apps.providers, mounted under /api/v1/."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from apps.providers.api.views import DeploymentViewSet, ProviderViewSet

app_name = "providers-api"

router = SimpleRouter()
router.register("providers", ProviderViewSet, basename="provider")
router.register("deployments", DeploymentViewSet, basename="deployment")

urlpatterns = router.urls
