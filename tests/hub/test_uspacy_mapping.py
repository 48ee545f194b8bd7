"""The Uspacy mapping (pure): a deal and its products -> the box's sell task, or a refusal
naming every problem; the settings, the event parser and `Retry-After`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.hub.connectors.uspacy import mapping
from gateway.hub.connectors.uspacy.client import retry_after
from gateway.hub.connectors.uspacy.errors import DealRefused
from gateway.hub.connectors.uspacy.mapping import Rules
from gateway.hub.connectors.uspacy.settings import DEFAULT_TAXES, parse_uspacy
from gateway.hub.connectors.uspacy.webhook import _hint
from gateway.hub.connectors.uspacy.wire import ProductLine

RULES = Rules(
    trigger_stage=12,
    receipt_field="fiscal_receipt_url",
    taxes=DEFAULT_TAXES,
    payment_field="payment_kind",
    payments={"Готівка": "cash", "Картка": "electronically"},
)


def line(title: str, price: Any, qty: Any = 1, **extra: Any) -> ProductLine:
    doc: dict[str, Any] = {"id": 1, "title": title, "price": price, "quantity": qty}
    doc.update({"tax_rate": 20, "is_tax_included": 1, **extra})
    return doc  # type: ignore[return-value]


def deal(**extra: Any) -> dict[str, Any]:
    return {"id": 501, "title": "Угода", "kanban_stage_id": 12, **extra}


def problems(d: dict[str, Any], lines: list[ProductLine]) -> list[str]:
    with pytest.raises(DealRefused) as caught:
        mapping.to_task(d, lines, RULES)
    assert caught.value.deal_id == d["id"]
    return caught.value.problems


def test_names_quantities_prices_discounts_and_taxes_are_carried() -> None:
    lines = [
        line("Чай зелений", "45.50", 2, discount_type="relative", discount_value=10),
        line("Кава", 120, "1.5", tax_rate="7.00", discount_type="absolute", discount_value=20),
        line("Доставка", 50, 1, tax_rate=None),
    ]
    task = mapping.to_task(deal(payment_kind="Готівка"), lines, RULES)
    assert task["items"] == [
        {"type": "position", "name": "Чай зелений", "price": 45.5, "quantity": 2.0,
         "amount": 81.9, "tax": {"type": "vat20"}},
        {"type": "position", "name": "Кава", "price": 120.0, "quantity": 1.5,
         "amount": 150.0, "tax": {"type": "vat7"}},
        {"type": "position", "name": "Доставка", "price": 50.0, "quantity": 1.0,
         "amount": 50.0, "tax": {"type": "none"}},
    ]  # fmt: skip
    assert task["total"] == 281.9
    assert task["payments"] == [{"type": "cash", "sum": 281.9}]
    # The box's own parser takes it unchanged.
    parse_request(json.dumps({"uuid": "u-1", "request": [task]}), NameMapping())


def test_payment_type_from_a_list_field_or_the_default() -> None:
    one = [line("Товар", 10)]
    assert mapping.to_task(deal(payment_kind=["Картка"]), one, RULES)["payments"][0]["type"] == (
        "electronically"
    )
    assert (
        mapping.to_task(deal(payment_kind={"value": "Готівка"}), one, RULES)["payments"][0]["type"]
        == "cash"
    )
    assert mapping.to_task(deal(), one, RULES)["payments"][0]["type"] == "electronically"
    assert problems(deal(payment_kind="Бартер"), one) == [
        "field payment_kind: payment type 'Бартер' is not mapped (known: Готівка, Картка)"
    ]


def test_uspacys_own_line_sum_must_agree() -> None:
    agreed = line("Чай", "45.50", 2, discount_type="relative", discount_value=10, amount="81.90")
    assert mapping.to_task(deal(), [agreed], RULES)["total"] == 81.9
    differs = line("Чай", "45.50", 2, discount_type="absolute", discount_value=10, amount=81)
    assert problems(deal(), [differs]) == [
        "product line 1 (Чай): the line sum 81 differs from price × quantity less the "
        "discount (71.00)"
    ]


def test_a_deal_without_products_is_refused_by_name() -> None:
    assert problems(deal(), []) == ["the deal has no products"]


def test_every_problem_is_named_at_once() -> None:
    found = problems(
        deal(),
        [
            line("Вино", 300, tax_rate=25),
            line("", 10),
            line("Сир", "abc"),
            line("Хліб", 20, 0),
            line("Масло", 80, is_tax_included=0),
            line("Мед", 90, discount_type="absolute", discount_value=100),
            line("Сіль", 5, discount_type="bonus", discount_value=1),
        ],
    )
    assert found == [
        "product line 1 (Вино): tax rate 25 % is not mapped to a tax group of the register",
        "product line 2 (untitled): no name",
        "product line 3 (Сир): price: 'abc' is not a number",
        "product line 4 (Хліб): quantity must be above zero",
        "product line 5 (Масло): the price excludes tax; set the tax included in the price",
        "product line 6 (Мед): the discount is larger than the line",
        "product line 7 (Сіль): unknown discount type 'bonus'",
    ]


def test_a_line_without_tax_needs_a_mapping_for_none() -> None:
    rules = Rules(trigger_stage=12, receipt_field="r", taxes={"20": "vat20"})
    with pytest.raises(DealRefused) as caught:
        mapping.to_task(deal(), [line("Послуга", 10, tax_rate=None)], rules)
    assert caught.value.problems == [
        "product line 1 (Послуга): tax rate no tax is not mapped to a tax group of the register"
    ]


def test_due_only_in_the_trigger_stage_and_without_a_receipt() -> None:
    assert mapping.is_due(deal(), RULES)
    assert mapping.is_due(deal(kanban_stage_id="12"), RULES)
    assert not mapping.is_due(deal(kanban_stage_id=13), RULES)
    assert not mapping.is_due(deal(fiscal_receipt_url="https://check.gov.ua/x"), RULES)
    assert mapping.is_due(deal(fiscal_receipt_url="  "), RULES)


def test_the_box_result_gives_the_fiscal_number_and_link() -> None:
    result = {
        "results": [
            {
                "status": "ready",
                "result": {"fiscalParams": {"fiscalCode": "TEST-42", "receiptUrl": "https://r/42"}},
            }
        ]
    }
    assert mapping.receipt_link(result) == ("TEST-42", "https://r/42")
    assert mapping.receipt_link({"results": []}) == ("", "")
    assert mapping.done_comment("TEST-42", "https://r/42") == (
        "Фіскальний чек № TEST-42 видано. https://r/42"
    )
    refused = {"error": {"code": "vat", "description": "no such tax group", "field": "tax"}}
    assert mapping.failure_text(refused) == "tax: no such tax group"


def test_events_bare_sns_and_confirmation() -> None:
    bare = {"data": {"entity": {"id": 7}, "action": "updateStage"}}
    assert _hint(bare) == ("deal", 7)
    assert _hint({"Type": "Notification", "Message": json.dumps(bare)}) == ("deal", 7)
    assert _hint({"Type": "SubscriptionConfirmation", "SubscribeURL": "https://x/c"}) == (
        "confirm",
        "https://x/c",
    )
    assert _hint({"data": {"entity": {"id": "8"}}}) == ("deal", 8)
    junks: tuple[object, ...] = (
        None,
        [],
        {"data": {"entity": {"id": True}}},
        {"Type": "Notification"},
    )
    for junk in junks:
        assert _hint(junk) is None


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(None) == 1.0
    assert retry_after("Wed, 21 Oct 2026 07:28:05 GMT", now=1792567680.0) == 5.0
    assert retry_after("soon") == 1.0


def test_settings_name_every_problem(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret\n", encoding="utf-8")
    issues: list[str] = []
    raw = {
        "portals": [
            {
                "key": "acme",
                "url": "https://acme.uspacy.ua/",
                "client_id": "app-1",
                "client_secret_file": "secret",
                "webhook_secret": "0123456789abcdef",
                "trigger_stage": 12,
                "done_stage": 13,
                "receipt_field": "fiscal_receipt_url",
                "taxes": {20: "vat20", "7%": "vat7"},
            },
            {"key": "bad", "url": "ftp://x", "trigger_stage": "x", "taxes": {"20": "vat21"}},
        ]
    }
    settings = parse_uspacy(raw, lambda p, t: issues.append(f"{p}: {t}"), tmp_path)
    assert [p.key for p in settings.portals] == ["acme"]
    acme = settings.portals[0]
    assert acme.client_secret == "s3cret"
    assert acme.url == "https://acme.uspacy.ua"
    assert dict(acme.rules.taxes) == {"20": "vat20", "7": "vat7"}
    assert "s3cret" not in repr(acme)
    assert sorted(issues) == sorted(
        [
            "uspacy.portals[1].client_id: required: a non-empty string",
            "uspacy.portals[1].receipt_field: required: a non-empty string",
            "uspacy.portals[1].client_secret: give client_secret or client_secret_file (one of them)",
            "uspacy.portals[1].webhook_secret: give webhook_secret or webhook_secret_file (one of them)",
            "uspacy.portals[1].trigger_stage: must be a stage id (a positive integer; "
            "`hub uspacy install` prints it)",
            "uspacy.portals[1].url: must be the portal's https:// address",
            "uspacy.portals[1].taxes.20: must be one of none, vat0, vat10, vat110, vat120, vat20, "
            "vat5, vat7",
        ]
    )
