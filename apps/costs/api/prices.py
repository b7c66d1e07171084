"""Price history and the price catalog under /api/v1/.

    GET  /api/v1/price-versions/?deployment=<id>   a deployment's price history (or all)
    POST /api/v1/price-versions/                   record prices now, or schedule them
    POST /api/v1/price-catalog/refresh             run the catalog refresh, get its report

Prices are not a tenant's: reading them needs `providers.view_modeldeployment` or
`costs.view_priceversion`; writing them the deployment's change permission or
`providers.change_deployment_prices` (apps.providers.services.may_change_prices), as for
POST /api/v1/deployments/{id}/prices/. The rules are in docs/pricing-catalog.md.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import path, re_path
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.costs import catalog
from apps.costs.models import PriceVersion
from apps.providers.models import ModelDeployment
from apps.providers.services import CHANGE_DEPLOYMENT_PRICES, may_change_prices
from apps.tenants import permissions
from apps.tenants.api.views import service_errors

PRICE = {"max_digits": 12, "decimal_places": 6, "min_value": 0}


def may_view_prices(user: Any) -> bool:
    return permissions.may(user, ModelDeployment, "view") or permissions.may(
        user, PriceVersion, "view"
    )


def may_set_some_prices(user: Any) -> bool:
    """Whether `user` may change the prices of any deployment (may_change_prices, without
    the deployment: its global permissions)."""
    return permissions.may(user, ModelDeployment, "change") or bool(
        user.is_active and user.has_perm(CHANGE_DEPLOYMENT_PRICES)
    )


class PricePermission(BasePermission):
    """Reading prices, or changing some; the deployment itself is checked in the view."""

    message = "You do not have permission to perform this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return may_view_prices(user)
        return may_set_some_prices(user)


class PriceVersionSerializer(serializers.ModelSerializer):
    provider = serializers.CharField(source="deployment.provider.name", read_only=True)
    model = serializers.CharField(source="deployment.public_name", read_only=True)
    scheduled = serializers.SerializerMethodField(
        help_text="True while the version has not started yet."
    )

    class Meta:
        model = PriceVersion
        fields = [
            "id",
            "deployment",
            "provider",
            "model",
            "effective_from",
            "input_price",
            "output_price",
            "cached_input_price",
            "cache_write_price",
            "reasoning_price",
            "source",
            "note",
            "created_at",
            "scheduled",
        ]
        read_only_fields = fields

    def get_scheduled(self, version: PriceVersion) -> bool:
        return version.effective_from > timezone.now()


class PriceVersionInputSerializer(serializers.Serializer):
    deployment = serializers.UUIDField(help_text="The model deployment's id.")
    effective_from = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="When the prices start; left out, now. A future time schedules them.",
    )
    input_price = serializers.DecimalField(**PRICE, help_text="USD per million tokens.")
    output_price = serializers.DecimalField(**PRICE, help_text="USD per million tokens.")
    cached_input_price = serializers.DecimalField(**PRICE, required=False, allow_null=True)
    cache_write_price = serializers.DecimalField(**PRICE, required=False, allow_null=True)
    reasoning_price = serializers.DecimalField(**PRICE, required=False, allow_null=True)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class PriceVersionFilter(serializers.Serializer):
    deployment = serializers.UUIDField(required=False, help_text="Only this deployment's.")


class PriceVersionListView(generics.ListCreateAPIView):
    """The price history: every price version, newest start first per deployment; and
    recording a deployment's prices now or scheduling them for later."""

    permission_classes = [PricePermission]
    serializer_class = PriceVersionSerializer
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[PriceVersion]:
        params = PriceVersionFilter(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return catalog.price_version_list(deployment=params.validated_data.get("deployment"))

    @extend_schema(parameters=[PriceVersionFilter])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=PriceVersionInputSerializer, responses={201: PriceVersionSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Record a deployment's prices from `effective_from` (now when left out; a future
        time schedules them; the past is refused: requests served keep their cost). Prices
        left out or null are billed at the plain input or output rate."""
        data = PriceVersionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        deployment = ModelDeployment.objects.filter(pk=values.pop("deployment")).first()
        if deployment is None:
            raise ValidationError({"deployment": ["No such deployment."]})
        if not may_change_prices(request.user, deployment):
            raise PermissionDenied("You may not change this deployment's prices.")
        effective_from = values.pop("effective_from", None)
        note = values.pop("note", "")
        with service_errors():
            version = catalog.price_version_schedule(
                deployment=deployment, prices=values, effective_from=effective_from, note=note
            )
        version = catalog.price_version_list().get(pk=version.pk)
        return Response(PriceVersionSerializer(version).data, status=status.HTTP_201_CREATED)


_ITEMS = serializers.ListField(child=serializers.DictField())


class PriceCatalogRefreshView(APIView):
    """Run the price catalog refresh now (what the daily job does) and return its report."""

    permission_classes = [PricePermission]

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "PriceCatalogRefreshReport",
                {
                    "source": serializers.CharField(),
                    "as_of": serializers.DateField(),
                    "matched": serializers.IntegerField(),
                    "changed": _ITEMS,
                    "flagged": _ITEMS,
                    "kept": _ITEMS,
                    "promoted": _ITEMS,
                    "stale": _ITEMS,
                },
            ),
            502: OpenApiResponse(
                description="The price catalog could not be read or is invalid; nothing changed."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        """Changed prices, changes flagged for an admin, prices kept, versions put in force
        and stale prices (docs/pricing-catalog.md). A catalog that cannot be read is a 502
        and changes nothing."""
        return Response(catalog.price_catalog_refresh().as_dict())


urlpatterns: list = [
    path("price-versions/", PriceVersionListView.as_view(), name="price-version-list"),
    re_path(
        r"^price-catalog/refresh/?$",
        PriceCatalogRefreshView.as_view(),
        name="price-catalog-refresh",
    ),
]
