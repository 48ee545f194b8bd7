"""Pure: a cloud register's shift totals as the worker reconciles them.

Both cloud APIs report sales and returns per payment type, cash put in and taken out, and the
drawer, but no count of cash operations: those counts stay None (unknown), and the worker makes
each cash operation exactly once by its own id instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.domain import fiscal


def cloud_shift_totals(
    shift_number: int | None,
    *,
    sells: Mapping[fiscal.PaymentType, int],
    sell_count: int,
    returns: Mapping[fiscal.PaymentType, int],
    return_count: int,
    cash_in: int,
    cash_out: int,
    drawer: int | None,
) -> fiscal.ShiftTotals:
    """ShiftTotals from a cloud X report's figures (kopecks)."""
    receipts = {kind: fiscal.OperationTotals() for kind in fiscal.ReceiptType}
    receipts[fiscal.ReceiptType.SELL] = fiscal.OperationTotals(
        sell_count, sum(sells.values()), dict(sells)
    )
    receipts[fiscal.ReceiptType.SELL_RETURN] = fiscal.OperationTotals(
        return_count, sum(returns.values()), dict(returns)
    )
    return fiscal.ShiftTotals(
        shift_number,
        receipts,
        cash_in=fiscal.OperationTotals(None, cash_in, {fiscal.PaymentType.CASH: cash_in}),
        cash_out=fiscal.OperationTotals(None, cash_out, {fiscal.PaymentType.CASH: cash_out}),
        cash_drawer=drawer,
    )
