"""Single sign-on settings from the environment, and the discovery document's checks."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ImproperlyConfigured

from atp_site.auth import discovery
from atp_site.auth.config import oidc_from_env
from tests.e2e.conftest import free_port

ISSUER = "https://login.example.com/realms/atp"


@pytest.fixture
def oidc_env(monkeypatch):
    for name in (
        "ATP_OIDC_ROLE_MAPPING",
        "ATP_OIDC_TENANT_MAPPING",
        "ATP_OIDC_SCOPES",
        "ATP_OIDC_ROLES_FROM_CLAIMS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ATP_OIDC_ISSUER", ISSUER + "/")
    monkeypatch.setenv("ATP_OIDC_CLIENT_ID", "atp")
    monkeypatch.setenv("ATP_OIDC_CLIENT_SECRET", "s3cret")
    return monkeypatch


def test_unset_issuer_means_no_single_sign_on(monkeypatch):
    monkeypatch.delenv("ATP_OIDC_ISSUER", raising=False)
    assert oidc_from_env() is None


def test_defaults(oidc_env):
    config = oidc_from_env()
    assert config.issuer == ISSUER and config.origin == "https://login.example.com"
    assert config.scopes == "openid email profile"
    assert config.mapping.roles_claim == "groups"
    assert config.mapping.tenants_claim == "atp_tenants"
    assert config.username_claim == "preferred_username"
    assert config.name == "single sign-on"
    assert config.roles_from_claims is True


def test_everything_set(oidc_env, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    oidc_env.delenv("ATP_OIDC_CLIENT_SECRET")
    oidc_env.setenv("ATP_OIDC_CLIENT_SECRET_FILE", str(secret))
    oidc_env.setenv("ATP_OIDC_SCOPES", "openid  email groups")
    oidc_env.setenv("ATP_OIDC_NAME", "Acme SSO")
    oidc_env.setenv("ATP_OIDC_ROLES_CLAIM", "realm_access.roles")
    oidc_env.setenv("ATP_OIDC_ROLE_MAPPING", json.dumps({"admins": "super-admin"}))
    oidc_env.setenv("ATP_OIDC_TENANTS_CLAIM", "tenants")
    oidc_env.setenv("ATP_OIDC_TENANT_MAPPING", json.dumps({"acme": "acme:tenant-member"}))
    oidc_env.setenv("ATP_OIDC_USERNAME_CLAIM", "email")
    oidc_env.setenv("ATP_OIDC_ROLES_FROM_CLAIMS", "false")
    config = oidc_from_env()
    assert config.client_secret == "from-a-file"
    assert config.scopes == "openid email groups"
    assert config.name == "Acme SSO"
    assert config.mapping.roles_claim == "realm_access.roles"
    assert config.mapping.role_mapping == {"admins": ("super-admin",)}
    assert config.mapping.tenants_claim == "tenants"
    assert config.mapping.tenant_mapping == {"acme": (("acme", "tenant-member"),)}
    assert config.username_claim == "email"
    assert config.roles_from_claims is False


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ATP_OIDC_CLIENT_ID", "", "also set ATP_OIDC_CLIENT_ID"),
        ("ATP_OIDC_SCOPES", "email profile", "must include openid"),
        ("ATP_OIDC_ISSUER", "login.example.com", "issuer URL"),
        ("ATP_OIDC_ROLE_MAPPING", '{"admins": "root"}', "unknown role(s) root"),
    ],
)
def test_bad_settings_stop_the_start(oidc_env, name, value, message):
    oidc_env.setenv(name, value)
    with pytest.raises(ImproperlyConfigured) as error:
        oidc_from_env()
    assert message in str(error.value)


def test_settings_refuse_an_unknown_role_at_import(oidc_env):
    """The whole settings module, as a server would load it."""
    import subprocess
    import sys

    oidc_env.setenv("ATP_OIDC_ROLE_MAPPING", '{"admins": "god"}')
    result = subprocess.run(
        [sys.executable, "-c", "import atp_site.settings"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ATP_OIDC_ROLE_MAPPING: 'admins' maps to unknown role(s) god" in result.stderr


# --- discovery ----------------------------------------------------------------------------------


class _Discovery(BaseHTTPRequestHandler):
    document: dict = {}
    hits = 0

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).hits += 1
        if self.path != "/o/.well-known/openid-configuration":
            self.send_error(404)
            return
        body = json.dumps(self.document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def provider():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Discovery)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    issuer = f"http://127.0.0.1:{server.server_port}/o"
    _Discovery.hits = 0
    _Discovery.document = {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/authorize/",
        "token_endpoint": issuer + "/token/",
        "jwks_uri": issuer + "/jwks/",
        "userinfo_endpoint": issuer + "/userinfo/",
        "end_session_endpoint": issuer + "/logout/",
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    yield issuer
    server.shutdown()
    server.server_close()
    discovery.forget()


def test_discovery_reads_the_endpoints_once(provider, settings, oidc_env):
    oidc_env.setenv("ATP_OIDC_ISSUER", provider)
    settings.ATP_OIDC = oidc_from_env()
    discovery.forget()
    meta = discovery.metadata()
    assert meta.token_endpoint == provider + "/token/"
    assert meta.end_session_endpoint == provider + "/logout/"
    discovery.check_at_startup()
    discovery.metadata()
    assert _Discovery.hits == 1


def test_an_unreachable_provider_is_a_clear_start_up_error(settings, oidc_env):
    oidc_env.setenv("ATP_OIDC_ISSUER", f"http://127.0.0.1:{free_port()}/o")
    settings.ATP_OIDC = oidc_from_env()
    discovery.forget()
    with pytest.raises(ImproperlyConfigured, match="could not be read") as error:
        discovery.check_at_startup()
    assert "ATP_OIDC_ISSUER" in str(error.value)


def test_a_provider_announcing_another_issuer_is_refused(provider):
    _Discovery.document["issuer"] = "https://elsewhere.example.com"
    with pytest.raises(ImproperlyConfigured, match="names the issuer"):
        discovery.fetch(provider, timeout=5)


def test_a_provider_without_rs256_is_refused(provider):
    _Discovery.document["id_token_signing_alg_values_supported"] = ["HS256"]
    with pytest.raises(ImproperlyConfigured, match="RS256"):
        discovery.fetch(provider, timeout=5)


def test_nothing_is_fetched_without_single_sign_on(settings):
    settings.ATP_OIDC = None
    discovery.forget()
    discovery.check_at_startup()
