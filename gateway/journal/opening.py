"""Opening the journal file: integrity check, damaged files set aside, pragmas, migrations."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from pathlib import Path

import aiosqlite

from gateway.domain.errors import JournalError, JournalTooNew
from gateway.journal import schema

_LOGGER = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000  # another process (a backup, a technician's sqlite3) holding a lock
JOURNAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024  # the -wal file is cut back to this after a checkpoint
CLOSE_TIMEOUT_S = 10.0

# SQLite primary result codes that mean "the bytes are bad", not "cannot get at the file".
_DAMAGED = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_SIDE_FILES = ("-wal", "-shm", "-journal")


def is_damage(err: sqlite3.Error) -> bool:
    """The error says the file's content is damaged."""
    code = getattr(err, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _DAMAGED


def damaged_message(path: Path, detail: str) -> str:
    """What a technician reads when the journal is damaged."""
    return (
        f"journal file {path} is damaged ({detail}); it was left in place. Set "
        "journal.recreate_if_corrupt: true to keep it aside and start a new one, or restore "
        "it from a backup"
    )


async def close_quietly(conn: aiosqlite.Connection) -> None:
    """Close a connection on an error path without hiding the error that got us here."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await conn.close()
    except (sqlite3.Error, TimeoutError) as err:
        _LOGGER.warning("Closing the journal connection failed: %s", err)


def _read_only_uri(path: Path) -> str | None:
    """A read-only URI for an existing, non-empty file; None for a new journal."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    return f"{path.resolve().as_uri()}?mode=ro"


async def check_file(path: Path) -> str | None:
    """Check an existing file on a read-only connection before anything writes to it.

    Returns None when healthy, else what is damaged. A schema newer than ours raises
    JournalTooNew. Read-only, so a refused file (and its -wal) stays exactly as it was.
    integrity_check, not quick_check: only the full check proves the UNIQUE index on `uuid`
    matches the table, and that index is what keeps a receipt from being queued twice.
    Retention keeps the file small, so the full check takes well under a second on a Pi.
    """
    uri = await asyncio.to_thread(_read_only_uri, path)
    if uri is None:
        return None
    try:
        conn = await aiosqlite.connect(uri, uri=True)
    except sqlite3.Error as err:
        raise JournalError(f"cannot open journal file {path}: {err}") from err
    try:
        version = await _user_version(conn)
        if version > len(schema.MIGRATIONS):
            raise _too_new(path, version)
        async with conn.execute("PRAGMA integrity_check") as cur:
            rows = [str(r[0]) for r in await cur.fetchall()]
    except sqlite3.Error as err:
        if is_damage(err):
            return str(err)
        raise JournalError(f"cannot read journal file {path}: {err}") from err
    finally:
        await close_quietly(conn)
    return None if rows == ["ok"] else "; ".join(rows[:3])


def set_aside(path: Path, stamp: str) -> Path:
    """Rename a damaged journal and its side files to `<name>.corrupt-<stamp>`; the new name."""
    kept = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while kept.exists():
        n += 1
        kept = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    # Side files first: a stale -wal next to a fresh file would be replayed into it.
    for suffix in _SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(kept.with_name(kept.name + suffix))
    path.rename(kept)
    return kept


async def set_aside_damaged(path: Path, damage: str) -> Path:
    """Keep a damaged journal for a technician, log where it went, return that path."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = await asyncio.to_thread(set_aside, path, stamp)
    _LOGGER.error(
        "Journal file %s is damaged (%s); kept it as %s and started a new, empty journal",
        path,
        damage,
        kept,
    )
    return kept


async def configure(conn: aiosqlite.Connection, path: Path) -> None:
    """Per-connection settings: WAL, fsync on every commit, foreign keys, lock waits."""
    await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    async with conn.execute("PRAGMA page_count") as cur:
        row = await cur.fetchone()
    if row is not None and int(row[0]) == 0:
        # A new file: this only takes effect before the first table, and before WAL.
        await conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    async with conn.execute("PRAGMA journal_mode=WAL") as cur:
        row = await cur.fetchone()
    mode = str(row[0]) if row else "?"
    if mode.lower() != "wal":
        _LOGGER.warning(
            "Journal %s runs in %s mode: its file system does not support WAL", path, mode
        )
    # FULL: in WAL mode every commit is fsynced, so a committed job survives a power cut.
    await conn.execute("PRAGMA synchronous=FULL")
    await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT_BYTES}")


async def _user_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


def _too_new(path: Path, found: int) -> JournalTooNew:
    known = len(schema.MIGRATIONS)
    return JournalTooNew(
        f"journal file {path} has schema version {found}, newer than this gateway knows "
        f"({known}): it was written by a newer gateway. Install that version again; the file "
        "was not changed",
        found=found,
        known=known,
    )


async def migrate(conn: aiosqlite.Connection, path: Path) -> None:
    """Bring the schema to SCHEMA_VERSION in one transaction; refuse a newer file."""
    migrations = schema.MIGRATIONS
    target = len(migrations)
    version = await _user_version(conn)
    if version > target:
        raise _too_new(path, version)
    if version == target:
        return
    try:
        await conn.execute("BEGIN IMMEDIATE")
        version = await _user_version(conn)  # another process may have migrated meanwhile
        if version > target:
            raise _too_new(path, version)
        for script in migrations[version:]:
            for statement in schema.split_statements(script):
                await conn.execute(statement)
        await conn.execute(f"PRAGMA user_version={target}")
        await conn.execute("COMMIT")
    except BaseException:
        try:
            await asyncio.shield(conn.execute("ROLLBACK"))
        except sqlite3.Error as err:  # BEGIN itself failed: nothing to roll back
            _LOGGER.debug("Journal migration rollback: %s", err)
        raise
    if version == 0:
        _LOGGER.info("Created journal %s (schema %d)", path, target)
    else:
        _LOGGER.info("Journal %s upgraded from schema %d to %d", path, version, target)
