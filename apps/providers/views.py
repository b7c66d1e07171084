"""Console pages of providers and model deployments.

Every write goes through apps.providers.services (the same audited services the management
API calls, with the same permissions, including the dedicated
`providers.change_provider_credentials` for base URLs and credential sources)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import reverse
from django.utils.functional import cached_property

from apps.providers import selectors, services
from apps.providers.filters import DeploymentFilterSet, ProviderFilterSet
from apps.providers.forms import DeploymentForm, DeploymentPricesForm, ProviderForm
from apps.providers.models import ModelDeployment, Provider
from apps.providers.tables import DeploymentTable, ProviderTable
from apps.tenants import permissions
from apps.tenants.permissions import CHANGE_PROVIDER_CREDENTIALS
from atp_site.console.views import (
    ConsoleView,
    FormView,
    ObjectActionView,
    ObjectDetailView,
    ObjectFormView,
    ObjectListView,
    ObjectMixin,
    hx_redirect,
    is_htmx,
)

HEALTH_ROWS = 20


def _may_change_credentials(user: Any) -> bool:
    return bool(user.is_active and user.has_perm(CHANGE_PROVIDER_CREDENTIALS))


class ShownOnForm(Exception):
    """A refusal already put on the form as an error: re-render it."""


def _credential_error(form: Any, exc: PermissionDenied) -> None:
    """The services refuse a credential change without the dedicated permission: say so
    next to the fields it concerns."""
    message = str(exc) or "You may not change this provider's base URL or credentials."
    for field in ("base_url", "api_key_env", "api_key"):
        if field in form.fields and field in form.changed_data:
            form.add_error(field, message)
            return
    form.add_error(None, message)


class ModelPermissionFirst:
    """Providers and models belong to no tenant: a viewer without the model's view
    permission gets 403 (not the 404 of an object outside their tenants)."""

    model: Any

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and not permissions.may(request.user, self.model, "view"):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class CredentialErrorsOnForm:
    """Form views whose `perform` may put a refused credential change on the form."""

    def form_error(self, form: Any, exc: Exception) -> bool:
        if isinstance(exc, ShownOnForm):
            return True
        return super().form_error(form, exc)  # type: ignore[misc]


# --- providers ------------------------------------------------------------------------------


def _providers_for_list():
    models = (
        ModelDeployment.objects.filter(provider=OuterRef("pk"))
        .order_by()
        .values("provider")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return selectors.provider_list_with_health().annotate(
        deployment_count=Coalesce(Subquery(models, output_field=IntegerField()), 0)
    )


class ProviderListView(ObjectListView):
    model = Provider
    title = "Providers"
    table_class = ProviderTable
    filterset_class = ProviderFilterSet
    search_fields = ("name", "base_url", "region")
    search_placeholder = "Search providers"
    add_action = ("providers:provider-add", "Add provider", ("providers.provider", "add"))

    def get_queryset(self):
        return _providers_for_list()


class ProviderDetailView(ModelPermissionFirst, ObjectDetailView):
    model = Provider
    template_name = "providers/provider_detail.html"

    def get_queryset(self):
        return selectors.provider_list_with_health()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        provider = self.object
        user = self.request.user
        context["title"] = provider.name
        context["circuits"] = selectors.deployment_resilience_list(provider=provider)
        context["health_checks"] = (
            list(selectors.health_check_list(provider=provider)[:HEALTH_ROWS])
            if self.may("providers.healthcheck", "view")
            else None
        )
        context["can"] = {
            "change": permissions.may_on(user, provider, "change"),
            "delete": permissions.may_on(user, provider, "delete"),
            "add_model": self.may("providers.modeldeployment", "add"),
        }
        return context


class ProviderCreateView(CredentialErrorsOnForm, FormView):
    form_class = ProviderForm
    permission = ("providers.provider", "add")
    title = "Add a provider"
    submit_label = "Create provider"
    success_message = "Provider {obj.name} created."

    def get_form_kwargs(self):
        return {"may_change_credentials": _may_change_credentials(self.request.user)}

    def get_context_data(self, **kwargs):
        return super().get_context_data(cancel_url=reverse("providers:provider-list"), **kwargs)

    def perform(self, form):
        try:
            return services.provider_create(by=self.request.user, **form.service_arguments())
        except PermissionDenied as exc:
            _credential_error(form, exc)
            raise ShownOnForm from exc

    def success(self, result):
        return hx_redirect(self.request, reverse("providers:provider-detail", args=[result.pk]))


class ProviderEditView(CredentialErrorsOnForm, ModelPermissionFirst, ObjectFormView):
    form_class = ProviderForm
    model = Provider
    submit_label = "Save changes"
    success_message = "Provider {obj.name} saved."

    def get_form_kwargs(self):
        return {
            "instance": self.object,
            "may_change_credentials": _may_change_credentials(self.request.user),
        }

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = f"Edit {self.object.name}"
        context["cancel_url"] = reverse("providers:provider-detail", args=[self.object.pk])
        return context

    def perform(self, form):
        provider = Provider.objects.get(pk=self.object.pk)  # unannotated, fresh
        try:
            return services.provider_update(
                provider=provider, by=self.request.user, **form.service_arguments()
            )
        except PermissionDenied as exc:
            _credential_error(form, exc)
            raise ShownOnForm from exc

    def success(self, result):
        return hx_redirect(self.request, reverse("providers:provider-detail", args=[result.pk]))


class ProviderToggleView(ModelPermissionFirst, ObjectActionView):
    """Enable or disable a provider (confirmed): disabled, none of its models is called."""

    model = Provider
    object_action = "change"
    danger = False

    @property
    def verb(self) -> str:  # type: ignore[override]
        return "Disable" if self.object.enabled else "Enable"

    @property
    def question(self) -> str:  # type: ignore[override]
        if self.object.enabled:
            return f"Disable provider {self.object.name}?"
        return f"Enable provider {self.object.name}?"

    @property
    def consequence(self) -> str:  # type: ignore[override]
        if self.object.enabled:
            return "None of its models will be called until it is enabled again."
        return ""

    def perform(self, obj):
        enabled = not obj.enabled
        services.provider_update(provider=obj, by=self.request.user, enabled=enabled)
        state = "enabled" if enabled else "disabled"
        messages.success(self.request, f"Provider {obj.name} {state}.")

    def success(self, result):
        return hx_redirect(
            self.request, reverse("providers:provider-detail", args=[self.object.pk])
        )


class ProviderDeleteView(ModelPermissionFirst, ObjectActionView):
    model = Provider
    object_action = "delete"
    verb = "Delete"

    @property
    def question(self) -> str:  # type: ignore[override]
        return f"Delete provider {self.object.name}?"

    @property
    def consequence(self) -> str:  # type: ignore[override]
        names = list(self.object.deployments.values_list("public_name", flat=True)[:20])
        total = self.object.deployments.count()
        models_text = (
            f"its {total} model{'s' if total != 1 else ''} ({', '.join(names)}"
            f"{', …' if total > len(names) else ''})"
            if total
            else "no models"
        )
        return (
            f"This removes the provider, {models_text} and its health history. Routes that "
            "name those models stop finding them. The audit log keeps a record."
        )

    def perform(self, obj):
        name = obj.name
        services.provider_delete(provider=obj)
        messages.success(self.request, f"Provider {name} deleted.")

    def success(self, result):
        return hx_redirect(self.request, reverse("providers:provider-list"))


class ProviderTestView(ModelPermissionFirst, ObjectMixin, ConsoleView):
    """POST: call the upstream now; htmx gets the result in place, a plain form a redirect."""

    model = Provider
    object_action = "change"
    http_method_names = ["post"]

    def has_permission(self) -> bool:
        return True  # on the object

    def http_method_not_allowed(self, request, *args, **kwargs):
        return HttpResponseNotAllowed(["POST"])

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        provider = Provider.objects.get(pk=self.object.pk)
        check = services.provider_connectivity_test(provider=provider)
        context = self.get_context_data(object=provider, check=check)
        if self.may("providers.healthcheck", "view"):
            context["health_checks"] = list(
                selectors.health_check_list(provider=provider)[:HEALTH_ROWS]
            )
        if is_htmx(request):
            return self.render("providers/partials/connectivity.html", context)
        if check is None:
            messages.warning(request, "Nothing to test yet: add a model to this provider first.")
        elif check.status == "down":
            messages.error(request, f"Connection failed: {check.error}")
        else:
            messages.success(request, f"Connection {check.status} in {check.latency_ms} ms.")
        return hx_redirect(request, reverse("providers:provider-detail", args=[provider.pk]))


# --- model deployments ----------------------------------------------------------------------


class DeploymentListView(ObjectListView):
    model = ModelDeployment
    title = "Models"
    table_class = DeploymentTable
    filterset_class = DeploymentFilterSet
    search_fields = ("public_name", "upstream_model", "provider__name", "aliases")
    search_placeholder = "Search models"
    add_action = ("providers:deployment-add", "Add model", ("providers.modeldeployment", "add"))

    def get_queryset(self):
        return selectors.deployment_list()


class DeploymentDetailView(ModelPermissionFirst, ObjectDetailView):
    model = ModelDeployment
    template_name = "providers/deployment_detail.html"

    def get_queryset(self):
        return selectors.deployment_list()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        deployment = self.object
        user = self.request.user
        context["title"] = deployment.public_name
        circuit = selectors.deployment_circuit(deployment)
        context["circuit"] = circuit
        if circuit.get("open_until"):
            context["circuit_open_until"] = datetime.fromtimestamp(circuit["open_until"], tz=UTC)
        context["routes"] = (
            selectors.routes_using_deployment(deployment)
            if self.may("routing.route", "view")
            else None
        )
        context["can"] = {
            "change": permissions.may_on(user, deployment, "change"),
            "delete": permissions.may_on(user, deployment, "delete"),
            "prices": services.may_change_prices(user, deployment),
        }
        return context


class DeploymentCreateView(FormView):
    form_class = DeploymentForm
    permission = ("providers.modeldeployment", "add")
    title = "Add a model"
    submit_label = "Create model"
    success_message = "Model {obj.public_name} created."

    @cached_property
    def providers(self):
        return permissions.restrict(selectors.provider_list(), self.request.user, "view")

    def get_form_kwargs(self):
        chosen = None
        wanted = self.request.GET.get("provider", "")
        if wanted:
            try:
                chosen = self.providers.filter(pk=wanted).first()
            except ValidationError:
                chosen = None
        return {"providers": self.providers, "provider": chosen}

    def get_context_data(self, **kwargs):
        return super().get_context_data(cancel_url=reverse("providers:deployment-list"), **kwargs)

    def perform(self, form):
        return services.deployment_create(**form.service_arguments())

    def success(self, result):
        return hx_redirect(self.request, reverse("providers:deployment-detail", args=[result.pk]))


class DeploymentEditView(ModelPermissionFirst, ObjectFormView):
    form_class = DeploymentForm
    model = ModelDeployment
    submit_label = "Save changes"
    success_message = "Model {obj.public_name} saved."

    def get_queryset(self):
        return selectors.deployment_list()

    def get_form_kwargs(self):
        return {"instance": self.object}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = f"Edit {self.object.public_name}"
        context["cancel_url"] = reverse("providers:deployment-detail", args=[self.object.pk])
        return context

    def perform(self, form):
        deployment = ModelDeployment.objects.get(pk=self.object.pk)
        return services.deployment_update(deployment=deployment, **form.service_arguments())

    def success(self, result):
        return hx_redirect(self.request, reverse("providers:deployment-detail", args=[result.pk]))


class DeploymentPricesView(ModelPermissionFirst, ObjectFormView):
    """Prices alone: the deployment's change permission or the prices permission."""

    model = ModelDeployment
    form_class = DeploymentPricesForm
    object_action = "view"  # the prices check follows in dispatch
    submit_label = "Save prices"
    success_message = "Prices of {obj.public_name} saved."

    def get_queryset(self):
        return selectors.deployment_list()

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and permissions.may(request.user, self.model, "view"):
            self.request, self.kwargs = request, kwargs
            if not services.may_change_prices(request.user, self.object):
                raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {"instance": self.object}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = f"Prices of {self.object.public_name}"
        context["cancel_url"] = reverse("providers:deployment-detail", args=[self.object.pk])
        return context

    def perform(self, form):
        deployment = ModelDeployment.objects.get(pk=self.object.pk)
        return services.deployment_set_prices(deployment=deployment, **form.service_arguments())

    def success(self, result):
        return hx_redirect(self.request, reverse("providers:deployment-detail", args=[result.pk]))


class DeploymentToggleView(ModelPermissionFirst, ObjectActionView):
    model = ModelDeployment
    object_action = "change"
    danger = False

    def get_queryset(self):
        return selectors.deployment_list()

    @property
    def verb(self) -> str:  # type: ignore[override]
        return "Disable" if self.object.enabled else "Enable"

    @property
    def question(self) -> str:  # type: ignore[override]
        action = "Disable" if self.object.enabled else "Enable"
        return f"{action} model {self.object.public_name} on {self.object.provider.name}?"

    @property
    def consequence(self) -> str:  # type: ignore[override]
        if self.object.enabled:
            return "Requests and routes stop using it until it is enabled again."
        return ""

    def perform(self, obj):
        enabled = not obj.enabled
        services.deployment_update(deployment=obj, enabled=enabled)
        state = "enabled" if enabled else "disabled"
        messages.success(self.request, f"Model {obj.public_name} {state}.")

    def success(self, result):
        return hx_redirect(
            self.request, reverse("providers:deployment-detail", args=[self.object.pk])
        )


class DeploymentDeleteView(ModelPermissionFirst, ObjectActionView):
    model = ModelDeployment
    object_action = "delete"
    verb = "Delete"
    success_message = "Model {obj.public_name} deleted."

    def get_queryset(self):
        return selectors.deployment_list()

    @property
    def question(self) -> str:  # type: ignore[override]
        return f"Delete model {self.object.public_name} on {self.object.provider.name}?"

    consequence = (
        "Callers and routes naming it stop finding it on this provider. The audit log keeps "
        "a record; past requests keep their logs."
    )

    def perform(self, obj):
        services.deployment_delete(deployment=obj)

    def success(self, result):
        return hx_redirect(self.request, reverse("providers:deployment-list"))


class DeploymentCircuitResetView(ModelPermissionFirst, ObjectActionView):
    model = ModelDeployment
    object_action = "change"
    verb = "Reset circuit"
    danger = False
    success_message = "Circuit of {obj.public_name} closed."

    def get_queryset(self):
        return selectors.deployment_list()

    @property
    def question(self) -> str:  # type: ignore[override]
        return f"Close the circuit breaker of {self.object.public_name} for every process?"

    consequence = (
        "Calls go to this model again at once, even if it is still failing; the breaker "
        "opens again if they keep failing."
    )

    def perform(self, obj):
        return services.deployment_circuit_reset(deployment=obj)

    def success(self, result):
        return hx_redirect(
            self.request, reverse("providers:deployment-detail", args=[self.object.pk])
        )
