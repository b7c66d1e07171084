"""`manage.py atp_rekey`: rotating ATP_ENCRYPTION_KEYS re-encrypts what is stored, so the
old key can be retired."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.audit.models import AuditEvent, StoredExchange
from apps.providers.models import Provider
from atp_site.lib import crypto

pytestmark = pytest.mark.django_db

OLD = "old-encryption-key-material-0123456789abcdef"
NEW = "new-encryption-key-material-fedcba9876543210"
STRAY = "a-key-this-deployment-never-had-000000000000"


def _stored(settings):
    settings.ATP_ENCRYPTION_KEYS = [OLD]
    provider = Provider(name="openai-main", kind="openai", base_url="https://api.example.com")
    provider.set_api_key("sk-upstream-secret")
    provider.save()
    exchange = StoredExchange.objects.create(
        request_id="req_1",
        request_encrypted=crypto.encrypt('{"messages": []}'),
        response_encrypted=crypto.encrypt('{"choices": []}'),
    )
    return provider, exchange


def test_after_rekeying_the_new_key_alone_decrypts_everything(settings):
    provider, exchange = _stored(settings)
    settings.ATP_ENCRYPTION_KEYS = [NEW, OLD]
    out = StringIO()
    call_command("atp_rekey", stdout=out)
    assert "re-encrypted 1 provider credentials and 1 stored exchanges" in out.getvalue()
    settings.ATP_ENCRYPTION_KEYS = [NEW]  # the old key retired
    provider.refresh_from_db()
    exchange.refresh_from_db()
    assert crypto.decrypt(provider.api_key_encrypted) == "sk-upstream-secret"
    assert crypto.decrypt(exchange.request_encrypted) == '{"messages": []}'
    assert crypto.decrypt(exchange.response_encrypted) == '{"choices": []}'
    event = AuditEvent.objects.get(event_type="security.reencrypted")
    assert event.data["providers"] == 1 and event.data["stored_bodies"] == 1
    assert "sk-upstream-secret" not in str(event.data) and OLD not in str(event.data)
    # A second run finds nothing left to do.
    settings.ATP_ENCRYPTION_KEYS = [NEW, OLD]
    again = StringIO()
    call_command("atp_rekey", stdout=again)
    assert "re-encrypted 0 provider credentials and 0 stored exchanges" in again.getvalue()


def test_a_dry_run_writes_nothing(settings):
    provider, _ = _stored(settings)
    before = provider.api_key_encrypted
    settings.ATP_ENCRYPTION_KEYS = [NEW, OLD]
    out = StringIO()
    call_command("atp_rekey", "--dry-run", stdout=out)
    assert "would re-encrypt 1 provider credentials" in out.getvalue()
    provider.refresh_from_db()
    assert provider.api_key_encrypted == before
    assert not AuditEvent.objects.filter(event_type="security.reencrypted").exists()


def test_a_value_no_key_decrypts_is_reported_and_the_rest_rekeyed(settings):
    provider, _ = _stored(settings)
    settings.ATP_ENCRYPTION_KEYS = [STRAY]
    orphan = StoredExchange.objects.create(
        request_id="req_2", request_encrypted=crypto.encrypt("{}"), response_encrypted=""
    )
    settings.ATP_ENCRYPTION_KEYS = [NEW, OLD]
    err = StringIO()
    with pytest.raises(CommandError, match="1 values no configured key decrypts"):
        call_command("atp_rekey", stdout=StringIO(), stderr=err)
    assert f"stored exchange {orphan.pk}" in err.getvalue()
    settings.ATP_ENCRYPTION_KEYS = [NEW]
    provider.refresh_from_db()
    assert crypto.decrypt(provider.api_key_encrypted) == "sk-upstream-secret"
    event = AuditEvent.objects.get(event_type="security.reencrypted")
    assert event.outcome == AuditEvent.Outcome.FAILURE and event.data["unreadable"] == 1
