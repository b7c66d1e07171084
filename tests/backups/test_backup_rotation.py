"""Rotation keeps the newest backup of each of the last N days and M ISO weeks."""

from __future__ import annotations

from datetime import UTC, datetime

from apps.audit.backup.rotation import archive_name, backups_in, rotate


def make(directory, *stamps: str, encrypted: bool = False) -> None:
    directory.mkdir(exist_ok=True)
    for stamp in stamps:
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        path = directory / archive_name(at, encrypted=encrypted)
        path.write_bytes(b"x")
        path.with_name(path.name + ".sha256").write_text("x")


def names(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_keeps_the_newest_of_each_recent_day_and_week(tmp_path):
    # 2026-11-30 is a Monday: ISO weeks 49 (Nov 30 - Dec 6), 48, 47, 46.
    make(
        tmp_path,
        "2026-12-05 01:47",
        "2026-12-05 13:00",  # newest of Dec 5
        "2026-12-04 01:47",
        "2026-12-03 01:47",
        "2026-11-28 01:47",  # newest of week 48
        "2026-11-27 01:47",
        "2026-11-20 01:47",  # newest of week 47
        "2026-11-10 01:47",  # week 46: beyond two weeks
    )
    make(tmp_path, "2026-11-29 09:00", encrypted=True)  # Sunday: week 48's newest
    (tmp_path / "notes.txt").write_text("not a backup")
    (tmp_path / "atp-backup-latest.tar").write_text("not one of ours either")

    deleted = rotate(tmp_path, daily=2, weekly=2)

    assert sorted(p.name for p in deleted) == [
        "atp-backup-20261110T014700Z.tar",
        "atp-backup-20261120T014700Z.tar",
        "atp-backup-20261127T014700Z.tar",
        "atp-backup-20261128T014700Z.tar",
        "atp-backup-20261203T014700Z.tar",
        "atp-backup-20261205T014700Z.tar",
    ]
    kept = [b.path.name for b in backups_in(tmp_path)]
    assert kept == [
        "atp-backup-20261205T130000Z.tar",  # day 1 and week 49
        "atp-backup-20261204T014700Z.tar",  # day 2
        "atp-backup-20261129T090000Z.tar.enc",  # week 48
    ]
    assert "atp-backup-20261203T014700Z.tar.sha256" not in names(tmp_path)
    assert "atp-backup-20261204T014700Z.tar.sha256" in names(tmp_path)
    assert {"notes.txt", "atp-backup-latest.tar"} <= set(names(tmp_path))


def test_days_without_backups_do_not_count(tmp_path):
    # The job stopped for three weeks: the last backups it made are all kept.
    make(tmp_path, "2026-11-01 01:47", "2026-11-02 01:47", "2026-11-03 01:47", "2026-10-01 01:47")
    deleted = rotate(tmp_path, daily=3, weekly=0)
    assert [p.name for p in deleted] == ["atp-backup-20261001T014700Z.tar"]
