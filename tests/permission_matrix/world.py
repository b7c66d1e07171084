"""The world the permission matrix runs in: two tenants, one of everything, and the roles.

`acme` is the tenant the per-tenant role was granted; `globex` is one it was not. Every
role's user has an admin token of its own, and `outsider` has one nobody else may touch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from apps.audit.bodies import exchange_row
from apps.audit.models import AuditEvent, RetentionPolicy, StoredExchange
from apps.audit.retention import retention_policy_save
from apps.audit.services import audit_record
from apps.providers.models import ModelDeployment, Provider
from apps.providers.services import deployment_create, provider_create
from apps.routing.models import RequestLog, Route
from apps.routing.route_services import route_create
from apps.tenants.models import AdminToken, ApiKey, Tenant
from apps.tenants.permissions import (
    AUDIT_TENANT,
    CHANGE_TENANT,
    EXPORT_TENANT_SUBJECTS,
    MANAGE_TENANT_KEYS,
    MANAGE_TENANT_RETENTION,
    MANAGER_PERMISSIONS,
    VIEW_TENANT,
    VIEW_TENANT_BODIES,
    VIEWER_PERMISSIONS,
)
from apps.tenants.services import admin_token_create, api_key_create, tenant_create

# The columns of every row in rows.py, in this order.
ROLES = ("anonymous", "staff", "viewer", "tenant", "manager", "superuser")

# What the per-tenant role holds on acme (django-guardian object permissions).
TENANT_ROLE = (
    VIEW_TENANT,
    CHANGE_TENANT,
    MANAGE_TENANT_KEYS,
    MANAGE_TENANT_RETENTION,
    AUDIT_TENANT,
    VIEW_TENANT_BODIES,
    EXPORT_TENANT_SUBJECTS,
)

SUBJECT = "user-42"


@dataclass
class World:
    acme: Tenant
    globex: Tenant
    key_a: ApiKey
    key_b: ApiKey
    provider: Provider
    deployment: ModelDeployment
    route: Route
    event_a: AuditEvent
    event_b: AuditEvent
    event_none: AuditEvent
    exchange_a: StoredExchange
    exchange_b: StoredExchange
    policy_a: RetentionPolicy
    policy_b: RetentionPolicy
    policy_all: RetentionPolicy
    policy_audit: RetentionPolicy
    users: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, tuple[AdminToken, str]] = field(default_factory=dict)

    def user(self, role: str) -> Any:
        return self.users.get(role)

    def own_token(self, role: str) -> AdminToken:
        """The admin token of the role's user (anonymous: somebody else's)."""
        return self.tokens.get(role, self.tokens["outsider"])[0]

    def client(self, role: str) -> APIClient:
        """How each role calls: a session, or (the manager) its admin token."""
        client = APIClient()
        if role == "manager":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.tokens[role][1]}")
        elif role != "anonymous":
            client.force_login(self.users[role])
        return client


def _global(user: Any, names: frozenset[str] | tuple[str, ...]) -> None:
    for name in sorted(names):
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


def _stored(tenant: Tenant, request_id: str) -> StoredExchange:
    row = exchange_row(
        {
            "request_id": request_id,
            "tenant_id": tenant.pk,
            "end_user": SUBJECT,
            "endpoint": "chat.completions",
            "model": "m",
            "http_status": 200,
            "created_at": timezone.now(),
        },
        {"messages": [{"role": "user", "content": f"prompt of {request_id}"}]},
        {"choices": [{"message": {"content": "answer"}}]},
    )
    return StoredExchange.objects.create(**row)


def _policy(tenant: Tenant | None, classification: str, days: int) -> RetentionPolicy:
    return retention_policy_save(
        policy=RetentionPolicy(
            tenant_id=tenant.pk if tenant else None, classification=classification, days=days
        )
    )


def build_world() -> World:
    """Everything the rows address, made through the services where there is one."""
    users_model = get_user_model()
    acme = tenant_create(slug="acme", name="Acme")
    globex = tenant_create(slug="globex", name="Globex")
    provider = provider_create(
        name="upstream",
        kind=Provider.Kind.OPENAI_COMPATIBLE,
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-matrix-0123456789",
    )
    for tenant, request_id in ((acme, "r-acme"), (globex, "r-globex")):
        RequestLog.objects.create(
            request_id=request_id,
            endpoint="chat.completions",
            tenant=tenant,
            end_user=SUBJECT,
            status=RequestLog.Status.SUCCESS,
            http_status=200,
            cost_usd=Decimal(0),
        )
    world = World(
        acme=acme,
        globex=globex,
        key_a=api_key_create(tenant=acme, name="key-a")[0],
        key_b=api_key_create(tenant=globex, name="key-b")[0],
        provider=provider,
        deployment=deployment_create(
            provider=provider,
            public_name="matrix-model",
            upstream_model="matrix-model",
            input_price=1,
            output_price=2,
        ),
        route=route_create(name="team/matrix"),
        event_a=audit_record(event_type="test.acme", action="write", tenant_id=acme.pk),
        event_b=audit_record(event_type="test.globex", action="write", tenant_id=globex.pk),
        event_none=audit_record(event_type="test.none", action="write"),
        exchange_a=_stored(acme, "r-acme"),
        exchange_b=_stored(globex, "r-globex"),
        policy_a=_policy(acme, "requests", 30),
        policy_b=_policy(globex, "requests", 30),
        policy_all=_policy(None, "bodies", 30),
        policy_audit=_policy(None, "internal", 400),
    )
    staff = {"is_staff": True}
    world.users = {
        "staff": users_model.objects.create_user("m-staff", **staff),
        "viewer": users_model.objects.create_user("m-viewer", **staff),
        "tenant": users_model.objects.create_user("m-tenant"),
        "manager": users_model.objects.create_user("m-manager", **staff),
        "superuser": users_model.objects.create_superuser("m-superuser"),
    }
    _global(world.users["viewer"], VIEWER_PERMISSIONS)
    _global(world.users["manager"], MANAGER_PERMISSIONS)
    for name in TENANT_ROLE:
        assign_perm(name, world.users["tenant"], acme)
    outsider = users_model.objects.create_user("m-outsider", is_staff=True)
    world.tokens = {
        role: admin_token_create(user=user, name=f"{role}-token")
        for role, user in {**world.users, "outsider": outsider}.items()
    }
    return world
