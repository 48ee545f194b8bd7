"""Pure: an order -> the CHECK_URL answer and the `sale.cashbox.check.apply` body [B24].

The core treats every answer but a well-formed one as "printed, no fiscal data", so an
order that is not finished (or blocked, waiting for a person) is always `WAIT`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway.hub.connectors.bitrix24.wire import StatusAnswer
from gateway.hub.model import Order, OrderState


def status_answer(order: Order) -> StatusAnswer:
    if order.state is OrderState.DONE:
        return done_fields(order)
    if order.state is OrderState.FAILED:
        return {"STATUS": "ERROR", "ERROR": error_text(order.result)}
    return {"STATUS": "WAIT"}


def done_fields(order: Order) -> StatusAnswer:
    params = _params(order.result)
    return {
        "STATUS": "DONE",
        "REG_NUMBER_KKT": _text(params.get("registrationNumber")),
        "FISCAL_DOC_ATTR": _text(params.get("fiscalDocumentSign")),
        "FISCAL_DOC_NUMBER": _text(params.get("fiscalDocumentNumber")),
        "FISCAL_RECEIPT_NUMBER": _text(params.get("fiscalReceiptNumber")),
        "FN_NUMBER": _text(params.get("fnNumber")),
        "SHIFT_NUMBER": _text(params.get("shiftNumber")),
        "PRINT_END_TIME": _unix(params.get("fiscalDocumentDateTime"), order.finished_ms),
    }


def apply_body(order: Order) -> dict[str, Any]:
    """`sale.cashbox.check.apply` takes the DONE fields and the check's UUID."""
    fields = dict(done_fields(order))
    fields.pop("STATUS")
    return {"UUID": order.job_uuid, **fields}


def error_text(result: dict[str, Any] | None) -> str:
    result = result or {}
    error = result.get("error") if isinstance(result.get("error"), dict) else None
    if error is None:
        results = result.get("results")
        first = results[0] if isinstance(results, list) and results else {}
        error = first.get("error") if isinstance(first, dict) else None
    error = error if isinstance(error, dict) else {}
    text = str(error.get("description") or error.get("code") or "the register did not print it")
    return f"{error['field']}: {text}" if error.get("field") else text


def _params(result: dict[str, Any] | None) -> dict[str, Any]:
    results = (result or {}).get("results")
    first = results[0] if isinstance(results, list) and results else {}
    body = first.get("result") if isinstance(first, dict) else None
    params = body.get("fiscalParams") if isinstance(body, dict) else None
    return params if isinstance(params, dict) else {}


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _unix(value: object, fallback_ms: int | None) -> int:
    """The document's time; a time without an offset is taken as UTC."""
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            return int(when.timestamp())
    return (fallback_ms or 0) // 1000
