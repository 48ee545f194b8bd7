"""Marked goods through the worker, against the Shtrih driver and the emulator on a real pty.

The emulator's fake ОИСМ answers each code as a test sets it; the proof of every scenario is
the emulator's paper tape and its ФН-М code table, not what the worker believes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.domain import fiscal, marking
from gateway.domain.errors import Refusal, RegisterRefused
from gateway.domain.marking import MarkingCode, PlannedStatus
from gateway.engine import worker as worker_mod
from gateway.engine.worker import ShiftPolicy
from gateway.journal import JobRecord, JobState
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.shtrih import driver as driver_mod
from tests.integration.test_checkbox import cloud_box
from tests.support import box as support_box
from tests.support.box import ShtrihBox

GS = b"\x1d"
CHECK_44 = b"AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/AbCdEf"  # a 44-character check code
assert len(CHECK_44) == 44


def code(serial: str) -> bytes:
    """A GS1 marking code the ФН checks itself (AI 91 key id, AI 92 a 44-character code)."""
    return b"0104600653105990" + b"21" + serial.encode() + GS + b"91EE06" + GS + b"92" + CHECK_44


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@pytest.fixture(autouse=True)
def fast_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_mod, "PRINT_TIMEOUT_S", 1.5)
    monkeypatch.setattr(driver_mod, "QUERY_TIMEOUT_S", 1.5)
    monkeypatch.setattr(worker_mod, "PAUSE_POLL_INTERVAL_S", 0.1)
    monkeypatch.setattr(worker_mod, "CONNECT_WAIT_S", 0.2)


@contextlib.asynccontextmanager
async def running_box(tmp_path: Path, *, start_worker: bool = True) -> AsyncIterator[ShtrihBox]:
    async with support_box.running_box(
        tmp_path,
        box_type=ShtrihBox,
        policy=ShiftPolicy(),
        start_worker=start_worker,
        supervisor_journal=False,
    ) as box:
        yield box


async def set_ism(box: ShtrihBox, answer: str, raw: bytes | None = None) -> None:
    """The fake ОИСМ's answer (positive, negative, sold, timeout, autonomous), for every code
    or for one."""
    if raw is None:
        await box.emulator.apply_fault("ism_answer", answer)
    else:
        text = raw.decode("ascii").replace("\x1d", "<GS>")
        await box.emulator.apply_fault("ism_code_answer", {"code": text, "answer": answer})


def code_table(box: ShtrihBox) -> tuple[Any, ...]:
    """The ФН-М's checked codes (accepted, not yet sold) plus one waiting for a decision."""
    state = box.emulator.state.marking
    return (*state.table, *((state.pending,) if state.pending is not None else ()))


def marked(
    name: str,
    raw: bytes,
    *,
    status: str = "itemPieceSold",
    kopecks: int = 15000,
    quantity: float = 1,
    unit: str = "piece",
) -> dict[str, Any]:
    price = kopecks / 100
    amount = round(price * quantity, 2)
    return {
        "type": "position",
        "name": name,
        "price": price,
        "quantity": quantity,
        "amount": amount,
        "tax": {"type": "vat20"},
        "paymentObject": "commodityWithMarking",
        "measurementUnit": unit,
        "imcParams": {
            "imc": b64(raw),
            "imcType": "auto",
            "itemEstimatedStatus": status,
            "imcModeProcessing": 0,
        },
    }


def receipt(kind: str, *items: dict[str, Any], strict: bool = False) -> dict[str, Any]:
    total = round(sum(i["amount"] for i in items), 2)
    task: dict[str, Any] = {
        "type": kind,
        "items": list(items),
        "payments": [{"type": "cash", "sum": total}],
    }
    if strict:
        task["validateMarkingCodes"] = True
    return task


def begin(raw: bytes, status: str = "itemPieceSold") -> dict[str, Any]:
    params = {"imc": b64(raw), "imcType": "auto", "itemEstimatedStatus": status}
    return {"type": "beginMarkingCodeValidation", "params": {**params, "imcModeProcessing": 0}}


async def done(box: ShtrihBox, uuid: str) -> JobRecord:
    job = await box.wait_state(uuid, JobState.DONE, JobState.FAILED, JobState.BLOCKED)
    assert job.state is JobState.DONE, job.error_text
    return job


async def failed(box: ShtrihBox, uuid: str) -> JobRecord:
    job = await box.wait_state(uuid, JobState.DONE, JobState.FAILED, JobState.BLOCKED)
    assert job.state is JobState.FAILED, job.task_results
    return job


def sales(box: ShtrihBox) -> list[dict[str, Any]]:
    return [d for d in box.tape() if d["type"] in ("sell", "sellReturn")]


# --- receipts ------------------------------------------------------------------------------


@pytest.mark.parametrize("firmware", ["classic", "core"])
async def test_marked_sale_online_binds_each_code_and_reports_its_2106(
    tmp_path: Path, firmware: str
) -> None:
    async with running_box(tmp_path) as box:
        # «кассовое ядро» binds each code before its line, classic firmware after it.
        await box.emulator.apply_fault("firmware", firmware)
        a, b = code("SerialA"), code("SerialB")
        await box.submit("s1", receipt("sell", marked("Сигареты", a), marked("Молоко", b)))
        job = await done(box, "s1")
        result = job.task_results[0].result
        assert result is not None
        marks = result["marks"]
        assert [m["item"] for m in marks] == [0, 1]
        assert [base64.b64decode(m["imc"]) for m in marks] == [a, b]
        for m in marks:
            assert m["tag2106"] == marking.FULLY_POSITIVE
            assert m["offline"] is False
            assert m["itemInfoCheckResult"] == {
                "imcCheckFlag": True,
                "imcCheckResult": True,
                "imcStatusInfo": True,
                "imcEstimatedStatusCorrect": True,
                "ecrStandAloneFlag": False,
            }
        (sale,) = sales(box)
        assert box.printed("Сигареты") == box.printed("Молоко") == 1
        assert result["fiscalParams"]["fiscalDocumentNumber"] == sale["number"]
        assert code_table(box) == ()  # the receipt's close spent the checked codes


async def test_a_refused_code_fails_the_job_prints_nothing_and_clears_the_table(
    tmp_path: Path,
) -> None:
    async with running_box(tmp_path) as box:
        good, bad = code("Good0001"), code("Sold0001")
        await set_ism(box, "sold", bad)
        await box.submit("s1", receipt("sell", marked("Вода", good), marked("Сок", bad)))
        job = await failed(box, "s1")
        error = job.task_results[0].error_description or ""
        assert job.task_results[0].error_code == 404
        assert "request item 2 'Сок'" in error  # names the item (as a cashier counts)
        assert "Sold0001" in error
        assert "take the item off the receipt" in error  # and says what to do
        assert sales(box) == []
        assert box.printed("Вода") == 0
        assert code_table(box) == ()  # the good code accepted first was dropped again
        # The refusal was clean: the next receipt goes through.
        await box.submit("s2", receipt("sell", marked("Вода", good)))
        await done(box, "s2")
        assert box.printed("Вода") == 1


async def test_ism_timeout_sells_offline_unless_the_client_requires_the_answer(
    tmp_path: Path,
) -> None:
    async with running_box(tmp_path) as box:
        await set_ism(box, "timeout")
        await box.submit("strict", receipt("sell", marked("Пиво", code("Beer0001")), strict=True))
        job = await failed(box, "strict")
        assert "did not confirm" in (job.task_results[0].error_description or "")
        assert sales(box) == []
        assert code_table(box) == ()

        await box.submit("offline", receipt("sell", marked("Пиво", code("Beer0001"))))
        job = await done(box, "offline")
        result = job.task_results[0].result
        assert result is not None
        (mark,) = result["marks"]
        assert mark["offline"] is True
        assert not mark["itemInfoCheckResult"]["imcStatusInfo"]
        assert box.printed("Пиво") == 1


async def test_measured_marked_item_and_its_return(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        cheese = code("Cheese01")
        item = marked(
            "Сыр", cheese, status="itemDryForSale", kopecks=80000, quantity=0.25, unit="kilogram"
        )
        await box.submit("sell", receipt("sell", item))
        sold = await done(box, "sell")
        assert sold.task_results[0].result is not None
        assert sold.task_results[0].result["marks"][0]["tag2106"] == marking.FULLY_POSITIVE
        back = marked(
            "Сыр", cheese, status="itemDryReturn", kopecks=80000, quantity=0.25, unit="kilogram"
        )
        await box.submit("return", receipt("sellReturn", back))
        returned = await done(box, "return")
        assert returned.task_results[0].result is not None
        assert returned.task_results[0].result["marks"][0]["item"] == 0
        assert [d["type"] for d in sales(box)] == ["sell", "sellReturn"]
        assert code_table(box) == ()


async def test_return_of_a_piece_item(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        shoes = code("Shoes001")
        await box.submit("sell", receipt("sell", marked("Ботинки", shoes)))
        await done(box, "sell")
        back = marked("Ботинки", shoes, status="itemPieceReturn")
        await box.submit("return", receipt("sellReturn", back))
        job = await done(box, "return")
        assert job.task_results[0].result is not None
        assert job.task_results[0].result["marks"][0]["tag2106"] == marking.FULLY_POSITIVE
        assert box.printed("Ботинки") == 2


# --- the explicit ATOL flow ----------------------------------------------------------------


async def test_begin_status_accept_then_sell(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        raw = code("Flow0001")
        await box.submit("check", begin(raw), {"type": "getMarkingCodeValidationStatus"})
        job = await done(box, "check")
        started, status = (t.result for t in job.task_results)
        assert started == {
            "offlineValidation": {
                "fmCheck": True,
                "fmCheckResult": True,
                "fmCheckErrorReason": "checked",
            }
        }
        assert status is not None
        assert status["ready"] is True
        assert status["sentImcRequest"] is True
        assert status["driverError"]["code"] == 0
        online = status["onlineValidation"]
        assert online["itemInfoCheckResult"]["imcEstimatedStatusCorrect"] is True
        assert online["markOperatorResponseResult"] == "correct"  # tag 2105 = 0
        assert online["imcType"] == "imcFmVerifyCode44"
        assert len(code_table(box)) == 1  # waits for the decision

        await box.submit("accept", {"type": "acceptMarkingCode"})
        accepted = await done(box, "accept")
        assert accepted.task_results[0].result == {
            "itemInfoCheckResult": online["itemInfoCheckResult"]
        }
        await box.submit("sell", receipt("sell", marked("Духи", raw)))
        sold = await done(box, "sell")
        assert sold.task_results[0].result is not None
        assert sold.task_results[0].result["marks"][0]["tag2106"] == marking.FULLY_POSITIVE
        assert box.printed("Духи") == 1
        assert code_table(box) == ()


async def test_one_check_at_a_time_and_the_tasks_that_end_one(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("none", {"type": "getMarkingCodeValidationStatus"})
        job = await failed(box, "none")
        assert job.task_results[0].error_code == 410
        assert "no marking code check was started" in (job.task_results[0].error_description or "")

        await box.submit("first", begin(code("Once0001")))
        await done(box, "first")
        await box.submit("second", begin(code("Once0002")))
        job = await failed(box, "second")
        assert job.task_results[0].error_code == 401
        text = job.task_results[0].error_description or ""
        assert "validation in progress" in text
        assert "cancelMarkingCodeValidation" in text

        await box.submit("cancel", {"type": "cancelMarkingCodeValidation"}, begin(code("Once0002")))
        await done(box, "cancel")
        await box.submit("decline", {"type": "declineMarkingCode"})
        await done(box, "decline")
        await box.submit("again", {"type": "declineMarkingCode"})
        assert (await failed(box, "again")).task_results[0].error_code == 410
        await box.submit("clear", {"type": "clearMarkingCodeValidationResult"})
        await done(box, "clear")
        assert code_table(box) == ()
        assert sales(box) == []  # none of it is a document


def validate(*codes: bytes) -> dict[str, Any]:
    params = [
        {"imc": b64(raw), "imcType": "auto", "itemEstimatedStatus": "itemPieceSold"}
        for raw in codes
    ]
    return {"type": "validateMarks", "params": params}


async def test_validate_marks_keeps_every_code_when_all_pass(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        first, second = code("Valid011"), code("Valid012")
        await box.submit("v", validate(first, second))
        job = await done(box, "v")
        result = job.task_results[0].result
        assert result is not None
        for item in result["validateMarks"]:
            assert item["driverError"]["code"] == 0
            assert item["itemInfoCheckResult"]["imcCheckResult"] is True
            assert "kept" not in item
        # Both stay in the table, for the receipt that follows.
        assert [c.code for c in code_table(box)] == [first, second]


async def validate_good_and_sold(box: ShtrihBox, prefix: str) -> list[dict[str, Any]]:
    """validateMarks of a good code and one the ОИСМ says is sold; the two codes' results."""
    good, sold = code(f"{prefix}0001"), code(f"{prefix}0002")
    await set_ism(box, "sold", sold)
    await box.submit("v", validate(good, sold))
    job = await done(box, "v")
    result = job.task_results[0].result
    assert result is not None
    marks: list[dict[str, Any]] = result["validateMarks"]
    return marks


async def test_validate_marks_with_a_refused_code_keeps_none(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        first, second = await validate_good_and_sold(box, "Valid")
        # The first code passed its check, but it is no longer kept, and says so.
        assert first["itemInfoCheckResult"]["imcCheckResult"] is True
        assert first["kept"] is False
        assert first["driverError"]["code"] == 410
        assert "code(s) 2 of this request were refused" in first["driverError"]["description"]
        assert "check the codes again" in first["driverError"]["description"]
        assert "itemInfoCheckResult" not in second
        assert second["driverError"]["code"] == 404
        assert "refused" in second["driverError"]["description"]
        # The register's table holds neither: no sale can bind the first code unconfirmed.
        assert code_table(box) == ()


async def test_on_a_register_that_never_clears_validate_marks_says_the_codes_stay(
    tmp_path: Path,
) -> None:
    """Штрих-Нано-Ф refuses FF69h(2): the codes that passed stay accepted, and are reported as
    such; the clear task says the table was not emptied instead of answering success."""
    async with running_box(tmp_path) as box:
        await box.emulator.apply_fault("marking_clear_refused", True)
        first, second = await validate_good_and_sold(box, "Nano")
        assert first["itemInfoCheckResult"]["imcCheckResult"] is True
        assert "kept" not in first
        assert first["driverError"]["code"] == 0
        assert second["driverError"]["code"] == 404
        assert len(code_table(box)) == 1  # the first code, accepted
        await box.submit("clear", {"type": "clearMarkingCodeValidationResult"})
        cleared = await failed(box, "clear")
        text = cleared.error_text or ""
        assert "did not empty its table of checked codes" in text, text
        assert len(code_table(box)) == 1


async def test_ism_exchange_status(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await set_ism(box, "autonomous")
        await box.submit("s", receipt("sell", marked("Шины", code("Tyres001"))))
        await done(box, "s")
        await box.submit("q", {"type": "ismExchangeStatus"})
        job = await done(box, "q")
        result = job.task_results[0].result
        assert result is not None
        assert result["status"]["notSentCount"] == 1  # the autonomous sale owes a notification
        assert result["markingState"]["checkState"] == 1
        assert result["markingState"]["waitingDecision"] is False


# --- crashes and lost answers ----------------------------------------------------------------


async def _sell_with_a_crash_before_the_print(
    box: ShtrihBox, uuid: str, task: dict[str, Any]
) -> int:
    """Journal the receipt's step as the worker does, then "crash" before sending it."""
    await box.submit(uuid, task)
    await box.journal.start(uuid)
    n0 = (await box.register.fn_status()).last_document_number
    await box.journal.begin_fiscal_step(uuid, 0, "sell", n0)
    return n0


async def test_codes_checked_before_a_crash_are_rechecked_not_sold_twice(tmp_path: Path) -> None:
    async with running_box(tmp_path, start_worker=False) as box:
        raw = code("Crash001")
        await box.register.open_shift()
        # The box checked and accepted the code, then died before the receipt was opened.
        await box.register.check_code(MarkingCode(raw, PlannedStatus.PIECE_SOLD))
        await box.register.accept_code(True)
        assert len(code_table(box)) == 1
        await _sell_with_a_crash_before_the_print(box, "r1", receipt("sell", marked("Кеды", raw)))
        # The register's power goes too: the ФН-М keeps its table.
        await box.emulator.close()
        box.emulator = EmulatorServer(tmp_path / support_box.EMULATOR_STATE)
        await box.emulator.start_pty(link=box.link)
        assert len(code_table(box)) == 1
        async with asyncio.TaskGroup() as tg:
            work = tg.create_task(box.worker.run(), name="worker")
            job = await done(box, "r1")
            work.cancel()
        assert box.printed("Кеды") == 1
        assert job.task_results[0].result is not None
        assert job.task_results[0].result["marks"][0]["tag2106"] == marking.FULLY_POSITIVE
        assert code_table(box) == ()


async def test_power_cut_between_binding_and_closing_sells_once(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("warm", receipt("sell", marked("Первый", code("Warm0001"))))
        await done(box, "warm")
        # Two marked lines; the power goes after the first line: its code is bound.
        await box.emulator.apply_fault("power_cut_mid_receipt", 1)
        items = (marked("Куртка", code("Coat0001")), marked("Шапка", code("Hat00001")))
        await box.submit("r1", receipt("sell", *items))
        async with asyncio.timeout(support_box.WAIT_S):
            await box.emulator.power_lost.wait()
        assert box.emulator.state.receipt is not None  # the receipt was open
        await box.emulator.close()
        box.emulator = EmulatorServer(tmp_path / support_box.EMULATOR_STATE)
        await box.emulator.start_pty(link=box.link)
        job = await done(box, "r1")
        assert box.printed("Куртка") == box.printed("Шапка") == 1
        assert len(sales(box)) == 2  # warm-up and r1, each once
        assert job.task_results[0].result is not None
        assert len(job.task_results[0].result["marks"]) == 2
        assert code_table(box) == ()


async def test_lost_answer_to_the_close_is_recovered_from_the_fn(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("warm", receipt("sell", marked("Первый", code("Warm0002"))))
        await done(box, "warm")
        await box.emulator.apply_fault("answer_dropped", True)
        await box.submit("r1", receipt("sell", marked("Платье", code("Dress001"))))
        job = await done(box, "r1")
        assert box.printed("Платье") == 1
        result = job.task_results[0].result
        assert result is not None
        assert result["warnings"] == {"recovered": True}
        assert code_table(box) == ()


async def test_a_lost_check_answer_declines_the_orphan_before_the_next_check(
    tmp_path: Path,
) -> None:
    async with running_box(tmp_path, start_worker=False) as box:
        # A check the box made before it restarted: the code waits, nobody will decide on it.
        await box.register.check_code(MarkingCode(code("Orphan01"), PlannedStatus.PIECE_SOLD))
        assert box.emulator.state.marking.pending is not None
        async with asyncio.TaskGroup() as tg:
            work = tg.create_task(box.worker.run(), name="worker")
            await box.submit("b", begin(code("Fresh001")))
            job = await done(box, "b")
            work.cancel()
        assert job.task_results[0].result is not None
        pending = box.emulator.state.marking.pending
        assert pending is not None
        assert pending.code == code("Fresh001")


async def test_a_failed_begin_leaves_no_earlier_check_for_status(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("a", begin(code("First001")), {"type": "acceptMarkingCode"})
        await done(box, "a")
        # The next check fails at the register (the ФН-М refuses marking: A0h).
        await box.emulator.apply_fault("fn_marking", False)
        await box.submit("b", begin(code("Second01")))
        await failed(box, "b")
        await box.submit("status", {"type": "getMarkingCodeValidationStatus"})
        job = await failed(box, "status")
        assert job.task_results[0].error_code == 410
        assert "no marking code check was started" in (job.task_results[0].error_description or "")


async def test_a_marked_receipt_spends_the_check_status_shows(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        raw = code("Spent001")
        await box.submit("a", begin(raw), {"type": "acceptMarkingCode"})
        await done(box, "a")
        await box.submit("sell", receipt("sell", marked("Мыло", raw)))
        await done(box, "sell")
        await box.submit("status", {"type": "getMarkingCodeValidationStatus"})
        job = await failed(box, "status")
        assert job.task_results[0].error_code == 410


def lose_decision_answer(box: ShtrihBox, action: int) -> None:
    """The answer to the next FF69h(action) is lost on the wire after the register ran it:
    the emulator's `answer_dropped` fault, applied to that one answer."""
    emulator = box.emulator.emulator
    handle = emulator.handle

    async def handle_once(body: bytes) -> Any:
        reply = await handle(body)
        if body[:2] == b"\xff\x69" and body[-1] == action and not emulator.faults.answer_dropped:
            emulator.handle = handle  # type: ignore[method-assign]
            emulator.faults.answer_dropped = 1
            return dataclasses.replace(reply, closes_document=True)
        return reply

    emulator.handle = handle_once  # type: ignore[method-assign]


async def test_a_lost_accept_answer_is_settled_from_the_register_state(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        raw = code("Lost0001")
        await box.submit("b", begin(raw))
        await done(box, "b")
        lose_decision_answer(box, 1)
        await box.submit("accept", {"type": "acceptMarkingCode"})
        # The register accepted it; the box never heard. It asks FF70h instead of sending
        # FF69h again (which the ФН would refuse with A1h: no code waits).
        job = await failed(box, "accept")
        assert job.task_results[0].error_code == 410
        text = job.task_results[0].error_description or ""
        assert "the register's answer was lost" in text
        assert "no longer waits" in text
        assert "may have been applied" in text
        assert "getMarkingCodeValidationStatus" in text
        assert [c.code for c in code_table(box)] == [raw]
        assert box.emulator.state.marking.pending is None
        # Nothing waits, so a cancel has nothing to do and succeeds.
        await box.submit("cancel", {"type": "cancelMarkingCodeValidation"})
        await done(box, "cancel")
        await box.submit("decline", {"type": "declineMarkingCode"})
        assert (await failed(box, "decline")).task_results[0].error_code == 410
        # The status of the check is still there to read, and the next check goes ahead.
        await box.submit("status", {"type": "getMarkingCodeValidationStatus"})
        await done(box, "status")
        await box.submit("next", begin(code("Lost0002")))
        await done(box, "next")


async def test_a_cancel_after_a_lost_decline_answer_succeeds(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("b", begin(code("Lost0003")))
        await done(box, "b")
        lose_decision_answer(box, 0)
        await box.submit("decline", {"type": "declineMarkingCode"})
        job = await failed(box, "decline")
        assert "no longer waits" in (job.task_results[0].error_description or "")
        await box.submit("cancel", {"type": "cancelMarkingCodeValidation"})
        await done(box, "cancel")
        assert code_table(box) == ()


async def test_a_recovered_marked_receipt_reads_its_marks_back(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("warm", receipt("sell", marked("Первый", code("Warm0003"))))
        await done(box, "warm")
        await set_ism(box, "timeout")
        await box.emulator.apply_fault("ism_timeout", 0.0)
        await set_ism(box, "positive", code("Coat0002"))
        plain = {
            "type": "position",
            "name": "Пакет",
            "price": 5.0,
            "quantity": 1,
            "amount": 5.0,
            "tax": {"type": "vat20"},
            "measurementUnit": "piece",
        }
        a, b = code("Coat0002"), code("Hat00002")
        await box.emulator.apply_fault("answer_dropped", True)
        await box.submit("r1", receipt("sell", marked("Пальто", a), plain, marked("Шарф", b)))
        job = await done(box, "r1")
        result = job.task_results[0].result
        assert result is not None
        assert result["warnings"] == {"recovered": True}
        first, second = result["marks"]
        assert (first["item"], base64.b64decode(first["imc"])) == (0, a)
        assert first["tag2106"] == marking.FULLY_POSITIVE
        assert first["offline"] is False
        assert first["itemInfoCheckResult"]["imcStatusInfo"] is True
        assert (second["item"], base64.b64decode(second["imc"])) == (2, b)
        assert second["offline"] is True  # sold without the ОИСМ's answer
        assert second["itemInfoCheckResult"]["imcStatusInfo"] is False
        assert box.printed("Пальто") == 1


async def test_a_recovered_marked_receipt_warns_when_marks_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("warm", receipt("sell", marked("Первый", code("Warm0004"))))
        await done(box, "warm")

        async def refused(number: int) -> list[tuple[int, bytes]]:
            raise RegisterRefused(Refusal.NOT_SUPPORTED, f"FF3Ah refused for {number}")

        monkeypatch.setattr(box.register, "document_tags", refused)
        await box.emulator.apply_fault("answer_dropped", True)
        await box.submit("r1", receipt("sell", marked("Платье", code("Dress002"))))
        job = await done(box, "r1")
        result = job.task_results[0].result
        assert result is not None
        assert "marks" not in result
        assert result["warnings"]["recovered"] is True
        assert "could not be read back (FF3Ah refused" in result["warnings"]["marks"]
        assert box.printed("Платье") == 1


# --- registers without marking ------------------------------------------------------------


async def test_a_register_without_marking_refuses_marking_tasks(tmp_path: Path) -> None:
    """A cloud РРО has no ФН-М: every marking task fails saying so, nothing is sent."""
    async with cloud_box(tmp_path) as box:
        assert not isinstance(box.register, fiscal.MarkingRegister)
        await box.submit("m", begin(code("NoMark01")))
        job = await box.wait_state("m", JobState.DONE, JobState.FAILED)
        assert job.state is JobState.FAILED
        assert job.task_results[0].error_description == (
            "this register does not check marking codes — sell marked goods on a ФФД 1.2 "
            "register with a ФН-М registered for marking"
        )
        assert box.fake.tape() == []
