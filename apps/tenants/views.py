"""Console pages of tenants, API keys, admin tokens, users and their roles.

Every write goes through the audited services the management API uses
(apps.tenants.services, apps.tenants.roles). A new key's or token's plaintext is rendered
once, in the response to the request that made it, and is kept nowhere: not in the session,
not in a message, not in a cookie, and the response is marked not to be cached.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import partial
from typing import Any

from django.apps import apps as django_apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.functional import cached_property

from apps.tenants import permissions, roles, selectors, services
from apps.tenants.filters import ApiKeyFilterSet, ProjectFilterSet, TenantFilterSet
from apps.tenants.forms import (
    AdminTokenCreateForm,
    ApiKeyCreateForm,
    ApiKeyEditForm,
    ApiKeyRotateForm,
    DedicatedPermissionForm,
    MemberForm,
    MembershipForm,
    ProjectCreateForm,
    ProjectForm,
    TenantForm,
    UserRolesForm,
)
from apps.tenants.models import AdminToken, ApiKey, Project, Tenant
from apps.tenants.permissions import ADD_ADMIN_TOKEN_FOR_OTHERS
from apps.tenants.tables import (
    AdminTokenTable,
    ApiKeyTable,
    ProjectTable,
    TenantTable,
    UserTable,
    key_status,
)
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

User = get_user_model()

DAY = timedelta(hours=24)
WEEK = timedelta(days=7)


def secret_response(view: ConsoleView, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """The page (or, for htmx, the fragment replacing the form) showing a plaintext once."""
    template = (
        "tenants/partials/secret_once.html"
        if is_htmx(view.request)
        else ("tenants/secret_once.html")
    )
    context = view.get_context_data(**context)
    context.setdefault("title", "Copy the secret now")
    response = view.render(template, context, status=status)
    # Neither the browser nor a proxy may keep a copy of the page that holds it.
    add_never_cache_headers(response)
    response["Cache-Control"] = "no-store, " + response["Cache-Control"]
    return response


class PermissionFirst:
    """403 for a viewer who may not do the view's action on any object of its model, before
    the object is looked up; one outside the viewer's tenants is then a 404."""

    model: Any
    object_action: str
    request: HttpRequest

    def has_permission(self) -> bool:
        return permissions.may(self.request.user, self.model, self.object_action)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and not self.has_permission():
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def api_base(request: HttpRequest) -> str:
    return request.build_absolute_uri("/v1")


# --- tenants --------------------------------------------------------------------------------


class TenantListView(ObjectListView):
    model = Tenant
    title = "Tenants"
    table_class = TenantTable
    filterset_class = TenantFilterSet
    search_fields = ("name", "slug")
    search_placeholder = "Search tenants"
    add_action = ("tenants:tenant-add", "Add tenant", ("tenants.tenant", "add"))

    def get_queryset(self) -> QuerySet[Tenant]:
        return selectors.tenant_list_with_key_counts()


class TenantDetailView(PermissionFirst, ObjectDetailView):
    model = Tenant
    template_name = "tenants/tenant_detail.html"

    def get_queryset(self) -> QuerySet[Tenant]:
        return selectors.tenant_list_with_key_counts()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        tenant, user = self.object, self.request.user
        now = timezone.now()
        keys = permissions.restrict(selectors.api_key_list(tenant=tenant), user, "view")
        manages_members = permissions.may_on(user, tenant, "manage_members")
        context.update(
            title=tenant.name,
            keys=keys.filter(revoked_at__isnull=True).order_by("name")[:25],
            usage_day=selectors.tenant_usage(tenant_ids=[tenant.pk], since=now - DAY).get(
                tenant.pk, selectors.Usage()
            ),
            usage_week=selectors.tenant_usage(tenant_ids=[tenant.pk], since=now - WEEK).get(
                tenant.pk, selectors.Usage()
            ),
            may_change=permissions.may_on(user, tenant, "change"),
            may_add_key=permissions.may_for_tenant(user, ApiKey, "add", tenant.pk),
            projects=selectors.project_list(tenant=tenant).order_by("name")[:50],
            may_add_project=permissions.may_for_tenant(user, Project, "add", tenant.pk),
            may_manage_members=manages_members,
            show_members=manages_members or user.has_perm("auth.view_user"),
            may_view_users=permissions.may(user, User, "view"),
            may_view_limits=permissions.may_for_tenant(
                user, django_apps.get_model("costs", "RateLimit"), "view", tenant.pk
            ),
            may_view_budgets=permissions.may_for_tenant(
                user, django_apps.get_model("costs", "Budget"), "view", tenant.pk
            ),
        )
        if context["show_members"]:
            context["members"] = roles.tenant_members(tenant)
        if manages_members:
            context["member_form"] = MemberForm(tenant=tenant)
        return context


class TenantCreateView(FormView):
    permission = ("tenants.tenant", "add")
    title = "New tenant"
    form_class = TenantForm
    submit_label = "Create tenant"
    success_message = "Tenant {obj.name} created."

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(cancel_url=reverse("tenants:tenant-list"), **kwargs)

    def perform(self, form: TenantForm) -> Tenant:
        return services.tenant_create(**form.cleaned_data)

    def success(self, result: Tenant) -> HttpResponse:
        return hx_redirect(self.request, reverse("tenants:tenant-detail", args=[result.pk]))


class TenantEditView(PermissionFirst, ObjectFormView):
    model = Tenant
    form_class = TenantForm
    submit_label = "Save"
    success_message = "Tenant {obj.name} saved."

    def get_form(self, data: Any = None) -> TenantForm:
        return TenantForm(data, initial=TenantForm.initial_of(self.object))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            title=f"Edit {self.object.name}",
            cancel_url=reverse("tenants:tenant-detail", args=[self.object.pk]),
            **kwargs,
        )

    def perform(self, form: TenantForm) -> Tenant:
        # A fresh row: a refused change must not leave the page's object half changed.
        tenant = Tenant.objects.get(pk=self.object.pk)
        return services.tenant_update(tenant=tenant, **form.cleaned_data)

    def success(self, result: Tenant) -> HttpResponse:
        return hx_redirect(self.request, reverse("tenants:tenant-detail", args=[result.pk]))


class TenantMemberView(PermissionFirst, ObjectFormView):
    """Give a user (by username) a role on this tenant, or take it away."""

    model = Tenant
    object_action = "manage_members"
    form_class = MemberForm
    form_template = "tenants/partials/inline_form.html"
    submit_label = "Save member"

    def get_form(self, data: Any = None) -> MemberForm:
        return MemberForm(data, tenant=self.object)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            title=f"Members of {self.object.name}",
            form_id="member-form",
            submit_label=self.submit_label,
            form_action=reverse("tenants:tenant-members", args=[self.object.pk]),
            cancel_url=reverse("tenants:tenant-detail", args=[self.object.pk]),
            **kwargs,
        )

    def perform(self, form: MemberForm) -> Any:
        username = form.cleaned_data["username"].strip()
        user = User._default_manager.filter(username=username).first()
        if user is None:
            raise ValidationError({"username": f"No user {username!r}."})
        role = form.cleaned_data["role"] or None
        try:
            roles.tenant_role_set(
                user=user,
                tenant=self.object,
                role=role,
                actor=self.request.user,
                source="console",
            )
        except PermissionDenied as exc:
            raise ValidationError({"role": str(exc)}) from exc
        verb = f"is now {role}" if role else "no longer has a role"
        messages.success(self.request, f"{user.get_username()} {verb} on {self.object.slug}.")
        return user

    def success(self, result: Any) -> HttpResponse:
        return hx_redirect(self.request, reverse("tenants:tenant-detail", args=[self.object.pk]))


# --- projects -------------------------------------------------------------------------------


class ProjectListView(ObjectListView):
    model = Project
    title = "Projects"
    table_class = ProjectTable
    filterset_class = ProjectFilterSet
    search_fields = ("name", "slug")
    search_placeholder = "Search projects"
    add_action = ("tenants:project-add", "Add project", ("tenants.project", "add"))

    def get_queryset(self) -> QuerySet[Project]:
        return selectors.project_list()


class ProjectDetailView(PermissionFirst, ObjectDetailView):
    model = Project
    template_name = "tenants/project_detail.html"

    def get_queryset(self) -> QuerySet[Project]:
        return selectors.project_list()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        project, user = self.object, self.request.user
        keys = permissions.restrict(selectors.api_key_list(), user, "view").filter(
            project=project, revoked_at__isnull=True
        )
        context.update(
            title=project.name,
            keys=keys.order_by("name")[:50],
            may_change=permissions.may_on(user, project, "change"),
            may_delete=permissions.may_on(user, project, "delete"),
            may_add_key=permissions.may_for_tenant(user, ApiKey, "add", project.tenant_id),
        )
        return context


class ProjectCreateView(FormView):
    permission = ("tenants.project", "add")
    title = "New project"
    form_class = ProjectCreateForm
    submit_label = "Create project"
    success_message = "Project {obj.name} created."

    def get_form(self, data: Any = None) -> ProjectCreateForm:
        tenants = permissions.allowed_tenants(self.request.user, Project, "add")
        initial = {"tenant": slug} if (slug := self.request.GET.get("tenant")) else {}
        return ProjectCreateForm(data, tenants=tenants, initial=initial)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(cancel_url=reverse("tenants:project-list"), **kwargs)

    def perform(self, form: ProjectCreateForm) -> Project:
        data = dict(form.cleaned_data)
        tenant = data.pop("tenant")
        if not permissions.may_for_tenant(self.request.user, Project, "add", tenant.pk):
            raise PermissionDenied
        return services.project_create(tenant=tenant, **data)

    def success(self, result: Project) -> HttpResponse:
        return hx_redirect(self.request, reverse("tenants:project-detail", args=[result.pk]))


class ProjectEditView(PermissionFirst, ObjectFormView):
    model = Project
    form_class = ProjectForm
    submit_label = "Save"
    success_message = "Project {obj.name} saved."

    def get_queryset(self) -> QuerySet[Project]:
        return selectors.project_list()

    def get_form(self, data: Any = None) -> ProjectForm:
        project = self.object
        initial = {"name": project.name, "slug": project.slug, "description": project.description}
        return ProjectForm(data, initial=initial)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            title=f"Edit {self.object.name}",
            cancel_url=reverse("tenants:project-detail", args=[self.object.pk]),
            **kwargs,
        )

    def perform(self, form: ProjectForm) -> Project:
        project = Project.objects.select_related("tenant").get(pk=self.object.pk)
        data = dict(form.cleaned_data)
        data["name"] = data["name"] or data["slug"]
        return services.project_update(project=project, **data)

    def success(self, result: Project) -> HttpResponse:
        return hx_redirect(self.request, reverse("tenants:project-detail", args=[result.pk]))


class ProjectDeleteView(PermissionFirst, ObjectActionView):
    model = Project
    object_action = "delete"
    verb = "Delete"
    question = "Delete this project?"
    consequence = "Its keys keep working, directly under the tenant; the audit log keeps a record."
    success_message = "Project {obj.name} deleted."

    def get_queryset(self) -> QuerySet[Project]:
        return selectors.project_list()

    def perform(self, obj: Project) -> Project:
        services.project_delete(project=obj)
        return obj

    def success(self, result: Project) -> HttpResponse:
        return hx_redirect(self.request, reverse("tenants:tenant-detail", args=[result.tenant_id]))


# --- API keys -------------------------------------------------------------------------------


class ApiKeyListView(ObjectListView):
    model = ApiKey
    title = "API keys"
    table_class = ApiKeyTable
    filterset_class = ApiKeyFilterSet
    search_fields = ("name", "prefix")
    search_placeholder = "Search by name or prefix"
    add_action = ("tenants:apikey-add", "Create API key", ("tenants.apikey", "add"))

    def get_queryset(self) -> QuerySet[ApiKey]:
        return selectors.api_key_list()


class ApiKeyDetailView(PermissionFirst, ObjectDetailView):
    model = ApiKey
    template_name = "tenants/apikey_detail.html"

    def get_queryset(self) -> QuerySet[ApiKey]:
        return selectors.api_key_list()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        key, user = self.object, self.request.user
        now = timezone.now()
        live = key.revoked_at is None
        # A rotated key in its grace period still works: revoking it ends the grace.
        in_grace = key.grace_until is not None and key.grace_until > now
        context.update(
            title=key.name,
            status=key_status(key),
            usage=[
                ("Last 24 hours", selectors.api_key_usage(api_key=key, since=now - DAY)),
                ("Last 7 days", selectors.api_key_usage(api_key=key, since=now - WEEK)),
            ],
            # Kept on the key by the usage ledger; keys used before it kept one fall back on
            # their newest request.
            last_used=key.last_used_at or selectors.api_key_last_used(api_key=key),
            in_grace=in_grace,
            may_change=live and permissions.may_on(user, key, "change"),
            may_rotate=live and permissions.may_on(user, key, "rotate"),
            may_revoke=(live or in_grace) and permissions.may_on(user, key, "revoke"),
            may_view_tenant=permissions.may_on(user, key.tenant, "view"),
        )
        return context


class ApiKeyCreateView(FormView):
    permission = ("tenants.apikey", "add")
    title = "New API key"
    form_class = ApiKeyCreateForm
    submit_label = "Create key"

    def tenants(self) -> QuerySet[Tenant]:
        return permissions.allowed_tenants(self.request.user, ApiKey, "add")

    def get_form(self, data: Any = None) -> ApiKeyCreateForm:
        initial = {}
        if slug := self.request.GET.get("tenant"):
            initial["tenant"] = slug
        projects = permissions.restrict(selectors.project_list(), self.request.user, "view")
        if slug := self.request.GET.get("project"):
            initial["project"] = projects.filter(pk=slug).first() if _is_uuid(slug) else None
        return ApiKeyCreateForm(
            data,
            tenants=self.tenants(),
            projects=projects.order_by("tenant__slug", "name"),
            initial=initial,
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(cancel_url=reverse("tenants:apikey-list"), **kwargs)

    def perform(self, form: ApiKeyCreateForm) -> tuple[ApiKey, str]:
        tenant = form.cleaned_data["tenant"]
        if not permissions.may_for_tenant(self.request.user, ApiKey, "add", tenant.pk):
            raise PermissionDenied
        return services.api_key_create(
            tenant=tenant,
            name=form.cleaned_data["name"],
            allowed_models=form.cleaned_data["allowed_models"],
            expires_at=form.cleaned_data["expires_at"],
            created_by=self.request.user,
            project=form.cleaned_data.get("project"),
            plan=form.cleaned_data["plan"],
        )

    def success(self, result: tuple[ApiKey, str]) -> HttpResponse:
        api_key, plaintext = result
        return secret_response(
            self,
            {
                "kind": "API key",
                "object": api_key,
                "plaintext": plaintext,
                "heading": f"API key {api_key.name} created",
                "api_base": api_base(self.request),
                "done_url": reverse("tenants:apikey-detail", args=[api_key.pk]),
            },
            status=201,
        )


class ApiKeyEditView(PermissionFirst, ObjectFormView):
    model = ApiKey
    form_class = ApiKeyEditForm
    submit_label = "Save"
    success_message = "Key {obj.name} saved."

    def get_queryset(self) -> QuerySet[ApiKey]:
        return selectors.api_key_list()

    def get_form(self, data: Any = None) -> ApiKeyEditForm:
        key = self.object
        form = ApiKeyEditForm(
            data,
            initial={
                "name": key.name,
                "allowed_models": key.allowed_models,
                "expires_at": key.expires_at,
                "project": key.project_id,
                "plan": key.plan,
            },
            projects=selectors.project_list(tenant=key.tenant).order_by("name"),
        )
        # An expiry already in the past may stay as it is; a new one must be in the future.
        form.fields["expires_at"].current = key.expires_at
        return form

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            title=f"Edit {self.object.name}",
            cancel_url=reverse("tenants:apikey-detail", args=[self.object.pk]),
            **kwargs,
        )

    def perform(self, form: ApiKeyEditForm) -> ApiKey:
        key = ApiKey.objects.select_related("tenant").get(pk=self.object.pk)
        fields = dict(form.cleaned_data)
        if key.expires_at and fields["expires_at"] == key.expires_at.replace(
            second=0, microsecond=0
        ):
            fields["expires_at"] = key.expires_at  # unchanged: keep it to the second
        return services.api_key_update(api_key=key, **fields)

    def success(self, result: ApiKey) -> HttpResponse:
        return hx_redirect(self.request, reverse("tenants:apikey-detail", args=[result.pk]))


class ApiKeyRotateView(PermissionFirst, ObjectActionView):
    model = ApiKey
    object_action = "rotate"
    verb = "Rotate"
    question = "Replace this key with a new one that has the same name, models and expiry?"
    consequence = (
        "Without a grace period the current key stops working at once. The new key is shown "
        "once, on the next page."
    )
    confirm_template = "tenants/partials/rotate_confirm.html"

    def get_queryset(self) -> QuerySet[ApiKey]:
        return selectors.api_key_list()

    def rotate_form(self, data: Any = None) -> ApiKeyRotateForm:
        return ApiKeyRotateForm(data, default=settings.ATP_KEY_ROTATION_GRACE_SECONDS)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(form=self.rotate_form(), **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        detail = reverse("tenants:apikey-detail", args=[self.object.pk])
        form = self.rotate_form(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose one of the grace periods offered.")
            return hx_redirect(request, detail)
        try:
            new_key, plaintext = services.api_key_rotate(
                api_key=self.object,
                created_by=request.user,
                grace_seconds=form.cleaned_data["grace_seconds"],
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return hx_redirect(request, detail)
        return secret_response(
            self,
            {
                "kind": "API key",
                "object": new_key,
                "plaintext": plaintext,
                "heading": f"API key {new_key.name} rotated",
                "replaced": self.object,
                "api_base": api_base(request),
                "done_url": reverse("tenants:apikey-detail", args=[new_key.pk]),
            },
        )


class ApiKeyRevokeView(PermissionFirst, ObjectActionView):
    model = ApiKey
    object_action = "revoke"
    verb = "Revoke"
    question = "Revoke this key?"
    consequence = "Requests made with it are refused at once. This cannot be undone."
    success_message = "Key {obj.name} revoked."

    def get_queryset(self) -> QuerySet[ApiKey]:
        return selectors.api_key_list()

    def perform(self, obj: ApiKey) -> ApiKey:
        return services.api_key_revoke(api_key=obj)

    def success(self, result: ApiKey) -> HttpResponse:
        return hx_redirect(self.request, reverse("tenants:apikey-detail", args=[result.pk]))


# --- admin tokens ---------------------------------------------------------------------------


def may_mint_for_others(user: Any) -> bool:
    return bool(user.is_active and user.has_perm(ADD_ADMIN_TOKEN_FOR_OTHERS))


class AdminTokenListView(ObjectListView):
    """The viewer's own admin tokens: every signed-in user may see theirs (and only theirs)."""

    model = AdminToken
    title = "Admin tokens"
    add_action = ("tenants:admintoken-add", "Create admin token", ("tenants.admintoken", "add"))

    def has_permission(self) -> bool:
        return True

    def visible(self) -> QuerySet[AdminToken]:
        return selectors.admin_token_list(user=self.request.user)

    def _action(self, action: Any) -> tuple[str, str] | None:
        if action is not None and may_mint_for_others(self.request.user):
            return reverse(action[0]), action[1]
        return super()._action(action)

    @property
    def table_class(self) -> Any:  # type: ignore[override]
        may_revoke = permissions.may(self.request.user, AdminToken, "revoke")
        return partial(AdminTokenTable, may_revoke=may_revoke)


class AdminTokenCreateView(FormView):
    title = "New admin token"
    form_class = AdminTokenCreateForm
    submit_label = "Create token"

    def has_permission(self) -> bool:
        user = self.request.user
        return permissions.may(user, AdminToken, "add") or may_mint_for_others(user)

    def get_form(self, data: Any = None) -> AdminTokenCreateForm:
        users = None
        if may_mint_for_others(self.request.user):
            users = User._default_manager.filter(is_active=True).order_by("username")
        return AdminTokenCreateForm(data, users=users)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(cancel_url=reverse("tenants:admintoken-list"), **kwargs)

    def perform(self, form: AdminTokenCreateForm) -> tuple[AdminToken, str]:
        me = self.request.user
        owner = form.cleaned_data.get("user") or me
        if owner.pk == me.pk and not permissions.may(me, AdminToken, "add"):
            raise ValidationError({"user": "You may create admin tokens for others only."})
        # The service checks the dedicated permission again for somebody else's token.
        return services.admin_token_create(
            user=owner,
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data["expires_at"],
            by=me,
        )

    def success(self, result: tuple[AdminToken, str]) -> HttpResponse:
        token, plaintext = result
        return secret_response(
            self,
            {
                "kind": "admin token",
                "object": token,
                "plaintext": plaintext,
                "heading": f"Admin token {token.name} created",
                "owner": token.user,
                "done_url": reverse("tenants:admintoken-list"),
            },
            status=201,
        )


class AdminTokenRevokeView(PermissionFirst, ObjectActionView):
    """Revoke one of the viewer's own tokens; another user's token is not found."""

    model = AdminToken
    object_action = "revoke"
    verb = "Revoke"
    question = "Revoke this admin token?"
    consequence = "Scripts using it are refused at once. This cannot be undone."
    success_message = "Admin token {obj.name} revoked."

    @cached_property
    def object(self) -> AdminToken:
        return get_object_or_404(
            selectors.admin_token_list(user=self.request.user), pk=self.kwargs["pk"]
        )

    def perform(self, obj: AdminToken) -> AdminToken:
        return services.admin_token_revoke(token=obj)

    def success(self, result: AdminToken) -> HttpResponse:
        return hx_redirect(self.request, reverse("tenants:admintoken-list"))


# --- users and roles ------------------------------------------------------------------------


def may_see_users(user: Any) -> bool:
    """Users with `auth.view_user`, and tenant admins (the members of their tenants)."""
    return permissions.may(user, User, "view") or permissions.may(user, Tenant, "manage_members")


class UserListView(ObjectListView):
    model = User
    title = "Users and roles"
    search_fields = ("username", "email", "first_name", "last_name")
    search_placeholder = "Search users"

    def has_permission(self) -> bool:
        return may_see_users(self.request.user)

    def visible(self) -> QuerySet:
        return roles.user_list(self.request.user)

    @property
    def table_class(self) -> Any:  # type: ignore[override]
        visible = permissions.tenant_ids(self.request.user, Tenant, "view")
        return partial(UserTable, visible_tenants=visible)


class UserMixin:
    """The user named in the URL, if the viewer may see them (404 otherwise)."""

    request: HttpRequest
    kwargs: dict[str, Any]

    @cached_property
    def subject(self) -> Any:
        return get_object_or_404(roles.user_list(self.request.user), pk=self.kwargs["pk"])


def dedicated_grants(user: Any) -> list[tuple[str, Tenant | None]]:
    return selectors.user_dedicated_permissions(user=user)


class UserDetailView(UserMixin, ConsoleView):
    template_name = "tenants/user_detail.html"

    def has_permission(self) -> bool:
        return may_see_users(self.request.user)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.render(self.template_name, self.get_context_data())

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        viewer, user = self.request.user, self.subject
        visible = permissions.tenant_ids(viewer, Tenant, "view")
        memberships = [
            (tenant, role)
            for tenant, role in roles.user_memberships(user).items()
            if visible is None or tenant.pk in visible
        ]
        context = super().get_context_data(
            title=user.get_username(),
            subject=user,
            held_roles=[roles.GLOBAL_ROLES[name] for name in sorted(roles.user_roles(user))],
            memberships=memberships,
            **kwargs,
        )
        if permissions.may(viewer, User, "assign_roles"):
            context["roles_form"] = roles_form(viewer, user)
        if permissions.may(viewer, Tenant, "manage_members"):
            context["membership_form"] = MembershipForm(tenants=managed_tenants(viewer))
        if viewer.is_superuser:
            context["dedicated"] = dedicated_grants(user)
            context["dedicated_form"] = DedicatedPermissionForm()
        return context


def assignable_roles(viewer: Any) -> list[str]:
    return [name for name in roles.ROLE_NAMES if roles.role_assignable(viewer, name)]


def roles_form(viewer: Any, user: Any, data: Any = None) -> UserRolesForm:
    assignable = assignable_roles(viewer)
    held = roles.user_roles(user)
    return UserRolesForm(
        data,
        assignable=assignable,
        initial={"roles": sorted(held & set(assignable))},
    )


def managed_tenants(viewer: Any) -> QuerySet[Tenant]:
    return permissions.allowed_tenants(viewer, Tenant, "manage_members")


class UserFormView(UserMixin, FormView):
    """A settings form about one user; htmx gets the form back in place, with its errors."""

    form_template = "tenants/partials/inline_form.html"
    form_id: str = ""
    url_name: str = ""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and self.has_permission():
            self.request, self.kwargs = request, kwargs
            _ = self.subject  # 404 before anything is shown
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            subject=self.subject,
            form_id=self.form_id,
            submit_label=self.submit_label,
            form_action=reverse(self.url_name, args=[self.subject.pk]),
            cancel_url=reverse("tenants:user-detail", args=[self.subject.pk]),
            **kwargs,
        )

    def success(self, result: Any) -> HttpResponse:
        return hx_redirect(self.request, reverse("tenants:user-detail", args=[self.subject.pk]))


class UserRolesView(UserFormView):
    """Replace the global roles the viewer may assign; the others stay as they are."""

    permission = ("auth.user", "assign_roles")
    form_id = "roles-form"
    url_name = "tenants:user-roles"
    submit_label = "Save roles"

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"Roles of {self.subject.get_username()}"

    def get_form(self, data: Any = None) -> UserRolesForm:
        return roles_form(self.request.user, self.subject, data)

    def perform(self, form: UserRolesForm) -> Any:
        viewer, user = self.request.user, self.subject
        untouchable = roles.user_roles(user) - set(assignable_roles(viewer))
        wanted = set(form.cleaned_data["roles"]) | untouchable
        try:
            roles.user_roles_set(user=user, roles=sorted(wanted), actor=viewer, source="console")
        except PermissionDenied as exc:
            raise ValidationError({"roles": str(exc)}) from exc
        messages.success(self.request, f"Roles of {user.get_username()} saved.")
        return user


class UserMembershipView(UserFormView):
    """Give the user a role on one tenant the viewer manages, or take it away."""

    form_id = "membership-form"
    url_name = "tenants:user-memberships"
    submit_label = "Save tenant role"

    def has_permission(self) -> bool:
        return permissions.may(self.request.user, Tenant, "manage_members")

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"Tenant roles of {self.subject.get_username()}"

    def get_form(self, data: Any = None) -> MembershipForm:
        return MembershipForm(data, tenants=managed_tenants(self.request.user))

    def perform(self, form: MembershipForm) -> Any:
        tenant, role = form.cleaned_data["tenant"], form.cleaned_data["role"] or None
        try:
            roles.tenant_role_set(
                user=self.subject,
                tenant=tenant,
                role=role,
                actor=self.request.user,
                source="console",
            )
        except PermissionDenied as exc:
            raise ValidationError({"tenant": str(exc)}) from exc
        messages.success(self.request, f"Tenant role on {tenant.slug} saved.")
        return self.subject


class UserDedicatedPermissionView(UserFormView):
    """Grant or take back a dedicated permission: superusers only, each change audited."""

    form_class = DedicatedPermissionForm
    form_id = "dedicated-form"
    url_name = "tenants:user-permissions"
    submit_label = "Apply"

    def has_permission(self) -> bool:
        user = self.request.user
        return bool(user.is_active and user.is_superuser)

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"Dedicated permissions of {self.subject.get_username()}"

    def perform(self, form: DedicatedPermissionForm) -> Any:
        data = form.cleaned_data
        roles.dedicated_permission_set(
            user=self.subject,
            permission=data["permission"],
            granted=data["granted"],
            tenant=data["tenant"],
            actor=self.request.user,
            source="console",
        )
        verb = "granted" if data["granted"] else "taken back"
        messages.success(self.request, f"{data['permission']} {verb}.")
        return self.subject
