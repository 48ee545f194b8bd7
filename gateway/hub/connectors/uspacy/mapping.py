"""Pure: an Uspacy deal and its product list -> the box's ATOL sell task, or the problems.

No I/O here. Every line's name, quantity, price, discount and tax rate is carried into the
task; whatever cannot be carried is named in a refusal, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

from gateway.hub.connectors.uspacy.errors import DealRefused
from gateway.hub.connectors.uspacy.wire import Deal, ProductLine

CENT: Final = Decimal("0.01")
NO_TAX: Final = "none"  # the taxes key for a line without a tax rate
PAYMENT_TYPES: Final = frozenset({"cash", "electronically", "prepaid", "credit", "other"})


@dataclass(frozen=True, slots=True)
class Rules:
    """A portal's choices, made once at install time."""

    trigger_stage: int | None  # the stage that means "fiscalise"; None: not installed yet
    receipt_field: str  # the deal field the receipt link goes into
    taxes: Mapping[str, str]  # tax rate ("20", "7", "0", "none") -> the box's VAT name
    default_payment: str = "electronically"
    payment_field: str | None = None  # a deal field whose value picks the payment type
    payments: Mapping[str, str] = field(default_factory=dict)  # its value -> payment type


def deal_id(deal: Deal) -> int:
    value = deal.get("id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise DealRefused(0, ["the deal has no numeric id"])
    return value


def stage_of(deal: Deal) -> int | None:
    value = deal.get("kanban_stage_id")
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def has_receipt(deal: Deal, rules: Rules) -> bool:
    value = deal.get(rules.receipt_field)
    return bool(value.strip()) if isinstance(value, str) else bool(value)


def is_due(deal: Deal, rules: Rules) -> bool:
    """Only a deal in the trigger stage without a receipt yet is fiscalised."""
    if rules.trigger_stage is None:
        return False
    return stage_of(deal) == rules.trigger_stage and not has_receipt(deal, rules)


def to_task(deal: Deal, lines: list[ProductLine], rules: Rules) -> dict[str, Any]:
    """The sell task; DealRefused lists every problem at once, so a manager fixes them all."""
    ident = deal_id(deal)
    problems: list[str] = []
    if not lines:
        problems.append("the deal has no products")
    items: list[dict[str, Any]] = []
    total = Decimal(0)
    for n, line in enumerate(lines, start=1):
        item = _item(line, n, rules, problems)
        if item is not None:
            items.append(item)
            total += Decimal(str(item["amount"]))
    payment = _payment(deal, rules, problems)
    if problems:
        raise DealRefused(ident, problems)
    if total <= 0:
        raise DealRefused(ident, ["the deal's total is zero"])
    amount = float(total)
    return {
        "type": "sell",
        "items": items,
        "payments": [{"type": payment, "sum": amount}],
        "total": amount,
    }


def _item(line: ProductLine, n: int, rules: Rules, problems: list[str]) -> dict[str, Any] | None:
    where = f"product line {n} ({str(line.get('title') or '').strip() or 'untitled'})"
    before = len(problems)
    name = str(line.get("title") or "").strip()
    if not name:
        problems.append(f"{where}: no name")
    price = _decimal(line.get("price"), f"{where}: price", problems)
    quantity = _decimal(line.get("quantity"), f"{where}: quantity", problems)
    if price is not None and price < 0:
        problems.append(f"{where}: price is negative")
    if quantity is not None and quantity <= 0:
        problems.append(f"{where}: quantity must be above zero")
    if line.get("is_tax_included") in (0, False):
        # Ukrainian receipts show prices with tax; adding it here would change the price.
        problems.append(f"{where}: the price excludes tax; set the tax included in the price")
    vat = _vat(line, where, rules, problems)
    discount = _discount(line, where, price, quantity, problems)
    if len(problems) > before or price is None or quantity is None or vat is None:
        return None
    gross = price * quantity
    amount = (gross - discount).quantize(CENT, ROUND_HALF_UP)
    if amount < 0:
        problems.append(f"{where}: the discount is larger than the line")
        return None
    given = line.get("amount")
    if given is not None and given != "":
        # Uspacy's own line sum must agree with ours, else the discount rule is not the shop's.
        theirs = _decimal(given, f"{where}: amount", problems)
        if theirs is not None and abs(theirs - amount) > CENT:
            problems.append(
                f"{where}: the line sum {theirs} differs from price × quantity less the "
                f"discount ({amount})"
            )
            return None
    return {
        "type": "position",
        "name": name,
        "price": float(price),
        "quantity": float(quantity),
        "amount": float(amount),
        "tax": {"type": vat},
    }


def _vat(line: ProductLine, where: str, rules: Rules, problems: list[str]) -> str | None:
    raw = line.get("tax_rate")
    if raw is None or raw == "":
        key = NO_TAX
    else:
        rate = _decimal(raw, f"{where}: tax rate", problems)
        if rate is None:
            return None
        key = format(rate.normalize(), "f")
    vat = rules.taxes.get(key)
    if vat is None:
        shown = "no tax" if key == NO_TAX else f"{key} %"
        problems.append(f"{where}: tax rate {shown} is not mapped to a tax group of the register")
    return vat


def _discount(
    line: ProductLine,
    where: str,
    price: Decimal | None,
    quantity: Decimal | None,
    problems: list[str],
) -> Decimal:
    value = _decimal(line.get("discount_value") or 0, f"{where}: discount", problems)
    if value is None or value == 0 or price is None or quantity is None:
        return Decimal(0)
    if value < 0:
        problems.append(f"{where}: the discount is negative")
        return Decimal(0)
    kind = line.get("discount_type")
    if kind == "relative":  # per cent of the line
        if value > 100:
            problems.append(f"{where}: the discount is above 100 %")
            return Decimal(0)
        return price * quantity * value / 100
    if kind == "absolute":  # an amount off each unit
        return value * quantity
    problems.append(f"{where}: unknown discount type {kind!r}")
    return Decimal(0)


def _payment(deal: Deal, rules: Rules, problems: list[str]) -> str:
    if rules.payment_field is None:
        return rules.default_payment
    raw = deal.get(rules.payment_field)
    value = _choice(raw)
    if value is None or value == "":
        return rules.default_payment
    kind = rules.payments.get(value)
    if kind is None:
        problems.append(
            f"field {rules.payment_field}: payment type {value!r} is not mapped "
            f"(known: {', '.join(sorted(rules.payments)) or 'none'})"
        )
        return rules.default_payment
    return kind


def _choice(raw: object) -> str | None:
    """A list field's value: a string, a one-element list, or an option object."""
    if isinstance(raw, list):
        raw = raw[0] if len(raw) == 1 else None
    if isinstance(raw, dict):
        raw = raw.get("value", raw.get("title"))
    if isinstance(raw, int | str) and not isinstance(raw, bool):
        return str(raw).strip()
    return None


def _decimal(raw: object, what: str, problems: list[str]) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        problems.append(f"{what}: missing")
        return None
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        problems.append(f"{what}: {raw!r} is not a number")
        return None
    if not value.is_finite():
        problems.append(f"{what}: {raw!r} is not a number")
        return None
    return value


def receipt_link(result: Mapping[str, Any] | None) -> tuple[str, str]:
    """A box result -> (fiscal number, receipt link); either may be "" if the box lacks it."""
    results = (result or {}).get("results")
    first = results[0] if isinstance(results, list) and results else {}
    body = first.get("result") if isinstance(first, dict) else None
    params = body.get("fiscalParams") if isinstance(body, dict) else None
    if not isinstance(params, dict):
        return "", ""
    number = params.get("fiscalCode") or params.get("fiscalDocumentNumber") or ""
    link = params.get("receiptUrl") or params.get("fnsUrl") or ""
    return str(number), str(link)


def failure_text(result: Mapping[str, Any] | None) -> str:
    """The box's reason for not printing, in one line."""
    result = result or {}
    error = result.get("error")
    if not isinstance(error, dict):
        results = result.get("results")
        first = results[0] if isinstance(results, list) and results else {}
        error = first.get("error") if isinstance(first, dict) else None
    if not isinstance(error, dict):
        return "the register did not print the receipt"
    text = str(error.get("description") or error.get("code") or "not printed")
    return f"{error['field']}: {text}" if error.get("field") else text


def done_comment(number: str, link: str) -> str:
    return f"Фіскальний чек № {number or '—'} видано. {link}".strip()


def refused_comment(problems: list[str]) -> str:
    lines = "\n".join(f"- {p}" for p in problems)
    return f"Чек не видано, виправте угоду і поверніть її на етап фіскалізації:\n{lines}"
