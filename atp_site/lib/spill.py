"""Files for write-behind rows the database cannot take: the spill and the dead letters.

While the database is unreachable, queued rows are appended to a spill file and replayed
once it answers again (apps.routing.writebehind); rows the database refuses for their
data go to a dead-letter file. Both live under ATP_DATA_DIR, which a configured deployment
therefore keeps on a persistent volume per instance:

    write-behind/spill/<queue>.<process>.log         rows waiting for the database
    write-behind/spill/<queue>.<process>.replay-<n>  a spill file claimed for replay
    write-behind/dead-letter/<queue>.<process>.log   rows the database refused
    write-behind/alive/<process>                     locked (flock) while the process runs
    write-behind/.lock                               serialises every change to the files

Each line is one Fernet token (ATP_ENCRYPTION_KEYS; URL-safe base64, so never a newline)
of a zlib-compressed JSON batch of rows: nothing is readable on disk without the keys.
Appends are fsynced before they count as done. Several processes may share a data
directory (uvicorn --workers): each appends to files named after itself, every change
happens under the directory's lock, and a process claims another's spill for replay only
once that process is gone (its `alive` lock is free).

Nothing here runs on the normal write path: only when the database is unreachable, when a
row is refused, and when retention or erasure rewrites what is waiting.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from atp_site.lib import crypto
from atp_site.lib.journal import PROCESS_ID, decode_many, encode_many

logger = logging.getLogger(__name__)

Row = dict[str, Any]
# Rows read back per replay step (several spilled batches are joined up to this many).
REPLAY_ROWS = 1000


@dataclass
class SpillState:
    """What the data plane's admission check reads (one attribute, no I/O)."""

    refusing: bool = False  # ATP_SPILL_FULL=reject and the spill is full or unwritable
    full: bool = False  # the spill holds ATP_SPILL_MAX_BYTES or more
    broken: bool = False  # the last append failed (disk full, permissions)
    spill_bytes: int = 0
    dead_letter_bytes: int = 0


@dataclass
class SpillStats:
    """Counters for /metrics, per queue."""

    spilled: Counter = field(default_factory=Counter)
    replayed: Counter = field(default_factory=Counter)
    dead_lettered: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)  # ATP_SPILL_FULL=proceed, spill full
    undecryptable: Counter = field(default_factory=Counter)
    refused_requests: int = 0


state = SpillState()
stats = SpillStats()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _seal(payload: Any) -> bytes:
    return crypto.encrypt_bytes(zlib.compress(encode_many(payload), 1)) + b"\n"


def _open(line: bytes) -> Any:
    return decode_many(zlib.decompress(crypto.decrypt_bytes(line.strip())))


def _parse(name: str) -> tuple[str, str, str] | None:
    """(queue, owner process, kind) of a spill or dead-letter file name."""
    parts = name.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1], parts[2]


class SpillStore:
    """The spill and dead-letter files of one data directory, seen from this process."""

    def __init__(self, root: Path, *, spill_state: SpillState | None = None) -> None:
        self.root = Path(root) / "write-behind"
        self.spill_dir = self.root / "spill"
        self.dead_dir = self.root / "dead-letter"
        self.alive_dir = self.root / "alive"
        self.state = spill_state if spill_state is not None else SpillState()
        self._alive_fd: int | None = None
        self._ready = False
        self._guard = threading.Lock()

    # --- set-up and locking ------------------------------------------------------------------

    def _setup(self) -> None:
        if self._ready:
            return
        with self._guard:
            if self._ready:
                return
            for path in (self.spill_dir, self.dead_dir, self.alive_dir):
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Held for the life of the process: others know from it that our files are
            # still being written, and may claim them once it is free.
            fd = os.open(self.alive_dir / PROCESS_ID, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._alive_fd = fd
            self._ready = True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The directory lock: one change at a time across threads and processes (flock
        on a fresh open file description conflicts with every other one)."""
        self._setup()
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _gone(self, owner: str, seen: dict[str, bool]) -> bool:
        """Whether process `owner` no longer runs (its alive lock is free)."""
        if owner == PROCESS_ID:
            return False
        if owner not in seen:
            path = self.alive_dir / owner
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                seen[owner] = True
            else:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    seen[owner] = False
                else:
                    seen[owner] = True
                    with contextlib.suppress(OSError):
                        path.unlink()
                finally:
                    os.close(fd)
        return seen[owner]

    def close(self) -> None:
        """Release this process's alive lock (tests; a process's exit does it anyway)."""
        with self._guard:
            if self._alive_fd is not None:
                with contextlib.suppress(OSError):
                    (self.alive_dir / PROCESS_ID).unlink()
                os.close(self._alive_fd)
                self._alive_fd = None
            self._ready = False

    # --- writing -----------------------------------------------------------------------------

    def _append(self, path: Path, line: bytes) -> None:
        new = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError:
                # A part-written line (disk full) would swallow the next one: cut it off.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)
        if new:
            _fsync_dir(path.parent)

    def append(self, queue: str, rows: list[Row]) -> int:
        """Append `rows` to this process's spill file for `queue`, durably; bytes written."""
        line = _seal(rows)
        with self._locked():
            self._append(self.spill_dir / f"{queue}.{PROCESS_ID}.log", line)
        stats.spilled[queue] += len(rows)
        return len(line)

    def dead_letter(self, queue: str, refused: list[tuple[Row, str]]) -> Path:
        """Set aside rows the database refused, each with the reason; returns the file."""
        now = datetime.now(UTC).isoformat()
        entries = [
            {"queue": queue, "at": now, "error": error, "row": row} for row, error in refused
        ]
        path = self.dead_dir / f"{queue}.{PROCESS_ID}.log"
        line = _seal(entries)
        with self._locked():
            self._append(path, line)
        stats.dead_lettered[queue] += len(refused)
        return path

    # --- replay --------------------------------------------------------------------------------

    def has_spill(self, queue: str | None = None) -> bool:
        """Whether any spill file (of `queue`) exists: a directory listing, no reading."""
        if not self.spill_dir.is_dir():
            return False
        prefix = f"{queue}." if queue else ""
        return any(entry.name.startswith(prefix) for entry in os.scandir(self.spill_dir))

    def claim(self, queue: str) -> list[Path]:
        """The spill files of `queue` this process may replay now, oldest first: its own
        (the current one is closed and renamed, so new rows start a new file) and those of
        processes that are gone."""
        if not self.spill_dir.is_dir():
            return []
        claimed = []
        seen: dict[str, bool] = {}
        with self._locked():
            for entry in os.scandir(self.spill_dir):
                parsed = _parse(entry.name)
                if parsed is None or parsed[0] != queue:
                    continue
                _, owner, kind = parsed
                path = Path(entry.path)
                if owner == PROCESS_ID and kind.startswith("replay-"):
                    claimed.append(path)
                elif owner == PROCESS_ID or self._gone(owner, seen):
                    target = self.spill_dir / f"{queue}.{PROCESS_ID}.replay-{uuid.uuid4().hex}"
                    path.rename(target)
                    claimed.append(target)
            if claimed:
                _fsync_dir(self.spill_dir)
        return sorted(claimed, key=lambda p: p.stat().st_mtime_ns)

    def reader(self, path: Path) -> SpillReader:
        return SpillReader(self, path)

    def finish(self, path: Path) -> None:
        """A claimed file is replayed: remove it."""
        with self._locked():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            _fsync_dir(path.parent)

    def set_aside_undecryptable(self, queue: str, line: bytes) -> None:
        """Keep a line no configured key decrypts (or a torn last line), as it is."""
        stats.undecryptable[queue] += 1
        with self._locked():
            self._append(self.dead_dir / f"{queue}.{PROCESS_ID}.undecryptable", line)

    # --- retention and erasure -------------------------------------------------------------------

    def rewrite(self, change: Callable[[str, Row], Row | None]) -> int:
        """Pass every waiting and dead-lettered row through `change` (None drops it) and
        rewrite the files that changed; returns how many rows were changed or dropped.

        Files are replaced atomically (a new file renamed over the old one) under the
        directory lock, so appends of every process wait for it.
        """
        changed = 0
        if not self.root.is_dir():
            return 0
        with self._locked():
            for directory, dead in ((self.spill_dir, False), (self.dead_dir, True)):
                for entry in list(os.scandir(directory)):
                    parsed = _parse(entry.name)
                    if parsed is None or parsed[2] == "undecryptable":
                        continue
                    changed += self._rewrite_file(Path(entry.path), parsed[0], dead, change)
        self.refresh()
        return changed

    def _rewrite_file(
        self, path: Path, queue: str, dead: bool, change: Callable[[str, Row], Row | None]
    ) -> int:
        out: list[bytes] = []
        changed = 0
        with open(path, "rb") as fh:
            for line in fh:
                try:
                    batch = _open(line)
                except Exception:
                    out.append(line if line.endswith(b"\n") else line + b"\n")
                    continue
                kept = []
                for item in batch:
                    row = item["row"] if dead else item
                    new = change(queue, row)
                    if new is not row:
                        changed += 1
                    if new is None:
                        continue
                    kept.append({**item, "row": new} if dead else new)
                if kept:
                    out.append(_seal(kept))
        if not changed:
            return 0
        if not out:
            path.unlink()
        else:
            temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                for line in out:
                    view = memoryview(line)
                    while view:
                        view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            temp.replace(path)
        _fsync_dir(path.parent)
        return changed

    def read_all(self, *, dead: bool = False) -> list[tuple[str, Row]]:
        """Every row waiting (or dead-lettered, as entries with their reason), by queue;
        for the operator's command and tests."""
        directory = self.dead_dir if dead else self.spill_dir
        found: list[tuple[str, Row]] = []
        if not directory.is_dir():
            return found
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            parsed = _parse(entry.name)
            if parsed is None or parsed[2] == "undecryptable":
                continue
            with open(entry.path, "rb") as fh:
                for line in fh:
                    with contextlib.suppress(Exception):
                        found.extend((parsed[0], item) for item in _open(line))
        return found

    # --- size and admission ----------------------------------------------------------------------

    def _bytes(self, directory: Path) -> int:
        if not directory.is_dir():
            return 0
        total = 0
        for entry in os.scandir(directory):
            with contextlib.suppress(OSError):
                total += entry.stat().st_size
        return total

    def refresh(self, *, broken: bool | None = None) -> SpillState:
        """Re-measure the spill and set the admission flags."""
        from django.conf import settings

        st = self.state
        if broken is not None:
            st.broken = broken
        st.spill_bytes = self._bytes(self.spill_dir)
        st.dead_letter_bytes = self._bytes(self.dead_dir)
        st.full = st.spill_bytes >= settings.ATP_SPILL_MAX_BYTES
        st.refusing = settings.ATP_SPILL_FULL == "reject" and (st.full or st.broken)
        return st


class SpillReader:
    """Reads a claimed spill file back, a step of about REPLAY_ROWS rows at a time."""

    def __init__(self, store: SpillStore, path: Path) -> None:
        self.store = store
        self.path = path
        self.queue = _parse(path.name)[0]
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close()

    def next_rows(self, limit: int = REPLAY_ROWS) -> list[Row] | None:
        """The next rows (None at the end); lines no key decrypts are set aside."""
        rows: list[Row] = []
        while len(rows) < limit:
            line = self._fh.readline()
            if not line:
                break
            try:
                rows.extend(_open(line))
            except Exception:
                logger.error(
                    "write-behind %s: a spilled line of %s cannot be read (torn by a crash, "
                    "or encrypted with a key no longer configured); set aside",
                    self.queue,
                    self.path.name,
                )
                self.store.set_aside_undecryptable(self.queue, line)
        return rows or None

    def close(self) -> None:
        self._fh.close()


_stores: dict[str, SpillStore] = {}
_stores_lock = threading.Lock()


def default_store() -> SpillStore:
    """The store of settings.DATA_DIR, whose state the data plane's admission reads."""
    from django.conf import settings

    key = str(settings.DATA_DIR)
    store = _stores.get(key)
    if store is None:
        with _stores_lock:
            store = _stores.get(key)
            if store is None:
                store = _stores[key] = SpillStore(settings.DATA_DIR, spill_state=state)
    return store


def describe(path: Path) -> str:
    """A file's name relative to the data directory, for logs and audit events."""
    from django.conf import settings

    with contextlib.suppress(ValueError):
        return str(path.relative_to(settings.DATA_DIR))
    return path.name
