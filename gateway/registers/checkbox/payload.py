"""Pure: domain receipts and shifts <-> Checkbox API bodies; tax and payment mapping.

Choices (also in docs/ukraine.md):
- Receipt id: Checkbox wants a UUID, and ids are global: an id any register used is refused
  ([CHECKBOX] `receipt.already_exists`). The job's `request_id` is used as-is when it is one
  (a CRM's uuid); otherwise a UUID5 of it in the register's own namespace (derived from its
  fiscal number), so the same job maps to the same id across restarts, and the same job id
  on two registers to two ids. Releases before that used one namespace for every box;
  `legacy_receipt_id` keeps those ids findable during recovery.
- Before a receipt found by id is taken as ours, its kind, total, payments and register are
  compared with what we meant to send (`expected_*`, `mismatch`).
- Quantities are ×1000 (Checkbox) — a quantity with more than 3 decimals is refused.
- A line cheaper than price×quantity carries the difference as a per-good VALUE discount
  (an `EXTRA_CHARGE` when the amount is above it by the allowed kopeck).
- Taxes: each good lists the organisation's tax *codes* (ints). They are looked up by rate
  in `GET tax` (20 → vat20, 7 → vat7, 14 → vat14 is not in the domain, 0 → vat0; "без ПДВ"
  → a tax whose label starts so, else none), or given explicitly by configuration.
- Payments: cash -> CASH, electronically -> CASHLESS; other ATOL types have no Checkbox twin.
- Delivery: an e-mail goes to `delivery.emails`; a phone to `delivery.phone` without its "+",
  which must be Ukrainian ([CHECKBOX] `^380\\d{9}$`); any other phone is refused, nothing sent.
- Cash in / out: a service receipt, [CHECKBOX] `ReceiptServicePayload` — one CASH payment,
  positive to put cash in and negative to take it out (`ReceiptType` SERVICE_IN/SERVICE_OUT).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.domain import fiscal
from gateway.domain.errors import NoAnswer, Refusal
from gateway.registers.cloud.errors import UnmappedName
from gateway.registers.cloud.totals import cloud_shift_totals

# Fixed forever: changing it would give old jobs new Checkbox ids. Ids themselves are made in
# a namespace per register (`register_namespace`); this one was shared by every box before.
RECEIPT_ID_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-4f5b-9a27-3c1e4b7d9f10")
QTY_DIVISOR = fiscal.QTY_SCALE // 1000  # domain ×10⁶ -> Checkbox ×1000

PAYMENT_TYPES: Mapping[fiscal.PaymentType, str] = {
    fiscal.PaymentType.CASH: "CASH",
    fiscal.PaymentType.ELECTRONICALLY: "CASHLESS",
}

FROM_PAYMENT_TYPES: Mapping[str, fiscal.PaymentType] = {
    "CASH": fiscal.PaymentType.CASH,
    "CASHLESS": fiscal.PaymentType.ELECTRONICALLY,
    "CARD": fiscal.PaymentType.ELECTRONICALLY,
}
CASH_LABEL = "Готівка"
_UA_PHONE = re.compile(r"\+?(380\d{9})")

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


def _unmapped(what: str, name: str, hint: str) -> UnmappedName:
    """A value of the receipt Checkbox has no code for; nothing is sent."""
    return UnmappedName(what, name, hint, backend="Checkbox", source="checkbox")


# [CHECKBOX] error codes with a neutral meaning; any other refusal goes by its HTTP status.
_REFUSALS: Mapping[str, Refusal] = {
    "shift.already_opened": Refusal.WRONG_MODE,
    "shift.not_opened": Refusal.WRONG_MODE,
}


def refusal_reason(status: int, api_code: str) -> Refusal | None:
    """What a Checkbox refusal means: its own code where known; 422 is a body the API's
    validation refused; None leaves it to the HTTP status."""
    if api_code in _REFUSALS:
        return _REFUSALS[api_code]
    return Refusal.INVALID_DATA if status == 422 else None


def register_namespace(identity: str) -> uuid.UUID:
    """The UUID5 namespace of one register's ids; `identity` is its fiscal number."""
    return uuid.uuid5(RECEIPT_ID_NAMESPACE, f"register:{identity}")


def receipt_id(request_id: str, namespace: uuid.UUID) -> str:
    """The Checkbox receipt id of a job's receipt (module docstring)."""
    try:
        return str(uuid.UUID(request_id))
    except ValueError:
        return str(uuid.uuid5(namespace, request_id))


def legacy_receipt_id(request_id: str) -> str | None:
    """The id an older release gave a non-UUID request id (None for a UUID: it never changed)."""
    try:
        uuid.UUID(request_id)
    except ValueError:
        return str(uuid.uuid5(RECEIPT_ID_NAMESPACE, request_id))
    return None


@dataclass(frozen=True, slots=True)
class Expected:
    """What a receipt we sent must look like to be ours: kind, total, (type, value) payments."""

    kind: str  # [CHECKBOX] ReceiptType: SELL, RETURN, SERVICE_IN, SERVICE_OUT
    total: int | None  # kopecks; None where the kind has no goods (service receipts)
    payments: tuple[tuple[str, int], ...]


def expected_sell(receipt: fiscal.Receipt) -> Expected:
    """What `sell_body(receipt)` makes."""
    kind = "RETURN" if receipt.type is fiscal.ReceiptType.SELL_RETURN else "SELL"
    pays = tuple(sorted((PAYMENT_TYPES.get(p.type, p.type.value), p.sum) for p in receipt.payments))
    return Expected(kind, receipt.total, pays)


def expected_service(direction: fiscal.CashDirection, amount: int) -> Expected:
    """What `service_body(direction, amount)` makes."""
    if direction is fiscal.CashDirection.IN:
        return Expected("SERVICE_IN", None, (("CASH", amount),))
    return Expected("SERVICE_OUT", None, (("CASH", -amount),))


def mismatch(expected: Expected, found: Mapping[str, Any], *, register: str) -> str | None:
    """Why the receipt `found` (`GET receipts/{id}`) is not the one we meant, or None."""
    maker = _maker(found)
    if maker and register and maker != register:
        return f"it was made by register {maker}, not by this one ({register})"
    kind = str(found.get("type") or "")
    if kind != expected.kind:
        return f"it is a {kind or 'receipt of unknown type'}, not a {expected.kind}"
    total = found.get("total_sum")
    if expected.total is not None and total != expected.total:
        return f"its total is {_uah(total)}, not {_uah(expected.total)}"
    raw = found.get("payments")
    pays = [p for p in raw if isinstance(p, dict)] if isinstance(raw, list) else []
    got = tuple(sorted((str(p.get("type")), _int(p.get("value"))) for p in pays))
    if got != expected.payments:
        return f"its payments are {_pays(got)}, not {_pays(expected.payments)}"
    return None


def _maker(found: Mapping[str, Any]) -> str:
    shift = found.get("shift") if isinstance(found.get("shift"), dict) else {}
    assert isinstance(shift, dict)
    reg = shift.get("cash_register") if isinstance(shift.get("cash_register"), dict) else {}
    assert isinstance(reg, dict)
    return str(reg.get("fiscal_number") or "")


def made_by(found: Mapping[str, Any], register_id: str) -> bool | None:
    """Whether the receipt names this register (`cash_register_id`); None when it says nothing."""
    maker = found.get("cash_register_id")
    return None if not maker else str(maker) == register_id


def _uah(kopecks: object) -> str:
    return f"{_int(kopecks) / 100:.2f}" if isinstance(kopecks, int) else repr(kopecks)


def _pays(pays: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{kind} {value / 100:.2f}" for kind, value in pays) or "none"


def service_body(
    direction: fiscal.CashDirection, amount: int, *, receipt_uuid: str
) -> dict[str, Any]:
    """`POST receipts/service`: cash put in (positive) or taken out (negative) [CHECKBOX]."""
    if amount <= 0:
        raise _unmapped("cash amount", f"{amount / 100:.2f}", "the amount must be positive")
    value = amount if direction is fiscal.CashDirection.IN else -amount
    return {"id": receipt_uuid, "payment": {"type": "CASH", "value": value, "label": CASH_LABEL}}


def delivery(contact: str) -> dict[str, Any]:
    """`delivery` of a receipt to the buyer's e-mail or Ukrainian phone (module docstring)."""
    if "@" in contact:
        return {"emails": [contact]}
    phone = _UA_PHONE.fullmatch(contact)
    if phone is None:
        raise _unmapped(
            "phone",
            contact,
            "Checkbox sends receipts by SMS to Ukrainian numbers (+380…) only; give an e-mail",
        )
    return {"phone": phone[1]}


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
        raise _unmapped(
            "receipt type", receipt.type.name.lower(), "Checkbox makes sells and returns only"
        )
    is_return = receipt.type is fiscal.ReceiptType.SELL_RETURN
    goods = [_good(item, is_return, tax_codes) for item in receipt.items]
    payments = []
    for pay in receipt.payments:
        kind = PAYMENT_TYPES.get(pay.type)
        if kind is None:
            raise _unmapped(
                "payment type",
                pay.type.value,
                "map the CRM's name to cash or electronically in mapping.payment_types",
            )
        payments.append({"type": kind, "value": pay.sum})
    body: dict[str, Any] = {"id": receipt_uuid, "goods": goods, "payments": payments}
    if receipt.operator is not None and receipt.operator.name:
        body["cashier_name"] = receipt.operator.name
    if receipt.client_contact:
        body["delivery"] = delivery(receipt.client_contact)
    return body


def _good(
    item: fiscal.Item, is_return: bool, tax_codes: Mapping[fiscal.Vat, int | None]
) -> dict[str, Any]:
    if item.quantity % QTY_DIVISOR:
        raise _unmapped(
            "quantity",
            f"{item.quantity / fiscal.QTY_SCALE:g} of {item.name}",
            "Checkbox takes quantities with at most 3 decimals",
        )
    if item.vat not in tax_codes:
        raise _unmapped(
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


def cash_result(
    body: Mapping[str, Any], *, api_url: str, tz: dt.tzinfo | None
) -> fiscal.CashResult:
    """CashResult of a DONE service receipt: its serial in the shift, fiscal code and links."""
    rid = str(body.get("id", ""))
    code = str(body.get("fiscal_code") or "")
    extra = {
        "fiscalDocumentSign": code,
        "fiscalCode": code,
        "receiptId": rid,
        "receiptUrl": str(body.get("tax_url") or ""),
        "textUrl": f"{api_url}/receipts/{rid}/text",
    }
    if body.get("is_created_offline"):
        extra["offline"] = "true"
    return fiscal.CashResult(
        document_number=_int(body.get("serial")) or None,
        datetime=parse_when(body.get("fiscal_date") or body.get("created_at"), tz),
        extra=extra,
    )


def empty_totals(shift_number: int | None) -> fiscal.ShiftTotals:
    """Totals of a register with no open shift: every counter zero."""
    return fiscal.ShiftTotals(
        shift_number, {kind: fiscal.OperationTotals() for kind in fiscal.ReceiptType}
    )


def report_totals(report: Mapping[str, Any], shift_number: int | None) -> fiscal.ShiftTotals:
    """ShiftTotals from an X report, [CHECKBOX] `ReportModel`.

    Counts of sells and returns are `sell_receipts_count` / `return_receipts_count`; sums are
    the per-payment `sell_sum`, `return_sum`, `service_in`, `service_out`; the drawer is
    `balance`. Checkbox publishes no count of service receipts: `cash_in.count` and
    `cash_out.count` are None (unknown), and cash operations are made exactly once by their id.
    """
    sells: dict[fiscal.PaymentType, int] = {}
    returns: dict[fiscal.PaymentType, int] = {}
    cash_in = cash_out = 0
    rows = report.get("payments") if isinstance(report.get("payments"), list) else []
    assert isinstance(rows, list)
    for row in rows:
        kind = FROM_PAYMENT_TYPES.get(str(row.get("type")), fiscal.PaymentType.OTHER)
        for into, key in ((sells, "sell_sum"), (returns, "return_sum")):
            value = _int(row.get(key))
            if value:
                into[kind] = into.get(kind, 0) + value
        cash_in += _int(row.get("service_in"))
        cash_out += _int(row.get("service_out"))
    balance = report.get("balance")
    return cloud_shift_totals(
        shift_number,
        sells=sells,
        sell_count=_int(report.get("sell_receipts_count")),
        returns=returns,
        return_count=_int(report.get("return_receipts_count")),
        cash_in=cash_in,
        cash_out=cash_out,
        drawer=balance if isinstance(balance, int) else None,
    )
