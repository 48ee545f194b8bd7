"""The journal on a real SQLite file: idempotency, order, recovery state, outbox, damage."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from gateway.errors import CorruptJournal, DuplicateJob, InvalidJobState, JournalError
from gateway.journal import JobState, Journal

TASKS = json.dumps([{"type": "sell"}, {"type": "reportX"}])


@pytest.fixture
async def journal(tmp_path: Path) -> Journal:
    j = await Journal.open(tmp_path / "j.sqlite3")
    yield j  # type: ignore[misc]
    await j.close()


async def test_schema_and_pragmas(tmp_path: Path, journal: Journal) -> None:
    con = sqlite3.connect(tmp_path / "j.sqlite3")
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    assert journal.integrity_result == "ok"


async def test_submit_and_duplicate(journal: Journal) -> None:
    job = await journal.submit("a", TASKS, 2, source="http")
    assert job.state is JobState.QUEUED
    assert [t.status for t in job.task_results] == ["wait", "wait"]
    with pytest.raises(DuplicateJob) as err:
        await journal.submit("a", "[]", 0, source="mqtt")
    assert err.value.record == job


async def test_concurrent_duplicates_only_one_wins(journal: Journal) -> None:
    outcomes = await asyncio.gather(
        *(journal.submit("same", TASKS, 2, source="http") for _ in range(20)),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(isinstance(o, DuplicateJob) for o in outcomes if isinstance(o, BaseException))
    assert await journal.queue_depth() == 1


async def test_fifo_and_recovery_first(tmp_path: Path) -> None:
    j = await Journal.open(tmp_path / "j.sqlite3")
    for name in ("first", "second", "third"):
        await j.submit(name, TASKS, 2, source="http")
    assert (await j.next_job()).uuid == "first"  # type: ignore[union-attr]
    await j.start("second")
    await j.begin_fiscal_step("second", 0, "sell", n0=41)
    await j.close()  # a crash: nothing else is written
    j = await Journal.open(tmp_path / "j.sqlite3")
    job = await j.next_job()
    assert job is not None
    assert job.uuid == "second"
    assert job.state is JobState.IN_PROGRESS
    assert (job.fiscal_step, job.n0, job.current_task) == ("sell", 41, 0)
    assert job.task_results[0].status == "inProgress"
    await j.close()


async def test_finish_complete_and_outbox(journal: Journal) -> None:
    await journal.submit("j", TASKS, 2, source="http")
    await journal.start("j")
    await journal.begin_fiscal_step("j", 0, "sell", 5)
    await journal.finish_task("j", 0, {"fiscalParams": {"fiscalDocumentNumber": 6}})
    await journal.finish_task("j", 1, {})
    assert await journal.outbox_depth() == 0
    done = await journal.complete("j")
    assert done.state is JobState.DONE
    assert done.fiscal_step is None
    [row] = await journal.outbox_pending()
    assert row.kind == "result"
    body = json.loads(row.payload)
    assert body["results"][0]["result"]["fiscalParams"]["fiscalDocumentNumber"] == 6
    assert body["results"][0]["errorCode"] == 0
    await journal.outbox_done([row.id])
    assert await journal.outbox_depth() == 0
    states = [h.state for h in await journal.history("j")]
    assert states == ["queued", "in_progress", "in_progress", "in_progress", "in_progress", "done"]


async def test_fail_interrupts_the_rest(journal: Journal) -> None:
    await journal.submit("f", TASKS, 2, source="http")
    await journal.start("f")
    job = await journal.fail_task("f", 0, 44, "no paper")
    assert job.state is JobState.FAILED
    assert [t.status for t in job.task_results] == ["error", "interrupted"]
    atol = job.atol_results()["results"][0]
    assert atol["error"] == {"code": 44, "description": "no paper"}
    assert (atol["errorCode"], atol["errorDescription"]) == (44, "no paper")


async def test_block_stops_the_queue_until_retry(journal: Journal) -> None:
    await journal.submit("b", TASKS, 2, source="http")
    await journal.submit("later", TASKS, 2, source="http")
    await journal.start("b")
    await journal.begin_fiscal_step("b", 0, "sell", 9)
    await journal.block("b", 0, 501, "document 10 does not match")
    assert (await journal.is_blocked()).uuid == "b"  # type: ignore[union-attr]
    kinds = sorted(r.kind for r in await journal.outbox_pending())
    assert kinds == ["event", "result"]
    retried = await journal.unblock_retry("b", "technician checked the tape")
    assert retried.state is JobState.IN_PROGRESS
    assert retried.n0 == 9
    assert await journal.is_blocked() is None


async def test_cancel_only_when_queued(journal: Journal) -> None:
    await journal.submit("c", TASKS, 2, source="http")
    canceled = await journal.cancel("c")
    assert [t.status for t in canceled.task_results] == ["canceled", "canceled"]
    await journal.submit("s", TASKS, 2, source="http")
    await journal.start("s")
    with pytest.raises(InvalidJobState):
        await journal.cancel("s")


async def test_purge_keeps_active_jobs(journal: Journal) -> None:
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    await journal.submit("old", TASKS, 2, source="http", now=old)
    await journal.cancel("old", now=old)
    await journal.submit("active", TASKS, 2, source="http", now=old)
    assert await journal.purge(30) == 1
    assert await journal.find("old") is None
    assert await journal.find("active") is not None


async def test_meta(journal: Journal) -> None:
    assert await journal.meta_get("k") is None
    await journal.meta_set("k", "v1")
    await journal.meta_set("k", "v2")
    assert await journal.meta_get("k") == "v2"


async def test_damaged_file_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    j = await Journal.open(path)
    await j.submit("x", TASKS, 2, source="http")
    await j.close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\x99" * (4096 - 100)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptJournal, match="recreate_if_corrupt"):
        await Journal.open(path)
    assert path.read_bytes() == bytes(data)
    j = await Journal.open(path, recreate_if_corrupt=True)
    assert await j.queue_depth() == 0
    await j.close()
    assert list(tmp_path.glob("j.sqlite3.corrupt-*"))


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version=99")
    con.close()
    with pytest.raises(JournalError, match="newer"):
        await Journal.open(path)


def test_committed_job_survives_sigkill(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import asyncio, os, sys\n"
        "from pathlib import Path\n"
        "from gateway.journal import Journal\n"
        "async def main():\n"
        f"    j = await Journal.open(Path({str(tmp_path / 'k.sqlite3')!r}))\n"
        "    await j.submit('killed', '[]', 0, source='http')\n"
        "    print('committed', flush=True)\n"
        "    os.kill(os.getpid(), 9)\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert out.stdout.strip() == "committed"
    assert out.returncode == -9

    async def check() -> None:
        j = await Journal.open(tmp_path / "k.sqlite3")
        assert (await j.get("killed")).state is JobState.QUEUED
        await j.close()

    asyncio.run(check())
