"""The journal file itself: damage, schema versions, migrations, and SIGKILL at any moment."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.domain.errors import CorruptJournal, JournalError, JournalTooNew
from gateway.journal import JobState, Journal, schema

REPO = Path(__file__).resolve().parents[2]
TASKS = json.dumps([{"type": "sell"}])


async def make_journal(path: Path, jobs: int = 1) -> None:
    """A healthy journal file with some jobs in it."""
    j = await Journal.open(path)
    for i in range(jobs):
        await j.submit(f"job-{i}", TASKS, 1, source="http")
    await j.close()


async def test_garbage_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    with pytest.raises(CorruptJournal) as err:
        await Journal.open(path)
    message = str(err.value)
    assert str(path) in message
    assert "left in place" in message
    assert "journal.recreate_if_corrupt: true" in message
    assert "backup" in message
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.sqlite3"]


async def test_damaged_pages_are_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    await make_journal(path, jobs=200)
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\x99" * (4096 - 100)  # the schema page, after the file header
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptJournal, match="recreate_if_corrupt"):
        await Journal.open(path)
    assert path.read_bytes() == bytes(data)


async def test_a_uuid_index_that_does_not_match_its_table_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    await make_journal(path, jobs=50)
    con = sqlite3.connect(path)
    root = con.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_jobs_1'"
    ).fetchone()[0]
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    data = bytearray(path.read_bytes())
    page = slice((root - 1) * page_size, root * page_size)
    index_page = bytes(data[page])
    assert b"job-42" in index_page
    # The index now says job-4Z where the table says job-42: a uuid lookup would miss it.
    data[page] = index_page.replace(b"job-42", b"job-4Z")
    path.write_bytes(bytes(data))
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"  # what quick_check misses
    con.close()
    with pytest.raises(CorruptJournal, match="missing from index"):
        await Journal.open(path)


async def test_recreate_keeps_the_damaged_file_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j.sqlite3"
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    Path(f"{path}-wal").write_bytes(b"stale wal")
    with caplog.at_level(logging.ERROR, logger="gateway.journal"):
        j = await Journal.open(path, recreate_if_corrupt=True)
    kept = j.kept_corrupt
    assert kept is not None
    assert kept.name.startswith("j.sqlite3.corrupt-")
    assert kept.read_bytes() == garbage
    assert Path(f"{kept}-wal").read_bytes() == b"stale wal"
    assert any(str(kept) in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert j.integrity_result == "ok"
    job = await j.submit("fresh", TASKS, 1, source="http")
    assert job.state is JobState.QUEUED
    await j.close()
    j = await Journal.open(path, recreate_if_corrupt=True)
    assert j.kept_corrupt is None
    assert (await j.get("fresh")).seq == job.seq
    await j.close()


async def test_an_unreadable_path_is_not_mistaken_for_damage(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    path.mkdir()
    with pytest.raises(JournalError) as err:
        await Journal.open(path, recreate_if_corrupt=True)
    assert not isinstance(err.value, CorruptJournal)
    assert path.is_dir()
    assert not list(tmp_path.glob("*.corrupt-*"))


async def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    await make_journal(path)
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version=99")
    con.close()
    before = path.read_bytes()
    with pytest.raises(JournalTooNew) as err:
        await Journal.open(path, recreate_if_corrupt=True)
    assert (err.value.found, err.value.known) == (99, schema.SCHEMA_VERSION)
    assert "newer" in str(err.value)
    assert str(path) in str(err.value)
    assert path.read_bytes() == before


async def test_upgrade_from_the_first_schema_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    for statement in schema.split_statements(schema.MIGRATIONS[0]):
        con.execute(statement)
    con.execute("PRAGMA user_version=1")
    stamp = "2026-01-02T03:04:05.678+00:00"  # the first schema wrote milliseconds
    results = json.dumps([{"status": "wait", "result": None, "error": None}])
    con.execute(
        "INSERT INTO jobs (uuid, source, tasks_json, tasks_count, state, results_json, "
        "created_at, updated_at) VALUES ('old', 'http', ?, 1, 'queued', ?, ?, ?)",
        (TASKS, results, stamp, stamp),
    )
    con.execute(
        "INSERT INTO outbox (kind, key, payload, created_at) "
        "VALUES ('event', 'queue_paused', '{}', ?)",
        (stamp,),
    )
    con.close()
    j = await Journal.open(path)
    job = await j.get("old")
    assert (job.state, job.created_at.microsecond) == (JobState.QUEUED, 678000)
    [event] = await j.outbox_pending()
    assert (event.key, event.reply_to) == (None, None)
    await j.submit("new", TASKS, 1, source="mqtt")
    assert [x.uuid for x in await j.list_jobs()] == ["new", "old"]
    await j.close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    con.close()


async def test_a_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.sqlite3"
    await make_journal(path)
    broken = "CREATE TABLE extra (a);\nINSERT INTO nowhere VALUES (1);\n"
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    with pytest.raises(JournalError, match="nowhere"):
        await Journal.open(path)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    assert con.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'extra'").fetchone()[0] == 0
    con.close()
    fresh = tmp_path / "fresh.sqlite3"
    with pytest.raises(JournalError):
        await Journal.open(fresh)
    con = sqlite3.connect(fresh)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 0
    assert con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
    con.close()


def test_statements_are_cut_where_sqlite_says() -> None:
    script = textwrap.dedent(
        """
        -- a comment
        CREATE TABLE t (a TEXT DEFAULT 'x;y');
        CREATE TRIGGER g BEFORE INSERT ON t
        BEGIN
            SELECT RAISE(ABORT, 'no; never');
        END;
        """
    )
    parts = schema.split_statements(script)
    assert len(parts) == 2
    assert parts[1].endswith("END;")
    with pytest.raises(ValueError, match="inside a statement"):
        schema.split_statements("CREATE TABLE t (a")
    for migration in schema.MIGRATIONS:
        for statement in schema.split_statements(migration):
            assert sqlite3.complete_statement(statement)


def _child(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def test_a_committed_job_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite3"
    child = _child(
        f"""
        import asyncio, json
        from pathlib import Path
        from gateway.journal import Journal
        async def main():
            j = await Journal.open(Path({str(path)!r}))
            await j.submit("killed", json.dumps([{{"type": "sell"}}]), 1, source="http")
            print("committed", flush=True)
            await asyncio.sleep(3600)
        asyncio.run(main())
        """
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    _kill(child)
    assert line.strip() == "committed"
    con = sqlite3.connect(path)
    assert con.execute("SELECT state FROM jobs WHERE uuid = 'killed'").fetchone() == ("queued",)
    con.close()


LIFECYCLES = """
    import asyncio, json, sys
    from pathlib import Path
    from gateway.journal import Journal
    async def main():
        j = await Journal.open(Path(sys.argv[1]))
        n = len(await j.list_jobs(limit=100000))
        while True:
            # What a crash left is finished first (in progress, then blocked); then a new job.
            job = await j.next_job()
            if job is None:
                blocked = await j.list_jobs(states=["blocked"])
                if blocked:
                    await j.unblock(blocked[0].uuid, resolution="failed", note="not printed")
                    print(blocked[0].uuid, flush=True)
                    continue
                tasks = json.dumps([{"type": "sell"}, {"type": "reportX"}])
                await j.submit(f"job-{n}", tasks, 2, source="http")
                n += 1
                continue
            job = await j.start(job.uuid)
            if job.current_task == 0:
                if job.fiscal_step is None:
                    job = await j.begin_fiscal_step(job.uuid, 0, "receipt", job.seq)
                if job.seq % 3 == 0:
                    await j.block(job.uuid, 0, 501, "unknown")
                    await j.unblock(job.uuid, resolution="failed", note="not printed")
                    print(job.uuid, flush=True)
                    continue
                result = {"fiscalParams": {"fiscalDocumentNumber": job.seq}}
                job = await j.finish_task(job.uuid, 0, result)
            if job.current_task == 1:
                await j.finish_task(job.uuid, 1, {})
            await j.complete(job.uuid)
            await j.add_event("done", {"uuid": job.uuid})
            print(job.uuid, flush=True)
    asyncio.run(main())
"""


@pytest.mark.parametrize("lines", [1, 4, 9])
def test_sigkill_mid_work_leaves_a_consistent_journal(tmp_path: Path, lines: int) -> None:
    path = tmp_path / "k.sqlite3"
    reported: list[str] = []
    for _ in range(3):  # three crashes into the same file
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(LIFECYCLES), str(path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert child.stdout is not None
        reported += [child.stdout.readline().strip() for _ in range(lines)]
        _kill(child)
        con = sqlite3.connect(path)
        states = dict(con.execute("SELECT uuid, state FROM jobs").fetchall())
        for uuid in reported:
            assert states[uuid] in ("done", "failed"), uuid
        for uuid, state, stored in con.execute("SELECT uuid, state, results_json FROM jobs"):
            sent = con.execute(
                "SELECT payload FROM outbox WHERE kind = 'result' AND key = ? ORDER BY id DESC",
                (uuid,),
            ).fetchone()
            if state in ("done", "failed", "blocked"):
                assert sent is not None, uuid
                statuses = [r["status"] for r in json.loads(sent[0])["results"]]
                assert statuses == [r["status"] for r in json.loads(stored)]
        assert sum(s in ("queued", "in_progress", "blocked") for s in states.values()) <= 1
        con.close()
