"""What a failed journal write means, and what the journal knows of the register's documents."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gateway.domain.errors import CorruptJournal, JournalError, JournalFull
from gateway.engine.journal_check import JournalGap, highest_known
from gateway.engine.journal_faults import JournalFaultKind, classify
from gateway.monitors.health_rules import Severity, journal_fault_condition, journal_gap_condition


def sqlite_full(tmp_path: Path) -> sqlite3.Error:
    """The error SQLite itself raises when the file may not grow."""
    conn = sqlite3.connect(tmp_path / "full.sqlite3")
    try:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.commit()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")
        for _ in range(1000):
            try:
                conn.execute("INSERT INTO t VALUES (?)", ("x" * 4000,))
                conn.commit()
            except sqlite3.Error as err:
                return err
    finally:
        conn.close()
    raise AssertionError("SQLite never refused to grow the file")


def caused_by(err: JournalError, cause: BaseException) -> JournalError:
    """`err` raised `from cause`, as the journal raises it."""
    err.__cause__ = cause
    return err


def test_sqlite_full_under_a_journal_error_is_a_full_disk(tmp_path: Path) -> None:
    cause = sqlite_full(tmp_path)
    assert classify(caused_by(JournalError(f"journal j: {cause}"), cause)) is (
        JournalFaultKind.DISK_FULL
    )


def test_enospc_and_the_typed_error_are_a_full_disk() -> None:
    no_space = OSError(errno.ENOSPC, "No space left on device")
    assert classify(caused_by(JournalError("write failed"), no_space)) is (
        JournalFaultKind.DISK_FULL
    )
    assert classify(JournalFull("no room")) is JournalFaultKind.DISK_FULL


def test_other_journal_errors_keep_their_kind() -> None:
    assert classify(CorruptJournal("damaged")) is JournalFaultKind.DAMAGED
    timeout = caused_by(JournalError("timeout"), TimeoutError())
    assert classify(timeout) is JournalFaultKind.FAILED


def test_journal_conditions_are_for_a_person() -> None:
    full = journal_fault_condition(
        "disk_full", "disk full: free space", "free space", "SQLITE_FULL"
    )
    assert full.severity is Severity.CRITICAL
    assert full.message == "disk full: free space (SQLITE_FULL)"
    gap = JournalGap("9999", 7, 9, "2026-01-01T00:00:00")
    cond = journal_gap_condition(gap.message, gap.action)
    assert cond.severity is Severity.WARNING
    assert "8–9" in cond.message
    assert "9999" in cond.message


def job(n0: int | None, step: str | None, *results: dict[str, Any] | None) -> Any:
    tasks = [SimpleNamespace(result=r) for r in results]
    return SimpleNamespace(n0=n0, fiscal_step=step, task_results=tasks)


def receipt(number: int, fn: str | None = "FN1") -> dict[str, Any]:
    return {"fiscalParams": {"fiscalDocumentNumber": number, "fnNumber": fn}}


def test_highest_known_reads_results_steps_events_and_the_note() -> None:
    jobs = [job(4, None, receipt(5)), job(None, None, {"deviceStatus": {}})]
    assert highest_known(jobs, [], None, "FN1") == 5
    # A step still open: its document N0 + 1 is the worker's to prove.
    assert highest_known([*jobs, job(6, "sell", None)], [], None, "FN1") == 7
    assert highest_known(jobs, [{"event": "shift_closed", "document": 9}], None, "FN1") == 9
    assert highest_known(jobs, [], {"fn": "FN1", "last": 12}, "FN1") == 12
    # Cash operations carry their own number; nothing known at all is None, not 0.
    assert highest_known([job(None, None, {"documentNumber": 3})], [], None, "FN1") == 3
    assert highest_known([], [], None, "FN1") is None


def test_highest_known_ignores_another_fns_numbers() -> None:
    jobs = [job(None, None, receipt(500, fn="OLD")), job(None, None, receipt(2))]
    assert highest_known(jobs, [], {"fn": "OLD", "last": 600}, "FN1") == 2
