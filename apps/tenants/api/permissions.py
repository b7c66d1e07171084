"""The management API's permission check, built on apps.tenants.permissions.

Status rules: 401 without credentials, 403 without the permission for the action, 404 for an
object outside the tenants the caller may see (the viewsets' querysets are narrowed by
`restrict`, so such an object is simply not found).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.tenants import permissions, selectors
from apps.tenants.models import Tenant

# Viewset actions and the permission action each one needs.
VIEWSET_ACTIONS = {
    "list": "view",
    "retrieve": "view",
    "metadata": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}


def view_permission_action(view: Any) -> str | None:
    """The permission action `view` needs for this request, or None when it declares none.

    Viewsets map their action through VIEWSET_ACTIONS (a custom @action such as `revoke`
    needs a permission of its own name); plain APIViews set `permission_action`.
    """
    explicit = getattr(view, "permission_action", None)
    if explicit:
        return explicit
    action = getattr(view, "action", None)
    if action is None:
        return None
    return VIEWSET_ACTIONS.get(action, action)


class ActionPermission(BasePermission):
    """The caller needs the permission for the view's action on its `permission_model`.

    Views declaring no model or action are open to superusers only, so an endpoint added
    without thinking about permissions fails closed.
    """

    message = "You do not have permission to perform this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        model: type[Model] | None = getattr(view, "permission_model", None)
        action = view_permission_action(view)
        if request.method.lower() not in view.http_method_names or (
            action is None and getattr(view, "action_map", None) is not None
        ):
            # A method the view does not offer: let DRF answer 405.
            return True
        if model is None or action is None:
            return bool(user.is_active and user.is_superuser)
        return permissions.may(user, model, action)

    def has_object_permission(self, request: Request, view: Any, obj: Model) -> bool:
        action = view_permission_action(view)
        return action is not None and permissions.may_on(request.user, obj, action)


class ScopedQuerysetMixin:
    """get_queryset() narrowed to what the caller may see (and act on) for this action.

    Subclasses implement `base_queryset()` (from a selector). An object the caller may view
    but not, say, change is found (and then refused with 403 by `has_object_permission`);
    one they may do neither with is not found (404).
    """

    permission_model: type[Model]
    request: Request

    def base_queryset(self) -> QuerySet:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet:
        queryset = self.base_queryset()
        user = self.request.user
        action = view_permission_action(self) or "view"
        visible = permissions.restrict(queryset, user, "view")
        if action != "view":
            visible = visible | permissions.restrict(queryset, user, action)
        return visible


def tenant_for_action(
    user: Any, model: type[Model], action: str, value: str, *, field: str = "tenant"
) -> Tenant:
    """The tenant named by `value` (slug or id) in a request, if `user` may `action` there.

    A tenant that does not exist and one the caller may not see at all read the same: a 400
    naming `field`, so existence never leaks. One the caller may see but not act on is a 403.
    """
    tenant = selectors.tenant_resolve(value) if value else None
    if tenant is None or not (
        permissions.may_on(user, tenant, "view")
        or permissions.may_for_tenant(user, model, action, tenant.pk)
    ):
        raise ValidationError({field: [f"No tenant '{value}'."]})
    if not permissions.may_for_tenant(user, model, action, tenant.pk):
        raise PermissionDenied(f"You may not do this for tenant '{tenant.slug}'.")
    return tenant
