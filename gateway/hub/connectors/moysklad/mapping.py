"""Pure: a МойСклад order (or retail demand) with its positions -> the box's ATOL receipt task.

Every value that changes the receipt is carried or refused by name ([MOYSKLAD] field names):
prices come in kopecks, `discount` is a percentage taken off the line's sum, the VAT rate is
`vat` with `vatEnabled` (0 with VAT off = «без НДС», 0 with VAT on = 0%). Prices without VAT
(`vatIncluded: false`, VAT added on top) are refused: a receipt shows what the buyer pays.
A mark-up (negative discount) is refused, as is a sum МойСклад computed differently.

Marked goods (`assortment.trackingType` other than NOT_TRACKED): the codes come with the
position, as `trackingCodes [{cis, type}]` (JSON API) or `marks [{cis}]` (POS API). One code
is one pack, so a position of N pieces with N codes becomes N receipt lines of quantity 1, each
with its code (`imcParams`, the code base64-encoded), the position's sum split so the lines
add up to it exactly: whole kopecks, the first lines one kopeck more when it does not divide.
Fewer or more codes than pieces, a part of a piece, or codes on goods МойСклад does not mark
are refused naming the position. A `consumerpack` code is the code of one sold unit (a block
of cigarettes); the codes nested in it are what МойСклад knows the pack holds and are not
printed. A `transportpack` code is never sold. Payment object ([FFD] 1212): 31 for
EXCISABLE_GOOD, else 33.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

from gateway.atol.decimal_json import dumps
from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.domain.errors import ValidationError
from gateway.hub.connectors.moysklad.errors import OrderRefused

# [MOYSKLAD] taxSystem -> the ATOL task's taxationType.
TAX_SYSTEMS: Final[Mapping[str, str]] = {
    "GENERAL_TAX_SYSTEM": "osn",
    "SIMPLIFIED_TAX_SYSTEM_INCOME": "usnIncome",
    "SIMPLIFIED_TAX_SYSTEM_INCOME_OUTCOME": "usnIncomeOutcome",
    "UNIFIED_AGRICULTURAL_TAX": "esn",
    "PATENT_BASED": "patent",
}
SAME_AS_GROUP: Final = "TAX_SYSTEM_SAME_AS_GROUP"
# Whole percents with a receipt rate ([FFD] tag 1199 values the register prints).
VAT_RATES: Final = frozenset({0, 5, 7, 10, 20, 22})
# [MOYSKLAD] assortment paymentItemType -> the ATOL payment object.
PAYMENT_ITEMS: Final[Mapping[str, str]] = {
    "GOOD": "commodity",
    "EXCISABLE_GOOD": "excise",
    "SERVICE": "service",
    "WORK": "job",
}
NOT_TRACKED: Final = "NOT_TRACKED"
# [FFD] tag 1212 of marked goods with their code.
MARKED_EXCISE: Final = 31
MARKED_GOOD: Final = 33
# [MOYSKLAD] trackingCodes[].type: what one code stands for.
_SOLD_CODE_TYPES: Final = frozenset({"trackingcode", "consumerpack"})
_CODE_TEXT = re.compile(r"[\x1d\x20-\x7e]+")
# The position each receipt line came from, kept beside the task to name a refusal.
ORIGINS: Final = "_positions"
# Each line's code as the shop named it (`marks[0]`, `trackingCodes[2]`; "" unmarked).
CODE_FIELDS: Final = "_code_fields"
_KEPT_BESIDE: Final = frozenset({ORIGINS, CODE_FIELDS})
_BY_TYPE: Final[Mapping[str, str]] = {
    "product": "commodity",
    "variant": "commodity",
    "bundle": "commodity",
    "service": "service",
}
# Retail demand sums -> ATOL payment types.
DEMAND_PAYMENTS: Final = (
    ("cashSum", "cash"),
    ("noCashSum", "electronically"),
    ("qrSum", "electronically"),
    ("prepaymentCashSum", "prepaid"),
    ("prepaymentNoCashSum", "prepaid"),
)
_KOPECK = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Profile:
    """What the shop set at install for what МойСклад does not say on the order."""

    taxation: str | None = None  # ATOL name, used when the order has no taxSystem of its own
    payment: str = "electronically"  # the payment type of a customer order


def to_task(
    doc: Mapping[str, Any], positions: Sequence[Any], profile: Profile, kind: str = "sell"
) -> dict[str, Any]:
    """The receipt task (money as Decimal rubles), or OrderRefused naming the field.

    `kind` is the ATOL receipt type (sell, sellReturn): it sets a marked item's planned
    status. The task's ORIGINS member lists the position of each line; `checked` drops it."""
    if not positions:
        raise OrderRefused("positions", "the order has no positions: nothing to print")
    vat_on = _flag(doc, "vatEnabled", default=False)
    if vat_on and not _flag(doc, "vatIncluded", default=True):
        raise OrderRefused(
            "vatIncluded", "VAT is added on top of the prices: a receipt needs prices with VAT"
        )
    task: dict[str, Any] = {"type": kind, "taxationType": _taxation(doc, profile)}
    contact = _contact(doc.get("agent"))
    if contact:
        task["clientInfo"] = {"emailOrPhone": contact}
    items: list[dict[str, Any]] = []
    origins: list[int] = []
    code_fields: list[str] = []
    seen: dict[str, str] = {}  # imc -> where it came first
    for i, p in enumerate(positions):
        lines = _lines(_item(p, f"positions[{i}]", vat_on), p, f"positions[{i}]", kind)
        items.extend(lines)
        origins.extend([i] * len(lines))
        member = _codes_member(p) if isinstance(p, Mapping) else ""
        for j, line in enumerate(lines):
            if "imcParams" not in line:
                code_fields.append("")
                continue
            field = f"{member}[{j}]"
            code_fields.append(field)
            first = seen.setdefault(line["imcParams"]["imc"], f"positions[{i}].{field}")
            if first != f"positions[{i}].{field}":
                raise OrderRefused(
                    f"positions[{i}].{field}",
                    f"the same marking code as {first}: one code is one pack, scan each "
                    "pack's own code",
                )
    total = sum((item["amount"] for item in items), Decimal(0))
    if "sum" in doc:
        stated = _kopecks(doc["sum"], "sum")
        if stated != total:
            raise OrderRefused(
                "sum", f"МойСклад says {_rub(stated)}, the positions add up to {_rub(total)}"
            )
    task["items"] = items
    task["payments"] = _payments(doc, total, profile)
    task["total"] = total
    task[ORIGINS] = origins
    task[CODE_FIELDS] = code_fields
    return task


def _taxation(doc: Mapping[str, Any], profile: Profile) -> str:
    system = doc.get("taxSystem")
    if system is None or system == SAME_AS_GROUP:
        if profile.taxation is None:
            raise OrderRefused(
                "taxSystem", "not set on the order: set it, or `taxation` for this account"
            )
        return profile.taxation
    if system not in TAX_SYSTEMS:
        raise OrderRefused("taxSystem", f"{system} has no receipt equivalent")
    return TAX_SYSTEMS[str(system)]


def _item(raw: object, path: str, vat_on: bool) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise OrderRefused(path, "must be an object")
    if raw.get("country") is not None:
        raise OrderRefused(f"{path}.country", "the country of origin is not supported yet")
    assortment = raw.get("assortment")
    if not isinstance(assortment, Mapping) or not isinstance(assortment.get("name"), str):
        raise OrderRefused(f"{path}.assortment", "not read with its name (expand=assortment)")
    name = assortment["name"].strip()
    if not name:
        raise OrderRefused(f"{path}.assortment.name", "empty")
    quantity = _decimal(raw.get("quantity"), f"{path}.quantity")
    if quantity <= 0:
        raise OrderRefused(f"{path}.quantity", "must be above 0")
    price = _kopecks(raw.get("price"), f"{path}.price")
    discount = _decimal(raw.get("discount", 0), f"{path}.discount")
    if not 0 <= discount <= 100:
        raise OrderRefused(f"{path}.discount", f"{discount}%: only discounts of 0 to 100% print")
    # [MOYSKLAD] the line's sum is price × quantity less the discount, to the kopeck.
    amount = (price * quantity * (100 - discount) / 100).quantize(_KOPECK, ROUND_HALF_UP)
    item: dict[str, Any] = {
        "type": "position",
        "name": name,
        "price": price,
        "quantity": quantity.normalize(),
        "amount": amount,
        "tax": {"type": _vat(raw, path, vat_on)},
        "paymentMethod": "fullPayment",
        "paymentObject": _payment_object(assortment, path),
    }
    gtd = raw.get("gtd")
    if gtd is not None:
        number = gtd.get("name") if isinstance(gtd, Mapping) else None
        if not isinstance(number, str) or not number:
            raise OrderRefused(f"{path}.gtd", "must carry the declaration number as name")
        item["customsDeclaration"] = number
    return item


def _lines(
    item: dict[str, Any], raw: Mapping[str, Any], path: str, kind: str
) -> list[dict[str, Any]]:
    """The receipt lines of one position: itself, or one line per marking code."""
    assortment = raw["assortment"]
    tracking = assortment.get("trackingType")
    codes = _codes(raw, path)
    if tracking in (None, NOT_TRACKED):
        if codes:
            raise OrderRefused(
                f"{path}.{_codes_member(raw)}",
                "the goods are not marked in МойСклад (trackingType NOT_TRACKED) but the "
                "position has marking codes: set the product's marking type",
            )
        return [item]
    if not isinstance(tracking, str):
        raise OrderRefused(f"{path}.assortment.trackingType", "must be a marking type name")
    quantity: Decimal = item["quantity"]
    pieces = int(quantity) if quantity == quantity.to_integral_value() else None
    if pieces is None:
        raise OrderRefused(
            f"{path}.quantity",
            f"{quantity}: marked goods ({tracking}) sell whole pieces, one code each",
        )
    if len(codes) != pieces:
        raise OrderRefused(
            f"{path}.{_codes_member(raw)}",
            f"{pieces} pieces of marked goods ({tracking}) but {len(codes)} marking codes: "
            "scan the code of every piece into the position",
        )
    excise = assortment.get("paymentItemType") == "EXCISABLE_GOOD"
    status = "itemPieceReturn" if kind == "sellReturn" else "itemPieceSold"
    total = int(item["amount"] * 100)
    share, extra = divmod(total, pieces)
    lines: list[dict[str, Any]] = []
    for n, code in enumerate(codes):
        kopecks = share + (1 if n < extra else 0)
        line = {
            **item,
            "quantity": Decimal(1),
            "amount": (Decimal(kopecks) / 100).quantize(_KOPECK),
            "paymentObject": MARKED_EXCISE if excise else MARKED_GOOD,
            "imcParams": {
                "imc": base64.b64encode(code).decode("ascii"),
                "imcType": "auto",
                "itemEstimatedStatus": status,
                "imcModeProcessing": 0,
            },
        }
        lines.append(line)
    return lines


def _codes_member(raw: Mapping[str, Any]) -> str:
    return "marks" if raw.get("marks") and not raw.get("trackingCodes") else "trackingCodes"


def _codes(raw: Mapping[str, Any], path: str) -> list[bytes]:
    """The position's marking codes, from trackingCodes (JSON API) or marks (POS API)."""
    tracking, marks = raw.get("trackingCodes"), raw.get("marks")
    if tracking and marks:
        raise OrderRefused(f"{path}.marks", "the codes came twice: as trackingCodes and marks")
    member = "marks" if marks else "trackingCodes"
    entries = marks or tracking or []
    if not isinstance(entries, list):
        raise OrderRefused(f"{path}.{member}", "must be a list of codes")
    codes: list[bytes] = []
    for j, entry in enumerate(entries):
        where = f"{path}.{member}[{j}]"
        if isinstance(entry, str):
            cis: object = entry  # the POS API may list the codes themselves
        elif isinstance(entry, Mapping):
            kind = entry.get("type", "trackingcode")
            if kind == "transportpack":
                raise OrderRefused(
                    f"{where}.type",
                    f"{kind}: a transport pack is not sold on a receipt; give the codes of "
                    "the units in it",
                )
            if kind not in _SOLD_CODE_TYPES:
                raise OrderRefused(
                    f"{where}.type",
                    f"unknown tracking code type {kind!r}: a receipt sells a trackingcode "
                    "(one unit) or a consumerpack; check the code's type in МойСклад",
                )
            cis = entry.get("cis")
        else:
            raise OrderRefused(where, "must be a code or {cis}")
        if not isinstance(cis, str) or not _CODE_TEXT.fullmatch(cis):
            raise OrderRefused(
                f"{where}.cis" if isinstance(entry, Mapping) else where,
                "must be the marking code as scanned (printable Latin characters, GS between "
                "the parts)",
            )
        codes.append(cis.encode("ascii"))
    if len(set(codes)) != len(codes):
        raise OrderRefused(f"{path}.{member}", "the same marking code is given twice")
    return codes


def _vat(raw: Mapping[str, Any], path: str, vat_on: bool) -> str:
    line_on = _flag(raw, "vatEnabled", default=vat_on)
    if not vat_on or not line_on:
        return "none"
    rate = raw.get("vat")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or rate not in VAT_RATES:
        raise OrderRefused(f"{path}.vat", f"VAT {rate!r}% has no receipt rate")
    return f"vat{int(rate)}"


def _payment_object(assortment: Mapping[str, Any], path: str) -> str:
    kind = assortment.get("paymentItemType")
    if kind is not None:
        if kind not in PAYMENT_ITEMS:
            raise OrderRefused(f"{path}.assortment.paymentItemType", f"{kind} is not supported yet")
        return PAYMENT_ITEMS[str(kind)]
    meta = assortment.get("meta")
    entity = meta.get("type") if isinstance(meta, Mapping) else None
    if entity not in _BY_TYPE:
        raise OrderRefused(f"{path}.assortment.meta.type", f"{entity!r} is not supported")
    return _BY_TYPE[str(entity)]


def _payments(doc: Mapping[str, Any], total: Decimal, profile: Profile) -> list[dict[str, Any]]:
    if not any(key in doc for key, _ in DEMAND_PAYMENTS):
        return [{"type": profile.payment, "sum": total}]  # a customer order: paid as set up
    sums: dict[str, Decimal] = {}
    for key, kind in DEMAND_PAYMENTS:
        value = _kopecks(doc.get(key, 0), key)
        if value:
            sums[kind] = sums.get(kind, Decimal(0)) + value
    if not sums:
        raise OrderRefused("cashSum", "the demand has no payment")
    return [{"type": kind, "sum": value} for kind, value in sums.items()]


def _contact(agent: object) -> str | None:
    if not isinstance(agent, Mapping):
        return None
    for key in ("email", "phone"):  # tag 1008 holds one: the e-mail when both are given
        value = agent.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _flag(obj: Mapping[str, Any], key: str, *, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise OrderRefused(key, "must be true or false")
    return value


def _decimal(value: object, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise OrderRefused(path, "required: a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise OrderRefused(path, f"not a number: {value!r}") from None
    if not number.is_finite():
        raise OrderRefused(path, f"not a number: {value!r}")
    return number


def _kopecks(value: object, path: str) -> Decimal:
    """Kopecks on the wire -> rubles; a fraction of a kopeck is refused, never rounded."""
    number = _decimal(value, path)
    if number < 0 or number != number.to_integral_value():
        raise OrderRefused(path, f"{value!r}: must be whole kopecks, not negative")
    return (number / 100).quantize(_KOPECK)


def _rub(value: Decimal) -> str:
    return f"{value:.2f} ₽"


# The box parser's names -> МойСклад's, to name a refused value in the shop's terms.
_BACK: Final[Mapping[str, str]] = {
    "name": "assortment.name",
    "amount": "price",
    "tax": "vat",
    "paymentObject": "assortment.paymentItemType",
    "customsDeclaration": "gtd",
    "imcParams": "trackingCodes",
}


def checked(task: dict[str, Any], uuid: str) -> list[dict[str, Any]]:
    """The task as the box's own parser stores it, or OrderRefused: the hub refuses exactly
    what a box would."""
    body = {key: value for key, value in task.items() if key not in _KEPT_BESIDE}
    try:
        parsed = parse_request(dumps({"uuid": uuid, "request": [body]}), NameMapping())
    except ValidationError as err:
        where = shop_field(err.field, task.get(ORIGINS), task.get(CODE_FIELDS))
        raise OrderRefused(where, err.reason) from None
    request = json.loads(parsed.tasks_json)
    assert isinstance(request, list)
    return request


def shop_field(
    box_field: str,
    origins: Sequence[int] | None = None,
    code_fields: Sequence[str] | None = None,
) -> str:
    """`request[0].items[1].amount` -> `positions[1].price`; `origins` names the position of
    each receipt line when marked positions were split, `code_fields` its code as the shop
    sent it (`marks[0]` from the POS API, `trackingCodes[0]` otherwise)."""
    rest = re.sub(r"^request(\[0\])?\.?", "", box_field)
    match = re.fullmatch(r"items\[(\d+)\]\.?(\w*)(.*)", rest)
    if match is not None:
        index, member, _ = match.groups()
        line = int(index)
        code = ""
        if code_fields is not None and line < len(code_fields):
            code = code_fields[line]
        if origins is not None and line < len(origins):
            line = origins[line]
        if member == "imcParams" and code:
            return f"positions[{line}].{code}"
        return f"positions[{line}]" + (f".{_BACK.get(member, member)}" if member else "")
    head = rest.split(".")[0].split("[")[0]
    return {
        "taxationType": "taxSystem",
        "clientInfo": "agent.email",
        "payments": "payments",
        "total": "sum",
    }.get(head, rest or "order")
