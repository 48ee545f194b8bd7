"""Pure: the ФФД 1.2 tags a receipt carries beyond what FF46h and FF45h hold.

Document tags go with FF0Ch, item tags with FF4Dh right after their FF46h ([PROTO] FF0Ch p.46,
FF4Dh p.56); on «кассовое ядро» firmware a marked line's tags go with FF4Dh before its FF67h
and FF46h ([NG] examples #42). Tag numbers and types follow [FFD]: strings in cp1251, VLN money
little-endian in as few bytes as the value needs, FVLN a decimal-point byte then a VLN, a byte
for 2108, STLV as the concatenation of its members.
"""

from __future__ import annotations

from gateway.domain import fiscal, marking
from gateway.registers.shtrih import codec

TAG_BUYER_CONTACT = 1008
TAG_PAYMENTS_ADDRESS = 1009
TAG_CASHIER = 1021
TAG_USER_ATTRIBUTE = 1084  # STLV: 1085 name, 1086 value
TAG_USER_ATTRIBUTE_NAME = 1085
TAG_USER_ATTRIBUTE_VALUE = 1086
TAG_PAYMENTS_PLACE = 1187
TAG_ITEM_ATTRIBUTE = 1191
TAG_RECEIPT_ATTRIBUTE = 1192
TAG_CASHIER_INN = 1203
TAG_BUYER_NAME = 1227
TAG_BUYER_INN = 1228
TAG_EXCISE = 1229
TAG_COUNTRY = 1230
TAG_CUSTOMS_DECLARATION = 1231
TAG_BUYER = 1256  # STLV: 1227 name, 1228 ИНН
TAG_UNIT = 2108
TAG_ITEM = 1059  # STLV: one receipt item, as the ФН archive keeps it
TAG_MARKING_CODE = 2000
TAG_CHECK_RESULT = 2106
TAG_QUANTITY = 1023  # FVLN
UNIT_PIECE = 0  # 2108 "шт." ([FFD])
TAG_ITEM_INDUSTRY = 1260  # STLV: 1262 ФОИВ, 1263 document date, 1264 its number, 1265 value
TAG_RECEIPT_INDUSTRY = 1261  # the same for the whole receipt
TAG_INDUSTRY_FOIV = 1262
TAG_INDUSTRY_DATE = 1263
TAG_INDUSTRY_NUMBER = 1264
TAG_INDUSTRY_VALUE = 1265
TAG_FRACTION = 1291  # STLV: 1293 numerator, 1294 denominator (VLN)
TAG_NUMERATOR = 1293
TAG_DENOMINATOR = 1294

# [PROTO] p.46: the FF0Ch/FF4Dh TLV block is at most 250 bytes; one tag per command keeps each
# well under it (the parser caps every text far below).


def text(tag: int, value: str) -> bytes:
    """A string tag in cp1251. The task parser refused anything outside cp1251 already, so an
    unencodable character here is a bug and raises instead of printing "?"."""
    return codec.encode_tlv(tag, value.encode("cp1251"))


def vln(tag: int, value: int) -> bytes:
    """A VLN (unsigned, little-endian, shortest) tag: money in kopecks."""
    size = max(1, (value.bit_length() + 7) // 8)
    return codec.encode_tlv(tag, value.to_bytes(size, "little"))


def fvln(tag: int, value: int, scale: int = 6) -> bytes:
    """An FVLN tag ([FFD]): the number of decimals, then the digits as a VLN. `value` is held
    ×10^scale (quantities ×10⁶); trailing zero decimals are dropped (0.357 -> 03 65 01)."""
    while scale > 0 and value % 10 == 0:
        value //= 10
        scale -= 1
    size = max(1, (value.bit_length() + 7) // 8)
    return codec.encode_tlv(tag, bytes((scale,)) + value.to_bytes(size, "little"))


def byte(tag: int, value: int) -> bytes:
    """A one-byte tag."""
    return codec.encode_tlv(tag, bytes((value,)))


def stlv(tag: int, *members: bytes) -> bytes:
    """A structured tag holding `members`."""
    return codec.encode_tlv(tag, b"".join(members))


def industry(tag: int, attribute: marking.IndustryAttribute) -> bytes:
    """1260 (an item's) or 1261 (the receipt's) industry attribute: 1262..1265 as strings."""
    return stlv(
        tag,
        text(TAG_INDUSTRY_FOIV, attribute.fois),
        text(TAG_INDUSTRY_DATE, attribute.document_date),
        text(TAG_INDUSTRY_NUMBER, attribute.document_number),
        text(TAG_INDUSTRY_VALUE, attribute.value),
    )


def fraction(numerator: int, denominator: int) -> bytes:
    """1291 fractional quantity: 1293 numerator, 1294 denominator."""
    return stlv(TAG_FRACTION, vln(TAG_NUMERATOR, numerator), vln(TAG_DENOMINATOR, denominator))


def fraction_quantity(numerator: int, denominator: int) -> int:
    """n/d of a piece as a quantity ×10⁶, rounded half-up: within the 10⁻⁶ the task parser
    allows between an item's quantity and its fraction (floor or ceiling both pass there)."""
    return (2 * numerator * fiscal.QTY_SCALE + denominator) // (2 * denominator)


def check_tags(code: marking.MarkingCode, quantity: int | None, unit: int | None) -> bytes:
    """The FF61h TLV of a code; one rule for a receipt's check and a task's check.

    - a measured code (2003 = 2 or 4): 2108 = `unit`, 1023 = `quantity` (×10⁶), both
      required;
    - a fractional piece code: 2108 = 0 (piece), 1023 = `quantity`, 1291 {1293 n, 1294 d}.
      A sale gives its line's quantity (the same 1023 the line carries); a task has no line,
      so n/d × 10⁶ rounded half-up (`fraction_quantity`) stands in. [JPOS] FSCheckMC asks for
      2108 and 1023 with any partial sale ("частичное выбытие"), so 2108 goes with the
      fraction too; 1291 per [JPOS] commands.xml;
    - a plain piece code: nothing, and no `quantity` or `unit` either.
    """
    if code.planned_status.measured:
        if quantity is None or unit is None:
            raise ValueError("a measured marking code is checked with its quantity and unit")
        return byte(TAG_UNIT, unit) + fvln(TAG_QUANTITY, quantity)
    if code.fraction is None:
        if quantity is not None or unit is not None:
            raise ValueError("quantity and unit go only with a measured or fractional code")
        return b""
    if unit not in (None, UNIT_PIECE):
        raise ValueError("a part of a piece is counted in pieces")
    num, den = code.fraction
    if quantity is None:
        quantity = fraction_quantity(num, den)
    return byte(TAG_UNIT, UNIT_PIECE) + fvln(TAG_QUANTITY, quantity) + fraction(num, den)


def operator_tags(operator: fiscal.Operator | None) -> list[bytes]:
    """1021 cashier and 1203 cashier ИНН."""
    if operator is None:
        return []
    out = [text(TAG_CASHIER, operator.name)]
    if operator.vatin:
        out.append(text(TAG_CASHIER_INN, operator.vatin))
    return out


def receipt_tags(receipt: fiscal.Receipt) -> list[bytes]:
    """Document tags of a receipt (FF0Ch), cashier included."""
    out: list[bytes] = []
    if receipt.client_contact:
        out.append(text(TAG_BUYER_CONTACT, receipt.client_contact))
    if receipt.buyer is not None:
        members = []
        if receipt.buyer.name:
            members.append(text(TAG_BUYER_NAME, receipt.buyer.name))
        if receipt.buyer.vatin:
            members.append(text(TAG_BUYER_INN, receipt.buyer.vatin))
        out.append(stlv(TAG_BUYER, *members))
    if receipt.payments_place:
        out.append(text(TAG_PAYMENTS_PLACE, receipt.payments_place))
    if receipt.payments_address:
        out.append(text(TAG_PAYMENTS_ADDRESS, receipt.payments_address))
    if receipt.additional_attribute:
        out.append(text(TAG_RECEIPT_ATTRIBUTE, receipt.additional_attribute))
    if receipt.user_attribute is not None:
        out.append(
            stlv(
                TAG_USER_ATTRIBUTE,
                text(TAG_USER_ATTRIBUTE_NAME, receipt.user_attribute.name),
                text(TAG_USER_ATTRIBUTE_VALUE, receipt.user_attribute.value),
            )
        )
    out.extend(industry(TAG_RECEIPT_INDUSTRY, a) for a in receipt.industry)
    out.extend(operator_tags(receipt.operator))
    return out


def item_tags(item: fiscal.Item) -> list[bytes]:
    """Tags bound to one FF46h operation (FF4Dh), 2108 first: ФФД 1.2 requires it per item,
    and «кассовое ядро» wants it before FF67h. 1260 per industry attribute; 1291 for part of a
    marked piece. The code itself goes with FF67h, from which the register builds 1163."""
    out = [byte(TAG_UNIT, item.measurement_unit)]
    if item.excise is not None:
        out.append(vln(TAG_EXCISE, item.excise))
    if item.country_code:
        out.append(text(TAG_COUNTRY, item.country_code))
    if item.customs_declaration:
        out.append(text(TAG_CUSTOMS_DECLARATION, item.customs_declaration))
    if item.additional_attribute:
        out.append(text(TAG_ITEM_ATTRIBUTE, item.additional_attribute))
    out.extend(industry(TAG_ITEM_INDUSTRY, a) for a in item.industry)
    if item.marking is not None and item.marking.fraction is not None:
        out.append(fraction(*item.marking.fraction))
    return out
