"""Status-page samples and retention: SQL that keeps the file bounded."""

from __future__ import annotations

import datetime as dt

import aiosqlite

from gateway.journal import jobs
from gateway.journal.records import FINISHED
from gateway.journal.rows import from_text, to_text

METRICS_KEPT = dt.timedelta(hours=24)  # queue-depth samples older than this are dropped
METRICS_ROWS_KEPT = 20_000  # and never more rows than this, whatever the clock does


async def record_queue_depth(conn: aiosqlite.Connection, now: dt.datetime) -> int:
    """Store one queue-depth sample, drop old ones; the depth."""
    clause, names = jobs.in_clause(jobs.ACTIVE)
    depth = await jobs.scalar(conn, f"SELECT COUNT(*) FROM jobs WHERE state {clause}", names)
    await conn.execute(
        "INSERT INTO queue_depth_samples (at, depth) VALUES (?, ?)", (to_text(now), depth)
    )
    await conn.execute(
        "DELETE FROM queue_depth_samples WHERE at < ? OR id <= "
        "(SELECT id FROM queue_depth_samples ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (to_text(now - METRICS_KEPT), METRICS_ROWS_KEPT),
    )
    return depth


async def queue_depth_samples(
    conn: aiosqlite.Connection, since: dt.datetime
) -> list[tuple[dt.datetime, int]]:
    """(time, depth) since `since`, oldest first."""
    async with conn.execute(
        "SELECT at, depth FROM queue_depth_samples WHERE at >= ? ORDER BY at", (to_text(since),)
    ) as cur:
        return [(from_text(at), int(depth)) for at, depth in await cur.fetchall()]


async def latency_samples(
    conn: aiosqlite.Connection, since: dt.datetime
) -> list[tuple[dt.datetime, float]]:
    """(finished_at, seconds from accepted to done) for jobs done since `since`."""
    async with conn.execute(
        "SELECT created_at, finished_at FROM jobs "
        "WHERE state = 'done' AND finished_at >= ? ORDER BY finished_at",
        (to_text(since),),
    ) as cur:
        rows = await cur.fetchall()
    out = []
    for created, finished in rows:
        end = from_text(finished)
        out.append((end, (end - from_text(created)).total_seconds()))
    return out


async def purge_jobs(conn: aiosqlite.Connection, cutoff: dt.datetime) -> int:
    """Delete jobs finished before the cutoff (history goes by ON DELETE CASCADE); how many."""
    clause, names = jobs.in_clause(s.value for s in FINISHED)
    cur = await conn.execute(
        f"DELETE FROM jobs WHERE state {clause} AND finished_at < ?", (*names, to_text(cutoff))
    )
    return max(cur.rowcount, 0)


async def compact(conn: aiosqlite.Connection) -> None:
    """Give freed pages back to the file system and cut the WAL file back."""
    # incremental_vacuum frees one page per step: read it to the end.
    async with conn.execute("PRAGMA incremental_vacuum") as cur:
        await cur.fetchall()
    async with conn.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cur:
        await cur.fetchall()
