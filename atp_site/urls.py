"""URLs of the console, Django admin and management API (the /v1 data plane is in asgi.py)."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from atp_site import views
from atp_site.metrics import metrics_view

urlpatterns = [
    # The console: one include per app, each app's pages in its own namespace.
    path("", include("atp_site.console.urls")),
    path("", include("apps.providers.urls")),
    path("", include("apps.audit.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("apps.tenants.api.urls")),
    path("api/v1/", include("apps.providers.api.urls")),
    path("api/v1/", include("apps.audit.api.urls")),
    path("api/v1/", include("apps.routing.api.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api-auth/", include("rest_framework.urls")),
]

# JSON, not an HTML page, for an /api/ path no route matches.
handler404 = "atp_site.lib.drf.not_found"
handler403 = "atp_site.console.views.forbidden_page"
