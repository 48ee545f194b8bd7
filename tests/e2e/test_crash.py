"""Exactly-once under SIGKILLs, emulator power cuts and lost answers (bounded CI run)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.crash_harness import Harness

pytestmark = pytest.mark.timeout(600)


async def test_every_accepted_receipt_printed_exactly_once(tmp_path: Path) -> None:
    receipts = int(os.environ.get("CRASH_RECEIPTS", "40"))
    kills = int(os.environ.get("CRASH_KILLS", "10"))
    seed = int(os.environ.get("CRASH_SEED", "20261122"))
    outcome = await Harness(tmp_path, receipts=receipts, kills=kills, seed=seed).run()

    assert outcome.daemon_kills + outcome.emulator_kills == kills
    assert len(outcome.accepted) == receipts  # the invalid ones are rejected, all valid accepted
    assert outcome.rejected, "the harness posts invalid receipts that must be refused"
    assert outcome.problems() == []
    assert outcome.final_states["ready"] == receipts


async def test_every_accepted_receipt_sold_exactly_once_on_checkbox(tmp_path: Path) -> None:
    receipts = int(os.environ.get("CRASH_RECEIPTS", "40"))
    kills = int(os.environ.get("CRASH_KILLS", "10"))
    seed = int(os.environ.get("CRASH_SEED", "20261122"))
    outcome = await Harness(
        tmp_path, receipts=receipts, kills=kills, seed=seed, backend="checkbox"
    ).run()

    assert outcome.daemon_kills + outcome.emulator_kills == kills
    assert len(outcome.accepted) == receipts
    assert outcome.rejected, "the harness posts invalid receipts that must be refused"
    assert outcome.problems() == []
    assert outcome.final_states["ready"] == receipts
