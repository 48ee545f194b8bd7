"""Outbox rows: results and events waiting for delivery, written inside the caller's transaction.

A result lives as long as its job: it is never dropped while its job is kept (retention
deletes both together, so a box whose office never collects results does not fill its disk;
the office reads anything older from its own store). Events are capped at EVENTS_KEPT rows (delivered or not): a box
offline for months keeps its newest events and drops the oldest, so the disk does not fill.
At a few hundred bytes an event, the cap is a few megabytes.

A row the broker refuses (an ACL that denies its topic) must not hold up the others: each
refusal counts in `attempts`, and the row is left out of `pending` for `backoff_s(attempts)`
after its last attempt (5 s doubling to an hour), while the rest flow. A broken link is not a
refusal and counts nothing: everything simply waits for the next connection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import aiosqlite

from gateway.journal.records import JobRecord, OutboxItem, OutboxKind
from gateway.journal.rows import OUTBOX_COLUMNS, dumps, outbox_from_row, to_text

EVENTS_KEPT = 10_000
BACKOFF_FIRST_S = 5
BACKOFF_MAX_S = 3600


def backoff_s(attempts: int) -> int:
    """How long a row refused `attempts` times waits before it is offered again."""
    if attempts <= 0:
        return 0
    return int(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(attempts - 1, 20)))


# The same rule in SQL (julianday counts days); a row without a last attempt is due.
_DUE = (
    "(attempts = 0 OR last_attempt_at IS NULL OR julianday(last_attempt_at) + "
    f"min({BACKOFF_MAX_S}, {BACKOFF_FIRST_S} * (1 << min(attempts - 1, 20))) / 86400.0 "
    "<= julianday(?))"
)


async def add_result(conn: aiosqlite.Connection, job: JobRecord, now: dt.datetime) -> int:
    """Queue the job's ATOL GET body for delivery; the row id."""
    cur = await conn.execute(
        "INSERT INTO outbox (kind, key, payload, reply_to, created_at) VALUES (?, ?, ?, ?, ?)",
        (OutboxKind.RESULT.value, job.uuid, dumps(job.atol_results()), job.reply_to, to_text(now)),
    )
    return int(cur.lastrowid or 0)


async def add_ack(
    conn: aiosqlite.Connection, job: JobRecord, status: str, reply_to: str | None, now: dt.datetime
) -> int:
    """Queue `{"uuid", "status": accepted|duplicate, "number", "state"}`; the row id."""
    body = {"uuid": job.uuid, "status": status, "number": job.seq, "state": job.state.value}
    cur = await conn.execute(
        "INSERT INTO outbox (kind, key, payload, reply_to, created_at) VALUES (?, ?, ?, ?, ?)",
        (OutboxKind.ACK.value, job.uuid, dumps(body), reply_to, to_text(now)),
    )
    return int(cur.lastrowid or 0)


async def add_rejection(
    conn: aiosqlite.Connection,
    uuid: str,
    error: dict[str, Any],
    reply_to: str | None,
    now: dt.datetime,
) -> int:
    """Queue `{"uuid", "status": "rejected", "error"}` for a command nothing was queued for."""
    body = {"uuid": uuid, "status": "rejected", "error": error}
    cur = await conn.execute(
        "INSERT INTO outbox (kind, key, payload, reply_to, created_at) VALUES (?, ?, ?, ?, ?)",
        (OutboxKind.ACK.value, uuid, dumps(body), reply_to, to_text(now)),
    )
    return int(cur.lastrowid or 0)


async def add_result_again(
    conn: aiosqlite.Connection, job: JobRecord, reply_to: str | None, now: dt.datetime
) -> int:
    """Queue a finished job's stored result once more (a repeated command), to `reply_to`."""
    cur = await conn.execute(
        "INSERT INTO outbox (kind, key, payload, reply_to, created_at) VALUES (?, ?, ?, ?, ?)",
        (OutboxKind.RESULT.value, job.uuid, dumps(job.atol_results()), reply_to, to_text(now)),
    )
    return int(cur.lastrowid or 0)


async def add_event(
    conn: aiosqlite.Connection, kind: str, payload: dict[str, Any], now: dt.datetime
) -> tuple[int, int]:
    """Queue `{"event": kind, "at": ..., **payload}`; the row id and how many old events fell off."""
    if not kind:
        raise ValueError("an event needs a kind")
    if "event" in payload or "at" in payload:
        raise ValueError("event payload keys 'event' and 'at' are set by the journal")
    body = {"event": kind, "at": to_text(now), **payload}
    key = payload.get("uuid")
    cur = await conn.execute(
        "INSERT INTO outbox (kind, key, payload, created_at) VALUES (?, ?, ?, ?)",
        (
            OutboxKind.EVENT.value,
            key if isinstance(key, str) else None,
            dumps(body),
            to_text(now),
        ),
    )
    dropped = await conn.execute(
        "DELETE FROM outbox WHERE kind = 'event' AND id <= "
        "(SELECT id FROM outbox WHERE kind = 'event' ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (EVENTS_KEPT,),
    )
    return int(cur.lastrowid or 0), max(dropped.rowcount, 0)


async def pending(
    conn: aiosqlite.Connection,
    limit: int,
    kinds: Iterable[str] | None,
    now: dt.datetime | None = None,
) -> list[OutboxItem]:
    """Undelivered rows due for delivery (refused ones after their backoff), oldest first."""
    when = dt.datetime.now(dt.UTC) if now is None else now
    where = f"delivered_at IS NULL AND {_DUE}"
    args: list[Any] = [to_text(when)]
    if kinds is not None:
        names = [OutboxKind(k).value for k in kinds]
        if not names:
            return []
        where += f" AND kind IN ({','.join('?' * len(names))})"
        args += names
    async with conn.execute(
        f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE {where} ORDER BY id LIMIT ?", (*args, limit)
    ) as cur:
        return [outbox_from_row(r) for r in await cur.fetchall()]


async def mark(conn: aiosqlite.Connection, sql: str, ids: Iterable[int], now: dt.datetime) -> int:
    """Run an UPDATE taking (time, id) for every id; how many rows changed."""
    when = to_text(now)
    changed = 0
    for row_id in ids:
        cur = await conn.execute(sql, (when, int(row_id)))
        changed += max(cur.rowcount, 0)
    return changed


MARK_DONE = "UPDATE outbox SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL"
# A refused delivery: counted, and the row waits `backoff_s(attempts)` from now.
MARK_ATTEMPTED = (
    "UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ? "
    "WHERE id = ? AND delivered_at IS NULL"
)


async def depth(conn: aiosqlite.Connection, kinds: Iterable[str] | None) -> int:
    """Undelivered rows."""
    where = "delivered_at IS NULL"
    args: list[str] = []
    if kinds is not None:
        names = [OutboxKind(k).value for k in kinds]
        where += f" AND kind IN ({','.join('?' * len(names)) or 'NULL'})"
        args += names
    async with conn.execute(f"SELECT COUNT(*) FROM outbox WHERE {where}", args) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def purge_delivered(conn: aiosqlite.Connection, cutoff: dt.datetime) -> int:
    """Delete rows delivered before the cutoff; how many."""
    cur = await conn.execute(
        "DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?",
        (to_text(cutoff),),
    )
    return max(cur.rowcount, 0)


async def purge_orphan_results(conn: aiosqlite.Connection) -> int:
    """Delete undelivered results whose job retention has deleted; how many."""
    cur = await conn.execute(
        "DELETE FROM outbox WHERE kind = 'result' AND delivered_at IS NULL "
        "AND key NOT IN (SELECT uuid FROM jobs)"
    )
    return max(cur.rowcount, 0)
