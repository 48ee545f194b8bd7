"""Pure: a finished order -> what goes back to МойСклад.

Webhook path: a PUT of the order's attributes (the receipt link and "ФН … ФД … ФП …", or
the refusal) [MOYSKLAD] customerorder attributes. POS path: an approve with the fiscal data
or a reject with the reason [MOYSKLAD-POS] master_approve / master_reject.
The body names its account and kind; `connector.deliver` sends it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from gateway.hub.connectors.moysklad.settings import MoyskladAccount
from gateway.hub.model import Order, OrderState

MAX_TEXT = 255  # [MOYSKLAD] a string attribute holds at most 255 characters
# The ATOL taxation name -> the POS API's taxSystem.
POS_TAX_SYSTEMS: Final = {
    "osn": "GENERAL_TAX_SYSTEM",
    "usnIncome": "SIMPLIFIED_TAX_SYSTEM_INCOME",
    "usnIncomeOutcome": "SIMPLIFIED_TAX_SYSTEM_INCOME_OUTCOME",
    "esn": "UNIFIED_AGRICULTURAL_TAX",
    "patent": "PATENT_BASED",
}


def fiscal_params(order: Order) -> dict[str, Any]:
    results = (order.result or {}).get("results")
    first = results[0] if isinstance(results, list) and results else {}
    body = first.get("result") if isinstance(first, dict) else None
    params = body.get("fiscalParams") if isinstance(body, dict) else None
    return params if isinstance(params, dict) else {}


def failure_text(order: Order) -> str:
    result = order.result or {}
    error = result.get("error")
    if not isinstance(error, dict):
        results = result.get("results")
        first = results[0] if isinstance(results, list) and results else {}
        error = first.get("error") if isinstance(first, dict) else None
    error = error if isinstance(error, dict) else {}
    text = str(error.get("description") or error.get("code") or "the box did not print it")
    return f"{error['field']}: {text}" if error.get("field") else text


def fiscal_text(params: dict[str, Any]) -> str:
    return (
        f"ФН {params.get('fnNumber')} ФД {params.get('fiscalDocumentNumber')} "
        f"ФП {params.get('fiscalDocumentSign')} {params.get('fiscalDocumentDateTime') or ''}"
    ).strip()


REFUSED = "Чек не пробит:"


def refusal_text(reason: str) -> str:
    return f"{REFUSED} {reason}"[:MAX_TEXT]


def attribute(api_url: str, entity: str, attr_id: str, value: str) -> dict[str, Any]:
    href = f"{api_url}/entity/{entity}/metadata/attributes/{attr_id}"
    meta = {"href": href, "type": "attributemetadata", "mediaType": "application/json"}
    return {"meta": meta, "value": value}


def receipt_link(template: str, params: dict[str, Any]) -> str:
    when = str(params.get("fiscalDocumentDateTime") or "")
    try:
        stamp = dt.datetime.fromisoformat(when).strftime("%Y%m%dT%H%M")
    except ValueError:
        stamp = ""
    return template.format(
        fn=params.get("fnNumber", ""),
        fd=params.get("fiscalDocumentNumber", ""),
        fp=params.get("fiscalDocumentSign", ""),
        t=stamp,
        s=params.get("total", ""),
    )


def order_attributes(api_url: str, account: MoyskladAccount, order: Order) -> dict[str, Any]:
    """The PUT body for a webhook-path order."""
    assert account.fiscal_attr is not None  # the config requires it in webhook mode
    attrs = []
    if order.state is OrderState.DONE:
        params = fiscal_params(order)
        attrs.append(attribute(api_url, account.entity, account.fiscal_attr, fiscal_text(params)))
        if account.receipt_attr and account.receipt_url:
            link = receipt_link(account.receipt_url, params)
            attrs.append(attribute(api_url, account.entity, account.receipt_attr, link))
    else:
        text = refusal_text(failure_text(order))
        attrs.append(attribute(api_url, account.entity, account.fiscal_attr, text))
    return {"attributes": attrs}


def approve_body(order: Order, shift_href: str) -> dict[str, Any]:
    """[MOYSKLAD-POS] PUT /cheque/rpc/master/approve."""
    params = fiscal_params(order)
    when = str(params.get("fiscalDocumentDateTime") or "")
    try:
        time = dt.datetime.fromisoformat(when).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        time = ""
    total = params.get("total")
    body: dict[str, Any] = {
        "meta": order.meta["operation_meta"],
        "cheque": {
            "fiscal": True,
            "online": True,
            "printed": True,
            "number": str(params.get("fiscalReceiptNumber", "")),
            "sum": round(float(total) * 100) if isinstance(total, int | float) else 0,
            "fnNumber": str(params.get("fnNumber", "")),
            "fiscalDocSign": str(params.get("fiscalDocumentSign", "")),
            "fiscalDocNumber": str(params.get("fiscalDocumentNumber", "")),
            "time": time,
        },
        "chequePrinter": {"name": f"fiscal-gateway {order.box_id}"},
        "retailShift": {"meta": {"href": shift_href, "type": "retailshift"}},
    }
    tax = POS_TAX_SYSTEMS.get(str(order.request[0].get("taxationType")))
    if tax is not None:
        body["taxSystem"] = tax
    return body


def reject_body(operation_meta: dict[str, Any], reason: str) -> dict[str, Any]:
    """[MOYSKLAD-POS] PUT /cheque/rpc/master/reject."""
    return {"meta": operation_meta, "fiscalErrMsg": reason[:MAX_TEXT]}
