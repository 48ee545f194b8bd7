"""The systemd watchdog's view of progress: the worker's steps plus the register's answers.

A marked receipt is one worker step, yet it runs one FF61h per marked item, each as long as
the ОИСМ takes; while the register keeps answering the box is not hung. A register that
answers nothing is.
"""

from __future__ import annotations

import asyncio
import base64
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, cast

import pytest

from gateway.app.gateway import watchdog_sample
from gateway.domain import fiscal
from gateway.domain.errors import LinkError
from gateway.engine.supervisor import LinkState
from gateway.engine.worker import ShiftPolicy
from gateway.journal import JobState
from gateway.registers.shtrih import driver as driver_mod
from gateway.registers.shtrih import link as link_mod
from gateway.runtime.systemd import Progress, ProgressGate
from tests.support import box as support_box
from tests.support.box import ShtrihBox

GS = b"\x1d"
CHECK_44 = b"AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/AbCdEf"
ISM_SILENCE_S = 0.3  # the fake ОИСМ's silence per code, as the register waits for it
STALL_S = 0.5  # the gate's limit here: shorter than the receipt, longer than one check


def code(serial: str) -> bytes:
    return b"0104600653105990" + b"21" + serial.encode() + GS + b"91EE06" + GS + b"92" + CHECK_44


def marked(name: str, raw: bytes) -> dict[str, Any]:
    return {
        "type": "position",
        "name": name,
        "price": 10.0,
        "quantity": 1,
        "amount": 10.0,
        "tax": {"type": "vat20"},
        "paymentObject": "commodityWithMarking",
        "measurementUnit": "piece",
        "imcParams": {
            "imc": base64.b64encode(raw).decode("ascii"),
            "imcType": "auto",
            "itemEstimatedStatus": "itemPieceSold",
            "imcModeProcessing": 0,
        },
    }


@pytest.fixture(autouse=True)
def fast_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_mod, "PRINT_TIMEOUT_S", 1.5)
    monkeypatch.setattr(driver_mod, "QUERY_TIMEOUT_S", 0.3)
    monkeypatch.setattr(link_mod, "ENQ_TIMEOUT_S", 0.05)


def sample(box: ShtrihBox) -> Progress:
    return watchdog_sample(box.worker, box.supervisor.state, box.register)


async def test_a_long_marked_receipt_counts_as_progress_while_the_register_answers(
    tmp_path: Path,
) -> None:
    async with support_box.running_box(
        tmp_path, box_type=ShtrihBox, policy=ShiftPolicy(), supervisor_journal=False
    ) as box:
        await box.emulator.apply_fault("ism_answer", "timeout")
        await box.emulator.apply_fault("ism_timeout", ISM_SILENCE_S)
        items = [marked(f"Товар {n}", code(f"Slow000{n}")) for n in range(5)]
        total = 10.0 * len(items)
        task = {"type": "sell", "items": items, "payments": [{"type": "cash", "sum": total}]}
        await box.submit("slow", task)
        await support_box.wait_until(lambda: box.worker.current_job == "slow", poll_s=0.001)
        loop = asyncio.get_running_loop()
        gate = ProgressGate(STALL_S, now=loop.time())
        steps: set[int] = set()
        longest_s = 0.0
        while box.worker.current_job == "slow":
            progress = sample(box)
            assert not progress.waiting
            steps.add(box.worker.progress)
            verdict = gate.check(progress, loop.time())
            assert verdict.ping, f"no progress seen for {verdict.stalled_s:.2f} s"
            longest_s = max(longest_s, verdict.stalled_s)
            await asyncio.sleep(0.02)
        job = await box.wait_state("slow", JobState.DONE, JobState.FAILED)
        assert job.state is JobState.DONE, job.error_text
        # One worker step took longer than the gate allows; the answers kept it alive.
        assert len(steps) == 1
        assert longest_s < STALL_S


def _idle_box(tmp_path: Path) -> AbstractAsyncContextManager[ShtrihBox]:
    """A box on the emulator whose worker does not run: the test plays its part."""
    return support_box.running_box(
        tmp_path,
        box_type=ShtrihBox,
        policy=ShiftPolicy(),
        supervisor_journal=False,
        start_worker=False,
    )


async def test_a_hung_register_counts_as_no_progress(tmp_path: Path) -> None:
    async with _idle_box(tmp_path) as box:
        box.worker.current_job = "stuck"  # as if a job were on the register
        box.worker.on_register = True
        before = watchdog_sample(box.worker, LinkState.CONNECTED, box.register)
        await box.register.fn_status()  # the register answers: that moves the counter
        alive = watchdog_sample(box.worker, LinkState.CONNECTED, box.register)
        assert alive.counter > before.counter
        await box.emulator.apply_fault("silent", True)
        with pytest.raises(LinkError):
            await box.register.fn_status()
        hung = watchdog_sample(box.worker, LinkState.CONNECTED, box.register)
        assert hung == Progress(alive.counter, waiting=False)
        gate = ProgressGate(300.0, now=0.0)
        assert gate.check(alive, 0.0).ping
        assert not gate.check(hung, 301.0).ping


async def test_answers_to_others_do_not_count_while_the_worker_is_off_the_register(
    tmp_path: Path,
) -> None:
    """The worker stuck elsewhere (e.g. the journal) while a monitor or the heartbeat reads
    the register: those answers are not the worker's progress."""
    async with _idle_box(tmp_path) as box:
        box.worker.current_job = "previous"  # not cleared until the worker goes idle
        assert not box.worker.on_register
        before = watchdog_sample(box.worker, LinkState.CONNECTED, box.register)
        await box.register.fn_status()  # a monitor's read
        after = watchdog_sample(box.worker, LinkState.CONNECTED, box.register)
        assert after == before
        gate = ProgressGate(300.0, now=0.0)
        gate.check(before, 0.0)
        assert not gate.check(after, 301.0).ping


class _CloudRegister:
    """A register with no serial link of its own (a cloud РРО's driver has no `link`)."""


async def test_a_register_without_a_link_adds_nothing(tmp_path: Path) -> None:
    async with _idle_box(tmp_path) as box:
        box.worker.current_job = "job"
        register = cast(fiscal.Register, _CloudRegister())
        assert watchdog_sample(box.worker, LinkState.CONNECTED, register) == Progress(
            box.worker.progress, waiting=False
        )
