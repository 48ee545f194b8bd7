"""The shift reconciliation's pure parts: the journal's sums and the comparison."""

from __future__ import annotations

import json
from typing import Any

from gateway.domain import fiscal
from gateway.engine.reconcile import compare, journal_totals, net_payments
from gateway.journal import ShiftTask

P = fiscal.PaymentType
R = fiscal.ReceiptType


def receipt_task(
    kind: str, price: float, payments: list[tuple[str, float]], *, seq: int = 1, index: int = 0
) -> ShiftTask:
    """A stored receipt task with one line of `price` rubles, and its ready result."""
    task = {
        "type": kind,
        "items": [
            {
                "type": "position",
                "name": "Товар",
                "price": price,
                "quantity": 1,
                "amount": price,
                "tax": {"type": "vat20"},
            }
        ],
        "payments": [{"type": t, "sum": s} for t, s in payments],
    }
    request = [{"type": "getShiftStatus"}] * index + [task]
    result = {"fiscalParams": {"shiftNumber": 7, "total": price, "fiscalDocumentNumber": seq}}
    return ShiftTask(f"job-{seq}", seq, index, kind, json.dumps(request), result)


def cash_task(kind: str, amount: float, *, seq: int = 50) -> ShiftTask:
    request = [{"type": kind, "cashSum": amount}]
    result = {"cashSum": amount, "documentNumber": seq, "dateTime": None}
    return ShiftTask(f"cash-{seq}", seq, 0, kind, json.dumps(request), result)


def register_totals(
    receipts: dict[fiscal.ReceiptType, tuple[int, int, int]] | None = None,
    cash_in: tuple[int, int] = (0, 0),
    cash_out: tuple[int, int] = (0, 0),
) -> fiscal.ShiftTotals:
    """Shtrih-like counters: count, cash and electronic kopecks per type; no other types."""
    receipts = receipts or {}
    ops = {}
    for kind in R:
        count, cash, card = receipts.get(kind, (0, 0, 0))
        ops[kind] = fiscal.OperationTotals(
            count, cash + card, {P.CASH: cash, P.ELECTRONICALLY: card}
        )
    return fiscal.ShiftTotals(
        7,
        ops,
        cash_in=fiscal.OperationTotals(cash_in[0], cash_in[1], {P.CASH: cash_in[1]}),
        cash_out=fiscal.OperationTotals(cash_out[0], cash_out[1], {P.CASH: cash_out[1]}),
        cash_drawer=123_00,
    )


def test_change_comes_out_of_cash() -> None:
    paid = (fiscal.Payment(P.CASH, 200_00), fiscal.Payment(P.ELECTRONICALLY, 20_00))
    assert net_payments(paid, 123_45) == {P.CASH: 103_45, P.ELECTRONICALLY: 20_00}
    assert net_payments((fiscal.Payment(P.CREDIT, 5_00),), 5_00) == {P.CREDIT: 5_00}


def test_journal_totals_add_receipts_and_cash_operations() -> None:
    tasks = [
        receipt_task("sell", 123.45, [("cash", 200), ("electronically", 20)], seq=1),
        receipt_task("sell", 10, [("prepaid", 10)], seq=2, index=1),
        receipt_task("sellReturn", 5.5, [("cash", 5.5)], seq=3),
        receipt_task("buy", 1, [("electronically", 1)], seq=4),
        cash_task("cashIn", 1000),
        cash_task("cashOut", 250.5, seq=51),
        cash_task("cashOut", 0.5, seq=52),
    ]
    totals = journal_totals(tasks, 7)
    assert totals.shift_number == 7
    assert totals.receipts[R.SELL] == fiscal.OperationTotals(
        2, 133_45, {P.CASH: 103_45, P.ELECTRONICALLY: 20_00, P.PREPAID: 10_00}
    )
    assert totals.receipts[R.SELL_RETURN] == fiscal.OperationTotals(1, 5_50, {P.CASH: 5_50})
    assert totals.receipts[R.BUY] == fiscal.OperationTotals(1, 1_00, {P.ELECTRONICALLY: 1_00})
    assert totals.receipts[R.BUY_RETURN] == fiscal.OperationTotals()
    assert (totals.cash_in.count, totals.cash_in.sum) == (1, 1000_00)
    assert (totals.cash_out.count, totals.cash_out.sum) == (2, 251_00)
    assert totals.cash_drawer is None


def test_a_stored_receipt_that_no_longer_validates_is_read_from_its_result() -> None:
    task = receipt_task("sell", 30, [("cash", 50)])
    raw: list[dict[str, Any]] = json.loads(task.tasks_json)
    raw[0]["items"][0]["name"] = ""  # refused today; it was printed once all the same
    stale = ShiftTask(task.job_uuid, 1, 0, "sell", json.dumps(raw), task.result)
    totals = journal_totals([stale], 7)
    assert totals.receipts[R.SELL] == fiscal.OperationTotals(1, 30_00, {P.CASH: 30_00})


def test_counters_that_agree_match() -> None:
    journal = journal_totals(
        [
            receipt_task("sell", 123.45, [("cash", 200), ("electronically", 20)], seq=1),
            receipt_task("sell", 10, [("prepaid", 10)], seq=2),
            cash_task("cashIn", 1000),
        ],
        7,
    )
    # The register counts both sells; prepaid has no counter of its own (Shtrih).
    register = register_totals({R.SELL: (2, 103_45, 20_00)}, cash_in=(1, 1000_00))
    result = compare(register, journal, 7)
    assert result.matches
    out = result.to_json()
    assert out["shift"] == 7
    assert out["matches"] is True
    assert out["differences"] == []
    assert out["register"]["sell"] == {
        "count": 2,
        "sum": 123.45,
        "payments": {"cash": 103.45, "electronically": 20.0},
    }
    assert out["journal"]["sell"]["payments"]["prepaid"] == 10.0
    assert out["register"]["cashDrawer"] == 123.0
    assert "cashDrawer" not in out["journal"]
    json.dumps(out)  # stored in results and events


def test_a_receipt_punched_by_hand_shows_as_differences() -> None:
    journal = journal_totals([receipt_task("sell", 100, [("cash", 100)])], 7)
    register = register_totals({R.SELL: (2, 134_50, 0)})
    result = compare(register, journal, 7)
    assert not result.matches
    assert [d.to_json() for d in result.differences] == [
        {
            "operation": "sell",
            "payment": None,
            "measure": "count",
            "register": 2,
            "journal": 1,
            "difference": 1,
        },
        {
            "operation": "sell",
            "payment": "cash",
            "measure": "sum",
            "register": 134.5,
            "journal": 100.0,
            "difference": 34.5,
        },
        {
            "operation": "sell",
            "payment": None,
            "measure": "sum",
            "register": 134.5,
            "journal": 100.0,
            "difference": 34.5,
        },
    ]
    assert "punched by hand" in result.text()
    assert "sell cash sum: register 134.50, journal 100.00" in result.text()


def test_a_lost_receipt_and_cash_operations_differ_the_other_way() -> None:
    journal = journal_totals(
        [receipt_task("sellReturn", 5, [("electronically", 5)]), cash_task("cashOut", 20)], 7
    )
    result = compare(register_totals(), journal, 7)
    got = {
        (d.operation, d.payment, d.measure): d.to_json()["difference"] for d in result.differences
    }
    assert got == {
        ("sellReturn", None, "count"): -1,
        ("sellReturn", "electronically", "sum"): -5.0,
        ("sellReturn", None, "sum"): -5.0,
        ("cashOut", None, "count"): -1,
        ("cashOut", None, "sum"): -20.0,
    }


def test_a_register_without_cash_operation_counts_is_compared_on_sums() -> None:
    journal = journal_totals([cash_task("cashIn", 300)], 7)
    # A cloud register reports service receipts' sums but no count.
    register = fiscal.ShiftTotals(
        7,
        {kind: fiscal.OperationTotals() for kind in R},
        cash_in=fiscal.OperationTotals(None, 300_00, {P.CASH: 300_00}),
    )
    assert compare(register, journal, 7).matches
    short = fiscal.ShiftTotals(
        7,
        {kind: fiscal.OperationTotals() for kind in R},
        cash_in=fiscal.OperationTotals(None, 200_00, {P.CASH: 200_00}),
    )
    (diff,) = compare(short, journal, 7).differences
    assert (diff.operation, diff.measure, diff.register, diff.journal) == (
        "cashIn",
        "sum",
        200_00,
        300_00,
    )
