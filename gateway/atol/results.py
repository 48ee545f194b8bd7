"""Pure: domain results and errors -> ATOL web-server result shapes and error codes.

Shapes follow [ATOL] results (`fiscalParams`, `fnStatus`, `shiftStatus`…); error codes follow
ATOL's numbering for the states a CRM commonly checks, so clients written for ATOL react the
same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from gateway.atol import marking_results
from gateway.domain import fiscal
from gateway.domain.errors import (
    GatewayError,
    LinkError,
    Refusal,
    RegisterRefused,
    ValidationError,
)

# ATOL error codes (libfptr) for the states a CRM commonly checks.
ATOL_NO_CONNECTION = 2
ATOL_DATE_EARLIER = 36
ATOL_NO_PAPER = 44
ATOL_COVER_OPEN = 45
ATOL_PRINTER_FAULT = 46
ATOL_SHIFT_EXPIRED = 68
ATOL_RECEIPT_OPEN = 82
ATOL_FN_EXHAUSTED = 120
ATOL_OFD_TIMEOUT = 139
ATOL_INVALID_PARAM = 160
ATOL_BLOCKED = 501  # web server: the outcome of a fiscal task could not be proven
ATOL_INTERRUPTED = 502
ATOL_CANCELED = 503
ATOL_VALIDATION = 400
ATOL_OTHER = 999
# A marking code refused by the ФН or the ОИСМ, or not confirmed when the client required it:
# the ATOL driver's 404 "invalid КМ status" (its 4xx marking errors, [ATOLJS] utils), which a
# client written for ATOL already treats as "this item cannot be sold".
ATOL_MARKING_REFUSED = marking_results.ATOL_INVALID_STATUS
# A refusal the box itself makes in the ATOL driver's own words (e.g. 401 "validation in
# progress") carries this source and the ATOL number in its detail.
ATOL_SOURCE = "atol"
# A refusal without an ATOL twin is reported as 1000 + the register's own number (a Shtrih-M
# error byte, a cloud backend's HTTP status) when it has one.
REGISTER_CODE_BASE = 1000

_ATOL_CODES: Mapping[Refusal, int] = {
    Refusal.PAPER_OUT: ATOL_NO_PAPER,
    Refusal.COVER_OPEN: ATOL_COVER_OPEN,
    Refusal.PRINTER_FAULT: ATOL_PRINTER_FAULT,
    Refusal.SHIFT_EXPIRED: ATOL_SHIFT_EXPIRED,
    Refusal.RECEIPT_OPEN: ATOL_RECEIPT_OPEN,
    Refusal.CLOCK: ATOL_DATE_EARLIER,
    Refusal.FN_EXHAUSTED: ATOL_FN_EXHAUSTED,
    Refusal.OFD_BACKLOG: ATOL_OFD_TIMEOUT,
    Refusal.INVALID_DATA: ATOL_INVALID_PARAM,
    Refusal.UNMAPPED: ATOL_INVALID_PARAM,
    Refusal.MARKING: ATOL_MARKING_REFUSED,
}

# What to do, for refusals whose message does not say it already.
_DEFAULT_HINTS: Mapping[Refusal, str] = {
    Refusal.MARKING: (
        "nothing was printed; take the item off the receipt or scan its code again, and check "
        "the goods in Честный знак before selling them"
    ),
}


def error_code(err: BaseException) -> int:
    """The ATOL-style numeric code reported for an error."""
    if isinstance(err, RegisterRefused):
        if err.detail is not None and err.detail.source == ATOL_SOURCE and err.detail.number:
            return err.detail.number
        known = _ATOL_CODES.get(err.reason)
        if known is not None:
            return known
        number = err.detail.number if err.detail is not None else None
        return ATOL_OTHER if number is None else REGISTER_CODE_BASE + number
    if isinstance(err, ValidationError):
        return ATOL_VALIDATION
    if isinstance(err, LinkError):
        return ATOL_NO_CONNECTION
    return ATOL_OTHER


def error_text(err: GatewayError) -> str:
    """Description for a client: what happened and, when known, what to do."""
    hint = err.hint
    if hint is None and isinstance(err, RegisterRefused):
        hint = _DEFAULT_HINTS.get(err.reason)
    return f"{err.message} — {hint}" if hint else err.message


def iso(when: dt.datetime | None, tz: dt.tzinfo | None) -> str | None:
    """ISO 8601 with the offset; the register keeps local wall time without a zone."""
    if when is None:
        return None
    if when.tzinfo is None and tz is not None:
        when = when.replace(tzinfo=tz)
    return when.isoformat()


def rubles(kopecks: int | None) -> float | None:
    """Kopecks as the rubles number ATOL prints in results."""
    return None if kopecks is None else kopecks / 100


def fiscal_params(res: fiscal.FiscalResult, tz: dt.tzinfo | None) -> dict[str, Any]:
    """ATOL `fiscalParams`."""
    params: dict[str, Any] = {
        "fiscalDocumentNumber": res.document_number,
        "fiscalDocumentSign": str(res.fiscal_sign),
        "fiscalDocumentDateTime": iso(res.datetime, tz),
        "fiscalReceiptNumber": res.receipt_number,
        "shiftNumber": res.shift_number,
        "fnNumber": res.fn_number,
        "registrationNumber": res.registration_number,
        "total": rubles(res.total),
        "fnsUrl": res.fns_url,
    }
    params.update(res.extra)
    return params


def fiscal_result(res: fiscal.FiscalResult, tz: dt.tzinfo | None) -> dict[str, Any]:
    """Result of a receipt or shift task; a receipt with marked items adds `marks`: per item
    its code (base64), the check result and the tag 2106 bound into the document."""
    out: dict[str, Any] = {"fiscalParams": fiscal_params(res, tz), "warnings": None}
    if res.marks:
        out["marks"] = [marking_results.mark_result(m) for m in res.marks]
    return out


def recovered_result(
    doc: fiscal.FoundDocument,
    fn: fiscal.FnStatus,
    shift: fiscal.ShiftInfo,
    tz: dt.tzinfo | None,
) -> dict[str, Any]:
    """Result of a task whose answer was lost, rebuilt from the ФН archive.

    Recovery only adopts the ФН's last document, so the shift's own counters (its number and
    receipt count) are that document's.
    """
    res = fiscal.FiscalResult(
        document_number=doc.number,
        fiscal_sign=doc.fiscal_sign,
        datetime=doc.datetime,
        fn_number=fn.number,
        registration_number=fn.registration_number,
        shift_number=shift.number,
        receipt_number=shift.receipts if doc.document_type == fiscal.DOC_TYPE_RECEIPT else None,
        total=doc.total,
    )
    out = fiscal_result(res, tz)
    out["warnings"] = {"recovered": True}
    return out


def device_status(
    status: fiscal.RegisterStatus, info: fiscal.DeviceInfo | None, tz: dt.tzinfo | None
) -> dict[str, Any]:
    """getDeviceStatus."""
    body: dict[str, Any] = {
        "currentDateTime": iso(status.datetime, tz),
        "shift": status.shift.value,
        "coverOpened": status.cover_open,
        "paperPresent": status.paper_present,
        "receiptOpened": status.receipt_open,
        "waitingContinuePrint": status.waiting_continue_print,
        "mode": status.mode,
        "submode": status.submode,
    }
    if info is not None:
        body.update(
            {
                "modelName": info.model,
                "serialNumber": info.serial,
                "firmwareVersion": info.firmware_version,
                "firmwareBuild": info.firmware_build,
            }
        )
    return {"deviceStatus": body}


def shift_status(shift: fiscal.ShiftInfo, tz: dt.tzinfo | None) -> dict[str, Any]:
    """getShiftStatus."""
    expires = shift.opened_at + dt.timedelta(hours=24) if shift.opened_at else None
    return {
        "shiftStatus": {
            "state": shift.state.value,
            "number": shift.number,
            "expiredTime": iso(expires, tz),
        }
    }


def fn_status(fn: fiscal.FnStatus, expiry: dt.date | None, tz: dt.tzinfo | None) -> dict[str, Any]:
    """getFnStatus."""
    w = fn.warnings
    return {
        "fnStatus": {
            "fiscalDocumentNumber": fn.last_document_number,
            "fnNumber": fn.number,
            "lastDocumentDateTime": iso(fn.last_document_datetime, tz),
            "validityDate": expiry.isoformat() if expiry else None,
            "warnings": {
                "needReplacement": fiscal.FnWarning.REPLACE_URGENTLY in w,
                "resourceExhausted": fiscal.FnWarning.RESOURCE_EXHAUSTED in w,
                "memoryOverflow": fiscal.FnWarning.MEMORY_ALMOST_FULL in w,
                "ofdTimeout": fiscal.FnWarning.OFD_TIMEOUT in w,
                "criticalError": False,
            },
        }
    }


def ofd_status(ofd: fiscal.OfdStatus, tz: dt.tzinfo | None) -> dict[str, Any]:
    """ofdExchangeStatus."""
    return {
        "status": {
            "notSentCount": ofd.unsent_count,
            "notSentFirstDocNumber": ofd.first_unsent_number,
            "notSentFirstDocDateTime": iso(ofd.first_unsent_datetime, tz),
        }
    }


def shift_totals(totals: fiscal.ShiftTotals) -> dict[str, Any]:
    """getShiftTotals: the register's own counters of the shift, money in rubles."""

    def operation(t: fiscal.OperationTotals) -> dict[str, Any]:
        return {
            "count": t.count,
            "sum": rubles(t.sum),
            # null: the register keeps no counter of that payment type (not: nothing paid so)
            "payments": {p.value: rubles(t.payments.get(p)) for p in fiscal.PaymentType},
        }

    return {
        "shiftTotals": {
            "shiftNumber": totals.shift_number,
            "receipts": {
                name: operation(totals.receipts.get(kind, fiscal.OperationTotals()))
                for kind, name in _RECEIPT_NAMES.items()
            },
            "income": {"count": totals.cash_in.count, "sum": rubles(totals.cash_in.sum)},
            "outcome": {"count": totals.cash_out.count, "sum": rubles(totals.cash_out.sum)},
            "cashDrawer": {"sum": rubles(totals.cash_drawer)},
        }
    }


def cash_result(amount: int, res: fiscal.CashResult, tz: dt.tzinfo | None) -> dict[str, Any]:
    """Result of cashIn / cashOut."""
    out: dict[str, Any] = {
        "cashSum": rubles(amount),
        "documentNumber": res.document_number,
        "dateTime": iso(res.datetime, tz),
    }
    out.update(res.extra)
    return out


_RECEIPT_NAMES: Mapping[fiscal.ReceiptType, str] = {
    fiscal.ReceiptType.SELL: "sell",
    fiscal.ReceiptType.SELL_RETURN: "sellReturn",
    fiscal.ReceiptType.BUY: "buy",
    fiscal.ReceiptType.BUY_RETURN: "buyReturn",
}
