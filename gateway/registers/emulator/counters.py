"""The register's money and operational registers, as [GUIDE] "О денежных и операционных
регистрах ККТ" (pp.5–10) numbers them. Pure: a `Registers` value in, a new one out.

Each per-operation group is four registers in a row in the order приход, расход, возврат
прихода, возврат расхода ([GUIDE] p.5), which is the Shtrih receipt type 0–3 (mode 8.0–8.3,
[PROTO] Appendix 1 p.71): register = first of the group + receipt type.

Money registers kept (1Ah, 6 bytes, kopecks):
    121…184  накопления в отделы 1–16 за смену (sums of the receipt lines by department)
    185…188  скидки за смену (the FF45h rounding and the 85h discount)
    193…196  накопления наличными за смену: the cash the receipt kept (cash paid − change)
    197…208  накопления видом оплаты 2, 3, 4 за смену (FF45h/85h sums 2–4)
    209…224  обороты по налогам А, Б, В, Г за смену
    225…240  налоги А, Б, В, Г за смену
    241      накопление наличности в кассе
    242, 243 накопление внесений / выплат за смену
Operational registers kept (1Bh, 2 bytes):
    72…135   количество операций в отделы 1–16 за смену
    136…139  количество скидок за смену
    144…147  количество чеков за смену
    148…151  номер чека по типам (not reset by the Z report)
    152      сквозной номер документа; 185/186 its low and high words
    153, 154 количество внесений / выплат за смену
    155, 156 номер внесения / выплаты (not reset)
    158      номер сменного отчёта без гашения (X reports)

What [GUIDE] does not give: registers for payment types 5–16 of FF45h (the other electronic
types, prepayment, credit, counter-provision), so those sums reach no register here; and the
"в чеке" registers 0…120 of the receipt being built, which read 0.

Closing a receipt adds its registers to the shift ones; the cash in the drawer (241) grows by
the cash of a приход or возврат расхода receipt and shrinks by that of a расход or возврат
прихода one ([GUIDE] p.31). [GUIDE] p.31 also has the register control that no register goes
below zero; the emulator does not refuse a receipt for it (its FF45h never did, and drivers'
tests pay returns from an empty drawer), so 241 may read below zero, as a 6-byte two's
complement. 51h above the drawer is refused (46h). 50h/51h move 241, 242/243 and 153/154 and
count as documents ([GUIDE] p.33). The Z report («суточный отчёт с гашением», [GUIDE] p.75)
zeroes the shift registers; the cash in the drawer and the running numbers survive it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from gateway.registers.emulator.state import REGISTER_COUNT, Registers

# Money registers ([GUIDE] pp.5–7).
DEPARTMENTS = 121
DISCOUNTS = 185
CASH = 193
PAYMENT_TYPE_2 = 197  # then 201 type 3, 205 type 4
TAX_TURNOVER = 209  # А; then Б 213, В 217, Г 221
TAX_SUM = 225  # А; then Б 229, В 233, Г 237
CASH_IN_DRAWER = 241
SHIFT_CASH_IN = 242
SHIFT_CASH_OUT = 243
SHIFT_MONEY_LAST = 252  # 249…252 sums of annulled receipts in the shift

# Operational registers ([GUIDE] pp.8–9).
DEPARTMENT_OPERATIONS = 72
DISCOUNT_COUNT = 136
SHIFT_RECEIPTS = 144
RECEIPT_NUMBERS = 148
THROUGH_NUMBER = 152
SHIFT_CASH_IN_COUNT = 153
SHIFT_CASH_OUT_COUNT = 154
CASH_IN_NUMBER = 155
CASH_OUT_NUMBER = 156
X_REPORT_NUMBER = 158
THROUGH_NUMBER_LOW = 185
THROUGH_NUMBER_HIGH = 186

DEPARTMENT_COUNT = 16
GUIDE_PAYMENT_TYPES = 4  # cash and types 2–4
TAX_GROUPS = 4  # А–Г: table 6 rows 1–4 ([GUIDE] pp.34–35)

# Receipt types whose cash goes into the drawer (приход, возврат расхода); the others take it out.
_CASH_INTO_DRAWER = (0, 3)


class NotEnoughCash(Exception):
    """The drawer would go below zero ([PROTO] error 46h)."""


@dataclass(frozen=True, slots=True)
class LineSum:
    """What one receipt line adds: its department, amount, tax group (1–4 or 0) and tax."""

    department: int
    amount: int
    tax_group: int
    tax: int


MONEY_BITS = 48  # 1Ah answers 6 bytes ([PROTO] p.22)


def money(registers: Registers, number: int) -> int:
    """Money register `number` as 1Ah sends it (a drawer below zero as two's complement); 0 for
    numbers [GUIDE] leaves unused or out of range."""
    value = registers.money[number] if 0 <= number < REGISTER_COUNT else 0
    return value & ((1 << MONEY_BITS) - 1)


def operational(registers: Registers, number: int) -> int:
    """Operational register `number`; the through number is read from its own counter."""
    through = registers.through_number
    if number in (THROUGH_NUMBER, THROUGH_NUMBER_LOW):
        return through & 0xFFFF
    if number == THROUGH_NUMBER_HIGH:
        return through >> 16 & 0xFFFF
    return registers.operational[number] & 0xFFFF if 0 <= number < REGISTER_COUNT else 0


def _add(values: tuple[int, ...], changes: dict[int, int]) -> tuple[int, ...]:
    out = list(values)
    for number, delta in changes.items():
        out[number] += delta
    return tuple(out)


def receipt_closed(
    registers: Registers,
    receipt_type: int,
    lines: Iterable[LineSum],
    payments: tuple[int, int, int, int],
    change: int,
    discount: int,
) -> Registers:
    """The registers after a receipt of `receipt_type` (0–3) closed.

    `payments` are the sums of cash and payment types 2–4; `change` what the cash gave back.
    """
    money_changes: dict[int, int] = {}
    counts: dict[int, int] = {}

    def bump(target: dict[int, int], number: int, delta: int) -> None:
        target[number] = target.get(number, 0) + delta

    for line in lines:
        if 1 <= line.department <= DEPARTMENT_COUNT:
            bump(money_changes, DEPARTMENTS + 4 * (line.department - 1) + receipt_type, line.amount)
            bump(counts, DEPARTMENT_OPERATIONS + 4 * (line.department - 1) + receipt_type, 1)
        if 1 <= line.tax_group <= TAX_GROUPS:
            bump(money_changes, TAX_TURNOVER + 4 * (line.tax_group - 1) + receipt_type, line.amount)
            bump(money_changes, TAX_SUM + 4 * (line.tax_group - 1) + receipt_type, line.tax)
    kept_cash = payments[0] - change
    bump(money_changes, CASH + receipt_type, kept_cash)
    for index, amount in enumerate(payments[1:]):
        bump(money_changes, PAYMENT_TYPE_2 + 4 * index + receipt_type, amount)
    if discount:
        bump(money_changes, DISCOUNTS + receipt_type, discount)
        bump(counts, DISCOUNT_COUNT + receipt_type, 1)
    drawer = kept_cash if receipt_type in _CASH_INTO_DRAWER else -kept_cash
    bump(money_changes, CASH_IN_DRAWER, drawer)
    bump(counts, SHIFT_RECEIPTS + receipt_type, 1)
    bump(counts, RECEIPT_NUMBERS + receipt_type, 1)
    return replace(
        registers,
        money=_add(registers.money, money_changes),
        operational=_add(registers.operational, counts),
        through_number=registers.through_number + 1,
    )


def cash_moved(registers: Registers, amount: int, *, into: bool) -> Registers:
    """The registers after 50h (`into`) or 51h of `amount` kopecks; NotEnoughCash for a 51h
    above the cash in the drawer ([PROTO] 46h p.68)."""
    if into:
        changes = {CASH_IN_DRAWER: amount, SHIFT_CASH_IN: amount}
        counts = {SHIFT_CASH_IN_COUNT: 1, CASH_IN_NUMBER: 1}
    else:
        if amount > registers.money[CASH_IN_DRAWER]:
            raise NotEnoughCash
        changes = {CASH_IN_DRAWER: -amount, SHIFT_CASH_OUT: amount}
        counts = {SHIFT_CASH_OUT_COUNT: 1, CASH_OUT_NUMBER: 1}
    return replace(
        registers,
        money=_add(registers.money, changes),
        operational=_add(registers.operational, counts),
        through_number=registers.through_number + 1,
    )


def document_printed(registers: Registers, *, x_report: bool = False) -> Registers:
    """A shift report or an X report printed: the through number (and the X count) move on."""
    counts = {X_REPORT_NUMBER: 1} if x_report else {}
    return replace(
        registers,
        operational=_add(registers.operational, counts),
        through_number=registers.through_number + 1,
    )


def shift_cleared(registers: Registers) -> Registers:
    """The Z report: the shift's registers go to zero; the drawer and running numbers stay."""
    cleared_money = tuple(
        0 if DEPARTMENTS <= n <= SHIFT_MONEY_LAST and n != CASH_IN_DRAWER else value
        for n, value in enumerate(registers.money)
    )
    shift_counts = set(range(DEPARTMENT_OPERATIONS, RECEIPT_NUMBERS))
    shift_counts |= {SHIFT_CASH_IN_COUNT, SHIFT_CASH_OUT_COUNT}
    cleared_counts = tuple(
        0 if n in shift_counts else value for n, value in enumerate(registers.operational)
    )
    return replace(registers, money=cleared_money, operational=cleared_counts)
