"""The emulator's own reading of [PROTO]: request bytes written here by hand from the protocol
document, answers checked byte by byte. Nothing here uses the driver's codec.

Layouts: [PROTO] 1Ah/1Bh p.22, 1Eh p.23, 50h/51h p.28, FF09h p.45, FF0Ch p.46, FF3Ah/FF3Bh p.50,
FF40h p.51, FF45h pp.52–53, FF46h pp.53–54, FF4Dh p.56; error codes pp.67–70.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest

from gateway.registers.emulator import cli, counters, fn, framing, machine, protocol
from gateway.registers.emulator.refusals import Fn
from gateway.registers.emulator.state import (
    ALL_TAX_SYSTEMS,
    TAX_OSN,
    TAX_PATENT,
    TAX_USN_INCOME,
    EmulatorState,
    fresh_state,
    load_state,
    parse_tax_systems,
    save_state,
)

H0 = dt.datetime(2026, 3, 2, 10, 0, 0)
PWD = bytes((30, 0, 0, 0))  # the system administrator's password 30, least significant first


def le(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


class Box:
    """A state and a host clock; bodies in, answer bodies out, the state saved each step."""

    def __init__(self, path: Path, state: EmulatorState | None = None) -> None:
        self.path = path
        self.host = H0
        self.state = state or fresh_state(H0)

    def send(self, body: bytes) -> bytes:
        self.host += dt.timedelta(seconds=5)
        request = protocol.parse(body)
        outcome = machine.execute(self.state, request, self.host)
        save_state(self.path, outcome.state)
        assert load_state(self.path) == outcome.state
        self.state = outcome.state
        if outcome.answer is None:
            return protocol.error(request.command, outcome.error)
        return protocol.answer(request.command, outcome.answer)


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path / "e.state")


OPEN_SHIFT = bytes((0xE0,)) + PWD


def ff46(
    *,
    operation: int = 1,
    qty: int = 1_000_000,
    price: int = 10_000,
    rate: int = 0x01,
    subject: int = 1,
    name: bytes = "Хлеб".encode("cp1251"),
) -> bytes:
    """FF46h: operation, qty(6), price(5), sum(5) FF×5, tax(5) FF×5, rate, dept, 1214, 1212, name."""
    return (
        b"\xff\x46"
        + PWD
        + bytes((operation,))
        + le(qty, 6)
        + le(price, 5)
        + b"\xff" * 5
        + b"\xff" * 5
        + bytes((rate, 1, 4, subject))
        + name
    )


def ff45(*, cash: int = 0, card: int = 0, system: int = 0x01) -> bytes:
    """FF45h: 16 sums, rounding 0, 6 tax sums 0, tax system, no text."""
    sums = le(cash, 5) + le(card, 5) + bytes(5 * 14)
    return b"\xff\x45" + PWD + sums + b"\x00" + bytes(5 * 6) + bytes((system,))


def tlv(tag: int, value: bytes) -> bytes:
    return le(tag, 2) + le(len(value), 2) + value


# --- framing ----------------------------------------------------------------------------


def test_frame_of_an_answer_by_hand() -> None:
    # [PROTO] p.8: STX, LEN = 3, body 10 00 1E, LRC = 03 ^ 10 ^ 00 ^ 1E = 0D.
    assert framing.frame(bytes((0x10, 0x00, 0x1E))) == bytes((0x02, 0x03, 0x10, 0x00, 0x1E, 0x0D))


def test_receiver_events() -> None:
    receiver = framing.Receiver()
    good = bytes((0x02, 0x05, 0x10, 0x1E, 0x00, 0x00, 0x00, 0x0B))
    bad = bytes((0x02, 0x01, 0x10, 0x00))
    events = receiver.feed(bytes((0x05,)) + good[:3])
    assert events == [framing.Signal.ENQ]
    assert receiver.in_message
    assert receiver.feed(good[3:] + b"\xff" + bad) == [
        framing.Message(bytes((0x10, 0x1E, 0, 0, 0))),
        framing.Noise(b"\xff"),
        framing.Corrupted(b"\x10", 0x00),
    ]


# --- request layouts ----------------------------------------------------------------------


def test_parse_ff46_fields() -> None:
    request = protocol.parse(ff46(qty=1_500_000, price=12_345, rate=0x20, subject=4))
    assert isinstance(request, protocol.OperationV2)
    assert (request.quantity, request.price, request.amount, request.tax) == (
        1_500_000,
        12_345,
        None,
        None,
    )
    assert (request.tax_rate, request.payment_method, request.payment_object) == (0x20, 4, 4)
    assert request.name == "Хлеб"


def test_parse_ff45_slots_and_system() -> None:
    body = b"\xff\x45" + PWD + b"".join(le(n, 5) for n in range(1, 17)) + b"\x07"
    body += b"".join(le(100 + n, 5) for n in range(6)) + b"\x20" + "Спасибо".encode("cp1251")
    request = protocol.parse(body)
    assert isinstance(request, protocol.CloseV2)
    assert request.payments == tuple(range(1, 17))
    assert (request.rounding, request.taxes, request.tax_system) == (7, tuple(range(100, 106)), 32)
    assert request.text == "Спасибо"


def test_wrong_lengths_and_unknown_commands() -> None:
    with pytest.raises(protocol.Malformed):
        protocol.parse(b"\x10" + PWD[:3])  # a password cut short
    with pytest.raises(protocol.Malformed):
        protocol.parse(b"\x50" + PWD + le(100, 5) + b"\x00")  # 50h is 10 bytes (p.28)
    with pytest.raises(protocol.Malformed):
        protocol.parse(ff46(name=b"x" * 129))  # name 0–128 bytes (p.53)
    with pytest.raises(protocol.Unsupported):
        protocol.parse(b"\xe7" + PWD)


# --- cash in and out, registers --------------------------------------------------------


def test_cash_in_out_answers_and_registers(box: Box) -> None:
    box.send(OPEN_SHIFT)
    through = box.state.registers.through_number
    # 50h: password, sum(5) -> op(1), through document number(2).
    assert box.send(b"\x50" + PWD + le(100_000, 5)) == b"\x50\x00\x1e" + le(through + 1, 2)
    assert box.send(b"\x51" + PWD + le(25_050, 5)) == b"\x51\x00\x1e" + le(through + 2, 2)
    # 46h: more than the drawer holds ([PROTO] p.68).
    assert box.send(b"\x51" + PWD + le(100_000, 5)) == b"\x51\x46"
    # 1Ah: op, contents(6). 241 drawer, 242 cash-ins, 243 cash-outs ([GUIDE] p.7).
    assert box.send(b"\x1a" + PWD + b"\xf1") == b"\x1a\x00\x1e" + le(74_950, 6)
    assert box.send(b"\x1a" + PWD + b"\xf2") == b"\x1a\x00\x1e" + le(100_000, 6)
    assert box.send(b"\x1a" + PWD + b"\xf3") == b"\x1a\x00\x1e" + le(25_050, 6)
    # 1Bh: op, contents(2). 153/154 counts ([GUIDE] p.8), 152 through number.
    assert box.send(b"\x1b" + PWD + b"\x99") == b"\x1b\x00\x1e" + le(1, 2)
    assert box.send(b"\x1b" + PWD + b"\x9a") == b"\x1b\x00\x1e" + le(1, 2)
    assert box.send(b"\x1b" + PWD + b"\x98") == b"\x1b\x00\x1e" + le(through + 2, 2)
    # Not fiscal: the ФН archive did not grow; the tape record says so.
    assert box.state.last_document.number == 2
    assert box.state.last_tape is not None
    assert (box.state.last_tape.type, box.state.last_tape.fiscal) == ("cashOut", False)
    assert box.state.last_tape.number == through + 2


def test_cash_in_modes(box: Box) -> None:
    # [GUIDE] p.75: 50h runs in modes 2, 3, 4; an open receipt refuses it with 4Ah.
    assert box.send(b"\x50" + PWD + le(500, 5))[1] == 0  # mode 4
    box.send(OPEN_SHIFT)
    box.send(ff46())
    assert box.send(b"\x50" + PWD + le(500, 5)) == b"\x50\x4a"


def test_receipts_fill_the_shift_registers_and_z_clears_them(box: Box) -> None:
    box.send(OPEN_SHIFT)
    box.send(ff46(price=12_345))
    # 123.45 paid with 200.00 cash and nothing else: 76.55 change.
    assert box.send(ff45(cash=20_000))[:2] == b"\xff\x45"
    box.send(ff46(price=5_000))
    box.send(ff45(card=5_000))
    box.send(ff46(operation=2, price=2_345))  # возврат прихода, paid back in cash
    box.send(ff45(cash=2_345))

    def money(number: int) -> int:
        return int.from_bytes(box.send(b"\x1a" + PWD + bytes((number,)))[3:], "little")

    def count(number: int) -> int:
        return int.from_bytes(box.send(b"\x1b" + PWD + bytes((number,)))[3:], "little")

    # [GUIDE] p.6: 193 cash of приход (what the receipt kept), 197 payment type 2 of приход,
    # 195 cash of возврат прихода; 121 department 1 приход; 241 the drawer.
    assert (money(193), money(197), money(195)) == (12_345, 5_000, 2_345)
    assert money(counters.DEPARTMENTS) == 17_345
    assert money(241) == 12_345 - 2_345
    # [GUIDE] p.8: 144 receipts of приход, 146 of возврат прихода.
    assert (count(144), count(145), count(146)) == (2, 0, 1)
    # 209/225: turnover and tax of group А (20 %) in приход; each line's tax half up:
    # 123.45 × 20/120 = 20.575 -> 20.58, 50.00 × 20/120 = 8.333 -> 8.33.
    assert (money(209), money(225)) == (17_345, 2_058 + 833)

    box.send(b"\x41" + PWD)  # Z
    assert (money(193), money(197), count(144)) == (0, 0, 0)
    assert money(241) == 10_000  # the cash in the drawer survives
    assert count(148) == 2  # the receipt number per type runs on


def test_return_from_an_empty_drawer_reads_below_zero(box: Box) -> None:
    box.send(OPEN_SHIFT)
    box.send(ff46(operation=2, price=1_000))
    assert box.send(ff45(cash=1_000))[2] == 0  # not refused, see `counters`
    # 241 as a 6-byte two's complement: −10.00.
    assert box.send(b"\x1a" + PWD + b"\xf1") == b"\x1a\x00\x1e" + (-1_000).to_bytes(
        6, "little", signed=True
    )


# --- FF40h, FF09h, 1Eh -------------------------------------------------------------------


def test_ff40_shift_params(box: Box) -> None:
    assert box.send(b"\xff\x40" + PWD) == b"\xff\x40\x00\x00" + le(0, 2) + le(0, 2)
    box.send(OPEN_SHIFT)
    box.send(ff46())
    box.send(ff45(cash=10_000))
    assert box.send(b"\xff\x40" + PWD) == b"\xff\x40\x00\x01" + le(1, 2) + le(1, 2)


def test_ff09_registration(tmp_path: Path) -> None:
    box = Box(tmp_path / "e.state", fresh_state(H0, tax_systems=TAX_OSN | TAX_USN_INCOME))
    answer = box.send(b"\xff\x09" + PWD)
    data = answer[3:]
    assert answer[:3] == b"\xff\x09\x00"
    assert len(answer) == 67  # [PROTO] p.45, the ФФД 1.1 answer
    assert data[:5] == bytes((26, 3, 2, 10, 0))
    assert data[5:17] == b"7700000000  "
    assert data[17:37] == b"0000000001012345    "
    assert data[37] == 0b11  # ОСН and УСН доход
    assert int.from_bytes(data[56:60], "little") == 1  # FD of the registration report


def test_write_table_no_print(box: Box) -> None:
    box.send(OPEN_SHIFT)
    box.send(ff46())
    # 1Eh: table 17, row 1, field 7, value 1 «не печатать один документ» ([GUIDE] p.62).
    assert box.send(b"\x1e" + PWD + b"\x11\x01\x00\x07\x01") == b"\x1e\x00"
    box.send(ff45(cash=10_000))
    assert box.state.last_tape is not None
    assert not box.state.last_tape.printed
    assert box.state.no_print == 0
    # Another table is not emulated.
    assert box.send(b"\x1e" + PWD + b"\x01\x01\x00\x01\x01") == b"\x1e\x37"


# --- FF3Ah / FF3Bh --------------------------------------------------------------------------


def test_archive_reads_back_block_by_block(box: Box) -> None:
    box.send(OPEN_SHIFT)
    box.send(ff46(name=b"x" * 128))
    box.send(b"\xff\x4d" + PWD + tlv(1191, b"attr"))
    box.send(ff45(cash=10_000))
    number = box.state.last_document.number
    doc = box.state.document(number)
    assert doc is not None
    head = box.send(b"\xff\x3a" + PWD + le(number, 4))
    # Type 3 (the receipt's STLV tag), then the length.
    assert head == b"\xff\x3a\x00" + le(3, 2) + le(len(doc.tlv), 2)
    data = b""
    while True:
        block = box.send(b"\xff\x3b" + PWD)
        if block == b"\xff\x3b\x08":  # [PROTO] p.67: no more data
            break
        assert block[:3] == b"\xff\x3b\x00"
        assert 0 < len(block) - 3 <= 252
        data += block[3:]
    assert data == doc.tlv
    # No document: 08h; FF3Bh without FF3Ah first on a fresh register: 02h.
    assert box.send(b"\xff\x3a" + PWD + le(999, 4)) == b"\xff\x3a\x08"
    fresh = Box(box.path.with_name("other.state"))
    assert fresh.send(b"\xff\x3b" + PWD) == b"\xff\x3b\x02"


# --- refusals ----------------------------------------------------------------------------


def test_tax_system_must_be_one_registered_bit(tmp_path: Path) -> None:
    box = Box(tmp_path / "e.state", fresh_state(H0, tax_systems=TAX_USN_INCOME))
    box.send(OPEN_SHIFT)
    box.send(ff46())
    # Two bits: 33h ([PROTO] FF45h p.53 note 1, error p.68); none: 33h; bit 6: no system.
    assert box.send(ff45(cash=10_000, system=0b11)) == b"\xff\x45\x33"
    assert box.send(ff45(cash=10_000, system=0)) == b"\xff\x45\x33"
    assert box.send(ff45(cash=10_000, system=0x40)) == b"\xff\x45\x33"
    # ОСН, one bit but not registered: 35h ([PROTO] p.68).
    assert box.send(ff45(cash=10_000, system=TAX_OSN)) == b"\xff\x45\x35"
    assert box.state.receipt is not None
    assert box.send(ff45(cash=10_000, system=TAX_USN_INCOME))[2] == 0
    assert box.state.receipt is None


def test_unknown_vat_byte_refused(box: Box) -> None:
    box.send(OPEN_SHIFT)
    # [PROTO] lists six taxes (FF45h p.52): 0x40 and 0x03 (two taxes) are no rate.
    assert box.send(ff46(rate=0x40)) == b"\xff\x46\x33"
    assert box.send(ff46(rate=0x03)) == b"\xff\x46\x33"
    # The 2026 rate 22 % (0xCB, [JPOS], UNSURE) is accepted.
    assert box.send(ff46(rate=0xCB)) == b"\xff\x46\x00"


@pytest.mark.parametrize("subject", [31, 33])
def test_marked_goods_without_a_code_refused(box: Box, subject: int) -> None:
    box.send(OPEN_SHIFT)
    # Classic firmware binds the code (FF67h) after the line's FF46h, so a marked line without
    # one is refused at the next FF46h or at the close: A4h «В блоке TLV отсутствуют
    # необходимые реквизиты» ([PROTO] p.70); the lines already there stay.
    assert box.send(ff46()) == b"\xff\x46\x00"
    assert box.send(ff46(subject=subject)) == b"\xff\x46\x00"
    assert box.send(ff46()) == b"\xff\x46\xa4"
    assert box.state.receipt is not None
    assert len(box.state.receipt.lines) == 2
    assert box.send(ff45(cash=20_000))[:3] == b"\xff\x45\xa4"
    assert box.state.last_document.number == 2


def test_tlv_block_refusals(box: Box) -> None:
    box.send(OPEN_SHIFT)
    box.send(ff46())
    # A length past the end of the block: 33h.
    assert box.send(b"\xff\x0c" + PWD + le(1008, 2) + le(10, 2) + b"abc") == b"\xff\x0c\x33"
    # An STLV whose member runs past its end: 33h.
    broken = tlv(1256, le(1227, 2) + le(9, 2) + b"ab")
    assert box.send(b"\xff\x0c" + PWD + broken) == b"\xff\x0c\x33"
    # An item tag via FF0Ch, or a tag the register builds itself: ФН 09h (p.67).
    assert box.send(b"\xff\x0c" + PWD + tlv(1030, b"name")) == b"\xff\x0c\x09"
    assert box.send(b"\xff\x0c" + PWD + tlv(1020, b"\x01")) == b"\xff\x0c\x09"
    # A document tag via FF4Dh: 09h too.
    assert box.send(b"\xff\x4d" + PWD + tlv(1008, b"a@b.c")) == b"\xff\x4d\x09"
    # FF4Dh outside a receipt: mode 2 refuses it with 73h ([GUIDE] p.76: mode 8).
    box.send(b"\x88" + PWD)
    assert box.send(b"\xff\x4d" + PWD + tlv(2108, b"\x00")) == b"\xff\x4d\x73"


def test_tlv_block_above_250_bytes(box: Box) -> None:
    # No 255-byte message can carry more than 249 bytes of TLV after FF 0C and the password,
    # so the request is made directly: ФН 10h «Превышение размеров TLV данных» (p.67).
    box.send(OPEN_SHIFT)
    box.send(ff46())
    block = protocol.TlvBlock(protocol.Cmd.FN_SEND_TLV, 30, tlv(1192, b"x" * 247))
    outcome = machine.execute(box.state, block, box.host)
    assert outcome.error == Fn.TLV_TOO_BIG


def test_ff4d_binds_to_the_last_line(box: Box) -> None:
    box.send(OPEN_SHIFT)
    box.send(ff46(name=b"one"))
    box.send(ff46(name=b"two"))
    assert box.send(b"\xff\x4d" + PWD + tlv(2108, b"\x0b")) == b"\xff\x4d\x00"
    receipt = box.state.receipt
    assert receipt is not None
    assert [len(line.tlvs) for line in receipt.lines] == [0, 1]


def test_cash_operator_password(box: Box) -> None:
    # 50h takes an operator's password ([PROTO] p.28): cashier 3 is answered as operator 3.
    answer = box.send(b"\x50" + bytes((3, 0, 0, 0)) + le(100, 5))
    assert answer[:3] == b"\x50\x00\x03"
    assert box.send(b"\x50" + bytes((31, 0, 0, 0)) + le(100, 5)) == b"\x50\x4f"


def test_default_unit_is_a_piece(box: Box) -> None:
    box.send(OPEN_SHIFT)
    box.send(ff46())
    box.send(ff45(cash=10_000))
    tape = box.state.last_tape
    assert tape is not None
    assert tape.items[0].tags["2108"] == 0  # UNSURE default, see machine.DEFAULT_UNIT
    assert fn.QTY_SCALE == 1_000_000


# --- department, FF4Dh errors, --tax-systems, FF09h in full ----------------------------------


def test_department_reaches_the_tape_and_its_register(box: Box) -> None:
    box.send(OPEN_SHIFT)
    # FF46h with department 3 (byte after the tax rate, [PROTO] p.53).
    body = bytearray(ff46(price=4_200))
    rate_at = 2 + 4 + 1 + 6 + 5 + 5 + 5
    assert body[rate_at : rate_at + 2] == b"\x01\x01"
    body[rate_at + 1] = 3
    assert box.send(bytes(body)) == b"\xff\x46\x00"
    box.send(ff45(cash=4_200))
    tape = box.state.last_tape
    assert tape is not None
    assert tape.items[0].department == 3
    assert tape.to_json()["items"][0]["department"] == 3
    # [GUIDE] p.6: 121…124 department 1, so приход of department 3 is 129.
    answer = box.send(b"\x1a" + PWD + bytes((129,)))
    assert answer == b"\x1a\x00\x1e" + le(4_200, 6)


def test_ff4d_malformed_block(box: Box) -> None:
    box.send(OPEN_SHIFT)
    box.send(ff46())
    # A header cut short (3 bytes) and a length past the end: 33h ([PROTO] p.68).
    assert box.send(b"\xff\x4d" + PWD + b"\x3c\x08\x01") == b"\xff\x4d\x33"
    assert box.send(b"\xff\x4d" + PWD + le(2108, 2) + le(2, 2) + b"\x00") == b"\xff\x4d\x33"
    # An empty block carries no tag: 33h too.
    assert box.send(b"\xff\x4d" + PWD) == b"\xff\x4d\x33"
    receipt = box.state.receipt
    assert receipt is not None
    assert receipt.lines[0].tlvs == ()


def test_tax_systems_option() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--pty", "--tax-systems", "usnIncome,patent"])
    assert args.tax_systems == TAX_USN_INCOME | TAX_PATENT == 0b100010
    assert parser.parse_args(["--pty"]).tax_systems is None  # a new register gets all five
    with pytest.raises(SystemExit):
        parser.parse_args(["--pty", "--tax-systems", "envd"])
    assert parse_tax_systems("osn,usnIncome,usnIncomeOutcome,esn,patent") == ALL_TAX_SYSTEMS
    assert ALL_TAX_SYSTEMS == 0b110111  # ЕНВД, bit 3, is not among them


def test_ff09_answer_in_full(box: Box) -> None:
    answer = box.send(b"\xff\x09" + PWD)
    registration = box.state.documents[0]
    expected = bytes((26, 3, 2, 10, 0))  # DATE_TIME YY MM DD HH MM
    expected += b"7700000000  "  # ИНН, 12 ASCII
    expected += b"0000000001012345    "  # registration number, 20 ASCII
    expected += bytes((0b110111, 0, 0))  # tax systems, work mode, extended flags
    expected += b"000000000000" + le(0, 4)  # OFD ИНН, reason code
    expected += le(1, 4) + le(registration.fiscal_sign, 4)  # FD, FP
    assert answer == b"\xff\x09\x00" + expected
