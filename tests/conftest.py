"""Shared fixtures: a small cast of users, admin tokens, API clients and model factories."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import factory
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.providers.models import ModelDeployment, Provider
from apps.tenants.models import ApiKey, Tenant
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


@pytest.fixture
def staff_user(db):
    """May use the management API (is_staff) without being a superuser."""
    return UserFactory(username="staff", is_staff=True)


@pytest.fixture
def plain_user(db):
    """Signed in, but not staff: the management API refuses them."""
    return UserFactory(username="plain")


@pytest.fixture
def admin_token(staff_user) -> str:
    """The plaintext of a personal admin token belonging to `staff_user`."""
    _, plaintext = admin_token_create(user=staff_user, name="tests")
    return plaintext


@pytest.fixture
def api_client() -> APIClient:
    """An anonymous management API client."""
    return APIClient()


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    """A management API client signed in (by session) as `staff_user`."""
    client = APIClient()
    client.force_login(staff_user)
    return client


@pytest.fixture
def token_client(admin_token) -> APIClient:
    """A management API client authenticated by `admin_token`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_token}")
    return client
