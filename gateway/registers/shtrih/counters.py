"""Shtrih-M money and operational registers: which numbers to read, and the shift totals.

Pure: register contents in, `fiscal.ShiftTotals` out. The numbers are those of [GUIDE]
"О денежных и операционных регистрах ККТ" (pp.5–9); 1Ah reads a money register (6 bytes,
kopecks), 1Bh an operational one (2 bytes) ([PROTO] p.22).

Each per-operation group is four registers in a row, in the order приход, расход, возврат
прихода, возврат расхода ([GUIDE] p.5 "по 4 типам торговых операций (приход, расход, возврат
прихода, возврат расхода)"): NOT the order of ФФД tag 1054 that `fiscal.ReceiptType` follows
(приход 1, возврат прихода 2, расход 3, возврат расхода 4).

Money registers, shift part ([GUIDE] pp.6–7):
    193…196  накопления по видам оплаты за смену: наличными
    197…200  … видом оплаты 2 (FF45h sum 2, the driver's electronic payment)
    201…204  … видом оплаты 3
    205…208  … видом оплаты 4
    241      накопление наличности в кассе
    242      накопление внесений за смену
    243      накопление выплат за смену
Operational registers ([GUIDE] p.8):
    144…147  количество чеков по 4 типам торговых операций за смену
    153      количество внесений денежных сумм за смену
    154      количество выплат денежных сумм за смену

What the registers cannot give:
- [GUIDE] keeps money by payment type for types 1–4 only. FF45h sums 2–13 all go to the OFD
  as electronic payment ([PROTO] FF45h p.53), so types 2–4 are added up as `ELECTRONICALLY`;
  prepayment (FF45h sum 14), credit (15) and counter-provision (16) have no register in
  [GUIDE], so those payment types are left out of `payments` (unknown, not zero).
- There is no register of change: [GUIDE] p.31 says only that closing a receipt forms "the
  cash register of the receipt" and moves the cash in the drawer (241) by it. An operation's
  `sum` is therefore the sum of its payment-type registers as the register keeps them; it
  leaves out prepayment, credit and counter-provision.
- The sums by department (121…184, [GUIDE] p.6) would give each operation's turnover, but
  that is 64 more commands (16 departments × 4 operations) at every Z report: not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gateway.domain import fiscal

# Position of an operation type inside each group of four ([GUIDE] p.5).
OPERATION_INDEX: Mapping[fiscal.ReceiptType, int] = MappingProxyType(
    {
        fiscal.ReceiptType.SELL: 0,  # приход
        fiscal.ReceiptType.BUY: 1,  # расход
        fiscal.ReceiptType.SELL_RETURN: 2,  # возврат прихода
        fiscal.ReceiptType.BUY_RETURN: 3,  # возврат расхода
    }
)

# Money registers (1Ah), first of each group of four ([GUIDE] p.6).
SHIFT_CASH = 193  # накопления наличными за смену
SHIFT_PAYMENT_2 = 197  # видом оплаты 2
SHIFT_PAYMENT_3 = 201  # видом оплаты 3
SHIFT_PAYMENT_4 = 205  # видом оплаты 4
# Money registers (1Ah), single ([GUIDE] p.7).
CASH_DRAWER = 241  # накопление наличности в кассе
SHIFT_CASH_IN = 242  # накопление внесений за смену
SHIFT_CASH_OUT = 243  # накопление выплат за смену

# Operational registers (1Bh) ([GUIDE] p.8).
SHIFT_RECEIPTS = 144  # 144…147 количество чеков за смену, first of four
SHIFT_CASH_IN_COUNT = 153  # количество внесений денежных сумм за смену
SHIFT_CASH_OUT_COUNT = 154  # количество выплат денежных сумм за смену

# Payment-type groups and the payment type each one counts as.
PAYMENT_GROUPS: tuple[tuple[int, fiscal.PaymentType], ...] = (
    (SHIFT_CASH, fiscal.PaymentType.CASH),
    (SHIFT_PAYMENT_2, fiscal.PaymentType.ELECTRONICALLY),
    (SHIFT_PAYMENT_3, fiscal.PaymentType.ELECTRONICALLY),
    (SHIFT_PAYMENT_4, fiscal.PaymentType.ELECTRONICALLY),
)


def money_register(first: int, kind: fiscal.ReceiptType) -> int:
    """The register of operation type `kind` in the group of four starting at `first`."""
    return first + OPERATION_INDEX[kind]


def money_registers() -> tuple[int, ...]:
    """Every money register `shift_totals` needs, in ascending order (20 of them)."""
    numbers = {
        money_register(first, kind) for first, _ in PAYMENT_GROUPS for kind in OPERATION_INDEX
    }
    numbers |= {CASH_DRAWER, SHIFT_CASH_IN, SHIFT_CASH_OUT}
    return tuple(sorted(numbers))


def operation_registers() -> tuple[int, ...]:
    """Every operational register `shift_totals` needs, in ascending order (6 of them)."""
    numbers = {SHIFT_RECEIPTS + OPERATION_INDEX[kind] for kind in OPERATION_INDEX}
    numbers |= {SHIFT_CASH_IN_COUNT, SHIFT_CASH_OUT_COUNT}
    return tuple(sorted(numbers))


def shift_totals(
    money: Mapping[int, int], counts: Mapping[int, int], shift_number: int | None
) -> fiscal.ShiftTotals:
    """The shift's totals from the contents of `money_registers()` and `operation_registers()`.

    KeyError when a needed register is missing from either mapping.
    """
    receipts: dict[fiscal.ReceiptType, fiscal.OperationTotals] = {}
    for kind in fiscal.ReceiptType:
        payments: dict[fiscal.PaymentType, int] = {}
        for first, payment_type in PAYMENT_GROUPS:
            value = money[money_register(first, kind)]
            payments[payment_type] = payments.get(payment_type, 0) + value
        receipts[kind] = fiscal.OperationTotals(
            count=counts[SHIFT_RECEIPTS + OPERATION_INDEX[kind]],
            sum=sum(payments.values()),
            payments=payments,
        )
    return fiscal.ShiftTotals(
        shift_number=shift_number,
        receipts=receipts,
        cash_in=fiscal.OperationTotals(
            count=counts[SHIFT_CASH_IN_COUNT],
            sum=money[SHIFT_CASH_IN],
            payments={fiscal.PaymentType.CASH: money[SHIFT_CASH_IN]},
        ),
        cash_out=fiscal.OperationTotals(
            count=counts[SHIFT_CASH_OUT_COUNT],
            sum=money[SHIFT_CASH_OUT],
            payments={fiscal.PaymentType.CASH: money[SHIFT_CASH_OUT]},
        ),
        cash_drawer=money[CASH_DRAWER],
    )
