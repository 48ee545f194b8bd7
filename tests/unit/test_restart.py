"""The restarter: a crashed task comes back after a growing pause; fatal errors and
cancellation pass through; counts and reports are right."""

from __future__ import annotations

import asyncio

import pytest

from gateway.runtime.restart import Backoff, Restart, Restarter

FAST = Backoff(first_s=0.01, max_s=0.04, reset_after_s=10.0)


def test_backoff_doubles_up_to_its_ceiling() -> None:
    backoff = Backoff(first_s=1.0, max_s=60.0)
    assert [backoff.delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff.delay(10_000) == 60.0  # no overflow on a long crash streak


async def test_a_crashing_task_is_restarted_until_it_finishes() -> None:
    runs: list[int] = []
    reports: list[Restart] = []

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) < 4:
            raise RuntimeError(f"crash {len(runs)}")

    keeper = Restarter(on_restart=reports.append, backoff=FAST)
    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        keeper.spawn(tg, "flaky", flaky)
    assert len(runs) == 4
    assert keeper.restarts == {"flaky": 3}
    assert [(r.task, r.restarts, r.error) for r in reports] == [
        ("flaky", 1, "RuntimeError: crash 1"),
        ("flaky", 2, "RuntimeError: crash 2"),
        ("flaky", 3, "RuntimeError: crash 3"),
    ]
    assert [r.delay_s for r in reports] == [0.01, 0.02, 0.04]
    assert reports[0].as_event() == {
        "task": "flaky",
        "restarts": 1,
        "error": "RuntimeError: crash 1",
        "delay_s": 0.01,
    }


async def test_a_fatal_error_ends_the_group_and_its_siblings() -> None:
    sibling_cancelled = asyncio.Event()

    async def journal_gone() -> None:
        raise OSError("disk gone")

    async def sibling() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            sibling_cancelled.set()
            raise

    keeper = Restarter(is_fatal=lambda err: isinstance(err, OSError), backoff=FAST)

    async def run_both() -> None:
        async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
            keeper.spawn(tg, "sibling", sibling)
            keeper.spawn(tg, "journal", journal_gone)

    with pytest.raises(ExceptionGroup) as caught:
        await run_both()
    assert caught.group_contains(OSError)
    assert sibling_cancelled.is_set()
    assert keeper.restarts == {}


async def test_cancel_all_stops_tasks_without_counting_a_restart() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(60)

    keeper = Restarter(backoff=FAST)
    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        task = keeper.spawn(tg, "forever", forever)
        await started.wait()
        keeper.cancel_all()
    assert task.cancelled()
    assert keeper.restarts == {}
