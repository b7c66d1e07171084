"""URLs of the console, Django admin and management API (the /v1 data plane is in asgi.py)."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from atp_site import views
from atp_site.auth import views as auth_views
from atp_site.metrics import metrics_view

# The Django admin is the raw-data and break-glass view; the console at / is the product.
admin.site.site_header = "ATP raw data"
admin.site.site_title = "ATP raw data"
admin.site.index_title = "Raw data (evidence is read-only here; day-to-day work is in the console)"
admin.site.site_url = "/"

urlpatterns = [
    # The console: one include per app, each app's pages in its own namespace.
    path("", include("atp_site.console.urls")),
    path("", include("apps.providers.urls")),
    path("", include("apps.tenants.urls")),
    path("", include("apps.routing.urls")),
    path("", include("apps.audit.urls")),
    path("", include("apps.costs.urls")),
    path("", include("apps.policies.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    # --- sign-in (atp_site/auth): the only sign-in pages; the admin's and the browsable
    # API's send the browser there, so every password sign-in is throttled and asks for
    # the second factor.
    path("", include("atp_site.auth.urls")),
    path("logout/", auth_views.logout_view, name="logout"),
    path("admin/login/", RedirectView.as_view(pattern_name="auth:login", query_string=True)),
    path("api-auth/login/", RedirectView.as_view(pattern_name="auth:login", query_string=True)),
    # --- end of sign-in
    path("admin/", admin.site.urls),
    path("api/v1/", include("apps.tenants.api.urls")),
    path("api/v1/", include("apps.providers.api.urls")),
    path("api/v1/", include("apps.audit.api.urls")),
    path("api/v1/", include("apps.routing.api.urls")),
    path("api/v1/", include("apps.costs.api.urls")),
    path("api/v1/", include("apps.policies.api.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api-auth/", include("rest_framework.urls")),
]

# JSON, not an HTML page, for an /api/ path no route matches.
handler404 = "atp_site.lib.drf.not_found"
handler403 = "atp_site.console.views.forbidden_page"
