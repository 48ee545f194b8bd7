"""Pure: domain receipts <-> Вчасно.Каса `fiscal/execute` bodies; tax groups and payments.

Choices (also in docs/ukraine.md):
- Money in the API is hryvnias with 2 decimals; quantities (`cnt`) have at most 3 decimals.
- A line's `disc` is price×quantity − amount (negative for the allowed 1 kopeck markup).
- Tax groups (`taxgrp`): the default table is the vendor's ([VCHASNO] tax groups, which the
  public clients Kasa.Vchasno `DefaultVchasnoTaxGroups`, the WooCommerce plugin and the
  Delphi client agree on): 1 ПДВ 20 %, 2 без ПДВ, 3 ПДВ 20 % + акциз 5 %, 4 ПДВ 7 %,
  5 ПДВ 0 %, 6 без ПДВ + акциз, 7 не об'єкт ПДВ, 8 ПДВ 20 % + ПФ 7.5 %, 9 ПДВ 14 %.
  Our rates map to 1 (vat20), 2 (none), 4 (vat7) and 5 (vat0); a shop may set its device up
  differently, so `register.tax_groups` replaces the table. A rate with no group is refused
  naming the rate and that key.
- Payments: cash -> 0, electronically -> 2 (card); `change` is given on the cash line.
- The buyer's e-mail or phone goes to `userinfo` ([VCHASNO] Postman examples).
- Cash in / out are tasks 3 / 4 with `fiscal.cash {type: 0, sum}` ([VCHASNO] Device Manager).
- The X report (task 10) answers `safe` (cash in the drawer), `pays` (receipts by payment
  type: `sum_p` sales, `sum_m` returns) and `money` (cash in `sum_p`, out `sum_m`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from gateway.domain import fiscal
from gateway.domain.errors import NoAnswer
from gateway.registers.cloud.errors import UnmappedName
from gateway.registers.cloud.totals import cloud_shift_totals

TASK_OPEN_SHIFT = 0
TASK_SALE = 1
TASK_RETURN = 2
TASK_CASH_IN = 3
TASK_CASH_OUT = 4
TASK_X_REPORT = 10
TASK_Z_REPORT = 11
TASK_STATUS = 18
TASK_LAST_DOCUMENT = 22  # repeat the last successful document: its number, code, type, sum

PAY_CASH = 0
PAY_CARD = 2
PAYMENT_TYPES: Mapping[fiscal.PaymentType, int] = {
    fiscal.PaymentType.CASH: PAY_CASH,
    fiscal.PaymentType.ELECTRONICALLY: PAY_CARD,
}

TAX_GROUPS_KEY = "register.tax_groups"
# [VCHASNO] tax groups; 3, 6, 7, 8 (excise, "not a VAT object", pension levy) and 9 (14 %)
# have no rate of ours.
DEFAULT_TAX_GROUPS: Mapping[fiscal.Vat, int] = {
    fiscal.Vat.VAT20: 1,
    fiscal.Vat.NONE: 2,
    fiscal.Vat.VAT7: 4,
    fiscal.Vat.VAT0: 5,
}
FROM_PAY_TYPES: Mapping[int, fiscal.PaymentType] = {
    PAY_CASH: fiscal.PaymentType.CASH,
    1: fiscal.PaymentType.ELECTRONICALLY,  # безготівка
    PAY_CARD: fiscal.PaymentType.ELECTRONICALLY,
    3: fiscal.PaymentType.PREPAID,
    5: fiscal.PaymentType.CREDIT,
}

# Document kinds by the task that makes them -> the worker's ФФД-style document types.
DOC_TYPES: Mapping[int, int] = {
    TASK_OPEN_SHIFT: fiscal.DOC_TYPE_SHIFT_OPEN,
    TASK_SALE: fiscal.DOC_TYPE_RECEIPT,
    TASK_RETURN: fiscal.DOC_TYPE_RECEIPT,
    TASK_Z_REPORT: fiscal.DOC_TYPE_SHIFT_CLOSE,
}
CASH_TASKS: Mapping[fiscal.CashDirection, int] = {
    fiscal.CashDirection.IN: TASK_CASH_IN,
    fiscal.CashDirection.OUT: TASK_CASH_OUT,
}


def _unmapped(what: str, name: str, hint: str) -> UnmappedName:
    """A value of the receipt Вчасно.Каса has no code for; nothing is sent."""
    return UnmappedName(what, name, hint, backend="Вчасно.Каса", source="vchasno")


def uah(kopecks: int) -> float:
    """Kopecks as the hryvnia number the API takes (exact for 2 decimals)."""
    return float(Decimal(kopecks) / 100)


def kopecks(value: object) -> int:
    """A hryvnia number from the API as kopecks."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise NoAnswer(f"not a money value: {value!r}", command_sent=True)
    return int((Decimal(str(value)) * 100).to_integral_value())


def receipt_body(
    receipt: fiscal.Receipt, *, tax_groups: Mapping[fiscal.Vat, int]
) -> tuple[int, dict[str, Any]]:
    """(task, `fiscal.receipt`) for a sale or a return."""
    if receipt.type is fiscal.ReceiptType.SELL:
        task = TASK_SALE
    elif receipt.type is fiscal.ReceiptType.SELL_RETURN:
        task = TASK_RETURN
    else:
        raise _unmapped(
            "receipt type", receipt.type.name.lower(), "Вчасно.Каса makes sales and returns only"
        )
    rows = []
    for item in receipt.items:
        if item.quantity % 1000:
            raise _unmapped(
                "quantity",
                f"{item.quantity / fiscal.QTY_SCALE:g} of {item.name}",
                "Вчасно.Каса takes quantities with at most 3 decimals",
            )
        group = tax_groups.get(item.vat)
        if group is None:
            raise _unmapped(
                "VAT rate",
                item.vat.value,
                f"add the device's tax group for {item.vat.value} to {TAX_GROUPS_KEY}",
            )
        rows.append(
            {
                "code": item.name[:32],
                "name": item.name,
                "cnt": float(Decimal(item.quantity) / fiscal.QTY_SCALE),
                "price": uah(item.price),
                "disc": uah(item.full_amount - item.amount),
                "taxgrp": group,
            }
        )
    pays = []
    change_left = receipt.change
    for pay in receipt.payments:
        kind = PAYMENT_TYPES.get(pay.type)
        if kind is None:
            raise _unmapped(
                "payment type",
                pay.type.value,
                "map the CRM's name to cash or electronically in mapping.payment_types",
            )
        change = change_left if kind == PAY_CASH else 0
        change_left -= change
        pays.append({"type": kind, "sum": uah(pay.sum), "change": uah(change)})
    return task, {"sum": uah(receipt.total), "round": 0, "rows": rows, "pays": pays}


def parse_when(value: object) -> dt.datetime | None:
    """`dt` fields: ISO or YYYYMMDDHHMMSS, the device's wall time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        if value.isdigit() and len(value) >= 14:
            return dt.datetime.strptime(value[:14], "%Y%m%d%H%M%S")
        when = dt.datetime.fromisoformat(value)
    except ValueError as err:
        raise NoAnswer(f"bad timestamp from Вчасно.Каса: {value!r}", command_sent=True) from err
    return when.replace(tzinfo=None)


def fiscal_result(
    info: Mapping[str, Any], *, total: int | None, fiscal_number: str
) -> fiscal.FiscalResult:
    """FiscalResult of a document: `doccode` is its fiscal number, `docno` its local number."""
    code = str(info.get("doccode") or "")
    docno = _int(info.get("docno"))
    extra = {"fiscalDocumentSign": code, "fiscalCode": code, "localNumber": str(docno)}
    if info.get("qr"):
        extra["receiptUrl"] = str(info["qr"])
    if _int(info.get("isoffline")):
        extra["offline"] = "true"
    return fiscal.FiscalResult(
        document_number=docno,
        fiscal_sign=int(code) if code.isdigit() else 0,
        datetime=parse_when(info.get("dt")),
        fn_number=fiscal_number,
        registration_number=fiscal_number,
        receipt_number=docno,
        total=total,
        fns_url=str(info.get("qr") or "cabinet.tax.gov.ua"),
        extra=extra,
    )


def found_document(info: Mapping[str, Any]) -> fiscal.FoundDocument:
    """The last document (task 22) as the worker's FoundDocument.

    Unknown kinds come back as type 0, which never matches a task: the worker then blocks
    the job for a person instead of guessing.
    """
    task = _int(info.get("doctype"), default=-1)
    code = str(info.get("doccode") or "")
    receipt_type = {
        TASK_SALE: fiscal.ReceiptType.SELL,
        TASK_RETURN: fiscal.ReceiptType.SELL_RETURN,
    }.get(task)
    total = kopecks(info["sum"]) if info.get("sum") is not None else None
    return fiscal.FoundDocument(
        number=_int(info.get("docno")),
        document_type=DOC_TYPES.get(task, 0),
        datetime=parse_when(info.get("dt")),
        fiscal_sign=int(code) if code.isdigit() else 0,
        ofd_acknowledged=not _int(info.get("isoffline")),
        receipt_type=receipt_type,
        total=total,
    )


def _int(value: object, default: int = 0) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return default


def userinfo(contact: str | None) -> dict[str, str] | None:
    """`userinfo` of a request: where the device sends the receipt (module docstring)."""
    if not contact:
        return None
    return {"email": contact} if "@" in contact else {"phone": contact}


def cash_body(amount: int) -> dict[str, Any]:
    """`fiscal.cash` of task 3 / 4: cash (type 0) in hryvnias."""
    if amount <= 0:
        raise _unmapped("cash amount", f"{amount / 100:.2f}", "the amount must be positive")
    return {"type": PAY_CASH, "sum": uah(amount)}


def cash_result(info: Mapping[str, Any], *, recovered: bool = False) -> fiscal.CashResult:
    """CashResult of a task 3 / 4 document: its local number and fiscal code."""
    code = str(info.get("doccode") or "")
    extra = {
        "fiscalDocumentSign": code,
        "fiscalCode": code,
        "localNumber": str(_int(info.get("docno"))),
    }
    if info.get("qr"):
        extra["receiptUrl"] = str(info["qr"])
    if _int(info.get("isoffline")):
        extra["offline"] = "true"
    if recovered:
        extra["recovered"] = "true"
    return fiscal.CashResult(_int(info.get("docno")) or None, parse_when(info.get("dt")), extra)


def is_cash_document(info: Mapping[str, Any], task: int, amount: int) -> bool:
    """Whether the last document (task 22) is the cash operation `task` of `amount`."""
    if _int(info.get("doctype"), default=-1) != task or info.get("sum") is None:
        return False
    return kopecks(info["sum"]) == amount


def x_report_totals(
    report: Mapping[str, Any], status: Mapping[str, Any], shift_number: int | None
) -> fiscal.ShiftTotals:
    """ShiftTotals from the X report (sums, drawer) and the status (receipt counts).

    UNSURE: the counts are task 18's `last_receipt_no` / `last_back_no`, read as the
    shift's sales and returns; no count of cash operations is published, so those stay 0.
    """
    sells: dict[fiscal.PaymentType, int] = {}
    returns: dict[fiscal.PaymentType, int] = {}
    for row in _rows(report.get("pays")):
        kind = FROM_PAY_TYPES.get(_int(row.get("type"), default=-1), fiscal.PaymentType.OTHER)
        for into, key in ((sells, "sum_p"), (returns, "sum_m")):
            value = kopecks(row.get(key) or 0)
            if value:
                into[kind] = into.get(kind, 0) + value
    cash_in = cash_out = 0
    for row in _rows(report.get("money")):
        if _int(row.get("type"), default=-1) == PAY_CASH:
            cash_in += kopecks(row.get("sum_p") or 0)
            cash_out += kopecks(row.get("sum_m") or 0)
    safe = report.get("safe")
    return cloud_shift_totals(
        shift_number,
        sells=sells,
        sell_count=_int(status.get("last_receipt_no")),
        returns=returns,
        return_count=_int(status.get("last_back_no")),
        cash_in=cash_in,
        cash_out=cash_out,
        drawer=kopecks(safe) if safe is not None else None,
    )


def _rows(value: object) -> list[Mapping[str, Any]]:
    return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []


def to_int(value: object, default: int = 0) -> int:
    """An integer field of an answer (numbers may come as strings), else `default`."""
    return _int(value, default)
