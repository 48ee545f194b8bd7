"""The ФФД tags the Shtrih driver sends with FF0Ch / FF4Dh, checked byte by byte.

Expected bytes are written by hand from the tag layout (tag u16 LE, length u16 LE, value) and
the tag types ([FFD]): strings in cp1251, VLN little-endian in the fewest bytes, STLV nesting.
"""

from __future__ import annotations

import pytest

from gateway.domain import fiscal
from gateway.registers.shtrih import tags


def item(**extra: object) -> fiscal.Item:
    """A 1 kg line of cheese."""
    base: dict[str, object] = {
        "name": "Сыр",
        "price": 50000,
        "quantity": 1_000_000,
        "amount": 50000,
        "vat": fiscal.Vat.VAT10,
        "measurement_unit": 11,
    }
    base.update(extra)
    return fiscal.Item(**base)  # type: ignore[arg-type]


def test_every_item_carries_its_unit() -> None:
    # 2108 = 0x083C, one byte: 11 (kilogram)
    assert tags.item_tags(item()) == [bytes.fromhex("3c08 0100 0b")]
    assert tags.item_tags(item(measurement_unit=0)) == [bytes.fromhex("3c08 0100 00")]


def test_item_requisites() -> None:
    out = tags.item_tags(
        item(
            excise=12050,  # 0x2F12 -> 12 2F
            country_code="250",
            customs_declaration="10702070/010120/0000001",
            additional_attribute="партия 7",
        )
    )
    assert out[1] == bytes.fromhex("cd04 0200 122f")  # 1229
    assert out[2] == bytes.fromhex("ce04 0300") + b"250"  # 1230
    assert out[3] == bytes.fromhex("cf04 1700") + b"10702070/010120/0000001"  # 1231
    assert out[4] == bytes.fromhex("a704 0800") + "партия 7".encode("cp1251")  # 1191


def test_receipt_requisites_in_order() -> None:
    receipt = fiscal.Receipt(
        type=fiscal.ReceiptType.SELL,
        taxation=fiscal.TaxationType.OSN,
        items=(item(),),
        payments=(fiscal.Payment(fiscal.PaymentType.CASH, 50000),),
        operator=fiscal.Operator("Иванова", "027406211109"),
        client_contact="+79990000000",
        buyer=fiscal.Buyer("ООО Ромашка", "7701234567"),
        payments_place="Магазин",
        payments_address="Москва",
        additional_attribute="A-17",
        user_attribute=fiscal.UserAttribute("Заказ", "42"),
    )
    buyer = (
        bytes.fromhex("cb04 0b00")  # 1227
        + "ООО Ромашка".encode("cp1251")
        + bytes.fromhex("cc04 0a00")  # 1228
        + b"7701234567"
    )
    attribute = bytes.fromhex("3d04 0500") + "Заказ".encode("cp1251")  # 1085
    attribute += bytes.fromhex("3e04 0200") + b"42"  # 1086
    assert tags.receipt_tags(receipt) == [
        bytes.fromhex("f003 0c00") + b"+79990000000",  # 1008
        bytes.fromhex("e804") + len(buyer).to_bytes(2, "little") + buyer,  # 1256
        bytes.fromhex("a304 0700") + "Магазин".encode("cp1251"),  # 1187
        bytes.fromhex("f103 0600") + "Москва".encode("cp1251"),  # 1009
        bytes.fromhex("a804 0400") + b"A-17",  # 1192
        bytes.fromhex("3c04") + len(attribute).to_bytes(2, "little") + attribute,  # 1084
        bytes.fromhex("fd03 0700") + "Иванова".encode("cp1251"),  # 1021
        bytes.fromhex("b304 0c00") + b"027406211109",  # 1203
    ]


def test_a_character_outside_cp1251_is_a_bug_not_a_question_mark() -> None:
    with pytest.raises(UnicodeEncodeError):
        tags.item_tags(item(additional_attribute="🎂"))
