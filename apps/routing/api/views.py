"""Management API of routes: CRUD through apps.routing.route_services."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.routing import route_services, selectors
from apps.routing.api.serializers import RouteSerializer, RouteSimulateInputSerializer
from apps.routing.models import Route
from apps.tenants import permissions
from apps.tenants.api.views import ServiceModelViewSet
from apps.tenants.models import ApiKey
from atp_site.lib.api_input import JSONParser
from atp_site.lib.errors import ATPError


class RouteViewSet(ServiceModelViewSet):
    """Routes a request's `model` may name (`atp/fast`, an admin's route group, ...).

    A route named like a built-in (`auto`, `atp/fast`, `atp/balanced`, `atp/high`)
    overrides it. Writes are validated, audited and reach the data plane on commit.
    """

    serializer_class = RouteSerializer
    permission_model = Route
    permission_action: str | None = None  # set per @action (simulate)
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

    @extend_schema(
        request=RouteSimulateInputSerializer,
        responses={200: OpenApiResponse(description="route, decision, recommendations")},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="simulate",
        url_name="simulate",
        permission_action="view",
        parser_classes=[JSONParser],
    )
    def simulate(self, request: Request) -> Response:
        """The ranking `POST /v1/route` would give a prompt on a route, with nothing sent
        upstream: the same hint parsing and engine decision as the console's "Try it".
        A refusal the endpoint would give (a disabled route, a bad hint, no candidate) is a
        400 naming the field at fault."""
        serializer = RouteSimulateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key_id = ""
        if data.get("key"):
            # A key the caller may not see reads as one that does not exist.
            visible = permissions.restrict(
                ApiKey.objects.filter(revoked_at__isnull=True), request.user, "view"
            )
            if not visible.filter(pk=data["key"]).exists():
                raise ValidationError({"key": [f"No API key '{data['key']}'."]})
            key_id = str(data["key"])
        try:
            result = selectors.route_try(
                route_name=data["route"],
                prompt=data["prompt"],
                hints=data.get("hints") or {},
                key_id=key_id,
                max_tokens=data.get("max_tokens"),
            )
        except ATPError as err:
            raise ValidationError({_simulate_field(err.param or ""): [err.message]}) from None
        return Response(result)


def _simulate_field(param: str) -> str:
    """The input field an error of /v1/route's parsing is about."""
    if param == "model":
        return "route"
    if param.startswith("atp"):
        return "hints"
    if param == "max_tokens":
        return "max_tokens"
    return "non_field_errors"
