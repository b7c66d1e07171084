"""The Dockerfile: multi-stage, non-root, the lock installed with hashes, the server run
as `make run` runs it, and the same user, data directory and command as compose and the
chart."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from render_chart import render_chart

ROOT = Path(__file__).resolve().parents[2]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions((ROOT / "Dockerfile").read_text())


def stages(dockerfile) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    current = None
    for keyword, rest in dockerfile:
        if keyword == "FROM":
            current = rest.split()[-1]
            out[current] = []
        elif current is not None:
            out[current].append((keyword, rest))
    return out


def server_options(argv: list[str]) -> dict[str, str]:
    """uvicorn's options as {name: value}, written `--name value` or `--name=value`."""
    options, i = {}, 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value, i = argv[i + 1], i + 1
            options[name] = value
        i += 1
    return options


def make_run_options() -> dict[str, str]:
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    line = next(x for x in makefile.splitlines() if "/uvicorn atp_site.asgi:application" in x)
    argv = shlex.split(line.split("/uvicorn", 1)[1])
    options = server_options(argv)
    del options["--host"], options["--port"]  # $(ATP_HOST), $(ATP_PORT)
    return options


def test_the_image_is_built_in_stages_and_runs_as_a_user(dockerfile):
    built = stages(dockerfile)
    assert list(built) == ["build", "runtime"]
    users = [rest for keyword, rest in built["runtime"] if keyword == "USER"]
    assert users == ["10001:10001"]
    assert any("--uid 10001" in rest for keyword, rest in built["runtime"] if keyword == "RUN")
    # What the build stage installed is all the runtime stage takes from it.
    copies = [rest for keyword, rest in built["runtime"] if rest.startswith("--from=")]
    assert copies == ["--from=build /opt/venv /opt/venv"]


def test_the_lock_is_installed_with_hashes(dockerfile):
    runs = " ".join(rest for keyword, rest in stages(dockerfile)["build"] if keyword == "RUN")
    assert (
        "python tools/runtime_lock.py pyproject.toml requirements.lock > /tmp/runtime.lock" in runs
    )
    install = runs.split("-r /tmp/runtime.lock")[0].rsplit("pip install", 1)[1]
    for option in ("--require-hashes", "--no-deps", "--only-binary :all:"):
        assert option in install
    # torch's CPU build (locked as 2.13.0+cpu) comes from PyTorch's CPU index.
    assert '--extra-index-url "${TORCH_INDEX_URL}"' in install
    args = [rest for keyword, rest in dockerfile if keyword == "ARG"]
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in args
    assert "torch==2.13.0+cpu" in (ROOT / "requirements.lock").read_text()
    assert "pip check" in runs
    # atpctl, the one package, without touching an index.
    assert "--no-deps --no-build-isolation --no-index ." in runs


def test_the_data_dir_is_the_one_writable_place(dockerfile):
    runtime = stages(dockerfile)["runtime"]
    env = " ".join(rest for keyword, rest in runtime if keyword == "ENV")
    assert "ATP_DATA_DIR=/var/lib/atp" in env
    assert ("VOLUME", '["/var/lib/atp"]') in runtime
    runs = " ".join(rest for keyword, rest in runtime if keyword == "RUN")
    assert "install -d -o atp -g atp" in runs and "/var/lib/atp" in runs
    # Bytecode compiled at build time: nothing is written beside the sources later.
    assert "compileall -q /app" in runs


def test_pg_dump_matches_the_compose_databases_major_version(dockerfile):
    args = dict(
        rest.split("=", 1) for keyword, rest in dockerfile if keyword == "ARG" and "=" in rest
    )
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert compose["services"]["postgres"]["image"] == f"postgres:{args['PG_MAJOR']}"


def test_every_server_command_matches_make_run(dockerfile):
    expected = make_run_options()
    assert expected["--loop"] == "uvloop" and expected["--lifespan"] == "on"
    cmd = next(rest for keyword, rest in dockerfile if keyword == "CMD")
    commands = {"Dockerfile": json.loads(cmd)}
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    commands["compose web"] = compose["services"]["web"]["command"]
    chart = yaml.safe_load(render_chart()["web-statefulset.yaml"])
    commands["chart web"] = chart["spec"]["template"]["spec"]["containers"][0]["command"]
    for where, argv in commands.items():
        assert argv[:2] == ["uvicorn", "atp_site.asgi:application"], where
        options = server_options(argv[2:])
        assert options["--host"] == "0.0.0.0" and options["--port"] == "8000", where
        for name, value in expected.items():
            assert options.get(name) == value, f"{where}: {name}"


def test_the_build_context_leaves_out_local_state():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "var", "tests", "secrets", "test-artifacts"} <= ignored
    for needed in ("tools", "atpctl", "README.md", "requirements.lock", "pyproject.toml"):
        assert needed not in ignored
