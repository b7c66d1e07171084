"""Console URLs of routes and the request log (the management API is in api/urls.py)."""

from django.urls import path

from apps.routing import views
from atp_site.console.routes import object_urls

app_name = "routing"

urlpatterns = [
    path("routes/try/", views.RouteTryView.as_view(), name="route-try"),
    path(
        "routes/builtin/<path:name>/",
        views.BuiltinRouteDetailView.as_view(),
        name="route-builtin",
    ),
    *object_urls(
        "routes",
        "route",
        list=views.RouteListView,
        add=views.RouteCreateView,
        detail=views.RouteDetailView,
        edit=views.RouteEditView,
        delete=views.RouteDeleteView,
        toggle=views.RouteToggleView,
    ),
    *object_urls(
        "requests",
        "requestlog",
        converter="int",
        list=views.RequestLogListView,
        detail=views.RequestLogDetailView,
        body=views.RequestLogBodyView,
    ),
]
