"""requirements.lock: every package pinned with hashes, in step with pyproject.toml.

tools/lock_check.py is what `make lint` runs; these tests run it on the repository's own
files and on copies broken in each way it must notice.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "tools" / "lock_check.py"
LOCK = ROOT / "requirements.lock"
TORCH_WHEELS = Path("/opt/wheels")


def run_check(pyproject: Path, lock: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), str(pyproject), str(lock)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def copies(tmp_path):
    """Editable copies of pyproject.toml and the lock."""
    pyproject = tmp_path / "pyproject.toml"
    lock = tmp_path / "requirements.lock"
    pyproject.write_text((ROOT / "pyproject.toml").read_text())
    lock.write_text(LOCK.read_text())
    return pyproject, lock


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def drop_entry(lock: Path, name: str) -> None:
    """Remove `name==...` with its hashes and annotations from a lock file."""
    text, count = re.subn(rf"^{name}==.*?(?=^\S)", "", lock.read_text(), flags=re.M | re.S)
    assert count == 1, name
    lock.write_text(text)


# The newest release of each package with a known security advisory (PyPA advisory
# database, or the project's own release notes for releases after the database's copy),
# and why. pyproject.toml's range must exclude it and the lock must be above it.
# docs/dependencies.md explains each floor.
LAST_AFFECTED = {
    "django": ("5.2.18", "CVE-2026-108147, CVE-2026-111211, CVE-2026-111362 and two more"),
    "djangorestframework": ("3.15.1", "PYSEC-2026-1304 (CVE-2024-21520)"),
    "daphne": ("4.2.1", "PYSEC-2026-213 (CVE-2026-44545), PYSEC-2026-214 (CVE-2026-44546)"),
    "aiohttp": ("3.14.3", "PYSEC-2026-2107..2113; 3.14.4 stops sending Secure cookies over http"),
    "orjson": ("3.11.4", "PYSEC-2026-107 (CVE-2025-67221)"),
    "cryptography": ("49.0.0", "PYSEC-2026-36 (CVE-2026-39892); PKCS#7 oracle fixed in 50.0.0"),
    "reportlab": ("5.0.1", "security fixes of 5.0.2 and 5.0.3a1, first released in 5.1.0"),
    "certifi": ("2024.6.2", "PYSEC-2024-230 (CVE-2024-39689)"),
    "h11": ("0.15.0", "PYSEC-2026-348 (CVE-2025-43859)"),
    "idna": ("3.14", "PYSEC-2026-215 (CVE-2026-45409)"),
    "jinja2": ("3.1.5", "PYSEC-2026-1471 (CVE-2025-27516)"),
    "pillow": ("12.3.0", "CVE-2026-96636 .. CVE-2026-96778, fixed in 13.0.0"),
    "pyjwt": ("2.14.0", "GHSA-r6x4-923q-g947 and five more (2.14.0); recursion fix in 2.15.0"),
    "pyopenssl": ("26.0.0", "CVE-2026-40475"),
    "requests": ("2.32.5", "PYSEC-2026-2275 (CVE-2026-25645)"),
    "sqlparse": ("0.6.0", "CVE-2026-112307 (GHSA-xmww-55xg-h3vc), GHSA-3r5h-5jcg-gmgg"),
    "transformers": ("5.2.0", "PYSEC-2026-2289 (CVE-2026-4372), PYSEC-2026-2290 (CVE-2026-5241)"),
    "twisted": ("26.4.0", "CVE-2026-83813, CVE-2026-115774 .. CVE-2026-115877"),
    "urllib3": ("2.7.0", "GHSA-8988-9cw3-xx77, GHSA-vxq7-64xx-v4gw, GHSA-gh4c-6fx4-qh6g"),
    "pytest": ("9.0.2", "PYSEC-2026-1845 (CVE-2025-71176)"),
    "anthropic": ("0.86.0", "PYSEC-2026-2114 (CVE-2026-34450), PYSEC-2026-2115 (CVE-2026-34452)"),
    "pypdf": ("7.1.0", "PYSEC-2026-3004..3027 (to 6.13.0); security fixes in 7.0.0 to 7.1.1"),
}


@pytest.mark.parametrize("name", sorted(LAST_AFFECTED))
def test_floor_is_above_the_last_release_with_an_advisory(name):
    last, why = LAST_AFFECTED[name]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [
        r for g in project["optional-dependencies"].values() for r in g
    ]
    reqs = [Requirement(line) for line in lines]
    req = next((r for r in reqs if canonicalize_name(r.name) == name), None)
    assert req is not None, f"pyproject.toml has no floor for {name} ({why})"
    assert not req.specifier.contains(last, prereleases=True), f"{req} admits {last}: {why}"
    pins = dict(re.findall(r"^(\S+)==(\S+) \\$", LOCK.read_text(), re.M))
    assert Version(pins[name]) > Version(last), why


def test_repository_lock_agrees_with_pyproject():
    result = run_check(ROOT / "pyproject.toml", LOCK)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_locked_package_is_pinned_with_a_sha256_hash():
    text = LOCK.read_text()
    entries = re.findall(r"^(\S+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}.*\n)+)", text, re.M)
    pins = re.findall(r"^[A-Za-z0-9]", text, re.M)
    assert entries and len(entries) == len(pins)


def test_installed_packages_are_the_locked_versions():
    pins = dict(re.findall(r"^(\S+)==(\S+) \\$", LOCK.read_text(), re.M))
    for name in ("django", "djangorestframework", "aiohttp", "cryptography", "torch"):
        assert metadata.version(name) == pins[name], name


@pytest.mark.skipif(
    not list(TORCH_WHEELS.glob("torch-*+cpu-*.whl")), reason="no local CPU torch wheel here"
)
def test_torch_is_locked_to_the_local_cpu_wheel():
    """pip takes torch from the wheel on this machine's disk (a PyPI torch is a CUDA build
    of several GB): the lock must carry that file's hash and --find-links to its folder."""
    text = LOCK.read_text()
    assert f"--find-links {TORCH_WHEELS}" in text.splitlines()
    pin = re.search(r"^torch==(\S+) \\\n((?:    --hash=.*\n)+)", text, re.M)
    assert pin and pin.group(1).endswith("+cpu")
    wheel = next(TORCH_WHEELS.glob(f"torch-{pin.group(1)}-*.whl"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert f"--hash=sha256:{digest}" in pin.group(2)


def test_a_requirement_missing_from_the_lock_is_reported(copies):
    pyproject, lock = copies
    edit(pyproject, '    "time-machine>=3,<4",\n', '    "time-machine>=3,<4",\n    "leftpad>=1",\n')
    result = run_check(pyproject, lock)
    assert result.returncode == 1
    assert "leftpad>=1 (in the dev extra) is not in requirements.lock" in result.stdout


def test_a_range_that_excludes_the_locked_version_is_reported(copies):
    pyproject, lock = copies
    edit(pyproject, '"django>=5.2.19,<5.3"', '"django>=5.3,<5.4"')
    result = run_check(pyproject, lock)
    assert result.returncode == 1
    assert "does not admit the locked django==" in result.stdout


def test_a_dependency_dropped_from_pyproject_is_reported(copies):
    pyproject, lock = copies
    edit(pyproject, '    "whitenoise>=6.7,<7",\n', "")
    result = run_check(pyproject, lock)
    assert result.returncode == 1
    assert "whitenoise is locked as a requirement of pyproject.toml" in result.stdout
    assert "nothing in pyproject.toml needs it any more" in result.stdout


def test_a_transitive_package_made_direct_without_relocking_is_reported(copies):
    pyproject, lock = copies
    edit(pyproject, '    "urllib3>=2.8",\n', '    "urllib3>=2.8",\n    "anyio>=4",\n')
    result = run_check(pyproject, lock)
    assert result.returncode == 1
    assert "anyio>=4 (in dependencies) is locked only as a dependency" in result.stdout


def test_an_entry_without_a_hash_is_reported(copies):
    pyproject, lock = copies
    text = lock.read_text()
    lock.write_text(re.sub(r"^(whitenoise==\S+) \\\n(    --hash=.*\n)+", r"\1\n", text, flags=re.M))
    result = run_check(pyproject, lock)
    assert result.returncode == 1
    assert "whitenoise==" in result.stdout and "has no hash" in result.stdout


def test_a_dependency_missing_under_a_locked_package_is_reported(copies):
    pyproject, lock = copies
    drop_entry(lock, "asgiref")
    result = run_check(pyproject, lock)
    assert result.returncode == 1
    assert re.search(r"^django==\S+ requires asgiref.*, which is not locked$", result.stdout, re.M)


def test_an_extra_whose_packages_are_not_locked_is_reported(copies):
    pyproject, lock = copies
    edit(pyproject, '"psycopg[binary]>=3.2,<4"', '"psycopg[binary,pool]>=3.2,<4"')
    result = run_check(pyproject, lock)
    assert result.returncode == 1
    assert "requires psycopg-pool" in result.stdout
