"""ATOL Online v5 bodies with marked goods -> the box's receipt task, checked by the box's own
parser; every refusal names the field in ATOL Online's terms."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.atol.tasks import ReceiptTask
from gateway.domain.errors import ValidationError
from gateway.domain.fiscal import QTY_SCALE, Receipt
from gateway.domain.marking import MarkingPolicy, PlannedStatus
from gateway.hub.connectors.atol_online.errors import AtolCode, AtolError
from gateway.hub.connectors.atol_online.wire import client_field, to_task
from tests.hub.support import atol_sell

# A tobacco pack's code as scanned ([NG] #145) and a dairy GS1 code with its GS ([NG] #165).
SHORT = b"04606203103348a3=EfODAB=UpGbL"
GS1M = b"0104600653105990215" + b"2CUnq\x1d93Gk30"


def b64(code: bytes) -> str:
    return base64.b64encode(code).decode("ascii")


def body(operation: str = "sell", **item: Any) -> dict[str, Any]:
    doc = atol_sell("order-1", "Молоко 3,2%", price=95)
    line = doc["receipt"]["items"][0]
    line.update({"payment_object": 33, **item})
    doc["receipt"]["total"] = line["sum"]
    doc["receipt"]["payments"][0]["sum"] = line["sum"]
    return doc


def parse(operation: str, doc: dict[str, Any]) -> Receipt:
    """The receipt as the box would print it; AtolError / the field as the client named it."""
    task = to_task(operation, doc["receipt"])
    try:
        parsed = parse_request(json.dumps({"uuid": "u-1", "request": [task]}), NameMapping())
    except ValidationError as err:
        raise AtolError(AtolCode.INVALID_BODY, err.reason, field=client_field(err.field)) from None
    task = parsed.tasks[0]
    assert isinstance(task, ReceiptTask)
    return task.receipt


def field_of(operation: str, doc: dict[str, Any]) -> str:
    with pytest.raises(AtolError) as caught:
        parse(operation, doc)
    return caught.value.field


def test_gs1m_becomes_the_items_code_with_its_planned_status() -> None:
    doc = body(mark_code={"gs1m": b64(GS1M)}, mark_processing_mode="0")
    receipt = parse("sell", doc)
    code = receipt.items[0].marking
    assert code.code == GS1M
    assert code.planned_status is PlannedStatus.PIECE_SOLD
    assert code.processing_mode == 0
    assert code.policy is MarkingPolicy.OFFLINE_OK
    assert receipt.items[0].payment_object == 33


def test_a_short_tobacco_code_in_a_refund_is_returned() -> None:
    doc = body(mark_code={"short": b64(SHORT)}, payment_object=31)
    receipt = parse("sell_refund", doc)
    assert receipt.items[0].marking.code == SHORT
    assert receipt.items[0].marking.planned_status is PlannedStatus.PIECE_RETURNED
    assert receipt.items[0].payment_object == 31


def test_mark_quantity_is_the_fraction_of_the_pack() -> None:
    doc = body(
        mark_code={"gs1m": b64(GS1M)},
        mark_quantity={"numerator": 1, "denominator": 4},
        quantity=0.25,
        sum=23.75,
    )
    item = parse("sell", doc).items[0]
    assert item.marking.fraction == (1, 4)
    assert item.quantity == QTY_SCALE // 4


def test_a_weighed_marked_item_is_measured() -> None:
    doc = body(mark_code={"gs1m": b64(GS1M)}, measure=11, quantity=0.5, sum=47.5)
    item = parse("sell", doc).items[0]
    assert item.marking.planned_status is PlannedStatus.MEASURED_SOLD
    assert item.measurement_unit == 11


def test_sectoral_props_are_the_industry_requisites() -> None:
    doc = body(
        mark_code={"gs1m": b64(GS1M)},
        sectoral_item_props=[
            {
                "federal_id": "030",
                "date": "21.11.2023",
                "number": "1944",
                "value": "UUID=7f1c&Time=1764800000000",
            }
        ],
    )
    doc["receipt"]["sectoral_check_props"] = [
        {"federal_id": "030", "date": "21.11.2023", "number": "1944", "value": "mode=horeca"}
    ]
    receipt = parse("sell", doc)
    [attribute] = receipt.items[0].industry
    assert (attribute.fois, attribute.document_date, attribute.document_number) == (
        "030",
        "21.11.2023",
        "1944",
    )
    assert attribute.value == "UUID=7f1c&Time=1764800000000"
    [whole] = receipt.industry
    assert (whole.fois, whole.value) == ("030", "mode=horeca")


@pytest.mark.parametrize(
    ("operation", "item", "field"),
    [
        ("sell", {"mark_code": {"ean13": "4600000000000"}}, "receipt.items[0].mark_code.ean13"),
        (
            "sell",
            {"mark_code": {"gs1m": b64(GS1M), "short": b64(SHORT)}},
            "receipt.items[0].mark_code",
        ),
        (
            "sell",
            {"mark_code": {"gs1m": b64(GS1M)}, "mark_processing_mode": "1"},
            "receipt.items[0].mark_processing_mode",
        ),
        (
            "sell",
            {"mark_quantity": {"numerator": 1, "denominator": 2}},
            "receipt.items[0].mark_quantity",
        ),
        (
            "sell",
            {"mark_code": {"gs1m": b64(GS1M)}, "mark_quantity": {"numerator": 0, "denominator": 2}},
            "receipt.items[0].mark_quantity.numerator",
        ),
        ("sell", {"mark_code": {"gs1m": "not base64!"}}, "receipt.items[0].mark_code"),
        (
            "sell",
            {"mark_code": {"gs1m": b64(GS1M)}, "quantity": 2, "sum": 190},
            "receipt.items[0].quantity",
        ),
        ("buy", {"mark_code": {"gs1m": b64(GS1M)}}, "receipt.items[0].mark_code"),
        ("sell", {}, "receipt.items[0].payment_object"),
        (
            "sell",
            {
                "payment_object": 1,
                "sectoral_item_props": [
                    {"federal_id": "30", "date": "21.11.2023", "number": "1944", "value": "x"}
                ],
            },
            "receipt.items[0].sectoral_item_props[0].federal_id",
        ),
        (
            "sell",
            {"mark_code": {"gs1m": b64(GS1M)}, "sectoral_item_props": [{"value": "UUID=1"}]},
            "receipt.items[0].sectoral_item_props[0].federal_id",
        ),
        (
            "sell",
            {
                "mark_code": {"gs1m": b64(GS1M)},
                "sectoral_item_props": [{"federal_id": "030", "number": "1944", "value": "x"}],
            },
            "receipt.items[0].sectoral_item_props[0].date",
        ),
        (
            "sell",
            {
                "mark_code": {"gs1m": b64(GS1M)},
                "sectoral_item_props": [{"federal_id": "030", "date": "21.11.2023", "value": "x"}],
            },
            "receipt.items[0].sectoral_item_props[0].number",
        ),
        ("sell", {"mark_code": {"gs1m": b64(GS1M)}, "measure": 50}, "receipt.items[0].measure"),
        ("sell", {"mark_code": {"gs1m": b64(GS1M)}, "measure": 255}, "receipt.items[0].measure"),
    ],
)
def test_what_cannot_be_printed_is_refused_by_its_atol_online_name(
    operation: str, item: dict[str, Any], field: str
) -> None:
    assert field_of(operation, body(**item)) == field


def test_a_receipt_level_sectoral_prop_without_its_document_is_refused() -> None:
    doc = body(mark_code={"gs1m": b64(GS1M)})
    doc["receipt"]["sectoral_check_props"] = [{"federal_id": "030", "value": "mode=horeca"}]
    assert field_of("sell", doc) == "receipt.sectoral_check_props[0].date"


def test_the_same_code_on_two_items_is_refused_naming_the_second() -> None:
    doc = body(mark_code={"gs1m": b64(GS1M)})
    line = doc["receipt"]["items"][0]
    doc["receipt"]["items"].append(dict(line))
    doc["receipt"]["total"] = line["sum"] * 2
    doc["receipt"]["payments"][0]["sum"] = line["sum"] * 2
    assert field_of("sell", doc) == "receipt.items[1].mark_code"
