"""Keys supplied in configuration (a literal or env:NAME) must be strong; the error names the key."""

from __future__ import annotations

import secrets

import pytest
import yaml

from apps.tenants.keys import generate_api_key, key_strength_error
from apps.tenants.models import ApiKey
from atp_site.lib.config_file import ConfigError, apply_config

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("atp_short-key-1", "at least 32"),
        ("a" * 40, "mix at least two"),
        ("1" * 40, "mix at least two"),
        ("password1234password1234password", "repeats itself"),
        ("abcdefghijklmnopqrstuvwxyz0123456789", "counts up or down"),
        ("Aa" * 20, "too predictable"),
    ],
)
def test_weak_keys_are_refused_with_the_reason(key, reason):
    problem = key_strength_error(key)
    assert problem and reason in problem


def test_random_keys_pass():
    for _ in range(200):
        assert key_strength_error(generate_api_key()) is None
        assert key_strength_error(secrets.token_hex(32)) is None
        assert key_strength_error(secrets.token_urlsafe(24)) is None


def _document(key: str) -> dict:
    return yaml.safe_load(
        f"""
        version: 1
        tenants:
          - slug: acme
            api_keys:
              - name: good
                key: atp_{secrets.token_urlsafe(32)}
              - name: ci
                key: {key}
        """
    )


def test_a_weak_literal_is_refused_naming_the_key_and_nothing_is_applied():
    with pytest.raises(ConfigError) as exc:
        apply_config(_document("ci-key-ci-key-ci-key-ci-key-ci-key"))
    assert str(exc.value).startswith("tenants[0].api_keys[1].key: key 'ci' is too predictable")
    assert not ApiKey.objects.exists()


def test_a_weak_key_from_the_environment_is_refused_too(monkeypatch):
    monkeypatch.setenv("ACME_CI_KEY", "0000000000000000000000000000000000000000")
    with pytest.raises(ConfigError, match=r"api_keys\[1\]\.key: key 'ci' must mix"):
        apply_config(_document("env:ACME_CI_KEY"))


def test_a_strong_key_is_applied():
    report = apply_config(_document(secrets.token_hex(32)))
    assert [c.action for c in report.changes if c.kind == "api key"] == ["created", "created"]
