"""Management API views for policies: CRUD, validation, simulation and impact preview.

    /api/v1/policies                 list (filter by tenant, global, enabled, mode), create
    /api/v1/policies/{id}            retrieve, update, partial update, delete
    /api/v1/policies/validate        POST a draft: {"valid", "problems"} (200 even if invalid)
    /api/v1/policies/simulate        POST a sample request: the decision, matched rules, why
    /api/v1/policies/impact          POST a draft: logged requests whose outcome it changes

Global `policies.*` permissions (the security-admin role) cover every policy; a tenant's
admins (tenants.change_tenant on it) manage that tenant's policies, and its members see
them. Policies of no tenant are seen and changed by global holders only. A tenant the
caller may not see reads as one that does not exist.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from apps.policies import selectors, services, simulate
from apps.policies.api.serializers import (
    ImpactInputSerializer,
    PolicySerializer,
    PolicyUpdateSerializer,
    SimulateInputSerializer,
    ValidateInputSerializer,
    ValidateOutputSerializer,
)
from apps.policies.models import Policy
from apps.policies.validation import has_errors, validate_policy
from apps.tenants import permissions
from apps.tenants.api.permissions import tenant_for_action
from apps.tenants.api.views import ServiceModelViewSet, service_errors
from apps.tenants.models import Tenant
from atp_site.lib.api_input import JSONParser


def _visible_tenants(request: Request | None) -> QuerySet[Tenant]:
    return permissions.allowed_tenants(getattr(request, "user", None), Tenant, "view")


class PolicyFilterSet(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(queryset=_visible_tenants)
    is_global = django_filters.BooleanFilter(
        field_name="tenant", lookup_expr="isnull", label="Global policies only (true) or none"
    )

    class Meta:
        model = Policy
        fields = ["tenant", "is_global", "enabled", "mode", "name"]


def _tenant(request: Request, value: str, action: str) -> Tenant | None:
    """The tenant a request names (None when it names none), if the caller may `action`
    its policies; for none, the caller needs the global permission."""
    user = request.user
    if value:
        return tenant_for_action(user, Policy, action, value)
    if not permissions.may_for_tenant(user, Policy, action, None):
        raise PermissionDenied("Name a tenant: only a global permission covers every tenant.")
    return None


class PolicyViewSet(ServiceModelViewSet):
    """ABAC policies (docs/policies.md). Writes go through apps.policies.services: checked,
    audited (`policy.*`) and compiled into the gateway's next configuration snapshot."""

    serializer_class = PolicySerializer
    update_serializer_class = PolicyUpdateSerializer
    permission_model = Policy
    permission_action: str | None = None  # set per @action
    filterset_class = PolicyFilterSet
    search_fields = ["name", "description", "tenant__slug"]
    ordering_fields = ["name", "priority", "created_at", "updated_at"]
    parser_classes = [JSONParser]

    def base_queryset(self) -> QuerySet[Policy]:
        return selectors.policy_list()

    def get_serializer(self, *args: Any, **kwargs: Any) -> BaseSerializer:
        serializer = super().get_serializer(*args, **kwargs)
        if self.action == "create":
            user = self.request.user
            serializer.fields["tenant"].queryset = permissions.allowed_tenants(
                user, Policy, "view"
            ) | permissions.allowed_tenants(user, Policy, "add")
        return serializer

    def create_object(self, data: dict[str, Any]) -> Policy:
        tenant = data.get("tenant")
        if not permissions.may_for_tenant(
            self.request.user, Policy, "add", tenant.pk if tenant else None
        ):
            if tenant is None:
                raise PermissionDenied("Only a global permission covers policies of every tenant.")
            raise PermissionDenied(f"You may not do this for tenant '{tenant.slug}'.")
        return services.policy_create(**data)

    def update_object(self, instance: Policy, data: dict[str, Any]) -> Policy:
        return services.policy_update(policy=instance, **data)

    def delete_object(self, instance: Policy) -> None:
        services.policy_delete(policy=instance)

    @extend_schema(request=ValidateInputSerializer, responses={200: ValidateOutputSerializer})
    @action(detail=False, methods=["post"], url_path="validate", permission_action="view")
    def validate(self, request: Request) -> Response:
        """Check a draft as a save would, and report unreachable rules against the
        policies it would join. 200 with `valid: false` when it has errors."""
        serializer = ValidateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        tenant = _tenant(request, data.pop("tenant", ""), "view")
        problems = validate_policy(data, tenant_id=str(tenant.pk) if tenant else None)
        return Response({"valid": not has_errors(problems), "problems": problems})

    @extend_schema(
        request=SimulateInputSerializer,
        responses={200: OpenApiResponse(description="decision, matched, logged, deployments")},
    )
    @action(detail=False, methods=["post"], url_path="simulate", permission_action="view")
    def simulate(self, request: Request) -> Response:
        """The decision the policies (with any drafts in place of the stored ones of the same
        name) give a sample request: matched rules and why, what log-only policies would
        have done, and which deployments they keep it from."""
        serializer = SimulateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        sample = dict(data["request"])
        named = data.get("tenant") or sample.pop("tenant", "")
        sample.pop("tenant", None)
        tenant = _tenant(request, named, "view")
        drafts = data.get("policies") or []
        if drafts:
            tenant_id = tenant.pk if tenant else None
            if not permissions.may_for_tenant(request.user, Policy, "add", tenant_id):
                raise PermissionDenied("Trying drafts needs the permission to add policies.")
        with service_errors():
            try:
                result = simulate.simulate(request=sample, tenant=tenant, drafts=drafts)
            except DjangoValidationError as exc:
                raise _nested(exc, "request" if not drafts else "policies") from exc
        return Response(result)

    @extend_schema(
        request=ImpactInputSerializer,
        responses={200: OpenApiResponse(description="totals and the changed requests")},
    )
    @action(detail=False, methods=["post"], url_path="impact", permission_action="add")
    def impact(self, request: Request) -> Response:
        """Replay the latest `last` logged requests of the draft's scope against the
        enabled policies without and with the draft: totals before and after, and the
        requests whose outcome changes (request ids, before and after)."""
        serializer = ImpactInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        tenant = _tenant(request, data.get("tenant", ""), "add")
        with service_errors():
            try:
                result = simulate.impact(draft=data["policy"], tenant=tenant, last=data["last"])
            except DjangoValidationError as exc:
                raise _nested(exc, "policy") from exc
        return Response(result)


def _nested(exc: DjangoValidationError, field: str) -> DjangoValidationError:
    """A draft's or sample's errors, named under the request field that held them."""
    if not hasattr(exc, "error_dict"):
        return exc
    if field == "policy" and "last" in exc.error_dict:
        return exc
    messages = [
        f"{name}: {message}" for name, errors in exc.message_dict.items() for message in errors
    ]
    return DjangoValidationError({field: messages})
