"""A server configured for single sign-on does not start when its provider is unreachable."""

from __future__ import annotations

import os

import pytest

from tests.e2e.conftest import free_port, start_server

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


def test_an_unreachable_provider_stops_the_server_with_a_clear_message(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("ATP_")
    }
    issuer = f"http://127.0.0.1:{free_port()}/o"
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "atp_site.settings",
            "ATP_DATA_DIR": str(tmp_path),
            "ATP_LOCAL_BEAT": "false",
            "ATP_OIDC_ISSUER": issuer,
            "ATP_OIDC_CLIENT_ID": "atp",
            "ATP_OIDC_CLIENT_SECRET": "s3cret",
        }
    )
    with pytest.raises(RuntimeError, match="exited at start-up") as error:
        start_server(env, tmp_path)
    message = str(error.value)
    assert f"ATP_OIDC_ISSUER is set to '{issuer}'" in message
    assert f"{issuer}/.well-known/openid-configuration could not be read" in message
    assert "s3cret" not in message
