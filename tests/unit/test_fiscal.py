"""Money arithmetic of the fiscal domain: rounding, VAT, totals, change and print lines."""

from __future__ import annotations

import itertools

import pytest

from gateway.domain.fiscal import (
    QTY_SCALE,
    Item,
    Payment,
    PaymentType,
    PrintLine,
    Receipt,
    ReceiptType,
    Vat,
    print_lines,
    receipt_lines,
    round_qty,
)


def item(price: int, quantity: int, amount: int | None = None, vat: Vat = Vat.VAT20) -> Item:
    """A line: price in kopecks, quantity ×10⁶, amount defaults to price × quantity."""
    full = round_qty(price * quantity)
    return Item("x", price, quantity, full if amount is None else amount, vat)


def receipt(items: list[Item], payments: list[Payment]) -> Receipt:
    """A sell receipt."""
    return Receipt(ReceiptType.SELL, None, tuple(items), tuple(payments))


@pytest.mark.parametrize(
    ("kopecks_x_qty", "kopecks"),
    [
        (0, 0),
        (3_209_430_000, 3209),
        (3_209_500_000, 3210),
        (3_209_499_999, 3209),
        (499_999, 0),
        (500_000, 1),
    ],
)
def test_round_qty_half_up(kopecks_x_qty: int, kopecks: int) -> None:
    assert round_qty(kopecks_x_qty) == kopecks


def test_weight_line_full_amount() -> None:
    assert item(8990, 357_000).full_amount == 3209  # 89.90 × 0.357 kg = 32.0943


@pytest.mark.parametrize(
    ("vat", "amount", "tax"),
    [
        (Vat.VAT20, 15000, 2500),
        (Vat.VAT120, 15000, 2500),
        (Vat.VAT10, 11000, 1000),
        (Vat.VAT110, 11000, 1000),
        (Vat.VAT5, 10500, 500),
        (Vat.VAT7, 10700, 700),
        (Vat.VAT22, 12200, 2200),
        (Vat.VAT0, 10000, 0),
        (Vat.NONE, 10000, 0),
        (Vat.VAT20, 3, 1),  # 0.5 kopeck rounds up
        (Vat.VAT20, 2, 0),  # 0.33 kopeck rounds down
    ],
)
def test_tax_included_in_an_amount(vat: Vat, amount: int, tax: int) -> None:
    assert vat.tax_of(amount) == tax


def test_vat_sums_per_rate_on_the_rate_total() -> None:
    r = receipt(
        [
            item(10000, QTY_SCALE, vat=Vat.VAT20),
            item(5000, QTY_SCALE, vat=Vat.VAT20),
            item(11000, QTY_SCALE, vat=Vat.VAT10),
            item(700, QTY_SCALE, vat=Vat.NONE),
        ],
        [Payment(PaymentType.CASH, 26700)],
    )
    assert r.vat_sums() == {Vat.VAT20: 2500, Vat.VAT10: 1000, Vat.NONE: 0}


def test_vat_is_computed_on_the_sum_not_per_line() -> None:
    # Three lines of 0.03 at 20/120: 0.005 each would round to 0.01 × 3; on 0.09 it is 0.015 -> 0.02.
    r = receipt([item(3, QTY_SCALE)] * 3, [Payment(PaymentType.CASH, 9)])
    assert r.vat_sums() == {Vat.VAT20: 2}


@pytest.mark.parametrize(
    ("payments", "total", "paid", "change"),
    [
        ([Payment(PaymentType.CASH, 5000)], 3209, 5000, 1791),
        ([Payment(PaymentType.ELECTRONICALLY, 3209)], 3209, 3209, 0),
        (
            [Payment(PaymentType.ELECTRONICALLY, 2000), Payment(PaymentType.CASH, 2000)],
            3209,
            4000,
            791,
        ),
        ([], 3209, 0, 0),  # underpaid: no negative change (validation refuses such receipts)
    ],
)
def test_total_paid_change(payments: list[Payment], total: int, paid: int, change: int) -> None:
    r = receipt([item(8990, 357_000)], payments)
    assert (r.total, r.paid, r.change) == (total, paid, change)


def test_total_is_the_sum_of_the_amounts_not_of_price_times_quantity() -> None:
    r = receipt([item(20, 7 * QTY_SCALE, 100), item(8990, 357_000)], [])
    assert r.total == 100 + 3209


def test_exact_line_prints_as_is() -> None:
    line = item(8990, 357_000)
    assert print_lines(line) == (PrintLine(line, 8990, 357_000, 3209),)


def test_discount_lowers_the_price() -> None:
    line = item(1000, 3 * QTY_SCALE, 2900)  # 3 × 10.00 sold for 29.00
    (printed,) = print_lines(line)
    assert printed.quantity == 3 * QTY_SCALE
    assert printed.amount == 2900
    assert abs(round_qty(printed.price * printed.quantity) - 2900) <= 1


def test_seven_for_one_ruble_splits_in_two() -> None:
    line = item(20, 7 * QTY_SCALE, 100)  # 7 × 0.20 = 1.40 sold for 1.00
    assert print_lines(line) == (
        PrintLine(line, 14, 5 * QTY_SCALE, 70),
        PrintLine(line, 15, 2 * QTY_SCALE, 30),
    )


def test_zero_tolerance_still_splits_exactly() -> None:
    line = item(20, 7 * QTY_SCALE, 100)
    lines = print_lines(line, tolerance=0)
    assert sum(x.amount for x in lines) == 100
    assert all(round_qty(x.price * x.quantity) == x.amount for x in lines)


QUANTITIES = [QTY_SCALE * n for n in (1, 2, 3, 7, 12)] + [
    357_000,
    1_999_000,
    2_500_000,
    3_333_333,
    12_750_000,
]
PRICES = [0, 1, 2, 3, 7, 19, 20, 99, 101, 8990, 123_457]


@pytest.mark.parametrize(("quantity", "price"), list(itertools.product(QUANTITIES, PRICES)))
def test_every_amount_up_to_full_prints_exactly(quantity: int, price: int) -> None:
    full = round_qty(price * quantity)
    for amount in sorted({*range(min(full + 2, 150)), full // 2, full - 1, full, full + 1} - {-1}):
        line = item(price, quantity, amount)
        lines = print_lines(line)
        assert sum(x.amount for x in lines) == amount
        assert sum(x.quantity for x in lines) == quantity
        for x in lines:
            assert x.price >= 0
            assert x.quantity > 0
            assert abs(round_qty(x.price * x.quantity) - x.amount) <= 1


def test_receipt_lines_flattens_items() -> None:
    lines = receipt_lines([item(20, 7 * QTY_SCALE, 100), item(8990, 357_000)])
    assert [x.amount for x in lines] == [70, 30, 3209]
