"""`manage.py atp_bootstrap`: the zero-configuration start."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from apps.providers.models import ModelDeployment, Provider
from apps.tenants.keys import hash_key
from apps.tenants.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path, monkeypatch):
    settings.DATA_DIR = tmp_path
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OLLAMA_HOST"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run() -> str:
    out = io.StringIO()
    call_command("atp_bootstrap", stdout=out)
    return out.getvalue()


def test_first_run_creates_admin_simulator_and_demo_key(data_dir):
    output = run()
    password = (data_dir / "admin_password").read_text()
    key = (data_dir / "demo_api_key").read_text()
    assert password in output and key in output
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password(password)
    assert ApiKey.objects.get(key_hash=hash_key(key)).tenant.slug == "demo"
    assert Provider.objects.get().kind == "simulator"
    names = set(ModelDeployment.objects.values_list("public_name", flat=True))
    assert names == {"sim-fast", "sim-smart", "sim-embed"}
    assert oct((data_dir / "demo_api_key").stat().st_mode & 0o777) == "0o600"


def test_second_run_changes_nothing(data_dir):
    run()
    before = (
        list(ApiKey.objects.values_list("id", "key_hash")),
        list(ModelDeployment.objects.values_list("id", "updated_at")),
    )
    run()
    after = (
        list(ApiKey.objects.values_list("id", "key_hash")),
        list(ModelDeployment.objects.values_list("id", "updated_at")),
    )
    assert before == after
    assert get_user_model().objects.filter(is_superuser=True).count() == 1


def test_provider_variables_add_real_providers_by_reference(data_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-looking-secret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:11434")
    output = run()
    openai = Provider.objects.get(name="openai")
    assert openai.api_key_env == "OPENAI_API_KEY" and not openai.api_key_encrypted
    assert Provider.objects.get(name="anthropic").api_key_env == "ANTHROPIC_API_KEY"
    assert Provider.objects.get(name="ollama").base_url == "http://127.0.0.1:11434"
    assert "openai/gpt-4o-mini" in output
    assert "sk-real-looking-secret" not in output
