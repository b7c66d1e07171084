"""Django admin for policies: raw data and break-glass; writes go through the services, so
they are validated, audited and reach the gateway's next snapshot."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.policies import services
from apps.policies.models import Policy
from apps.tenants.admin import adopt

EDITABLE = ("description", "enabled", "mode", "priority", "scope", "rules")


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "tenant", "enabled", "mode", "priority", "version", "updated_at")
    list_filter = ("enabled", "mode")
    search_fields = ("name", "description", "tenant__slug")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)
    readonly_fields = ("version", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Policy | None = None):
        # A policy's tenant is fixed once made (as in the API and the services).
        return (*self.readonly_fields, "tenant") if obj is not None else self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: Policy, form: forms.ModelForm, change: bool
    ) -> None:
        data = form.cleaned_data
        fields = {f: data[f] for f in EDITABLE if f in data}
        if change:
            services.policy_update(policy=obj, name=data.get("name", obj.name), **fields)
        else:
            adopt(
                obj, services.policy_create(tenant=data.get("tenant"), name=data["name"], **fields)
            )

    def delete_model(self, request: HttpRequest, obj: Policy) -> None:
        services.policy_delete(policy=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Policy]) -> None:
        for policy in queryset:
            services.policy_delete(policy=policy)
