"""Management API routes of apps.providers."""

urlpatterns: list = []
