"""Check that requirements.lock still is what `make lock` makes of pyproject.toml.

Usage: python tools/lock_check.py [pyproject.toml] [requirements.lock]

Prints one line per disagreement and exits 1 if there is any:
- a requirement of pyproject.toml (runtime or any extra) is missing from the lock, or the
  locked version is outside its range;
- the lock's `# via <project> (pyproject.toml)` annotations name a different set of direct
  requirements than pyproject.toml does (the lock was compiled from another version of it);
- a locked package is no longer needed by anything in pyproject.toml;
- a locked package has no hash;
- a locked package requires (itself, or through an extra pyproject.toml asks for) a
  package the lock lacks or pins outside the required range. This part reads the metadata
  of the installed packages, so it checks only those installed at their locked version
  (`make lock-check` installs the lock first).
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
HASH = re.compile(r"--hash=(\w+):([0-9a-f]+)")


@dataclass
class Locked:
    """One `name==version` entry of the lock with its hashes and `# via` parents."""

    name: str
    version: Version
    hashes: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)


def parse_lock(text: str) -> dict[str, Locked]:
    """The lock's entries by canonical name, as pip-compile writes them."""
    entries: dict[str, Locked] = {}
    current: Locked | None = None
    in_via = False
    for line in text.splitlines():
        pin = PIN.match(line)
        if pin:
            current = Locked(canonicalize_name(pin.group(1)), Version(pin.group(2)))
            entries[current.name] = current
            in_via = False
            continue
        if not line.startswith(" "):
            current = None
            continue
        if current is None:
            continue
        stripped = line.strip()
        current.hashes += [f"{algo}:{digest}" for algo, digest in HASH.findall(stripped)]
        if stripped.startswith("# via"):
            rest = stripped[len("# via") :].strip()
            in_via = not rest
            if rest:
                current.via.add(rest)
        elif in_via and stripped.startswith("#   "):
            current.via.add(stripped[1:].strip())
        else:
            in_via = False
    return entries


def pyproject_requirements(pyproject: dict) -> tuple[str, list[tuple[Requirement, str]]]:
    """The project name and every requirement that applies here, with its extra ('' = runtime)."""
    project = pyproject["project"]
    groups = {"": project.get("dependencies", [])} | project.get("optional-dependencies", {})
    out = []
    for extra, lines in groups.items():
        for line in lines:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                out.append((req, extra))
    return project["name"], out


def installed_requirements(name: str, version: Version, extras: set[str]) -> list[Requirement]:
    """What the installed distribution `name` requires with these extras, if it is installed
    at the locked version; [] when it is not (then it cannot be checked here)."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return []
    if Version(dist.version) != version:
        return []
    env = default_environment()
    out = []
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None:
            out.append(req)
            continue
        if any(req.marker.evaluate(env | {"extra": extra}) for extra in extras | {""}):
            out.append(req)
    return out


def check(pyproject_path: Path, lock_path: Path) -> list[str]:
    """Every disagreement between pyproject.toml and the lock, one sentence each."""
    if not lock_path.exists():
        return [f"{lock_path} is missing: run `make lock`"]
    project, reqs = pyproject_requirements(tomllib.loads(pyproject_path.read_text()))
    lock = parse_lock(lock_path.read_text())
    root = f"{project} ({pyproject_path.name})"
    problems: list[str] = []

    direct: dict[str, set[str]] = {}  # canonical name -> extras asked for
    for req, extra in reqs:
        name = canonicalize_name(req.name)
        where = f"{req} (in {'dependencies' if not extra else f'the {extra} extra'})"
        direct.setdefault(name, set()).update(req.extras)
        entry = lock.get(name)
        if entry is None:
            problems.append(f"{where} is not in {lock_path.name}: run `make lock`")
        elif not req.specifier.contains(entry.version, prereleases=True):
            problems.append(
                f"{where} does not admit the locked {name}=={entry.version}: run `make lock`"
            )
        elif root not in entry.via:
            problems.append(
                f"{where} is locked only as a dependency of other packages, "
                f"not as a requirement of {pyproject_path.name}: run `make lock`"
            )

    for name, entry in sorted(lock.items()):
        if root in entry.via and name not in direct:
            problems.append(
                f"{name} is locked as a requirement of {pyproject_path.name}, "
                f"which no longer lists it: run `make lock`"
            )
        if not entry.hashes:
            problems.append(f"{name}=={entry.version} has no hash in {lock_path.name}")

    # Everything locked must still be needed: reachable from pyproject's requirements
    # through the lock's `# via` annotations.
    reachable = {name for name in direct if name in lock}
    changed = True
    while changed:
        changed = False
        for name, entry in lock.items():
            if name not in reachable and any(
                canonicalize_name(parent) in reachable for parent in entry.via if parent != root
            ):
                reachable.add(name)
                changed = True
    for name in sorted(set(lock) - reachable):
        problems.append(
            f"{name}=={lock[name].version} is locked but nothing in "
            f"{pyproject_path.name} needs it any more: run `make lock`"
        )

    # The lock must hold what its packages require (with the extras pyproject asks for).
    for name, entry in sorted(lock.items()):
        for req in installed_requirements(name, entry.version, direct.get(name, set())):
            dep = canonicalize_name(req.name)
            have = lock.get(dep)
            if have is None:
                problems.append(f"{name}=={entry.version} requires {req}, which is not locked")
            elif not req.specifier.contains(have.version, prereleases=True):
                problems.append(
                    f"{name}=={entry.version} requires {req}, but {dep}=={have.version} is locked"
                )
    return problems


def main(argv: list[str]) -> int:
    pyproject = Path(argv[1] if len(argv) > 1 else "pyproject.toml")
    lock = Path(argv[2] if len(argv) > 2 else "requirements.lock")
    problems = check(pyproject, lock)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"{lock} agrees with {pyproject}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
