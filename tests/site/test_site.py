"""Site-wide behaviour: health probe, landing page, request ids, settings readers."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from atp_site.lib import env


@pytest.mark.django_db
def test_health_probe_and_home_page(client, admin_user):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}
    assert resp.headers["X-Request-ID"].startswith("req_")
    assert client.get("/").status_code == 302  # the console asks to sign in first
    client.force_login(admin_user)
    resp = client.get("/")
    assert resp.status_code == 200 and b"/v1" in resp.content


@pytest.mark.django_db(transaction=True)  # the snapshot loads on the probe's own connection
def test_readiness_probe_checks_the_database_redis_and_records(client, settings):
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["status"] == "ok" and body["checks"]["database"] is True
    assert body["checks"]["migrations"] is True and body["checks"]["snapshot"] is True
    assert body["checks"]["records"] is True and body["spilling"] is False
    assert ("redis" in body["checks"]) is bool(settings.REDIS_URL)
    assert ("broker" in body["checks"]) is (
        bool(settings.REDIS_URL) and not settings.CELERY_TASK_ALWAYS_EAGER
    )


@pytest.mark.django_db(transaction=True)
def test_readiness_fails_while_migrations_are_pending(client, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    from atp_site import views

    real_plan = MigrationExecutor.migration_plan
    monkeypatch.setattr(views, "_migrated", False)
    # Pretend the latest migration of one app was never applied.
    monkeypatch.setattr(
        MigrationExecutor,
        "migration_plan",
        lambda self, targets, clean_start=False: real_plan(
            self, [("routing", "0001_initial")], clean_start
        ),
    )
    resp = client.get("/readyz")
    assert resp.status_code == 503, resp.content
    assert resp.json()["checks"]["migrations"] is False
    monkeypatch.undo()
    monkeypatch.setattr(views, "_migrated", False)
    assert client.get("/readyz").json()["checks"]["migrations"] is True


@pytest.mark.django_db(transaction=True)
def test_readiness_fails_while_the_snapshot_cannot_load(client, monkeypatch):
    from apps.routing import snapshot

    snapshot.holder.invalidate()

    def broken(version):
        raise RuntimeError("the configuration could not be read")

    monkeypatch.setattr(snapshot, "build_snapshot", broken)
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["checks"]["snapshot"] is False


@pytest.mark.django_db
def test_readiness_fails_while_requests_cannot_be_recorded(client, monkeypatch):
    from atp_site.lib import spill

    monkeypatch.setattr(spill.state, "refusing", True)
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["status"] == "unavailable"
    assert resp.json()["checks"]["records"] is False


@pytest.mark.django_db
def test_readiness_fails_when_redis_does_not_answer(client, settings):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["checks"]["redis"] is False


def test_callers_request_id_is_echoed_on_django_responses(client):
    resp = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    resp = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert resp.headers["X-Request-ID"].startswith("req_")


def test_openapi_schema_is_served_to_staff(admin_client):
    resp = admin_client.get("/api/v1/schema/")
    assert resp.status_code == 200
    assert b"/api/v1/providers/" in resp.content


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("FALSE", False), ("", True)])
def test_boolean_reader_accepts_only_true_or_false(monkeypatch, raw, expected):
    monkeypatch.setenv("ATP_X", raw)
    assert env.env_bool("ATP_X", True) is expected


@pytest.mark.parametrize("raw", ["yes", "1", "on"])
def test_boolean_reader_rejects_anything_else(monkeypatch, raw):
    monkeypatch.setenv("ATP_X", raw)
    with pytest.raises(ImproperlyConfigured, match="ATP_X"):
        env.env_bool("ATP_X", False)


def test_integer_reader_checks_type_and_minimum(monkeypatch):
    monkeypatch.setenv("ATP_N", "12")
    assert env.env_int("ATP_N", 1, minimum=1) == 12
    monkeypatch.setenv("ATP_N", "x")
    with pytest.raises(ImproperlyConfigured):
        env.env_int("ATP_N", 1)
    monkeypatch.setenv("ATP_N", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env.env_int("ATP_N", 1, minimum=1)


def test_secret_reader_prefers_the_file(monkeypatch, tmp_path):
    path = tmp_path / "secret"
    path.write_text("from-file\n")
    monkeypatch.setenv("ATP_S", "from-env")
    monkeypatch.setenv("ATP_S_FILE", str(path))
    assert env.env_secret("ATP_S") == "from-file"
    monkeypatch.setenv("ATP_S_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="ATP_S_FILE"):
        env.env_secret("ATP_S")
