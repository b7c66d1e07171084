"""Console URLs of policies: list, detail, editor, deletion, and the editor's validation,
simulation and impact preview. The management API is in api/urls.py."""

from __future__ import annotations

from django.urls import path

from apps.policies import views
from atp_site.console.routes import object_urls

app_name = "policies"

urlpatterns = [
    path("policies/validate/", views.PolicyValidateView.as_view(), name="policy-validate"),
    path("policies/simulate/", views.PolicySimulateView.as_view(), name="policy-simulate"),
    path("policies/impact/", views.PolicyImpactView.as_view(), name="policy-impact"),
    *object_urls(
        "policies",
        "policy",
        converter="int",
        list=views.PolicyListView,
        add=views.PolicyCreateView,
        detail=views.PolicyDetailView,
        edit=views.PolicyEditView,
        delete=views.PolicyDeleteView,
    ),
]
