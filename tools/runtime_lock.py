"""Write the part of requirements.lock that the server needs, for the container image.

Usage: python tools/runtime_lock.py [pyproject.toml] [requirements.lock] > runtime.lock

The lock pins the runtime packages and the `dev` extra together (tests, linters, the lock
tools). The image installs only what pyproject.toml's `dependencies` need: those packages
and, through the lock's `# via` annotations, every package one of them pulls in. Entries are
copied as they stand, hashes included, so `pip install --require-hashes` installs exactly
the locked files. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==")
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# `# via pkg`, `# via -r file`, `# via atp (pyproject.toml)`: the parent is the first word.
VIA_NAME = re.compile(r"^(-r\s+\S+|[A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503's normalised name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Entry:
    """One `name==version` entry of the lock: its text and the packages that need it."""

    name: str
    lines: list[str] = field(default_factory=list)
    parents: set[str] = field(default_factory=set)


def parse_lock(text: str) -> list[Entry]:
    """The lock's entries in their order, as pip-compile writes them."""
    entries: list[Entry] = []
    current: Entry | None = None
    in_via = False
    for line in text.splitlines():
        pin = PIN.match(line)
        if pin:
            current = Entry(canonical(pin.group(1)), [line])
            entries.append(current)
            in_via = False
            continue
        if not line.startswith(" ") or current is None:
            current = None
            continue
        current.lines.append(line)
        stripped = line.strip()
        if stripped.startswith("# via"):
            rest = stripped[len("# via") :].strip()
            in_via = not rest
            if rest:
                current.parents.add(_parent(rest))
        elif in_via and stripped.startswith("#   "):
            current.parents.add(_parent(stripped[1:].strip()))
        else:
            in_via = False
    return entries


def _parent(text: str) -> str:
    match = VIA_NAME.match(text)
    return canonical(match.group(1)) if match else text


def runtime_entries(pyproject: dict, entries: list[Entry]) -> list[Entry]:
    """The entries the project's runtime dependencies need, in the lock's order."""
    project = canonical(pyproject["project"]["name"])
    roots = set()
    for requirement in pyproject["project"].get("dependencies", []):
        match = NAME.match(requirement)
        if match:
            roots.add(canonical(match.group(1)))
    needed = set(roots)
    changed = True
    while changed:  # a package is needed when something needed pulls it in
        changed = False
        for entry in entries:
            if entry.name in needed:
                continue
            if entry.parents & needed:
                needed.add(entry.name)
                changed = True
    missing = roots - {entry.name for entry in entries}
    if missing:
        raise SystemExit(f"not in the lock: {', '.join(sorted(missing))}; run `make lock`")
    # The project itself is a parent of its direct requirements, never an entry.
    needed.discard(project)
    return [entry for entry in entries if entry.name in needed]


def render(entries: list[Entry]) -> str:
    return "".join("\n".join(entry.lines) + "\n" for entry in entries)


def main(argv: list[str]) -> int:
    pyproject_path = Path(argv[1] if len(argv) > 1 else "pyproject.toml")
    lock_path = Path(argv[2] if len(argv) > 2 else "requirements.lock")
    pyproject = tomllib.loads(pyproject_path.read_text(encoding="utf-8"))
    entries = parse_lock(lock_path.read_text(encoding="utf-8"))
    sys.stdout.write(render(runtime_entries(pyproject, entries)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
