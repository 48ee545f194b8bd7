"""Pure: one ATOL receipt task (sell, sellReturn, buy, buyReturn) -> `fiscal.Receipt`.

Fields are read in a fixed order, `type, taxationType, electronically, operator, clientInfo,
paymentsPlace, paymentsAddress, additionalAttribute, userAttribute, industryInfo,
validateMarkingCodes, items, payments`, after
unknown and refused members; then the checks that span fields (total, payments against the
total, change, taxes). Every field is carried into the fiscal document or refused by name.
"""

from __future__ import annotations

import re
from typing import Final

from gateway.atol import limits, names
from gateway.atol import values as v
from gateway.atol.imc import industry_info
from gateway.atol.names import NameMapping
from gateway.atol.positions import parse_items
from gateway.atol.tasks import ReceiptTask, format_money
from gateway.domain import fiscal
from gateway.domain.errors import ValidationError

# Every member a receipt task may have. A member outside this list (or the lists below) is
# refused by name: nothing a client sends is dropped on the way to the fiscal document.
_RECEIPT_FIELDS: Final = frozenset(
    {
        "type",
        "taxationType",
        "electronically",
        "ignoreNonFiscalPrintErrors",
        "operator",
        "clientInfo",
        "paymentsPlace",
        "paymentsAddress",
        "additionalAttribute",
        "userAttribute",
        "industryInfo",
        "validateMarkingCodes",
        "items",
        "payments",
        "taxes",
        "total",
    }
)
# Known ATOL members that change the fiscal document but cannot be carried yet.
_REFUSED_RECEIPT_FIELDS: Final = {
    "agentInfo": "agent data (tags 1057, 1223…) is not supported yet",
    "supplierInfo": "supplier data (tags 1224…) is not supported yet",
    "operatingInfo": "operational requisites (tag 1270) are not supported yet",
    "companyInfo": "the register sends its own registration data; companyInfo is not supported",
    "preItems": "printing text before the receipt is not supported; remove preItems",
    "postItems": "printing text after the receipt is not supported; remove postItems",
}
_CLIENT_FIELDS: Final = frozenset({"emailOrPhone", "name", "vatin"})
_REFUSED_CLIENT_FIELDS: Final = {
    key: "buyer identity documents, birth date, citizenship and address are not supported yet"
    for key in (
        "birthDate",
        "citizenship",
        "identityDocumentCode",
        "identityDocumentData",
        "address",
    )
}
_VATIN = re.compile(r"[0-9]{10}|[0-9]{12}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+[0-9]{10,15}")
_PHONE_PUNCTUATION = re.compile(r"[\s()-]")


def receipt_task(
    task: dict[str, object],
    path: str,
    kind: fiscal.ReceiptType,
    mapping: NameMapping,
    job_id: str | None,
) -> ReceiptTask:
    """A receipt task: fields in a fixed order, then the checks spanning fields."""
    v.check_members(task, path, _RECEIPT_FIELDS, _REFUSED_RECEIPT_FIELDS)
    taxation: fiscal.TaxationType | None = None
    raw_taxation = task.get("taxationType")
    if raw_taxation is not None:
        taxation = v.lookup(
            raw_taxation, v.key(path, "taxationType"), names.TAXATION, {}, "taxation type"
        )
    electronically = v.flag(task, "electronically", path)
    if electronically:
        v.carried(mapping, "electronically", v.key(path, "electronically"))
    v.flag(task, "ignoreNonFiscalPrintErrors", path)  # nothing non-fiscal is printed
    operator = parse_operator(task.get("operator"), v.key(path, "operator"), mapping)
    if operator is not None:
        v.carried(mapping, "operator", v.key(path, "operator"))
    contact, buyer = _client_info(task.get("clientInfo"), v.key(path, "clientInfo"), mapping)
    if electronically and contact is None:
        raise ValidationError(
            v.key(path, "clientInfo.emailOrPhone"), "required when electronically is true"
        )
    place = v.optional_text(task, "paymentsPlace", path, limits.MAX_PLACE_CHARS, mapping)
    address = v.optional_text(task, "paymentsAddress", path, limits.MAX_ADDRESS_CHARS, mapping)
    attribute = v.optional_text(
        task, "additionalAttribute", path, limits.MAX_RECEIPT_ATTRIBUTE_CHARS, mapping
    )
    user_attribute = _user_attribute(
        task.get("userAttribute"), v.key(path, "userAttribute"), mapping
    )
    industry = industry_info(
        task.get("industryInfo"), v.key(path, "industryInfo"), mapping, carried_as="industryInfo"
    )
    # [ATOLJS]: with validateMarkingCodes the sale needs the ОИСМ's confirmation of every code;
    # without it a code the ОИСМ could not be asked about is sold and reported later. The
    # box's `marking.strict` asks it of every receipt.
    strict = v.flag(task, "validateMarkingCodes", path) or mapping.marking_strict
    items = parse_items(
        task.get("items"), v.key(path, "items"), mapping, receipt_type=kind, strict_marking=strict
    )
    payments = _payments(task.get("payments"), v.key(path, "payments"), mapping)
    receipt = fiscal.Receipt(
        type=kind,
        taxation=taxation,
        items=items,
        payments=payments,
        operator=operator,
        client_contact=contact,
        buyer=buyer,
        electronically=electronically,
        payments_place=place,
        payments_address=address,
        additional_attribute=attribute,
        user_attribute=user_attribute,
        industry=industry,
        job_id=job_id,
    )
    _check_sums(task, path, receipt)
    _check_taxes(task.get("taxes"), v.key(path, "taxes"), receipt, mapping)
    return ReceiptTask(receipt)


def parse_operator(value: object, path: str, mapping: NameMapping) -> fiscal.Operator | None:
    """`operator{name, vatin}`: the cashier, [FFD] tags 1021 and 1203."""
    if value is None:
        return None
    members = v.obj(value, path)
    v.check_members(members, path, frozenset({"name", "vatin"}), {})
    name = v.text(
        v.required(members, "name", path),
        v.key(path, "name"),
        limits.MAX_OPERATOR_CHARS,
        mapping,
    )
    vatin = members.get("vatin")
    if vatin is None or vatin == "":
        return fiscal.Operator(name)
    if not isinstance(vatin, str) or not _VATIN.fullmatch(vatin):
        raise ValidationError(v.key(path, "vatin"), "must be 10 or 12 digits")
    return fiscal.Operator(name, vatin)


def _client_info(
    value: object, path: str, mapping: NameMapping
) -> tuple[str | None, fiscal.Buyer | None]:
    """`clientInfo`: emailOrPhone ([FFD] tag 1008), name and vatin (1227/1228 in STLV 1256)."""
    if value is None:
        return None, None
    members = v.obj(value, path)
    v.check_members(members, path, _CLIENT_FIELDS, _REFUSED_CLIENT_FIELDS)
    contact = _client_contact(members.get("emailOrPhone"), v.key(path, "emailOrPhone"))
    if contact is not None:
        v.carried(mapping, "clientInfo.emailOrPhone", v.key(path, "emailOrPhone"))
    name = v.optional_text(members, "name", path, limits.MAX_BUYER_CHARS, mapping)
    if name is not None:
        v.carried(mapping, "clientInfo.name", v.key(path, "name"))
    vatin: str | None = None
    raw_vatin = members.get("vatin")
    if v.given(raw_vatin):
        where = v.key(path, "vatin")
        v.carried(mapping, "clientInfo.vatin", where)
        if not isinstance(raw_vatin, str) or not _VATIN.fullmatch(raw_vatin):
            raise ValidationError(where, "must be 10 or 12 digits")
        vatin = raw_vatin
    buyer = fiscal.Buyer(name, vatin) if name is not None or vatin is not None else None
    return contact, buyer


def _client_contact(raw: object, where: str) -> str | None:
    """An e-mail, or a phone as +digits ([FFD] tag 1008)."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationError(where, "must be a string")
    contact = raw.strip()
    if not contact:
        return None
    # The e-mail pattern lets any non-space through, NUL included; the ФН stores it as text.
    problem = names.text_problem(contact, None)
    if problem is not None:
        raise ValidationError(where, problem)
    if "@" in contact:
        if len(contact) > limits.MAX_CONTACT_CHARS or not _EMAIL.fullmatch(contact):
            raise ValidationError(where, "not an e-mail address like name@example.com")
        return contact
    phone = _PHONE_PUNCTUATION.sub("", contact)
    if not _PHONE.fullmatch(phone):
        raise ValidationError(where, "not an e-mail address or a phone number like +79991234567")
    return phone


def _user_attribute(value: object, path: str, mapping: NameMapping) -> fiscal.UserAttribute | None:
    """`userAttribute{name, value}`: [FFD] STLV 1084 with 1085 and 1086."""
    if not v.given(value):
        return None
    v.carried(mapping, "userAttribute", path)
    members = v.obj(value, path)
    v.check_members(members, path, frozenset({"name", "value"}), {})
    name = v.text(
        v.required(members, "name", path),
        v.key(path, "name"),
        limits.MAX_USER_ATTRIBUTE_NAME_CHARS,
        mapping,
    )
    text = v.text(
        v.required(members, "value", path),
        v.key(path, "value"),
        limits.MAX_USER_ATTRIBUTE_VALUE_CHARS,
        mapping,
    )
    return fiscal.UserAttribute(name, text)


def _payments(value: object, path: str, mapping: NameMapping) -> tuple[fiscal.Payment, ...]:
    """`payments[{type, sum}]`; may be empty only when the total is zero (checked later)."""
    raw = v.array(value, path)
    if len(raw) > limits.MAX_PAYMENTS:
        raise ValidationError(path, f"more than {limits.MAX_PAYMENTS} payments")
    payments: list[fiscal.Payment] = []
    for i, entry in enumerate(raw):
        where = v.idx(path, i)
        members = v.obj(entry, where)
        v.check_members(members, where, frozenset({"type", "sum"}), {})
        kind = v.lookup(
            v.required(members, "type", where),
            v.key(where, "type"),
            names.PAYMENT_TYPES,
            mapping.payment_types,
            "payment type",
        )
        amount = v.money(v.required(members, "sum", where), v.key(where, "sum"), positive=True)
        payments.append(fiscal.Payment(kind, amount))
    return tuple(payments)


def _check_sums(task: dict[str, object], path: str, receipt: fiscal.Receipt) -> None:
    """Receipt total, payments against the total, change only from cash."""
    total = receipt.total
    if total > limits.MAX_MONEY:
        raise ValidationError(
            v.key(path, "items"),
            f"the receipt total is too large (at most {format_money(limits.MAX_MONEY)})",
        )
    if task.get("total") is not None:
        given = v.money(task.get("total"), v.key(path, "total"))
        if given != total:
            raise ValidationError(
                v.key(path, "total"),
                f"does not match the sum of the items ({format_money(total)})",
            )
    payments_path = v.key(path, "payments")
    paid = receipt.paid
    if paid > limits.MAX_MONEY:
        raise ValidationError(
            payments_path, f"too large in sum (at most {format_money(limits.MAX_MONEY)})"
        )
    if paid < total:
        raise ValidationError(
            payments_path,
            f"{format_money(paid)} paid is less than the total {format_money(total)}",
        )
    non_cash = sum(p.sum for p in receipt.payments if p.type is not fiscal.PaymentType.CASH)
    if non_cash > total:
        raise ValidationError(
            payments_path,
            f"non-cash payments {format_money(non_cash)} exceed the total {format_money(total)}; "
            "change can only be given from cash",
        )


def _check_taxes(value: object, path: str, receipt: fiscal.Receipt, mapping: NameMapping) -> None:
    """`taxes[{type, sum}]`: each rate's sum must be the VAT the register computes (±1 kopeck).

    The register computes the receipt's VAT sums itself (tags 1102–1107); a client's own figure
    that differs would be silently replaced, so it is refused instead.
    """
    if not v.given(value):
        return
    computed = receipt.vat_sums()
    seen: set[fiscal.Vat] = set()
    for i, entry in enumerate(v.array(value, path)):
        where = v.idx(path, i)
        members = v.obj(entry, where)
        v.check_members(members, where, frozenset({"type", "sum"}), {})
        vat = v.lookup(
            v.required(members, "type", where),
            v.key(where, "type"),
            names.VATS_AND_BARE_RATES,
            mapping.vat,
            "VAT rate",
            names.VATS,
        )
        if vat in seen:
            raise ValidationError(v.key(where, "type"), f"{vat.value} is given twice")
        seen.add(vat)
        given = v.money(v.required(members, "sum", where), v.key(where, "sum"))
        if vat not in computed:
            raise ValidationError(v.key(where, "type"), f"no position has VAT rate {vat.value}")
        if abs(given - computed[vat]) > 1:
            raise ValidationError(
                v.key(where, "sum"),
                f"does not match the VAT the register computes for {vat.value} "
                f"({format_money(computed[vat])})",
            )
