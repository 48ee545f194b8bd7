"""The journal: the only user of aiosqlite. Every write commits before it returns.

WAL with synchronous=FULL: a committed row survives a power cut. Writes are serialised by
one lock; a job's state change and its outbox row are written in the same transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from gateway.errors import CorruptJournal, DuplicateJob, InvalidJobState, JobNotFound, JournalError
from gateway.journal.records import (
    FINISHED,
    HistoryEntry,
    JobRecord,
    JobState,
    OutboxItem,
    TaskResult,
)
from gateway.journal.schema import MIGRATIONS, SCHEMA_VERSION

_LOGGER = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 30.0
WRITE_TIMEOUT_S = 30.0
BUSY_TIMEOUT_MS = 5000
EVENTS_KEPT = 10_000  # a box offline for months keeps the newest events; results are never dropped

_JOB_COLUMNS = (
    "seq, uuid, source, tasks_json, state, results_json, current_task, attempts, n0, fiscal_step, "
    "error_code, error_text, reply_to, created_at, updated_at, started_at, finished_at"
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ts(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def _parse_ts(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _set_aside(path: Path, stamp: str) -> None:
    """Rename a damaged journal (and its WAL files) so a technician can still read it."""
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            src.rename(Path(f"{path}.corrupt-{stamp}{suffix}"))


def _job(row: sqlite3.Row | tuple[Any, ...]) -> JobRecord:
    results = tuple(TaskResult.from_json(r) for r in json.loads(row[5]))
    created = _parse_ts(row[13])
    updated = _parse_ts(row[14])
    assert created is not None
    assert updated is not None
    return JobRecord(
        seq=row[0],
        uuid=row[1],
        source=row[2],
        tasks_json=row[3],
        state=JobState(row[4]),
        task_results=results,
        current_task=row[6],
        attempts=row[7],
        n0=row[8],
        fiscal_step=row[9],
        error_code=row[10],
        error_text=row[11],
        reply_to=row[12],
        created_at=created,
        updated_at=updated,
        started_at=_parse_ts(row[15]),
        finished_at=_parse_ts(row[16]),
    )


class Journal:
    """Jobs, their history, the outbox and a small key-value table, in one SQLite file."""

    def __init__(self, path: Path, db: aiosqlite.Connection, integrity: str) -> None:
        self.path = path
        self._db = db
        self._write_lock = asyncio.Lock()
        self.integrity_result = integrity

    @classmethod
    async def open(cls, path: Path, *, recreate_if_corrupt: bool = False) -> Journal:
        """Open (creating if needed), check integrity, migrate."""
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        try:
            return await cls._open(path)
        except CorruptJournal:
            if not recreate_if_corrupt:
                raise
            stamp = _now().strftime("%Y%m%dT%H%M%SZ")
            await asyncio.to_thread(_set_aside, path, stamp)
            _LOGGER.error(
                "Journal %s was damaged; kept as %s.corrupt-%s, starting a new one",
                path,
                path,
                stamp,
            )
            return await cls._open(path)

    @classmethod
    async def _open(cls, path: Path) -> Journal:
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            db = await aiosqlite.connect(path, isolation_level=None)
            try:
                integrity = await cls._check(db, path)
                await db.execute("PRAGMA journal_mode=WAL")
                await db.execute("PRAGMA synchronous=FULL")
                await db.execute("PRAGMA foreign_keys=ON")
                await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                await cls._migrate(db, path)
            except BaseException:
                await db.close()
                raise
        return cls(path, db, integrity)

    @staticmethod
    async def _check(db: aiosqlite.Connection, path: Path) -> str:
        try:
            async with db.execute("PRAGMA integrity_check") as cur:
                rows = [str(r[0]) for r in await cur.fetchall()]
        except sqlite3.DatabaseError as err:
            rows = [str(err)]
        if rows != ["ok"]:
            raise CorruptJournal(
                f"journal file {path} is damaged ({'; '.join(rows[:3])}); it was left in place. "
                "Set journal.recreate_if_corrupt: true to keep it aside and start a new one, or restore a backup."
            )
        return "ok"

    @staticmethod
    async def _migrate(db: aiosqlite.Connection, path: Path) -> None:
        async with db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"journal {path} has schema version {version}, newer than this version knows ({SCHEMA_VERSION}); "
                "install the newer gateway again or restore the journal it wrote"
            )
        if version == SCHEMA_VERSION:
            return
        await db.execute("BEGIN IMMEDIATE")
        try:
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        await db.execute(statement)
            await db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        _LOGGER.info("Journal %s migrated from schema %d to %d", path, version, SCHEMA_VERSION)

    async def close(self) -> None:
        """Close the file."""
        await self._db.close()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction, committed (durably) on exit."""
        async with self._write_lock:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    await asyncio.shield(self._db.execute("ROLLBACK"))
                    raise
                await asyncio.shield(self._db.execute("COMMIT"))

    # --- reads -----------------------------------------------------------------------------

    async def _one(self, sql: str, args: Iterable[Any] = ()) -> JobRecord | None:
        async with self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs {sql}", tuple(args)) as cur:
            row = await cur.fetchone()
        return _job(row) if row else None

    async def find(self, uuid: str) -> JobRecord | None:
        """The job, or None."""
        return await self._one("WHERE uuid = ?", (uuid,))

    async def get(self, uuid: str) -> JobRecord:
        """The job, or JobNotFound."""
        job = await self.find(uuid)
        if job is None:
            raise JobNotFound(uuid)
        return job

    async def list_jobs(
        self,
        *,
        states: Iterable[JobState] | None = None,
        limit: int = 50,
        before_seq: int | None = None,
    ) -> list[JobRecord]:
        """Newest first."""
        where: list[str] = []
        args: list[Any] = []
        if states is not None:
            names = [s.value for s in states]
            where.append(f"state IN ({','.join('?' * len(names))})")
            args += names
        if before_seq is not None:
            where.append("seq < ?")
            args.append(before_seq)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        async with self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs {clause} ORDER BY seq DESC LIMIT ?", (*args, limit)
        ) as cur:
            return [_job(r) for r in await cur.fetchall()]

    async def counts(self) -> dict[JobState, int]:
        """Jobs per state."""
        async with self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state") as cur:
            return {JobState(s): n for s, n in await cur.fetchall()}

    async def queue_depth(self) -> int:
        """Jobs not yet finished (queued, in progress, blocked)."""
        async with self._db.execute(
            "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'in_progress', 'blocked')"
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def oldest_queued(self) -> JobRecord | None:
        """The oldest job still waiting."""
        return await self._one("WHERE state = 'queued' ORDER BY seq LIMIT 1")

    async def is_blocked(self) -> JobRecord | None:
        """The job that stops the queue, if any."""
        return await self._one("WHERE state = 'blocked' ORDER BY seq LIMIT 1")

    async def next_job(self) -> JobRecord | None:
        """A job left in progress (recovery) first, else the oldest queued one."""
        return await self._one(
            "WHERE state IN ('in_progress', 'queued') ORDER BY state = 'queued', seq LIMIT 1"
        )

    async def history(self, uuid: str) -> list[HistoryEntry]:
        """The job's state changes, oldest first."""
        job = await self.get(uuid)
        async with self._db.execute(
            "SELECT at, state, task_index, note FROM history WHERE job_seq = ? ORDER BY id",
            (job.seq,),
        ) as cur:
            return [
                HistoryEntry(_parse_ts(a) or _now(), s, t, n) for a, s, t, n in await cur.fetchall()
            ]

    # --- job transitions -------------------------------------------------------------------------

    async def submit(
        self,
        uuid: str,
        tasks_json: str,
        tasks_count: int,
        *,
        source: str,
        reply_to: str | None = None,
        now: dt.datetime | None = None,
    ) -> JobRecord:
        """Queue a job; a known uuid raises DuplicateJob carrying the stored one."""
        when = _ts(now or _now())
        results = json.dumps([TaskResult("wait").to_json()] * tasks_count)
        try:
            async with self._tx() as db:
                cur = await db.execute(
                    "INSERT INTO jobs (uuid, source, tasks_json, tasks_count, state, results_json, reply_to, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                    (uuid, source, tasks_json, tasks_count, results, reply_to, when, when),
                )
                await db.execute(
                    "INSERT INTO history (job_seq, at, state, note) VALUES (?, ?, 'queued', ?)",
                    (cur.lastrowid, when, f"from {source}"),
                )
        except sqlite3.IntegrityError:
            raise DuplicateJob(uuid, await self.find(uuid)) from None
        return await self.get(uuid)

    async def _update(
        self,
        uuid: str,
        *,
        note: str,
        task_index: int | None,
        now: dt.datetime | None,
        expect: tuple[JobState, ...],
        outbox: bool = False,
        **changes: Any,
    ) -> JobRecord:
        when = _ts(now or _now())
        async with self._tx() as db:
            job = await self._one("WHERE uuid = ?", (uuid,))
            if job is None:
                raise JobNotFound(uuid)
            if job.state not in expect:
                raise InvalidJobState(f"job {uuid} is {job.state.value}; cannot {note}")
            results = list(job.task_results)
            for index, result in changes.pop("results", {}).items():
                results[index] = result
            changes["results_json"] = json.dumps([r.to_json() for r in results])
            changes["updated_at"] = when
            cols = ", ".join(f"{k} = ?" for k in changes)
            await db.execute(f"UPDATE jobs SET {cols} WHERE seq = ?", (*changes.values(), job.seq))
            state = changes.get("state", job.state.value)
            await db.execute(
                "INSERT INTO history (job_seq, at, state, task_index, note) VALUES (?, ?, ?, ?, ?)",
                (job.seq, when, state, task_index, note),
            )
            updated = await self._one("WHERE seq = ?", (job.seq,))
            assert updated is not None
            if outbox:
                await db.execute(
                    "INSERT INTO outbox (kind, key, payload, created_at) VALUES ('result', ?, ?, ?)",
                    (uuid, json.dumps(updated.atol_results(), ensure_ascii=False), when),
                )
            if updated.state is JobState.BLOCKED:
                await self._event(
                    db, "job_blocked", {"uuid": uuid, "reason": updated.error_text}, when
                )
        return updated

    async def start(self, uuid: str, now: dt.datetime | None = None) -> JobRecord:
        """queued -> in_progress."""
        job = await self.get(uuid)
        return await self._update(
            uuid,
            note="started",
            task_index=None,
            now=now,
            expect=(JobState.QUEUED,),
            state=JobState.IN_PROGRESS.value,
            started_at=_ts(now or _now()),
            attempts=job.attempts + 1,
        )

    async def begin_fiscal_step(
        self, uuid: str, task_index: int, step: str, n0: int, now: dt.datetime | None = None
    ) -> JobRecord:
        """Committed before the first byte of a fiscal document goes to the register."""
        return await self._update(
            uuid,
            note=f"{step}: N0={n0}",
            task_index=task_index,
            now=now,
            expect=(JobState.IN_PROGRESS,),
            current_task=task_index,
            fiscal_step=step,
            n0=n0,
            results={task_index: TaskResult("inProgress")},
        )

    async def finish_task(
        self, uuid: str, task_index: int, result: dict[str, Any], now: dt.datetime | None = None
    ) -> JobRecord:
        """A task is ready; the next one becomes current."""
        return await self._update(
            uuid,
            note="task ready",
            task_index=task_index,
            now=now,
            expect=(JobState.IN_PROGRESS,),
            current_task=task_index + 1,
            fiscal_step=None,
            n0=None,
            results={task_index: TaskResult("ready", result)},
        )

    async def complete(self, uuid: str, now: dt.datetime | None = None) -> JobRecord:
        """All tasks ready: done."""
        return await self._update(
            uuid,
            note="done",
            task_index=None,
            now=now,
            expect=(JobState.IN_PROGRESS,),
            outbox=True,
            state=JobState.DONE.value,
            finished_at=_ts(now or _now()),
        )

    async def fail_task(
        self,
        uuid: str,
        task_index: int,
        code: int,
        description: str,
        now: dt.datetime | None = None,
    ) -> JobRecord:
        """A task failed: the rest are interrupted and the job failed."""
        job = await self.get(uuid)
        results = {task_index: TaskResult("error", None, code, description)}
        for i in range(task_index + 1, len(job.task_results)):
            results[i] = TaskResult("interrupted", None, 502, "interrupted by an earlier error")
        return await self._update(
            uuid,
            note=f"failed: {description}",
            task_index=task_index,
            now=now,
            expect=(JobState.IN_PROGRESS, JobState.BLOCKED),
            outbox=True,
            state=JobState.FAILED.value,
            fiscal_step=None,
            n0=None,
            error_code=code,
            error_text=description,
            finished_at=_ts(now or _now()),
            results=results,
        )

    async def block(
        self,
        uuid: str,
        task_index: int,
        code: int,
        description: str,
        now: dt.datetime | None = None,
    ) -> JobRecord:
        """Outcome unknown: the job is blocked and the queue stops."""
        return await self._update(
            uuid,
            note=f"blocked: {description}",
            task_index=task_index,
            now=now,
            expect=(JobState.IN_PROGRESS,),
            outbox=True,
            state=JobState.BLOCKED.value,
            error_code=code,
            error_text=description,
            results={task_index: TaskResult("blocked", None, code, description)},
        )

    async def unblock_retry(
        self, uuid: str, note: str, now: dt.datetime | None = None
    ) -> JobRecord:
        """A person asks for recovery to run again (the fiscal step and N0 are kept)."""
        return await self._update(
            uuid,
            note=f"retry: {note}",
            task_index=None,
            now=now,
            expect=(JobState.BLOCKED,),
            state=JobState.IN_PROGRESS.value,
            error_code=None,
            error_text=None,
        )

    async def cancel(self, uuid: str, now: dt.datetime | None = None) -> JobRecord:
        """Cancel a job that has not started."""
        job = await self.get(uuid)
        canceled = TaskResult("canceled", None, 503, "canceled")
        return await self._update(
            uuid,
            note="canceled",
            task_index=None,
            now=now,
            expect=(JobState.QUEUED,),
            outbox=True,
            state=JobState.CANCELED.value,
            finished_at=_ts(now or _now()),
            results=dict.fromkeys(range(len(job.task_results)), canceled),
        )

    # --- outbox, events, meta, retention ------------------------------------------------------

    async def _event(
        self, db: aiosqlite.Connection, kind: str, payload: dict[str, Any], when: str
    ) -> None:
        body = json.dumps({"event": kind, "at": when, **payload}, ensure_ascii=False)
        await db.execute(
            "INSERT INTO outbox (kind, key, payload, created_at) VALUES ('event', ?, ?, ?)",
            (kind, body, when),
        )
        await db.execute(
            "DELETE FROM outbox WHERE kind = 'event' AND id <= "
            "(SELECT id FROM outbox WHERE kind = 'event' ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (EVENTS_KEPT,),
        )

    async def add_event(
        self, kind: str, payload: dict[str, Any], now: dt.datetime | None = None
    ) -> None:
        """Record an event for delivery (alerts, state changes)."""
        async with self._tx() as db:
            await self._event(db, kind, payload, _ts(now or _now()))

    async def outbox_pending(
        self, limit: int = 100, kinds: Iterable[str] | None = None
    ) -> list[OutboxItem]:
        """Oldest undelivered rows first."""
        sql, args = "SELECT id, kind, key, payload, created_at, attempts FROM outbox", []
        if kinds is not None:
            names = list(kinds)
            sql += f" WHERE kind IN ({','.join('?' * len(names))})"
            args += names
        async with self._db.execute(sql + " ORDER BY id LIMIT ?", (*args, limit)) as cur:
            return [
                OutboxItem(i, k, key, p, _parse_ts(c) or _now(), a)
                for i, k, key, p, c, a in await cur.fetchall()
            ]

    async def outbox_done(self, ids: Iterable[int]) -> None:
        """Delivered: remove."""
        async with self._tx() as db:
            await db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    async def outbox_depth(self) -> int:
        """Rows waiting for delivery."""
        async with self._db.execute("SELECT COUNT(*) FROM outbox") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def meta_get(self, key: str) -> str | None:
        """A stored value."""
        async with self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def meta_set(self, key: str, value: str) -> None:
        """Store a value (committed)."""
        async with self._tx() as db:
            await db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    async def purge(self, older_than_days: int, now: dt.datetime | None = None) -> int:
        """Delete finished jobs past retention; never queued, in-progress or blocked ones."""
        cutoff = _ts((now or _now()) - dt.timedelta(days=older_than_days))
        states = tuple(s.value for s in FINISHED)
        async with self._tx() as db:
            cur = await db.execute(
                f"DELETE FROM jobs WHERE state IN ({','.join('?' * len(states))}) AND finished_at < ?",
                (*states, cutoff),
            )
            removed = cur.rowcount
        return max(removed, 0)
