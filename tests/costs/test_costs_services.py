"""Costs services: clashes are named, secret changes are audited without the secret."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditEvent
from apps.costs import services
from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db


def test_a_second_rate_limit_on_one_target_is_a_unique_clash():
    tenant = Tenant.objects.create(slug="acme", name="Acme")
    services.rate_limit_create(scope="tenant", tenant=tenant, requests_per_minute=10)
    with pytest.raises(ValidationError) as caught:
        services.rate_limit_create(scope="tenant", tenant=tenant, tokens_per_minute=10)
    error = caught.value.error_dict["scope"][0]
    assert error.code == "unique" and "tenant acme" in error.message


def test_replacing_only_a_webhook_secret_is_audited_without_the_secret():
    notifier = services.notifier_create(
        name="ops", kind="webhook", target="https://hooks.example.com/atp", secret="first-secret"
    )
    services.notifier_update(notifier=notifier, secret="second-secret")
    event = AuditEvent.objects.filter(event_type="notifier.updated").get()
    assert event.data["changed"] == ["secret_replaced"]
    text = str(event.data) + str(event.before) + str(event.after)
    assert "first-secret" not in text and "second-secret" not in text
