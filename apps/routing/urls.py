"""Console URLs of routes and the request log (the management API is in api/urls.py)."""

from django.urls import path

from apps.routing import views

app_name = "routing"

urlpatterns = [
    path("routes/", views.RouteListView.as_view(), name="route-list"),
    path("routes/add/", views.RouteCreateView.as_view(), name="route-add"),
    path("routes/try/", views.RouteTryView.as_view(), name="route-try"),
    path(
        "routes/builtin/<path:name>/",
        views.BuiltinRouteDetailView.as_view(),
        name="route-builtin",
    ),
    path("routes/<uuid:pk>/", views.RouteDetailView.as_view(), name="route-detail"),
    path("routes/<uuid:pk>/edit/", views.RouteEditView.as_view(), name="route-edit"),
    path("routes/<uuid:pk>/delete/", views.RouteDeleteView.as_view(), name="route-delete"),
    path("routes/<uuid:pk>/toggle/", views.RouteToggleView.as_view(), name="route-toggle"),
    path("requests/", views.RequestLogListView.as_view(), name="requestlog-list"),
    path("requests/<int:pk>/", views.RequestLogDetailView.as_view(), name="requestlog-detail"),
    path("requests/<int:pk>/body/", views.RequestLogBodyView.as_view(), name="requestlog-body"),
]
