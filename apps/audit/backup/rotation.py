"""Which backups to keep: the newest of each of the last N days and of the last M ISO weeks.

Days and weeks are those that have a backup (as restic's --keep-daily/--keep-weekly), so
a job that stopped for a while never lets rotation delete everything it made before.
Only files named like a backup are considered; anything else in the directory stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PREFIX = "atp-backup-"
NAME = re.compile(r"^atp-backup-(\d{8}T\d{6}Z)\.tar(\.enc)?$")
STAMP = "%Y%m%dT%H%M%SZ"


def archive_name(at: datetime, *, encrypted: bool) -> str:
    return f"{PREFIX}{at.astimezone(UTC).strftime(STAMP)}.tar" + (".enc" if encrypted else "")


@dataclass(frozen=True, slots=True)
class Backup:
    path: Path
    taken_at: datetime


def backups_in(directory: Path) -> list[Backup]:
    """The backups in `directory`, newest first."""
    found = []
    if not directory.is_dir():
        return found
    for path in directory.iterdir():
        match = NAME.match(path.name)
        if match and path.is_file():
            taken = datetime.strptime(match.group(1), STAMP).replace(tzinfo=UTC)
            found.append(Backup(path, taken))
    found.sort(key=lambda b: (b.taken_at, b.path.name), reverse=True)
    return found


def _newest_per(backups: Iterable[Backup], period, count: int) -> set[Path]:
    kept: set[Path] = set()
    seen: set[object] = set()
    for backup in backups:  # newest first
        if len(seen) >= count:
            break
        key = period(backup.taken_at)
        if key not in seen:
            seen.add(key)
            kept.add(backup.path)
    return kept


def to_keep(backups: list[Backup], *, daily: int, weekly: int) -> set[Path]:
    """The paths rotation keeps among `backups` (newest first)."""
    days = _newest_per(backups, lambda t: t.date(), daily)
    weeks = _newest_per(backups, lambda t: t.isocalendar()[:2], weekly)
    return days | weeks


def rotate(directory: Path, *, daily: int, weekly: int) -> list[Path]:
    """Delete the backups (and their checksum files) rotation does not keep."""
    backups = backups_in(directory)
    keep = to_keep(backups, daily=daily, weekly=weekly)
    deleted = []
    for backup in backups:
        if backup.path not in keep:
            backup.path.unlink(missing_ok=True)
            backup.path.with_name(backup.path.name + ".sha256").unlink(missing_ok=True)
            deleted.append(backup.path)
    return deleted
