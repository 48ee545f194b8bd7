"""Shift reconciliation: at every Z report, the register's own counters against the journal.

The worker reads the register's shift counters just before the Z report and hands them here
with the shift's number. The journal's side is every receipt whose stored result names that
shift, and every cashIn/cashOut run in it (`Journal.shift_fiscal_tasks`). When they differ
the result says where, and a `shift_mismatch` event goes to the office: typically a receipt
punched by hand on the register (the register counts more) or a receipt lost (the journal
counts more).

How money is counted, so that both sides mean the same thing:
- A receipt's payments are what the task says, except cash: change is given from cash, so the
  cash a receipt brings is cash paid − change (its cash share of the total, ФФД tag 1031).
  The register keeps its cash counters the same way: the drawer moves by the receipt's cash,
  never by the change. An operation's sum is then the receipt total.
- A register may keep no counter for some payment types (a Shtrih register has none for
  prepaid, credit and other: `ShiftTotals` leaves them out). Only the payment types the
  register reports are compared, and the operation's sum over those same types; receipts paid
  otherwise are still checked by their count.
- A count the register does not keep (None: a cloud РРО's cash operations) is not compared;
  the sum still is.
- The cash in the drawer is not compared: the journal does not know what the shift began with.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from gateway.atol import decimal_json, names, parser, tasks
from gateway.domain import fiscal
from gateway.domain.errors import ValidationError
from gateway.journal import Journal, ShiftTask

_LOGGER = logging.getLogger(__name__)

EVENT_KIND: Final = "shift_mismatch"

RECEIPT_NAMES: Final[Mapping[fiscal.ReceiptType, str]] = {
    fiscal.ReceiptType.SELL: "sell",
    fiscal.ReceiptType.SELL_RETURN: "sellReturn",
    fiscal.ReceiptType.BUY: "buy",
    fiscal.ReceiptType.BUY_RETURN: "buyReturn",
}
_RECEIPT_TYPES: Final = {name: kind for kind, name in RECEIPT_NAMES.items()}
CASH_NAMES: Final = ("cashIn", "cashOut")

# Stored tasks were checked against the register when they were accepted; reading them back
# only needs the money, so no character set or carried-field rule applies.
_READ_BACK: Final = names.NameMapping(charset=None, carries=None)


@dataclass(frozen=True, slots=True)
class Difference:
    """One counter on which the register and the journal disagree.

    `payment` is None for the operation's document count (`measure` "count") or its sum;
    money is in kopecks.
    """

    operation: str  # sell, sellReturn, buy, buyReturn, cashIn, cashOut
    payment: str | None
    measure: str  # "count" or "sum"
    register: int
    journal: int

    def to_json(self) -> dict[str, Any]:
        """Money in rubles; `difference` is register − journal."""
        money = self.measure == "sum"

        def value(n: int) -> float | int:
            return n / 100 if money else n

        return {
            "operation": self.operation,
            "payment": self.payment,
            "measure": self.measure,
            "register": value(self.register),
            "journal": value(self.journal),
            "difference": value(self.register - self.journal),
        }

    def describe(self) -> str:
        """e.g. "sell cash: register 1234.50, journal 1200.00" (for logs and the event text)."""
        what = self.operation + (f" {self.payment}" if self.payment else "")
        if self.measure == "count":
            return f"{what} receipts: register {self.register}, journal {self.journal}"
        reg, jour = tasks.format_money(self.register), tasks.format_money(self.journal)
        return f"{what} sum: register {reg}, journal {jour}"


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The register's counters of a shift, the journal's, and where they differ."""

    shift: int
    register: fiscal.ShiftTotals
    journal: fiscal.ShiftTotals
    differences: tuple[Difference, ...]

    @property
    def matches(self) -> bool:
        """Every compared counter agrees."""
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        """The JSON stored in a closeShift result (`shiftReconciliation`) and in events."""
        return {
            "shift": self.shift,
            "matches": self.matches,
            "register": totals_json(self.register),
            "journal": totals_json(self.journal),
            "differences": [d.to_json() for d in self.differences],
        }

    def text(self) -> str:
        """What a technician reads about a mismatch (English, like the rest of the log)."""
        if self.matches:
            return f"Shift {self.shift}: the register's counters match the journal"
        listed = "; ".join(d.describe() for d in self.differences)
        return (
            f"Shift {self.shift}: the register's counters differ from what the journal "
            f"fiscalised ({listed}). Typical causes: a receipt punched by hand on the register "
            "(the register counts more) or a receipt lost (the journal counts more). Compare "
            "the register's Z report with the shift's jobs on the status page"
        )


def totals_json(totals: fiscal.ShiftTotals) -> dict[str, Any]:
    """Counters as JSON, rubles as numbers; only the payment types the side counts."""

    def operation(t: fiscal.OperationTotals) -> dict[str, Any]:
        return {
            "count": t.count,
            "sum": t.sum / 100,
            "payments": {p.value: v / 100 for p, v in t.payments.items()},
        }

    out: dict[str, Any] = {
        name: operation(totals.receipts.get(kind, fiscal.OperationTotals()))
        for kind, name in RECEIPT_NAMES.items()
    }
    out["cashIn"] = {"count": totals.cash_in.count, "sum": totals.cash_in.sum / 100}
    out["cashOut"] = {"count": totals.cash_out.count, "sum": totals.cash_out.sum / 100}
    if totals.cash_drawer is not None:
        out["cashDrawer"] = totals.cash_drawer / 100
    return out


# --- the journal's side ----------------------------------------------------------------------


def _kopecks(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValueError(f"not a sum of money: {value!r}")
    try:
        return int((Decimal(str(value)) * 100).to_integral_value())
    except InvalidOperation as err:
        raise ValueError(f"not a sum of money: {value!r}") from err


def _stored_task(task: ShiftTask) -> object:
    raw = decimal_json.loads(task.tasks_json)
    if not isinstance(raw, list) or not 0 <= task.index < len(raw):
        raise ValueError(f"job {task.job_uuid} has no task {task.index}")
    return raw[task.index]


def _receipt(task: ShiftTask) -> tuple[fiscal.ReceiptType, int, dict[fiscal.PaymentType, int]]:
    """Type, total and payments net of change of a stored receipt task, in kopecks."""
    parsed = parser.parse_task(_stored_task(task), f"request[{task.index}]", _READ_BACK)
    if not isinstance(parsed, tasks.ReceiptTask):
        raise ValueError(f"job {task.job_uuid} task {task.index} is not a receipt")
    receipt = parsed.receipt
    return receipt.type, receipt.total, net_payments(receipt.payments, receipt.total)


def _receipt_from_result(
    task: ShiftTask,
) -> tuple[fiscal.ReceiptType, int, dict[fiscal.PaymentType, int]]:
    """The same from the raw task and its result, for a stored task that no longer validates."""
    obj = _stored_task(task)
    if not isinstance(obj, dict):
        raise ValueError(f"job {task.job_uuid} task {task.index} is not an object")
    payments = tuple(
        fiscal.Payment(fiscal.PaymentType(p["type"]), _kopecks(p["sum"]))
        for p in obj.get("payments") or ()
    )
    total = _kopecks(task.result["fiscalParams"]["total"])
    return _RECEIPT_TYPES[task.type], total, net_payments(payments, total)


def net_payments(payments: Iterable[fiscal.Payment], total: int) -> dict[fiscal.PaymentType, int]:
    """Kopecks by payment type as the register counts them: change comes out of cash."""
    out: dict[fiscal.PaymentType, int] = {}
    for p in payments:
        out[p.type] = out.get(p.type, 0) + p.sum
    change = max(0, sum(out.values()) - total)
    if change:
        out[fiscal.PaymentType.CASH] = out.get(fiscal.PaymentType.CASH, 0) - change
    return out


def journal_totals(shift_tasks: Iterable[ShiftTask], shift_number: int) -> fiscal.ShiftTotals:
    """The shift's counters as the journal's tasks add up (no drawer: the start is unknown)."""
    counts = dict.fromkeys(fiscal.ReceiptType, 0)
    sums = dict.fromkeys(fiscal.ReceiptType, 0)
    payments: dict[fiscal.ReceiptType, dict[fiscal.PaymentType, int]] = {
        kind: {} for kind in fiscal.ReceiptType
    }
    cash = {name: [0, 0] for name in CASH_NAMES}
    for task in shift_tasks:
        if task.type in CASH_NAMES:
            amount = task.result.get("cashSum")
            try:
                kopecks = _kopecks(amount)
            except ValueError:
                _LOGGER.warning(
                    "Job %s task %d: no cashSum in its result", task.job_uuid, task.index
                )
                kopecks = 0
            cash[task.type][0] += 1
            cash[task.type][1] += kopecks
            continue
        try:
            kind, total, paid = _receipt(task)
        except (ValidationError, ValueError) as err:
            try:
                kind, total, paid = _receipt_from_result(task)
            except (ValueError, KeyError, TypeError):
                _LOGGER.warning(
                    "Job %s task %d: cannot read the receipt back (%s); counted without money",
                    task.job_uuid,
                    task.index,
                    err,
                )
                kind, total, paid = _RECEIPT_TYPES[task.type], 0, {}
        counts[kind] += 1
        sums[kind] += total
        for ptype, amount in paid.items():
            payments[kind][ptype] = payments[kind].get(ptype, 0) + amount
    return fiscal.ShiftTotals(
        shift_number=shift_number,
        receipts={
            kind: fiscal.OperationTotals(counts[kind], sums[kind], payments[kind])
            for kind in fiscal.ReceiptType
        },
        cash_in=fiscal.OperationTotals(
            cash["cashIn"][0], cash["cashIn"][1], {fiscal.PaymentType.CASH: cash["cashIn"][1]}
        ),
        cash_out=fiscal.OperationTotals(
            cash["cashOut"][0], cash["cashOut"][1], {fiscal.PaymentType.CASH: cash["cashOut"][1]}
        ),
    )


# --- the comparison ------------------------------------------------------------------------


def compare(
    register: fiscal.ShiftTotals, journal: fiscal.ShiftTotals, shift_number: int
) -> Reconciliation:
    """Pure: every counter the register keeps against the journal's (rules in the module doc)."""
    out: list[Difference] = []
    for kind, name in RECEIPT_NAMES.items():
        reg = register.receipts.get(kind, fiscal.OperationTotals())
        jour = journal.receipts.get(kind, fiscal.OperationTotals())
        if reg.count is not None and reg.count != (jour.count or 0):
            out.append(Difference(name, None, "count", reg.count, jour.count or 0))
        counted = [p for p in fiscal.PaymentType if p in reg.payments]
        for p in counted:
            if reg.payments[p] != jour.payments.get(p, 0):
                out.append(
                    Difference(name, p.value, "sum", reg.payments[p], jour.payments.get(p, 0))
                )
        jour_sum = sum(jour.payments.get(p, 0) for p in counted) if counted else jour.sum
        if reg.sum != jour_sum:
            out.append(Difference(name, None, "sum", reg.sum, jour_sum))
    for name, reg_op, jour_op in (
        ("cashIn", register.cash_in, journal.cash_in),
        ("cashOut", register.cash_out, journal.cash_out),
    ):
        if reg_op.count is not None and reg_op.count != (jour_op.count or 0):
            out.append(Difference(name, None, "count", reg_op.count, jour_op.count or 0))
        if reg_op.sum != jour_op.sum:
            out.append(Difference(name, None, "sum", reg_op.sum, jour_op.sum))
    return Reconciliation(shift_number, register, journal, tuple(out))


async def reconcile_shift(
    journal: Journal, totals: fiscal.ShiftTotals, shift_number: int, *, now: dt.datetime
) -> dict[str, Any]:
    """Compare the register's counters of shift `shift_number` (read before its Z report)
    with what the journal fiscalised in it; on a difference, queue a `shift_mismatch` event.

    Returns `Reconciliation.to_json()`.
    """
    shift_tasks = await journal.shift_fiscal_tasks(shift_number)
    result = compare(totals, journal_totals(shift_tasks, shift_number), shift_number)
    out = result.to_json()
    if result.matches:
        _LOGGER.info("%s (%d receipts and cash operations)", result.text(), len(shift_tasks))
        return out
    _LOGGER.warning("%s", result.text())
    await journal.add_event(
        EVENT_KIND,
        {"shift": shift_number, "differences": out["differences"], "text": result.text()},
        now=now,
    )
    return out
