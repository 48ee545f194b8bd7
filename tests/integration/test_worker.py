"""The exactly-once worker against the emulator on a real pty and a journal on disk.

Each scenario reads the emulator's paper tape at the end: the proof that a receipt was
printed once is what the register printed, not what the worker believes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.atol.tasks import ReceiptTask
from gateway.config.schema import HealthConfig
from gateway.domain import fiscal
from gateway.domain.errors import JournalError
from gateway.engine import worker as worker_mod
from gateway.engine.journal_faults import JournalFaultKind
from gateway.engine.supervisor import LinkState
from gateway.engine.worker import ShiftPolicy
from gateway.journal import JobState, Resolution
from gateway.journal.intake import DiskFull, Intake
from gateway.monitors.health import HealthMonitor
from gateway.monitors.health_rules import Severity
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.shtrih import driver as driver_mod
from tests.support import box as support_box
from tests.support.box import ShtrihBox

WAIT_S = 30.0  # generous: these are correctness tests, not speed tests


@dataclass(kw_only=True)
class Box(ShtrihBox):
    """A worker, its register (emulator on a pty, via the supervisor) and its journal."""

    async def events(self) -> list[str]:
        return await self.kinds()


def sell(name: str, kopecks: int = 10000, lines: int = 1) -> dict[str, Any]:
    price = kopecks / 100
    items = [
        {
            "type": "position",
            "name": name if i == 0 else f"{name} #{i}",
            "price": price,
            "quantity": 1,
            "amount": price,
            "tax": {"type": "vat20"},
        }
        for i in range(lines)
    ]
    return {
        "type": "sell",
        "items": items,
        "payments": [{"type": "cash", "sum": round(price * lines, 2)}],
    }


def osn(receipt: fiscal.Receipt) -> fiscal.Receipt:
    """A receipt printed straight on the register (not by the worker) names its tax system."""
    return dataclasses.replace(receipt, taxation=fiscal.TaxationType.OSN)


@pytest.fixture(autouse=True)
def fast_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Faults that swallow answers and paused queues should come back quickly in tests.
    monkeypatch.setattr(driver_mod, "PRINT_TIMEOUT_S", 1.5)
    monkeypatch.setattr(driver_mod, "QUERY_TIMEOUT_S", 1.5)
    monkeypatch.setattr(worker_mod, "PAUSE_POLL_INTERVAL_S", 0.1)
    monkeypatch.setattr(worker_mod, "CONNECT_WAIT_S", 0.2)


@contextlib.asynccontextmanager
async def running_box(
    tmp_path: Path,
    *,
    policy: ShiftPolicy | None = None,
    start_worker: bool = True,
    tax_systems: int | None = None,
) -> AsyncIterator[Box]:
    async with support_box.running_box(
        tmp_path,
        box_type=Box,
        policy=policy,
        start_worker=start_worker,
        tax_systems=tax_systems,
        supervisor_journal=False,
    ) as box:
        yield box


async def test_receipt_printed_once_with_its_fiscal_result(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("r1", sell("Хлеб", 4550))
        job = await box.wait_state("r1", JobState.DONE)
        params = job.task_results[0].result["fiscalParams"]
        assert params["total"] == 45.5
        assert params["fiscalDocumentNumber"] == box.tape()[-1]["number"]
        assert params["fiscalDocumentSign"] == str(box.tape()[-1]["fiscal_sign"])
        assert [d["type"] for d in box.tape()] == ["openShift", "sell"]  # shift opened for it
        assert box.printed("Хлеб") == 1
        assert "shift_opened" in await box.events()
        history = [(h.state, h.note) for h in await box.journal.history("r1")]
        # The fiscal step (with the document number it expects to use) is written before it runs.
        assert history == [
            (JobState.QUEUED, "via http"),
            (JobState.IN_PROGRESS, "started"),
            # The shift the receipt needs is a fiscal step of its own, journalled first.
            (JobState.IN_PROGRESS, "openShift(auto): N0=1"),
            (JobState.IN_PROGRESS, "sell: N0=2"),
            (JobState.IN_PROGRESS, "task ready"),
            (JobState.DONE, "done"),
        ]


async def test_query_tasks_are_answered_from_the_register(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.submit(
            "q1",
            {"type": "getDeviceStatus"},
            {"type": "getShiftStatus"},
            {"type": "getFnStatus"},
            {"type": "ofdExchangeStatus"},
        )
        job = await box.wait_state("q1", JobState.DONE)
        device, shift, fn, ofd = (t.result for t in job.task_results)
        info = box.emulator.state
        assert device["deviceStatus"]["paperPresent"] is True
        assert device["deviceStatus"]["shift"] == "closed"
        assert shift["shiftStatus"]["state"] == "closed"
        assert fn["fnStatus"]["fnNumber"] == info.identity.fn_number
        assert fn["fnStatus"]["fiscalDocumentNumber"] == info.documents[-1].number
        assert ofd["status"]["notSentCount"] == 0
        assert box.tape() == []  # a query prints nothing


async def test_closed_shift_without_auto_open_fails_and_prints_nothing(tmp_path: Path) -> None:
    async with running_box(tmp_path, policy=ShiftPolicy(auto_open=False)) as box:
        await box.submit("r1", sell("Молоко"))
        job = await box.wait_state("r1", JobState.FAILED)
        assert "auto_open" in (job.task_results[0].error_description or "")
        assert box.tape() == []


async def test_paper_out_pauses_the_queue_and_it_resumes_by_itself(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.emulator.apply_fault("paper_out", True)
        await box.submit("r1", sell("Сыр"))
        async with asyncio.timeout(WAIT_S):
            while box.worker.paused_reason is None:
                await asyncio.sleep(0.02)
        assert "paper" in box.worker.paused_reason
        assert (await box.journal.get("r1")).state is not JobState.DONE
        await box.emulator.apply_fault("paper_out", False)
        await box.wait_state("r1", JobState.DONE)
        assert box.worker.paused_reason is None
        assert box.printed("Сыр") == 1
        events = await box.events()
        assert events.index("queue_paused") < events.index("queue_resumed")


async def test_dropped_answer_is_recovered_from_the_fn_without_a_second_print(
    tmp_path: Path,
) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("warm", sell("Первый"))  # the shift is open before the fault
        await box.wait_state("warm", JobState.DONE)
        await box.emulator.apply_fault("answer_dropped", True)
        await box.submit("r1", sell("Чай", 12000))
        job = await box.wait_state("r1", JobState.DONE)
        assert box.printed("Чай") == 1
        result = job.task_results[0].result
        assert result["warnings"] == {"recovered": True}
        assert result["fiscalParams"]["fiscalDocumentNumber"] == box.tape()[-1]["number"]


async def test_power_cut_mid_receipt_cancels_it_and_prints_it_once(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("warm", sell("Первый"))
        await box.wait_state("warm", JobState.DONE)
        await box.emulator.apply_fault("power_cut_mid_receipt", 2)
        await box.submit("r1", sell("Кофе", 30000, lines=3))
        async with asyncio.timeout(WAIT_S):
            await box.emulator.power_lost.wait()
        await box.emulator.close()
        # Power comes back: the register restarts from its state file, the receipt still open.
        box.emulator = EmulatorServer(tmp_path / "emu.state")
        await box.emulator.start_pty(link=box.link)
        await box.wait_state("r1", JobState.DONE)
        assert box.printed("Кофе") == 1
        assert "receipt_cancelled" in await box.events()


async def test_crash_after_the_print_is_reconciled_not_printed_again(tmp_path: Path) -> None:
    """A daemon killed after the register fiscalised the receipt, before the journal knew."""
    async with running_box(tmp_path, start_worker=False) as box:
        task = sell("Сахар", 9900)
        await box.register.open_shift()
        await box.submit("r1", task)
        await box.journal.start("r1")
        n0 = (await box.register.fn_status()).last_document_number
        await box.journal.begin_fiscal_step("r1", 0, "sell", n0)
        parsed = parse_request(json.dumps({"uuid": "r1", "request": [task]}), NameMapping())
        receipt_task = parsed.tasks[0]
        assert isinstance(receipt_task, ReceiptTask)
        printed = await box.register.print_receipt(osn(receipt_task.receipt))
        # The daemon "restarts": a fresh worker finds r1 in progress with N0 committed.
        async with asyncio.TaskGroup() as tg:
            work = tg.create_task(box.worker.run(), name="worker")
            job = await box.wait_state("r1", JobState.DONE)
            work.cancel()
        assert box.printed("Сахар") == 1
        params = job.task_results[0].result["fiscalParams"]
        assert params["fiscalDocumentNumber"] == printed.document_number == n0 + 1


async def test_crash_before_the_print_prints_once(tmp_path: Path) -> None:
    async with running_box(tmp_path, start_worker=False) as box:
        await box.register.open_shift()
        await box.submit("r1", sell("Соль"))
        await box.journal.start("r1")
        n0 = (await box.register.fn_status()).last_document_number
        await box.journal.begin_fiscal_step("r1", 0, "sell", n0)
        async with asyncio.TaskGroup() as tg:
            work = tg.create_task(box.worker.run(), name="worker")
            await box.wait_state("r1", JobState.DONE)
            work.cancel()
        assert box.printed("Соль") == 1


async def test_unprovable_outcome_blocks_the_queue_until_a_person_resolves_it(
    tmp_path: Path,
) -> None:
    async with running_box(tmp_path, start_worker=False) as box:
        await box.register.open_shift()
        await box.submit("r1", sell("Масло", 25000))
        await box.submit("r2", sell("Рис", 8000))
        await box.journal.start("r1")
        n0 = (await box.register.fn_status()).last_document_number
        await box.journal.begin_fiscal_step("r1", 0, "sell", n0)
        # Someone printed a different receipt on the register meanwhile: N0+1 is not r1's.
        other = parse_request(
            json.dumps({"uuid": "x", "request": [sell("Чужой", 100)]}), NameMapping()
        ).tasks[0]
        assert isinstance(other, ReceiptTask)
        await box.register.print_receipt(osn(other.receipt))
        async with asyncio.TaskGroup() as tg:
            work = tg.create_task(box.worker.run(), name="worker")
            job = await box.wait_state("r1", JobState.BLOCKED)
            assert "does not prove" in (job.task_results[0].error_description or "")
            assert "job_blocked" in await box.events()
            await asyncio.sleep(0.3)  # the queue stays stopped: r2 waits
            assert (await box.journal.get("r2")).state is JobState.QUEUED
            assert box.printed("Масло") == 0
            assert box.printed("Рис") == 0
            # The technician checked the tape: r1 was not printed. Fail it; the queue moves on.
            await box.journal.unblock("r1", resolution=Resolution.FAILED, note="not on the tape")
            box.worker.wake()
            await box.wait_state("r2", JobState.DONE)
            work.cancel()
        assert (await box.journal.get("r1")).state is JobState.FAILED
        assert box.printed("Рис") == 1
        assert box.printed("Масло") == 0


async def test_the_paused_reason_follows_the_link_while_the_queue_is_blocked(
    tmp_path: Path,
) -> None:
    async with running_box(tmp_path) as box:
        box.supervisor.link_down_now("unplugged")
        await box.submit("r1", sell("Чай"))
        await support_box.wait_until(lambda: box.worker.paused_reason is not None)
        assert box.worker.paused_reason == worker_mod.NOT_CONNECTED
        # The job is blocked meanwhile (a person must look at it); then the register is back.
        await box.journal.block("r1", 0, 1, "outcome not proven")
        box.supervisor.device_added()
        await box.wait_link(LinkState.CONNECTED)
        await support_box.wait_until(lambda: box.worker.paused_reason is None)
        assert (await box.journal.get("r1")).state is JobState.BLOCKED
        assert box.printed("Чай") == 0


async def test_shift_is_closed_before_its_24_hour_limit(tmp_path: Path) -> None:
    policy = ShiftPolicy(close_before_limit=dt.timedelta(minutes=30))
    async with running_box(tmp_path, policy=policy) as box:
        await box.submit("r1", sell("Утро"))
        await box.wait_state("r1", JobState.DONE)
        # 23 h 40 min later on the register's clock: inside the 30-minute margin.
        await box.emulator.apply_fault("clock_offset", 23 * 3600 + 40 * 60)
        await box.submit("r2", sell("Вечер"))
        await box.wait_state("r2", JobState.DONE)
        kinds = [d["type"] for d in box.tape()]
        assert kinds == ["openShift", "sell", "closeShift", "openShift", "sell"]
        assert box.tape()[-1]["shift"] == box.tape()[1]["shift"] + 1
        assert "shift_closed" in await box.events()


async def test_cancelled_queued_job_is_never_printed(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.emulator.apply_fault("cover_open", True)
        await box.submit("r1", sell("Первый"))
        await box.submit("r2", sell("Отменённый"))
        await box.journal.cancel("r2")
        await box.emulator.apply_fault("cover_open", False)
        await box.wait_state("r1", JobState.DONE)
        assert (await box.journal.get("r2")).state is JobState.CANCELED
        assert box.printed("Отменённый") == 0


async def test_the_boxs_cashier_and_tax_system_reach_a_receipt_that_names_neither(
    tmp_path: Path,
) -> None:
    policy = ShiftPolicy(
        operator=fiscal.Operator("Иванова А. А.", "027406211109"),
        taxation=fiscal.TaxationType.USN_INCOME,
    )
    usn_only = int(fiscal.TaxationType.USN_INCOME)
    async with running_box(tmp_path, policy=policy, tax_systems=usn_only) as box:
        await box.submit("r1", sell("Хлеб", 4550))
        await box.wait_state("r1", JobState.DONE)
        opened, receipt = box.tape()
        # [FFD] 1021 cashier, 1203 cashier ИНН, 1055 tax system (bit 1 = УСН доход).
        for doc in (opened, receipt):
            assert (doc["tags"]["1021"], doc["tags"]["1203"]) == ("Иванова А. А.", "027406211109")
        assert receipt["tags"]["1055"] == 2


async def test_a_tax_system_the_register_is_not_registered_for_prints_nothing(
    tmp_path: Path,
) -> None:
    usn_only = int(fiscal.TaxationType.USN_INCOME)
    async with running_box(tmp_path, tax_systems=usn_only) as box:  # the box's default: ОСН
        await box.submit("r1", sell("Хлеб", 4550))
        job = await box.wait_state("r1", JobState.FAILED)
        assert "taxation" in (job.task_results[0].error_description or "")
        assert box.printed("Хлеб") == 0


async def test_a_lost_answer_to_the_automatic_shift_open_is_recovered_not_blocked(
    tmp_path: Path,
) -> None:
    async with running_box(tmp_path) as box:
        # The first document-closing answer is the shift the receipt needs: it is lost.
        await box.emulator.apply_fault("answer_dropped", True)
        await box.submit("r1", sell("Чай", 12000))
        job = await box.wait_state("r1", JobState.DONE, JobState.BLOCKED)
        assert job.state is JobState.DONE
        assert [d["type"] for d in box.tape()] == ["openShift", "sell"]
        notes = [h.note for h in await box.journal.history("r1")]
        assert "openShift(auto): N0=1" in notes
        assert "sell: N0=2" in notes


async def test_cash_in_and_out_run_once_and_move_the_registers_counters(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("r1", sell("Хлеб", 4550))
        await box.wait_state("r1", JobState.DONE)
        await box.submit(
            "c1",
            {"type": "cashIn", "cashSum": 1500.5},
            {"type": "cashOut", "cashSum": 100},
            {"type": "getShiftTotals"},
        )
        job = await box.wait_state("c1", JobState.DONE)
        cash = [d for d in box.tape() if not d["fiscal"]]
        assert [(d["type"], d["total"]) for d in cash] == [("cashIn", 150050), ("cashOut", 10000)]
        totals = job.task_results[2].result["shiftTotals"]
        assert totals["income"] == {"count": 1, "sum": 1500.5}
        assert totals["outcome"] == {"count": 1, "sum": 100.0}
        assert totals["receipts"]["sell"]["count"] == 1
        assert totals["receipts"]["sell"]["payments"]["cash"] == 45.5
        assert totals["cashDrawer"]["sum"] == 45.5 + 1500.5 - 100


# --- a journal that cannot write (disk full) ---------------------------------------------------


async def on_journal_connection(box: Box, sql: str) -> Any:
    """Run `sql` on the journal's own connection (test-only access to its internals)."""
    async with box.journal._db.use() as conn:
        return await conn.execute_fetchall(sql)


async def fill_journal(box: Box) -> None:
    """A full disk as SQLite meets it: the file may not grow (`max_page_count` at its size
    now) and its free pages are used up, so the next write that needs a page fails with
    SQLITE_FULL. Writes that fit in a page's free bytes still succeed, as on a real card."""
    ((pages,),) = await on_journal_connection(box, "PRAGMA page_count")
    await on_journal_connection(box, f"PRAGMA max_page_count = {int(pages)}")
    for i in range(10_000):
        try:
            await box.journal.meta_set(f"filler-{i}", "x" * 3000)
        except JournalError:
            return
    raise AssertionError("the journal never filled up")


async def free_journal(box: Box) -> None:
    """Space comes back."""
    await on_journal_connection(box, "PRAGMA max_page_count = 1000000")


def health_of(box: Box) -> HealthMonitor:
    return HealthMonitor(
        box.journal,
        box.register,
        box.supervisor.connected_event,
        box.worker.register_lock,
        config=HealthConfig(),
        journal_fault=box.worker.current_journal_fault,  # as the daemon wires it
    )


async def test_a_submission_refused_for_a_full_disk_shows_in_health_until_a_commit(
    tmp_path: Path,
) -> None:
    # The worker is idle (nothing of its own to commit): only the intake meets the full disk.
    async with running_box(tmp_path) as box:
        submit = Intake(box.journal, wake=box.worker.wake)
        health = health_of(box)
        await fill_journal(box)
        body = json.dumps({"uuid": "r1", "request": [sell("Хлеб", lines=40)]})
        with pytest.raises(DiskFull):
            await submit.submit_body(body, source="http")
        assert box.worker.journal_fault is None
        journal_health = box.worker.journal_health()
        assert (journal_health["state"], journal_health["kind"]) == ("down", "disk_full")
        (condition,) = [c for c in health.snapshot().conditions if c.kind == "disk_full"]
        assert condition.severity is Severity.CRITICAL
        await free_journal(box)
        await submit.submit_body(body, source="http")  # a commit succeeds again
        assert box.worker.journal_health() == {"state": "ok"}
        assert "disk_full" not in {c.kind for c in health.snapshot().conditions}
        await box.wait_state("r1", JobState.DONE)


@pytest.fixture
def quick_journal_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_mod, "JOURNAL_RETRY_INTERVAL_S", 0.1)


@pytest.mark.usefixtures("quick_journal_retry")
async def test_a_full_disk_pauses_the_queue_and_every_receipt_prints_once_after(
    tmp_path: Path,
) -> None:
    # Enough receipts that their results need new pages: the disk fills while they flow.
    names = [f"Товар {i}" for i in range(30)]
    async with running_box(tmp_path, start_worker=False) as box:
        for i, name in enumerate(names):  # committed and acknowledged before the disk fills
            await box.submit(f"r{i}", sell(name, 1000 + i))
        await fill_journal(box)
        health = health_of(box)
        async with asyncio.TaskGroup() as tg:
            worker = tg.create_task(box.worker.run(), name="test-worker")
            await support_box.wait_until(lambda: box.worker.journal_fault is not None)
            printed = len(box.tape())
            await asyncio.sleep(0.5)  # several retries: the worker waits, never dies
            assert not worker.done()
            # Nothing more is printed while the journal cannot write the step down first.
            assert len(box.tape()) == printed
            fault = box.worker.journal_fault
            assert fault is not None
            assert fault.kind is JournalFaultKind.DISK_FULL
            assert box.worker.paused_reason == "disk full: free space or replace the card"
            journal_health = box.worker.journal_health()
            assert journal_health["state"] == "down"
            assert journal_health["kind"] == "disk_full"
            (condition,) = [c for c in health.snapshot().conditions if c.kind == "disk_full"]
            assert condition.severity is Severity.CRITICAL
            assert "free space or replace the card" in condition.message
            assert health.snapshot().worst is Severity.CRITICAL
            waiting = [j for j in await box.journal.list_jobs() if j.state is not JobState.DONE]
            assert waiting  # the fault came while receipts were flowing
            assert not [
                j
                for j in waiting
                if j.state is not JobState.IN_PROGRESS and j.state is not JobState.QUEUED
            ]  # none failed, none blocked
            await free_journal(box)
            for i in range(len(names)):
                await box.wait_state(f"r{i}", JobState.DONE)
            worker.cancel()
        assert box.worker.journal_fault is None
        assert box.worker.paused_reason is None
        assert [c.kind for c in health.snapshot().conditions] == []
        assert box.worker.journal_health() == {"state": "ok"}
        assert [box.printed(name) for name in names] == [1] * len(names)
        (event,) = [e for e in await box.event_payloads() if e["event"] == "journal_write_failed"]
        assert event["kind"] == "disk_full"
        assert event["since"] <= event["until"]


@pytest.mark.usefixtures("quick_journal_retry")
async def test_a_receipt_printed_when_the_journal_stops_writing_keeps_its_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal fails between the print and its commit: the result the register gave is
    committed once it writes again, never printed a second time, never marked lost."""
    async with running_box(tmp_path) as box:
        await box.submit("warm", sell("Первый"))  # the shift is open before the fault
        await box.wait_state("warm", JobState.DONE)
        real_print = box.register.print_receipt
        broke = asyncio.Event()

        async def print_then_break(receipt: fiscal.Receipt) -> fiscal.FiscalResult:
            result = await real_print(receipt)
            if not broke.is_set():
                broke.set()
                # SQLite refuses every write on this connection from now on.
                await on_journal_connection(box, "PRAGMA query_only = ON")
            return result

        monkeypatch.setattr(box.register, "print_receipt", print_then_break)
        await box.submit("r1", sell("Второй", 4200))
        await asyncio.wait_for(broke.wait(), WAIT_S)
        await support_box.wait_until(lambda: box.worker.journal_fault is not None)
        assert box.printed("Второй") == 1
        job = await box.journal.get("r1")
        assert job.state is JobState.IN_PROGRESS  # not failed, not lost: waiting to commit
        await asyncio.sleep(0.5)
        assert box.printed("Второй") == 1
        await on_journal_connection(box, "PRAGMA query_only = OFF")
        job = await box.wait_state("r1", JobState.DONE)
        params = job.task_results[0].result["fiscalParams"]
        assert params["fiscalDocumentNumber"] == box.tape()[-1]["number"]
        assert params["fiscalDocumentSign"] == str(box.tape()[-1]["fiscal_sign"])
        # The result the register gave, kept in memory: not rebuilt from the ФН archive.
        assert job.task_results[0].result["warnings"] is None
        assert box.printed("Второй") == 1
        assert box.worker.journal_fault is None
