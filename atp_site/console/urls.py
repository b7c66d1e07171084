"""The console's own pages: the overview at `/`. Each app mounts its pages in its namespace."""

from django.urls import path

from atp_site.console import views

app_name = "console"

urlpatterns = [
    path("", views.OverviewView.as_view(), name="overview"),
    path("overview/figures/", views.OverviewFiguresView.as_view(), name="overview-figures"),
]
