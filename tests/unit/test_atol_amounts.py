"""The sum rule of a position: within 1 kopeck of the exact price × quantity, as the register
checks it ([PROTO] FF46h p.54 note 1), refused at the edge otherwise."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

import pytest

from gateway.atol.amounts import (
    check_not_above,
    check_printable,
    exact_rubles,
    within_tolerance,
)
from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.atol.tasks import ReceiptTask
from gateway.domain import fiscal
from gateway.domain.errors import ValidationError

MAPPING = NameMapping()
AMOUNT = "request[0].items[0].amount"


def sell(price: str, quantity: str, amount: str) -> str:
    """One position, paid in cash; numbers as written."""
    task = (
        '{"type": "sell", "items": [{"type": "position", "name": "Товар", '
        f'"price": {price}, "quantity": {quantity}, "amount": {amount}, '
        '"tax": {"type": "none"}}], '
        f'"payments": [{{"type": "cash", "sum": {max(Decimal(amount), Decimal("0.01"))}}}]}}'
    )
    json.loads(task)  # the helper itself must write JSON
    return f'{{"uuid": "amount-1", "request": [{task}]}}'


def item(price: int, quantity: int, amount: int) -> fiscal.Item:
    return fiscal.Item("Товар", price, quantity, amount, fiscal.Vat.NONE)


@pytest.mark.parametrize(
    ("price", "quantity", "amount", "ok"),
    [
        (6665, 618, 4, True),  # 4.11897 kopecks: 0.88 off
        (6665, 618, 5, True),  # 0.88 above
        (6665, 618, 3, False),  # 1.119 below: rounding first would call it 1
        (8990, 357_000, 3209, True),  # 32.0943
        (8990, 357_000, 3210, True),
        (8990, 357_000, 3208, False),  # 1.43 below
        (8990, 357_000, 3211, False),
        (100, 1_500_000, 150, True),
        (1, 1_500_000, 3, False),  # 1.5 above: rounding first (2) would call it 1
        (1, 1_500_000, 0, False),
        (0, 1_000_000, 1, True),  # exactly 1 kopeck off is still within
    ],
)
def test_within_tolerance_uses_the_exact_product(
    price: int, quantity: int, amount: int, ok: bool
) -> None:
    assert within_tolerance(price, quantity, amount) is ok


def test_exact_rubles_keeps_every_digit() -> None:
    assert exact_rubles(6665 * 618) == "0.0411897"
    assert exact_rubles(8990 * 357_000) == "32.0943"
    assert exact_rubles(100 * 1_000_000) == "1.00"
    assert exact_rubles(0) == "0.00"


def test_a_sum_above_the_product_beyond_one_kopeck_is_refused() -> None:
    # 0.01 × 1.5 = 0.015: rounded to 0.02 it looked 1 kopeck from 0.03, exactly it is 1.5.
    with pytest.raises(ValidationError) as err:
        check_not_above(1, 1_500_000, 3, AMOUNT)
    assert err.value.field == AMOUNT
    assert "0.015" in err.value.reason
    check_not_above(1, 1_500_000, 2, AMOUNT)


def test_the_reported_case_is_refused_at_the_edge() -> None:
    # 66.65 × 0.000618 = 0.0411897 sent as 0.03: the register refuses it (33h).
    with pytest.raises(ValidationError) as err:
        parse_request(sell("66.65", "0.000618", "0.03"), MAPPING)
    assert err.value.field == AMOUNT
    assert "0.0411897" in err.value.reason
    assert "0.04" in err.value.reason  # what to send instead
    (task,) = parse_request(sell("66.65", "0.000618", "0.04"), MAPPING).tasks
    assert isinstance(task, ReceiptTask)
    assert task.receipt.items[0].amount == 4


def test_above_by_more_than_a_kopeck_through_the_parser() -> None:
    with pytest.raises(ValidationError) as err:
        parse_request(sell("0.01", "1.5", "0.03"), MAPPING)
    assert err.value.field == AMOUNT
    assert err.value.reason.startswith("more than price × quantity (0.015)")


def test_a_discount_is_printed_with_lines_the_register_takes() -> None:
    # 7 × 0.20 sold for 1.00: two lines, both within the rule.
    lines = check_printable(item(20, 7_000_000, 100), AMOUNT)
    assert sum(line.amount for line in lines) == 100
    assert all(within_tolerance(x.price, x.quantity, x.amount) for x in lines)


PRICES = ["0.01", "0.99", "1.00", "66.65", "89.90", "1234.56"]
QUANTITIES = ["0.000618", "0.001", "0.357", "1", "1.5", "3", "7", "12.345"]


@pytest.mark.parametrize(("price", "quantity"), list(itertools.product(PRICES, QUANTITIES)))
def test_whatever_is_accepted_prints_within_the_rule(price: str, quantity: str) -> None:
    # Every sum from 3 kopecks below to 3 above the product: accepted ones print within the
    # register's rule, refused ones name the amount; a sum within the rule is never refused
    # unless a discount line cannot be made from it.
    exact = Decimal(price) * Decimal(quantity)
    base = exact.quantize(Decimal("0.01"))
    accepted = 0
    for step in range(-3, 4):
        amount = base + Decimal(step) / 100
        if amount < 0:
            continue
        text = sell(price, quantity, str(amount))
        err = _refusal(text)
        if err is not None:
            assert err.field == AMOUNT
            assert abs(amount - exact) > Decimal("0.01") or amount < exact
            continue
        accepted += 1
        (task,) = parse_request(text, MAPPING).tasks
        assert isinstance(task, ReceiptTask)
        for line in fiscal.print_lines(task.receipt.items[0]):
            assert within_tolerance(line.price, line.quantity, line.amount), (amount, line)
        assert amount <= exact + Decimal("0.01")
    assert accepted >= 1  # at least the rounded product itself


def _refusal(text: str) -> ValidationError | None:
    """The ValidationError parsing `text` raises, or None."""
    try:
        parse_request(text, MAPPING)
    except ValidationError as err:
        return err
    return None
