"""Copying the database out and back in: pg_dump/pg_restore on PostgreSQL, SQLite's backup API.

Both take a consistent copy while the server keeps writing: pg_dump reads one snapshot,
and SQLite's online backup copies every page in one step under a read lock (WAL lets
writers go on). Connection settings come from Django's (DATABASE_URL); a password
reaches the PostgreSQL tools through PGPASSWORD in their environment, never their
command line.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

POSTGRES_MEMBER = "database.pgdump"
SQLITE_MEMBER = "database.sqlite3.gz"


class DatabaseCopyError(Exception):
    """A dump or restore tool failed; the message is its own last words."""


def vendor(alias: str = "default") -> str:
    return connections[alias].vendor


def member_name(alias: str = "default") -> str:
    return POSTGRES_MEMBER if vendor(alias) == "postgresql" else SQLITE_MEMBER


def dump(target: Path, alias: str = "default") -> None:
    """Write a consistent copy of the database to `target` (the member's format)."""
    connection = connections[alias]
    if connection.in_atomic_block:
        # The dump copies what is committed; SQLite's backup would also wait forever on
        # this connection's own open transaction.
        raise DatabaseCopyError("a backup must run outside a database transaction")
    if connection.vendor == "postgresql":
        _run(["pg_dump", "--format=custom", "--no-password", f"--file={target}"], connection)
    elif connection.vendor == "sqlite":
        _sqlite_dump(connection, target)
    else:
        raise DatabaseCopyError(f"backups of {connection.vendor} databases are not supported")


def _sqlite_dump(connection: BaseDatabaseWrapper, target: Path) -> None:
    connection.ensure_connection()
    plain = target.with_suffix(".tmp")
    copy = sqlite3.connect(plain)
    try:
        # The connection Django writes through: in the embedded server (one writer
        # thread) and for an in-memory database alike, this sees what is committed.
        connection.connection.backup(copy)
    finally:
        copy.close()
    try:
        with open(plain, "rb") as src, gzip.open(target, "wb", compresslevel=6) as out:
            shutil.copyfileobj(src, out, 1 << 20)
    finally:
        plain.unlink(missing_ok=True)


def is_empty(alias: str = "default") -> bool:
    """Whether the database holds no tables at all (a new database, never migrated)."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        return not connection.introspection.table_names(cursor)


def restore(source: Path, *, replace: bool, alias: str = "default") -> None:
    """Load a dump into the database. `replace`: drop what is there first."""
    connection = connections[alias]
    if connection.vendor == "postgresql":
        if replace:
            _postgres_drop_tables(connection)
        connection.close()
        command = [
            "pg_restore",
            "--no-owner",
            "--no-acl",
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
        ]
        if replace:
            command += ["--clean", "--if-exists"]
        _run([*command, f"--dbname={connection.settings_dict['NAME']}", str(source)], connection)
    elif connection.vendor == "sqlite":
        _sqlite_restore(connection, source)
    else:
        raise DatabaseCopyError(f"restoring {connection.vendor} databases is not supported")


def _postgres_drop_tables(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        for table in tables:
            cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(table)} CASCADE")


def _sqlite_restore(connection: BaseDatabaseWrapper, source: Path) -> None:
    plain = source.with_suffix(".restore")
    with gzip.open(source, "rb") as src, open(plain, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    connection.close()
    copy = sqlite3.connect(plain)
    target = sqlite3.connect(connection.settings_dict["NAME"])
    try:
        # Replaces every page of the target, whatever it held, in one step.
        copy.backup(target)
    finally:
        target.close()
        copy.close()
        plain.unlink(missing_ok=True)


def _run(command: list[str], connection: BaseDatabaseWrapper) -> None:
    settings = connection.settings_dict
    env = {
        **os.environ,
        "PGDATABASE": settings.get("NAME") or "",
        "PGUSER": settings.get("USER") or "",
        "PGHOST": settings.get("HOST") or "",
        "PGPORT": str(settings.get("PORT") or ""),
    }
    env.pop("PGPASSWORD", None)
    if settings.get("PASSWORD"):
        env["PGPASSWORD"] = settings["PASSWORD"]
    sslmode = (settings.get("OPTIONS") or {}).get("sslmode")
    if sslmode:
        env["PGSSLMODE"] = sslmode
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise DatabaseCopyError(
            f"{command[0]} is not installed (the PostgreSQL client tools are needed)"
        ) from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit status {done.returncode}"
        raise DatabaseCopyError(f"{command[0]} failed: {detail}")
