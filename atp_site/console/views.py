"""Generic console views: every page checks the same permissions the management API does.

    class ProviderListView(ObjectListView):
        model = Provider
        table_class = ProviderTable
        filterset_class = ProviderFilterSet
        search_fields = ("name", "base_url")
        def get_queryset(self):
            return selectors.provider_list()   # restrict() is applied by the view

One view serves the full page or, for htmx, the fragment it later swaps (the table, the
form, the confirmation). Rules (the permission matrix tests them on every page):

- signed out: a page redirects to the sign-in page with ?next=; an htmx or non-GET request
  gets 401 (htmx is told to go to the sign-in page with HX-Redirect);
- signed in without the permission: 403;
- an object outside the tenants the viewer may see: 404.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.apps import apps as django_apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.utils.functional import cached_property
from django.views import View

from apps.tenants import permissions
from atp_site.console.tables import Table, search_q


def is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def hx_redirect(request: HttpRequest, url: str) -> HttpResponse:
    """After a successful POST: htmx follows HX-Redirect, a plain form a 303."""
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url, status=303)


class ConsoleView(View):
    """Signed-in users holding `permission` ("app_label.model", action); see the module doc.

    Subclasses needing another rule override `has_permission()`."""

    permission: ClassVar[tuple[str, str] | None] = None
    title: ClassVar[str] = ""
    template_name: ClassVar[str] = ""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return self.signed_out(request)
        if not self.has_permission():
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def signed_out(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("GET", "HEAD") and not is_htmx(request):
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        response = HttpResponse("Sign in to continue.", status=401, content_type="text/plain")
        if is_htmx(request):
            response["HX-Redirect"] = settings.LOGIN_URL
        return response

    def has_permission(self) -> bool:
        if self.permission is None:
            return True
        label, action = self.permission
        return permissions.may(self.request.user, django_apps.get_model(label), action)

    def may(self, label: str, action: str) -> bool:
        return permissions.may(self.request.user, django_apps.get_model(label), action)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {"view": self, "title": self.title, **kwargs}

    def render(self, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
        return render(self.request, template, context, status=status)


class PageView(ConsoleView):
    """A page with its own template (the overview, a report form)."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.render(self.template_name, self.get_context_data())


class ObjectListView(ConsoleView):
    """A table page: filters, search, sorting and keyset pagination; htmx gets the table."""

    model: ClassVar[type[Model]]
    table_class: ClassVar[type[Table]]
    filterset_class: ClassVar[Any] = None
    search_fields: ClassVar[tuple[str, ...]] = ()
    search_placeholder: ClassVar[str] = "Search"
    template_name = "console/object_list.html"
    table_template: ClassVar[str] = "console/partials/table.html"
    # (URL name, label, ("app.model", action)) of the "add" button.
    add_action: ClassVar[tuple[str, str, tuple[str, str]] | None] = None

    @property
    def permission(self) -> tuple[str, str]:  # type: ignore[override]
        return (self.model._meta.label_lower, "view")

    def get_queryset(self) -> QuerySet:
        return self.model.objects.all()

    def visible(self) -> QuerySet:
        """The queryset narrowed to what the viewer may see (never skip this)."""
        return permissions.restrict(self.get_queryset(), self.request.user, "view")

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        queryset = self.visible()
        filterset = None
        filtered = False
        if self.filterset_class is not None:
            filterset = self.filterset_class(request.GET, queryset=queryset, request=request)
            queryset = filterset.qs if filterset.is_valid() else queryset.none()
            filtered = any(request.GET.get(name) for name in filterset.form.fields)
        term = request.GET.get("q", "").strip()
        if term and self.search_fields:
            queryset = queryset.filter(search_q(self.search_fields, term))
            filtered = True
        table = self.table_class(queryset, request.GET, filtered=filtered)
        context = self.get_context_data(
            table=table,
            page=table.page(),
            filterset=filterset,
            search=term,
            filtered=filtered,
            add_action=self._action(self.add_action),
            empty_action=self._action(table.empty_action),
        )
        if is_htmx(request) and request.htmx.target == "console-table":
            return self.render(self.table_template, context)
        return self.render(self.template_name, context)

    def _action(self, action: Any) -> tuple[str, str] | None:
        """(URL, label) of an add / call-to-action button the viewer may use, else None."""
        if action is None:
            return None
        url_name, label, needed = action
        if needed is not None and not self.may(*needed):
            return None
        try:
            return reverse(url_name), label
        except NoReverseMatch:
            return None


class ObjectMixin:
    """Loads the view's object through the same scoping as lists: 404 outside it."""

    model: ClassVar[type[Model]]
    object_action: ClassVar[str] = "view"
    request: HttpRequest
    kwargs: dict[str, Any]

    def get_queryset(self) -> QuerySet:
        return self.model.objects.all()

    @cached_property
    def object(self) -> Any:
        visible = permissions.restrict(self.get_queryset(), self.request.user, "view")
        obj = get_object_or_404(visible, pk=self.kwargs["pk"])
        if self.object_action != "view" and not permissions.may_on(
            self.request.user, obj, self.object_action
        ):
            raise PermissionDenied
        return obj


class ObjectDetailView(ObjectMixin, ConsoleView):
    @property
    def permission(self) -> tuple[str, str]:  # type: ignore[override]
        # `may` counts a grant on any one tenant; which objects is the queryset's business
        # (404 outside the viewer's tenants). Without the permission anywhere: 403.
        return (self.model._meta.label_lower, "view")

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.render(self.template_name, self.get_context_data(object=self.object))


class FormView(ConsoleView):
    """A form whose valid submission calls a service (`perform`); errors re-render the form.

    htmx posts get the form partial back with errors next to the fields, or HX-Redirect."""

    form_class: ClassVar[Any]
    template_name = "console/object_edit.html"
    form_template: ClassVar[str] = "console/partials/form.html"
    submit_label: ClassVar[str] = "Save"
    success_message: ClassVar[str] = ""

    def get_form_kwargs(self) -> dict[str, Any]:
        return {}

    def get_form(self, data: Any = None) -> Any:
        return self.form_class(data, **self.get_form_kwargs())

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.render(self.template_name, self.get_context_data(form=self.get_form()))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = self.get_form(request.POST)
        if form.is_valid():
            try:
                result = self.perform(form)
            except PermissionDenied:
                raise
            except Exception as exc:  # a service's validation error: show it on the form
                if not self.form_error(form, exc):
                    raise
            else:
                if self.success_message:
                    messages.success(request, self.success_message.format(obj=result))
                return self.success(result)
        context = self.get_context_data(form=form)
        template = self.form_template if is_htmx(request) else self.template_name
        return self.render(template, context, status=422 if is_htmx(request) else 200)

    def form_error(self, form: Any, exc: Exception) -> bool:
        """Put a service's ValidationError on the form; False for anything else."""
        from django.core.exceptions import ValidationError

        if isinstance(exc, ValidationError):
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc)
            return True
        return False

    def perform(self, form: Any) -> Any:
        raise NotImplementedError

    def success(self, result: Any) -> HttpResponse:
        raise NotImplementedError


class ObjectFormView(ObjectMixin, FormView):
    """Edit one object: the form is bound to it and `perform` calls the update service."""

    object_action = "change"

    def has_permission(self) -> bool:
        return True  # checked on the object (ObjectMixin.object) before anything is shown

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            self.request, self.kwargs = request, kwargs
            _ = self.object  # 404 / 403 before the form is built
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(object=self.object, **kwargs)


class ObjectActionView(ObjectMixin, ConsoleView):
    """A confirmed action on one object (revoke, rotate, delete, reset a circuit).

    GET renders the confirmation (a dialog for htmx); POST performs it through a service."""

    object_action: ClassVar[str]
    template_name = "console/confirm.html"
    confirm_template: ClassVar[str] = "console/partials/confirm.html"
    verb: ClassVar[str] = "Confirm"
    question: ClassVar[str] = "Are you sure?"
    consequence: ClassVar[str] = ""
    danger: ClassVar[bool] = True
    success_message: ClassVar[str] = ""

    def has_permission(self) -> bool:
        return True

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            self.request, self.kwargs = request, kwargs
            _ = self.object
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        context = self.get_context_data(object=self.object)
        template = self.confirm_template if is_htmx(request) else self.template_name
        return self.render(template, context)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        result = self.perform(self.object)
        if self.success_message:
            messages.success(request, self.success_message.format(obj=self.object))
        return self.success(result)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        # The confirmation page's heading when it is a page of its own (not a dialog).
        kwargs.setdefault("title", f"{self.verb} {self.object}")
        return super().get_context_data(**kwargs)

    def perform(self, obj: Any) -> Any:
        raise NotImplementedError

    def success(self, result: Any) -> HttpResponse:
        raise NotImplementedError


class OverviewView(PageView):
    """The live overview: figures merged from every gateway process, narrowed to what the
    viewer may see (atp_site.console.live.figures), rendered here and then kept current over
    the console's WebSocket (static/console/overview.js). Every signed-in user may open it;
    a viewer who may see none of its figures gets the menu and what to ask for."""

    title = "Overview"
    template_name = "console/overview.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        from atp_site.console.live import figures
        from atp_site.console.live.topics import TOPICS
        from atp_site.console.navigation import menu_for

        context = super().get_context_data(**kwargs)
        scope = figures.viewer_scope(self.request.user)
        data = figures.figures_for(scope)
        context["figures"] = data
        context["live"] = {
            "socket": "/ws/console/",
            "poll": reverse("console:overview-figures"),
            "topics": [name for name, topic in TOPICS.items() if topic.allowed(scope)],
            "series": data.get("traffic", {}).get("series"),
        }
        context["sections"] = menu_for(self.request.user)
        context["api_base"] = self.request.build_absolute_uri("/v1")
        return context


class OverviewFiguresView(ConsoleView):
    """The overview's figures as JSON: the page's fallback when its WebSocket cannot connect."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        from django.http import JsonResponse

        from atp_site.console.live import figures

        data = figures.figures_for(figures.viewer_scope(request.user))
        response = JsonResponse(data)
        response["Cache-Control"] = "no-store"
        return response

    def signed_out(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("Sign in to continue.", status=401, content_type="text/plain")


def not_found_page(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "console/error.html", {"status": 404, "title": "Not found"}, status=404)


def forbidden_page(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(
        request, "console/error.html", {"status": 403, "title": "Not allowed"}, status=403
    )


__all__ = [
    "ConsoleView",
    "FormView",
    "Http404",
    "ObjectActionView",
    "ObjectDetailView",
    "ObjectFormView",
    "ObjectListView",
    "PageView",
    "forbidden_page",
    "hx_redirect",
    "is_htmx",
    "not_found_page",
]
