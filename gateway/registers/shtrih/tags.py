"""Pure: the ФФД 1.2 tags a receipt carries beyond what FF46h and FF45h hold.

Document tags go with FF0Ch, item tags with FF4Dh right after their FF46h ([PROTO] FF0Ch p.46,
FF4Dh p.56). Tag numbers and types follow [FFD]: strings in cp1251, VLN money little-endian
in as few bytes as the value needs, a byte for 2108, STLV as the concatenation of its members.
"""

from __future__ import annotations

from gateway.domain import fiscal
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


def byte(tag: int, value: int) -> bytes:
    """A one-byte tag."""
    return codec.encode_tlv(tag, bytes((value,)))


def stlv(tag: int, *members: bytes) -> bytes:
    """A structured tag holding `members`."""
    return codec.encode_tlv(tag, b"".join(members))


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
    out.extend(operator_tags(receipt.operator))
    return out


def item_tags(item: fiscal.Item) -> list[bytes]:
    """Tags bound to one FF46h operation (FF4Dh). 2108 always: ФФД 1.2 requires it per item."""
    out = [byte(TAG_UNIT, item.measurement_unit)]
    if item.excise is not None:
        out.append(vln(TAG_EXCISE, item.excise))
    if item.country_code:
        out.append(text(TAG_COUNTRY, item.country_code))
    if item.customs_declaration:
        out.append(text(TAG_CUSTOMS_DECLARATION, item.customs_declaration))
    if item.additional_attribute:
        out.append(text(TAG_ITEM_ATTRIBUTE, item.additional_attribute))
    return out
