"""Shtrih-M register numbers ([GUIDE] pp.5–8) and the shift totals built from them."""

from __future__ import annotations

import pytest

from gateway.domain import fiscal
from gateway.registers.shtrih import counters

P = fiscal.PaymentType
R = fiscal.ReceiptType


def test_operation_order_inside_a_group_is_the_guides() -> None:
    # [GUIDE] p.5: приход, расход, возврат прихода, возврат расхода; ФФД 1054 puts расход 3rd.
    assert [counters.money_register(193, kind) for kind in R] == [193, 195, 194, 196]
    assert counters.money_register(counters.SHIFT_PAYMENT_2, R.BUY_RETURN) == 200


def test_register_lists() -> None:
    # [GUIDE] p.6: 193…208 payment types 1–4 by operation; p.7: 241 drawer, 242 in, 243 out.
    assert counters.money_registers() == (*range(193, 209), 241, 242, 243)
    # [GUIDE] p.8: 144…147 receipts by operation, 153 cash-ins, 154 cash-outs.
    assert counters.operation_registers() == (144, 145, 146, 147, 153, 154)


def _registers() -> tuple[dict[int, int], dict[int, int]]:
    money = dict.fromkeys(counters.money_registers(), 0)
    counts = dict.fromkeys(counters.operation_registers(), 0)
    money.update(
        {
            193: 150_00,  # приход, cash
            197: 40_00,  # приход, payment type 2
            205: 10_00,  # приход, payment type 4
            194: 3_00,  # расход, cash
            195: 20_00,  # возврат прихода, cash
            200: 7_00,  # возврат расхода, payment type 2
            241: 1_127_00,
            242: 1_000_00,
            243: 50_00,
        }
    )
    counts.update({144: 3, 145: 1, 146: 2, 147: 4, 153: 2, 154: 1})
    return money, counts


def test_shift_totals() -> None:
    money, counts = _registers()
    totals = counters.shift_totals(money, counts, 12)
    assert totals.shift_number == 12
    assert set(totals.receipts) == set(R)
    assert totals.receipts[R.SELL] == fiscal.OperationTotals(
        count=3, sum=200_00, payments={P.CASH: 150_00, P.ELECTRONICALLY: 50_00}
    )
    assert totals.receipts[R.BUY] == fiscal.OperationTotals(
        count=1, sum=3_00, payments={P.CASH: 3_00, P.ELECTRONICALLY: 0}
    )
    assert totals.receipts[R.SELL_RETURN] == fiscal.OperationTotals(
        count=2, sum=20_00, payments={P.CASH: 20_00, P.ELECTRONICALLY: 0}
    )
    assert totals.receipts[R.BUY_RETURN] == fiscal.OperationTotals(
        count=4, sum=7_00, payments={P.CASH: 0, P.ELECTRONICALLY: 7_00}
    )
    assert totals.cash_in == fiscal.OperationTotals(2, 1_000_00, {P.CASH: 1_000_00})
    assert totals.cash_out == fiscal.OperationTotals(1, 50_00, {P.CASH: 50_00})
    assert totals.cash_drawer == 1_127_00


def test_payment_types_without_a_register_are_left_out() -> None:
    money, counts = _registers()
    totals = counters.shift_totals(money, counts, None)
    for kind in R:
        assert set(totals.receipts[kind].payments) == {P.CASH, P.ELECTRONICALLY}
    assert totals.shift_number is None


@pytest.mark.parametrize("missing", [193, 208, 241, 243])
def test_missing_money_register(missing: int) -> None:
    money, counts = _registers()
    del money[missing]
    with pytest.raises(KeyError):
        counters.shift_totals(money, counts, 1)


@pytest.mark.parametrize("missing", [144, 147, 153, 154])
def test_missing_operation_register(missing: int) -> None:
    money, counts = _registers()
    del counts[missing]
    with pytest.raises(KeyError):
        counters.shift_totals(money, counts, 1)
