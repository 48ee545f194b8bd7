"""Exactly-once under SIGKILLs, emulator power cuts and lost answers (bounded CI run); and
no acknowledged job lost when the daemon is killed amid concurrent submissions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.crash_harness import Harness, IntakeKills

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


async def test_no_acknowledged_job_lost_when_killed_amid_concurrent_submissions(
    tmp_path: Path,
) -> None:
    rounds = int(os.environ.get("CRASH_INTAKE_ROUNDS", "4"))
    seed = int(os.environ.get("CRASH_SEED", "20261122"))
    outcome = await IntakeKills(tmp_path, rounds=rounds, clients=16, seed=seed).run()

    assert outcome.kills == rounds
    assert len(outcome.acknowledged) > 100  # bursts large enough to share commits
    assert outcome.unanswered > 0, "the kills must land while submissions are in flight"
    assert outcome.missing == []
