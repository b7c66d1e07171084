"""Management API routes of apps.tenants."""

urlpatterns: list = []
