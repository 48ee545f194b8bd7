"""An order -> ATOL Online's report (the GET answer and the callback body)."""

from __future__ import annotations

import datetime as dt
import uuid as uuid_mod
from typing import Any

from gateway.hub.connectors.atol_online.wire import Report, ReportError, ReportPayload, timestamp
from gateway.hub.model import Order, OrderState


def report(order: Order, *, daemon_code: str) -> Report:
    meta = order.meta
    status = {OrderState.DONE: "done", OrderState.FAILED: "fail"}.get(order.state, "wait")
    return Report(
        uuid=order.job_uuid,
        status=status,
        error=_error(order) if status == "fail" else None,
        payload=_payload(order.result) if status == "done" else None,
        timestamp=timestamp(dt.datetime.fromtimestamp(order.updated_ms / 1000)),
        group_code=str(meta.get("group_code", "")),
        daemon_code=daemon_code,
        device_code=order.box_id,
        external_id=order.crm_key,
        callback_url=str(meta.get("callback_url", "")),
    )


def _first(result: dict[str, Any] | None) -> dict[str, Any]:
    results = (result or {}).get("results")
    first = results[0] if isinstance(results, list) and results else {}
    return first if isinstance(first, dict) else {}


def _payload(result: dict[str, Any] | None) -> ReportPayload:
    body = _first(result).get("result") or {}
    params = body.get("fiscalParams") or {} if isinstance(body, dict) else {}
    sign = params.get("fiscalDocumentSign")
    return ReportPayload(
        total=params.get("total"),
        fns_site=params.get("fnsUrl"),
        fn_number=params.get("fnNumber"),
        shift_number=params.get("shiftNumber"),
        receipt_datetime=_atol_time(params.get("fiscalDocumentDateTime")),
        fiscal_receipt_number=params.get("fiscalReceiptNumber"),
        fiscal_document_number=params.get("fiscalDocumentNumber"),
        ecr_registration_number=params.get("registrationNumber"),
        fiscal_document_attribute=int(sign) if isinstance(sign, str) and sign.isdigit() else None,
        ofd_inn=params.get("ofdInn"),
        ofd_receipt_url=params.get("ofdReceiptUrl"),
    )


def _error(order: Order) -> ReportError:
    result = order.result or {}
    error = result.get("error") if isinstance(result.get("error"), dict) else None
    if error is None:
        error = _first(result).get("error") or {}
    code = error.get("code")
    text = str(error.get("description") or error.get("code") or "the box did not print it")
    if error.get("field"):
        text = f"{error['field']}: {text}"
    return ReportError(
        error_id=str(uuid_mod.uuid5(uuid_mod.NAMESPACE_URL, f"{order.job_uuid}/error")),
        code=code if isinstance(code, int) else 1,
        text=text,
        type="driver",
    )


def _atol_time(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return timestamp(dt.datetime.fromisoformat(value))
    except ValueError:
        return None
