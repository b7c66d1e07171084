"""Console URLs of providers and model deployments (the management API is in api/urls.py)."""

from apps.providers import views
from atp_site.console.routes import object_urls

app_name = "providers"

urlpatterns = [
    *object_urls(
        "providers",
        "provider",
        list=views.ProviderListView,
        add=views.ProviderCreateView,
        detail=views.ProviderDetailView,
        edit=views.ProviderEditView,
        toggle=views.ProviderToggleView,
        delete=views.ProviderDeleteView,
        test=views.ProviderTestView,
    ),
    *object_urls(
        "models",
        "deployment",
        list=views.DeploymentListView,
        add=views.DeploymentCreateView,
        detail=views.DeploymentDetailView,
        edit=views.DeploymentEditView,
        prices=views.DeploymentPricesView,
        toggle=views.DeploymentToggleView,
        delete=views.DeploymentDeleteView,
        reset_circuit=views.DeploymentCircuitResetView,
    ),
]
