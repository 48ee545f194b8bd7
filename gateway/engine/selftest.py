"""Pure: the commissioning self-test — its one job, and the verdict on what it did.

The self-test is ONE journal job, so it runs exactly once and survives a restart like any
receipt: getShiftTotals, then for each payment type a sell of 1.00 and its sellReturn of 1.00,
then getShiftTotals again. When the job is done, `judge` reads the two counter answers and the
receipts' results: each payment type passes when both its receipts were fiscalised and moved
the register's counters of that payment type by 1.00 each.

It is refused while the open shift holds customer receipts (its receipts would then share the
customers' Z report), unless forced. The status page and `fiscal-gateway selftest` both use
this module; the first submits the job into the journal, the second through the box's HTTP API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from gateway.domain import fiscal

UUID_PREFIX: Final = "selftest-"
AMOUNT: Final = Decimal("1.00")
ITEM_NAME: Final = "Проверка кассы"
PAYMENT_TYPES: Final = tuple(p.value for p in fiscal.PaymentType)
# A receipt paid on credit is, in the ФН's terms, a transfer on credit (ФФД tag 1214 = 6).
_PAYMENT_METHOD: Final = {"credit": "credit"}


def is_selftest(uuid: str) -> bool:
    """The job is a self-test (its receipts are not a customer's)."""
    return uuid.startswith(UUID_PREFIX)


def _receipt(kind: str, payment: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "position",
        "name": ITEM_NAME,
        "price": AMOUNT,
        "quantity": 1,
        "amount": AMOUNT,
        "tax": {"type": "none"},
    }
    if payment in _PAYMENT_METHOD:
        item["paymentMethod"] = _PAYMENT_METHOD[payment]
    return {"type": kind, "items": [item], "payments": [{"type": payment, "sum": AMOUNT}]}


def build_tasks() -> list[dict[str, Any]]:
    """The job's tasks: counters, a sell and a sellReturn per payment type, counters."""
    out: list[dict[str, Any]] = [{"type": "getShiftTotals"}]
    for payment in PAYMENT_TYPES:
        out += [_receipt("sell", payment), _receipt("sellReturn", payment)]
    out.append({"type": "getShiftTotals"})
    return out


def receipt_indexes(payment: str) -> tuple[int, int]:
    """Indexes of the payment type's sell and sellReturn in `build_tasks()`."""
    first = 1 + 2 * PAYMENT_TYPES.index(payment)
    return first, first + 1


# --- may it run now ------------------------------------------------------------------------


def refusal(shift_state: str | None, customer_receipts: int | None, *, force: bool) -> str | None:
    """Why the self-test must not run now (English, for logs and the CLI), or None.

    `shift_state` is opened | closed | expired; `customer_receipts` the receipts of the open
    shift that are not a self-test's (None when unknown).
    """
    if force:
        return None
    if shift_state == "closed":
        return None
    if shift_state is None or customer_receipts is None:
        return (
            "the register's shift state is not known yet; wait until the register is connected, "
            "or force the self-test"
        )
    if customer_receipts > 0:
        return (
            f"the open shift holds {customer_receipts} customer receipts; the self-test's receipts "
            "would land in the same Z report. Close the shift (Z report) first, or force it"
        )
    return None


def register_receipts(shift_status: Mapping[str, Any], shift_totals: Mapping[str, Any]) -> int:
    """Receipts the register counts in its open shift, from getShiftStatus and getShiftTotals
    results (after a Z report the totals are the closed shift's: 0 then)."""
    status = shift_status.get("shiftStatus") or {}
    if status.get("state") == "closed":
        return 0
    receipts = (shift_totals.get("shiftTotals") or {}).get("receipts") or {}
    return sum(int(op.get("count") or 0) for op in receipts.values() if isinstance(op, Mapping))


# --- the verdict ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentCheck:
    """One payment type: passed, its two fiscal documents, and what went wrong."""

    payment: str
    passed: bool
    sell_document: int | None
    return_document: int | None
    counted: bool  # the register keeps a money counter of this payment type
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The check as JSON."""
        return {
            "payment": self.payment,
            "passed": self.passed,
            "sellDocument": self.sell_document,
            "sellReturnDocument": self.return_document,
            "counted": self.counted,
            "problems": list(self.problems),
        }


@dataclass(frozen=True, slots=True)
class Report:
    """The self-test's verdict: one check per payment type and what concerns them all."""

    checks: tuple[PaymentCheck, ...]
    problems: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Every payment type passed and nothing else went wrong."""
        return not self.problems and all(c.passed for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "passed": self.passed,
            "checks": [c.to_json() for c in self.checks],
            "problems": list(self.problems),
        }

    def lines(self) -> list[str]:
        """The report as text, one line a payment type."""
        out = []
        for c in self.checks:
            docs = f"documents {c.sell_document or '—'} / {c.return_document or '—'}"
            note = "" if c.counted else " (the register keeps no money counter of it)"
            why = f": {'; '.join(c.problems)}" if c.problems else ""
            out.append(f"{'PASS' if c.passed else 'FAIL'}  {c.payment:<15} {docs}{note}{why}")
        out += [f"FAIL  {p}" for p in self.problems]
        out.append("Self-test passed" if self.passed else "Self-test FAILED")
        return out


def _task_result(results: Sequence[Mapping[str, Any]], index: int) -> Mapping[str, Any] | None:
    """The task's result when it is ready, else None."""
    if index >= len(results):
        return None
    entry = results[index]
    if entry.get("status") != "ready":
        return None
    result = entry.get("result")
    return result if isinstance(result, Mapping) else {}


def _task_error(results: Sequence[Mapping[str, Any]], index: int) -> str:
    if index >= len(results):
        return "no result"
    entry = results[index]
    err = entry.get("error")
    text = err.get("description") if isinstance(err, Mapping) else entry.get("errorDescription")
    return f"{entry.get('status')}" + (f" ({text})" if text else "")


def _money(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _counter(totals: Mapping[str, Any], operation: str, payment: str | None) -> Decimal | None:
    op = (totals.get("receipts") or {}).get(operation) or {}
    if payment is None:
        count = op.get("count")
        return None if count is None else Decimal(int(count))
    return _money((op.get("payments") or {}).get(payment))


def _totals(result: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    totals = (result or {}).get("shiftTotals")
    return totals if isinstance(totals, Mapping) else None


def judge(results: Sequence[Mapping[str, Any]]) -> Report:
    """The verdict from the job's task results (`{"status", "result", "error"}` each, in the
    order of `build_tasks()`); a job still running or failed judges as failed where it did."""
    last = len(build_tasks()) - 1
    problems: list[str] = []
    before = _totals(_task_result(results, 0))
    after = _totals(_task_result(results, last))
    if before is None:
        problems.append(
            f"the counters before the receipts were not read: {_task_error(results, 0)}"
        )
    if after is None:
        problems.append(
            f"the counters after the receipts were not read: {_task_error(results, last)}"
        )
    if before is not None and after is not None:
        shift = after.get("shiftNumber")
        if before.get("shiftNumber") != shift:
            before = {}  # the job opened a new shift: its counters began at zero
        shifts = {
            ((_task_result(results, i) or {}).get("fiscalParams") or {}).get("shiftNumber")
            for i in range(1, last)
            if _task_result(results, i) is not None
        }
        if shifts - {shift}:
            problems.append("the shift changed during the self-test; run it again in one shift")
        for operation in ("sell", "sellReturn"):
            moved = (_counter(after, operation, None) or 0) - (
                _counter(before, operation, None) or 0
            )
            if moved != len(PAYMENT_TYPES):
                problems.append(
                    f"the register counted {moved} {operation} receipts, "
                    f"{len(PAYMENT_TYPES)} were printed"
                )
    checks = [_check(results, payment, before, after) for payment in PAYMENT_TYPES]
    return Report(tuple(checks), tuple(problems))


def _check(
    results: Sequence[Mapping[str, Any]],
    payment: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> PaymentCheck:
    """One payment type: both receipts fiscalised, each moved its counter by AMOUNT."""
    problems: list[str] = []
    documents: list[int | None] = []
    counted = True
    for operation, index in zip(("sell", "sellReturn"), receipt_indexes(payment), strict=True):
        result = _task_result(results, index)
        params = (result or {}).get("fiscalParams")
        number = params.get("fiscalDocumentNumber") if isinstance(params, Mapping) else None
        documents.append(number if isinstance(number, int) else None)
        if result is None:
            problems.append(f"{operation} not fiscalised: {_task_error(results, index)}")
            continue
        if not isinstance(number, int):
            problems.append(f"{operation} has no fiscal document number")
        if before is None or after is None:
            continue
        was, now = _counter(before, operation, payment), _counter(after, operation, payment)
        if was is None and now is None:
            counted = False  # judged by the receipt count and its document only
            continue
        zero = Decimal("0.00")
        moved = (zero if now is None else now) - (zero if was is None else was)
        if moved != AMOUNT:
            problems.append(f"{operation} {payment} counter moved by {moved}, expected {AMOUNT}")
    passed = not problems and before is not None and after is not None
    return PaymentCheck(payment, passed, documents[0], documents[1], counted, tuple(problems))
