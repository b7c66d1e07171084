"""Management API routes of apps.tenants, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from apps.tenants.api.config import ConfigApplyView, ConfigExportView
from apps.tenants.api.views import (
    AdminTokenViewSet,
    ApiKeyViewSet,
    ProjectViewSet,
    TenantViewSet,
    UserViewSet,
)

app_name = "tenants-api"

# SimpleRouter, not DefaultRouter: several apps mount routers on the same prefix and
# DefaultRouter's root view would shadow the others.
router = SimpleRouter()
router.register("tenants", TenantViewSet, basename="tenant")
router.register("projects", ProjectViewSet, basename="project")
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("admin-tokens", AdminTokenViewSet, basename="admin-token")
router.register("users", UserViewSet, basename="user")

urlpatterns = [
    # With or without a trailing slash: POST /api/v1/config/apply cannot be redirected.
    re_path(r"^config/apply/?$", ConfigApplyView.as_view(), name="config-apply"),
    re_path(r"^config/export/?$", ConfigExportView.as_view(), name="config-export"),
    *router.urls,
]
