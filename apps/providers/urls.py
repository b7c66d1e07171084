"""Console URLs of providers and model deployments (the management API is in api/urls.py)."""

from django.urls import path

from apps.providers import views

app_name = "providers"

urlpatterns = [
    path("providers/", views.ProviderListView.as_view(), name="provider-list"),
    path("providers/add/", views.ProviderCreateView.as_view(), name="provider-add"),
    path("providers/<uuid:pk>/", views.ProviderDetailView.as_view(), name="provider-detail"),
    path("providers/<uuid:pk>/edit/", views.ProviderEditView.as_view(), name="provider-edit"),
    path("providers/<uuid:pk>/toggle/", views.ProviderToggleView.as_view(), name="provider-toggle"),
    path("providers/<uuid:pk>/delete/", views.ProviderDeleteView.as_view(), name="provider-delete"),
    path("providers/<uuid:pk>/test/", views.ProviderTestView.as_view(), name="provider-test"),
    path("models/", views.DeploymentListView.as_view(), name="deployment-list"),
    path("models/add/", views.DeploymentCreateView.as_view(), name="deployment-add"),
    path("models/<uuid:pk>/", views.DeploymentDetailView.as_view(), name="deployment-detail"),
    path("models/<uuid:pk>/edit/", views.DeploymentEditView.as_view(), name="deployment-edit"),
    path(
        "models/<uuid:pk>/prices/",
        views.DeploymentPricesView.as_view(),
        name="deployment-prices",
    ),
    path(
        "models/<uuid:pk>/toggle/",
        views.DeploymentToggleView.as_view(),
        name="deployment-toggle",
    ),
    path(
        "models/<uuid:pk>/delete/",
        views.DeploymentDeleteView.as_view(),
        name="deployment-delete",
    ),
    path(
        "models/<uuid:pk>/reset-circuit/",
        views.DeploymentCircuitResetView.as_view(),
        name="deployment-reset-circuit",
    ),
]
