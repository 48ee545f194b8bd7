"""Group commit: the submissions waiting when a transaction begins are written in it together.

One fsync then makes many jobs durable. Each submission keeps its own outcome: a new job, a
DuplicateJob carrying the stored one, or StaleCommand (rolled back to its own savepoint, the
others stand). Runs of plain submissions share one multi-row INSERT; a submission with a
command sequence number is written alone under a savepoint, in arrival order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

import aiosqlite

from gateway.domain.errors import DuplicateJob, StaleCommand
from gateway.journal import jobs, outbox
from gateway.journal.records import REPORTED, JobRecord, JobState

MAX_BATCH = 500  # submissions in one transaction; the rest wait for the next


@dataclass(slots=True, eq=False)
class Submission:
    """One caller's job and the future its outcome is set on (compared by identity: two
    callers may send the very same job)."""

    new: jobs.NewJob
    ack: bool
    sequence: tuple[str, int] | None
    parsed: object | None  # the caller's parse of the tasks, handed to the worker
    done: asyncio.Future[JobRecord] = field(repr=False)


async def advance_sequence(conn: aiosqlite.Connection, key: str, value: int) -> None:
    """Store `value` under `key` if above the stored one, else StaleCommand."""
    rows = await conn.execute_fetchall("SELECT value FROM meta WHERE key = ?", (key,))
    last = next((int(row[0]) for row in rows), -1)
    if value <= last:
        raise StaleCommand(value, last)
    await conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, str(value)),
    )


@dataclass(slots=True)
class _Batch:
    """Outcomes gathered while writing; set on the futures only after COMMIT."""

    conn: aiosqlite.Connection
    accepted: dict[int, JobRecord] = field(default_factory=dict)  # by position in the batch
    refused: dict[int, BaseException] = field(default_factory=dict)
    duplicates: dict[int, str] = field(default_factory=dict)  # position -> uuid
    history: list[tuple[int, JobState, int | None, str, dt.datetime]] = field(default_factory=list)

    def _accept(self, pos: int, record: JobRecord) -> None:
        self.accepted[pos] = record
        self.history.append(
            (record.seq, JobState.QUEUED, None, f"via {record.source}", record.created_at)
        )

    async def plain(self, run: list[tuple[int, Submission]]) -> None:
        """Submissions without a sequence number: one INSERT for the run."""
        seqs = await jobs.insert_new(self.conn, [s.new for _, s in run])
        taken: set[str] = set()
        for pos, sub in run:
            uuid = sub.new.uuid
            if uuid in seqs and uuid not in taken:
                taken.add(uuid)
                self._accept(pos, sub.new.record(seqs[uuid]))
            else:
                self.duplicates[pos] = uuid

    async def sequenced(self, pos: int, sub: Submission) -> None:
        """A command with a sequence number: its own savepoint, so a replay undoes only it."""
        await self.conn.execute("SAVEPOINT submission")
        try:
            seqs = await jobs.insert_new(self.conn, [sub.new])
            if sub.new.uuid not in seqs:
                self.duplicates[pos] = sub.new.uuid
            else:
                assert sub.sequence is not None
                await advance_sequence(self.conn, *sub.sequence)
                self._accept(pos, sub.new.record(seqs[sub.new.uuid]))
        except StaleCommand as err:
            await self.conn.execute("ROLLBACK TO submission")
            self.refused[pos] = err
        await self.conn.execute("RELEASE submission")

    async def finish(self, batch: list[Submission]) -> bool:
        """History, duplicates' stored jobs, acks; True when outbox rows were added."""
        await jobs.add_history_many(self.conn, self.history)
        known: dict[str, JobRecord] = {}
        if self.duplicates:
            clause, names = jobs.in_clause(set(self.duplicates.values()))
            known = {j.uuid: j for j in await jobs.select_many(self.conn, f"uuid {clause}", names)}
        acks = False
        for pos, sub in enumerate(batch):
            new = sub.new
            if pos in self.accepted and sub.ack:
                await outbox.add_ack(
                    self.conn, self.accepted[pos], "accepted", new.reply_to, new.now
                )
                acks = True
            elif pos in self.duplicates:
                stored = known.get(new.uuid)
                self.refused[pos] = DuplicateJob(new.uuid, stored)
                if sub.ack and stored is not None:
                    await outbox.add_ack(self.conn, stored, "duplicate", new.reply_to, new.now)
                    if stored.state in REPORTED:
                        await outbox.add_result_again(self.conn, stored, new.reply_to, new.now)
                    acks = True
        return acks


async def write(
    conn: aiosqlite.Connection, batch: list[Submission]
) -> tuple[dict[int, JobRecord], dict[int, BaseException], bool]:
    """Write every submission inside the caller's transaction; (accepted, refused, acks)."""
    work = _Batch(conn)
    run: list[tuple[int, Submission]] = []
    for pos, sub in enumerate(batch):
        if sub.sequence is None:
            run.append((pos, sub))
            continue
        if run:
            await work.plain(run)
            run = []
        await work.sequenced(pos, sub)
    if run:
        await work.plain(run)
    acks = await work.finish(batch)
    return work.accepted, work.refused, acks
