"""SQL for jobs and their history, run inside the caller's use of the connection."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable
from typing import Any

import aiosqlite

from gateway.journal.records import HistoryEntry, JobRecord, JobState
from gateway.journal.rows import (
    JOB_COLUMNS,
    history_from_row,
    job_from_row,
    opt_text,
    results_json,
    to_text,
)

SOURCES = frozenset({"http", "mqtt", "web", "system"})
# Not finished yet: what the queue holds.
ACTIVE = (JobState.QUEUED.value, JobState.IN_PROGRESS.value, JobState.BLOCKED.value)


async def select_one(
    conn: aiosqlite.Connection, where: str, args: Iterable[Any] = ()
) -> JobRecord | None:
    """The first job matching `where` (which may end in ORDER BY / LIMIT)."""
    async with conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where}", tuple(args)) as cur:
        row = await cur.fetchone()
    return job_from_row(row) if row is not None else None


async def select_many(
    conn: aiosqlite.Connection, where: str, args: Iterable[Any] = ()
) -> list[JobRecord]:
    """Every job matching `where`."""
    async with conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where}", tuple(args)) as cur:
        return [job_from_row(r) for r in await cur.fetchall()]


async def scalar(conn: aiosqlite.Connection, sql: str, args: Iterable[Any] = ()) -> int:
    """One integer (a COUNT)."""
    async with conn.execute(sql, tuple(args)) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


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
    async with conn.execute(
        "SELECT job_seq, at, state, task_index, note FROM history WHERE job_seq = ? ORDER BY id",
        (seq,),
    ) as cur:
        return [history_from_row(r) for r in await cur.fetchall()]


def in_clause(values: Iterable[str]) -> tuple[str, list[str]]:
    """`IN (?, ?)` and its arguments; an empty set matches nothing."""
    names = list(values)
    return f"IN ({','.join('?' * len(names)) or 'NULL'})", names


def check_new(
    uuid: str, tasks_json: str, tasks_count: int, source: str, reply_to: str | None
) -> None:
    """Refuse arguments that would store a job the worker cannot run (a caller's bug)."""
    if not uuid:
        raise ValueError("a job needs a uuid")
    if source not in SOURCES:
        raise ValueError(f"unknown job source {source!r}; one of {sorted(SOURCES)}")
    try:
        tasks = json.loads(tasks_json)
    except ValueError as err:
        raise ValueError(f"tasks_json is not JSON: {err}") from err
    if not isinstance(tasks, list) or len(tasks) != tasks_count:
        raise ValueError(f"tasks_json must be a JSON list of {tasks_count} tasks")
    if reply_to is not None:
        try:
            json.loads(reply_to)
        except ValueError as err:
            raise ValueError(f"reply_to is not JSON: {err}") from err
