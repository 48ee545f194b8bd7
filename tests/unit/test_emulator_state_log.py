"""The emulator's state on disk: a snapshot plus a change log, whole after a kill at any point."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.registers.emulator import fn
from gateway.registers.emulator import state as state_mod
from gateway.registers.emulator.state import (
    Document,
    EmulatorState,
    StateStore,
    fresh_state,
    load_state,
    log_path,
    save_state,
)

H0 = dt.datetime(2026, 3, 2, 10, 0, 0)


def with_document(state: EmulatorState) -> EmulatorState:
    """`state` with one more receipt in the archive and the counters it moves."""
    number = state.last_document.number + 1
    doc = Document(
        number=number,
        doc_type=fn.DOC_RECEIPT,
        datetime=H0 + dt.timedelta(minutes=number),
        fiscal_sign=1000 + number,
        shift=1,
        operation=1,
        total=100 * number,
        tlv=bytes(range(number % 200)),
    )
    return replace(
        state,
        documents=(*state.documents, doc),
        shift=replace(state.shift, receipts=state.shift.receipts + 1),
    )


def test_each_save_is_one_line_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "e.state"
    current = fresh_state(H0)
    store = StateStore(path, current)
    snapshot = path.read_bytes()
    for _ in range(20):
        current = with_document(current)
        store.save(current)
        assert load_state(path) == current
    store.save(current)  # nothing changed: nothing written
    assert len(log_path(path).read_bytes().splitlines()) == 20
    assert path.read_bytes() == snapshot  # the snapshot is not rewritten per command
    store.close()
    assert log_path(path).read_bytes() == b""
    assert load_state(path) == current


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "e.state"
    first = with_document(fresh_state(H0))
    store = StateStore(path, first)
    second = with_document(first)
    store.save(second)
    whole = log_path(path).read_bytes()
    for cut in (1, len(whole) // 2, len(whole) - 2):
        # A kill mid-write: the command was never answered, as if the power went before it.
        log_path(path).write_bytes(whole[:cut])
        assert load_state(path) == first
    log_path(path).write_bytes(whole)
    assert load_state(path) == second


def test_lines_of_an_older_snapshot_do_not_count(tmp_path: Path) -> None:
    path = tmp_path / "e.state"
    first = fresh_state(H0)
    store = StateStore(path, first)
    second = with_document(first)
    store.save(second)
    stale_log = log_path(path).read_bytes()
    # A kill between a compaction's snapshot and its emptied log leaves the old lines behind.
    save_state(path, second)
    log_path(path).write_bytes(stale_log)
    assert load_state(path) == second


def test_compaction_keeps_the_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_mod, "COMPACT_AFTER", 3)
    path = tmp_path / "e.state"
    current = fresh_state(H0)
    store = StateStore(path, current)
    for i in range(7):
        current = with_document(current)
        store.save(current)
        assert len(log_path(path).read_bytes().splitlines()) == (i + 1) % 3
        assert load_state(path) == current


def test_an_archive_that_does_not_just_grow_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "e.state"
    grown = with_document(with_document(fresh_state(H0)))
    store = StateStore(path, grown)
    other = with_document(fresh_state(H0 + dt.timedelta(days=1)))
    store.save(other)
    assert log_path(path).read_bytes() == b""
    assert load_state(path) == other
