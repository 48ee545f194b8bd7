"""The parser's sum rule against the register's own: the emulator on a real pty is the oracle.

Each case is printed twice over: straight to the register through the Shtrih driver (the
parser bypassed), and through the task parser. The parser must accept exactly what the
register accepts; the register refuses the rest with 33h ([PROTO] FF46h p.54 note 1).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.domain import fiscal
from gateway.domain.errors import ValidationError
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.shtrih.driver import ShtrihRegister
from gateway.registers.shtrih.errors_table import ShtrihError

BAD_PARAMETERS = 0x33  # «Некорректные параметры в команде», [PROTO] p.68

# (price kopecks, quantity ×10⁶, sum kopecks)
CASES = [
    (6665, 618, 3),  # 66.65 × 0.000618 = 0.0411897 sent as 0.03
    (6665, 618, 4),
    (6665, 618, 5),
    (8990, 357_000, 3208),  # 32.0943 sent as 32.08
    (8990, 357_000, 3209),
    (8990, 357_000, 3210),
    (1, 1_500_000, 3),  # 0.015 sent as 0.03
    (1, 1_500_000, 2),
    (20, 7_000_000, 100),  # 7 × 0.20 sold for 1.00: a discount, printed as two lines
    (1000, 3_000_000, 2900),  # 3 × 10.00 for 29.00
]


@pytest.fixture
async def register(tmp_path: Path) -> AsyncIterator[ShtrihRegister]:
    server = EmulatorServer(tmp_path / "emu.state")
    await server.start_pty(link=tmp_path / "emu.tty")
    reg = ShtrihRegister(str(tmp_path / "emu.tty"))
    await reg.connect()
    await reg.open_shift()
    yield reg
    await reg.close()
    await server.close()


def rubles(kopecks: int) -> str:
    return str(Decimal(kopecks) / 100)


def task_body(price: int, quantity: int, amount: int) -> str:
    item = {
        "type": "position",
        "name": "Товар",
        "price": "@p",
        "quantity": "@q",
        "amount": "@a",
        "tax": {"type": "none"},
    }
    task = {"type": "sell", "items": [item], "payments": [{"type": "cash", "sum": "@a"}]}
    text = json.dumps({"uuid": "oracle", "request": [task]})
    qty = str(Decimal(quantity) / fiscal.QTY_SCALE)
    return text.replace('"@p"', rubles(price)).replace('"@q"', qty).replace('"@a"', rubles(amount))


async def register_refusal(
    reg: ShtrihRegister, price: int, quantity: int, amount: int
) -> int | None:
    """The register's error code for a receipt of this one line, or None when it printed it."""
    item = fiscal.Item("Товар", price, quantity, amount, fiscal.Vat.NONE)
    receipt = fiscal.Receipt(
        type=fiscal.ReceiptType.SELL,
        taxation=fiscal.TaxationType.OSN,
        items=(item,),
        payments=(fiscal.Payment(fiscal.PaymentType.CASH, amount),),
    )
    try:
        await reg.print_receipt(receipt)
    except ShtrihError as err:
        return err.error_code
    return None


def parser_refusal(price: int, quantity: int, amount: int) -> str | None:
    """The field the parser refuses the same task by, or None when it accepts it."""
    try:
        parse_request(task_body(price, quantity, amount), NameMapping())
    except ValidationError as err:
        return err.field
    return None


async def test_the_parser_accepts_exactly_what_the_register_accepts(
    register: ShtrihRegister,
) -> None:
    by_register = [await register_refusal(register, *case) for case in CASES]
    by_parser = [parser_refusal(*case) for case in CASES]
    assert set(by_register) == {None, BAD_PARAMETERS}  # both outcomes occur
    assert set(by_parser) == {None, "request[0].items[0].amount"}
    disagree = [
        (case, code, field)
        for case, code, field in zip(CASES, by_register, by_parser, strict=True)
        if (code is None) != (field is None)
    ]
    assert disagree == []
    assert not (await register.status()).receipt_open  # each refusal was cancelled
