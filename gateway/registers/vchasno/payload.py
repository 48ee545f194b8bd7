"""Pure: domain receipts <-> Вчасно.Каса `fiscal/execute` bodies; tax groups and payments.

Choices (also in docs/ukraine.md):
- Money in the API is hryvnias with 2 decimals; quantities (`cnt`) have at most 3 decimals.
- A line's `disc` is price×quantity − amount (negative for the allowed 1 kopeck markup).
- Tax groups (`taxgrp`) are the device's letters as numbers; the default table below is the
  usual setup (1 = А ПДВ 20 %, 2 = Б ПДВ 7 %, 3 = В ПДВ 0 %, 4 = Г без ПДВ) and
  configuration may replace it. A rate with no group is an error naming it.
- Payments: cash -> 0, electronically -> 2 (card); `change` is given on the cash line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from gateway import fiscal
from gateway.errors import DeviceError, NoAnswer

TASK_OPEN_SHIFT = 0
TASK_SALE = 1
TASK_RETURN = 2
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

DEFAULT_TAX_GROUPS: Mapping[fiscal.Vat, int] = {
    fiscal.Vat.VAT20: 1,
    fiscal.Vat.VAT7: 2,
    fiscal.Vat.VAT0: 3,
    fiscal.Vat.NONE: 4,
}

# Document kinds by the task that makes them -> the worker's ФФД-style document types.
DOC_TYPES: Mapping[int, int] = {
    TASK_OPEN_SHIFT: fiscal.DOC_TYPE_SHIFT_OPEN,
    TASK_SALE: fiscal.DOC_TYPE_RECEIPT,
    TASK_RETURN: fiscal.DOC_TYPE_RECEIPT,
    TASK_Z_REPORT: fiscal.DOC_TYPE_SHIFT_CLOSE,
}


class UnmappedName(DeviceError):
    """A receipt uses a VAT rate or payment type with no Вчасно code; nothing was sent."""

    code = "unmapped_name"

    def __init__(self, what: str, name: str, hint: str) -> None:
        text = f"{what} {name!r} has no Вчасно.Каса code"
        super().__init__(0, text, command=0, hint=hint)
        self.name = name
        self.message = text
        self.args = (text,)


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
        raise UnmappedName(
            "receipt type", receipt.type.name.lower(), "Вчасно.Каса makes sales and returns only"
        )
    rows = []
    for item in receipt.items:
        if item.quantity % 1000:
            raise UnmappedName(
                "quantity",
                f"{item.quantity / fiscal.QTY_SCALE:g} of {item.name}",
                "Вчасно.Каса takes quantities with at most 3 decimals",
            )
        group = tax_groups.get(item.vat)
        if group is None:
            raise UnmappedName(
                "VAT rate", item.vat.value, "add the device's tax group for it to the config"
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
            raise UnmappedName(
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
