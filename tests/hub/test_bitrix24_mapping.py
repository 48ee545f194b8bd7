"""Bitrix24 checks -> ATOL tasks: the PHP form decoder, the mapping (checked by the box's own
task parser), field names in refusals, and the CHECK_URL / check.apply answers."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest

from gateway.hub.connectors.bitrix24.errors import CheckRefused
from gateway.hub.connectors.bitrix24.form import decode_body, decode_form
from gateway.hub.connectors.bitrix24.mapping import checked_request, to_task, vat_table
from gateway.hub.connectors.bitrix24.status import apply_body, status_answer
from gateway.hub.model import Order, OrderState, WritebackState
from tests.fakes.bitrix24 import php_form

VATS: list[dict[str, Any]] = [
    {"id": "1", "name": "Без НДС", "rate": None},
    {"id": "2", "name": "НДС 0%", "rate": "0.00"},
    {"id": "3", "name": "НДС 10%", "rate": "10.00"},
    {"id": "4", "name": "НДС 20%", "rate": "20.00"},
    {"id": "9", "name": "НДС 18%", "rate": "18.00"},  # no such rate any more
]
VAT = vat_table(VATS, {})
# A dairy code as scanned ([NG] #165): GS (1Dh) between the serial and the check key.
CODE = "0104600653105990215" + "2CUnq\x1d93Gk30"


def check(check_type: str = "sell", **extra: Any) -> dict[str, Any]:
    """A check as the core posts it, through PHP's form encoding and our decoder."""
    income = check_type in ("sell", "prepayment", "advancepayment", "credit")
    query: dict[str, Any] = {
        "type": check_type,
        "calculated_sign": "income" if income else "consumption",
        "unique_id": 17,
        "items": [
            {
                "name": "Сыр «Российский», весовой",
                "base_price": 800,
                "price": 720.5,
                "sum": 1080.75,
                "quantity": 1.5,
                "measure_code": 166,
                "vat": 3,
                "vat_sum": 98.25,
                "payment_object": "commodity",
                "payment_method": "full_payment",
                "properties": {"CATALOG.XML_ID": {"NAME": "Catalog XML_ID", "VALUE": "x"}},
                "discount": {"discount": 79.5, "discount_type": "P"},
            },
            {
                "name": "Доставка",
                "base_price": 300,
                "price": 300,
                "sum": 300,
                "quantity": 1,
                "vat": 4,
                "vat_sum": 50,
                "payment_object": "service",
                "payment_method": "full_payment",
            },
            {
                "name": "Пакет",
                "price": 5,
                "sum": 5,
                "quantity": 1,
                "measure_code": 796,
                "vat": 1,
                "vat_sum": 0,
                "payment_object": "commodity",
                "payment_method": "full_payment",
            },
        ],
        "date_create": 1764800000,
        "payments": [
            {"type": "cash", "is_cash": "Y", "sum": 385.75},
            {"type": "cashless", "is_cash": "N", "sum": 1000},
        ],
        "client_email": "buyer@example.org",
        "client_phone": "+79990000000",
        "total_sum": 1385.75,
        "uuid": "check|shop.bitrix24.ru|17",
        "operation": "income" if income else "consumption",
        "number_kkm": "box-a",
        "service_email": "shop@example.org",
        "cashbox_params": {"FISCAL": {"TAXATION": "osn", "PAYMENTS_PLACE": "shop.example.org"}},
    }
    query.update(extra)
    return decode_form(php_form(query).encode())


def test_php_form_decodes_to_nested_values_and_lists() -> None:
    doc = decode_form(
        b"a=1&items%5B0%5D%5Bname%5D=%D0%A1%D1%8B%D1%80+x&items[1][name]=b&c[]=x&c[]=y"
    )
    assert doc == {"a": "1", "items": [{"name": "Сыр x"}, {"name": "b"}], "c": ["x", "y"]}
    assert decode_form(b"p[FISCAL][TAXATION]=osn") == {"p": {"FISCAL": {"TAXATION": "osn"}}}
    assert decode_body(b'{"uuid": "u"}', "application/json") == {"uuid": "u"}
    with pytest.raises(CheckRefused, match="both as a value and as a group"):
        decode_form(b"a=1&a[b]=2")
    with pytest.raises(CheckRefused, match="unbalanced"):
        decode_form(b"a[b=1")
    with pytest.raises(CheckRefused, match="not UTF-8"):
        decode_form(b"a=\xff")


def test_a_sell_with_mixed_vat_and_a_fractional_quantity_maps_every_field() -> None:
    mapped = to_task(check(), VAT)
    assert (mapped.domain, mapped.check_id) == ("shop.bitrix24.ru", "17")
    task = mapped.task
    assert task["type"] == "sell"
    assert task["taxationType"] == "osn"
    assert task["paymentsPlace"] == "shop.example.org"
    assert task["clientInfo"] == {"emailOrPhone": "buyer@example.org"}
    cheese, delivery, bag = task["items"]
    assert cheese["quantity"] == Decimal("1.5")
    assert cheese["price"] == Decimal("720.5")
    assert cheese["amount"] == Decimal("1080.75")
    assert cheese["tax"] == {"type": "vat10", "sum": Decimal("98.25")}
    assert cheese["measurementUnit"] == 11  # kg, [FFD] 2108
    assert cheese["paymentObject"] == 1
    assert cheese["paymentMethod"] == "fullPayment"
    assert delivery["tax"]["type"] == "vat20"
    assert delivery["paymentObject"] == 4
    assert bag["tax"] == {"type": "none"}
    assert bag["measurementUnit"] == 0
    assert task["payments"] == [
        {"type": "cash", "sum": Decimal("385.75")},
        {"type": "electronically", "sum": Decimal("1000")},
    ]
    assert mapped.meta["client_phone"] == "+79990000000"
    assert mapped.meta["number_kkm"] == "box-a"
    # The box's own parser takes it as it is.
    [stored] = checked_request("job-1", task)
    assert stored["items"][0]["quantity"] == 1.5
    assert stored["items"][1]["tax"]["type"] == "vat20"


def test_returns_and_prepayments_map_to_their_receipt_type_and_method() -> None:
    ret = to_task(check("sellreturn"), VAT).task
    assert ret["type"] == "sellReturn"
    checked_request("job-2", ret)
    prepay = check("prepayment")
    for item in prepay["items"]:
        item["payment_method"] = "prepayment"
        item["payment_object"] = "payment"
    task = to_task(prepay, VAT).task
    assert task["type"] == "sell"
    assert {i["paymentMethod"] for i in task["items"]} == {"prepayment"}
    assert {i["paymentObject"] for i in task["items"]} == {10}
    checked_request("job-3", task)
    with pytest.raises(CheckRefused) as err:
        to_task(check("sellreturn", calculated_sign="income"), VAT)
    assert err.value.field == "calculated_sign"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"items": {"2": {"marking_code": CODE}}}, "items[2][payment_object]"),
        ({"items": {"2": {"payment_object": "commodity_marking"}}}, "items[2][marking_code]"),
        ({"items": {"2": {"nomenclature_code": "444d00"}}}, "items[2][nomenclature_code]"),
        (
            {"items": {"2": {"payment_object": "commodity_marking", "marking_code": "01ю"}}},
            "items[2][marking_code]",
        ),
        (
            {"items": {"2": {"payment_object": "commodity_marking", "marking_code": "01\x0193"}}},
            "items[2][marking_code]",
        ),
        ({"items": {"0": {"vat": "9"}}}, "items[0][vat]"),
        ({"items": {"0": {"vat": "77"}}}, "items[0][vat]"),
        ({"items": {"0": {"supplier_info": {"inn": "7700000000"}}}}, "items[0][supplier_info]"),
        ({"items": {"1": {"sum": "301"}}}, "items[1][sum]"),
        ({"items": {"1": {"vat_sum": "45"}}}, "items[1][vat_sum]"),
        ({"payments": {"1": {"currency": "USD"}}}, "payments[1][currency]"),
        ({"cashbox_params": {"FISCAL": {"TAXATION": "ausn"}}}, "cashbox_params[FISCAL][TAXATION]"),
        ({"loyalty": "x"}, "loyalty"),
        ({"uuid": "check|shop|abc"}, "uuid"),
        ({"type": "buy"}, "type"),
    ],
)
def test_what_cannot_be_printed_is_refused_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    doc = check()
    for key, value in change.items():
        if isinstance(value, dict) and key in ("items", "payments"):
            for index, members in value.items():
                doc[key][int(index)].update(members)
        else:
            doc[key] = value
    with pytest.raises(CheckRefused) as err:
        _print(doc)
    assert err.value.field == field, err.value


def test_vat_overrides_win_over_the_portal_table() -> None:
    table = vat_table(VATS, {"9": "vat20"})
    assert table["9"] == "vat20"
    assert table["1"] == "none"
    assert table["2"] == "vat0"


def _order(state: OrderState, result: dict[str, Any] | None) -> Order:
    return Order(
        id=1,
        connector="bitrix24",
        account="shop",
        crm_key="check|shop|1",
        box_id="box-a",
        job_uuid="4e5f",
        request=[],
        meta={},
        state=state,
        result=result,
        writeback=WritebackState.NONE,
        sends=1,
        created_ms=1,
        updated_ms=1,
        finished_ms=1764800000123,
    )


def test_status_answers_wait_done_and_error() -> None:
    for state in (OrderState.ACCEPTED, OrderState.SENT, OrderState.ACKED, OrderState.BLOCKED):
        assert status_answer(_order(state, None)) == {"STATUS": "WAIT"}
    params = {
        "fiscalDocumentNumber": 12,
        "fiscalDocumentSign": "3826380211",
        "fiscalDocumentDateTime": "2026-12-04T15:20:00+03:00",
        "fiscalReceiptNumber": 3,
        "shiftNumber": 2,
        "fnNumber": "9999078900001234",
        "registrationNumber": "0000000001012345",
    }
    done = _order(
        OrderState.DONE, {"results": [{"status": "ready", "result": {"fiscalParams": params}}]}
    )
    assert status_answer(done) == {
        "STATUS": "DONE",
        "REG_NUMBER_KKT": "0000000001012345",
        "FISCAL_DOC_ATTR": "3826380211",
        "FISCAL_DOC_NUMBER": "12",
        "FISCAL_RECEIPT_NUMBER": "3",
        "FN_NUMBER": "9999078900001234",
        "SHIFT_NUMBER": "2",
        "PRINT_END_TIME": 1796386800,
    }
    body = apply_body(done)
    assert body["UUID"] == "4e5f"
    assert "STATUS" not in body
    failed = _order(
        OrderState.FAILED,
        {"results": [{"status": "error", "error": {"code": 1, "description": "ФН переполнен"}}]},
    )
    assert status_answer(failed) == {"STATUS": "ERROR", "ERROR": "ФН переполнен"}


def _print(doc: dict[str, Any]) -> None:
    checked_request("job-x", to_task(doc, VAT).task)


def _marked(check_type: str = "sell", **item: Any) -> dict[str, Any]:
    """A check whose 'Пакет' line is a marked pack with its code."""
    line = {"payment_object": "commodity_marking", "marking_code": CODE, **item}
    doc = check(check_type)
    doc["items"][2].update(line)
    return doc


def test_a_marked_line_carries_its_code_status_and_payment_object() -> None:
    task = to_task(_marked(), VAT).task
    line = task["items"][2]
    assert line["paymentObject"] == 33
    assert line["imcParams"] == {
        "imc": base64.b64encode(CODE.encode()).decode(),
        "imcType": "auto",
        "itemEstimatedStatus": "itemPieceSold",
        "imcModeProcessing": 0,
    }
    stored = checked_request("job-m", task)
    assert stored[0]["items"][2]["imcParams"]["imc"] == line["imcParams"]["imc"]
    assert "imcParams" not in stored[0]["items"][0]


def test_a_return_returns_the_pack_and_excise_goods_are_31() -> None:
    task = to_task(_marked("sellreturn", payment_object="commodity_marking_excise"), VAT).task
    assert task["type"] == "sellReturn"
    line = task["items"][2]
    assert (line["paymentObject"], line["imcParams"]["itemEstimatedStatus"]) == (
        31,
        "itemPieceReturn",
    )
    checked_request("job-r", task)


def test_the_code_survives_the_portals_form_encoding_with_its_gs() -> None:
    doc = _marked()
    assert doc["items"][2]["marking_code"] == CODE  # %1D in the PHP form
    code = base64.b64decode(to_task(doc, VAT).task["items"][2]["imcParams"]["imc"])
    assert code == CODE.encode()
    assert code.count(b"\x1d") == 1


def test_one_code_for_several_pieces_is_refused_naming_the_quantity() -> None:
    doc = _marked(quantity=2, sum=10, price=5)
    with pytest.raises(CheckRefused) as err:
        to_task(doc, VAT)
    assert err.value.field == "items[2][quantity]"
    assert "one code is one pack" in err.value.reason


def test_a_measured_marked_line_is_sold_by_weight() -> None:
    doc = check()
    doc["items"][0].update(payment_object="commodity_marking", marking_code=CODE)
    task = to_task(doc, VAT).task
    assert task["items"][0]["imcParams"]["itemEstimatedStatus"] == "itemDryForSale"
    assert task["items"][0]["measurementUnit"] == 11  # kilogram
    checked_request("job-w", task)


def test_a_product_code_with_the_marking_code_is_refused_by_its_name() -> None:
    with pytest.raises(CheckRefused) as err:
        to_task(_marked(nomenclature_code="444d00000c"), VAT)
    assert err.value.field == "items[2][nomenclature_code]"
    assert "send marking_code only" in err.value.reason


@pytest.mark.parametrize("okei", [715, 778, 839, 9999])
def test_a_marked_line_in_pairs_packs_sets_or_unknown_units_is_refused(okei: int) -> None:
    with pytest.raises(CheckRefused) as err:
        to_task(_marked(measure_code=okei), VAT)
    assert err.value.field == "items[2][measure_code]"
    assert "«штука»" in err.value.reason


def test_a_marked_line_in_pieces_or_litres_passes_the_box_parser() -> None:
    checked_request("job-p", to_task(_marked(measure_code=796), VAT).task)
    doc = check()
    doc["items"][0].update(payment_object="commodity_marking", marking_code=CODE, measure_code=112)
    task = to_task(doc, VAT).task
    assert task["items"][0]["imcParams"]["itemEstimatedStatus"] == "itemDryForSale"


def test_the_same_code_on_two_lines_is_refused_naming_the_second() -> None:
    doc = _marked()
    doc["items"][1].update(payment_object="commodity_marking", marking_code=CODE)
    with pytest.raises(CheckRefused) as err:
        to_task(doc, VAT)
    assert err.value.field == "items[2][marking_code]"
    assert "items[1]" in err.value.reason
