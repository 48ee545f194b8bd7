"""What one receipt costs the journal and the link: the worker against the emulator on a pty.

Three commits (queued; started with step and N0; result with done), one 11h status read
before the document, and the task JSON parsed once, by the submitter.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.atol.parser import parse_request
from gateway.journal import JobState
from tests.support.box import ShtrihBox, running_box

LINK_LOGGER = "gateway.registers.shtrih.link"


def sell(name: str, lines: int = 1) -> dict[str, Any]:
    items = [
        {
            "type": "position",
            "name": f"{name} #{i}",
            "price": 12.5,
            "quantity": 1,
            "amount": 12.5,
            "tax": {"type": "vat20"},
        }
        for i in range(lines)
    ]
    return {"type": "sell", "items": items, "payments": [{"type": "cash", "sum": 12.5 * lines}]}


def commands_sent(records: list[logging.LogRecord]) -> list[int]:
    """The command code of every frame the link sent ("-> 02 <len> <cmd> ...")."""
    out = []
    for record in records:
        text = record.getMessage()
        if record.name == LINK_LOGGER and text.startswith("-> 02"):
            frame = bytes.fromhex(text[3:])
            out.append(frame[2] if frame[2] != 0xFF else 0xFF00 | frame[3])
    return out


@pytest.mark.parametrize("lines", [1, 20])
async def test_a_receipt_costs_three_commits_and_one_status_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, lines: int
) -> None:
    async with running_box(tmp_path, box_type=ShtrihBox) as box:
        await box.submit("warm-up", sell("warm-up"))  # opens the shift
        await box.wait_state("warm-up", JobState.DONE)
        caplog.set_level(logging.DEBUG, logger=LINK_LOGGER)
        caplog.clear()
        before = box.journal.commits
        body = json.dumps({"uuid": "r", "request": [sell("Сыр", lines)]})
        parsed = parse_request(body, box.mapping)
        await box.journal.submit("r", parsed.tasks_json, 1, source="http", parsed=parsed)
        box.worker.wake()
        job = await box.wait_state("r", JobState.DONE, JobState.FAILED, JobState.BLOCKED)
        sent = commands_sent(caplog.records)
        commits = box.journal.commits - before

        assert job.state is JobState.DONE
        assert box.printed("Сыр #0") == 1
        assert commits == 3
        # One status (11h) and N0 (FF01h) before the document; nothing else asked twice.
        assert sent[:2] == [0x11, 0xFF01]
        assert sent.count(0x11) == 1
        assert sent.count(0xFF46) == lines
        assert box.journal.parsed("r") is None  # the worker took the submitter's parse
        notes = [h.note for h in await box.journal.history("r")]
        assert notes == ["via http", "started", "sell: N0=3", "task ready", "done"]
