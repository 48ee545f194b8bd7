"""SQL for jobs and their history, run inside the caller's use of the connection."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from gateway.journal.records import HistoryEntry, JobRecord, JobState, TaskResult, TaskStatus
from gateway.journal.rows import (
    JOB_COLUMNS,
    history_from_row,
    job_from_row,
    opt_text,
    results_json,
    to_text,
    utc,
)

SOURCES = frozenset({"http", "kkmserver", "mqtt", "web", "system"})
# Not finished yet: what the queue holds.
ACTIVE = (JobState.QUEUED.value, JobState.IN_PROGRESS.value, JobState.BLOCKED.value)


# Every statement is one trip to the connection's thread: execute_fetchall, not a cursor
# (execute, fetch, close are three trips each).


async def select_one(
    conn: aiosqlite.Connection, where: str, args: Iterable[Any] = ()
) -> JobRecord | None:
    """The first job matching `where` (which may end in ORDER BY / LIMIT)."""
    rows = await conn.execute_fetchall(f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where}", tuple(args))
    for row in rows:
        return job_from_row(row)
    return None


async def select_many(
    conn: aiosqlite.Connection, where: str, args: Iterable[Any] = ()
) -> list[JobRecord]:
    """Every job matching `where`."""
    rows = await conn.execute_fetchall(f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where}", tuple(args))
    return [job_from_row(r) for r in rows]


async def scalar(conn: aiosqlite.Connection, sql: str, args: Iterable[Any] = ()) -> int:
    """One integer (a COUNT)."""
    for row in await conn.execute_fetchall(sql, tuple(args)):
        return int(row[0]) if row[0] is not None else 0
    return 0


def is_uuid_conflict(err: sqlite3.IntegrityError) -> bool:
    """The insert hit the UNIQUE constraint on jobs.uuid (and nothing else)."""
    return getattr(
        err, "sqlite_errorcode", None
    ) == sqlite3.SQLITE_CONSTRAINT_UNIQUE and "jobs.uuid" in str(err)


async def insert(
    conn: aiosqlite.Connection,
    *,
    uuid: str,
    source: str,
    tasks_json: str,
    tasks_count: int,
    results: str,
    reply_to: str | None,
    now: dt.datetime,
) -> int:
    """A new queued job; its seq. Raises sqlite3.IntegrityError for a known uuid."""
    when = to_text(now)
    cur = await conn.execute(
        "INSERT INTO jobs (uuid, source, tasks_json, tasks_count, state, results_json, "
        "reply_to, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            uuid,
            source,
            tasks_json,
            tasks_count,
            JobState.QUEUED.value,
            results,
            reply_to,
            when,
            when,
        ),
    )
    return int(cur.lastrowid or 0)


async def update(conn: aiosqlite.Connection, job: JobRecord) -> None:
    """Write every mutable column of the record."""
    await conn.execute(
        "UPDATE jobs SET state = ?, results_json = ?, current_task = ?, attempts = ?, n0 = ?, "
        "fiscal_step = ?, error_code = ?, error_text = ?, updated_at = ?, started_at = ?, "
        "finished_at = ? WHERE seq = ?",
        (
            job.state.value,
            results_json(job.task_results),
            job.current_task,
            job.attempts,
            job.n0,
            job.fiscal_step,
            job.error_code,
            job.error_text,
            to_text(job.updated_at),
            opt_text(job.started_at),
            opt_text(job.finished_at),
            job.seq,
        ),
    )


async def add_history(
    conn: aiosqlite.Connection,
    seq: int,
    state: JobState,
    task_index: int | None,
    note: str,
    now: dt.datetime,
) -> None:
    """One line of a job's history."""
    await conn.execute(
        "INSERT INTO history (job_seq, at, state, task_index, note) VALUES (?, ?, ?, ?, ?)",
        (seq, to_text(now), state.value, task_index, note),
    )


async def history(conn: aiosqlite.Connection, seq: int) -> list[HistoryEntry]:
    """A job's history, oldest first."""
    rows = await conn.execute_fetchall(
        "SELECT job_seq, at, state, task_index, note FROM history WHERE job_seq = ? ORDER BY id",
        (seq,),
    )
    return [history_from_row(r) for r in rows]


def in_clause(values: Iterable[str]) -> tuple[str, list[str]]:
    """`IN (?, ?)` and its arguments; an empty set matches nothing."""
    names = list(values)
    return f"IN ({','.join('?' * len(names)) or 'NULL'})", names


def check_new(
    uuid: str,
    tasks_json: str,
    tasks_count: int,
    source: str,
    reply_to: str | None,
    *,
    parsed: bool = False,
) -> None:
    """Refuse arguments that would store a job the worker cannot run (a caller's bug).

    `parsed`: the caller parsed `tasks_json` itself; it is not parsed a second time here.
    """
    if not uuid:
        raise ValueError("a job needs a uuid")
    if source not in SOURCES:
        raise ValueError(f"unknown job source {source!r}; one of {sorted(SOURCES)}")
    if parsed:
        if not tasks_json.startswith("["):
            raise ValueError("tasks_json must be a JSON list")
    else:
        _check_tasks_json(tasks_json, tasks_count)
    if reply_to is not None:
        try:
            json.loads(reply_to)
        except ValueError as err:
            raise ValueError(f"reply_to is not JSON: {err}") from err


def _check_tasks_json(tasks_json: str, tasks_count: int) -> None:
    try:
        tasks = json.loads(tasks_json)
    except ValueError as err:
        raise ValueError(f"tasks_json is not JSON: {err}") from err
    if not isinstance(tasks, list) or len(tasks) != tasks_count:
        raise ValueError(f"tasks_json must be a JSON list of {tasks_count} tasks")


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to insert: what a submission gives, and when it arrived."""

    uuid: str
    source: str
    tasks_json: str
    tasks_count: int
    reply_to: str | None
    now: dt.datetime

    def record(self, seq: int) -> JobRecord:
        """The job as `insert_new` stored it (no read back needed)."""
        return JobRecord(
            seq=seq,
            uuid=self.uuid,
            source=self.source,
            tasks_json=self.tasks_json,
            tasks_count=self.tasks_count,
            state=JobState.QUEUED,
            task_results=(TaskResult(TaskStatus.WAIT),) * self.tasks_count,
            current_task=0,
            attempts=0,
            n0=None,
            fiscal_step=None,
            error_code=None,
            error_text=None,
            reply_to=self.reply_to,
            created_at=utc(self.now),
            updated_at=utc(self.now),
            started_at=None,
            finished_at=None,
        )


INSERT_CHUNK = 100  # rows per multi-row INSERT: 9 parameters each, far below SQLite's limit


async def insert_new(conn: aiosqlite.Connection, new: Sequence[NewJob]) -> dict[str, int]:
    """Insert queued jobs, one statement per chunk; uuid -> seq of each row inserted.

    A uuid already stored, or given earlier in `new`, is skipped: the UNIQUE constraint
    decides, not a look-up first, so this is race-safe by construction. Seqs follow `new`'s
    order.
    """
    out: dict[str, int] = {}
    for start in range(0, len(new), INSERT_CHUNK):
        chunk = new[start : start + INSERT_CHUNK]
        args: list[Any] = []
        for job in chunk:
            when = to_text(job.now)
            waiting = results_json((TaskResult(TaskStatus.WAIT),) * job.tasks_count)
            args += [job.uuid, job.source, job.tasks_json, job.tasks_count]
            args += [JobState.QUEUED.value, waiting, job.reply_to, when, when]
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        rows = await conn.execute_fetchall(
            "INSERT INTO jobs (uuid, source, tasks_json, tasks_count, state, results_json, "
            f"reply_to, created_at, updated_at) VALUES {values} "
            "ON CONFLICT (uuid) DO NOTHING RETURNING seq, uuid",
            args,
        )
        out.update((str(row[1]), int(row[0])) for row in rows)
    return out


async def add_history_many(
    conn: aiosqlite.Connection,
    lines: Sequence[tuple[int, JobState, int | None, str, dt.datetime]],
) -> None:
    """History lines (seq, state, task index, note, time) in one statement per chunk."""
    for start in range(0, len(lines), INSERT_CHUNK):
        chunk = lines[start : start + INSERT_CHUNK]
        args: list[Any] = []
        for seq, state, task_index, note, now in chunk:
            args += [seq, to_text(now), state.value, task_index, note]
        values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
        await conn.execute(
            f"INSERT INTO history (job_seq, at, state, task_index, note) VALUES {values}", args
        )
