"""The Shtrih driver's cash in/out (50h/51h), shift counters (1Ah/1Bh) and document TLVs
(FF3Ah/FF3Bh) against the emulator on a real pty.

Expected values follow [GUIDE] "О денежных и операционных регистрах ККТ" (pp.5–8) and the
receipt-closing rules of [GUIDE] pp.31 and 33, as `gateway.registers.shtrih.counters` reads
them; a failure here means the emulator keeps its registers differently.
"""

from __future__ import annotations

import pytest

from gateway.domain import fiscal
from gateway.registers.shtrih.driver import ShtrihRegister
from gateway.registers.shtrih.errors_table import ShtrihError

P = fiscal.PaymentType
R = fiscal.ReceiptType
CASHIER = fiscal.Operator("Иванова А.", "7707083893")

# The `emulator` and `register` fixtures are the Shtrih driver tests' own (a register on a pty).
pytest_plugins = ["tests.integration.test_shtrih_driver"]


def receipt(kind: fiscal.ReceiptType, price: int, *, cash: int, card: int = 0) -> fiscal.Receipt:
    """A one-line receipt of `price` kopecks paid with `cash` (change given back) and `card`."""
    line = fiscal.Item(
        name="Товар", price=price, quantity=fiscal.QTY_SCALE, amount=price, vat=fiscal.Vat.VAT20
    )
    payments = []
    if cash:
        payments.append(fiscal.Payment(P.CASH, cash))
    if card:
        payments.append(fiscal.Payment(P.ELECTRONICALLY, card))
    return fiscal.Receipt(
        type=kind,
        taxation=fiscal.TaxationType.OSN,
        items=(line,),
        payments=tuple(payments),
        operator=CASHIER,
        client_contact="buyer@example.com",
    )


async def test_cash_in_and_out(register: ShtrihRegister) -> None:
    await register.open_shift(CASHIER)
    before = await register.shift_totals()
    last_fd = (await register.fn_status()).last_document_number

    cash_in = await register.cash_operation(fiscal.CashDirection.IN, 1_000_00, CASHIER)
    cash_out = await register.cash_operation(fiscal.CashDirection.OUT, 250_50)

    # [GUIDE] p.33: each of 50h/51h increments the through document number.
    assert cash_in.document_number is not None
    assert cash_out.document_number == cash_in.document_number + 1
    assert cash_in.datetime is not None
    assert cash_out.datetime is not None
    assert cash_out.datetime >= cash_in.datetime
    # Not fiscal documents: the ФН archive does not grow.
    assert (await register.fn_status()).last_document_number == last_fd

    after = await register.shift_totals()
    # [GUIDE] pp.7–8: 242/243 sums and 153/154 counts of cash-ins and cash-outs in the shift.
    assert after.cash_in.count == before.cash_in.count + 1
    assert after.cash_in.sum == before.cash_in.sum + 1_000_00
    assert after.cash_out.count == before.cash_out.count + 1
    assert after.cash_out.sum == before.cash_out.sum + 250_50
    # [GUIDE] p.33: 50h adds to the cash in the drawer (241), 51h takes from it.
    assert before.cash_drawer is not None
    assert after.cash_drawer == before.cash_drawer + 1_000_00 - 250_50
    # No receipt was made.
    assert after.receipts == before.receipts


async def test_cash_out_above_the_drawer_is_refused(register: ShtrihRegister) -> None:
    await register.open_shift(CASHIER)
    drawer = (await register.shift_totals()).cash_drawer
    assert drawer is not None
    # [PROTO] error 46h «Не хватает наличности в кассе» (p.68).
    with pytest.raises(ShtrihError) as err:
        await register.cash_operation(fiscal.CashDirection.OUT, drawer + 1)
    assert err.value.error_code == 0x46
    totals = await register.shift_totals()
    assert (totals.cash_out.count, totals.cash_drawer) == (0, drawer)


async def test_cash_operation_refuses_a_non_positive_amount(register: ShtrihRegister) -> None:
    await register.open_shift(CASHIER)
    with pytest.raises(ValueError, match="positive"):
        await register.cash_operation(fiscal.CashDirection.IN, 0)
    assert (await register.shift_totals()).cash_in.count == 0


async def test_shift_totals_of_a_new_shift_are_zero(register: ShtrihRegister) -> None:
    opened = await register.open_shift(CASHIER)
    totals = await register.shift_totals()
    assert totals.shift_number == opened.shift_number
    assert set(totals.receipts) == set(R)
    for kind in R:
        assert totals.receipts[kind] == fiscal.OperationTotals(
            count=0, sum=0, payments={P.CASH: 0, P.ELECTRONICALLY: 0}
        )
    assert (totals.cash_in.count, totals.cash_in.sum) == (0, 0)
    assert (totals.cash_out.count, totals.cash_out.sum) == (0, 0)


async def test_shift_totals_by_operation_type(register: ShtrihRegister) -> None:
    await register.open_shift(CASHIER)
    await register.cash_operation(fiscal.CashDirection.IN, 5_000_00)
    before = await register.shift_totals()
    # Different sums per type, paid exactly (no change), so each register can be told apart.
    paid = {
        R.SELL: (300_00, 200_00),
        R.SELL_RETURN: (40_00, 0),
        R.BUY: (0, 70_00),
        R.BUY_RETURN: (11_00, 5_00),
    }
    for kind, (cash, card) in paid.items():
        await register.print_receipt(receipt(kind, cash + card, cash=cash, card=card))
    await register.print_receipt(receipt(R.SELL, 99_00, cash=99_00))

    totals = await register.shift_totals()
    expected = {
        R.SELL: (2, 399_00, 200_00),
        R.SELL_RETURN: (1, 40_00, 0),
        R.BUY: (1, 0, 70_00),
        R.BUY_RETURN: (1, 11_00, 5_00),
    }
    for kind, (count, cash, card) in expected.items():
        # [GUIDE] p.8: 144…147 count receipts; p.6: 193…196 cash, 197…200 payment type 2.
        assert totals.receipts[kind] == fiscal.OperationTotals(
            count=count, sum=cash + card, payments={P.CASH: cash, P.ELECTRONICALLY: card}
        ), kind
    # [GUIDE] p.31: приход and возврат расхода add their cash to the drawer, расход and
    # возврат прихода take theirs from it.
    assert before.cash_drawer is not None
    assert totals.cash_drawer == before.cash_drawer + 399_00 + 11_00 - 40_00
    assert totals.cash_in == before.cash_in


async def test_change_stays_out_of_the_drawer(register: ShtrihRegister) -> None:
    await register.open_shift(CASHIER)
    before = await register.shift_totals()
    # 123.45 paid with 200.00 cash: the buyer takes 76.55 back.
    await register.print_receipt(receipt(R.SELL, 123_45, cash=200_00))
    after = await register.shift_totals()
    # [GUIDE] p.31: the drawer moves by the receipt's cash, which the buyer's change is not.
    assert before.cash_drawer is not None
    assert after.cash_drawer == before.cash_drawer + 123_45
    assert after.receipts[R.SELL].count == 1


async def test_document_tags_of_a_receipt(register: ShtrihRegister) -> None:
    await register.open_shift(CASHIER)
    made = await register.print_receipt(receipt(R.SELL_RETURN, 123_45, cash=123_45))
    tags = await register.document_tags(made.document_number)
    by_tag = dict(tags)
    # What the driver sent with FF0Ch comes back from the ФН archive ([PROTO] FF3Bh p.50).
    assert by_tag[1021] == CASHIER.name.encode("cp1251")
    assert by_tag[1203] == b"7707083893"
    assert by_tag[1008] == b"buyer@example.com"
    # [FFD]: 1054 operation type (byte), 1020 total (VLN, little-endian), 1040 FD number (uint32).
    assert by_tag[1054] == bytes((R.SELL_RETURN,))
    assert int.from_bytes(by_tag[1020], "little") == 123_45
    assert int.from_bytes(by_tag[1040], "little") == made.document_number


async def test_document_tags_of_a_shift_report(register: ShtrihRegister) -> None:
    opened = await register.open_shift(CASHIER)
    tags = await register.document_tags(opened.document_number)
    by_tag = dict(tags)
    assert by_tag[1021] == CASHIER.name.encode("cp1251")
    # [FFD]: 1038 shift number (uint32), 1040 FD number (uint32).
    assert int.from_bytes(by_tag[1038], "little") == opened.shift_number
    assert int.from_bytes(by_tag[1040], "little") == opened.document_number


async def test_document_tags_of_a_missing_document(register: ShtrihRegister) -> None:
    last = (await register.fn_status()).last_document_number
    with pytest.raises(ShtrihError):
        await register.document_tags(last + 100)


async def test_shift_number_after_the_z_report(register: ShtrihRegister) -> None:
    opened = await register.open_shift(CASHIER)
    closed = await register.close_shift(CASHIER)
    assert closed.shift_number == opened.shift_number
    # With the shift closed the totals are those of the shift just closed.
    assert (await register.shift_totals()).shift_number == closed.shift_number
