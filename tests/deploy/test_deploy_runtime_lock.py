"""tools/runtime_lock.py: the part of requirements.lock the image installs is every
runtime package with everything it needs, with the lock's own hashes, and no dev tool."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from runtime_lock import parse_lock, render, runtime_entries

ROOT = Path(__file__).resolve().parents[2]
LOCK_TEXT = (ROOT / "requirements.lock").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def runtime() -> dict[str, str]:
    """Canonical name -> the entry's text, as the image installs it."""
    entries = runtime_entries(PYPROJECT, parse_lock(LOCK_TEXT))
    return {e.name: "\n".join(e.lines) for e in entries}


def test_every_runtime_requirement_is_in(runtime):
    for line in PYPROJECT["project"]["dependencies"]:
        assert canonicalize_name(Requirement(line).name) in runtime, line


def test_dev_only_tools_are_left_out(runtime):
    for name in ("pytest", "ruff", "kubernetes-validate", "playwright", "pip-tools", "hypothesis"):
        assert name not in runtime, name
    assert len(runtime) < len(parse_lock(LOCK_TEXT))


def test_entries_keep_the_locks_pins_and_hashes(runtime):
    for name, text in runtime.items():
        assert text in LOCK_TEXT, name
        assert "--hash=sha256:" in text, name
    assert "torch==2.13.0+cpu" in runtime["torch"]


def test_what_runtime_packages_require_is_in_too(runtime):
    """Checked against the installed packages' own metadata (the dev venv has them all)."""
    env = default_environment()
    wanted: dict[str, set[str]] = {}
    for line in PYPROJECT["project"]["dependencies"]:
        req = Requirement(line)
        wanted.setdefault(canonicalize_name(req.name), set()).update(req.extras)
    seen: set[tuple[str, frozenset[str]]] = set()
    queue = list(wanted.items())
    while queue:
        name, extras = queue.pop()
        if (name, frozenset(extras)) in seen:
            continue
        seen.add((name, frozenset(extras)))
        assert name in runtime, f"{name} is needed but not installed in the image"
        for line in metadata.distribution(name).requires or []:
            req = Requirement(line)
            if req.marker is None or any(
                req.marker.evaluate(env | {"extra": extra}) for extra in extras | {""}
            ):
                queue.append((canonicalize_name(req.name), set(req.extras)))


def test_a_package_is_kept_through_any_needed_parent():
    lock = (
        "a==1 \\\n    --hash=sha256:aa\n    # via atp (pyproject.toml)\n"
        "b==1 \\\n    --hash=sha256:bb\n    # via\n    #   a\n    #   devtool\n"
        "c==1 \\\n    --hash=sha256:cc\n    # via b\n"
        "devtool==1 \\\n    --hash=sha256:dd\n    # via atp (pyproject.toml)\n"
        "d==1 \\\n    --hash=sha256:ee\n    # via devtool\n"
    )
    pyproject = {"project": {"name": "atp", "dependencies": ["a>=1"]}}
    kept = runtime_entries(pyproject, parse_lock(lock))
    assert [e.name for e in kept] == ["a", "b", "c"]
    assert render(kept).startswith("a==1 \\\n    --hash=sha256:aa\n")


def test_a_requirement_missing_from_the_lock_stops_the_build():
    pyproject = {"project": {"name": "atp", "dependencies": ["absent>=1"]}}
    with pytest.raises(SystemExit, match="absent"):
        runtime_entries(pyproject, parse_lock("a==1 \\\n    --hash=sha256:aa\n"))
