"""Console pages of routes (list, detail with what each learned, editor, try it) and of the
request log (list and detail with the decision and, for those who may, the stored exchange)."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse

from apps.audit.context import AuditActor, session_digest
from apps.audit.models import AuditEvent, StoredExchange
from apps.routing import route_services, selectors
from apps.routing.filters import RequestLogFilterSet, RouteFilterSet
from apps.routing.forms import RouteForm, TryRouteForm
from apps.routing.models import RequestLog, Route
from apps.routing.snapshot import BUILTIN_ROUTES
from apps.routing.tables import RequestLogTable, RouteTable
from apps.tenants import permissions
from apps.tenants.models import ApiKey
from atp_site.console.views import (
    ConsoleView,
    FormView,
    ObjectActionView,
    ObjectDetailView,
    ObjectFormView,
    ObjectListView,
    hx_redirect,
    is_htmx,
)
from atp_site.lib.errors import ATPError


def console_actor(request: HttpRequest) -> AuditActor:
    """Who acts from the console, for the audit events their reads leave."""
    user = request.user
    session = getattr(request, "session", None)
    return AuditActor(
        user_id=str(user.pk or ""),
        actor=user.get_username(),
        source=AuditEvent.Source.CONSOLE,
        session_id=session_digest(session.session_key if session else None),
        request_id=getattr(request, "request_id", ""),
        ip_address=request.META.get("REMOTE_ADDR") or None,
    )


# --- routes ----------------------------------------------------------------------------------


class RouteMixin:
    """Routes belong to no tenant: the global permission decides (403 without it)."""

    model = Route

    def get_queryset(self):
        return selectors.route_list()

    def has_permission(self) -> bool:
        return permissions.may(self.request.user, Route, "view")

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # The permission before the object: without it, 403 whether or not the route exists.
        self.request = request
        if request.user.is_authenticated and not self.has_permission():
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


def _key_choices(user: Any) -> list[tuple[str, str]]:
    keys = permissions.restrict(
        ApiKey.objects.select_related("tenant").filter(revoked_at__isnull=True), user, "view"
    ).order_by("tenant__slug", "name")[:200]
    return [(str(k.pk), f"{k.tenant.slug} / {k.name}") for k in keys]


def _route_context(view: ConsoleView, name: str) -> dict[str, Any]:
    user = view.request.user
    return {
        "learned": selectors.route_learned(name),
        "try_form": TryRouteForm(keys=_key_choices(user)),
        "try_url": reverse("routing:route-try"),
        "route_name": name,
        "may_change": permissions.may(user, Route, "change"),
        "may_delete": permissions.may(user, Route, "delete"),
        "may_add": permissions.may(user, Route, "add"),
    }


class RouteListView(ObjectListView):
    model = Route
    title = "Routes"
    table_class = RouteTable
    filterset_class = RouteFilterSet
    search_fields = ("name", "description")
    search_placeholder = "Search routes"
    template_name = "routing/route_list.html"
    add_action = ("routing:route-add", "Add route", ("routing.route", "add"))

    def get_queryset(self):
        return selectors.route_list()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["builtins"] = selectors.builtin_routes_not_overridden()
        context["may_add"] = permissions.may(self.request.user, Route, "add")
        return context


class RouteDetailView(RouteMixin, ObjectDetailView):
    template_name = "routing/route_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        route = self.object
        context.update(_route_context(self, route.name))
        context["title"] = route.name
        context["builtin"] = BUILTIN_ROUTES.get(route.name)
        return context


class BuiltinRouteDetailView(ConsoleView):
    """A built-in route no row overrides: what it does, what it learned, try it."""

    permission = ("routing.route", "view")
    template_name = "routing/route_detail.html"

    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        builtin = BUILTIN_ROUTES.get(name)
        if builtin is None:
            raise Http404
        override = Route.objects.filter(name=name).first()
        if override is not None:
            return hx_redirect(request, reverse("routing:route-detail", args=[override.pk]))
        context = self.get_context_data(title=name, object=None, builtin=builtin)
        context.update(_route_context(self, name))
        return self.render(self.template_name, context)


class RouteCreateView(FormView):
    permission = ("routing.route", "add")
    title = "Add route"
    form_class = RouteForm
    submit_label = "Create route"
    success_message = "Route {obj.name} created."

    def get_form(self, data: Any = None) -> RouteForm:
        initial = {}
        name = self.request.GET.get("name", "")
        if name in BUILTIN_ROUTES:  # "Override" on a built-in route
            builtin = BUILTIN_ROUTES[name]
            initial = {"name": name, "description": builtin.description}
        return RouteForm(data, initial=initial)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(cancel_url=reverse("routing:route-list"), **kwargs)

    def perform(self, form: RouteForm) -> Route:
        data = dict(form.validated)
        return route_services.route_create(**data)

    def success(self, result: Route) -> HttpResponse:
        return hx_redirect(self.request, reverse("routing:route-detail", args=[result.pk]))


class RouteEditView(RouteMixin, ObjectFormView):
    form_class = RouteForm
    submit_label = "Save route"
    success_message = "Route {obj.name} saved."

    def has_permission(self) -> bool:
        return permissions.may(self.request.user, Route, "change")

    def get_form(self, data: Any = None) -> RouteForm:
        return RouteForm(data, instance=self.object)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["title"] = f"Edit {self.object.name}"
        context["cancel_url"] = reverse("routing:route-detail", args=[self.object.pk])
        return context

    def perform(self, form: RouteForm) -> Route:
        return route_services.route_update(route=self.object, **form.validated)

    def success(self, result: Route) -> HttpResponse:
        return hx_redirect(self.request, reverse("routing:route-detail", args=[result.pk]))


class RouteDeleteView(RouteMixin, ObjectActionView):
    object_action = "delete"
    verb = "Delete route"
    question = "Delete this route? Requests naming it will get 404 (a built-in comes back)."
    consequence = "What it learned stays recorded; its settings are in the audit trail."
    success_message = "Route {obj.name} deleted."

    def has_permission(self) -> bool:
        return permissions.may(self.request.user, Route, "delete")

    def perform(self, obj: Route) -> None:
        route_services.route_delete(route=obj)

    def success(self, result: Any) -> HttpResponse:
        return hx_redirect(self.request, reverse("routing:route-list"))


class RouteToggleView(RouteMixin, ObjectActionView):
    """Disable (or enable again) a route: a disabled one answers 404, or hides a built-in."""

    object_action = "change"
    danger = True

    def has_permission(self) -> bool:
        return permissions.may(self.request.user, Route, "change")

    @property
    def verb(self) -> str:  # type: ignore[override]
        return "Enable route" if not self.object.enabled else "Disable route"

    @property
    def question(self) -> str:  # type: ignore[override]
        if self.object.enabled:
            return "Disable this route? Requests naming it get 404 until it is enabled again."
        return "Enable this route? Requests may name it again at once."

    def perform(self, obj: Route) -> Route:
        return route_services.route_update(route=obj, enabled=not obj.enabled)

    def success(self, result: Route) -> HttpResponse:
        return hx_redirect(self.request, reverse("routing:route-detail", args=[result.pk]))


class RouteTryView(ConsoleView):
    """The "try it" box: the ranking POST /v1/route would give, nothing sent upstream."""

    permission = ("routing.route", "view")
    http_method_names = ["post"]
    template_name = "routing/route_try.html"
    partial = "routing/partials/route_try.html"

    def post(self, request: HttpRequest) -> HttpResponse:
        name = request.POST.get("route", "")
        keys = _key_choices(request.user)
        form = TryRouteForm(request.POST, keys=keys)
        result = None
        status = 200
        if form.is_valid():
            try:
                result = selectors.route_try(
                    route_name=name,
                    prompt=form.cleaned_data["prompt"],
                    hints=form.cleaned_data["hints"],
                    key_id=form.cleaned_data["key"],
                    max_tokens=form.cleaned_data.get("max_tokens"),
                )
            except ATPError as err:
                param = err.param or ""
                field = "hints" if param.startswith("atp") else None
                if param == "max_tokens":
                    field = "max_tokens"
                form.add_error(field, err.message)
        if not form.is_valid():
            status = 422
        context = self.get_context_data(
            try_form=form,
            result=result,
            route_name=name,
            try_url=reverse("routing:route-try"),
        )
        if is_htmx(request):
            return self.render(self.partial, context, status=status)
        return self.render(self.template_name, context, status=200 if status == 200 else 400)


# --- the request log -------------------------------------------------------------------------


class RequestLogMixin:
    model = RequestLog

    def has_permission(self) -> bool:
        # Global holders see every tenant's requests, tenant members their tenants'.
        return permissions.may(self.request.user, RequestLog, "view")


class RequestLogListView(RequestLogMixin, ObjectListView):
    title = "Requests"
    table_class = RequestLogTable
    filterset_class = RequestLogFilterSet
    # Shown as the search box's columns; matched exactly (selectors.requestlog_search_q).
    search_fields = selectors.REQUESTLOG_SEARCH_FIELDS
    search_placeholder = "Request id, model, route or end user"
    template_name = "routing/requestlog_list.html"

    def get_queryset(self):
        return selectors.requestlog_list()

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # The frame's list, with an exact search instead of a substring one (which would
        # read every one of a million rows).
        queryset = self.visible()
        filterset = self.filterset_class(request.GET, queryset=queryset, request=request)
        queryset = filterset.qs if filterset.is_valid() else queryset.none()
        filtered = any(request.GET.get(name) for name in filterset.form.fields)
        term = request.GET.get("q", "").strip()
        if term:
            queryset = queryset.filter(selectors.requestlog_search_q(queryset, term))
            filtered = True
        table = self.table_class(queryset, request.GET, filtered=filtered)
        table.scoped = permissions.tenant_ids(request.user, RequestLog, "view") is not None
        context = self.get_context_data(
            table=table,
            page=table.page(),
            filterset=filterset,
            search=term,
            filtered=filtered,
            add_action=None,
            empty_action=None,
        )
        if is_htmx(request) and request.htmx.target == "console-table":
            return self.render(self.table_template, context)
        return self.render(self.template_name, context)


class RequestLogDetailView(RequestLogMixin, ObjectDetailView):
    template_name = "routing/requestlog_detail.html"

    def has_permission(self) -> bool:
        return RequestLogMixin.has_permission(self)

    def get_queryset(self):
        return RequestLog.objects.all()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        log: RequestLog = self.object
        decision = log.decision or {}
        ranking = decision.get("ranking") or []
        exchange = selectors.requestlog_exchange(log)
        context.update(
            title=f"Request {log.request_id}",
            related=selectors.requestlog_related(log),
            decision=decision,
            ranking=ranking,
            reasoning=decision.get("reasoning") or [],
            attempts=decision.get("attempts") or [],
            fell_back=bool(decision.get("model") and log.model and decision["model"] != log.model),
            shadows=list(selectors.requestlog_shadows(log)[:10]),
            exchange=exchange,
            may_view_body=exchange is not None
            and permissions.may_on(self.request.user, exchange, "view_body"),
            may_view_exchange=exchange is not None
            and permissions.may_on(self.request.user, exchange, "view"),
        )
        return context


def _pretty(body: Any) -> str:
    if body is None:
        return "(none)"
    return json.dumps(body, indent=2, ensure_ascii=False, default=str)


class RequestLogBodyView(RequestLogMixin, ConsoleView):
    """The stored exchange's bodies of one request: for holders of the body permission on
    its tenant only, and each reveal leaves an `exchange.viewed` audit event."""

    http_method_names = ["post"]
    template_name = "routing/partials/exchange_body.html"

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        from apps.audit.bodies import exchange_reveal
        from apps.audit.selectors import exchange_body_allowed

        visible = permissions.restrict(RequestLog.objects.all(), request.user, "view")
        log = visible.filter(pk=pk).first()
        if log is None:
            raise Http404
        exchange: StoredExchange | None = selectors.requestlog_exchange(log)
        if exchange is None:
            raise Http404
        if not exchange_body_allowed(user=request.user, exchange=exchange):
            raise PermissionDenied
        revealed = exchange_reveal(exchange=exchange, actor=console_actor(request))
        context = self.get_context_data(
            object=log,
            exchange=exchange,
            revealed=revealed,
            request_text=_pretty(revealed.request_body),
            response_text=_pretty(revealed.response_body),
        )
        if is_htmx(request):
            return self.render(self.template_name, context)
        return self.render("routing/requestlog_body.html", context)


__all__ = [
    "BuiltinRouteDetailView",
    "RequestLogBodyView",
    "RequestLogDetailView",
    "RequestLogListView",
    "RouteCreateView",
    "RouteDeleteView",
    "RouteDetailView",
    "RouteEditView",
    "RouteListView",
    "RouteToggleView",
    "RouteTryView",
]
