"""Management API views for tenants, API keys and personal admin tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Model, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from apps.tenants import permissions, roles, selectors, services
from apps.tenants.api.permissions import ScopedQuerysetMixin
from apps.tenants.api.serializers import (
    AdminTokenCreatedSerializer,
    AdminTokenSerializer,
    ApiKeyCreatedSerializer,
    ApiKeyRotateInputSerializer,
    ApiKeySerializer,
    ApiKeyUpdateSerializer,
    ProjectSerializer,
    ProjectUpdateSerializer,
    TenantMembersInputSerializer,
    TenantMembersSerializer,
    TenantSerializer,
    UserMembershipsInputSerializer,
    UserRolesInputSerializer,
    UserSerializer,
)
from apps.tenants.models import AdminToken, ApiKey, Project, Tenant
from atp_site.lib.api_input import JSONParser
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
    permission_action: str | None = None  # set per @action (members)
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

    @extend_schema(methods=["GET"], responses={200: TenantMembersSerializer})
    @extend_schema(
        methods=["PUT"],
        request=TenantMembersInputSerializer,
        responses={200: TenantMembersSerializer},
    )
    @action(
        detail=True,
        methods=["get", "put"],
        url_path="members",
        url_name="members",
        permission_action="manage_members",
        # A list of objects: JSON only (a form would spell each item as loose fields).
        parser_classes=[JSONParser],
    )
    def members(self, request: Request, pk: str | None = None) -> Response:
        """The tenant's members and their tenant roles; a PUT replaces them all.

        Needs `tenants.manage_tenant_members` on the tenant (a tenant-admin has it on theirs).
        """
        tenant = self.get_object()
        if request.method == "PUT":
            serializer = TenantMembersInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            wanted = _resolve_members(serializer.validated_data["members"])
            with service_errors(), transaction.atomic():
                for user, _ in roles.tenant_members(tenant):
                    if user.pk not in wanted:
                        roles.tenant_role_set(
                            user=user, tenant=tenant, role=None, actor=request.user, source="api"
                        )
                for user, role in wanted.values():
                    roles.tenant_role_set(
                        user=user, tenant=tenant, role=role, actor=request.user, source="api"
                    )
        members = [{"user": user, "role": role} for user, role in roles.tenant_members(tenant)]
        return Response(TenantMembersSerializer({"members": members}).data)


def _user_named(value: str) -> Any:
    users = get_user_model()._default_manager
    found = users.filter(username=value).first()
    if found is None and value.isdigit() and len(value) < 19:
        found = users.filter(pk=int(value)).first()
    return found


def _resolve_members(rows: list[dict[str, str]]) -> dict[Any, tuple[Any, str]]:
    """user pk -> (user, role) for a members list; unknown or repeated users are a 400."""
    wanted: dict[Any, tuple[Any, str]] = {}
    for row in rows:
        user = _user_named(row["user"])
        if user is None:
            raise ValidationError({"members": [f"No user '{row['user']}'."]})
        if user.pk in wanted:
            raise ValidationError({"members": [f"User '{row['user']}' is listed twice."]})
        wanted[user.pk] = (user, row["role"])
    return wanted


def _visible_tenants(request: Request | None) -> QuerySet[Tenant]:
    # A tenant the caller may not see is refused like one that does not exist.
    return permissions.allowed_tenants(getattr(request, "user", None), Tenant, "view")


def _visible_projects(request: Request | None) -> QuerySet[Project]:
    return permissions.restrict(selectors.project_list(), getattr(request, "user", None), "view")


def _narrow_tenant_choices(view: Any, serializer: BaseSerializer) -> None:
    """On create, the `tenant` choices are the tenants the caller may see or add to: a tenant
    the caller may not see reads as one that does not exist."""
    if view.action == "create":
        user = view.request.user
        serializer.fields["tenant"].queryset = permissions.allowed_tenants(
            user, Tenant, "view"
        ) | permissions.allowed_tenants(user, view.permission_model, "add")


class ProjectFilterSet(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(queryset=_visible_tenants)

    class Meta:
        model = Project
        fields = ["tenant", "slug"]


class ProjectViewSet(ServiceModelViewSet):
    """Projects: teams or applications inside a tenant; a key may belong to one. Deleting a
    project leaves its keys working, directly under the tenant."""

    serializer_class = ProjectSerializer
    update_serializer_class = ProjectUpdateSerializer
    permission_model = Project
    filterset_class = ProjectFilterSet
    search_fields = ["slug", "name", "tenant__slug"]
    ordering_fields = ["slug", "name", "created_at"]

    def base_queryset(self) -> QuerySet[Project]:
        return selectors.project_list()

    def get_serializer(self, *args: Any, **kwargs: Any) -> BaseSerializer:
        serializer = super().get_serializer(*args, **kwargs)
        _narrow_tenant_choices(self, serializer)
        return serializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = serializer.validated_data["tenant"]
        if not permissions.may_for_tenant(request.user, Project, "add", tenant.pk):
            raise PermissionDenied(f"You may not add projects to tenant '{tenant.slug}'.")
        with service_errors():
            project = services.project_create(**serializer.validated_data)
        shown = selectors.project_list().get(pk=project.pk)
        return Response(
            ProjectSerializer(shown, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    def update_object(self, instance: Project, data: dict[str, Any]) -> Project:
        services.project_update(project=instance, **data)
        return selectors.project_list().get(pk=instance.pk)

    def delete_object(self, instance: Project) -> None:
        services.project_delete(project=instance)


class ApiKeyFilterSet(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(queryset=_visible_tenants)
    project = django_filters.ModelChoiceFilter(queryset=_visible_projects)
    revoked = django_filters.BooleanFilter(
        field_name="revoked_at", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = ApiKey
        fields = ["tenant", "project", "name", "revoked"]


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
        _narrow_tenant_choices(self, serializer)
        if "project" in getattr(serializer, "fields", {}):
            # Another tenant's project reads as one that does not exist.
            serializer.fields["project"].queryset = _visible_projects(self.request)
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

    @extend_schema(request=ApiKeyRotateInputSerializer, responses={201: ApiKeyCreatedSerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str | None = None) -> Response:
        """Revoke the key and make its replacement (same name and settings), whose plaintext
        this response alone shows. The old key keeps working for `grace_seconds`."""
        api_key = self.get_object()
        serializer = ApiKeyRotateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            api_key, plaintext = services.api_key_rotate(
                api_key=api_key,
                created_by=request.user,
                grace_seconds=serializer.validated_data.get("grace_seconds"),
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


class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Users with their global roles and tenant roles (those on tenants the caller may see).

    Reading needs `auth.view_user`; setting roles `tenants.assign_roles` as well (and only
    roles the caller could assign, apps.tenants.roles.role_assignable); setting tenant roles
    `tenants.manage_tenant_members` on each tenant whose role changes.
    """

    serializer_class = UserSerializer
    permission_model = get_user_model()
    permission_action: str | None = None  # set per @action (roles, memberships)
    http_method_names = ["get", "put", "head", "options"]
    filterset_fields = ["is_active", "is_staff", "is_superuser"]
    search_fields = ["username", "email", "first_name", "last_name"]
    ordering_fields = ["username", "date_joined", "last_login"]

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return get_user_model()._default_manager.none()
        return roles.user_list(self.request.user)

    def _represent(self, users: list[Any]) -> list[dict[str, Any]]:
        visible = permissions.tenant_ids(self.request.user, Tenant, "view")
        memberships = roles.memberships_of(users)
        for user in users:
            user.roles = sorted(g.name for g in user.groups.all() if g.name in roles.GLOBAL_ROLES)
            user.memberships = [
                {"tenant": tenant, "role": role}
                for tenant, role in memberships.get(user.pk, {}).items()
                if visible is None or tenant.pk in visible
            ]
        return UserSerializer(users, many=True).data

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        if page is not None:
            return self.get_paginated_response(self._represent(page))
        return Response(self._represent(list(queryset)))

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(self._represent([self.get_object()])[0])

    def _fresh(self, user: Any) -> Response:
        user = self.get_queryset().get(pk=user.pk)
        return Response(self._represent([user])[0])

    @extend_schema(request=UserRolesInputSerializer, responses={200: UserSerializer})
    @action(
        detail=True,
        methods=["put"],
        url_path="roles",
        url_name="roles",
        permission_action="assign_roles",
    )
    def set_roles(self, request: Request, pk: str | None = None) -> Response:
        """Replace the user's global roles."""
        user = self.get_object()
        serializer = UserRolesInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            roles.user_roles_set(
                user=user,
                roles=serializer.validated_data["roles"],
                actor=request.user,
                source="api",
            )
        return self._fresh(user)

    @extend_schema(request=UserMembershipsInputSerializer, responses={200: UserSerializer})
    @action(
        detail=True,
        methods=["put"],
        url_path="memberships",
        url_name="memberships",
        permission_action="view",
        parser_classes=[JSONParser],
    )
    def set_memberships(self, request: Request, pk: str | None = None) -> Response:
        """Replace the user's tenant roles on the tenants the caller manages."""
        caller = request.user
        if not permissions.may(caller, Tenant, "manage_members"):
            raise PermissionDenied("You may not manage tenant members.")
        user = self.get_object()
        serializer = UserMembershipsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        given: dict[Tenant, str] = {}
        for row in serializer.validated_data["memberships"]:
            tenant = selectors.tenant_resolve(row["tenant"])
            if tenant is None or not (
                permissions.may_on(caller, tenant, "view")
                or permissions.may_on(caller, tenant, "manage_members")
            ):
                raise ValidationError({"memberships": [f"No tenant '{row['tenant']}'."]})
            if tenant in given:
                raise ValidationError(
                    {"memberships": [f"Tenant '{row['tenant']}' is listed twice."]}
                )
            given[tenant] = row["role"]
        # Roles on tenants the caller does not manage are not theirs to change: kept as they are.
        kept = {
            tenant: role
            for tenant, role in roles.user_memberships(user).items()
            if not permissions.may_on(caller, tenant, "manage_members")
        }
        with service_errors():
            roles.tenant_memberships_set(
                user=user, memberships={**kept, **given}, actor=caller, source="api"
            )
        return self._fresh(user)
