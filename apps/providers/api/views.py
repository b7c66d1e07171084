"""Management API views for providers and model deployments."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.providers import selectors, services
from apps.providers.api.serializers import (
    DeploymentPricesSerializer,
    DeploymentSerializer,
    DeploymentUpdateSerializer,
    ProviderSerializer,
    ProviderTestResultSerializer,
)
from apps.providers.models import ModelDeployment, Provider
from apps.tenants.api.views import ServiceModelViewSet, service_errors


class ProviderViewSet(ServiceModelViewSet):
    """Providers. Changing a base URL or credentials also needs the dedicated permission
    `providers.change_provider_credentials` (checked by the services)."""

    serializer_class = ProviderSerializer
    permission_model = Provider
    permission_action: str | None = None  # set per @action (test)
    filterset_fields = ["kind", "enabled", "region", "name"]
    search_fields = ["name", "base_url"]
    ordering_fields = ["name", "kind", "created_at"]

    def base_queryset(self) -> QuerySet[Provider]:
        return selectors.provider_list()

    def create_object(self, data: dict[str, Any]) -> Provider:
        return services.provider_create(by=self.request.user, **data)

    def update_object(self, instance: Provider, data: dict[str, Any]) -> Provider:
        return services.provider_update(provider=instance, by=self.request.user, **data)

    def delete_object(self, instance: Provider) -> None:
        services.provider_delete(provider=instance)

    @extend_schema(request=None, responses={200: ProviderTestResultSerializer})
    @action(
        detail=True, methods=["post"], url_path="test", url_name="test", permission_action="change"
    )
    def connectivity_test(self, request: Request, pk: str | None = None) -> Response:
        """Call the provider's upstream now, as the health job does, and answer the result
        (also kept in its health history and audited). Needs the provider's change
        permission, as the console's "Test connection" does. A 400 when there is nothing to
        call yet (a protocol without a model listing and no model deployed)."""
        provider = self.get_object()
        check = services.provider_connectivity_test(provider=provider)
        if check is None:
            raise ValidationError(
                {"non_field_errors": ["Nothing to test yet: add a model to this provider first."]}
            )
        return Response(ProviderTestResultSerializer(check).data)


class DeploymentViewSet(ServiceModelViewSet):
    serializer_class = DeploymentSerializer
    permission_action: str | None = None  # set per @action (prices)
    update_serializer_class = DeploymentUpdateSerializer
    permission_model = ModelDeployment
    filterset_fields = ["provider", "public_name", "enabled", "region"]
    search_fields = ["public_name", "upstream_model", "provider__name"]
    ordering_fields = [
        "public_name",
        "input_price",
        "output_price",
        "quality_score",
        "weight",
        "created_at",
    ]

    def base_queryset(self) -> QuerySet[ModelDeployment]:
        return selectors.deployment_list()

    def create_object(self, data: dict[str, Any]) -> ModelDeployment:
        return services.deployment_create(**data)

    def update_object(self, instance: ModelDeployment, data: dict[str, Any]) -> ModelDeployment:
        return services.deployment_update(deployment=instance, **data)

    def delete_object(self, instance: ModelDeployment) -> None:
        services.deployment_delete(deployment=instance)

    @extend_schema(request=DeploymentPricesSerializer, responses={200: DeploymentSerializer})
    @action(detail=True, methods=["post"], url_path="prices", permission_action="view")
    def prices(self, request: Request, pk: str | None = None) -> Response:
        """Change a deployment's prices alone. Needs the deployment's change permission or
        `providers.change_deployment_prices` (the cost-admin role); a price left out keeps
        its value. Audited as an update, like any change."""
        deployment = self.get_object()
        if not services.may_change_prices(request.user, deployment):
            raise PermissionDenied("You may not change this deployment's prices.")
        serializer = DeploymentPricesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            deployment = services.deployment_set_prices(
                deployment=deployment, **serializer.validated_data
            )
        return Response(DeploymentSerializer(deployment, context={"request": request}).data)
