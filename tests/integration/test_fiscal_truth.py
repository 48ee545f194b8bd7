"""The Z report's reconciliation, the commissioning self-test and the status refresh after a job,
against the emulator on a real pty, the worker and a journal on disk (and, for the
`selftest` command, the box's HTTP API on a real socket)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.app.parts import refresh_after_job
from gateway.app.selftest_cli import BoxApi, SelftestError, run_selftest
from gateway.atol.decimal_json import dumps
from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.config.schema import HealthConfig, HttpConfig
from gateway.config.values import Listen
from gateway.domain import fiscal
from gateway.engine import selftest
from gateway.engine.worker import ShiftPolicy, Worker
from gateway.ingress.http_api import HttpApi
from gateway.journal import JobState
from gateway.monitors.health import HealthMonitor
from tests.integration.test_worker import WAIT_S, Box, running_box, sell

CASHIER = fiscal.Operator("Иванова А.")


def by_hand(kopecks: int) -> fiscal.Receipt:
    """A receipt punched on the register itself: the journal never hears of it."""
    line = fiscal.Item(
        name="Вручную",
        price=kopecks,
        quantity=fiscal.QTY_SCALE,
        amount=kopecks,
        vat=fiscal.Vat.VAT20,
    )
    return fiscal.Receipt(
        type=fiscal.ReceiptType.SELL,
        taxation=fiscal.TaxationType.OSN,
        items=(line,),
        payments=(fiscal.Payment(fiscal.PaymentType.CASH, kopecks),),
        operator=CASHIER,
    )


async def close_shift(box: Box, uuid: str) -> dict[str, Any]:
    await box.submit(uuid, {"type": "closeShift"})
    job = await box.wait_state(uuid, JobState.DONE, JobState.FAILED, JobState.BLOCKED)
    assert job.state is JobState.DONE, job.error_text
    result = job.task_results[0].result
    assert result is not None
    reconciliation = result["shiftReconciliation"]
    assert isinstance(reconciliation, dict)
    return reconciliation


async def mismatch_events(box: Box) -> list[dict[str, Any]]:
    return await box.journal.recent_events("shift_mismatch")


async def test_a_shift_whose_receipts_all_went_through_the_journal_matches(
    tmp_path: Path,
) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("r1", sell("Хлеб", 45_50))
        await box.submit("r2", sell("Молоко", 89_90), {"type": "cashIn", "cashSum": 500})
        for uuid in ("r1", "r2"):
            assert (await box.wait_state(uuid, JobState.DONE, JobState.FAILED)).state is (
                JobState.DONE
            )
        got = await close_shift(box, "z1")
        assert got["matches"] is True, got
        assert got["differences"] == []
        assert got["register"]["sell"]["count"] == got["journal"]["sell"]["count"] == 2
        assert got["journal"]["sell"]["sum"] == 135.4
        assert got["journal"]["cashIn"] == {"count": 1, "sum": 500.0}
        assert await mismatch_events(box) == []


async def test_a_receipt_punched_by_hand_is_a_shift_mismatch(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("r1", sell("Хлеб", 45_50))
        await box.submit("r2", sell("Молоко", 89_90))
        for uuid in ("r1", "r2"):
            assert (await box.wait_state(uuid, JobState.DONE, JobState.FAILED)).state is (
                JobState.DONE
            )
        # The same register, outside the worker and the journal (the worker's lock held, as a
        # person at the register would be alone with it).
        async with box.worker.register_lock:
            await box.register.print_receipt(by_hand(12_34))
        got = await close_shift(box, "z1")
        assert got["matches"] is False
        diffs = {(d["operation"], d["payment"], d["measure"]): d for d in got["differences"]}
        assert diffs[("sell", None, "count")]["difference"] == 1
        assert diffs[("sell", "cash", "sum")] == {
            "operation": "sell",
            "payment": "cash",
            "measure": "sum",
            "register": 147.74,
            "journal": 135.4,
            "difference": pytest.approx(12.34),
        }
        (event,) = await mismatch_events(box)
        assert event["shift"] == got["shift"]
        assert event["differences"] == got["differences"]
        assert "punched by hand" in event["text"]


async def run_selftest_job(box: Box, uuid: str) -> list[dict[str, Any]]:
    # The self-test's sums are exact decimals: written with the gateway's own JSON writer.
    parsed = parse_request(dumps({"uuid": uuid, "request": selftest.build_tasks()}), NameMapping())
    await box.journal.submit(uuid, parsed.tasks_json, len(parsed.tasks), source="http")
    box.worker.wake()
    job = await box.wait_state(uuid, JobState.DONE, JobState.FAILED, JobState.BLOCKED)
    assert job.state is JobState.DONE, job.error_text
    return [r.to_json() for r in job.task_results]


async def test_the_self_test_passes_for_every_payment_type(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        results = await run_selftest_job(box, "selftest-1")
        report = selftest.judge(results)
        assert report.passed, report.lines()
        assert [c.payment for c in report.checks] == list(selftest.PAYMENT_TYPES)
        documents = [d for c in report.checks for d in (c.sell_document, c.return_document)]
        assert None not in documents
        assert len(set(documents)) == 10
        # Ten receipts on the paper tape, one pair per payment type.
        receipts = [d for d in box.tape() if d["type"] in ("sell", "sellReturn")]
        assert len(receipts) == 10
        assert box.printed(selftest.ITEM_NAME) == 10


async def test_the_self_test_fails_where_a_counter_did_not_move(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        results = await run_selftest_job(box, "selftest-1")
        # The register's answer after the receipts, with its card counter left where it was.
        before = results[0]["result"]["shiftTotals"]["receipts"]
        after = json.loads(json.dumps(results[-1]))
        for operation in ("sell", "sellReturn"):
            was = before[operation]["payments"]["electronically"]
            after["result"]["shiftTotals"]["receipts"][operation]["payments"]["electronically"] = (
                was
            )
        report = selftest.judge([*results[:-1], after])
        assert not report.passed
        assert [c.payment for c in report.checks if not c.passed] == ["electronically"]


async def test_the_selftest_command_through_the_http_api(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:

        async def health() -> dict[str, object]:
            return {"status": "ok"}

        api = HttpApi(
            config=HttpConfig(listen=Listen("127.0.0.1", 0)),
            journal=box.journal,
            mapping=NameMapping(),
            health=health,
            on_submitted=box.worker.wake,
        )
        await api.start()
        try:
            async with aiohttp.ClientSession() as session:
                client = BoxApi(session, f"http://127.0.0.1:{api.port}", None)
                out = io.StringIO()
                report = await run_selftest(client, force=False, out=out)
                assert report.passed, out.getvalue()
                assert out.getvalue().splitlines()[-1] == "Self-test passed"
                # The shift now holds the self-test's ten receipts: refused unless forced.
                with pytest.raises(SelftestError, match="holds 10 customer receipts"):
                    await run_selftest(client, force=False, out=io.StringIO())
                assert (await run_selftest(client, force=True, out=io.StringIO())).passed
        finally:
            await api.stop()


async def test_the_status_is_read_again_after_every_job(tmp_path: Path) -> None:
    async with running_box(tmp_path, start_worker=False) as box:
        worker = Worker(
            box.journal,
            box.register,
            box.supervisor.connected_event,
            mapping=NameMapping(),
            policy=ShiftPolicy(),
            after_job=lambda: refresh_after_job(health),  # the hook the app hands its worker
        )
        # A poll interval far longer than the test: only the worker's after_job can refresh.
        health = HealthMonitor(
            box.journal,
            box.register,
            box.supervisor.connected_event,
            worker.register_lock,
            config=HealthConfig(poll_interval_s=86400),
        )
        box.worker = worker
        async with asyncio.TaskGroup() as tg:
            polls = tg.create_task(health.run(), name="health")
            work = tg.create_task(worker.run(), name="worker")
            try:
                async with asyncio.timeout(WAIT_S):
                    while health.polls < 1:
                        await asyncio.sleep(0.02)
                first = health.snapshot().reading
                assert first is not None
                assert first.shift_state is fiscal.ShiftState.CLOSED
                await box.submit("open", {"type": "openShift"})
                job = await box.wait_state("open", JobState.DONE, JobState.FAILED)
                assert job.state is JobState.DONE, job.error_text
                async with asyncio.timeout(WAIT_S):
                    while health.polls < 2:
                        await asyncio.sleep(0.02)
                reading = health.snapshot().reading
                assert reading is not None
                assert reading.shift_state is fiscal.ShiftState.OPENED
            finally:
                work.cancel()
                polls.cancel()
