"""Pure: domain receipts and shifts <-> Checkbox API bodies; tax and payment mapping.

Choices (also in docs/ukraine.md):
- Receipt id: Checkbox wants a UUID. The job's `request_id` is used as-is when it is one
  (the usual case: a CRM's uuid); otherwise a UUID5 of it in a fixed namespace, so the same
  job always maps to the same Checkbox id, across restarts and boxes.
- Quantities are ×1000 (Checkbox) — a quantity with more than 3 decimals is refused.
- A line cheaper than price×quantity carries the difference as a per-good VALUE discount
  (an `EXTRA_CHARGE` when the amount is above it by the allowed kopeck).
- Taxes: each good lists the organisation's tax *codes* (ints). They are looked up by rate
  in `GET tax` (20 → vat20, 7 → vat7, 14 → vat14 is not in the domain, 0 → vat0; "без ПДВ"
  → a tax whose label starts so, else none), or given explicitly by configuration.
- Payments: cash -> CASH, electronically -> CASHLESS; other ATOL types have no Checkbox twin.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from gateway import fiscal
from gateway.errors import DeviceError, NoAnswer

# Fixed forever: changing it would give old jobs new Checkbox ids.
RECEIPT_ID_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-4f5b-9a27-3c1e4b7d9f10")
QTY_DIVISOR = fiscal.QTY_SCALE // 1000  # domain ×10⁶ -> Checkbox ×1000

PAYMENT_TYPES: Mapping[fiscal.PaymentType, str] = {
    fiscal.PaymentType.CASH: "CASH",
    fiscal.PaymentType.ELECTRONICALLY: "CASHLESS",
}

RECEIPT_PENDING = frozenset({"CREATED", "PENDING"})
RECEIPT_DONE = "DONE"
RECEIPT_ERROR = "ERROR"
SHIFT_OPENED = "OPENED"
SHIFT_CLOSED = "CLOSED"
SHIFT_PENDING_OPEN = frozenset({"CREATED", "OPENING"})
SHIFT_PENDING_CLOSE = frozenset({"CLOSING"})

_VAT_RATES: Mapping[fiscal.Vat, float] = {
    fiscal.Vat.VAT20: 20.0,
    fiscal.Vat.VAT7: 7.0,
    fiscal.Vat.VAT0: 0.0,
}
_NO_VAT_LABEL = re.compile(r"^\s*без\s+пдв", re.IGNORECASE)


class UnmappedName(DeviceError):
    """A receipt uses a VAT rate or payment type the backend has no code for; nothing was sent."""

    code = "unmapped_name"

    def __init__(self, what: str, name: str, hint: str) -> None:
        super().__init__(0, f"{what} {name!r} has no Checkbox code", command=0, hint=hint)
        self.name = name
        self.message = f"{what} {name!r} has no Checkbox code"
        self.args = (self.message,)


def receipt_id(request_id: str) -> str:
    """The Checkbox receipt id of a job's receipt (module docstring)."""
    try:
        return str(uuid.UUID(request_id))
    except ValueError:
        return str(uuid.uuid5(RECEIPT_ID_NAMESPACE, request_id))


def tax_codes_from_list(taxes: Sequence[Mapping[str, Any]]) -> dict[fiscal.Vat, int | None]:
    """VAT rate -> Checkbox tax code, from `GET tax`; None means "no tax code on the good"."""
    out: dict[fiscal.Vat, int | None] = {fiscal.Vat.NONE: None}
    plain = sorted(
        (t for t in taxes if not t.get("extra_rate")), key=lambda t: int(t.get("code", 0))
    )
    for tax in plain:
        label = str(tax.get("label", ""))
        code = int(tax["code"])
        if _NO_VAT_LABEL.match(label):
            out[fiscal.Vat.NONE] = code
            continue
        for vat, rate in _VAT_RATES.items():
            if vat not in out and abs(float(tax.get("rate", -1)) - rate) < 1e-9:
                out[vat] = code
    return out


def sell_body(
    receipt: fiscal.Receipt,
    *,
    receipt_uuid: str,
    tax_codes: Mapping[fiscal.Vat, int | None],
) -> dict[str, Any]:
    """`POST receipts/sell` body for a sell or a return (goods flagged `is_return`)."""
    if receipt.type not in (fiscal.ReceiptType.SELL, fiscal.ReceiptType.SELL_RETURN):
        raise UnmappedName(
            "receipt type", receipt.type.name.lower(), "Checkbox makes sells and returns only"
        )
    is_return = receipt.type is fiscal.ReceiptType.SELL_RETURN
    goods = [_good(item, is_return, tax_codes) for item in receipt.items]
    payments = []
    for pay in receipt.payments:
        kind = PAYMENT_TYPES.get(pay.type)
        if kind is None:
            raise UnmappedName(
                "payment type",
                pay.type.value,
                "map the CRM's name to cash or electronically in mapping.payment_types",
            )
        payments.append({"type": kind, "value": pay.sum})
    body: dict[str, Any] = {"id": receipt_uuid, "goods": goods, "payments": payments}
    if receipt.operator is not None and receipt.operator.name:
        body["cashier_name"] = receipt.operator.name
    if receipt.client_contact:
        contact = receipt.client_contact
        body["delivery"] = {"emails": [contact]} if "@" in contact else {"phone": contact}
    return body


def _good(
    item: fiscal.Item, is_return: bool, tax_codes: Mapping[fiscal.Vat, int | None]
) -> dict[str, Any]:
    if item.quantity % QTY_DIVISOR:
        raise UnmappedName(
            "quantity",
            f"{item.quantity / fiscal.QTY_SCALE:g} of {item.name}",
            "Checkbox takes quantities with at most 3 decimals",
        )
    if item.vat not in tax_codes:
        raise UnmappedName(
            "VAT rate",
            item.vat.value,
            "the register has no tax with this rate; set register tax codes or fix the mapping",
        )
    code = tax_codes[item.vat]
    good: dict[str, Any] = {
        "code": _code(item),
        "name": item.name,
        "price": item.price,
        "tax": [] if code is None else [code],
    }
    entry: dict[str, Any] = {
        "good": good,
        "quantity": item.quantity // QTY_DIVISOR,
        "is_return": is_return,
    }
    diff = item.full_amount - item.amount
    if diff:
        entry["discounts"] = [
            {
                "type": "DISCOUNT" if diff > 0 else "EXTRA_CHARGE",
                "mode": "VALUE",
                "value": abs(diff),
                "name": "Знижка" if diff > 0 else "Округлення",
            }
        ]
    return entry


def _code(item: fiscal.Item) -> str:
    """A stable goods code: Checkbox requires one; CRMs send names only."""
    return str(uuid.uuid5(RECEIPT_ID_NAMESPACE, item.name))[:18]


def parse_when(value: object, tz: dt.tzinfo | None) -> dt.datetime | None:
    """An API timestamp as naive wall time in the register's zone (what the worker compares)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise NoAnswer(f"bad timestamp from Checkbox: {value!r}", command_sent=True) from err
    if when.tzinfo is not None:
        when = when.astimezone(tz).replace(tzinfo=None)
    return when


def receipt_result(
    body: Mapping[str, Any], *, api_url: str, fiscal_number: str, tz: dt.tzinfo | None
) -> fiscal.FiscalResult:
    """FiscalResult of a DONE receipt: fiscal code, the receipt link and the text/PDF/QR links."""
    rid = str(body.get("id", ""))
    code = str(body.get("fiscal_code") or "")
    serial = _int(body.get("serial"))
    shift = body.get("shift") if isinstance(body.get("shift"), dict) else {}
    assert isinstance(shift, dict)
    extra = {
        "fiscalDocumentSign": code,
        "fiscalCode": code,
        "receiptId": rid,
        "receiptUrl": str(body.get("tax_url") or ""),
        "textUrl": f"{api_url}/receipts/{rid}/text",
        "pdfUrl": f"{api_url}/receipts/{rid}/pdf",
        "qrUrl": f"{api_url}/receipts/{rid}/qrcode",
    }
    if body.get("is_created_offline"):
        extra["offline"] = "true"
    return fiscal.FiscalResult(
        document_number=serial,
        fiscal_sign=int(code) if code.isdigit() else 0,
        datetime=parse_when(body.get("fiscal_date") or body.get("created_at"), tz),
        fn_number=fiscal_number,
        registration_number=fiscal_number,
        shift_number=_int(shift.get("serial")) or None,
        receipt_number=serial,
        total=_int(body.get("total_sum")),
        fns_url=str(body.get("tax_url") or "cabinet.tax.gov.ua"),
        extra=extra,
    )


def shift_result(
    body: Mapping[str, Any], *, closing: bool, fiscal_number: str, tz: dt.tzinfo | None
) -> fiscal.FiscalResult:
    """FiscalResult of a shift open (its initial transaction) or close (its Z report)."""
    key = "closing_transaction" if closing else "initial_transaction"
    tx = body.get(key) if isinstance(body.get(key), dict) else {}
    assert isinstance(tx, dict)
    code = str(tx.get("fiscal_code") or "")
    when = body.get("closed_at") if closing else body.get("opened_at")
    return fiscal.FiscalResult(
        document_number=_int(body.get("serial")),
        fiscal_sign=int(code) if code.isdigit() else 0,
        datetime=parse_when(when, tz),
        fn_number=fiscal_number,
        registration_number=fiscal_number,
        shift_number=_int(body.get("serial")),
        fns_url="cabinet.tax.gov.ua",
        extra={"fiscalDocumentSign": code, "fiscalCode": code, "shiftId": str(body.get("id", ""))},
    )


def transaction_error(body: Mapping[str, Any], closing: bool) -> str | None:
    """The tax service's refusal of a shift transaction, when there is one."""
    tx = body.get("closing_transaction" if closing else "initial_transaction")
    if isinstance(tx, dict) and tx.get("status") == "ERROR":
        return str(tx.get("response_error_message") or "the tax service refused the document")
    return None


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0
