"""The journal: jobs, their history, the outbox, metrics and a key-value table.

Every write method commits before it returns, and a commit is fsynced (WAL, synchronous=FULL),
so what a method returned survives a power cut. A job's state change, its history row and the
outbox rows it causes are one transaction: no reader ever sees a finished job without its
result queued for delivery.

A receipt over HTTP costs three commits, each one needed:
  1. `submit`: the job is durable before the client hears 201, so nothing acknowledged is
     lost. Concurrent submissions share this commit (group commit).
  2. `begin_fiscal_step`: step and N0 are durable before the first byte of the document goes
     out, so after a crash recovery knows a document may exist and compares the ФН's last
     number with N0 instead of printing again. It also starts the queued job: a start alone
     protects nothing, since until a fiscal step is written the job may simply run again.
  3. `finish_task(complete=True)`: the fiscal result, the job done and its result queued for
     delivery, together. Until it is durable, recovery finds the document by N0 and rebuilds
     the result from the ФН; so this commit is needed for the answer, not for exactly-once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gateway.domain.errors import InvalidJobState, JobNotFound, JournalError
from gateway.journal import jobs, outbox, shifts, submissions, transitions, upkeep
from gateway.journal.database import OP_TIMEOUT_S, Database
from gateway.journal.records import (
    REPORTED,
    HistoryEntry,
    JobRecord,
    JobState,
    OutboxItem,
    Resolution,
    ShiftTask,
)
from gateway.journal.rows import utc
from gateway.journal.transitions import Transition

_LOGGER = logging.getLogger(__name__)

SHIFT_SCAN_PAGE = 200  # jobs read at a time while looking for where a shift began
PARSED_KEPT = 1000  # parsed requests kept for the worker; an older one is parsed again


def _retrieve(done: asyncio.Future[JobRecord]) -> None:
    if not done.cancelled():
        done.exception()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _when(now: dt.datetime | None) -> dt.datetime:
    return _now() if now is None else utc(now)


class Journal:
    """The durable queue of jobs; the only place ingress and the register meet."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.path: Path = db.path
        self.integrity_result: str = db.integrity_result  # text of the check at open
        self.kept_corrupt: Path | None = db.kept_corrupt  # where a damaged file was put aside
        self.events_dropped = 0  # events dropped by the cap since open
        # Set whenever a committed write added outbox rows; the MQTT pump waits on it.
        self.outbox_added = asyncio.Event()
        self._waiting: list[submissions.Submission] = []  # submissions not yet in a transaction
        self._submit_lock = asyncio.Lock()  # one group commit at a time
        self._parsed: dict[str, object] = {}  # uuid -> the submitter's parsed request
        self._claimed: str | None = None  # the job the worker took last (next_job)
        self._blocked: JobRecord | None = None
        self._blocked_known = False
        self._blocked_generation = 0
        # An ingress's commit refused for a full disk: (error, since, commits then).
        self._full: tuple[str, dt.datetime, int] | None = None

    @property
    def commits(self) -> int:
        """Write transactions committed since open: each is one fsync."""
        return self._db.commits

    def note_disk_full(self, error: str, now: dt.datetime | None = None) -> None:
        """A submission could not commit for a full disk (the intake answered 507): kept
        for /health and the health monitor until any commit succeeds again."""
        if self.disk_full() is None:
            self._full = (error, _when(now), self._db.commits)

    def disk_full(self) -> tuple[str, dt.datetime] | None:
        """(error, since) while no commit has succeeded since a submission found the disk
        full; None otherwise."""
        full = self._full
        if full is None or self._db.commits > full[2]:
            return None
        return full[0], full[1]

    @classmethod
    async def open(cls, path: Path, *, recreate_if_corrupt: bool = False) -> Journal:
        """Open (creating if needed), check integrity, migrate."""
        return cls(await Database.open(path, recreate_if_corrupt=recreate_if_corrupt))

    async def close(self) -> None:
        """Wait for the operation in flight, then close the file."""
        await self._db.close()

    # --- reads -------------------------------------------------------------------------------

    async def find(self, uuid: str) -> JobRecord | None:
        """The job, or None."""
        async with self._db.use() as conn:
            return await jobs.select_one(conn, "uuid = ?", (uuid,))

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
        """Newest first; `before_seq` pages back."""
        where, args = ["1"], list[Any]()
        if states is not None:
            clause, names = jobs.in_clause(JobState(s).value for s in states)
            where.append(f"state {clause}")
            args += names
        if before_seq is not None:
            where.append("seq < ?")
            args.append(before_seq)
        async with self._db.use() as conn:
            return await jobs.select_many(
                conn, f"{' AND '.join(where)} ORDER BY seq DESC LIMIT ?", (*args, limit)
            )

    async def counts(self) -> dict[JobState, int]:
        """Jobs per state, every state present."""
        out = dict.fromkeys(JobState, 0)
        async with self._db.use() as conn:
            rows = await conn.execute_fetchall("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        for state, n in rows:
            out[JobState(state)] = int(n)
        return out

    async def queue_depth(self) -> int:
        """Jobs not finished yet: queued, in progress and blocked."""
        clause, names = jobs.in_clause(jobs.ACTIVE)
        async with self._db.use() as conn:
            return await jobs.scalar(conn, f"SELECT COUNT(*) FROM jobs WHERE state {clause}", names)

    async def oldest_queued(self) -> JobRecord | None:
        """The job that has waited longest."""
        async with self._db.use() as conn:
            return await jobs.select_one(conn, "state = 'queued' ORDER BY seq LIMIT 1")

    async def is_blocked(self) -> JobRecord | None:
        """The blocked job that stops the queue, if any.

        Asked before every submission: kept in memory, read again after any change that
        blocks or unblocks a job (only this object writes the file).
        """
        if self._blocked_known:
            return self._blocked
        generation = self._blocked_generation
        async with self._db.use() as conn:
            job = await jobs.select_one(conn, "state = 'blocked' ORDER BY seq LIMIT 1")
        if generation == self._blocked_generation:  # no block or unblock meanwhile
            self._blocked, self._blocked_known = job, True
        return job

    async def next_job(self) -> JobRecord | None:
        """A job left in progress (recovery) first, else the oldest queued; None while blocked.

        For the worker only: the job returned is claimed until the next call, and a claimed
        job cannot be canceled. Its first journalled step starts it, after register reads;
        without the claim a cancel could slip in between.
        """
        async with self._db.use() as conn:
            job = await jobs.select_one(
                conn,
                "state IN ('in_progress', 'queued') "
                "AND NOT EXISTS (SELECT 1 FROM jobs WHERE state = 'blocked') "
                "ORDER BY state = 'queued', seq LIMIT 1",
            )
        self._claimed = None if job is None else job.uuid
        return job

    async def shift_fiscal_tasks(self, shift_number: int) -> list[ShiftTask]:
        """Receipts and cash operations the journal ran to their end in register shift
        `shift_number`, oldest first (see `shifts` for how a shift's stretch is found).

        Reads jobs newest first a page at a time and stops at the shift's start, so a Z report
        reads about one shift's jobs, not the whole retention period.
        """
        scan = shifts.ShiftScan(shift_number)
        clause, names = jobs.in_clause(shifts.STARTED_STATES)
        before: int | None = None
        while not scan.done:
            where = f"state {clause}" + ("" if before is None else " AND seq < ?")
            args = [*names, *([] if before is None else [before])]
            async with self._db.use() as conn:
                page = await jobs.select_many(
                    conn, f"{where} ORDER BY seq DESC LIMIT ?", (*args, SHIFT_SCAN_PAGE)
                )
            scan.feed(page)
            if len(page) < SHIFT_SCAN_PAGE:
                break
            before = page[-1].seq
        return scan.tasks()

    async def recent_events(self, kind: str, *, limit: int = 10) -> list[dict[str, Any]]:
        """The newest events of `kind` still in the outbox (delivered or not), newest first."""
        async with self._db.use() as conn:
            rows = await conn.execute_fetchall(
                "SELECT payload FROM outbox WHERE kind = 'event' "
                "AND json_extract(payload, '$.event') = ? ORDER BY id DESC LIMIT ?",
                (kind, limit),
            )
        out: list[dict[str, Any]] = []
        for row in rows:
            body = json.loads(row[0])
            if isinstance(body, dict):
                out.append(body)
        return out

    async def history(self, uuid: str) -> list[HistoryEntry]:
        """The job's state changes, oldest first."""
        async with self._db.use() as conn:
            job = await jobs.select_one(conn, "uuid = ?", (uuid,))
            if job is None:
                raise JobNotFound(uuid)
            return await jobs.history(conn, job.seq)

    # --- jobs ----------------------------------------------------------------------------------

    async def submit(
        self,
        uuid: str,
        tasks_json: str,
        tasks_count: int,
        *,
        source: str,
        reply_to: str | None = None,
        ack: bool = False,
        sequence: tuple[str, int] | None = None,
        now: dt.datetime | None = None,
        parsed: object | None = None,
    ) -> JobRecord:
        """Queue a job; a known uuid raises DuplicateJob carrying the stored job.

        Returns only once the job is committed. Submissions that arrive while a transaction
        is being written wait and are then committed together (group commit: one fsync for
        all of them); each caller still gets its own outcome.

        With `ack`, an ack row ("accepted", or "duplicate" with the stored state) is queued in
        the same transaction, and a repeated finished job's result is queued again to
        `reply_to`. With `sequence=(meta key, n)`, a new job is refused with StaleCommand
        unless n is above the stored number, which becomes n in the same transaction.
        `parsed`: the caller's own parse of `tasks_json` (it produced that JSON), kept in
        memory for the worker, so the task JSON is parsed once per job in this process.
        """
        jobs.check_new(uuid, tasks_json, tasks_count, source, reply_to, parsed=parsed is not None)
        new = jobs.NewJob(uuid, source, tasks_json, tasks_count, reply_to, _when(now))
        done = asyncio.get_running_loop().create_future()
        sub = submissions.Submission(new, ack, sequence, parsed, done)
        # A waiter that stops waiting never leaves an unread exception behind.
        sub.done.add_done_callback(_retrieve)
        self._waiting.append(sub)
        try:
            async with asyncio.timeout(OP_TIMEOUT_S):
                async with self._submit_lock:
                    if not sub.done.done():
                        await self._commit_waiting()
        except TimeoutError as err:
            raise JournalError(
                f"journal {self.path} did not commit {uuid} within {OP_TIMEOUT_S:g} s; "
                "it may still be committed"
            ) from err
        finally:
            if sub in self._waiting:  # never taken into a transaction: nothing was written
                self._waiting.remove(sub)
        return sub.done.result()

    async def _commit_waiting(self) -> None:
        """One transaction for every submission waiting now; outcomes set after COMMIT."""
        batch = self._waiting[: submissions.MAX_BATCH]
        del self._waiting[: len(batch)]
        try:
            async with self._db.write() as conn:
                accepted, refused, acks = await submissions.write(conn, batch)
        except BaseException as err:
            failure = err if isinstance(err, Exception) else JournalError("submission interrupted")
            for sub in batch:
                if not sub.done.done():
                    sub.done.set_exception(failure)
            raise
        for pos, sub in enumerate(batch):
            if pos in accepted:
                if sub.parsed is not None:  # before anyone can wake the worker
                    self._remember_parsed(sub.new.uuid, sub.parsed)
                sub.done.set_result(accepted[pos])
            else:
                sub.done.set_exception(refused[pos])
        if acks:
            self.outbox_added.set()
        if _LOGGER.isEnabledFor(logging.DEBUG):
            for record in accepted.values():
                _LOGGER.debug(
                    "Job %s queued (%d submissions in the commit)", record.uuid, len(batch)
                )

    def _remember_parsed(self, uuid: str, parsed: object) -> None:
        self._parsed[uuid] = parsed
        while len(self._parsed) > PARSED_KEPT:
            del self._parsed[next(iter(self._parsed))]

    def parsed(self, uuid: str) -> object | None:
        """The parsed request `submit` was given for this job in this process, once; or None."""
        return self._parsed.pop(uuid, None)

    async def start(self, uuid: str, now: dt.datetime | None = None) -> JobRecord:
        """queued -> in_progress (attempts + 1); on a job left in progress, a resumption.

        The worker does not call this: its first journalled step starts a queued job.
        """
        return await self._apply(uuid, now, lambda job, at: [transitions.start(job, at)])

    async def begin_fiscal_step(
        self, uuid: str, task_index: int, step: str, n0: int, now: dt.datetime | None = None
    ) -> JobRecord:
        """Commit step and N0 before the first byte of a fiscal document goes out.

        A queued job is started in the same transaction.
        """
        return await self._apply(
            uuid,
            now,
            lambda job, at: transitions.chain(
                job,
                at,
                transitions.start_if_queued,
                lambda j, t: transitions.begin_fiscal_step(j, task_index, step, n0, t),
            ),
        )

    async def finish_task(
        self,
        uuid: str,
        task_index: int,
        result: dict[str, Any],
        now: dt.datetime | None = None,
        *,
        complete: bool = False,
    ) -> JobRecord:
        """The task is ready; fiscal step and N0 are cleared; the next task becomes current.

        With `complete`, a job whose tasks are then all ready is done in the same transaction
        (its result queued). A queued job (a task that needs no fiscal step) is started in it.
        """
        finish: list[transitions.Step] = [
            transitions.start_if_queued,
            lambda j, t: transitions.finish_task(j, task_index, result, t),
        ]
        if complete:
            finish.append(transitions.complete_if_all_ready)
        return await self._apply(uuid, now, lambda job, at: transitions.chain(job, at, *finish))

    async def fail_task(
        self,
        uuid: str,
        task_index: int,
        code: int,
        description: str,
        now: dt.datetime | None = None,
    ) -> JobRecord:
        """The task failed: the rest are interrupted, the job failed, its result queued.

        A queued job (refused before any fiscal step) is started in the same transaction.
        """
        return await self._apply(
            uuid,
            now,
            lambda job, at: transitions.chain(
                job,
                at,
                transitions.start_if_queued,
                lambda j, t: transitions.fail_task(j, task_index, code, description, t),
            ),
        )

    async def complete(self, uuid: str, now: dt.datetime | None = None) -> JobRecord:
        """All tasks ready: done, its result queued."""
        return await self._apply(uuid, now, lambda job, at: [transitions.complete(job, at)])

    async def block(
        self,
        uuid: str,
        task_index: int,
        code: int,
        description: str,
        now: dt.datetime | None = None,
    ) -> JobRecord:
        """Outcome unknown: the job is blocked, the queue stops; result and event queued."""
        return await self._apply(
            uuid,
            now,
            lambda job, at: transitions.chain(
                job,
                at,
                transitions.start_if_queued,
                lambda j, t: transitions.block(j, task_index, code, description, t),
            ),
        )

    async def unblock(
        self,
        uuid: str,
        *,
        resolution: Resolution | str,
        result: dict[str, Any] | None = None,
        note: str,
        now: dt.datetime | None = None,
    ) -> JobRecord:
        """Settle a blocked job: `retry` recovery, accept as `done` with `result`, or `failed`."""
        how = Resolution(resolution)
        return await self._apply(
            uuid, now, lambda job, at: [transitions.unblock(job, how, result, note, at)]
        )

    async def cancel(self, uuid: str, now: dt.datetime | None = None) -> JobRecord:
        """Cancel a queued job; InvalidJobState once it has started or the worker took it."""

        def cancel(job: JobRecord, at: dt.datetime) -> list[Transition]:
            # Checked inside the transaction: next_job cannot claim the job meanwhile.
            if job.uuid == self._claimed and job.state is JobState.QUEUED:
                raise InvalidJobState(f"job {uuid} is being started; it cannot be canceled")
            return [transitions.cancel(job, at)]

        return await self._apply(uuid, now, cancel)

    async def requeue_in_progress(
        self, uuid: str, note: str, now: dt.datetime | None = None
    ) -> JobRecord:
        """Put a started job back in the queue; refused while a fiscal step is pending."""
        return await self._apply(uuid, now, lambda job, at: [transitions.requeue(job, note, at)])

    async def _apply(
        self,
        uuid: str,
        now: dt.datetime | None,
        steps: Callable[[JobRecord, dt.datetime], list[Transition]],
    ) -> JobRecord:
        """Read, change, and write a job with its history and outbox rows, in one transaction.

        `steps` may make several changes (start and first step; last task and done): one
        history line each, one write of the job, one commit.
        """
        when = _when(now)
        dropped = 0
        blocking = False
        try:
            async with self._db.write() as conn:
                old = await jobs.select_one(conn, "uuid = ?", (uuid,))
                if old is None:
                    raise JobNotFound(uuid)
                changes = steps(old, when)
                new = changes[-1].job
                blocking = JobState.BLOCKED in (old.state, new.state)
                await jobs.update(conn, new)
                await jobs.add_history_many(
                    conn, [(c.job.seq, c.job.state, c.task_index, c.note, when) for c in changes]
                )
                reported = new.state is not old.state and new.state in REPORTED
                if reported:
                    await outbox.add_result(conn, new, when)
                events = [c.event for c in changes if c.event is not None]
                for event in events:
                    _, n = await outbox.add_event(conn, *event, when)
                    dropped += n
        finally:
            # Even when the caller stopped waiting: a COMMIT on the wire still completes.
            if blocking:
                self._blocked_known = False
                self._blocked_generation += 1
        if reported or events:
            self.outbox_added.set()
        self._count_dropped(dropped)
        if new.state is not old.state:
            notes = "; ".join(c.note for c in changes)
            _LOGGER.debug("Job %s: %s -> %s (%s)", uuid, old.state.value, new.state.value, notes)
        return new

    # --- outbox ----------------------------------------------------------------------------

    async def add_event(
        self, kind: str, payload: dict[str, Any], now: dt.datetime | None = None
    ) -> int:
        """Queue an event (alert, state change) for delivery; its outbox id."""
        async with self._db.write() as conn:
            row_id, dropped = await outbox.add_event(conn, kind, payload, _when(now))
        self.outbox_added.set()
        self._count_dropped(dropped)
        return row_id

    def _count_dropped(self, dropped: int) -> None:
        if not dropped:
            return
        if not self.events_dropped:
            _LOGGER.warning(
                "Outbox holds %d events, the most it keeps; dropping the oldest from now on",
                outbox.EVENTS_KEPT,
            )
        self.events_dropped += dropped

    async def refuse_command(
        self,
        uuid: str | None,
        error: dict[str, Any],
        *,
        reply_to: str | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        """Record a refused command: a `command_refused` event, and a "rejected" ack if it
        named a uuid, in one transaction."""
        when = _when(now)
        async with self._db.write() as conn:
            if uuid:
                await outbox.add_rejection(conn, uuid, error, reply_to, when)
            _, dropped = await outbox.add_event(
                conn, "command_refused", {"uuid": uuid, **error}, when
            )
        self.outbox_added.set()
        self._count_dropped(dropped)

    async def outbox_pending(
        self, limit: int = 100, kinds: Iterable[str] | None = None
    ) -> list[OutboxItem]:
        """Undelivered rows, oldest first."""
        async with self._db.use() as conn:
            return await outbox.pending(conn, limit, kinds)

    async def outbox_done(self, ids: Iterable[int], now: dt.datetime | None = None) -> int:
        """Mark rows delivered (kept until retention); how many changed."""
        async with self._db.write() as conn:
            return await outbox.mark(conn, outbox.MARK_DONE, ids, _when(now))

    async def outbox_attempted(self, ids: Iterable[int], now: dt.datetime | None = None) -> int:
        """Count a delivery attempt on rows still pending; how many changed."""
        async with self._db.write() as conn:
            return await outbox.mark(conn, outbox.MARK_ATTEMPTED, ids, _when(now))

    async def outbox_depth(self, kinds: Iterable[str] | None = None) -> int:
        """Rows waiting for delivery."""
        async with self._db.use() as conn:
            return await outbox.depth(conn, kinds)

    # --- key-value -------------------------------------------------------------------------

    async def meta_get(self, key: str) -> str | None:
        """A stored value, or None."""
        async with self._db.use() as conn:
            rows = await conn.execute_fetchall("SELECT value FROM meta WHERE key = ?", (key,))
        return next((str(row[0]) for row in rows), None)

    async def meta_set(self, key: str, value: str) -> None:
        """Store a value (committed)."""
        async with self._db.write() as conn:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    async def meta_delete(self, key: str) -> None:
        """Forget a value (committed)."""
        async with self._db.write() as conn:
            await conn.execute("DELETE FROM meta WHERE key = ?", (key,))

    # --- metrics ---------------------------------------------------------------------------

    async def record_queue_depth(self, now: dt.datetime | None = None) -> int:
        """Sample the queue depth for the status page chart (kept 24 h); the depth."""
        async with self._db.write() as conn:
            return await upkeep.record_queue_depth(conn, _when(now))

    async def queue_depth_samples(self, since: dt.datetime) -> list[tuple[dt.datetime, int]]:
        """(time, depth) samples taken since `since`, oldest first."""
        async with self._db.use() as conn:
            return await upkeep.queue_depth_samples(conn, since)

    async def latency_samples(self, since: dt.datetime) -> list[tuple[dt.datetime, float]]:
        """(finished_at, seconds from accepted to done) for jobs done since `since`."""
        async with self._db.use() as conn:
            return await upkeep.latency_samples(conn, since)

    # --- retention -------------------------------------------------------------------------

    async def purge(self, older_than_days: int, now: dt.datetime | None = None) -> int:
        """Delete finished jobs (with history) and delivered outbox rows past retention.

        Queued, in-progress and blocked jobs are never deleted. An undelivered result goes
        with its job (logged as a warning). Returns the number of jobs deleted.
        """
        if older_than_days < 0:
            raise ValueError(f"retention must not be negative, got {older_than_days}")
        cutoff = _when(now) - dt.timedelta(days=older_than_days)
        async with self._db.write() as conn:
            removed = await upkeep.purge_jobs(conn, cutoff)
            delivered = await outbox.purge_delivered(conn, cutoff)
            orphans = await outbox.purge_orphan_results(conn)
        if orphans:
            _LOGGER.warning(
                "Journal retention: %d results were never delivered to the office and are "
                "deleted with their jobs after %d days; check the MQTT link",
                orphans,
                older_than_days,
            )
        if removed or delivered:
            _LOGGER.info(
                "Journal retention: deleted %d finished jobs and %d delivered outbox rows",
                removed,
                delivered,
            )
            async with self._db.use() as conn:
                await upkeep.compact(conn)
        return removed
