"""The journal's jobs on a real SQLite file: idempotency, order, recovery state, transitions."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.domain.errors import DuplicateJob, InvalidJobState, JobNotFound
from gateway.journal import JobState, Journal, Resolution, TaskStatus

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def tasks(n: int = 2) -> str:
    """A request's task list with n tasks."""
    return json.dumps([{"type": "sell", "n": i} for i in range(n)])


def at(seconds: float) -> dt.datetime:
    """T0 plus some seconds."""
    return T0 + dt.timedelta(seconds=seconds)


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    """A fresh journal file."""
    j = await Journal.open(tmp_path / "j.sqlite3")
    yield j
    await j.close()


async def test_fresh_file_gets_schema_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "j.sqlite3"
    j = await Journal.open(path)
    assert j.integrity_result == "ok"
    assert j.kept_corrupt is None
    await j.close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "history", "outbox", "meta", "queue_depth_samples"} <= tables
    con.close()


async def test_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    j = await Journal.open(path)
    await j.submit("a", tasks(), 2, source="http", reply_to='{"topic": "t"}', now=T0)
    await j.meta_set("last_seq", "7")
    await j.close()
    j = await Journal.open(path)
    job = await j.get("a")
    assert (job.state, job.source, job.reply_to, job.created_at) == (
        JobState.QUEUED,
        "http",
        '{"topic": "t"}',
        T0,
    )
    assert await j.meta_get("last_seq") == "7"
    await j.close()


async def test_submit_then_duplicate_carries_the_stored_job(journal: Journal) -> None:
    job = await journal.submit("a", tasks(), 2, source="http", now=T0)
    assert job.state is JobState.QUEUED
    assert job.tasks_count == 2
    assert [t.status for t in job.task_results] == ["wait", "wait"]
    assert job.created_at == job.updated_at == T0
    with pytest.raises(DuplicateJob) as err:
        await journal.submit("a", tasks(1), 1, source="mqtt")
    assert err.value.uuid == "a"
    assert err.value.record == job
    assert await journal.queue_depth() == 1


async def test_twenty_concurrent_submits_of_one_uuid_queue_one_job(journal: Journal) -> None:
    outcomes = await asyncio.gather(
        *(journal.submit("same", tasks(), 2, source="http") for _ in range(20)),
        return_exceptions=True,
    )
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(won) == 1
    assert len(lost) == 19
    assert all(isinstance(o, DuplicateJob) and o.record == won[0] for o in lost)
    assert len(await journal.list_jobs()) == 1


async def test_concurrent_distinct_submits_get_distinct_numbers(journal: Journal) -> None:
    jobs = await asyncio.gather(
        *(journal.submit(f"u{i}", tasks(), 2, source="web") for i in range(20))
    )
    assert len({j.seq for j in jobs}) == 20


async def test_submit_refuses_what_the_worker_could_not_run(journal: Journal) -> None:
    with pytest.raises(ValueError, match="source"):
        await journal.submit("a", tasks(), 2, source="fax")
    with pytest.raises(ValueError, match="list of 3"):
        await journal.submit("a", tasks(2), 3, source="http")
    with pytest.raises(ValueError, match="reply_to"):
        await journal.submit("a", tasks(), 2, source="mqtt", reply_to="not json")
    with pytest.raises(ValueError, match="timezone-aware"):
        await journal.submit("a", tasks(), 2, source="http", now=dt.datetime(2026, 1, 1))
    assert await journal.find("a") is None


async def test_fifo_by_number(journal: Journal) -> None:
    for name in ("first", "second", "third"):
        await journal.submit(name, tasks(1), 1, source="http")
    order = []
    while (job := await journal.next_job()) is not None:
        order.append(job.uuid)
        await journal.start(job.uuid)
        await journal.finish_task(job.uuid, 0, {})
        await journal.complete(job.uuid)
    assert order == ["first", "second", "third"]
    assert (await journal.oldest_queued()) is None


async def test_in_progress_comes_before_queued_after_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    j = await Journal.open(path)
    for name in ("first", "second", "third"):
        await j.submit(name, tasks(), 2, source="http")
    await j.start("second", now=at(1))
    await j.begin_fiscal_step("second", 0, "receipt", 41, now=at(2))
    await j.close()  # nothing else is written: as after a crash
    j = await Journal.open(path)
    job = await j.next_job()
    assert job is not None
    assert (job.uuid, job.state) == ("second", JobState.IN_PROGRESS)
    assert (job.fiscal_step, job.n0, job.current_task) == ("receipt", 41, 0)
    assert [t.status for t in job.task_results] == ["inProgress", "wait"]
    resumed = await j.start("second", now=at(3))
    assert resumed.attempts == 2
    assert resumed.started_at == at(1)
    assert (resumed.fiscal_step, resumed.n0) == ("receipt", 41)
    oldest = await j.oldest_queued()
    assert oldest is not None
    assert oldest.uuid == "first"
    await j.close()


async def test_a_full_run_and_its_history(journal: Journal) -> None:
    await journal.submit("j", tasks(), 2, source="mqtt", now=at(0))
    started = await journal.start("j", now=at(1))
    assert (started.attempts, started.started_at) == (1, at(1))
    await journal.begin_fiscal_step("j", 0, "receipt", 5, now=at(2))
    fiscal = {"fiscalParams": {"fiscalDocumentNumber": 6, "fiscalDocumentSign": "123"}}
    first = await journal.finish_task("j", 0, fiscal, now=at(3))
    assert (first.current_task, first.fiscal_step, first.n0) == (1, None, None)
    await journal.finish_task("j", 1, {"shiftStatus": {"state": "opened"}}, now=at(4))
    done = await journal.complete("j", now=at(5))
    assert done.state is JobState.DONE
    assert done.finished
    assert done.finished_at == at(5)
    assert done.task_results[0].result == fiscal
    history = await journal.history("j")
    assert [(h.state, h.task_index, h.at) for h in history] == [
        (JobState.QUEUED, None, at(0)),
        (JobState.IN_PROGRESS, None, at(1)),
        (JobState.IN_PROGRESS, 0, at(2)),
        (JobState.IN_PROGRESS, 0, at(3)),
        (JobState.IN_PROGRESS, 1, at(4)),
        (JobState.DONE, None, at(5)),
    ]
    assert history[2].note == "receipt: N0=5"
    assert {h.job_seq for h in history} == {done.seq}
    with pytest.raises(JobNotFound):
        await journal.history("nope")


async def test_fail_interrupts_the_rest(journal: Journal) -> None:
    await journal.submit("f", tasks(3), 3, source="http")
    await journal.start("f")
    await journal.finish_task("f", 0, {})
    job = await journal.fail_task("f", 1, 44, "no paper")
    assert job.state is JobState.FAILED
    assert (job.error_code, job.error_text) == (44, "no paper")
    assert [t.status for t in job.task_results] == ["ready", "error", "interrupted"]
    body = job.atol_results()
    assert body["uuid"] == "f"
    assert body["results"][1]["error"] == {"code": 44, "description": "no paper"}
    assert (body["results"][1]["errorCode"], body["results"][1]["errorDescription"]) == (
        44,
        "no paper",
    )
    assert body["results"][2]["error"]["code"] == 502
    assert body["results"][0]["error"] is None


async def test_a_ready_task_never_runs_again(journal: Journal) -> None:
    await journal.submit("r", tasks(), 2, source="http")
    await journal.start("r")
    await journal.begin_fiscal_step("r", 0, "receipt", 1)
    await journal.finish_task("r", 0, {"fiscalParams": {}})
    with pytest.raises(InvalidJobState):
        await journal.begin_fiscal_step("r", 0, "receipt", 2)
    with pytest.raises(InvalidJobState):
        await journal.finish_task("r", 0, {})
    with pytest.raises(InvalidJobState, match="not ready"):
        await journal.complete("r")
    with pytest.raises(ValueError, match="tasks"):
        await journal.finish_task("r", 5, {})


async def test_a_finished_job_never_changes(tmp_path: Path, journal: Journal) -> None:
    await journal.submit("d", tasks(1), 1, source="http")
    await journal.start("d")
    await journal.finish_task("d", 0, {})
    await journal.complete("d")
    for change in (
        journal.start("d"),
        journal.fail_task("d", 0, 1, "x"),
        journal.cancel("d"),
        journal.block("d", 0, 1, "x"),
    ):
        with pytest.raises(InvalidJobState):
            await change
    # The file refuses it too, whoever writes.
    con = sqlite3.connect(tmp_path / "j.sqlite3")
    with pytest.raises(sqlite3.IntegrityError, match="never changes"):
        con.execute("UPDATE jobs SET state = 'queued' WHERE uuid = 'd'")
    con.close()


async def test_block_stops_the_queue(journal: Journal) -> None:
    await journal.submit("b", tasks(), 2, source="http")
    await journal.submit("later", tasks(), 2, source="http")
    await journal.start("b")
    await journal.begin_fiscal_step("b", 0, "receipt", 9)
    blocked = await journal.block("b", 0, 501, "document 10 does not match")
    assert blocked.state is JobState.BLOCKED
    assert blocked.task_results[0].status is TaskStatus.BLOCKED
    assert (blocked.n0, blocked.fiscal_step) == (9, "receipt")  # kept for a retry
    assert await journal.next_job() is None
    stopper = await journal.is_blocked()
    assert stopper is not None
    assert (stopper.uuid, stopper.error_text) == ("b", "document 10 does not match")
    rows = await journal.outbox_pending()
    assert [r.kind for r in rows] == ["result", "event"]
    assert json.loads(rows[0].payload_json)["results"][0]["status"] == "blocked"
    event = json.loads(rows[1].payload_json)
    assert (event["event"], event["uuid"], event["code"]) == ("job_blocked", "b", 501)
    assert rows[1].key == "b"
    assert await journal.queue_depth() == 2


async def test_unblock_retry_runs_recovery_again(journal: Journal) -> None:
    await journal.submit("b", tasks(), 2, source="http")
    await journal.start("b")
    await journal.begin_fiscal_step("b", 0, "receipt", 9)
    await journal.block("b", 0, 501, "unknown outcome")
    job = await journal.unblock("b", resolution="retry", note="technician: tape checked")
    assert job.state is JobState.IN_PROGRESS
    assert (job.n0, job.fiscal_step, job.error_code) == (9, "receipt", None)
    assert job.task_results[0].status is TaskStatus.IN_PROGRESS
    assert await journal.is_blocked() is None
    nxt = await journal.next_job()
    assert nxt is not None
    assert nxt.uuid == "b"
    last = (await journal.history("b"))[-1]
    assert last.note == "retry: technician: tape checked"
    kinds = [json.loads(r.payload_json).get("event") for r in await journal.outbox_pending()]
    assert kinds == [None, "job_blocked", "job_unblocked"]


async def test_unblock_done_accepts_the_given_result(journal: Journal) -> None:
    await journal.submit("one", tasks(1), 1, source="http")
    await journal.start("one")
    await journal.begin_fiscal_step("one", 0, "receipt", 9)
    await journal.block("one", 0, 501, "unknown outcome")
    fiscal = {"fiscalParams": {"fiscalDocumentNumber": 10}}
    done = await journal.unblock(
        "one", resolution=Resolution.DONE, result=fiscal, note="found on the tape"
    )
    assert done.state is JobState.DONE
    assert done.task_results[0].result == fiscal
    assert (done.n0, done.fiscal_step) == (None, None)
    results = await journal.outbox_pending(kinds=["result"])
    assert [json.loads(r.payload_json)["results"][0]["status"] for r in results] == [
        "blocked",
        "ready",
    ]


async def test_unblock_done_with_tasks_left_carries_on(journal: Journal) -> None:
    await journal.submit("two", tasks(2), 2, source="http")
    await journal.start("two")
    await journal.begin_fiscal_step("two", 0, "receipt", 9)
    await journal.block("two", 0, 501, "unknown outcome")
    job = await journal.unblock("two", resolution="done", result={"x": 1}, note="printed")
    assert job.state is JobState.IN_PROGRESS
    assert (job.current_task, job.fiscal_step) == (1, None)
    assert [t.status for t in job.task_results] == ["ready", "wait"]


async def test_unblock_failed_fails_the_job(journal: Journal) -> None:
    await journal.submit("x", tasks(2), 2, source="http")
    await journal.start("x")
    await journal.begin_fiscal_step("x", 0, "receipt", 9)
    await journal.block("x", 0, 501, "unknown outcome")
    job = await journal.unblock("x", resolution="failed", note="not on the tape")
    assert job.state is JobState.FAILED
    assert [t.status for t in job.task_results] == ["error", "interrupted"]
    assert job.task_results[0].error_code == 501
    assert job.error_text == "settled as not printed: not on the tape"


async def test_unblock_needs_a_blocked_job_and_a_note(journal: Journal) -> None:
    await journal.submit("q", tasks(1), 1, source="http")
    with pytest.raises(InvalidJobState):
        await journal.unblock("q", resolution="retry", note="why")
    await journal.start("q")
    await journal.block("q", 0, 501, "unknown")
    with pytest.raises(ValueError, match="note"):
        await journal.unblock("q", resolution="retry", note=" ")
    with pytest.raises(ValueError, match="result"):
        await journal.unblock("q", resolution="failed", result={}, note="n")
    with pytest.raises(ValueError, match="maybe"):
        await journal.unblock("q", resolution="maybe", note="n")
    assert (await journal.get("q")).state is JobState.BLOCKED


async def test_cancel_only_when_queued(journal: Journal) -> None:
    await journal.submit("c", tasks(), 2, source="http")
    canceled = await journal.cancel("c", now=at(1))
    assert canceled.state is JobState.CANCELED
    assert canceled.finished_at == at(1)
    assert [t.status for t in canceled.task_results] == ["canceled", "canceled"]
    assert canceled.task_results[0].error_code == 503
    await journal.submit("s", tasks(), 2, source="http")
    await journal.start("s")
    with pytest.raises(InvalidJobState):
        await journal.cancel("s")
    with pytest.raises(JobNotFound):
        await journal.cancel("unknown")
    with pytest.raises(InvalidJobState):
        await journal.cancel("c")


async def test_requeue_only_without_a_pending_fiscal_step(journal: Journal) -> None:
    await journal.submit("r", tasks(), 2, source="http")
    await journal.start("r")
    back = await journal.requeue_in_progress("r", "register replaced")
    assert back.state is JobState.QUEUED
    await journal.start("r")
    await journal.begin_fiscal_step("r", 0, "receipt", 3)
    with pytest.raises(InvalidJobState, match="recovery"):
        await journal.requeue_in_progress("r", "no")


async def test_listing_and_counts(journal: Journal) -> None:
    for i in range(5):
        await journal.submit(f"j{i}", tasks(1), 1, source="http")
    await journal.cancel("j1")
    await journal.start("j2")
    listed = await journal.list_jobs()
    assert [j.uuid for j in listed] == ["j4", "j3", "j2", "j1", "j0"]
    page = await journal.list_jobs(limit=2, before_seq=listed[1].seq)
    assert [j.uuid for j in page] == ["j2", "j1"]
    queued = await journal.list_jobs(states=[JobState.QUEUED])
    assert [j.uuid for j in queued] == ["j4", "j3", "j0"]
    assert await journal.list_jobs(states=[]) == []
    counts = await journal.counts()
    assert counts[JobState.QUEUED] == 3
    assert counts[JobState.IN_PROGRESS] == 1
    assert counts[JobState.CANCELED] == 1
    assert counts[JobState.BLOCKED] == 0
    assert await journal.queue_depth() == 4


@pytest.mark.parametrize("yields", [0, 1, 2, 3, 5, 8])
async def test_a_cancelled_write_is_all_or_nothing(journal: Journal, yields: int) -> None:
    await journal.submit("other", tasks(), 2, source="http")
    task = asyncio.create_task(journal.submit("c", tasks(), 2, source="http"))
    for _ in range(yields):
        await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    job = await journal.find("c")
    if job is not None:
        assert [h.state for h in await journal.history("c")] == [JobState.QUEUED]
    started = await journal.start("other")  # the connection is not left inside a transaction
    assert started.state is JobState.IN_PROGRESS
    assert (await journal.submit("after", tasks(), 2, source="http")).state is JobState.QUEUED


async def run_job(
    journal: Journal, uuid: str, steps: list[tuple[str, dict[str, object]]], when: float
) -> None:
    """Queue a job of these (task type, result) pairs and run every task to `ready`."""
    request = json.dumps([{"type": kind} for kind, _ in steps])
    await journal.submit(uuid, request, len(steps), source="http", now=at(when))
    await journal.start(uuid, now=at(when))
    for index, (_, result) in enumerate(steps):
        await journal.finish_task(uuid, index, result, now=at(when))
    await journal.complete(uuid, now=at(when))


def fiscal(shift: int) -> dict[str, object]:
    return {"fiscalParams": {"shiftNumber": shift, "fiscalDocumentNumber": 1}}


CASH: dict[str, object] = {"cashSum": 10.0, "documentNumber": 3, "dateTime": None}


@pytest.mark.parametrize("page", [2, 200])
async def test_shift_fiscal_tasks_finds_one_shifts_stretch(
    journal: Journal, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    from gateway.journal import store

    monkeypatch.setattr(store, "SHIFT_SCAN_PAGE", page)
    await run_job(journal, "old-sell", [("sell", fiscal(6)), ("cashIn", CASH)], 1)
    await run_job(journal, "old-close", [("closeShift", fiscal(6))], 2)
    # Ran after shift 6 closed: shift 7 (opened by the worker before the cash-in).
    await run_job(journal, "cash", [("cashIn", CASH), ("sell", fiscal(7))], 3)
    await run_job(journal, "query", [("getShiftTotals", {"shiftTotals": {}})], 4)
    await journal.submit("queued", json.dumps([{"type": "sell"}]), 1, source="http", now=at(5))
    await run_job(journal, "ret", [("sellReturn", fiscal(7)), ("cashOut", CASH)], 6)
    # The job that closes shift 7 is in progress: its first receipt counts, the Z is not done.
    await journal.submit(
        "z", json.dumps([{"type": "buy"}, {"type": "closeShift"}]), 2, source="http", now=at(7)
    )
    await journal.start("z", now=at(7))
    await journal.finish_task("z", 0, fiscal(7), now=at(7))

    got = [(t.job_uuid, t.index, t.type) for t in await journal.shift_fiscal_tasks(7)]
    assert got == [
        ("cash", 0, "cashIn"),
        ("cash", 1, "sell"),
        ("ret", 0, "sellReturn"),
        ("ret", 1, "cashOut"),
        ("z", 0, "buy"),
    ]
    tasks = await journal.shift_fiscal_tasks(7)
    assert tasks[1].result == fiscal(7)
    assert json.loads(tasks[1].tasks_json)[1] == {"type": "sell"}

    old = [(t.job_uuid, t.index) for t in await journal.shift_fiscal_tasks(6)]
    assert old == [("old-sell", 0), ("old-sell", 1)]


async def test_shift_fiscal_tasks_starts_at_the_shifts_open_and_ends_at_its_close(
    journal: Journal,
) -> None:
    await run_job(journal, "before", [("cashOut", CASH)], 1)
    await run_job(journal, "open", [("openShift", fiscal(3)), ("cashIn", CASH)], 2)
    await run_job(journal, "close", [("sell", fiscal(3)), ("closeShift", fiscal(3))], 3)
    await run_job(journal, "after", [("cashIn", CASH)], 4)
    got = [(t.job_uuid, t.index) for t in await journal.shift_fiscal_tasks(3)]
    assert got == [("open", 1), ("close", 0)]
    assert [t.job_uuid for t in await journal.shift_fiscal_tasks(4)] == ["after"]


async def test_recent_events_of_a_kind_newest_first(journal: Journal) -> None:
    await journal.add_event("shift_mismatch", {"shift": 1}, now=at(1))
    await journal.add_event("queue_paused", {"reason": "paper"}, now=at(2))
    await journal.add_event("shift_mismatch", {"shift": 2}, now=at(3))
    got = await journal.recent_events("shift_mismatch", limit=5)
    assert [e["shift"] for e in got] == [2, 1]
    assert got[0]["event"] == "shift_mismatch"
    assert got[0]["at"] == at(3).isoformat(timespec="microseconds")
    assert await journal.recent_events("shift_mismatch", limit=1) == got[:1]
