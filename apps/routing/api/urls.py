"""Management API routes of apps.routing, mounted under /api/v1/."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from apps.routing.api.views import RouteViewSet

app_name = "routing-api"

router = SimpleRouter()
router.register("routes", RouteViewSet, basename="route")

urlpatterns = router.urls
