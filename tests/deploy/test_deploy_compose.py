"""compose.yaml: it parses, runs the five services (and the migrations) from one image,
reads every secret from a file and gives each ATP instance its own data volume."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = "/var/lib/atp"
SECRETS_DIR = "/run/secrets/"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def atp_services(compose: dict) -> dict[str, dict]:
    image = compose["services"]["web"]["image"]
    return {name: s for name, s in compose["services"].items() if s.get("image") == image}


def test_the_five_services_and_the_migrations(compose):
    assert {"web", "worker", "beat", "postgres", "redis", "migrate"} <= set(compose["services"])
    assert set(atp_services(compose)) == {"web", "worker", "beat", "migrate"}
    assert compose["services"]["postgres"]["image"].startswith("postgres:")
    assert compose["services"]["redis"]["image"].startswith("redis:")


def test_atp_containers_run_read_only_from_the_built_image(compose):
    for name, service in atp_services(compose).items():
        assert service["build"] == ".", name
        assert service["read_only"] is True, name
        assert "/tmp" in service["tmpfs"], name


def test_secrets_come_from_files(compose):
    declared = compose["secrets"]
    assert declared, "no secrets"
    for name, secret in declared.items():
        assert set(secret) == {"file"}, f"secret {name} is not read from a file"
        assert secret["file"].startswith("./secrets/"), name
    for name, service in atp_services(compose).items():
        environment = service["environment"]
        given = set(service["secrets"])
        assert given <= set(declared), name
        # The four secrets every instance must share, each as a file it is given.
        for variable in (
            "ATP_SECRET_KEY",
            "ATP_ENCRYPTION_KEY",
            "ATP_AUDIT_SIGNING_KEY",
            "ATP_AUDIT_HEAD_KEY",
        ):
            assert variable not in environment, f"{name}: {variable} in clear"
            path = environment[f"{variable}_FILE"]
            assert path.startswith(SECRETS_DIR) and path[len(SECRETS_DIR) :] in given, name
        for variable, value in environment.items():
            if variable.endswith("_FILE"):
                assert value[len(SECRETS_DIR) :] in given, f"{name}: {variable}"
        # No password in a URL: the database's comes from its secret file when it starts.
        assert not any(re.search(r"://[^/@]*:[^/@]*@", str(v)) for v in environment.values())
        script = service["entrypoint"][2]
        assert "$$(cat /run/secrets/postgres_password)" in script
        assert "postgres_password" in given
    postgres = compose["services"]["postgres"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "POSTGRES_PASSWORD" not in postgres["environment"]


def test_each_atp_instance_has_its_own_data_volume(compose):
    volumes_by_service = {}
    for name, service in atp_services(compose).items():
        mounts = dict(reversed(m.split(":", 1)) for m in service["volumes"])
        assert service["environment"]["ATP_DATA_DIR"] == DATA_DIR, name
        volumes_by_service[name] = mounts[DATA_DIR]
    data_volumes = list(volumes_by_service.values())
    assert len(set(data_volumes)) == len(data_volumes), volumes_by_service
    assert set(data_volumes) <= set(compose["volumes"])


def test_job_results_and_backups_are_shared_by_who_writes_and_who_serves(compose):
    services = compose["services"]
    for name in ("web", "worker"):
        mounts = dict(reversed(m.split(":", 1)) for m in services[name]["volumes"])
        assert mounts[f"{DATA_DIR}/jobs"] == "job-results", name
        assert mounts[services[name]["environment"]["ATP_BACKUP_DIR"]] == "backups", name


def test_start_order_and_health(compose):
    services = compose["services"]
    for name in ("web", "worker", "beat"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
        assert needs["postgres"]["condition"] == "service_healthy", name
        assert needs["redis"]["condition"] == "service_healthy", name
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert services["migrate"]["restart"] == "no"
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name


def test_the_web_server_listens_on_loopback_only(compose):
    assert compose["services"]["web"]["ports"] == ["127.0.0.1:8000:8000"]


def test_beat_is_not_scaled(compose):
    beat = compose["services"]["beat"]
    assert beat["command"][:4] == ["celery", "-A", "atp_site", "beat"]
    assert "replicas" not in beat.get("deploy", {})
    assert f"--schedule={DATA_DIR}/celerybeat-schedule" in beat["command"]
