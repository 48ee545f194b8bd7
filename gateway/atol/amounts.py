"""Pure: the rule a position's sum must meet against its price and quantity.

The rule, as the register applies it ([PROTO] FF46h p.54 note 1): the sum of a line may differ
from price × quantity by at most 1 kopeck, and the register compares it with the *exact*
product, not with a rounded one. Choices made here:

- The comparison is done in kopecks × 10⁶ (price in kopecks × quantity in millionths), so
  nothing is rounded: 66.65 × 0.000618 = 0.0411897, and a sum of 0.03 is 1.119 kopecks off.
  Rounding the product first (0.04) would let that line through to a register refusal (33h).
- A sum more than 1 kopeck above the exact product is refused: a line never costs more than
  its price × quantity.
- A sum below the product is a discount. The box carries a discount by lowering the printed
  unit price, or by splitting the line (`fiscal.print_lines`); every line it would send is
  checked against the register's rule here, and a line the register would refuse is refused
  now, before anything is journaled, naming the position's `amount`.
- The same rule holds for every register driver, so a task accepted by one box is accepted by
  any other.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from gateway.atol.tasks import format_money
from gateway.domain import fiscal
from gateway.domain.errors import ValidationError

# The register's tolerance, in kopecks × 10⁶ ([PROTO] FF46h p.54 note 1: ±1 kopeck).
TOLERANCE: Final = fiscal.QTY_SCALE


def exact_rubles(kopecks_x_qty: int) -> str:
    """Kopecks × 10⁶ as rubles, every digit kept: 4118970 -> "0.0411897"."""
    text = format(Decimal(kopecks_x_qty).scaleb(-8).normalize(), "f")
    whole, _, part = text.partition(".")
    return f"{whole}.{part.ljust(2, '0')}"


def within_tolerance(price: int, quantity: int, amount: int) -> bool:
    """|price × quantity − amount| ≤ 1 kopeck, exactly (price and amount in kopecks, qty ×10⁶)."""
    return abs(amount * fiscal.QTY_SCALE - price * quantity) <= TOLERANCE


def check_not_above(price: int, quantity: int, amount: int, path: str) -> None:
    """Refuse a sum more than 1 kopeck above the exact price × quantity."""
    exact = price * quantity
    if amount * fiscal.QTY_SCALE > exact + TOLERANCE:
        raise ValidationError(
            path, f"more than price × quantity ({exact_rubles(exact)}) by more than 1 kopeck"
        )


def check_printable(item: fiscal.Item, path: str) -> tuple[fiscal.PrintLine, ...]:
    """The lines that print `item`, each within the register's rule; else a ValidationError.

    `path` is the position's `amount`, the value a client changes to fix it.
    """
    try:
        lines = fiscal.print_lines(item)
    except ValueError as err:
        raise ValidationError(path, f"cannot be printed: {err}") from None
    for line in lines:
        if not within_tolerance(line.price, line.quantity, line.amount):
            product = line.price * line.quantity
            raise ValidationError(
                path,
                f"cannot be printed: the register takes a sum within 1 kopeck of the exact "
                f"price × quantity ({exact_rubles(product)}), e.g. "
                f"{format_money(fiscal.round_qty(product))}",
            )
    return lines
