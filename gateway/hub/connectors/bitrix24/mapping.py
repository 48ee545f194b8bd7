"""Pure: a Bitrix24 check -> the box's ATOL receipt task, every field carried or refused.

Values are only renamed and converted here; the box's own task parser checks them after
(sums, VAT amounts, text), and its field paths are named back in the check's terms by
`check_field`. What a check holds that is no fiscal data (the portal's timestamps, the
cashbox number, catalog references in `properties`) is kept with the order, not printed.

Marked goods [B24]: a line with `marking_code` (the code as scanned: text, GS as the character
1Dh) and `payment_object` commodity_marking (1212 = 33) or commodity_marking_excise (31) gets
the box's `imcParams`: the code base64-encoded, its planned status from the check type (income
sells, a return returns) and the unit (pieces, or measured in mass, length, area or volume;
any other unit is refused). One code is one pack, so a piece line of quantity above 1 with one
code, and the same code on two lines, are refused: the portal sends one line per code. The
box checks each code with the marking system before it prints (policy: a definite "no"
refuses the check, no answer sells it).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from gateway.atol import decimal_json
from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.domain import marking
from gateway.domain.errors import ValidationError
from gateway.hub.connectors.bitrix24.errors import CheckRefused
from gateway.hub.connectors.bitrix24.wire import CHECK_TYPES, INCOME_TYPES
from gateway.hub.connectors.marks import repeated_code

# [B24] payment_object names -> [FFD] tag 1212 codes.
PAYMENT_OBJECTS: Final[Mapping[str, int]] = {
    "commodity": 1,
    "excise": 2,
    "job": 3,
    "service": 4,
    "gambling_bet": 5,
    "gambling_prize": 6,
    "lottery": 7,
    "lottery_prize": 8,
    "intellectual_activity": 9,
    "payment": 10,
    "agent_commission": 11,
    "composite": 12,
    "another": 13,
    "property_right": 14,
    "non-operating_gain": 15,
    "insurance_premium": 16,
    "sales_tax": 17,
    "resort_fee": 18,
    "deposit": 19,
    "expense": 20,
    "pension_insurance_ip": 21,
    "pension_insurance": 22,
    "medical_insurance_ip": 23,
    "medical_insurance": 24,
    "social_insurance": 25,
    "casino_payment": 26,
    "commodity_marking_no_marking_excise": 30,
    "commodity_marking_no_marking": 32,
}
# [B24] marked goods with their code -> [FFD] tag 1212 31 (excise) and 33.
MARKED_OBJECTS: Final[Mapping[str, int]] = {
    "commodity_marking": 33,
    "commodity_marking_excise": 31,
}
# A code as scanned: printable ASCII, GS (1Dh) between the GS1 parts.
_CODE_TEXT = re.compile(r"[\x1d\x20-\x7e]+")
_PIECE = 0
# [B24] payment_method -> the ATOL task's name.
PAYMENT_METHODS: Final[Mapping[str, str]] = {
    "full_payment": "fullPayment",
    "advance": "advance",
    "prepayment": "prepayment",
    "full_prepayment": "fullPrepayment",
    "credit": "credit",
    "credit_payment": "creditPayment",
}
# [B24] payments[].type -> the ATOL payment type.
PAYMENT_TYPES: Final[Mapping[str, str]] = {
    "cash": "cash",
    "cashless": "electronically",
    "advance": "prepaid",
    "credit": "credit",
}
# The catalog's unit codes (ОКЕИ) -> [FFD] tag 2108. Any other unit is 255, «иные».
MEASURES: Final[Mapping[int, int]] = {
    796: 0,
    163: 10,
    166: 11,
    168: 12,
    4: 20,
    5: 21,
    6: 22,
    51: 30,
    53: 31,
    55: 32,
    111: 40,
    112: 41,
    113: 42,
    245: 50,
    233: 51,
    359: 70,
    356: 71,
    355: 72,
    354: 73,
    2553: 80,
    2554: 81,
    2555: 82,
    2556: 83,
}
OTHER_UNIT: Final = 255
# A marked line in a unit neither piece nor measured (`marking.MEASURED_UNITS`: пара,
# упаковка, комплект...) has no planned status: it is refused.
# The CONFIG the hub registers for each cashbox [B24]: section -> item -> the task member.
CONFIG_SECTION: Final = "FISCAL"
TAXATION: Final[Mapping[str, str]] = {
    "osn": "osn",
    "usn_income": "usnIncome",
    "usn_income_outcome": "usnIncomeOutcome",
    "esn": "esn",
    "patent": "patent",
}
VAT_RATES: Final[Mapping[str, str]] = {
    "0": "vat0",
    "5": "vat5",
    "7": "vat7",
    "10": "vat10",
    "20": "vat20",
    "22": "vat22",
}
# The domain is the server name of the request that made the check: empty from cron.
_UUID = re.compile(r"check\|([^|]{0,200})\|([0-9]{1,18})")
# Members kept with the order (shown on the fleet page), never printed.
META_MEMBERS: Final = ("date_create", "number_kkm", "service_email", "client_phone")


@dataclass(frozen=True, slots=True)
class Mapped:
    """The task, the portal's domain and check id, and what is kept with the order."""

    task: dict[str, Any]
    domain: str
    check_id: str
    meta: dict[str, str]


def vat_table(rows: list[dict[str, Any]], overrides: Mapping[str, str]) -> dict[str, str]:
    """`catalog.vat.list` rows -> {VAT id: ATOL VAT name}; the install's overrides win.

    A rate the box has no name for is left out, so a check using it is refused by name.
    """
    table: dict[str, str] = {"0": "none"}  # the core sends 0 for a line with no VAT set
    for row in rows:
        rate = row.get("rate")
        if rate is None or rate == "":
            table[str(row.get("id"))] = "none"
            continue
        try:
            key = format(Decimal(str(rate)).normalize(), "f")
        except InvalidOperation:
            continue
        name = VAT_RATES.get(key)
        if name is not None:
            table[str(row.get("id"))] = name
    table.update(overrides)
    return table


def split_uuid(value: object) -> tuple[str, str]:
    """`check|<domain>|<id>` -> (domain, id)."""
    match = _UUID.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise CheckRefused("uuid", "required: check|<domain>|<id>")
    return match.group(1), match.group(2)


def to_task(check: dict[str, Any], vat: Mapping[str, str]) -> Mapped:
    """The check -> the box's receipt task; CheckRefused names the first field refused."""
    known = {
        "type",
        "uuid",
        "unique_id",
        "calculated_sign",
        "operation",
        "items",
        "payments",
        "client_email",
        "total_sum",
        "cashbox_params",
        "additional_params",
        "order",
        *META_MEMBERS,
    }
    for key in check:
        if key not in known:
            raise CheckRefused(key, "unknown member: the hub does not know how to print it")
    kind = check.get("type")
    if kind not in CHECK_TYPES:
        raise CheckRefused("type", f"check type {kind!r} is not supported")
    income = kind in INCOME_TYPES
    sign = "income" if income else "consumption"
    for key in ("calculated_sign", "operation"):
        if key in check and check[key] != sign:
            raise CheckRefused(key, f"must be {sign} for a {kind} check")
    domain, check_id = split_uuid(check.get("uuid"))
    if "unique_id" in check and str(check["unique_id"]) != check_id:
        raise CheckRefused("unique_id", f"does not match the uuid's check id {check_id}")
    _empty(check, "additional_params", "additional requisites are not supported yet")
    _empty(check, "order", "unexpected order data")
    task: dict[str, Any] = {"type": "sell" if income else "sellReturn"}
    task.update(_settings(check.get("cashbox_params")))
    email = check.get("client_email")
    phone = check.get("client_phone")
    contact = email or phone  # tag 1008 holds one: the e-mail when both are given
    if contact:
        task["clientInfo"] = {"emailOrPhone": str(contact).strip()}
    items = _list(check, "items")
    task["items"] = [_item(item, f"items[{i}]", vat, income) for i, item in enumerate(items)]
    _no_repeats(task["items"])
    payments = _list(check, "payments")
    task["payments"] = [_payment(p, f"payments[{i}]") for i, p in enumerate(payments)]
    task["total"] = _number(check.get("total_sum"), "total_sum")
    meta = {key: str(check[key]) for key in META_MEMBERS if check.get(key) not in (None, "")}
    return Mapped(task, domain, check_id, meta)


def _settings(raw: object) -> dict[str, Any]:
    """The cashbox's CONFIG values (`cashbox_params`) -> task members."""
    if raw in (None, "", [], {}):
        return {}
    if not isinstance(raw, dict):
        raise CheckRefused("cashbox_params", "must be a group of sections")
    out: dict[str, Any] = {}
    for section, values in raw.items():
        where = f"cashbox_params[{section}]"
        if section != CONFIG_SECTION:
            raise CheckRefused(where, "unknown settings section")
        if values in ("", [], {}):
            continue
        if not isinstance(values, dict):
            raise CheckRefused(where, "must be a group of settings")
        for key, value in values.items():
            path = f"{where}[{key}]"
            if value in (None, ""):
                continue
            if key == "TAXATION":
                if value not in TAXATION:
                    raise CheckRefused(path, f"must be one of {', '.join(TAXATION)}")
                out["taxationType"] = TAXATION[str(value)]
            elif key == "PAYMENTS_PLACE":
                out["paymentsPlace"] = str(value)
            elif key == "OPERATOR":
                out["operator"] = {"name": str(value)}
            elif key == "ELECTRONICALLY":
                if value not in ("Y", "N"):
                    raise CheckRefused(path, "must be Y or N")
                out["electronically"] = value == "Y"
            else:
                raise CheckRefused(path, "unknown setting")
    return out


def _item(raw: object, path: str, vat: Mapping[str, str], income: bool) -> dict[str, Any]:
    item = _obj(raw, path)
    known = {
        "name",
        "base_price",
        "price",
        "sum",
        "quantity",
        "measure_code",
        "vat",
        "vat_sum",
        "payment_object",
        "payment_method",
        "properties",
        "discount",
        "barcode",
        "nomenclature_code",
        "marking_code",
        "supplier_info",
        "additional_params",
        "entity",
    }
    for key in item:
        if key not in known:
            raise CheckRefused(f"{path}[{key}]", "unknown member")
    if item.get("marking_code") in (None, ""):
        # The ФФД 1.05 product code (1162) is built by the register from the marking code.
        _empty(
            item,
            "nomenclature_code",
            "a product code alone is not printed: send the item's marking_code (ФФД 1.2)",
            path,
        )
    else:
        _empty(
            item,
            "nomenclature_code",
            "the register builds the product code (1162) from the marking code itself; send "
            "marking_code only",
            path,
        )
    _empty(
        item,
        "barcode",
        "a product barcode without a marking code (tag 1163) is not supported yet; a marked "
        "item's code goes in marking_code",
        path,
    )
    _empty(item, "additional_params", "additional requisites are not supported yet", path)
    _empty(item, "entity", "unexpected entity data", path)
    supplier = item.get("supplier_info")
    if isinstance(supplier, dict) and any(v not in ("", [], {}, None) for v in supplier.values()):
        raise CheckRefused(f"{path}[supplier_info]", "supplier data is not supported yet")
    if supplier not in (None, "", [], {}) and not isinstance(supplier, dict):
        raise CheckRefused(f"{path}[supplier_info]", "must be a group")
    out: dict[str, Any] = {"type": "position", "name": item.get("name")}
    if not isinstance(out["name"], str) or not out["name"].strip():
        raise CheckRefused(f"{path}[name]", "required")
    out["price"] = _number(item.get("price"), f"{path}[price]")
    out["quantity"] = _number(item.get("quantity"), f"{path}[quantity]")
    out["amount"] = _number(item.get("sum"), f"{path}[sum]")
    # base_price and discount describe how price came about; the receipt shows the price paid.
    if "base_price" in item:
        _number(item["base_price"], f"{path}[base_price]")
    vat_id = str(item.get("vat", "0") or "0")
    if vat_id not in vat:
        raise CheckRefused(
            f"{path}[vat]",
            f"VAT id {vat_id} has no rate on this hub: map it with --vat {vat_id}=vat20 (or its rate)",
        )
    tax: dict[str, Any] = {"type": vat[vat_id]}
    vat_sum = item.get("vat_sum")
    if vat_sum not in (None, "") and _number(vat_sum, f"{path}[vat_sum]") != 0:
        tax["sum"] = _number(vat_sum, f"{path}[vat_sum]")
    out["tax"] = tax
    method = item.get("payment_method")
    if method not in (None, ""):
        if method not in PAYMENT_METHODS:
            raise CheckRefused(
                f"{path}[payment_method]", f"must be one of {', '.join(PAYMENT_METHODS)}"
            )
        out["paymentMethod"] = PAYMENT_METHODS[str(method)]
    obj = item.get("payment_object")
    if obj not in (None, ""):
        if obj in MARKED_OBJECTS:
            out["paymentObject"] = MARKED_OBJECTS[str(obj)]
        elif obj in PAYMENT_OBJECTS:
            out["paymentObject"] = PAYMENT_OBJECTS[str(obj)]
        else:
            raise CheckRefused(f"{path}[payment_object]", f"unknown payment object {obj!r}")
    measure = item.get("measure_code")
    if measure not in (None, ""):
        code = str(measure)
        if not code.isdigit():
            raise CheckRefused(f"{path}[measure_code]", "must be a unit code (ОКЕИ)")
        out["measurementUnit"] = MEASURES.get(int(code), OTHER_UNIT)
    marked = obj in MARKED_OBJECTS
    if item.get("marking_code") not in (None, ""):
        if not marked:
            raise CheckRefused(
                f"{path}[payment_object]",
                "a line with a marking code must be commodity_marking or "
                "commodity_marking_excise: set the product's marking type on the portal",
            )
        out["imcParams"] = _imc(item, path, out, income)
    elif marked:
        raise CheckRefused(
            f"{path}[marking_code]",
            f"required for {obj}: scan the item's marking code into the order before "
            "printing the check",
        )
    return out


def _imc(item: dict[str, Any], path: str, out: dict[str, Any], income: bool) -> dict[str, Any]:
    """`marking_code` -> the box's `imcParams` ([ATOL] names)."""
    where = f"{path}[marking_code]"
    raw = item["marking_code"]
    if not isinstance(raw, str):
        raise CheckRefused(where, "must be the code as scanned (text)")
    code = raw.strip(" \r\n\t")
    if not _CODE_TEXT.fullmatch(code):
        raise CheckRefused(
            where,
            "holds characters no marking code has: scan it again with the scanner passing the "
            "code as is (Latin letters, digits, punctuation and GS between the parts)",
        )
    unit = out.get("measurementUnit", _PIECE)
    measured = unit in marking.MEASURED_UNITS
    if not measured and unit != _PIECE:
        raise CheckRefused(
            f"{path}[measure_code]",
            f"unit {item.get('measure_code')} is neither a piece nor a weight, length, area or "
            "volume, so a marked line cannot be sold in it: set the product's unit to "
            "«штука» (796) for marked goods",
        )
    if not measured and out["quantity"] != 1:
        raise CheckRefused(
            f"{path}[quantity]",
            f"{out['quantity']} pieces with one marking code: one code is one pack, so sell "
            "each pack on its own line with its own code",
        )
    if measured:
        status = "itemDryForSale" if income else "itemDryReturn"
    else:
        status = "itemPieceSold" if income else "itemPieceReturn"
    return {
        "imc": base64.b64encode(code.encode("ascii")).decode("ascii"),
        "imcType": "auto",
        "itemEstimatedStatus": status,
        "imcModeProcessing": 0,
    }


def _no_repeats(items: list[dict[str, Any]]) -> None:
    repeat = repeated_code(items)
    if repeat is not None:
        i, first = repeat
        raise CheckRefused(
            f"items[{i}][marking_code]",
            f"the same marking code as items[{first}]: one code is one pack, scan each "
            "pack's own code",
        )


def _payment(raw: object, path: str) -> dict[str, Any]:
    payment = _obj(raw, path)
    for key in payment:
        if key not in ("type", "is_cash", "sum", "currency", "additional_params", "entity"):
            raise CheckRefused(f"{path}[{key}]", "unknown member")
    _empty(payment, "additional_params", "additional requisites are not supported yet", path)
    _empty(payment, "entity", "unexpected entity data", path)
    kind = payment.get("type")
    if kind not in PAYMENT_TYPES:
        raise CheckRefused(f"{path}[type]", f"must be one of {', '.join(PAYMENT_TYPES)}")
    is_cash = payment.get("is_cash")
    if is_cash not in (None, "") and (is_cash == "Y") != (kind == "cash"):
        raise CheckRefused(f"{path}[is_cash]", f"{is_cash} does not agree with type {kind}")
    currency = payment.get("currency")
    if currency not in (None, "", "RUB"):
        raise CheckRefused(f"{path}[currency]", "only RUB is fiscalised by this register")
    return {"type": PAYMENT_TYPES[str(kind)], "sum": _number(payment.get("sum"), f"{path}[sum]")}


def _number(value: object, path: str) -> Decimal:
    if isinstance(value, bool) or value is None or value == "":
        raise CheckRefused(path, "required: a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise CheckRefused(path, f"not a number: {value!r}") from None
    if not number.is_finite():
        raise CheckRefused(path, f"not a number: {value!r}")
    # PHP may print 10.5 as "10.5000": the trailing zeros are no extra precision.
    number = number.normalize()
    exponent = number.as_tuple().exponent
    return number.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else number


def _obj(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CheckRefused(path, "must be a group of fields")
    return value


def _list(check: dict[str, Any], key: str) -> list[object]:
    value = check.get(key)
    if isinstance(value, dict):  # a form whose indexes do not start at 0
        value = list(value.values())
    if not isinstance(value, list) or not value:
        raise CheckRefused(key, "required: at least one")
    return value


def _empty(obj: dict[str, Any], key: str, why: str, path: str = "") -> None:
    value = obj.get(key)
    if value not in (None, "", [], {}):
        raise CheckRefused(f"{path}[{key}]" if path else key, why)


# The box parser's member names -> the check's, to name a refused field in the portal's terms.
_BACK: Final = {
    "amount": "sum",
    "tax": "vat",
    "measurementUnit": "measure_code",
    "paymentMethod": "payment_method",
    "paymentObject": "payment_object",
    "imcParams": "marking_code",
}
_TOP: Final = {
    "taxationType": f"cashbox_params[{CONFIG_SECTION}][TAXATION]",
    "paymentsPlace": f"cashbox_params[{CONFIG_SECTION}][PAYMENTS_PLACE]",
    "operator": f"cashbox_params[{CONFIG_SECTION}][OPERATOR]",
    "electronically": f"cashbox_params[{CONFIG_SECTION}][ELECTRONICALLY]",
    "clientInfo": "client_email",
    "total": "total_sum",
}


def check_field(box_field: str) -> str:
    """`request[0].items[1].tax.sum` -> `items[1][vat_sum]`, the check's own name."""
    rest = re.sub(r"^request(\[0\])?\.?", "", box_field)
    head = rest.split(".")[0].split("[")[0]
    if head in _TOP:
        return _TOP[head]
    match = re.match(r"(items|payments)\[(\d+)\]\.?(\w*)\.?(\w*)", rest)
    if match is None:
        return rest or "check"
    group, index, member, sub = match.groups()
    if group == "items" and member == "tax":
        return f"items[{index}][{'vat_sum' if sub == 'sum' else 'vat'}]"
    name = _BACK.get(member, member)
    return f"{group}[{index}]" + (f"[{name}]" if name else "")


def checked_request(job_uuid: str, task: dict[str, Any]) -> list[dict[str, Any]]:
    """The task checked by the box's own parser, as the box will store it; CheckRefused
    names the refused value in the check's terms."""
    body = decimal_json.dumps({"uuid": job_uuid, "request": [task]})
    try:
        parsed = parse_request(body, NameMapping())
    except ValidationError as err:
        raise CheckRefused(check_field(err.field), err.reason) from None
    tasks = json.loads(parsed.tasks_json)
    assert isinstance(tasks, list)
    return tasks
