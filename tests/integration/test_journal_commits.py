"""Commits on a real SQLite file: three per receipt, and concurrent submissions grouped."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.domain.errors import DuplicateJob, InvalidJobState, StaleCommand
from gateway.journal import JobRecord, JobState, Journal, TaskStatus

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def tasks(n: int = 1) -> str:
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


async def test_a_receipt_takes_three_commits(journal: Journal) -> None:
    before = journal.commits
    await journal.submit("r", tasks(), 1, source="http", now=at(0))
    step = await journal.begin_fiscal_step("r", 0, "sell", 41, now=at(1))
    # The first fiscal step starts the queued job in the same commit.
    assert step.state is JobState.IN_PROGRESS
    assert (step.attempts, step.n0, step.fiscal_step) == (1, 41, "sell")
    assert step.started_at == at(1)
    done = await journal.finish_task("r", 0, {"fiscalParams": {}}, now=at(2), complete=True)
    assert journal.commits - before == 3
    assert done.state is JobState.DONE
    assert (done.n0, done.fiscal_step, done.finished_at) == (None, None, at(2))
    history = [(h.state, h.note) for h in await journal.history("r")]
    assert history == [
        (JobState.QUEUED, "via http"),
        (JobState.IN_PROGRESS, "started"),
        (JobState.IN_PROGRESS, "sell: N0=41"),
        (JobState.IN_PROGRESS, "task ready"),
        (JobState.DONE, "done"),
    ]
    results = [o for o in await journal.outbox_pending() if o.kind == "result"]
    assert [o.key for o in results] == ["r"]  # queued once, with the job done


async def test_finish_with_complete_waits_for_every_task(journal: Journal) -> None:
    await journal.submit("two", tasks(2), 2, source="http")
    first = await journal.finish_task("two", 0, {"shiftStatus": {}}, complete=True)
    # A query task needs no fiscal step: finishing it started the job.
    assert first.state is JobState.IN_PROGRESS
    assert [t.status for t in first.task_results] == [TaskStatus.READY, TaskStatus.WAIT]
    assert await journal.outbox_pending() == []
    second = await journal.finish_task("two", 1, {}, complete=True)
    assert second.state is JobState.DONE
    with pytest.raises(InvalidJobState):
        await journal.complete("two")


async def test_a_step_that_fails_rolls_back_the_start_with_it(journal: Journal) -> None:
    await journal.submit("x", tasks(), 1, source="http")
    with pytest.raises(ValueError, match="N0"):
        await journal.begin_fiscal_step("x", 0, "sell", -1)
    job = await journal.get("x")
    assert (job.state, job.attempts, job.started_at) == (JobState.QUEUED, 0, None)
    failed = await journal.fail_task("x", 0, 1, "refused")
    assert failed.state is JobState.FAILED
    assert [h.note for h in await journal.history("x")][1:] == ["started", "failed: refused"]


async def test_concurrent_submissions_share_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = await Journal.open(path)
    before = journal.commits
    jobs = await asyncio.gather(
        *(journal.submit(f"c{i:02d}", tasks(), 1, source="http") for i in range(40))
    )
    # The first opens a transaction alone; the 39 that arrive while it commits share the next.
    assert journal.commits - before == 2
    assert [j.seq for j in jobs] == list(range(1, 41))  # seqs follow arrival order
    await journal.close()
    reopened = await Journal.open(path)
    for job in jobs:
        stored = await reopened.get(job.uuid)
        assert stored == job
        assert [h.note for h in await reopened.history(job.uuid)] == ["via http"]
    await reopened.close()


async def test_each_caller_gets_its_own_outcome_in_a_shared_commit(journal: Journal) -> None:
    known = await journal.submit("known", tasks(), 1, source="http")
    await journal.submit("cmd-1", tasks(), 1, source="mqtt", sequence=("seq:box", 5))
    before = journal.commits
    outcomes = await asyncio.gather(
        journal.submit("new", tasks(), 1, source="http"),
        journal.submit("known", tasks(), 1, source="http"),
        journal.submit("new", tasks(), 1, source="web"),
        journal.submit("stale", tasks(), 1, source="mqtt", sequence=("seq:box", 5)),
        journal.submit("fresh", tasks(), 1, source="mqtt", sequence=("seq:box", 6)),
        journal.submit("late", tasks(), 1, source="http"),
        return_exceptions=True,
    )
    assert journal.commits - before == 2  # "new" alone, the other five together
    new, dup_known, dup_new, stale, fresh, late = outcomes
    assert isinstance(new, JobRecord)
    assert new.source == "http"
    assert isinstance(dup_known, DuplicateJob)
    assert dup_known.record == known
    # The same uuid twice in one commit: the first wins, the second hears of it.
    assert isinstance(dup_new, DuplicateJob)
    assert dup_new.record == new
    assert isinstance(stale, StaleCommand)
    assert isinstance(fresh, JobRecord)
    assert isinstance(late, JobRecord)
    assert await journal.find("stale") is None  # rolled back alone
    assert await journal.meta_get("seq:box") == "6"
    assert [j.uuid for j in reversed(await journal.list_jobs())] == [
        "known",
        "cmd-1",
        "new",
        "fresh",
        "late",
    ]


async def test_acks_of_a_shared_commit_are_queued_per_caller(journal: Journal) -> None:
    await journal.submit("a", tasks(), 1, source="mqtt", ack=True, reply_to='{"topic": "r/a"}')
    await asyncio.gather(
        journal.submit("b", tasks(), 1, source="mqtt", ack=True, reply_to='{"topic": "r/b"}'),
        journal.submit("a", tasks(), 1, source="mqtt", ack=True, reply_to='{"topic": "r/a2"}'),
        return_exceptions=True,
    )
    acks = [
        (o.key, json.loads(o.payload_json)["status"], o.reply_to)
        for o in await journal.outbox_pending()
        if o.kind == "ack"
    ]
    assert acks == [
        ("a", "accepted", '{"topic": "r/a"}'),
        ("b", "accepted", '{"topic": "r/b"}'),
        ("a", "duplicate", '{"topic": "r/a2"}'),
    ]


async def test_a_caller_refused_before_the_commit_stops_no_one(journal: Journal) -> None:
    outcomes = await asyncio.gather(
        journal.submit("ok", tasks(), 1, source="http"),
        journal.submit("bad", "not json", 1, source="http"),
        journal.submit("also-ok", tasks(), 1, source="http"),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], JobRecord)
    assert isinstance(outcomes[2], JobRecord)
    assert isinstance(outcomes[1], ValueError)
    assert str(outcomes[1]).startswith("tasks_json is not JSON")
    assert await journal.find("bad") is None


async def test_a_cancelled_submitter_leaves_nothing_waiting(journal: Journal) -> None:
    first = asyncio.create_task(journal.submit("first", tasks(), 1, source="http"))
    await asyncio.sleep(0)  # "first" holds the commit
    second = asyncio.create_task(journal.submit("gone", tasks(), 1, source="http"))
    await asyncio.sleep(0)
    second.cancel()
    await first
    with pytest.raises(asyncio.CancelledError):
        await second
    await journal.submit("after", tasks(), 1, source="http")
    assert await journal.find("gone") is None  # never taken into a transaction
    assert [j.uuid for j in await journal.list_jobs()] == ["after", "first"]


async def test_the_parsed_request_is_handed_over_once(journal: Journal) -> None:
    parsed = object()
    await journal.submit("p", tasks(), 1, source="http", parsed=parsed)
    assert journal.parsed("p") is parsed
    assert journal.parsed("p") is None


async def test_the_job_the_worker_took_cannot_be_canceled(journal: Journal) -> None:
    await journal.submit("a", tasks(), 1, source="http")
    await journal.submit("b", tasks(), 1, source="http")
    taken = await journal.next_job()
    assert taken is not None
    assert taken.uuid == "a"
    # Still queued (its first step starts it), but the worker is reading the register for it.
    with pytest.raises(InvalidJobState, match="being started"):
        await journal.cancel("a")
    assert (await journal.cancel("b")).state is JobState.CANCELED
    await journal.fail_task("a", 0, 1, "refused")
    assert await journal.next_job() is None  # the claim moves on with the worker
    await journal.submit("c", tasks(), 1, source="http")
    assert (await journal.cancel("c")).state is JobState.CANCELED


async def test_blocked_state_is_answered_from_memory_and_follows_changes(
    journal: Journal,
) -> None:
    await journal.submit("x", tasks(), 1, source="http")
    assert await journal.is_blocked() is None
    before = journal.commits
    blocked = await journal.block("x", 0, 1, "no answer")
    assert journal.commits - before == 1
    assert await journal.is_blocked() == blocked
    await journal.unblock("x", resolution="failed", note="tape checked: not printed")
    assert await journal.is_blocked() is None
