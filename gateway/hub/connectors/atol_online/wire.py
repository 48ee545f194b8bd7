"""ATOL Online v5 wire shapes, and its receipt -> the box's ATOL task.

The translation only renames: every value is then checked by the box's own task parser
(`gateway.atol.tasks`), so the hub refuses exactly what a box would, naming the field in
ATOL Online's terms. A member with no equivalent on the box is refused by name, never dropped.

Marked goods ([ATOL] Online v5): `mark_code` names the code's format; `gs1m` (GS1 DataMatrix)
and `short` (a tobacco pack's short code) are marking codes, base64 as the box's `imc`; the
other formats (EAN, ITF-14, furs, ЕГАИС…) are product codes without a check and are refused.
`mark_processing_mode` must be "0" ([FFD] 2102), `mark_quantity {numerator, denominator}` is
the part of a pack sold (`itemFractionalAmount`, 1291). The planned status follows the
operation (sell sells, sell_refund returns) and `measure` (0 pieces; mass, length, area or
volume measured; any other unit refused). The same code on two items is refused.
`sectoral_item_props` / `sectoral_check_props` [{federal_id, date, number, value}] are the
industry requisites 1260 / 1261 (`industryInfo`); federal_id, date and number are required,
so the hub never stores its own defaults in place of the box's configured permit document.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Final, NotRequired, TypedDict

from gateway.domain import marking
from gateway.hub.connectors.atol_online.errors import AtolCode, AtolError
from gateway.hub.connectors.marks import repeated_code

OPERATIONS: Final = {
    "sell": "sell",
    "sell_refund": "sellReturn",
    "buy": "buy",
    "buy_refund": "buyReturn",
}
_SNO: Final = {
    "osn": "osn",
    "usn_income": "usnIncome",
    "usn_income_outcome": "usnIncomeOutcome",
    "esn": "esn",
    "patent": "patent",
}
_PAYMENT_TYPES: Final = {0: "cash", 1: "electronically", 2: "prepaid", 3: "credit", 4: "other"}
_PAYMENT_METHODS: Final = {
    "full_prepayment": "fullPrepayment",
    "prepayment": "prepayment",
    "advance": "advance",
    "full_payment": "fullPayment",
    "partial_payment": "partialPayment",
    "credit": "credit",
    "credit_payment": "creditPayment",
}
_REFUSED_ITEM: Final = {
    "agent_info": "agent data is not supported yet",
    "supplier_info": "supplier data is not supported yet",
}
_REFUSED_RECEIPT: Final = {
    "agent_info": "agent data is not supported yet",
    "supplier_info": "supplier data is not supported yet",
    "additional_user_props": "additional user requisites are not supported yet",
    "operating_check_props": "operational requisites are not supported yet",
    "cashier_inn": "the cashier's ИНН is not supported yet",
}
# [ATOL] Online v5 mark_code formats that are marking codes (checked, tag 2000).
_MARK_FORMATS: Final = frozenset({"gs1m", "short"})
_PRODUCT_CODE_FORMATS: Final = frozenset(
    {"unknown", "ean", "ean8", "ean13", "itf14", "gs10", "fur", "egais20", "egais30"}
)
_SECTORAL: Final = {
    "federal_id": "fois",
    "date": "date",
    "number": "number",
    "value": "industryAttribute",
}
_TIMESTAMP = re.compile(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}")
_EXTERNAL_ID = re.compile(r"[\x21-\x7e]{1,128}")
MAX_URL_CHARS = 2048


class Vat(TypedDict):
    type: str
    sum: NotRequired[float]


class Item(TypedDict):
    name: str
    price: float
    quantity: float
    sum: float
    measure: int
    payment_method: str
    payment_object: int
    vat: Vat


class Payment(TypedDict):
    type: int
    sum: float


class Company(TypedDict):
    email: NotRequired[str]
    sno: str
    inn: str
    payment_address: str


class Client(TypedDict, total=False):
    email: str
    phone: str
    name: str
    inn: str


class Receipt(TypedDict):
    client: NotRequired[Client]
    company: Company
    items: list[Item]
    payments: list[Payment]
    total: float
    cashier: NotRequired[str]


class Service(TypedDict, total=False):
    callback_url: str


class RegisterBody(TypedDict):
    timestamp: str
    external_id: str
    receipt: Receipt
    service: NotRequired[Service]


class ReportError(TypedDict):
    error_id: str
    code: int
    text: str
    type: str


class ReportPayload(TypedDict):
    total: float | None
    fns_site: str | None
    fn_number: str | None
    shift_number: int | None
    receipt_datetime: str | None
    fiscal_receipt_number: int | None
    fiscal_document_number: int | None
    ecr_registration_number: str | None
    fiscal_document_attribute: int | None
    ofd_inn: str | None
    ofd_receipt_url: str | None


class Report(TypedDict):
    uuid: str
    status: str  # wait | done | fail
    error: ReportError | None
    payload: ReportPayload | None
    timestamp: str
    group_code: str
    daemon_code: str
    device_code: str
    external_id: str
    callback_url: str


def timestamp(when: dt.datetime | None = None) -> str:
    """ATOL Online's "dd.mm.yyyy HH:MM:SS"."""
    return (when or dt.datetime.now()).strftime("%d.%m.%Y %H:%M:%S")


def check_envelope(doc: object) -> tuple[str, str, str]:
    """(external_id, callback_url or "", timestamp) of a register body, or AtolError."""
    if not isinstance(doc, dict):
        raise _bad("", "the body must be a JSON object")
    allowed = {"timestamp", "external_id", "receipt", "service"}
    for key in doc:
        if key not in allowed:
            if key == "correction":
                raise _bad(key, "correction receipts are not supported")
            raise _bad(key, "unknown member")
    ts = doc.get("timestamp")
    if not isinstance(ts, str) or not _TIMESTAMP.fullmatch(ts):
        raise _bad("timestamp", 'required, "dd.mm.yyyy HH:MM:SS"')
    external_id = doc.get("external_id")
    if not isinstance(external_id, str) or not _EXTERNAL_ID.fullmatch(external_id):
        raise _bad("external_id", "required: 1 to 128 printable ASCII characters")
    callback = ""
    service = doc.get("service")
    if service is not None:
        if not isinstance(service, dict):
            raise _bad("service", "must be an object")
        for key in service:
            if key != "callback_url":
                raise _bad(f"service.{key}", "unknown member")
        raw = service.get("callback_url")
        if raw is not None and raw != "":
            if (
                not isinstance(raw, str)
                or not raw.startswith(("http://", "https://"))
                or len(raw) > MAX_URL_CHARS
                or any(c.isspace() for c in raw)
            ):
                raise _bad("service.callback_url", "must be an http(s) URL")
            callback = raw
    return external_id, callback, ts


def to_task(operation: str, receipt: object) -> dict[str, Any]:
    """ATOL Online `receipt` -> the box's receipt task (names only; values checked later)."""
    r = _obj(receipt, "receipt")
    for key, why in _REFUSED_RECEIPT.items():
        if key in r:
            raise _bad(f"receipt.{key}", why)
    _members(
        r,
        "receipt",
        {"client", "company", "items", "payments", "total", "cashier", "sectoral_check_props"},
    )
    company = _obj(r.get("company"), "receipt.company")
    _members(company, "receipt.company", {"email", "sno", "inn", "payment_address", "location"})
    if "location" in company:
        raise _bad("receipt.company.location", "the settlement place is the register's own")
    inn = company.get("inn")
    if not isinstance(inn, str) or not re.fullmatch(r"\d{10}|\d{12}", inn):
        raise _bad("receipt.company.inn", "required: 10 or 12 digits")
    sno = company.get("sno")
    task: dict[str, Any] = {"type": OPERATIONS[operation]}
    if sno is not None:
        if sno not in _SNO:
            raise _bad("receipt.company.sno", f"must be one of {', '.join(_SNO)}")
        task["taxationType"] = _SNO[str(sno)]
    address = company.get("payment_address")
    if address is not None:
        task["paymentsPlace"] = address
    client = r.get("client")
    if client is not None:
        c = _obj(client, "receipt.client")
        _members(c, "receipt.client", {"email", "phone", "name", "inn"})
        contact = c.get("email") or c.get("phone")
        info: dict[str, Any] = {}
        if contact:
            info["emailOrPhone"] = contact
        if c.get("name") is not None:
            info["name"] = c["name"]
        if c.get("inn") is not None:
            info["vatin"] = c["inn"]
        if info:
            task["clientInfo"] = info
    if r.get("cashier") is not None:
        task["operator"] = {"name": r["cashier"]}
    returned = task["type"] in ("sellReturn", "buyReturn")
    task["items"] = [
        _item(obj, f"receipt.items[{i}]", returned) for i, obj in enumerate(_list(r, "items"))
    ]
    _no_repeats(task["items"])
    if r.get("sectoral_check_props") is not None:
        task["industryInfo"] = _sectoral(r["sectoral_check_props"], "receipt.sectoral_check_props")
    task["payments"] = [
        _payment(obj, f"receipt.payments[{i}]") for i, obj in enumerate(_list(r, "payments"))
    ]
    if "total" not in r:
        raise _bad("receipt.total", "required")
    task["total"] = r["total"]
    return task


def _item(raw: object, path: str, returned: bool) -> dict[str, Any]:
    obj = _obj(raw, path)
    for key, why in _REFUSED_ITEM.items():
        if key in obj:
            raise _bad(f"{path}.{key}", why)
    known = {"name", "price", "quantity", "sum", "measure", "payment_method", "payment_object"}
    marked = {"mark_code", "mark_quantity", "mark_processing_mode", "sectoral_item_props"}
    _members(
        obj,
        path,
        known | marked | {"vat", "user_data", "excise", "country_code", "declaration_number"},
    )
    item: dict[str, Any] = {"type": "position"}
    for src, dst in (
        ("name", "name"),
        ("price", "price"),
        ("quantity", "quantity"),
        ("sum", "amount"),
    ):
        if src not in obj:
            raise _bad(f"{path}.{src}", "required")
        item[dst] = obj[src]
    if "measure" in obj:
        item["measurementUnit"] = obj["measure"]
    method = obj.get("payment_method")
    if method is not None:
        if method not in _PAYMENT_METHODS:
            raise _bad(f"{path}.payment_method", f"must be one of {', '.join(_PAYMENT_METHODS)}")
        item["paymentMethod"] = _PAYMENT_METHODS[str(method)]
    if "payment_object" in obj:
        item["paymentObject"] = obj["payment_object"]
    vat = _obj(obj.get("vat"), f"{path}.vat")
    _members(vat, f"{path}.vat", {"type", "sum"})
    tax: dict[str, Any] = {"type": vat.get("type")}
    if vat.get("sum") is not None:
        tax["sum"] = vat["sum"]
    item["tax"] = tax
    for src, dst in (
        ("user_data", "additionalAttribute"),
        ("excise", "exciseSum"),
        ("country_code", "countryCode"),
        ("declaration_number", "customsDeclaration"),
    ):
        if obj.get(src) is not None:
            item[dst] = obj[src]
    if obj.get("mark_code") is not None:
        item["imcParams"] = _imc(obj, path, returned)
    else:
        for key in ("mark_quantity", "mark_processing_mode"):
            if obj.get(key) is not None:
                raise _bad(f"{path}.{key}", "goes with mark_code: give the item's marking code")
    if obj.get("sectoral_item_props") is not None:
        item["industryInfo"] = _sectoral(obj["sectoral_item_props"], f"{path}.sectoral_item_props")
    return item


def _imc(obj: dict[str, Any], path: str, returned: bool) -> dict[str, Any]:
    """`mark_code`, `mark_processing_mode`, `mark_quantity` -> the box's `imcParams`."""
    where = f"{path}.mark_code"
    mark = _obj(obj["mark_code"], where)
    given = [key for key, value in mark.items() if value not in (None, "")]
    for key in given:
        if key in _PRODUCT_CODE_FORMATS:
            raise _bad(
                f"{where}.{key}",
                "product codes without a marking code (tag 1163) are not supported yet; "
                "send the pack's marking code as gs1m (or short for a tobacco pack)",
            )
        if key not in _MARK_FORMATS:
            raise _bad(f"{where}.{key}", "unknown member")
    if len(given) != 1:
        raise _bad(where, "must hold exactly one code: gs1m or short (base64)")
    mode = obj.get("mark_processing_mode", "0")
    if mode not in ("0", 0):
        raise _bad(f"{path}.mark_processing_mode", 'must be "0" ([FFD] tag 2102 is always 0)')
    unit = obj.get("measure", 0)
    measured = unit in marking.MEASURED_UNITS and not isinstance(unit, bool)
    if not measured and (unit not in (0, None) or isinstance(unit, bool)):
        raise _bad(
            f"{path}.measure",
            f"{unit!r} is neither pieces (0) nor a weight, length, area or volume, so a marked "
            "item cannot be sold in it: set the product's unit to «штука» (0) for marked goods",
        )
    if measured:
        status = "itemDryReturn" if returned else "itemDryForSale"
    else:
        status = "itemPieceReturn" if returned else "itemPieceSold"
    params: dict[str, Any] = {
        "imc": mark[given[0]],
        "imcType": "auto",
        "itemEstimatedStatus": status,
        "imcModeProcessing": 0,
    }
    quantity = obj.get("mark_quantity")
    if quantity is not None:
        part = _obj(quantity, f"{path}.mark_quantity")
        _members(part, f"{path}.mark_quantity", {"numerator", "denominator"})
        terms = []
        for key in ("numerator", "denominator"):
            value = part.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _bad(f"{path}.mark_quantity.{key}", "required: a whole number above 0")
            terms.append(value)
        params["itemFractionalAmount"] = f"{terms[0]}/{terms[1]}"
    return params


def _no_repeats(items: list[dict[str, Any]]) -> None:
    repeat = repeated_code(items)
    if repeat is not None:
        i, first = repeat
        raise _bad(
            f"receipt.items[{i}].mark_code",
            f"the same marking code as receipt.items[{first}]: one code is one pack, send "
            "each pack's own code",
        )


def _sectoral(raw: object, path: str) -> list[dict[str, Any]]:
    """`sectoral_*_props [{federal_id, date, number, value}]` -> `industryInfo`."""
    if not isinstance(raw, list):
        raise _bad(path, "must be a list")
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(raw):
        where = f"{path}[{i}]"
        props = _obj(entry, where)
        _members(props, where, set(_SECTORAL))
        # Required here: a gap would be filled with the hub's own defaults when the task is
        # stored, never with the box's configured permit document.
        for key in ("federal_id", "date", "number"):
            if props.get(key) in (None, ""):
                raise _bad(
                    f"{where}.{key}",
                    "required: the industry requisite's ФОИВ id, document date and number "
                    "(e.g. 030, 21.11.2023, 1944)",
                )
        out.append({_SECTORAL[key]: value for key, value in props.items() if value is not None})
    return out


def _payment(raw: object, path: str) -> dict[str, Any]:
    obj = _obj(raw, path)
    _members(obj, path, {"type", "sum"})
    kind = obj.get("type")
    if isinstance(kind, bool) or not isinstance(kind, int) or kind not in _PAYMENT_TYPES:
        raise _bad(
            f"{path}.type", "must be 0 (cash), 1 (electronic), 2 (prepaid), 3 (credit) or 4 (other)"
        )
    if "sum" not in obj:
        raise _bad(f"{path}.sum", "required")
    return {"type": _PAYMENT_TYPES[kind], "sum": obj["sum"]}


# The box parser's member names -> ATOL Online's, to name a refused field in the client's terms.
_BACK_PATHS: Final = {
    "taxationType": "company.sno",
    "paymentsPlace": "company.payment_address",
    "clientInfo.emailOrPhone": "client.email",
    "clientInfo.vatin": "client.inn",
    "clientInfo": "client",
    "operator.name": "cashier",
    "operator": "cashier",
    "industryInfo": "sectoral_check_props",
}
# imcParams members that come from an item's own mark_* members.
_BACK_MARKING: Final = {
    "itemFractionalAmount": "mark_quantity",
    "imcModeProcessing": "mark_processing_mode",
    "itemEstimatedStatus": "measure",
}
_BACK_NAMES: Final = {
    "amount": "sum",
    "tax": "vat",
    "measurementUnit": "measure",
    "paymentMethod": "payment_method",
    "paymentObject": "payment_object",
    "additionalAttribute": "user_data",
    "exciseSum": "excise",
    "countryCode": "country_code",
    "customsDeclaration": "declaration_number",
    "imcParams": "mark_code",
    "industryInfo": "sectoral_item_props",
    "fois": "federal_id",
    "industryAttribute": "value",
}


def client_field(box_field: str) -> str:
    """A field path from the box's parser (`request[0].items[1].amount`) in ATOL Online's
    names (`receipt.items[1].sum`)."""
    rest = re.sub(r"^request(\[0\])?\.?", "", box_field)
    if not rest:
        return "receipt"
    for old, new in _BACK_PATHS.items():
        if rest == old or rest.startswith((old + ".", old + "[")):
            return f"receipt.{new}{rest[len(old) :]}"
    rest = re.sub(r"\.imcParams\.(\w+)", lambda m: "." + _BACK_MARKING.get(m[1], "mark_code"), rest)
    parts = []
    for part in rest.split("."):
        name, bracket, index = part.partition("[")
        parts.append(_BACK_NAMES.get(name, name) + bracket + index)
    return "receipt." + ".".join(parts)


def _bad(field: str, text: str) -> AtolError:
    return AtolError(AtolCode.INVALID_BODY, text, field=field)


def _obj(value: object, path: str) -> dict[str, Any]:
    if value is None:
        raise _bad(path, "required")
    if not isinstance(value, dict):
        raise _bad(path, "must be an object")
    return value


def _list(obj: dict[str, Any], key: str) -> list[object]:
    value = obj.get(key)
    if not isinstance(value, list):
        raise _bad(f"receipt.{key}", "required: a list")
    return value


def _members(obj: dict[str, Any], path: str, known: set[str]) -> None:
    for key in obj:
        if key not in known:
            raise _bad(f"{path}.{key}", "unknown member")
