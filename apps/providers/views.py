"""Console pages of providers and model deployments."""

from __future__ import annotations

from apps.providers import selectors
from apps.providers.filters import ProviderFilterSet
from apps.providers.models import Provider
from apps.providers.tables import ProviderTable
from atp_site.console.views import ObjectDetailView, ObjectListView


class ProviderListView(ObjectListView):
    model = Provider
    title = "Providers"
    table_class = ProviderTable
    filterset_class = ProviderFilterSet
    search_fields = ("name", "base_url", "region")
    search_placeholder = "Search providers"
    add_action = ("providers:provider-add", "Add provider", ("providers.provider", "add"))

    def get_queryset(self):
        return selectors.provider_list_with_health()


class ProviderDetailView(ObjectDetailView):
    model = Provider
    template_name = "providers/provider_detail.html"

    def get_queryset(self):
        return selectors.provider_list_with_health()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = self.object.name
        context["deployments"] = selectors.deployment_list(provider=self.object)
        return context
