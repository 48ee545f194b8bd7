"""ATOL-style task JSON -> validated tasks: accepted shapes, and every rejection by path."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from gateway.atol import decimal_json, tasks
from gateway.atol.decimal_json import dumps
from gateway.atol.names import NameMapping
from gateway.atol.parser import RequestTooLarge, parse_request, parse_task, parse_tasks_json
from gateway.atol.tasks import (
    CloseShiftTask,
    ContinuePrintTask,
    OpenShiftTask,
    QueryKind,
    QueryTask,
    ReceiptTask,
    ReportXTask,
    describe,
)
from gateway.domain import fiscal
from gateway.domain.errors import ValidationError
from gateway.domain.fiscal import PaymentType, ReceiptType, Vat

UA = NameMapping(
    payment_types={"Готівка": "cash", "Картка": "electronically"},
    vat={"ПДВ 20%": "vat20", "Без ПДВ": "none"},
    units={"шт": "piece", "кг": "kilogram"},
)
NO_MAPPING = NameMapping()

Json = dict[str, Any]


def position(
    name: str = "Хлеб",
    price: str = "50.00",
    quantity: str = "1",
    amount: str | None = None,
    tax: str = "vat10",
    **extra: Any,
) -> Json:
    """A position item; numbers given as text stay exact."""
    full = Decimal(price) * Decimal(quantity)
    item: Json = {
        "type": "position",
        "name": name,
        "price": Decimal(price),
        "quantity": Decimal(quantity),
        "amount": Decimal(amount) if amount is not None else full.quantize(Decimal("0.01")),
        "tax": {"type": tax},
    }
    item.update(extra)
    return item


def sell(*items: Json, payments: list[Json] | None = None, **extra: Any) -> Json:
    """A sell task paid in cash with exactly its total unless `payments` are given."""
    lines = list(items) or [position()]
    total = sum((Decimal(i["amount"]) for i in lines if i["type"] == "position"), Decimal(0))
    task: Json = {
        "type": "sell",
        "items": lines,
        "payments": payments if payments is not None else [{"type": "cash", "sum": total}],
    }
    task.update(extra)
    return task


def body(*request: Json, uuid: str = "job-1") -> str:
    """A POST body."""
    return dumps({"uuid": uuid, "request": list(request)})


def parse(*request: Json, mapping: NameMapping = UA) -> tuple[tasks.FiscalTask, ...]:
    """Parse a body made of `request`."""
    return parse_request(body(*request), mapping).tasks


def receipt_of(task: Json, mapping: NameMapping = UA) -> fiscal.Receipt:
    """The receipt of one receipt task."""
    (parsed,) = parse(task, mapping=mapping)
    assert isinstance(parsed, ReceiptTask)
    return parsed.receipt


def error_of(raw: str | bytes, mapping: NameMapping = UA) -> tuple[str, str]:
    """The (field, reason) a body is refused with."""
    with pytest.raises(ValidationError) as info:
        parse_request(raw, mapping)
    return info.value.field, info.value.reason


def edited(change: Callable[[Json], object]) -> str:
    """A body of one valid sell edited in place by `change`."""
    task = copy.deepcopy(sell(position()))
    change(task)
    return body(task)


# --- valid receipts --------------------------------------------------------------------


def test_sell_with_one_item() -> None:
    (task,) = parse(sell(position(price="50.00", quantity="1", tax="vat10")))
    assert isinstance(task, ReceiptTask)
    assert task.electronically is False
    assert task.is_fiscal
    assert task.type_name == "sell"
    r = task.receipt
    assert r.type is ReceiptType.SELL
    assert r.job_id == "job-1"
    assert r.items == (
        fiscal.Item("Хлеб", 5000, 1_000_000, 5000, Vat.VAT10, fiscal.PaymentMethod.FULL_PAYMENT),
    )
    assert r.payments == (fiscal.Payment(PaymentType.CASH, 5000),)
    assert (r.total, r.paid, r.change) == (5000, 5000, 0)
    assert r.taxation is None
    assert r.operator is None
    assert r.client_contact is None


def test_sell_with_twenty_items() -> None:
    items = [
        position(f"Товар {n}", f"{n}.{n:02d}", str(n % 3 + 1), tax="vat20" if n % 2 else "vat10")
        for n in range(1, 21)
    ]
    r = receipt_of(sell(*items, total=sum(Decimal(i["amount"]) for i in items)))
    assert len(r.items) == 20
    assert r.total == sum(round(Decimal(i["amount"]) * 100) for i in items)
    assert [i.name for i in r.items] == [f"Товар {n}" for n in range(1, 21)]
    assert {i.vat for i in r.items} == {Vat.VAT10, Vat.VAT20}


def test_fractional_weight_rounds_half_up_to_the_kopeck() -> None:
    # 89.90 × 0.357 = 32.0943 -> 32.09
    item = position("Сыр", "89.90", "0.357", "32.09", measurementUnit="kilogram")
    (parsed,) = receipt_of(sell(item)).items
    assert (parsed.price, parsed.quantity, parsed.amount) == (8990, 357_000, 3209)
    assert parsed.full_amount == 3209
    assert parsed.measurement_unit == 11
    assert fiscal.print_lines(parsed) == (fiscal.PrintLine(parsed, 8990, 357_000, 3209),)


@pytest.mark.parametrize("amount", ["32.09", "32.10"])
def test_amount_within_one_kopeck_of_price_times_quantity(amount: str) -> None:
    # 89.90 × 0.357 = 32.0943: both sums are within 1 kopeck of the exact product.
    item = position("Сыр", "89.90", "0.357", amount)
    assert receipt_of(sell(item)).items[0].amount == round(Decimal(amount) * 100)


def test_amount_one_kopeck_below_the_rounded_product_is_refused() -> None:
    # 32.08 is 1 kopeck below 32.09 but 1.43 kopecks below the exact 32.0943: a register
    # compares with the exact product and would refuse the line.
    with pytest.raises(ValidationError) as err:
        parse(sell(position("Сыр", "89.90", "0.357", "32.08")))
    assert err.value.field == "request[0].items[0].amount"
    assert "32.0943" in err.value.reason


def test_discounted_line_is_split_so_the_printed_sums_add_up() -> None:
    # 7 × 0.20 = 1.40 sold for 1.00: no single price fits, so 5 × 0.14 + 2 × 0.15.
    (item,) = receipt_of(sell(position("Жвачка", "0.20", "7", "1.00"))).items
    lines = fiscal.print_lines(item)
    assert [(x.price, x.quantity, x.amount) for x in lines] == [
        (14, 5_000_000, 70),
        (15, 2_000_000, 30),
    ]
    assert sum(x.amount for x in lines) == item.amount == 100


def test_discount_with_one_lower_price() -> None:
    (item,) = receipt_of(sell(position("Кофе", "10.00", "3", "29.00"))).items
    (line,) = fiscal.print_lines(item)
    assert line.amount == 2900
    assert abs(fiscal.round_qty(line.price * line.quantity) - 2900) <= 1


def test_free_receipt_needs_no_payment() -> None:
    r = receipt_of(sell(position("Пакет", "0", "1", "0"), payments=[]))
    assert (r.total, r.paid, r.change) == (0, 0, 0)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("sell", ReceiptType.SELL),
        ("sellReturn", ReceiptType.SELL_RETURN),
        ("buy", ReceiptType.BUY),
        ("buyReturn", ReceiptType.BUY_RETURN),
    ],
)
def test_receipt_types(name: str, kind: ReceiptType) -> None:
    (task,) = parse(sell(type=name))
    assert isinstance(task, ReceiptTask)
    assert task.receipt.type is kind
    assert task.type_name == name


def test_all_receipt_fields() -> None:
    task = sell(
        position(
            "Услуга",
            "100.00",
            "1",
            paymentMethod="prepayment",
            paymentObject="service",
            measurementUnit="hour",
            department=3,
        ),
        taxationType="usnIncome",
        operator={"name": "Кассир Иванова", "vatin": "123456789012"},
        clientInfo={"emailOrPhone": "buyer@example.com", "name": "Покупатель"},
        electronically=True,
        payments=[{"type": "electronically", "sum": Decimal("100.00")}],
        total=Decimal("100"),
    )
    (parsed,) = parse(task)
    assert isinstance(parsed, ReceiptTask)
    assert parsed.electronically is True
    r = parsed.receipt
    assert r.taxation is fiscal.TaxationType.USN_INCOME
    assert r.operator == fiscal.Operator("Кассир Иванова", "123456789012")
    assert r.client_contact == "buyer@example.com"
    (item,) = r.items
    assert item.payment_method is fiscal.PaymentMethod.PREPAYMENT
    assert (item.payment_object, item.measurement_unit, item.department) == (4, 71, 3)


UNKNOWN = "unknown field; every field is carried into the fiscal document or refused, so remove it or check its spelling"


@pytest.mark.parametrize(
    ("task", "field", "message"),
    [
        (sell(someFutureField={"x": 1}), "request[0].someFutureField", UNKNOWN),
        (sell(position(unknown=1)), "request[0].items[0].unknown", UNKNOWN),
        (
            sell({**position(), "tax": {"type": "vat10", "rate": 10}}),
            "request[0].items[0].tax.rate",
            UNKNOWN,
        ),
        (
            sell(payments=[{"type": "cash", "sum": Decimal("50.00"), "x": 1}]),
            "request[0].payments[0].x",
            UNKNOWN,
        ),
        (sell(operator={"name": "К", "post": "x"}), "request[0].operator.post", UNKNOWN),
        ({"type": "reportX", "x": 1}, "request[0].x", UNKNOWN),
        (
            sell(companyInfo={"email": "shop@example.com"}),
            "request[0].companyInfo",
            "the register sends its own registration data; companyInfo is not supported",
        ),
        (
            sell(industryInfo=[{"fois": "030"}]),
            "request[0].industryInfo[0].industryAttribute",
            "required",
        ),
        (
            sell(operatingInfo={"operationId": 1}),
            "request[0].operatingInfo",
            "operational requisites (tag 1270) are not supported yet",
        ),
        (
            sell(postItems=[{"type": "text", "text": "hi"}]),
            "request[0].postItems",
            "printing text after the receipt is not supported; remove postItems",
        ),
        (
            sell(position(productCodes={"ean13": "4600000000000"})),
            "request[0].items[0].productCodes",
            "product codes (tag 1163) are not supported yet; for marked goods send the marking "
            "code in imcParams, the register builds 1163 from it",
        ),
        (
            sell(position(nomenclatureCode="444D00")),
            "request[0].items[0].nomenclatureCode",
            "tag 1162 is the ФФД 1.05 form; send the marking code in imcParams, the register "
            "builds the product code from it",
        ),
        (
            sell(position(paymentObject=33)),
            "request[0].items[0].paymentObject",
            "payment object 33 is marked goods: give the item's marking code in imcParams "
            "{imc (base64), itemEstimatedStatus}",
        ),
        (
            sell(position(paymentObject="exciseWithMarking")),
            "request[0].items[0].paymentObject",
            "payment object 31 is marked goods: give the item's marking code in imcParams "
            "{imc (base64), itemEstimatedStatus}",
        ),
        (
            sell(position(paymentObject=28)),
            "request[0].items[0].paymentObject",
            "payment object 28 does not exist in ФФД 1.2",
        ),
        (
            sell(position(paymentObject=29)),
            "request[0].items[0].paymentObject",
            "payment object 29 does not exist in ФФД 1.2",
        ),
        (
            sell(clientInfo={"birthDate": "01.01.1990"}),
            "request[0].clientInfo.birthDate",
            "buyer identity documents, birth date, citizenship and address are not supported yet",
        ),
        (
            sell(position(countryCode="RU")),
            "request[0].items[0].countryCode",
            'must be the 3-digit ОКСМ country code, e.g. "643"',
        ),
        (
            sell({**position(), "tax": {"type": "vat10", "sum": Decimal("4.00")}}),
            "request[0].items[0].tax.sum",
            "does not match the vat10 VAT of the amount (4.55)",
        ),
        (
            sell(taxes=[{"type": "vat10", "sum": Decimal("5.00")}]),
            "request[0].taxes[0].sum",
            "does not match the VAT the register computes for vat10 (4.55)",
        ),
        (
            sell(taxes=[{"type": "vat20", "sum": Decimal("0")}]),
            "request[0].taxes[0].type",
            "no position has VAT rate vat20",
        ),
        (
            {"type": "closeShift", "electronically": True},
            "request[0].electronically",
            "shift reports are always printed; remove it",
        ),
        (
            sell(userAttribute={"name": "Код", "value": "1", "x": 2}),
            "request[0].userAttribute.x",
            UNKNOWN,
        ),
        (
            sell(additionalAttribute="x" * 17),
            "request[0].additionalAttribute",
            "longer than 16 characters",
        ),
    ],
)
def test_every_field_is_carried_or_refused_by_name(task: Json, field: str, message: str) -> None:
    assert error_of(body(task)) == (field, message)


def test_carried_receipt_data() -> None:
    task = sell(
        position(
            "Коньяк",
            "1000.00",
            "1",
            "1000.00",
            "vat20",
            exciseSum=Decimal("120.50"),
            countryCode="250",
            customsDeclaration="10702070/010120/0000001",
            additionalAttribute="партия 7",
            measurementUnit="liter",
        ),
        clientInfo={"emailOrPhone": "+79990000000", "name": "ООО «Ромашка»", "vatin": "7701234567"},
        paymentsPlace="Магазин №1",
        paymentsAddress="г. Москва, ул. Ленина, 1",
        additionalAttribute="A-17",
        userAttribute={"name": "Номер заказа", "value": "CRM-42"},
        taxes=[{"type": "vat20", "sum": Decimal("166.67")}],
        ignoreNonFiscalPrintErrors=True,
    )
    task["items"][0]["tax"]["sum"] = Decimal("166.67")
    r = receipt_of(task)
    assert r.buyer == fiscal.Buyer("ООО «Ромашка»", "7701234567")
    assert (r.payments_place, r.payments_address) == ("Магазин №1", "г. Москва, ул. Ленина, 1")
    assert r.additional_attribute == "A-17"
    assert r.user_attribute == fiscal.UserAttribute("Номер заказа", "CRM-42")
    (item,) = r.items
    assert (item.tax_sum, item.excise, item.country_code) == (16667, 12050, "250")
    assert item.customs_declaration == "10702070/010120/0000001"
    assert item.additional_attribute == "партия 7"
    assert item.measurement_unit == 41


def test_text_outside_the_registers_charset_is_refused_by_name() -> None:
    with pytest.raises(ValidationError) as err:
        parse(sell(position(name="Торт 🎂")))
    assert err.value.field == "request[0].items[0].name"
    assert (
        "character '🎂' (U+1F382) cannot be printed by the register (cp1251)" in err.value.message
    )


def test_rouble_sign_is_replaced_as_documented_and_stored_replaced() -> None:
    parsed = parse_request(body(sell(position(name="Подарок за 100 ₽"))), NO_MAPPING)
    (task,) = parsed.tasks
    assert isinstance(task, ReceiptTask)
    assert task.receipt.items[0].name == "Подарок за 100 руб."
    assert "₽" not in parsed.tasks_json
    # A cloud register takes any text: no charset, no replacement.
    cloud = NameMapping(charset=None, text={})
    assert receipt_of(sell(position(name="Торт 🎂 ₴")), cloud).items[0].name == "Торт 🎂 ₴"


def test_a_register_that_cannot_carry_a_field_has_it_refused() -> None:
    narrow = NameMapping(carries=frozenset({"clientInfo.emailOrPhone"}))
    field, reason = error_of(body(sell(paymentsPlace="Магазин")), narrow)
    assert field == "request[0].paymentsPlace"
    assert "cannot carry" in reason
    field, _ = error_of(body(sell(position(measurementUnit="kilogram"))), narrow)
    assert field == "request[0].items[0].measurementUnit"
    assert (
        receipt_of(sell(clientInfo={"emailOrPhone": "a@b.cd"}), narrow).client_contact == "a@b.cd"
    )


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("+79991234567", "+79991234567"),
        ("+7 (999) 123-45-67", "+79991234567"),
        ("+380441234567", "+380441234567"),
        (" name@example.com ", "name@example.com"),
        ("x@y.z", "x@y.z"),
        ("", None),
    ],
)
def test_client_contact(given: str, stored: str | None) -> None:
    assert receipt_of(sell(clientInfo={"emailOrPhone": given})).client_contact == stored


@pytest.mark.parametrize("vatin", ["", None])
def test_empty_operator_vatin_is_absent(vatin: str | None) -> None:
    r = receipt_of(sell(operator={"name": "Кассир", "vatin": vatin}))
    assert r.operator == fiscal.Operator("Кассир")


# --- names and mapping -----------------------------------------------------------------


@pytest.mark.parametrize("vat", list(Vat))
def test_every_vat_rate_is_reachable(vat: Vat) -> None:
    assert receipt_of(sell(position(tax=vat.value))).items[0].vat is vat


@pytest.mark.parametrize("kind", list(PaymentType))
def test_every_payment_type_is_reachable(kind: PaymentType) -> None:
    r = receipt_of(sell(position(), payments=[{"type": kind.value, "sum": Decimal("50.00")}]))
    assert r.payments == (fiscal.Payment(kind, 5000),)


@pytest.mark.parametrize(
    ("alias", "vat"), [("0", Vat.VAT0), ("10", Vat.VAT10), ("20", Vat.VAT20), ("120", Vat.VAT120)]
)
def test_bare_vat_rates_as_atol_accepts_them(alias: str, vat: Vat) -> None:
    assert receipt_of(sell(position(tax=alias))).items[0].vat is vat


def test_ukrainian_names_through_the_mapping() -> None:
    task = sell(
        position("Хліб", "30.00", "2", tax="ПДВ 20%", measurementUnit="шт"),
        position("Сир", "200.00", "0.5", tax="Без ПДВ", measurementUnit="кг"),
        payments=[{"type": "Картка", "sum": Decimal("60")}, {"type": "Готівка", "sum": 100}],
    )
    r = receipt_of(task)
    assert [(i.vat, i.measurement_unit) for i in r.items] == [(Vat.VAT20, 0), (Vat.NONE, 11)]
    assert r.payments == (
        fiscal.Payment(PaymentType.ELECTRONICALLY, 6000),
        fiscal.Payment(PaymentType.CASH, 10000),
    )
    assert r.change == 0


def test_stored_tasks_hold_atol_names_and_parse_again_without_the_mapping() -> None:
    task = sell(
        position("Хліб", "30.00", "2", tax="ПДВ 20%", measurementUnit="шт"),
        payments=[{"type": "Готівка", "sum": Decimal("100.00")}],
    )
    parsed = parse_request(body(task, {"type": "getDeviceStatus"}), UA)
    stored = json.loads(parsed.tasks_json)
    assert stored[0]["items"][0]["tax"] == {"type": "vat20"}
    assert stored[0]["items"][0]["measurementUnit"] == "piece"
    assert stored[0]["payments"] == [{"type": "cash", "sum": 100.0}]
    assert '"sum":100.00' in parsed.tasks_json  # exact, not re-rendered through float
    again = parse_tasks_json(parsed.tasks_json, NO_MAPPING, job_id="job-1")
    assert again == parsed.tasks


def test_plain_json_floats_parse_the_same_as_decimals() -> None:
    # The worker may hand over objects from a plain json.loads.
    text = body(sell(position("Сыр", "89.90", "0.357", "32.09")))
    exact = parse_request(text, UA).tasks[0]
    plain = parse_task(json.loads(text)["request"][0], "request[0]", UA, job_id="job-1")
    assert plain == exact


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("fullPrepayment", 1),
        ("prepayment", 2),
        ("advance", 3),
        ("fullPayment", 4),
        ("partialPayment", 5),
        ("credit", 6),
        ("creditPayment", 7),
        (7, 7),
    ],
)
def test_payment_methods(name: str | int, code: int) -> None:
    item = receipt_of(sell(position(paymentMethod=name))).items[0]
    assert item.payment_method == code


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("commodity", 1),
        ("excise", 2),
        ("job", 3),
        ("service", 4),
        ("gamblingBet", 5),
        ("gamblingPrize", 6),
        ("lottery", 7),
        ("lotteryPrize", 8),
        ("intellectualActivity", 9),
        ("payment", 10),
        ("agentCommission", 11),
        ("composite", 12),
        ("another", 13),
        ("commodityWithoutMarking", 32),
        ("exciseWithoutMarking", 30),
        (27, 27),
        (1, 1),
    ],
)
def test_payment_objects(name: str | int, code: int) -> None:
    assert receipt_of(sell(position(paymentObject=name))).items[0].payment_object == code


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("piece", 0),
        ("gram", 10),
        ("kilogram", 11),
        ("ton", 12),
        ("centimeter", 20),
        ("decimeter", 21),
        ("meter", 22),
        ("squareCentimeter", 30),
        ("squareDecimeter", 31),
        ("squareMeter", 32),
        ("milliliter", 40),
        ("liter", 41),
        ("cubicMeter", 42),
        ("kilowattHour", 50),
        ("gkal", 51),
        ("day", 70),
        ("hour", 71),
        ("minute", 72),
        ("second", 73),
        ("kilobyte", 80),
        ("megabyte", 81),
        ("gigabyte", 82),
        ("terabyte", 83),
        ("otherUnits", 255),
        (11, 11),
    ],
)
def test_measurement_units(name: str | int, code: int) -> None:
    assert receipt_of(sell(position(measurementUnit=name))).items[0].measurement_unit == code


@pytest.mark.parametrize(
    ("name", "flag"),
    [
        ("osn", fiscal.TaxationType.OSN),
        ("usnIncome", fiscal.TaxationType.USN_INCOME),
        ("usnIncomeOutcome", fiscal.TaxationType.USN_INCOME_OUTCOME),
        ("esn", fiscal.TaxationType.ESN),
        ("patent", fiscal.TaxationType.PATENT),
    ],
)
def test_taxation_types(name: str, flag: fiscal.TaxationType) -> None:
    assert receipt_of(sell(taxationType=name)).taxation is flag


# --- payments, change, VAT -------------------------------------------------------------


def test_change_comes_from_cash() -> None:
    r = receipt_of(
        sell(
            position("Сыр", "89.90", "0.357", "32.09"),
            payments=[
                {"type": "electronically", "sum": Decimal("20.00")},
                {"type": "cash", "sum": Decimal("50")},
            ],
        )
    )
    assert (r.total, r.paid, r.change) == (3209, 7000, 3791)


def test_vat_sums_per_rate() -> None:
    r = receipt_of(
        sell(
            position("A", "100.00", "1", tax="vat20"),
            position("B", "50.00", "1", tax="vat20"),
            position("C", "110.00", "1", tax="vat10"),
            position("D", "10.00", "1", tax="none"),
        )
    )
    assert r.vat_sums() == {Vat.VAT20: 2500, Vat.VAT10: 1000, Vat.NONE: 0}


# --- other tasks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "expected", "fiscal_doc"),
    [
        ({"type": "openShift"}, OpenShiftTask(None), True),
        (
            {"type": "openShift", "operator": {"name": "Кассир", "vatin": "1234567890"}},
            OpenShiftTask(fiscal.Operator("Кассир", "1234567890")),
            True,
        ),
        (
            {"type": "closeShift", "operator": {"name": "Кассир"}},
            CloseShiftTask(fiscal.Operator("Кассир")),
            True,
        ),
        ({"type": "closeShift", "electronically": False}, CloseShiftTask(None), True),
        ({"type": "reportX"}, ReportXTask(), False),
        ({"type": "continuePrint"}, ContinuePrintTask(), False),
        ({"type": "getDeviceStatus"}, QueryTask(QueryKind.DEVICE_STATUS), False),
        ({"type": "getShiftStatus"}, QueryTask(QueryKind.SHIFT_STATUS), False),
        ({"type": "getFnStatus"}, QueryTask(QueryKind.FN_STATUS), False),
        ({"type": "ofdExchangeStatus"}, QueryTask(QueryKind.OFD_EXCHANGE_STATUS), False),
        ({"type": "getFnInfo"}, QueryTask(QueryKind.FN_STATUS, info=True), False),
        ({"type": "getShiftTotals"}, QueryTask(QueryKind.SHIFT_TOTALS), False),
        (
            {"type": "cashIn", "cashSum": Decimal("1500.50"), "operator": {"name": "Кассир"}},
            tasks.CashTask(fiscal.CashDirection.IN, 150050, fiscal.Operator("Кассир")),
            True,
        ),
        (
            {"type": "cashOut", "cashSum": Decimal("10")},
            tasks.CashTask(fiscal.CashDirection.OUT, 1000),
            True,
        ),
    ],
)
def test_other_tasks(task: Json, expected: tasks.FiscalTask, fiscal_doc: bool) -> None:
    (parsed,) = parse(task)
    assert parsed == expected
    assert parsed.is_fiscal is fiscal_doc
    assert parsed.type_name == task["type"]
    assert describe(parsed) == task["type"]


def test_request_as_a_single_object_and_several_tasks() -> None:
    single = parse_request(dumps({"uuid": "a", "request": {"type": "reportX"}}), UA)
    assert single.tasks == (ReportXTask(),)
    several = parse(sell(), {"type": "closeShift"}, {"type": "getFnStatus"})
    assert [t.type_name for t in several] == ["sell", "closeShift", "getFnStatus"]


@pytest.mark.parametrize(
    "uuid", ["0b7d6c3e-2f1a-4a9e-9b1e-5d3f2c1b0a99", "crm:order.123_4", "x", "a" * 64]
)
def test_good_uuids(uuid: str) -> None:
    assert parse_request(body({"type": "reportX"}, uuid=uuid), UA).uuid == uuid


def test_utf8_bom_and_bytes_are_accepted() -> None:
    raw = ("\ufeff" + body(sell())).encode("utf-8")
    assert parse_request(raw, UA).uuid == "job-1"


def test_describe_has_no_personal_data() -> None:
    (task,) = parse(
        sell(
            position("Сыр", "89.90", "0.357", "32.09"),
            operator={"name": "Кассир Иванова", "vatin": "123456789012"},
            clientInfo={"emailOrPhone": "buyer@example.com"},
            electronically=True,
            payments=[{"type": "cash", "sum": Decimal("50")}],
        )
    )
    text = describe(task)
    assert text == "sell: 1 line, total 32.09, paid cash 50.00, change 17.91, electronic only"
    for secret in ("Иванова", "123456789012", "buyer", "example"):
        assert secret not in text


# --- rejections ------------------------------------------------------------------------


def _item(**fields: Any) -> Callable[[Json], None]:
    """Edit the first item: set fields, a value of ... deletes the field."""

    def change(task: Json) -> None:
        for key, value in fields.items():
            if value is ...:
                del task["items"][0][key]
            else:
                task["items"][0][key] = value

    return change


def _become(new: Json) -> Callable[[Json], None]:
    """Replace the whole task with `new`."""

    def change(task: Json) -> None:
        task.clear()
        task.update(new)

    return change


def _set(**fields: Any) -> Callable[[Json], None]:
    """Edit the task: set fields, a value of ... deletes the field."""

    def change(task: Json) -> None:
        for key, value in fields.items():
            if value is ...:
                del task[key]
            else:
                task[key] = value

    return change


I0 = "request[0].items[0]"
NESTED_33: list[Any] = [1]
for _ in range(32):
    NESTED_33 = [NESTED_33]  # 33 lists: the task is level 0, the 33rd list is level 33
D = Decimal
ACCEPTED_PAYMENTS = "cash, electronically, prepaid, credit, other, Готівка, Картка"
ACCEPTED_VAT = (
    "none, vat0, vat5, vat7, vat10, vat20, vat22, vat105, vat107, vat110, vat120, vat122, "
    "ПДВ 20%, Без ПДВ"
)

REJECTIONS: list[tuple[str, Callable[[Json], None], str, str]] = [
    ("price 3 decimals", _item(price=D("10.123")), f"{I0}.price", "more than 2 decimals"),
    ("price negative", _item(price=D("-1")), f"{I0}.price", "must not be negative"),
    ("price 1e400", _item(price=D("1e400")), f"{I0}.price", "too large (at most 9999999999.99)"),
    ("price boolean", _item(price=True), f"{I0}.price", "must be a number"),
    ("price string", _item(price="50.00"), f"{I0}.price", "must be a number"),
    ("price missing", _item(price=...), f"{I0}.price", "required"),
    ("price null", _item(price=None), f"{I0}.price", "required"),
    ("name missing", _item(name=...), f"{I0}.name", "required"),
    ("name too long", _item(name="я" * 129), f"{I0}.name", "longer than 128 characters"),
    ("name blank", _item(name="  "), f"{I0}.name", "must not be empty"),
    ("name control", _item(name="a\nb"), f"{I0}.name", "contains control characters"),
    ("name number", _item(name=5), f"{I0}.name", "must be a string"),
    ("quantity zero", _item(quantity=D("0")), f"{I0}.quantity", "must be greater than 0"),
    ("quantity negative", _item(quantity=D("-1")), f"{I0}.quantity", "must not be negative"),
    (
        "quantity 7 decimals",
        _item(quantity=D("1.0000001")),
        f"{I0}.quantity",
        "more than 6 decimals",
    ),
    (
        "quantity huge",
        _item(quantity=D("1e400")),
        f"{I0}.quantity",
        "too large (at most 100000000)",
    ),
    ("quantity boolean", _item(quantity=False), f"{I0}.quantity", "must be a number"),
    ("amount missing", _item(amount=...), f"{I0}.amount", "required"),
    (
        "amount over price×qty+1",
        _item(price=D("89.90"), quantity=D("0.357"), amount=D("32.11")),
        f"{I0}.amount",
        "more than price × quantity (32.0943) by more than 1 kopeck",
    ),
    ("tax missing", _item(tax=...), f"{I0}.tax", "required"),
    ("tax not object", _item(tax="vat10"), f"{I0}.tax", "must be an object"),
    ("tax type missing", _item(tax={}), f"{I0}.tax.type", "required"),
    (
        "unmapped VAT",
        _item(tax={"type": "НДС 18%"}),
        f"{I0}.tax.type",
        f"unknown VAT rate 'НДС 18%'; accepted: {ACCEPTED_VAT}",
    ),
    (
        "obsolete vat18",
        _item(tax={"type": "vat18"}),
        f"{I0}.tax.type",
        f"unknown VAT rate 'vat18'; accepted: {ACCEPTED_VAT}",
    ),
    (
        "unknown unit",
        _item(measurementUnit="ящик"),
        f"{I0}.measurementUnit",
        "unknown measurement unit 'ящик'; accepted: piece, gram, kilogram, ton, centimeter, "
        "decimeter, meter, squareCentimeter, squareDecimeter, squareMeter, milliliter, liter, "
        "cubicMeter, kilowattHour, gkal, day, hour, minute, second, kilobyte, megabyte, "
        "gigabyte, terabyte, otherUnits, шт, кг",
    ),
    (
        "unit code",
        _item(measurementUnit=13),
        f"{I0}.measurementUnit",
        "must be one of 0, 10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 70, 71, 72, "
        "73, 80, 81, 82, 83, 255",
    ),
    (
        "payment method",
        _item(paymentMethod="full"),
        f"{I0}.paymentMethod",
        "unknown payment method 'full'; accepted: fullPrepayment, prepayment, advance, "
        "fullPayment, partialPayment, credit, creditPayment",
    ),
    ("payment method code", _item(paymentMethod=8), f"{I0}.paymentMethod", "must be from 1 to 7"),
    ("payment object code", _item(paymentObject=34), f"{I0}.paymentObject", "must be from 1 to 33"),
    (
        "payment object half",
        _item(paymentObject=D("1.5")),
        f"{I0}.paymentObject",
        "must be from 1 to 33",
    ),
    ("department 0", _item(department=0), f"{I0}.department", "must be from 1 to 16"),
    ("department 17", _item(department=17), f"{I0}.department", "must be from 1 to 16"),
    (
        "marking code on an unmarked item",
        _item(imcParams={"imc": "x"}),
        f"{I0}.imcParams",
        "a marking code goes with paymentObject 33 (commodityWithMarking) or 31 "
        "(exciseWithMarking); this item's paymentObject is 1",
    ),
    (
        "item agent",
        _item(agentInfo={"agents": ["another"]}),
        f"{I0}.agentInfo",
        "agent data (tags 1222, 1223…) is not supported yet",
    ),
    (
        "item type",
        _item(type="userAttribute"),
        f"{I0}.type",
        "give the user attribute as the receipt's userAttribute {name, value}",
    ),
    ("item type unknown", _item(type="magic"), f"{I0}.type", "item type 'magic' is not supported"),
    ("item type missing", _item(type=...), f"{I0}.type", "required"),
    ("items missing", _set(items=...), "request[0].items", "required"),
    ("items empty", _set(items=[]), "request[0].items", "must contain at least one position"),
    (
        "items text only",
        _set(items=[{"type": "text", "text": "hi"}]),
        f"{I0}.type",
        "text lines are not printed by this gateway; remove the item",
    ),
    ("items not list", _set(items={}), "request[0].items", "must be a list"),
    ("item not object", _set(items=[1]), f"{I0}", "must be an object"),
    ("too many items", _set(items=[position()] * 101), "request[0].items", "more than 100 items"),
    (
        "total mismatch",
        _set(total=D("100")),
        "request[0].total",
        "does not match the sum of the items (50.00)",
    ),
    ("total 3 decimals", _set(total=D("50.001")), "request[0].total", "more than 2 decimals"),
    (
        "payments below total",
        _set(payments=[{"type": "cash", "sum": D("40")}]),
        "request[0].payments",
        "40.00 paid is less than the total 50.00",
    ),
    (
        "payments empty",
        _set(payments=[]),
        "request[0].payments",
        "0.00 paid is less than the total 50.00",
    ),
    ("payments missing", _set(payments=...), "request[0].payments", "required"),
    (
        "change without cash",
        _set(payments=[{"type": "electronically", "sum": D("60")}]),
        "request[0].payments",
        "non-cash payments 60.00 exceed the total 50.00; change can only be given from cash",
    ),
    (
        "change beyond cash",
        _set(payments=[{"type": "cash", "sum": D("5")}, {"type": "prepaid", "sum": D("55")}]),
        "request[0].payments",
        "non-cash payments 55.00 exceed the total 50.00; change can only be given from cash",
    ),
    (
        "unmapped payment name",
        _set(payments=[{"type": "Кредитка", "sum": D("50")}]),
        "request[0].payments[0].type",
        f"unknown payment type 'Кредитка'; accepted: {ACCEPTED_PAYMENTS}",
    ),
    (
        "payment zero",
        _set(payments=[{"type": "cash", "sum": 0}]),
        "request[0].payments[0].sum",
        "must be greater than 0",
    ),
    (
        "payment sum missing",
        _set(payments=[{"type": "cash"}]),
        "request[0].payments[0].sum",
        "required",
    ),
    (
        "payment type number",
        _set(payments=[{"type": 0, "sum": 50}]),
        "request[0].payments[0].type",
        "must be a string",
    ),
    (
        "too many payments",
        _set(payments=[{"type": "cash", "sum": 5}] * 11),
        "request[0].payments",
        "more than 10 payments",
    ),
    (
        "taxation",
        _set(taxationType="envd"),
        "request[0].taxationType",
        "unknown taxation type 'envd'; accepted: osn, usnIncome, usnIncomeOutcome, esn, patent",
    ),
    (
        "electronically string",
        _set(electronically="yes"),
        "request[0].electronically",
        "must be true or false",
    ),
    (
        "electronically without contact",
        _set(electronically=True),
        "request[0].clientInfo.emailOrPhone",
        "required when electronically is true",
    ),
    (
        "operator name missing",
        _set(operator={"vatin": "1234567890"}),
        "request[0].operator.name",
        "required",
    ),
    (
        "operator name long",
        _set(operator={"name": "x" * 65}),
        "request[0].operator.name",
        "longer than 64 characters",
    ),
    (
        "operator vatin short",
        _set(operator={"name": "К", "vatin": "123"}),
        "request[0].operator.vatin",
        "must be 10 or 12 digits",
    ),
    (
        "operator vatin 11",
        _set(operator={"name": "К", "vatin": "12345678901"}),
        "request[0].operator.vatin",
        "must be 10 or 12 digits",
    ),
    (
        "operator vatin number",
        _set(operator={"name": "К", "vatin": 1234567890}),
        "request[0].operator.vatin",
        "must be 10 or 12 digits",
    ),
    ("operator not object", _set(operator="Кассир"), "request[0].operator", "must be an object"),
    (
        "bad email",
        _set(clientInfo={"emailOrPhone": "a@b"}),
        "request[0].clientInfo.emailOrPhone",
        "not an e-mail address like name@example.com",
    ),
    (
        "bad email long",
        _set(clientInfo={"emailOrPhone": "a" * 60 + "@b.ru"}),
        "request[0].clientInfo.emailOrPhone",
        "not an e-mail address like name@example.com",
    ),
    (
        "bad phone",
        _set(clientInfo={"emailOrPhone": "89991234567"}),
        "request[0].clientInfo.emailOrPhone",
        "not an e-mail address or a phone number like +79991234567",
    ),
    (
        "short phone",
        _set(clientInfo={"emailOrPhone": "+7999123"}),
        "request[0].clientInfo.emailOrPhone",
        "not an e-mail address or a phone number like +79991234567",
    ),
    (
        "receipt agent",
        _set(agentInfo={"agents": ["another"]}),
        "request[0].agentInfo",
        "agent data (tags 1057, 1223…) is not supported yet",
    ),
    (
        "correction",
        _set(type="sellCorrection"),
        "request[0].type",
        "receipt type 'sellCorrection' is not supported yet",
    ),
    (
        "cashIn",
        _set(type="cashIn"),
        "request[0].items",
        "unknown field; every field is carried into the fiscal document or refused, so remove it or check its spelling",
    ),
    ("cashIn no sum", _become({"type": "cashIn"}), "request[0].cashSum", "required"),
    (
        "cashOut zero",
        _become({"type": "cashOut", "cashSum": 0}),
        "request[0].cashSum",
        "must be greater than 0",
    ),
    (
        "nonFiscal",
        _become({"type": "nonFiscal"}),
        "request[0].type",
        "task type 'nonFiscal' is not supported yet",
    ),
    ("unknown task", _set(type="printMagic"), "request[0].type", "unknown task type 'printMagic'"),
    ("task type missing", _set(type=...), "request[0].type", "required"),
    ("task type number", _set(type=1), "request[0].type", "must be a string"),
    (
        "nested too deep",
        _set(extra=NESTED_33),
        "request[0].extra" + "[0]" * 31,
        "nested more than 32 levels deep",
    ),
]


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [pytest.param(c, f, r, id=name) for name, c, f, r in REJECTIONS],
)
def test_rejections(change: Callable[[Json], None], field: str, reason: str) -> None:
    assert error_of(edited(change)) == (field, reason)


def _raw_price(token: str) -> str:
    """A body whose first item's price is the raw JSON token."""
    return edited(_item(price=D("123.45"))).replace("123.45", token)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("NaN", "NaN is not a number"),
        ("Infinity", "Infinity is not a number"),
        ("-Infinity", "-Infinity is not a number"),
        ("1e400", "too large (at most 9999999999.99)"),
        ("1E-400", "more than 2 decimals"),
        ("1" * 5000, "too large (at most 9999999999.99)"),
        ("50.000", None),
    ],
)
def test_raw_number_tokens(token: str, reason: str | None) -> None:
    raw = _raw_price(token)
    if reason is None:
        parse_request(raw, UA)
    else:
        assert error_of(raw) == (f"{I0}.price", reason)


def test_nan_in_an_ignored_field_is_still_refused() -> None:
    raw = edited(_set(extra={"x": D("1.5")})).replace("1.5", "NaN")
    assert error_of(raw) == ("request[0].extra.x", "NaN is not a number")


def test_first_error_wins() -> None:
    def two_errors(task: Json) -> None:
        task["items"].append(position(price="1.001"))
        task["payments"] = [{"type": "nope", "sum": 1}]
        task["items"][0]["name"] = ""

    assert error_of(edited(two_errors)) == (f"{I0}.name", "must not be empty")


def test_error_in_a_later_task_names_its_index() -> None:
    bad = sell(position(price="-5"))
    assert error_of(body({"type": "openShift"}, bad)) == (
        "request[1].items[0].price",
        "must not be negative",
    )


def test_print_failure_becomes_an_amount_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(item: fiscal.Item, tolerance: int = 1) -> tuple[fiscal.PrintLine, ...]:
        raise ValueError("does not fit")

    monkeypatch.setattr(fiscal, "print_lines", refuse)
    assert error_of(body(sell())) == (f"{I0}.amount", "cannot be printed: does not fit")


# --- envelope --------------------------------------------------------------------------


def test_body_too_large() -> None:
    raw = body(sell(position(), note="x" * 40_000))
    with pytest.raises(RequestTooLarge) as info:
        parse_request(raw, UA)
    assert info.value.code == "too_large"
    assert (info.value.field, info.value.reason) == ("", "request body is larger than 32768 bytes")
    assert isinstance(info.value, ValidationError)


def test_size_limit_counts_utf8_bytes() -> None:
    task = sell(position(), note="я" * 9000)  # 9000 characters, 18000 bytes
    raw = body(task)
    assert len(raw) < 16_000 < len(raw.encode())
    with pytest.raises(RequestTooLarge):
        parse_request(raw, UA, max_bytes=16_000)


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        (
            '{"uuid": "a", "request": [',
            "",
            "not valid JSON: Expecting value at line 1 column 27 (char 26)",
        ),
        ("", "", "not valid JSON: Expecting value at line 1 column 1 (char 0)"),
        (b'{"uuid": "\xff"}', "", "not UTF-8: invalid byte at position 10"),
        ('{"uuid": "a", "uuid": "b", "request": []}', "", "not valid JSON: duplicate key 'uuid'"),
        ("[]", "", "the body must be a JSON object"),
        ('{"request": [{"type": "reportX"}]}', "uuid", "required"),
        (
            '{"uuid": "", "request": [{"type": "reportX"}]}',
            "uuid",
            "must be 1 to 64 characters: A-Z a-z 0-9 - _ . :",
        ),
        (
            '{"uuid": "a b", "request": [{"type": "reportX"}]}',
            "uuid",
            "must be 1 to 64 characters: A-Z a-z 0-9 - _ . :",
        ),
        (
            '{"uuid": "ы", "request": [{"type": "reportX"}]}',
            "uuid",
            "must be 1 to 64 characters: A-Z a-z 0-9 - _ . :",
        ),
        (
            '{"uuid": 12, "request": [{"type": "reportX"}]}',
            "uuid",
            "must be 1 to 64 characters: A-Z a-z 0-9 - _ . :",
        ),
        (
            '{"uuid": "' + "a" * 65 + '", "request": [{"type": "reportX"}]}',
            "uuid",
            "must be 1 to 64 characters: A-Z a-z 0-9 - _ . :",
        ),
        ('{"uuid": "a"}', "request", "required"),
        ('{"uuid": "a", "request": []}', "request", "must not be empty"),
        ('{"uuid": "a", "request": "sell"}', "request", "must be a list of tasks"),
        ('{"uuid": "a", "request": [1]}', "request[0]", "must be an object"),
        ('{"uuid": "a", "request": [{"type": "reportX"}, {}]}', "request[1].type", "required"),
    ],
)
def test_envelope_rejections(raw: str | bytes, field: str, reason: str) -> None:
    assert error_of(raw) == (field, reason)


def test_deep_nesting_is_not_a_crash() -> None:
    raw = '{"uuid": "a", "request": ' + "[" * 16_000 + "]" * 16_000 + "}"
    field, reason = error_of(raw)
    assert field.startswith("request[0][0][0]")  # where the nesting went too deep
    assert reason == "nested more than 64 levels deep"


def test_negative_zero_is_zero() -> None:
    item = position("Пакет", "0", "1", "0")
    raw = body(sell(item, payments=[])).replace('"price":0', '"price":-0')
    assert '"price":-0' in raw
    assert parse_request(raw, UA).tasks[0] == parse(sell(item, payments=[]))[0]


def test_dumps_round_trips_exact_numbers() -> None:
    value = {"a": [D("0.10"), D("1E+400"), D("-0"), 7, True, None, 'я\n"q"'], "b": {}}
    text = dumps(value)
    assert decimal_json.loads(text) == {
        "a": [D("0.10"), D("1E+400"), D("-0"), D(7), True, None, 'я\n"q"'],
        "b": {},
    }
    assert '"a":[0.10,1E+400,-0,7,true,null,' in text
