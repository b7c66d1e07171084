"""Shared fixtures: a small cast of users, admin tokens, API clients and model factories."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import factory
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from apps.providers.models import ModelDeployment, Provider
from apps.tenants.models import ApiKey, Tenant
from apps.tenants.permissions import MANAGER_PERMISSIONS, VIEWER_PERMISSIONS
from apps.tenants.services import admin_token_create, api_key_create


@pytest.fixture(autouse=True, scope="session")
def _no_shared_journal():
    """The process-wide write-behind queues keep no Redis journal in tests: rows a test
    drops on purpose must not be recovered into a later session's database. The journal
    has its own tests (tests/routing/test_journal.py) with queues of their own."""
    from django.conf import settings

    settings.ATP_WRITE_BEHIND_JOURNAL = False
    yield


@pytest.fixture(autouse=True, scope="session")
def _private_spill_dir(tmp_path_factory):
    """Rows the write-behind queues spill or set aside during tests (at interpreter exit,
    the test database is gone) land in a directory of this session, never in a data
    directory a development server replays from."""
    from django.conf import settings

    settings.DATA_DIR = tmp_path_factory.mktemp("atp-data")
    yield


@pytest.fixture(autouse=True, scope="session")
def _flush_through_the_audit_escape():
    """Let the test database's table flush empty the audit tables.

    Transactional tests end with Django's `flush` (TRUNCATE on PostgreSQL, DELETE on
    SQLite), which the audit tables' append-only triggers reject; the flush runs inside
    the same escape the retention purge uses (apps.audit.guards).
    """
    from django.db.backends.base.operations import BaseDatabaseOperations

    from apps.audit.guards import audit_escape

    original = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        with audit_escape(using=self.connection.alias):
            original(self, sql_list)

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    BaseDatabaseOperations.execute_sql_flush = original


@pytest.fixture(autouse=True)
def _audit_heads_of_this_test(settings, tmp_path):
    """Signed audit heads are kept outside the database; each test's go to its own file,
    as each test gets its own database."""
    settings.ATP_AUDIT_HEAD_FILE = tmp_path / "audit_heads.jsonl"
    settings.ATP_AUDIT_HEAD_SINK = ""


@pytest.fixture
def secrets_given(monkeypatch):
    """Every shared secret in the environment, so an in-process ASGI start-up passes the
    check that refuses to serve with DATABASE_URL set and a secret missing
    (atp_site.lib.startup; tests/site/test_startup_secrets.py tests the refusal)."""
    for name in (
        "ATP_SECRET_KEY",
        "ATP_ENCRYPTION_KEY",
        "ATP_AUDIT_SIGNING_KEY",
        "ATP_AUDIT_HEAD_KEY",
    ):
        monkeypatch.setenv(name, f"test-{name.lower()}")


# --- factories ------------------------------------------------------------------------------


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda t: t.slug.replace("-", " ").title())


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Provider

    name = factory.Sequence(lambda n: f"provider-{n}")
    kind = Provider.Kind.OPENAI_COMPATIBLE
    base_url = "http://127.0.0.1:9/v1"


class DeploymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelDeployment

    provider = factory.SubFactory(ProviderFactory)
    public_name = factory.Sequence(lambda n: f"model-{n}")
    upstream_model = factory.LazyAttribute(lambda d: d.public_name)
    input_price = Decimal("1.0")
    output_price = Decimal("2.0")
    capabilities = factory.LazyFunction(lambda: ["chat", "streaming"])


@pytest.fixture
def user_factory() -> type[UserFactory]:
    return UserFactory


@pytest.fixture
def tenant_factory() -> type[TenantFactory]:
    return TenantFactory


@pytest.fixture
def provider_factory() -> type[ProviderFactory]:
    return ProviderFactory


@pytest.fixture
def deployment_factory() -> type[DeploymentFactory]:
    return DeploymentFactory


@pytest.fixture
def api_key_factory(db) -> Callable[..., tuple[ApiKey, str]]:
    """Creates a key through the service (it alone knows how keys are hashed)."""
    counter = iter(range(1_000_000))

    def make(**kwargs: Any) -> tuple[ApiKey, str]:
        kwargs.setdefault("tenant", TenantFactory())
        kwargs.setdefault("name", f"key-{next(counter)}")
        return api_key_create(**kwargs)

    return make


# --- the cast -------------------------------------------------------------------------------
# Permissions, not is_staff, open the management API (apps.tenants.permissions): `staff_user`
# may enter the Django admin but holds no permission; `manager_user` holds what the upgrade
# gives staff (every management action but the dedicated ones); `viewer_user` only reads.


def grant_permissions(user, *names: str):
    """Give `user` global permissions by name (`app_label.codename`); returns the user."""
    for name in names:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    # has_perm() caches what a user holds on the instance.
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)
    return user


@pytest.fixture
def grant(db) -> Callable[..., Any]:
    """`grant(user, "app.codename", ...)`: give a user global permissions in a test."""
    return grant_permissions


@pytest.fixture
def staff_user(db):
    """A staff user (may open the Django admin) without any permission."""
    return UserFactory(username="staff", is_staff=True)


@pytest.fixture
def manager_user(db):
    """Staff holding every management permission except the dedicated ones."""
    return grant_permissions(
        UserFactory(username="manager", is_staff=True), *sorted(MANAGER_PERMISSIONS)
    )


@pytest.fixture
def viewer_user(db):
    """Staff holding the view permission of every management model."""
    return grant_permissions(
        UserFactory(username="viewer", is_staff=True), *sorted(VIEWER_PERMISSIONS)
    )


@pytest.fixture
def plain_user(db):
    """Signed in, not staff, no permission: the management API refuses them."""
    return UserFactory(username="plain")


@pytest.fixture
def admin_token(manager_user) -> str:
    """The plaintext of a personal admin token belonging to `manager_user`."""
    _, plaintext = admin_token_create(user=manager_user, name="tests")
    return plaintext


@pytest.fixture
def api_client() -> APIClient:
    """An anonymous management API client."""
    return APIClient()


def client_for(user) -> APIClient:
    """A management API client signed in (by session) as `user`."""
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    """A management API client signed in as `staff_user` (refused: no permission)."""
    return client_for(staff_user)


@pytest.fixture
def manager_client(manager_user) -> APIClient:
    """A management API client signed in (by session) as `manager_user`."""
    return client_for(manager_user)


@pytest.fixture
def viewer_client(viewer_user) -> APIClient:
    """A management API client signed in as `viewer_user`."""
    return client_for(viewer_user)


@pytest.fixture
def token_client(admin_token) -> APIClient:
    """A management API client authenticated by `admin_token` (the manager's)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_token}")
    return client


def pytest_collection_modifyitems(session, config, items):
    """The browser tests run last: Playwright's synchronous API keeps an event loop running in
    this thread for the rest of the session, where asyncio.run() and async tests cannot run.
    Last of them, the walk over every console page, which covers what the others did not."""
    browser = [item for item in items if "/tests/browser/" in str(item.path)]
    if browser:
        others = [item for item in items if "/tests/browser/" not in str(item.path)]
        walk = [item for item in browser if item.path.name == "test_every_page.py"]
        items[:] = others + [item for item in browser if item not in walk] + walk


@pytest.fixture
def eager_jobs():
    """Celery tasks run in process even when Redis (and so a broker) is configured."""
    from atp_site.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before
