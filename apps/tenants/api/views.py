"""Management API views for tenants, API keys and personal admin tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from apps.tenants import permissions, selectors, services
from apps.tenants.api.permissions import ScopedQuerysetMixin
from apps.tenants.api.serializers import (
    AdminTokenCreatedSerializer,
    AdminTokenSerializer,
    ApiKeyCreatedSerializer,
    ApiKeySerializer,
    ApiKeyUpdateSerializer,
    TenantSerializer,
)
from apps.tenants.models import AdminToken, ApiKey, Tenant
from atp_site.lib.drf import drf_validation_error


@contextmanager
def service_errors() -> Iterator[None]:
    """Turn a service's Django ValidationError into a DRF 400 that names the field (a 409
    when it only says a name is taken, see atp_site.lib.drf)."""
    try:
        yield
    except DjangoValidationError as exc:
        raise drf_validation_error(exc) from exc


class ServiceModelViewSet(ScopedQuerysetMixin, viewsets.ModelViewSet):
    """A ModelViewSet whose writes go through services once the serializer has validated.

    Subclasses set `permission_model` and implement `base_queryset` (the queryset is narrowed
    by the caller's permissions), `create_object`, `update_object` and `delete_object`.
    """

    update_serializer_class: type[BaseSerializer] | None = None

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action in ("update", "partial_update") and self.update_serializer_class:
            return self.update_serializer_class
        return super().get_serializer_class()

    def create_object(self, data: dict[str, Any]) -> Model:
        raise NotImplementedError

    def update_object(self, instance: Any, data: dict[str, Any]) -> Model:
        raise NotImplementedError

    def delete_object(self, instance: Any) -> None:
        raise NotImplementedError

    def perform_create(self, serializer: BaseSerializer) -> None:
        with service_errors():
            serializer.instance = self.create_object(serializer.validated_data)

    def perform_update(self, serializer: BaseSerializer) -> None:
        with service_errors():
            serializer.instance = self.update_object(serializer.instance, serializer.validated_data)

    def perform_destroy(self, instance: Model) -> None:
        with service_errors():
            self.delete_object(instance)


class TenantViewSet(ServiceModelViewSet):
    serializer_class = TenantSerializer
    permission_model = Tenant
    filterset_fields = ["is_active", "slug"]
    search_fields = ["slug", "name"]
    ordering_fields = ["slug", "name", "created_at"]

    def base_queryset(self) -> QuerySet[Tenant]:
        return selectors.tenant_list()

    def create_object(self, data: dict[str, Any]) -> Tenant:
        return services.tenant_create(**data)

    def update_object(self, instance: Tenant, data: dict[str, Any]) -> Tenant:
        return services.tenant_update(tenant=instance, **data)

    def delete_object(self, instance: Tenant) -> None:
        services.tenant_delete(tenant=instance)


def _visible_tenants(request: Request | None) -> QuerySet[Tenant]:
    # A tenant the caller may not see is refused like one that does not exist.
    return permissions.allowed_tenants(getattr(request, "user", None), Tenant, "view")


class ApiKeyFilterSet(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(queryset=_visible_tenants)
    revoked = django_filters.BooleanFilter(
        field_name="revoked_at", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = ApiKey
        fields = ["tenant", "name", "revoked"]


class ApiKeyViewSet(ServiceModelViewSet):
    """API keys. Keys are revoked, never deleted, so the request log can always name them."""

    serializer_class = ApiKeySerializer
    update_serializer_class = ApiKeyUpdateSerializer
    permission_model = ApiKey
    filterset_class = ApiKeyFilterSet
    search_fields = ["name", "prefix", "tenant__slug"]
    ordering_fields = ["name", "created_at", "expires_at", "revoked_at"]
    http_method_names = ["get", "post", "patch", "put", "head", "options"]

    def base_queryset(self) -> QuerySet[ApiKey]:
        return selectors.api_key_list()

    def get_serializer(self, *args: Any, **kwargs: Any) -> BaseSerializer:
        serializer = super().get_serializer(*args, **kwargs)
        if self.action == "create":
            # A tenant the caller may not see reads as one that does not exist.
            user = self.request.user
            serializer.fields["tenant"].queryset = permissions.allowed_tenants(
                user, Tenant, "view"
            ) | permissions.allowed_tenants(user, ApiKey, "add")
        return serializer

    def _created(self, api_key: ApiKey, plaintext: str) -> Response:
        data = {**ApiKeySerializer(api_key, context=self.get_serializer_context()).data}
        data["key"] = plaintext
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={201: ApiKeyCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = serializer.validated_data["tenant"]
        if not permissions.may_for_tenant(request.user, ApiKey, "add", tenant.pk):
            raise PermissionDenied(f"You may not add keys to tenant '{tenant.slug}'.")
        with service_errors():
            api_key, plaintext = services.api_key_create(
                created_by=request.user, **serializer.validated_data
            )
        return self._created(api_key, plaintext)

    def update_object(self, instance: ApiKey, data: dict[str, Any]) -> ApiKey:
        return services.api_key_update(api_key=instance, **data)

    @extend_schema(request=None, responses={200: ApiKeySerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        api_key = services.api_key_revoke(api_key=self.get_object())
        return Response(self.get_serializer(api_key).data)

    @extend_schema(request=None, responses={201: ApiKeyCreatedSerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str | None = None) -> Response:
        with service_errors():
            api_key, plaintext = services.api_key_rotate(
                api_key=self.get_object(), created_by=request.user
            )
        return self._created(api_key, plaintext)


class AdminTokenViewSet(
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """The signed-in user's own admin tokens.

    A token made while authenticated by another admin token expires no later than it.
    """

    serializer_class = AdminTokenSerializer
    permission_model = AdminToken
    filterset_fields = ["name"]
    ordering_fields = ["name", "created_at", "last_used_at"]

    def base_queryset(self) -> QuerySet[AdminToken]:
        if getattr(self, "swagger_fake_view", False):
            # Schema generation runs without a user.
            return AdminToken.objects.none()
        return selectors.admin_token_list(user=self.request.user)

    @extend_schema(responses={201: AdminTokenCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        parent = request.auth if isinstance(request.auth, AdminToken) else None
        with service_errors():
            token, plaintext = services.admin_token_create(
                user=request.user, by=request.user, parent=parent, **serializer.validated_data
            )
        data = {**AdminTokenSerializer(token).data, "token": plaintext}
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: AdminTokenSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        token = services.admin_token_revoke(token=self.get_object())
        return Response(self.get_serializer(token).data)
