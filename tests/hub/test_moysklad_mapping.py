"""The pure МойСклад mapping: an order with positions -> the box's receipt task, checked by the
box's own parser; every refusal names the field in МойСклад's terms."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest

from gateway.hub.connectors.moysklad.errors import OrderRefused
from gateway.hub.connectors.moysklad.mapping import Profile, checked, shop_field, to_task

HREF = "https://api.moysklad.ru/api/remap/1.2/entity"


def position(
    name: str = "Чай", price: float = 10000.0, quantity: float = 1, vat: int = 20, **extra: Any
) -> dict[str, Any]:
    return {
        "quantity": quantity,
        "price": price,
        "discount": 0,
        "vat": vat,
        "vatEnabled": True,
        "assortment": {"meta": {"href": f"{HREF}/product/p1", "type": "product"}, "name": name},
        **extra,
    }


def order(**extra: Any) -> dict[str, Any]:
    return {
        "id": "o1",
        "vatEnabled": True,
        "vatIncluded": True,
        "taxSystem": "GENERAL_TAX_SYSTEM",
        "agent": {"name": "Покупатель", "email": "buyer@example.org", "phone": "+79990000000"},
        **extra,
    }


def refused(doc: dict[str, Any], positions: list[Any], profile: Profile | None = None) -> str:
    with pytest.raises(OrderRefused) as caught:
        checked(to_task(doc, positions, profile or Profile()), "u-1")
    return caught.value.field


def test_kopecks_discounts_vat_and_taxation_reach_the_receipt() -> None:
    lines = [
        position("Чай", 10000.0, 3, 20, discount=10),  # 3 × 100.00 less 10% = 270.00
        position("Доставка", 29900.0, 1, 0, vatEnabled=False),
        position(
            "Сахар 0,5 кг",
            4590.0,
            1.5,
            10,
            assortment={"meta": {"href": "x", "type": "variant"}, "name": "Сахар 0,5 кг"},
        ),
    ]
    lines[1]["assortment"] = {"meta": {"href": "x", "type": "service"}, "name": "Доставка"}
    task = to_task(order(sum=63785.0), lines, Profile())
    assert task["taxationType"] == "osn"
    assert task["clientInfo"] == {"emailOrPhone": "buyer@example.org"}
    tea, delivery, sugar = task["items"]
    assert (tea["price"], tea["quantity"], tea["amount"]) == (
        Decimal("100.00"),
        Decimal(3),
        Decimal("270.00"),
    )
    assert tea["tax"] == {"type": "vat20"}
    assert (delivery["tax"], delivery["paymentObject"]) == ({"type": "none"}, "service")
    assert (sugar["amount"], sugar["tax"]["type"]) == (Decimal("68.85"), "vat10")
    assert task["total"] == Decimal("637.85")
    assert task["payments"] == [{"type": "electronically", "sum": Decimal("637.85")}]
    request = checked(task, "u-1")  # the box's own parser takes it unchanged
    assert request[0]["items"][0]["amount"] == 270
    assert request[0]["total"] == 637.85


def test_vat_zero_with_vat_on_is_zero_percent_and_with_vat_off_no_vat() -> None:
    on = to_task(order(), [position(vat=0)], Profile())
    off = to_task(order(vatEnabled=False), [position(vat=20)], Profile())
    assert on["items"][0]["tax"] == {"type": "vat0"}
    assert off["items"][0]["tax"] == {"type": "none"}


def test_retail_demand_payments_and_the_default_taxation() -> None:
    doc = order(cashSum=5000.0, noCashSum=5000.0, taxSystem="TAX_SYSTEM_SAME_AS_GROUP")
    task = to_task(doc, [position()], Profile(taxation="usnIncome"))
    assert task["taxationType"] == "usnIncome"
    assert task["payments"] == [
        {"type": "cash", "sum": Decimal("50.00")},
        {"type": "electronically", "sum": Decimal("50.00")},
    ]
    checked(task, "u-2")


@pytest.mark.parametrize(
    ("doc", "lines", "field"),
    [
        (order(), [], "positions"),
        (order(), [position(vat=18)], "positions[0].vat"),
        (order(), [position(vat=12)], "positions[0].vat"),
        (order(vatIncluded=False), [position()], "vatIncluded"),
        (order(taxSystem="PRESUMPTIVE_TAX_SYSTEM"), [position()], "taxSystem"),
        (order(taxSystem=None), [position()], "taxSystem"),
        (order(), [position(discount=-5)], "positions[0].discount"),
        (order(), [position(price=100.5)], "positions[0].price"),
        (order(), [position(quantity=0)], "positions[0].quantity"),
        (order(), [position(trackingCodes=[{"cis": "010460"}])], "positions[0].trackingCodes"),
        (order(sum=1.0), [position()], "sum"),
        (order(), [position(name=" ")], "positions[0].assortment.name"),
        (
            order(),
            [{"quantity": 1, "price": 1, "vat": 0, "assortment": {}}],
            "positions[0].assortment",
        ),
    ],
)
def test_refusals_name_the_field(doc: dict[str, Any], lines: list[Any], field: str) -> None:
    if doc.get("taxSystem") is None:
        doc.pop("taxSystem", None)
    assert refused(doc, lines) == field


def test_marked_goods_without_codes_and_unknown_payment_items_are_refused_by_name() -> None:
    marked = position()
    marked["assortment"]["trackingType"] = "SHOES"
    assert refused(order(), [marked]) == "positions[0].trackingCodes"
    odd = position()
    odd["assortment"]["paymentItemType"] = "GAMBLING_BET"
    assert refused(order(), [odd]) == "positions[0].assortment.paymentItemType"


def test_the_box_parser_refusal_is_named_in_moysklad_terms() -> None:
    long_name = position(name="Я" * 300)
    assert refused(order(), [long_name]) == "positions[0].assortment.name"
    assert shop_field("request[0].items[2].amount") == "positions[2].price"
    assert shop_field("request[0].taxationType") == "taxSystem"


# Three packs of milk as scanned ([NG] #165 shape): GS (1Dh) before the check key.
CODES = [f"010460065310599021{serial}\x1d93Gk3{n}" for n, serial in enumerate("ABC")]


def marked(quantity: float = 3, codes: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    line = position("Молоко 3,2%", 4590.0, quantity, 10, discount=5, **extra)
    line["assortment"]["trackingType"] = "MILK"
    line["assortment"]["paymentItemType"] = "GOOD"
    if codes is not None:
        line["trackingCodes"] = [{"cis": c, "type": "trackingcode"} for c in codes]
    return line


def test_a_marked_position_becomes_one_line_per_code_summing_to_the_kopeck() -> None:
    tea = position()
    task = to_task(order(), [tea, marked(codes=CODES)], Profile())
    lines = task["items"][1:]
    assert len(lines) == 3
    # 3 × 45.90 less 5 % = 130.82: 43.61 + 43.61 + 43.60, the first lines a kopeck more.
    assert [line["amount"] for line in lines] == [
        Decimal("43.61"),
        Decimal("43.61"),
        Decimal("43.60"),
    ]
    assert sum(line["amount"] for line in lines) == Decimal("130.82")
    for line, code in zip(lines, CODES, strict=True):
        assert (line["quantity"], line["price"], line["paymentObject"]) == (1, Decimal("45.90"), 33)
        assert base64.b64decode(line["imcParams"]["imc"]) == code.encode()
        assert line["imcParams"]["itemEstimatedStatus"] == "itemPieceSold"
    assert task["total"] == Decimal("100.00") + Decimal("130.82")
    stored = checked(task, "u-m")
    assert "_positions" not in stored[0]
    assert [i.get("imcParams", {}).get("imcModeProcessing") for i in stored[0]["items"]] == [
        None,
        0,
        0,
        0,
    ]


def test_pos_marks_a_return_and_excise_goods() -> None:
    line = marked(quantity=2, marks=[{"cis": CODES[0]}, CODES[1]])
    line["assortment"]["paymentItemType"] = "EXCISABLE_GOOD"
    task = to_task(order(), [line], Profile(), "sellReturn")
    assert task["type"] == "sellReturn"
    assert {i["paymentObject"] for i in task["items"]} == {31}
    assert {i["imcParams"]["itemEstimatedStatus"] for i in task["items"]} == {"itemPieceReturn"}
    assert [base64.b64decode(i["imcParams"]["imc"]) for i in task["items"]] == [
        c.encode() for c in CODES[:2]
    ]
    checked(task, "u-r")


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        (marked(codes=CODES[:2]), "positions[1].trackingCodes", "3 pieces"),
        (
            marked(codes=[*CODES, "0104600653105990215xyz"]),
            "positions[1].trackingCodes",
            "4 marking",
        ),
        (marked(quantity=1.5, codes=CODES[:1]), "positions[1].quantity", "whole pieces"),
        (marked(codes=[CODES[0]] * 3), "positions[1].trackingCodes", "twice"),
        (marked(quantity=1, marks=["01\x0146"]), "positions[1].marks[0]", "as scanned"),
        (
            marked(quantity=1, trackingCodes=[{"cis": CODES[0], "type": "transportpack"}]),
            "positions[1].trackingCodes[0].type",
            "transport pack",
        ),
        (
            marked(quantity=1, trackingCodes=[{"cis": CODES[0]}], marks=[CODES[0]]),
            "positions[1].marks",
            "twice",
        ),
        (
            marked(quantity=1, trackingCodes=[{"cis": CODES[0], "type": "pallet"}]),
            "positions[1].trackingCodes[0].type",
            "unknown tracking code type 'pallet'",
        ),
        (
            marked(quantity=1, trackingCodes=[{"cis": CODES[0], "type": None}]),
            "positions[1].trackingCodes[0].type",
            "unknown tracking code type None",
        ),
    ],
)
def test_codes_that_do_not_fit_the_pieces_are_refused_naming_the_position(
    line: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(OrderRefused) as caught:
        checked(to_task(order(), [position(), line], Profile()), "u-x")
    assert caught.value.field == field
    assert words in caught.value.reason


def test_a_box_refusal_of_a_split_line_names_its_position() -> None:
    long_name = marked(codes=CODES)
    long_name["assortment"]["name"] = "Я" * 300
    task = to_task(order(), [position(), long_name], Profile())
    with pytest.raises(OrderRefused) as caught:
        checked(task, "u-n")
    assert caught.value.field == "positions[1].assortment.name"


def test_a_box_refusal_of_a_split_lines_code_names_marks_or_tracking_codes() -> None:
    # A bare EAN-13 is no marking code: the box refuses it, named as the shop sent it.
    pos = marked(quantity=2, marks=[CODES[0], "4600000000000"])
    with pytest.raises(OrderRefused) as caught:
        checked(to_task(order(), [position(), pos], Profile()), "u-p")
    assert caught.value.field.startswith("positions[1].marks[1]"), caught.value.field
    json_api = marked(codes=[CODES[0], CODES[1], "4600000000000"])
    with pytest.raises(OrderRefused) as caught:
        checked(to_task(order(), [json_api], Profile()), "u-j")
    assert caught.value.field.startswith("positions[0].trackingCodes[2]"), caught.value.field
    assert (
        shop_field("request[0].items[2].imcParams.imc", [0, 1, 1], ["", "marks[0]", "marks[1]"])
        == "positions[1].marks[1]"
    )


def test_the_same_code_in_two_positions_is_refused_naming_the_second() -> None:
    first = marked(quantity=1, codes=[CODES[0]])
    second = marked(quantity=2, marks=[CODES[1], CODES[0]])
    with pytest.raises(OrderRefused) as caught:
        to_task(order(), [first, second], Profile())
    assert caught.value.field == "positions[1].marks[1]"
    assert "positions[0].trackingCodes[0]" in caught.value.reason
