"""SQLite rows to records and back: times as UTC ISO-8601 text, JSON columns."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from gateway.journal.records import (
    HistoryEntry,
    JobRecord,
    JobState,
    OutboxItem,
    OutboxKind,
    TaskResult,
)

# Fixed width (microseconds always printed, always +00:00), so text order is time order.
JOB_COLUMNS = (
    "seq, uuid, source, tasks_json, tasks_count, state, results_json, current_task, attempts, "
    "n0, fiscal_step, error_code, error_text, reply_to, created_at, updated_at, started_at, "
    "finished_at"
)
OUTBOX_COLUMNS = "id, kind, key, payload, created_at, attempts, reply_to"


def utc(when: dt.datetime) -> dt.datetime:
    """The same instant in UTC; a naive time is a caller's bug."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"journal times must be timezone-aware, got {when!r}")
    return when.astimezone(dt.UTC)


def to_text(when: dt.datetime) -> str:
    """A time as stored: '2026-11-22T12:38:16.123456+00:00'."""
    return utc(when).isoformat(timespec="microseconds")


def opt_text(when: dt.datetime | None) -> str | None:
    """A nullable time as stored."""
    return None if when is None else to_text(when)


def from_text(text: str) -> dt.datetime:
    """A stored time back to an aware datetime."""
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def opt_from(text: str | None) -> dt.datetime | None:
    """A stored nullable time back."""
    return None if text is None else from_text(text)


def dumps(obj: object) -> str:
    """Compact JSON, Cyrillic kept as is."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def results_json(results: Iterable[TaskResult]) -> str:
    """The per-task results column."""
    return dumps([r.to_json() for r in results])


def job_from_row(row: sqlite3.Row) -> JobRecord:
    """A `jobs` row (selected with JOB_COLUMNS) as a record."""
    results: list[dict[str, Any]] = json.loads(row["results_json"])
    return JobRecord(
        seq=int(row["seq"]),
        uuid=row["uuid"],
        source=row["source"],
        tasks_json=row["tasks_json"],
        tasks_count=int(row["tasks_count"]),
        state=JobState(row["state"]),
        task_results=tuple(TaskResult.from_json(r) for r in results),
        current_task=int(row["current_task"]),
        attempts=int(row["attempts"]),
        n0=row["n0"],
        fiscal_step=row["fiscal_step"],
        error_code=row["error_code"],
        error_text=row["error_text"],
        reply_to=row["reply_to"],
        created_at=from_text(row["created_at"]),
        updated_at=from_text(row["updated_at"]),
        started_at=opt_from(row["started_at"]),
        finished_at=opt_from(row["finished_at"]),
    )


def history_from_row(row: sqlite3.Row) -> HistoryEntry:
    """A `history` row as a record."""
    return HistoryEntry(
        job_seq=int(row["job_seq"]),
        at=from_text(row["at"]),
        state=JobState(row["state"]),
        task_index=row["task_index"],
        note=row["note"],
    )


def outbox_from_row(row: sqlite3.Row) -> OutboxItem:
    """An `outbox` row (selected with OUTBOX_COLUMNS) as a record."""
    return OutboxItem(
        id=int(row["id"]),
        kind=OutboxKind(row["kind"]),
        key=row["key"],
        payload_json=row["payload"],
        created_at=from_text(row["created_at"]),
        attempts=int(row["attempts"]),
        reply_to=row["reply_to"],
    )
