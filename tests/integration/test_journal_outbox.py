"""The journal's outbox, retention, metrics and key-value table on a real SQLite file."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.domain.errors import JournalError
from gateway.journal import JobState, Journal, OutboxKind, outbox

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
REPORTED = ("done", "failed", "canceled", "blocked")


def tasks(n: int = 1) -> str:
    """A request's task list with n tasks."""
    return json.dumps([{"type": "sell"}] * n)


def at(seconds: float) -> dt.datetime:
    """T0 plus some seconds."""
    return T0 + dt.timedelta(seconds=seconds)


def check_consistent(path: Path) -> None:
    """Seen from another connection: every reported job has its latest result queued."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for uuid, state, stored in con.execute("SELECT uuid, state, results_json FROM jobs"):
            rows = con.execute(
                "SELECT payload FROM outbox WHERE kind = 'result' AND key = ? ORDER BY id",
                (uuid,),
            ).fetchall()
            if state in REPORTED:
                assert rows, f"{uuid} is {state} but no result is queued"
                sent = [r["status"] for r in json.loads(rows[-1][0])["results"]]
                assert sent == [r["status"] for r in json.loads(stored)], uuid
            elif state == "queued":
                assert not rows, f"{uuid} is queued but has a result"
    finally:
        con.close()


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    """A fresh journal file."""
    j = await Journal.open(tmp_path / "j.sqlite3")
    yield j
    await j.close()


async def test_every_step_leaves_results_and_jobs_consistent(
    tmp_path: Path, journal: Journal
) -> None:
    path = tmp_path / "j.sqlite3"
    steps = [
        journal.submit("a", tasks(2), 2, source="http", reply_to='{"topic": "r/a"}'),
        journal.submit("b", tasks(), 1, source="mqtt"),
        journal.submit("c", tasks(), 1, source="web"),
        journal.start("a"),
        journal.begin_fiscal_step("a", 0, "receipt", 1),
        journal.finish_task("a", 0, {"fiscalParams": {"fiscalDocumentNumber": 2}}),
        journal.finish_task("a", 1, {}),
        journal.complete("a"),
        journal.cancel("c"),
        journal.start("b"),
        journal.begin_fiscal_step("b", 0, "receipt", 2),
        journal.block("b", 0, 501, "unknown"),
        journal.unblock("b", resolution="retry", note="check again"),
        journal.fail_task("b", 0, 44, "no paper"),
    ]
    for step in steps:
        await step
        check_consistent(path)
    results = await journal.outbox_pending(kinds=[OutboxKind.RESULT])
    assert [(r.key, r.reply_to) for r in results] == [
        ("a", '{"topic": "r/a"}'),
        ("c", None),
        ("b", None),
        ("b", None),
    ]
    body = json.loads(results[0].payload_json)
    assert body["uuid"] == "a"
    assert body["results"][0]["result"]["fiscalParams"]["fiscalDocumentNumber"] == 2


async def test_result_and_state_change_are_one_transaction(
    tmp_path: Path, journal: Journal
) -> None:
    path = tmp_path / "j.sqlite3"
    await journal.submit("a", tasks(), 1, source="http")
    await journal.start("a")
    await journal.finish_task("a", 0, {})
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox "
        "BEGIN SELECT RAISE(ABORT, 'disk trouble (test)'); END"
    )
    con.commit()
    with pytest.raises(JournalError, match="disk trouble"):
        await journal.complete("a")
    job = await journal.get("a")
    assert job.state is JobState.IN_PROGRESS
    assert [h.state for h in await journal.history("a")][-1] is JobState.IN_PROGRESS
    check_consistent(path)
    con.execute("DROP TRIGGER refuse_outbox")
    con.commit()
    con.close()
    assert (await journal.complete("a")).state is JobState.DONE
    check_consistent(path)


async def test_outbox_pending_attempted_done(journal: Journal) -> None:
    first = await journal.add_event("queue_paused", {"reason": "paper"}, now=at(1))
    await journal.submit("a", tasks(), 1, source="http")
    await journal.cancel("a", now=at(2))
    second = await journal.add_event("queue_resumed", {"was": "paper"}, now=at(3))
    pending = await journal.outbox_pending()
    assert [p.id for p in pending][0::2] == [first, second]
    assert [p.kind for p in pending] == ["event", "result", "event"]
    event = json.loads(pending[0].payload_json)
    assert event == {
        "event": "queue_paused",
        "at": "2026-03-01T09:00:01.000000+00:00",
        "reason": "paper",
    }
    assert pending[0].key is None
    assert pending[0].created_at == at(1)
    assert await journal.outbox_pending(limit=1) == pending[:1]
    assert [p.kind for p in await journal.outbox_pending(kinds=["event"])] == ["event", "event"]
    assert await journal.outbox_pending(kinds=[]) == []

    assert await journal.outbox_attempted([first, second], now=at(4)) == 2
    assert await journal.outbox_attempted([first], now=at(5)) == 1
    attempts = {p.id: p.attempts for p in await journal.outbox_pending()}
    assert (attempts[first], attempts[second]) == (2, 1)

    assert await journal.outbox_done([first, pending[1].id]) == 2
    assert await journal.outbox_done([first]) == 0  # delivered already
    assert [p.id for p in await journal.outbox_pending()] == [second]
    assert await journal.outbox_depth() == 1
    assert await journal.outbox_depth(kinds=["result"]) == 0
    with pytest.raises(ValueError, match="set by the journal"):
        await journal.add_event("x", {"at": "now"})


async def test_a_refused_row_waits_out_its_backoff_while_the_rest_flow(journal: Journal) -> None:
    assert [outbox.backoff_s(n) for n in (0, 1, 2, 3, 10, 40)] == [0, 5, 10, 20, 2560, 3600]
    refused = await journal.add_event("one", {"n": 1})
    other = await journal.add_event("two", {"n": 2})
    now = dt.datetime.now(dt.UTC)
    assert await journal.outbox_attempted([refused], now=now) == 1
    # Within its 5 s the refused row is not offered; the next one is.
    assert [p.id for p in await journal.outbox_pending()] == [other]
    assert await journal.outbox_depth() == 2  # still waiting, not dropped
    # Refused 3 times, the last 19 s ago: 20 s to wait, so still not due; at 21 s it is.
    await journal.outbox_attempted([refused], now=now)
    await journal.outbox_attempted([refused], now=now - dt.timedelta(seconds=19))
    assert [p.id for p in await journal.outbox_pending()] == [other]
    await journal.outbox_done([other])
    await journal.outbox_attempted([refused], now=now - dt.timedelta(seconds=81))
    [row] = await journal.outbox_pending()
    assert (row.id, row.attempts) == (refused, 4)  # 40 s for 4 refusals, 81 s ago: due


async def test_events_are_capped_results_never(
    journal: Journal, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(outbox, "EVENTS_KEPT", 5)
    for i in range(3):
        await journal.submit(f"r{i}", tasks(), 1, source="http")
        await journal.cancel(f"r{i}")
    with caplog.at_level(logging.WARNING, logger="gateway.journal"):
        for i in range(12):
            await journal.add_event("tick", {"i": i})
    events = [
        json.loads(p.payload_json)["i"] for p in await journal.outbox_pending(kinds=["event"])
    ]
    assert events == [7, 8, 9, 10, 11]
    assert await journal.outbox_depth(kinds=["result"]) == 3
    assert journal.events_dropped == 7
    warnings = [r for r in caplog.records if "dropping the oldest" in r.getMessage()]
    assert len(warnings) == 1


async def test_purge_keeps_active_jobs_and_results_of_kept_jobs(
    tmp_path: Path, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    old, now = at(0), at(40 * 86400)
    for name in ("done", "failed", "canceled", "queued", "running", "blocked", "recent"):
        await journal.submit(name, tasks(), 1, source="http", now=old)
    await journal.start("done", now=old)
    await journal.finish_task("done", 0, {}, now=old)
    await journal.complete("done", now=old)
    await journal.start("failed", now=old)
    await journal.fail_task("failed", 0, 1, "refused", now=old)
    await journal.cancel("canceled", now=old)
    await journal.start("running", now=old)
    await journal.start("blocked", now=old)
    await journal.block("blocked", 0, 501, "unknown", now=old)
    await journal.cancel("recent", now=now - dt.timedelta(days=1))
    delivered = [p.id for p in await journal.outbox_pending() if p.key in ("done", "failed")]
    await journal.outbox_done(delivered, now=old)

    with caplog.at_level(logging.WARNING, logger="gateway.journal"):
        assert await journal.purge(30, now=now) == 3
    assert any("1 results were never delivered" in r.getMessage() for r in caplog.records)
    left = {j.uuid for j in await journal.list_jobs()}
    assert left == {"queued", "running", "blocked", "recent"}
    keys = sorted(str(p.key) for p in await journal.outbox_pending())
    # canceled's result was never delivered: it goes with its job, not before
    assert keys == ["blocked", "blocked", "recent"]
    con = sqlite3.connect(tmp_path / "j.sqlite3")
    orphans = con.execute(
        "SELECT COUNT(*) FROM history WHERE job_seq NOT IN (SELECT seq FROM jobs)"
    ).fetchone()[0]
    delivered_left = con.execute(
        "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NOT NULL"
    ).fetchone()[0]
    con.close()
    assert (orphans, delivered_left) == (0, 0)
    assert await journal.purge(30, now=now) == 0


async def test_numbers_are_never_reused_after_a_purge(journal: Journal) -> None:
    first = await journal.submit("a", tasks(), 1, source="http", now=at(0))
    await journal.cancel("a", now=at(0))
    assert await journal.purge(1, now=at(3 * 86400)) == 1
    second = await journal.submit("b", tasks(), 1, source="http")
    assert second.seq > first.seq


async def test_queue_depth_samples_are_bounded_to_a_day(journal: Journal) -> None:
    await journal.submit("a", tasks(), 1, source="http")
    assert await journal.record_queue_depth(now=at(0)) == 1
    await journal.submit("b", tasks(), 1, source="http")
    assert await journal.record_queue_depth(now=at(3600)) == 2
    assert await journal.queue_depth_samples(at(0)) == [(at(0), 1), (at(3600), 2)]
    await journal.record_queue_depth(now=at(25 * 3600))
    samples = await journal.queue_depth_samples(at(0))
    assert [s[0] for s in samples] == [at(3600), at(25 * 3600)]


async def test_latency_samples_of_done_jobs(journal: Journal) -> None:
    for name, created, finished in (("a", 0, 2.5), ("b", 10, 11), ("c", 20, 60)):
        await journal.submit(name, tasks(), 1, source="http", now=at(created))
        await journal.start(name, now=at(created))
        await journal.finish_task(name, 0, {}, now=at(finished))
        await journal.complete(name, now=at(finished))
    await journal.submit("d", tasks(), 1, source="http", now=at(30))
    await journal.cancel("d", now=at(31))
    assert await journal.latency_samples(at(5)) == [(at(11), 1.0), (at(60), 40.0)]


async def test_meta_values_are_committed(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    j = await Journal.open(path)
    assert await j.meta_get("k") is None
    await j.meta_set("k", "v1")
    await j.meta_set("k", "v2")
    await j.meta_set("gone", "x")
    await j.meta_delete("gone")
    await j.close()
    j = await Journal.open(path)
    assert (await j.meta_get("k"), await j.meta_get("gone")) == ("v2", None)
    await j.close()
