"""Management API of routes: CRUD through apps.routing.route_services."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from apps.routing import route_services
from apps.routing.api.serializers import RouteSerializer
from apps.routing.models import Route
from apps.tenants.api.views import ServiceModelViewSet


class RouteViewSet(ServiceModelViewSet):
    """Routes a request's `model` may name (`atp/fast`, an admin's route group, ...).

    A route named like a built-in (`auto`, `atp/fast`, `atp/balanced`, `atp/high`)
    overrides it. Writes are validated, audited and reach the data plane on commit.
    """

    serializer_class = RouteSerializer
    permission_model = Route
    filterset_fields = ["name", "enabled", "strategy", "tier"]
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "updated_at"]

    def base_queryset(self) -> QuerySet[Route]:
        return Route.objects.all()

    def create_object(self, data: dict[str, Any]) -> Route:
        return route_services.route_create(**data)

    def update_object(self, instance: Route, data: dict[str, Any]) -> Route:
        return route_services.route_update(route=instance, **data)

    def delete_object(self, instance: Route) -> None:
        route_services.route_delete(route=instance)
