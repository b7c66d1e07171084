"""Environment variables: the image, the compose file and the chart set only variables
ATP reads, every variable the documentation lists is read, the deployments' settings are
accepted as they stand, and the README's defaults are the settings' own.

What ATP reads is found in its source by tools/env_reads.py, not listed here by hand.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from env_reads import ROOT, runtime_variables_read, variables_read
from render_chart import render_chart

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Set for the operating system, not for ATP: where the shell finds the venv's programs.
NOT_SETTINGS = {"PATH"}
NAME = re.compile(r"`([A-Z][A-Z0-9_]{2,})`")


@pytest.fixture(scope="module")
def runtime_reads() -> set[str]:
    return runtime_variables_read()


def dockerfile_variables() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    runtime = text.split("AS runtime", 1)[1]
    found = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                name, _, value = pair.partition("=")
                found[name] = value
    return found


def compose_atp_services() -> dict[str, dict]:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    image = compose["services"]["web"]["image"]
    return {n: s for n, s in compose["services"].items() if s.get("image") == image}


def compose_variables(service: dict) -> dict[str, str]:
    """The service's environment plus what its entrypoint exports."""
    found = {k: str(v) for k, v in service["environment"].items()}
    script = " ".join(service.get("entrypoint", []))
    for name, value in re.findall(r'export ([A-Z_][A-Z0-9_]*)="([^"]*)"', script):
        found[name] = value
    return found


def chart_objects() -> list[dict]:
    return [d for t in render_chart().values() for d in yaml.safe_load_all(t) if d]


def chart_variables() -> dict[str, str]:
    objects = chart_objects()
    config = next(o for o in objects if o["kind"] == "ConfigMap")
    found = dict(config["data"])
    for obj in objects:
        if obj["kind"] in ("StatefulSet", "Deployment", "Job"):
            for container in obj["spec"]["template"]["spec"]["containers"]:
                for variable in container.get("env", []):
                    found[variable["name"]] = variable.get("value", "")
    return found


def documented_variables() -> dict[str, set[str]]:
    """Variables in the documentation's tables: the first column, or a column headed
    variable(s), as `NAME`, with (`_FILE`) for the NAME_FILE variant too."""
    found: dict[str, set[str]] = {}
    for path in DOCS:
        columns: list[int] = [0]
        previous = ""
        for line in path.read_text().splitlines():
            if not line.startswith("|"):
                previous = ""
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if re.fullmatch(r"[\s|:-]+", line):  # the header's underline
                header = [c.strip().lower() for c in previous.strip().strip("|").split("|")]
                columns = [0] + [i for i, h in enumerate(header) if h.startswith("variable")]
            else:
                for index in columns:
                    cell = cells[index] if index < len(cells) else ""
                    for name in NAME.findall(cell):
                        found.setdefault(name, set()).add(path.name)
                    for name in re.findall(r"`([A-Z][A-Z0-9_]+)` \(`_FILE`\)", cell):
                        found.setdefault(f"{name}_FILE", set()).add(path.name)
            previous = line
    return found


def test_the_scanner_finds_what_the_settings_read(runtime_reads):
    # Through each reader, the _FILE variant of secrets, and os.environ directly.
    assert {"DATABASE_URL", "ATP_SPILL_FULL", "ATP_HTTPS", "ATP_LOG_LEVEL"} <= runtime_reads
    assert {"ATP_SECRET_KEY_FILE", "ATP_OIDC_CLIENT_SECRET_FILE"} <= runtime_reads
    assert {"OPENAI_API_KEY", "OLLAMA_HOST"} <= runtime_reads  # a table the bootstrap loops over
    assert "ATP_DEBUG_FILE" not in runtime_reads  # not a secret
    assert "HF_HUB_OFFLINE" not in runtime_reads  # written by ATP, never read
    assert not any(name.startswith("POSTGRES_") for name in runtime_reads)


def test_the_scanner_sees_every_way_of_reading(tmp_path):
    (tmp_path / "module.py").write_text(
        "import os\n"
        "from atp_site.lib.env import env_int, env_secret\n"
        "TABLE = [('FROM_TABLE', 1)]\n"
        "A = env_int('INT_ONE', 1)\n"
        "B = env_secret('SECRET_ONE')\n"
        "C = os.environ.get('GET_ONE')\n"
        "D = os.getenv('GETENV_ONE')\n"
        "E = os.environ['ITEM_ONE']\n"
        "F = 'IN_ONE' in os.environ\n"
        "os.environ['WRITTEN_ONE'] = '1'\n"
        "for name, _ in TABLE:\n"
        "    os.environ.get(name)\n"
    )
    assert variables_read([tmp_path]) == {
        "INT_ONE",
        "SECRET_ONE",
        "SECRET_ONE_FILE",
        "GET_ONE",
        "GETENV_ONE",
        "ITEM_ONE",
        "IN_ONE",
        "FROM_TABLE",
    }


def test_the_image_sets_only_variables_atp_reads(runtime_reads):
    variables = dockerfile_variables()
    assert variables["ATP_DATA_DIR"] == "/var/lib/atp"
    assert set(variables) - NOT_SETTINGS - runtime_reads == set()


def test_compose_sets_only_variables_atp_reads(runtime_reads):
    services = compose_atp_services()
    assert services
    for name, service in services.items():
        variables = compose_variables(service)
        assert "DATABASE_URL" in variables, name
        assert set(variables) - runtime_reads == set(), name


def test_the_chart_sets_only_variables_atp_reads(runtime_reads):
    variables = chart_variables()
    assert {"DATABASE_URL", "REDIS_URL", "ATP_DATA_DIR", "ATP_SECRET_KEY_FILE"} <= set(variables)
    assert set(variables) - runtime_reads == set()


def test_a_variable_atp_does_not_read_is_caught(runtime_reads):
    variables = chart_variables() | {"ATP_NO_SUCH_SETTING": "1"}
    assert set(variables) - runtime_reads == {"ATP_NO_SUCH_SETTING"}


def test_every_documented_variable_is_read():
    documented = documented_variables()
    # The README's settings table, the secrets table of docs/production.md and the other
    # pages' tables; the sample size catches a parser that stopped finding them.
    assert len(documented) > 100
    assert {"ATP_SECRET_KEY_FILE", "ATP_OIDC_ROLE_MAPPING", "ATP_SPILL_FULL"} <= set(documented)
    # Switches of the test suite (ATP_BROWSER_TESTS...) are read by the tests.
    code = [ROOT / p for p in ("atp_site", "apps", "manage.py", "atpctl", "tests")]
    read = variables_read(code)
    unread = {name: sorted(where) for name, where in documented.items() if name not in read}
    assert unread == {}


def run_settings(env: dict[str, str], script: str) -> str:
    """Run `script` after loading the settings with exactly `env` (plus what Python needs)."""
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + script],
        env={**base, "DJANGO_SETTINGS_MODULE": "atp_site.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def localised(variables: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The deployment's variables with its paths moved under tmp_path: the secret files
    written there (48 random-looking characters each), the directories created."""
    env = {}
    for name, value in variables.items():
        if name.endswith("_FILE"):
            path = tmp_path / "secrets" / Path(value).name
            path.parent.mkdir(exist_ok=True)
            path.write_text(f"{name.lower()}-Qx7Lm2Vb9Rt4Kp8Zw3Nc6Hd1Fs5Gj0Ya\n")
            env[name] = str(path)
        elif value.startswith("/") and name != "PATH":
            path = tmp_path / value.strip("/").replace("/", "_")
            path.mkdir()
            env[name] = str(path)
        else:
            env[name] = value
    return env


CHECK = (
    "from django.conf import settings\n"
    "from atp_site.lib.startup import check_secrets\n"
    "check_secrets()\n"
    "print(settings.DATABASES['default']['ENGINE'], settings.CACHES['default']['BACKEND'])\n"
)


def test_the_compose_settings_are_accepted(tmp_path):
    variables = compose_variables(compose_atp_services()["web"])
    variables["DATABASE_URL"] = variables["DATABASE_URL"].replace(
        "$(cat /run/secrets/postgres_password)", "0123abcd"
    )
    out = run_settings(localised(variables, tmp_path), CHECK)
    assert out.split() == ["django.db.backends.postgresql", "django_redis.cache.RedisCache"]


def test_the_chart_settings_are_accepted(tmp_path):
    variables = chart_variables()
    secret = next(o for o in chart_objects() if o["kind"] == "Secret")["stringData"]
    variables["DATABASE_URL"] = secret["database-url"]
    variables["REDIS_URL"] = secret["redis-url"]
    out = run_settings(localised(variables, tmp_path), CHECK)
    assert out.split() == ["django.db.backends.postgresql", "django_redis.cache.RedisCache"]


def test_a_deployment_without_its_secrets_is_refused(tmp_path):
    variables = chart_variables()
    variables["DATABASE_URL"] = "postgres://atp@db/atp"
    env = localised(variables, tmp_path)
    Path(env["ATP_AUDIT_HEAD_KEY_FILE"]).write_text("")  # what the chart's defaults give
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + CHECK],
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "atp_site.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "ATP_AUDIT_HEAD_KEY" in result.stderr


def readme_defaults() -> dict[str, str]:
    """The README settings table's defaults that are plain values, by variable."""
    defaults = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        names = NAME.findall(re.sub(r"\(`_FILE`\)", "", cells[0]))
        if re.fullmatch(r"`[^`]*`(, `[^`]*`)*", cells[1]):
            values = re.findall(r"`([^`]*)`", cells[1])
            if len(values) == len(names):
                defaults.update(zip(names, values, strict=True))
    return defaults


def test_the_readmes_defaults_are_the_settings_defaults(tmp_path):
    defaults = readme_defaults()
    assert len(defaults) > 50
    defaults.pop("ATP_DATA_DIR")  # a path relative to the tree; the test uses its own
    dump = (
        "import json\nfrom django.conf import settings\n"
        f"names = {sorted(defaults)!r}\n"
        "print(json.dumps({n: repr(getattr(settings, n)) for n in names if hasattr(settings, n)}))\n"
    )
    data_dir = {"ATP_DATA_DIR": str(tmp_path)}
    unset = json.loads(run_settings(data_dir, dump))
    documented = json.loads(run_settings({**data_dir, **defaults}, dump))
    assert len(unset) > 40
    assert documented == unset
