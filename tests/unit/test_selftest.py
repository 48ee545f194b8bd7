"""The self-test's pure parts: its job, when it may run, and the verdict."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.atol import results
from gateway.atol.decimal_json import dumps
from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.atol.tasks import ReceiptTask
from gateway.domain import fiscal
from gateway.engine import selftest

P = fiscal.PaymentType
R = fiscal.ReceiptType
SHTRIH_COUNTS = (P.CASH, P.ELECTRONICALLY)


def totals(
    shift: int,
    sells: int,
    returns: int,
    moved: dict[fiscal.PaymentType, int],
    counted: tuple[P, ...],
) -> dict[str, Any]:
    """A getShiftTotals result as the worker stores it; `moved` kopecks per payment type in
    both sells and returns, only the `counted` payment types kept by the register."""
    pay = {p: moved.get(p, 0) for p in counted}
    ops = {kind: fiscal.OperationTotals() for kind in R}
    ops[R.SELL] = fiscal.OperationTotals(sells, sum(pay.values()), dict(pay))
    ops[R.SELL_RETURN] = fiscal.OperationTotals(returns, sum(pay.values()), dict(pay))
    return results.shift_totals(fiscal.ShiftTotals(shift, ops, cash_drawer=0))


def ready(result: dict[str, Any]) -> dict[str, Any]:
    return {"status": "ready", "result": result, "error": None}


def receipt_result(document: int, shift: int = 4) -> dict[str, Any]:
    return ready({"fiscalParams": {"fiscalDocumentNumber": document, "shiftNumber": shift}})


def job_results(
    before: dict[str, Any], after: dict[str, Any], *, shift: int = 4
) -> list[dict[str, Any]]:
    out = [ready(before)]
    out += [receipt_result(100 + i, shift) for i in range(2 * len(selftest.PAYMENT_TYPES))]
    out.append(ready(after))
    return out


def every_type(kopecks: int) -> dict[fiscal.PaymentType, int]:
    return dict.fromkeys(P, kopecks)


def test_the_job_is_one_valid_request_of_twelve_tasks() -> None:
    tasks = selftest.build_tasks()
    parsed = parse_request(dumps({"uuid": "selftest-1", "request": tasks}), NameMapping())
    assert len(parsed.tasks) == 12
    assert tasks[0] == tasks[-1] == {"type": "getShiftTotals"}
    for payment in selftest.PAYMENT_TYPES:
        sell_at, return_at = selftest.receipt_indexes(payment)
        sell, ret = parsed.tasks[sell_at], parsed.tasks[return_at]
        assert isinstance(sell, ReceiptTask)
        assert isinstance(ret, ReceiptTask)
        assert (sell.receipt.type, ret.receipt.type) == (R.SELL, R.SELL_RETURN)
        for task in (sell, ret):
            assert task.receipt.total == 100
            assert task.receipt.payments == (fiscal.Payment(P(payment), 100),)
    credit = parsed.tasks[selftest.receipt_indexes("credit")[0]]
    assert isinstance(credit, ReceiptTask)
    assert credit.receipt.items[0].payment_method is fiscal.PaymentMethod.CREDIT
    assert selftest.is_selftest("selftest-1")
    assert not selftest.is_selftest("order-1")


@pytest.mark.parametrize(
    ("state", "receipts", "force", "refused"),
    [
        ("closed", None, False, False),
        ("opened", 0, False, False),
        ("opened", 3, False, True),
        ("opened", 3, True, False),
        ("expired", 1, False, True),
        (None, None, False, True),
        (None, None, True, False),
    ],
)
def test_refused_while_the_shift_holds_customer_receipts(
    state: str | None, receipts: int | None, force: bool, refused: bool
) -> None:
    why = selftest.refusal(state, receipts, force=force)
    assert (why is not None) == refused
    if state == "opened" and refused:
        assert why is not None
        assert "3 customer receipts" in why


def test_register_receipts_of_the_open_shift() -> None:
    counters = totals(4, 2, 1, {}, SHTRIH_COUNTS)
    assert selftest.register_receipts({"shiftStatus": {"state": "opened"}}, counters) == 3
    # After a Z report the counters are the closed shift's.
    assert selftest.register_receipts({"shiftStatus": {"state": "closed"}}, counters) == 0


def test_every_payment_type_passes_when_the_counters_moved() -> None:
    before = totals(4, 3, 0, every_type(500), tuple(P))
    after = totals(4, 8, 5, every_type(600), tuple(P))
    report = selftest.judge(job_results(before, after))
    assert report.passed, report.lines()
    assert [c.payment for c in report.checks] == list(selftest.PAYMENT_TYPES)
    cash = report.checks[0]
    assert (cash.sell_document, cash.return_document, cash.counted) == (100, 101, True)
    assert report.to_json()["checks"][1] == {
        "payment": "electronically",
        "passed": True,
        "sellDocument": 102,
        "sellReturnDocument": 103,
        "counted": True,
        "problems": [],
    }
    assert report.lines()[-1] == "Self-test passed"


def test_payment_types_the_register_does_not_count_pass_on_their_documents() -> None:
    before = totals(4, 0, 0, {}, SHTRIH_COUNTS)
    after = totals(4, 5, 5, every_type(100), SHTRIH_COUNTS)
    report = selftest.judge(job_results(before, after))
    assert report.passed, report.lines()
    assert {c.payment: c.counted for c in report.checks} == {
        "cash": True,
        "electronically": True,
        "prepaid": False,
        "credit": False,
        "other": False,
    }
    assert "keeps no money counter" in report.lines()[2]


def test_a_counter_that_did_not_move_fails_its_payment_type() -> None:
    before = totals(4, 0, 0, {}, tuple(P))
    moved = every_type(100) | {P.ELECTRONICALLY: 0}
    report = selftest.judge(job_results(before, totals(4, 5, 5, moved, tuple(P))))
    assert not report.passed
    failed = {c.payment: c.problems for c in report.checks if not c.passed}
    assert failed == {
        "electronically": (
            "sell electronically counter moved by 0.00, expected 1.00",
            "sellReturn electronically counter moved by 0.00, expected 1.00",
        )
    }
    assert report.lines()[-1] == "Self-test FAILED"


def test_a_receipt_count_that_did_not_move_fails_the_report() -> None:
    before = totals(4, 0, 0, {}, tuple(P))
    report = selftest.judge(job_results(before, totals(4, 4, 5, every_type(100), tuple(P))))
    assert not report.passed
    assert report.problems == ("the register counted 4 sell receipts, 5 were printed",)


def test_a_shift_opened_by_the_job_starts_from_zero() -> None:
    # The shift was closed: the first counters are the last shift's, the job opened shift 5.
    before = totals(4, 30, 2, every_type(7000), tuple(P))
    after = totals(5, 5, 5, every_type(100), tuple(P))
    assert selftest.judge(job_results(before, after, shift=5)).passed


def test_a_shift_change_in_the_middle_fails() -> None:
    before = totals(4, 0, 0, {}, tuple(P))
    out = job_results(before, totals(5, 5, 5, every_type(100), tuple(P)), shift=5)
    out[1] = receipt_result(100, shift=4)
    report = selftest.judge(out)
    assert "the shift changed during the self-test; run it again in one shift" in report.problems


def test_a_failed_job_fails_where_it_stopped() -> None:
    before = totals(4, 0, 0, {}, tuple(P))
    out = job_results(before, before)
    out[3] = {"status": "error", "result": None, "error": {"code": 1, "description": "no paper"}}
    for i in range(4, len(out)):
        out[i] = {"status": "interrupted", "result": None, "error": None}
    report = selftest.judge(out)
    assert not report.passed
    assert report.checks[0].passed is False  # the counters after were never read
    assert report.checks[1].problems[0] == "sell not fiscalised: error (no paper)"
    assert report.problems[0] == "the counters after the receipts were not read: interrupted"
