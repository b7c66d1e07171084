"""Console URLs of providers and model deployments (the management API is in api/urls.py)."""

from django.urls import path

from apps.providers import views

app_name = "providers"

urlpatterns = [
    path("providers/", views.ProviderListView.as_view(), name="provider-list"),
    path("providers/<uuid:pk>/", views.ProviderDetailView.as_view(), name="provider-detail"),
]
