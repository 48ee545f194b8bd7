"""ФФД TLV as the emulated ФН keeps it: parsing, building, the type of each tag, and where a
tag may go. Pure.

A TLV is tag (2 bytes), length (2 bytes), value, both numbers little-endian; an STLV's value is
its member TLVs one after another ([FFD] "Формат TLV"). [PROTO] FF0Ch p.46 and FF4Dh p.56 carry
such a block of at most 250 bytes.

Value types ([FFD] tables of tags): strings in cp1251; "VLN" money and counts little-endian in
as many bytes as given; "FVLN" quantity is one byte giving the number of digits after the point,
then the digits as a VLN (read back as a JSON number); Uint32 little-endian; UnixTime seconds
since 1970 as Uint32 (the ФН keeps the register's local time, so it is read back as a naive
local time); a byte tag is one byte; the ФПД 1077 is 6 bytes, the fiscal sign in the last four, most significant first
(UNSURE: how the two leading bytes are filled is not documented in [PROTO]; zeros here).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

# [PROTO] FF0Ch p.46 "мах 250 байт", FF4Dh p.56 "до 250 байт".
MAX_BLOCK = 250

_EPOCH = dt.datetime(1970, 1, 1)


class TlvError(ValueError):
    """A TLV block that does not parse: a header cut short or a length past the end."""


@dataclass(frozen=True, slots=True)
class Tlv:
    """One tag with its raw value; an STLV keeps its members packed in `value`."""

    tag: int
    value: bytes

    def encode(self) -> bytes:
        """Tag, length, value."""
        return encode(self.tag, self.value)


def encode(tag: int, value: bytes) -> bytes:
    """The bytes of one TLV."""
    if len(value) > 0xFFFF:
        raise ValueError(f"tag {tag}: {len(value)} bytes do not fit a TLV")
    return tag.to_bytes(2, "little") + len(value).to_bytes(2, "little") + value


def parse(data: bytes) -> tuple[Tlv, ...]:
    """Every TLV in `data`; TlvError when a header or a value runs past the end."""
    out: list[Tlv] = []
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise TlvError(f"TLV header cut short at byte {pos}")
        tag = int.from_bytes(data[pos : pos + 2], "little")
        length = int.from_bytes(data[pos + 2 : pos + 4], "little")
        end = pos + 4 + length
        if end > len(data):
            raise TlvError(f"tag {tag} claims {length} bytes, {len(data) - pos - 4} left")
        out.append(Tlv(tag, bytes(data[pos + 4 : end])))
        pos = end
    return tuple(out)


def join(tlvs: Iterable[Tlv]) -> bytes:
    """The TLVs one after another."""
    return b"".join(t.encode() for t in tlvs)


# --- building values ---------------------------------------------------------------------


def string(tag: int, text: str) -> Tlv:
    """A string tag (cp1251)."""
    return Tlv(tag, text.encode("cp1251", errors="replace"))


def vln(tag: int, value: int) -> Tlv:
    """A VLN tag: little-endian, as few bytes as the value needs (at least one)."""
    size = max(1, (value.bit_length() + 7) // 8)
    return Tlv(tag, value.to_bytes(size, "little"))


def uint32(tag: int, value: int) -> Tlv:
    """A Uint32 tag."""
    return Tlv(tag, value.to_bytes(4, "little"))


def byte(tag: int, value: int) -> Tlv:
    """A one-byte tag."""
    return Tlv(tag, bytes((value,)))


def unixtime(tag: int, moment: dt.datetime) -> Tlv:
    """A UnixTime tag of a naive local moment."""
    return uint32(tag, int((moment - _EPOCH).total_seconds()))


def fvln(tag: int, scaled: int, scale_digits: int) -> Tlv:
    """An FVLN tag of `scaled` / 10**scale_digits, with trailing zero digits dropped."""
    point = scale_digits
    while point > 0 and scaled % 10 == 0:
        scaled //= 10
        point -= 1
    size = max(1, (scaled.bit_length() + 7) // 8)
    return Tlv(tag, bytes((point,)) + scaled.to_bytes(size, "little"))


def stlv(tag: int, members: Iterable[Tlv]) -> Tlv:
    """A structured tag holding `members`."""
    return Tlv(tag, join(members))


def fiscal_sign_1077(sign: int) -> Tlv:
    """ФПД 1077: 6 bytes, the 32-bit fiscal sign in the last four (UNSURE, see the module)."""
    return Tlv(TAG_FISCAL_SIGN, b"\0\0" + sign.to_bytes(4, "big"))


# --- tag numbers [FFD] ------------------------------------------------------------------------

TAG_REGISTRATION_REPORT = 1
TAG_OPEN_SHIFT_REPORT = 2
TAG_RECEIPT = 3
TAG_CLOSE_SHIFT_REPORT = 5

TAG_BUYER_CONTACT = 1008
TAG_PAYMENTS_ADDRESS = 1009
TAG_DATETIME = 1012
TAG_USER_INN = 1018
TAG_TOTAL = 1020
TAG_CASHIER = 1021
TAG_QUANTITY = 1023
TAG_ITEM_NAME = 1030
TAG_CASH = 1031
TAG_REGISTRATION_NUMBER = 1037
TAG_SHIFT_NUMBER = 1038
TAG_FD_NUMBER = 1040
TAG_FN_NUMBER = 1041
TAG_RECEIPT_NUMBER = 1042
TAG_ITEM_SUM = 1043
TAG_USER_NAME = 1048
TAG_OPERATION = 1054
TAG_TAX_SYSTEM = 1055
TAG_ITEM = 1059
TAG_FISCAL_SIGN = 1077
TAG_PRICE = 1079
TAG_ELECTRONIC = 1081
TAG_USER_ATTRIBUTE = 1084
TAG_VAT20_SUM = 1102
TAG_VAT10_SUM = 1103
TAG_VAT0_TURNOVER = 1104
TAG_NO_VAT_TURNOVER = 1105
TAG_VAT120_SUM = 1106
TAG_VAT110_SUM = 1107
TAG_PAYMENTS_PLACE = 1187
TAG_VAT_RATE = 1199
TAG_ITEM_VAT = 1200
TAG_CASHIER_INN = 1203
TAG_PAYMENT_OBJECT = 1212
TAG_PAYMENT_METHOD = 1214
TAG_PREPAYMENT = 1215
TAG_CREDIT = 1216
TAG_COUNTER_PROVISION = 1217
TAG_BUYER = 1256
TAG_UNIT = 2108


class Kind(enum.Enum):
    """How a tag's value reads ([FFD] "Формат" column)."""

    STRING = "string"
    VLN = "vln"  # money in kopecks, counts
    FVLN = "fvln"  # quantity
    UINT32 = "uint32"
    UNIXTIME = "unixtime"
    BYTE = "byte"
    STLV = "stlv"
    SIGN = "sign"  # ФПД 1077
    BYTES = "bytes"  # raw bytes, shown in hex


_KINDS: dict[int, Kind] = {
    TAG_REGISTRATION_REPORT: Kind.STLV,
    TAG_OPEN_SHIFT_REPORT: Kind.STLV,
    TAG_RECEIPT: Kind.STLV,
    TAG_CLOSE_SHIFT_REPORT: Kind.STLV,
    TAG_DATETIME: Kind.UNIXTIME,
    TAG_FD_NUMBER: Kind.UINT32,
    TAG_SHIFT_NUMBER: Kind.UINT32,
    TAG_RECEIPT_NUMBER: Kind.UINT32,
    TAG_FISCAL_SIGN: Kind.SIGN,
    TAG_QUANTITY: Kind.FVLN,
    1162: Kind.BYTES,  # product code
    1163: Kind.BYTES,
    2000: Kind.BYTES,  # marking code
}
for _tag in (
    1008, 1009, 1016, 1017, 1018, 1021, 1026, 1030, 1037, 1041, 1044, 1046, 1048, 1060, 1073,
    1074, 1075, 1085, 1086, 1117, 1187, 1191, 1192, 1197, 1203, 1225, 1226, 1227, 1228, 1230,
    1231, 1262, 1263, 1264, 1265,
):  # fmt: skip
    _KINDS[_tag] = Kind.STRING
for _tag in (
    1020, 1031, 1043, 1079, 1081, 1102, 1103, 1104, 1105, 1106, 1107, 1200, 1215, 1216, 1217,
    1229, 1293, 1294,  # 1293/1294: numerator and denominator of 1291, VLN in [FFD]
):  # fmt: skip
    _KINDS[_tag] = Kind.VLN
for _tag in (1054, 1055, 1057, 1062, 1199, 1212, 1214, 1222, 2003, 2102, 2106, 2108):
    _KINDS[_tag] = Kind.BYTE
for _tag in (1059, 1084, 1174, 1223, 1224, 1256, 1260, 1261, 1291):
    _KINDS[_tag] = Kind.STLV
KINDS: Mapping[int, Kind] = MappingProxyType(_KINDS)


# --- where a tag may go ---------------------------------------------------------------------

# Tags the register builds itself from FF46h/FF45h and its own counters: a host cannot send
# them ([FFD]: "формируется ККТ"; [PROTO] FF46h p.53 and FF45h p.52 carry their values).
REGISTER_BUILT: frozenset[int] = frozenset(
    {
        TAG_DATETIME, TAG_USER_INN, TAG_TOTAL, TAG_CASH, TAG_REGISTRATION_NUMBER,
        TAG_SHIFT_NUMBER, TAG_FD_NUMBER, TAG_FN_NUMBER, TAG_RECEIPT_NUMBER, TAG_OPERATION,
        TAG_TAX_SYSTEM, TAG_ITEM, TAG_FISCAL_SIGN, TAG_ELECTRONIC, TAG_VAT20_SUM, TAG_VAT10_SUM,
        TAG_VAT0_TURNOVER, TAG_NO_VAT_TURNOVER, TAG_VAT120_SUM, TAG_VAT110_SUM, TAG_PREPAYMENT,
        TAG_CREDIT, TAG_COUNTER_PROVISION,
    }
)  # fmt: skip

# Tags of an item (members of STLV 1059 in [FFD] ФФД 1.2): FF4Dh binds them to the last FF46h
# ([PROTO] p.56); FF0Ch, which is for the document, refuses them.
ITEM_ONLY: frozenset[int] = frozenset(
    {
        TAG_ITEM_NAME, TAG_PRICE, TAG_QUANTITY, TAG_ITEM_SUM, TAG_VAT_RATE, TAG_ITEM_VAT,
        TAG_PAYMENT_OBJECT, TAG_PAYMENT_METHOD, TAG_UNIT, 1162, 1163, 1191, 1197, 1222, 1226,
        1229, 1230, 1231, 1260, 1291, 2000,
    }
)  # fmt: skip

# Tags of the document only: FF4Dh, bound to one item, refuses them.
DOCUMENT_ONLY: frozenset[int] = REGISTER_BUILT | frozenset(
    {
        TAG_BUYER_CONTACT, TAG_PAYMENTS_ADDRESS, TAG_CASHIER, TAG_USER_NAME, TAG_USER_ATTRIBUTE,
        TAG_PAYMENTS_PLACE, 1057, 1060, 1117, 1192, TAG_CASHIER_INN, 1227, 1228, TAG_BUYER, 1261,
    }
)  # fmt: skip


# --- reading values back (paper tape) --------------------------------------------------------


def value_of(item: Tlv) -> Any:
    """The JSON value of a tag by its [FFD] type; an unknown tag or a bad value as hex text."""
    kind = KINDS.get(item.tag, Kind.BYTES)
    raw = item.value
    try:
        if kind is Kind.STRING:
            return raw.decode("cp1251")
        if kind is Kind.VLN:
            return int.from_bytes(raw, "little")
        if kind is Kind.UINT32:
            if len(raw) != 4:
                raise ValueError
            return int.from_bytes(raw, "little")
        if kind is Kind.BYTE:
            if len(raw) != 1:
                raise ValueError
            return raw[0]
        if kind is Kind.UNIXTIME:
            if len(raw) != 4:
                raise ValueError
            return (_EPOCH + dt.timedelta(seconds=int.from_bytes(raw, "little"))).isoformat()
        if kind is Kind.FVLN:
            if not raw:
                raise ValueError
            # A JSON number: whole quantities as integers, others as the nearest float (six
            # digits after the point at most, [PROTO] FF46h p.53, so the float reads back exact).
            quantity = Decimal(int.from_bytes(raw[1:], "little")).scaleb(-raw[0])
            return int(quantity) if quantity == quantity.to_integral_value() else float(quantity)
        if kind is Kind.SIGN:
            if len(raw) != 6:
                raise ValueError
            return int.from_bytes(raw[2:], "big")
        if kind is Kind.STLV:
            return tags_json(parse(raw))
    except (ValueError, UnicodeDecodeError):
        pass
    return raw.hex()


def tags_json(tlvs: Iterable[Tlv]) -> dict[str, Any]:
    """Tag number as a string -> its value; a tag that repeats becomes a list of its values."""
    out: dict[str, Any] = {}
    for item in tlvs:
        key = str(item.tag)
        value = value_of(item)
        if key not in out:
            out[key] = value
        elif isinstance(out[key], list):  # no tag's own value is a list
            out[key].append(value)
        else:
            out[key] = [out[key], value]
    return out
