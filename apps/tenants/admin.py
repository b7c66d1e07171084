"""Django admin for tenants, API keys and admin tokens; every write goes through services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.tenants import services
from apps.tenants.models import AdminToken, ApiKey, Tenant
from apps.tenants.permissions import ADD_ADMIN_TOKEN_FOR_OTHERS


def adopt(target: Model, created: Model) -> None:
    """Make the admin's form instance the row a service created.

    The admin keeps using the instance it passed to `save_model` for its log entry,
    message and redirect, so it must carry the created row's primary key and values.
    """
    target.__dict__.update(created.__dict__)


class RevokedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "revoked"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("no", "Live"), ("yes", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "is_active", "store_bodies", "cost_mode", "created_at"]
    list_filter = ["is_active", "store_bodies", "cost_mode"]
    search_fields = ["slug", "name"]
    readonly_fields = ["id", "created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: Tenant, form: forms.ModelForm, change: bool):
        data = {f: form.cleaned_data[f] for f in services.TENANT_FIELDS if f in form.cleaned_data}
        if change:
            services.tenant_update(tenant=obj, **data)
        else:
            adopt(obj, services.tenant_create(**data))

    def delete_model(self, request: HttpRequest, obj: Tenant) -> None:
        services.tenant_delete(tenant=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            services.tenant_delete(tenant=tenant)


class ApiKeyForm(forms.ModelForm):
    """Repeats the service's input checks so mistakes come back as form errors, not 500s."""

    class Meta:
        model = ApiKey
        fields = ["tenant", "name", "allowed_models", "expires_at"]

    def clean_allowed_models(self) -> list[str]:
        value = self.cleaned_data.get("allowed_models") or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise forms.ValidationError('A list of model names, e.g. ["gpt-4o-mini"].')
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        tenant = cleaned.get("tenant") or getattr(self.instance, "tenant", None)
        name = cleaned.get("name")
        if tenant is not None and name:
            clash = ApiKey.objects.filter(tenant=tenant, name=name, revoked_at__isnull=True)
            if clash.exclude(pk=self.instance.pk).exists():
                self.add_error("name", "This tenant already has a live key with this name.")
        expires_at = cleaned.get("expires_at")
        if self.instance._state.adding and expires_at and expires_at <= timezone.now():
            self.add_error("expires_at", "Must be in the future.")
        return cleaned


def _show_plaintext(request: HttpRequest, what: str, plaintext: str) -> None:
    messages.success(request, f"{what}: {plaintext} — copy it now, it will not be shown again.")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "tenant", "prefix", "expires_at", "revoked_at", "created_at"]
    list_filter = [RevokedFilter, "expires_at", "created_at"]
    search_fields = ["name", "prefix", "tenant__slug", "tenant__name"]
    list_select_related = ["tenant"]
    raw_id_fields = ["tenant"]
    actions = ["revoke_keys", "rotate_keys"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return ["tenant", "name", "allowed_models", "expires_at"]
        return [
            "id",
            "tenant",
            "name",
            "prefix",
            "allowed_models",
            "expires_at",
            "revoked_at",
            "created_at",
            "created_by",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        return ["id", "tenant", "prefix", "revoked_at", "created_at", "created_by"]

    def has_change_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        # Revoked keys are history: view them, never edit them.
        if obj is not None and obj.is_revoked:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        # Keys are revoked, not deleted, so request logs can always name them.
        return False

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool):
        data = form.cleaned_data
        if change:
            fields = {f: data[f] for f in ("name", "allowed_models", "expires_at") if f in data}
            services.api_key_update(api_key=obj, **fields)
            return
        api_key, plaintext = services.api_key_create(
            tenant=data["tenant"],
            name=data["name"],
            allowed_models=data.get("allowed_models") or [],
            expires_at=data.get("expires_at"),
            created_by=request.user,
        )
        adopt(obj, api_key)
        _show_plaintext(request, f"New key for {api_key.tenant}", plaintext)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tenants.revoke_apikey")

    def has_rotate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tenants.rotate_apikey")

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=api_key)
            count += 1
        messages.success(request, f"Revoked {count} key(s).")

    @admin.action(description="Rotate selected keys (revoke and replace)", permissions=["rotate"])
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset.filter(revoked_at__isnull=True).select_related("tenant"):
            new_key, plaintext = services.api_key_rotate(api_key=api_key, created_by=request.user)
            _show_plaintext(request, f"Replacement for {new_key.tenant}/{new_key.name}", plaintext)


class AdminTokenForm(forms.ModelForm):
    """A token acts as its user: making one for somebody else needs the dedicated permission."""

    request: HttpRequest | None = None

    class Meta:
        model = AdminToken
        fields = ["user", "name", "expires_at"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        user = cleaned.get("user")
        me = self.request.user if self.request else None
        if (
            user is not None
            and me is not None
            and user.pk != me.pk
            and not me.has_perm(ADD_ADMIN_TOKEN_FOR_OTHERS)
        ):
            self.add_error("user", "You may create admin tokens only for yourself.")
        expires_at = cleaned.get("expires_at")
        if expires_at and expires_at <= timezone.now():
            self.add_error("expires_at", "Must be in the future.")
        return cleaned


@admin.register(AdminToken)
class AdminTokenAdmin(admin.ModelAdmin):
    form = AdminTokenForm
    list_display = ["name", "user", "prefix", "expires_at", "revoked_at", "last_used_at"]
    list_filter = [RevokedFilter, "expires_at"]
    search_fields = ["name", "prefix", "user__username", "user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    actions = ["revoke_tokens"]

    def get_fields(self, request: HttpRequest, obj: AdminToken | None = None) -> list[str]:
        if obj is None:
            return ["user", "name", "expires_at"]
        return [
            "id",
            "user",
            "name",
            "prefix",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "created_at",
        ]

    def get_form(self, request: HttpRequest, obj: AdminToken | None = None, **kwargs: Any):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"user": request.user.pk, **super().get_changeform_initial_data(request)}

    def has_change_permission(self, request: HttpRequest, obj: AdminToken | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AdminToken | None = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: AdminToken, form: forms.ModelForm, change: bool
    ) -> None:
        data = form.cleaned_data
        token, plaintext = services.admin_token_create(
            user=data["user"],
            name=data["name"],
            expires_at=data.get("expires_at"),
            by=request.user,
        )
        adopt(obj, token)
        _show_plaintext(request, f"New admin token for {token.user}", plaintext)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tenants.revoke_admintoken")

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[AdminToken]) -> None:
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            services.admin_token_revoke(token=token)
            count += 1
        messages.success(request, f"Revoked {count} token(s).")
