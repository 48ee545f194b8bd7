"""Pure: the `items` of a receipt task -> `fiscal.Item`s, each position checked field by field.

A position's fields are read in order (`name, price, quantity, amount, tax`, then the optional
ones); its sum is checked against price × quantity as the register checks it (`amounts.py`).
Text, barcode and picture items are refused: nothing non-fiscal is printed. A marked item's
`imcParams` and any item's `industryInfo` are read in `imc.py`, against the finished line.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Final

from gateway.atol import limits, names
from gateway.atol import values as v
from gateway.atol.amounts import check_not_above, check_printable
from gateway.atol.imc import industry_info, marking_code
from gateway.atol.names import NameMapping
from gateway.atol.tasks import format_money
from gateway.domain import fiscal
from gateway.domain.errors import ValidationError

# Every member a position may have; any other is refused by name, so nothing is dropped.
_POSITION_FIELDS: Final = frozenset(
    {
        "type",
        "name",
        "price",
        "quantity",
        "amount",
        "tax",
        "paymentMethod",
        "paymentObject",
        "measurementUnit",
        "department",
        "exciseSum",
        "countryCode",
        "customsDeclaration",
        "additionalAttribute",
        "imcParams",
        "industryInfo",
    }
)
# Known ATOL members of a position that change the fiscal document but cannot be carried yet.
_REFUSED_ITEM_FIELDS: Final = {
    "markingCode": "markingCode is the ФФД 1.05 form; send the marking code in imcParams "
    "{imc (base64), itemEstimatedStatus}",
    "nomenclatureCode": "tag 1162 is the ФФД 1.05 form; send the marking code in imcParams, "
    "the register builds the product code from it",
    "productCodes": "product codes (tag 1163) are not supported yet; for marked goods send "
    "the marking code in imcParams, the register builds 1163 from it",
    "agentInfo": "agent data (tags 1222, 1223…) is not supported yet",
    "supplierInfo": "supplier data (tag 1224) is not supported yet",
}
_REFUSED_ITEM_TYPES: Final = {
    "text": "text lines are not printed by this gateway; remove the item",
    "barcode": "barcodes are not printed by this gateway; remove the item",
    "pictureFromMemory": "pictures are not printed by this gateway; remove the item",
    "pixels": "pictures are not printed by this gateway; remove the item",
    "userAttribute": "give the user attribute as the receipt's userAttribute {name, value}",
}
_COUNTRY_CODE = re.compile(r"[0-9]{3}")


def parse_items(
    value: object,
    path: str,
    mapping: NameMapping,
    *,
    receipt_type: fiscal.ReceiptType,
    strict_marking: bool,
) -> tuple[fiscal.Item, ...]:
    """The fiscal lines of `items` of a `receipt_type` receipt; `strict_marking`: the receipt's
    `validateMarkingCodes`, every marked item's code must be confirmed by the ОИСМ."""
    raw = v.array(value, path)
    if len(raw) > limits.MAX_ITEMS:
        raise ValidationError(path, f"more than {limits.MAX_ITEMS} items")
    items: list[fiscal.Item] = []
    codes: dict[bytes, int] = {}  # each code's first item
    for i, entry in enumerate(raw):
        where = v.idx(path, i)
        members = v.obj(entry, where)
        kind = v.required(members, "type", where)
        if not isinstance(kind, str):
            raise ValidationError(v.key(where, "type"), "must be a string")
        if kind == "position":
            item = _marked(
                _position(members, where, mapping),
                members,
                where,
                mapping,
                receipt_type,
                strict_marking,
            )
            if item.marking is not None:
                first = codes.setdefault(item.marking.code, i)
                if first != i:
                    raise ValidationError(
                        v.key(where, "imcParams.imc"),
                        f"the same marking code as {v.idx(path, first)}: one code is one pack",
                    )
            items.append(item)
        elif kind in _REFUSED_ITEM_TYPES:
            raise ValidationError(v.key(where, "type"), _REFUSED_ITEM_TYPES[kind])
        else:
            raise ValidationError(v.key(where, "type"), f"item type {kind!r} is not supported")
    if not items:
        raise ValidationError(path, "must contain at least one position")
    return tuple(items)


def _position(members: dict[str, object], path: str, mapping: NameMapping) -> fiscal.Item:
    """One `{"type": "position"}` item."""
    v.check_members(members, path, _POSITION_FIELDS, _REFUSED_ITEM_FIELDS)
    name = v.text(
        v.required(members, "name", path), v.key(path, "name"), limits.MAX_NAME_CHARS, mapping
    )
    price = v.money(v.required(members, "price", path), v.key(path, "price"))
    quantity = v.quantity(v.required(members, "quantity", path), v.key(path, "quantity"))
    amount_path = v.key(path, "amount")
    amount = v.money(v.required(members, "amount", path), amount_path)
    check_not_above(price, quantity, amount, amount_path)
    tax = v.obj(v.required(members, "tax", path), v.key(path, "tax"))
    v.check_members(tax, v.key(path, "tax"), frozenset({"type", "sum"}), {})
    vat = v.lookup(
        v.required(tax, "type", v.key(path, "tax")),
        v.key(path, "tax.type"),
        names.VATS_AND_BARE_RATES,
        mapping.vat,
        "VAT rate",
        names.VATS,
    )
    tax_sum: int | None = None
    if tax.get("sum") is not None:
        tax_sum = v.money(tax["sum"], v.key(path, "tax.sum"))
        expected = vat.tax_of(amount)
        if abs(tax_sum - expected) > 1:
            raise ValidationError(
                v.key(path, "tax.sum"),
                f"does not match the {vat.value} VAT of the amount ({format_money(expected)})",
            )
    item = fiscal.Item(
        name=name,
        price=price,
        quantity=quantity,
        amount=amount,
        vat=vat,
        payment_method=_payment_method(members, path),
        payment_object=_payment_object(members, path),
        measurement_unit=_unit(members, path, mapping),
        department=_department(members, path, mapping),
        tax_sum=tax_sum,
        excise=_excise(members, path, mapping),
        country_code=_country_code(members, path, mapping),
        customs_declaration=v.optional_text(
            members, "customsDeclaration", path, limits.MAX_CUSTOMS_CHARS, mapping
        ),
        additional_attribute=v.optional_text(
            members, "additionalAttribute", path, limits.MAX_ITEM_ATTRIBUTE_CHARS, mapping
        ),
    )
    check_printable(item, amount_path)
    return item


def _payment_method(members: dict[str, object], path: str) -> fiscal.PaymentMethod:
    """`paymentMethod`: an ATOL name or the [FFD] tag 1214 code; full payment by default."""
    raw = members.get("paymentMethod")
    if raw is None:
        return fiscal.PaymentMethod.FULL_PAYMENT
    where = v.key(path, "paymentMethod")
    if isinstance(raw, str):
        return v.lookup(raw, where, names.PAYMENT_METHODS, {}, "payment method")
    return fiscal.PaymentMethod(v.code(raw, where, range(1, 8)))


def _payment_object(members: dict[str, object], path: str) -> int:
    """`paymentObject`: an ATOL name or the [FFD] tag 1212 code; 1 (commodity) by default."""
    raw = members.get("paymentObject")
    if raw is None:
        return 1
    where = v.key(path, "paymentObject")
    if isinstance(raw, str):
        code = v.lookup(raw, where, names.PAYMENT_OBJECTS, {}, "payment object")
    else:
        code = v.code(raw, where, range(1, names.MAX_PAYMENT_OBJECT + 1))
        if code not in names.PAYMENT_OBJECT_CODES:
            raise ValidationError(where, f"payment object {code} does not exist in ФФД 1.2")
    return code


def _marked(
    item: fiscal.Item,
    members: dict[str, object],
    path: str,
    mapping: NameMapping,
    kind: fiscal.ReceiptType,
    strict: bool,
) -> fiscal.Item:
    """`item` with its `imcParams` (tag 2000 and its check) and `industryInfo` (1260)."""
    raw = members.get("imcParams")
    marked = item.payment_object in names.MARKED_OBJECTS
    if not v.given(raw):
        if marked:
            v.carried(mapping, "items.imcParams", v.key(path, "paymentObject"))
            raise ValidationError(
                v.key(path, "paymentObject"),
                f"payment object {item.payment_object} is marked goods: give the item's "
                "marking code in imcParams {imc (base64), itemEstimatedStatus}",
            )
        code = None
    else:
        code = marking_code(raw, path, item=item, kind=kind, strict=strict, mapping=mapping)
    industry = industry_info(
        members.get("industryInfo"),
        v.key(path, "industryInfo"),
        mapping,
        carried_as="items.industryInfo",
    )
    if code is None and not industry:
        return item
    return dataclasses.replace(item, marking=code, industry=industry)


def _unit(members: dict[str, object], path: str, mapping: NameMapping) -> int:
    """`measurementUnit`: an ATOL or CRM name, or the [FFD] tag 2108 code; pieces by default."""
    raw = members.get("measurementUnit")
    if raw is None:
        return 0
    where = v.key(path, "measurementUnit")
    v.carried(mapping, "items.measurementUnit", where)
    if isinstance(raw, str):
        return v.lookup(raw, where, names.UNITS, mapping.units, "measurement unit")
    return v.code(raw, where, names.UNIT_CODES)


def _department(members: dict[str, object], path: str, mapping: NameMapping) -> int:
    """`department`: 1 by default."""
    raw = members.get("department")
    if raw is None:
        return 1
    where = v.key(path, "department")
    v.carried(mapping, "items.department", where)
    return v.code(raw, where, range(1, limits.MAX_DEPARTMENT + 1))


def _excise(members: dict[str, object], path: str, mapping: NameMapping) -> int | None:
    """`exciseSum` ([FFD] tag 1229)."""
    raw = members.get("exciseSum")
    if raw is None:
        return None
    where = v.key(path, "exciseSum")
    v.carried(mapping, "items.exciseSum", where)
    return v.money(raw, where)


def _country_code(members: dict[str, object], path: str, mapping: NameMapping) -> str | None:
    """`countryCode` ([FFD] tag 1230): the 3-digit ОКСМ code."""
    country = v.optional_text(members, "countryCode", path, 3, mapping)
    if country is not None and not _COUNTRY_CODE.fullmatch(country):
        raise ValidationError(
            v.key(path, "countryCode"), 'must be the 3-digit ОКСМ country code, e.g. "643"'
        )
    return country
