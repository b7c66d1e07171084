"""The world the permission matrix runs in: two tenants, one of everything, and the roles.

`acme` is the tenant the per-tenant roles are held on; `globex` is one they are not. Every
role's user is made the way a real one is (put in the role's group, given the tenant role
through apps.tenants.roles), has an admin token of its own, and `outsider` has one nobody
else may touch. A console_*.py module beside this one may define `extend_world(world)` to add
the objects its rows address (in `world.extra`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.bodies import exchange_row
from apps.audit.models import AuditEvent, RetentionPolicy, StoredExchange
from apps.audit.retention import retention_policy_save
from apps.audit.services import audit_record
from apps.providers.models import ModelDeployment, Provider
from apps.providers.services import deployment_create, provider_create
from apps.routing.models import RequestLog, Route
from apps.routing.route_services import route_create
from apps.tenants import roles
from apps.tenants.models import AdminToken, ApiKey, Project, Tenant
from apps.tenants.permissions import MANAGER_PERMISSIONS
from apps.tenants.services import admin_token_create, api_key_create, project_create, tenant_create

# The columns of every row in rows.py, in this order.
ROLES = (
    "anonymous",
    "staff",
    "read_only",
    "tenant_member",
    "tenant_admin",
    "auditor",
    "cost_admin",
    "security_admin",
    "platform_admin",
    "manager",
    "super_admin",
    "superuser",
)

# The global role (group) of each column that has one.
GLOBAL_ROLE = {
    "read_only": roles.READ_ONLY,
    "auditor": roles.AUDITOR,
    "cost_admin": roles.COST_ADMIN,
    "security_admin": roles.SECURITY_ADMIN,
    "platform_admin": roles.PLATFORM_ADMIN,
    "super_admin": roles.SUPER_ADMIN,
}
# The tenant role of each column that has one, held on acme only.
TENANT_ROLE = {"tenant_member": roles.TENANT_MEMBER, "tenant_admin": roles.TENANT_ADMIN}
# The group tenants/0006 gives staff users on an upgrade.
MANAGERS_GROUP = "atp-managers"

SUBJECT = "user-42"


@dataclass
class World:
    acme: Tenant
    globex: Tenant
    key_a: ApiKey
    key_b: ApiKey
    project_a: Project
    project_b: Project
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
    extra: dict[str, Any] = field(default_factory=dict)  # what console_*.extend_world adds

    def user(self, role: str) -> Any:
        return self.users.get(role)

    def own_token(self, role: str) -> AdminToken:
        """The admin token of the role's user (anonymous: somebody else's)."""
        return self.tokens.get(role, self.tokens["outsider"])[0]

    def client(self, role: str, *, console: bool = False) -> APIClient:
        """How each role calls: a session, or (the manager, on the API) its admin token.

        Console pages are always called with a session, as a browser would.
        """
        client = APIClient()
        if role == "manager" and not console:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.tokens[role][1]}")
        elif role != "anonymous":
            client.force_login(self.users[role])
        return client


def _managers_group() -> Group:
    """`atp-managers` as tenants/0006 makes it (on a fresh install it does not exist)."""
    group, _ = Group.objects.get_or_create(name=MANAGERS_GROUP)
    for name in sorted(MANAGER_PERMISSIONS):
        app_label, codename = name.split(".")
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return group


def _console_modules() -> list[Any]:
    # rows.py imports them, each importing rows.py: let rows.py come first.
    importlib.import_module(f"{__package__}.rows")
    here = Path(__file__).parent
    return [
        importlib.import_module(f"{__package__}.{path.stem}")
        for path in sorted(here.glob("console_*.py"))
    ]


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
        project_a=project_create(tenant=acme, slug="web"),
        project_b=project_create(tenant=globex, slug="web"),
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
    world.users = {"staff": users_model.objects.create_user("m-staff", is_staff=True)}
    for column, role in GLOBAL_ROLE.items():
        user = users_model.objects.create_user(f"m-{column}")
        roles.user_roles_set(user=user, roles=[role], actor=None, source="cli")
        world.users[column] = user
    for column, role in TENANT_ROLE.items():
        user = users_model.objects.create_user(f"m-{column}")
        roles.tenant_role_set(user=user, tenant=acme, role=role, actor=None, source="cli")
        world.users[column] = user
    world.users["manager"] = users_model.objects.create_user("m-manager", is_staff=True)
    world.users["manager"].groups.add(_managers_group())
    world.users["superuser"] = users_model.objects.create_superuser("m-superuser")
    world.users = {role: world.users[role] for role in ROLES if role != "anonymous"}
    outsider = users_model.objects.create_user("m-outsider", is_staff=True)
    world.tokens = {
        role: admin_token_create(user=user, name=f"{role}-token")
        for role, user in {**world.users, "outsider": outsider}.items()
    }
    world.users["outsider"] = outsider
    for module in _console_modules():
        extend = getattr(module, "extend_world", None)
        if extend is not None:
            extend(world)
    return world
