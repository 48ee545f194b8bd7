"""The emulated ФН-М and marked goods, at the frame level: FF61h check, FF69h decide, FF67h bind,
FF68h/FF70h status, FF71h–FF73h notifications, the fake ОИСМ and the two firmware orders.

Requests are written byte by byte from the marking commands' layouts ([JPOS] commands.xml,
[OPOS]); the two real FF61h exchanges of [NG] #145 and #165 are replayed whole, frames and LRCs
included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.registers.emulator import cli, machine, marking, tlv
from gateway.registers.emulator.control import ControlServer
from gateway.registers.emulator.faults import FaultError
from gateway.registers.emulator.framing import Message, Receiver, frame
from gateway.registers.emulator.register import Emulator
from gateway.registers.emulator.state import load_state
from gateway.registers.emulator.tape import read_tape, tape_path

H0 = dt.datetime(2026, 3, 2, 10, 0, 0)
SYSADMIN = 30
GS = "\x1d"

# A GS1 DataMatrix code with AI 91 (key) and 92 (a 44-character check code): checked in the ФН.
CHECK44 = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/AbCdEf"
GS1_44 = f"0104601234567893215Abc1de2FgHi{GS}91EE06{GS}92{CHECK44}".encode()
GS1_44_B = f"0104601234567893215Zyx9wv8UtSr{GS}91EE06{GS}92{CHECK44}".encode()
GS1_88 = f"0104601234567893215Abc1de2FgHi{GS}91EE06{GS}92{CHECK44 * 2}".encode()
GS1_93 = f"0104600653105990215{GS}93Gk30".encode()
GS1_BARE = b"01046012345678932112345"
TOBACCO = b"04606203103348a3=EfODAB=UpGbL"


class Clock:
    """A host clock the test moves by hand; every read advances it a second."""

    def __init__(self, start: dt.datetime = H0, step: float = 1.0) -> None:
        self.now = start
        self.step = dt.timedelta(seconds=step)

    def __call__(self) -> dt.datetime:
        self.now += self.step
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(tmp_path: Path, clock: Clock) -> Iterator[Emulator]:
    emu = Emulator.open(tmp_path / "emulator.state", host_clock=clock)
    yield emu
    emu.close()


# --- request bodies, byte by byte ---------------------------------------------------------


def ff(command: int, params: bytes = b"", password: int = SYSADMIN) -> bytes:
    """An FFxxh request body: FF, the command, the password(4), the parameters."""
    return bytes((0xFF, command)) + password.to_bytes(4, "little") + params


def check_request(code: bytes, status: int = 1, mode: int = 0, tlvs: bytes = b"") -> bytes:
    """FF61h: 2003(1) 2102(1) code length(1) TLV length(1) code TLV."""
    return ff(0x61, bytes((status, mode, len(code), len(tlvs))) + code + tlvs)


def decide(action: int) -> bytes:
    return ff(0x69, bytes((action,)))


def bind(code: bytes) -> bytes:
    """FF67h: code length(1), the code."""
    return ff(0x67, bytes((len(code),)) + code)


def operation(subject: int = 33, price: int = 10000, name: str = "Молоко", op: int = 1) -> bytes:
    """FF46h: operation, quantity 1.000000, price, sum and tax not given, no VAT (08h),
    department 1, full payment (4), 1212 `subject`, the name."""
    params = bytes((op,)) + (1_000_000).to_bytes(6, "little") + price.to_bytes(5, "little")
    params += b"\xff" * 10 + bytes((0x08, 1, 4, subject)) + name.encode("cp1251")
    return ff(0x46, params)


def close(cash: int) -> bytes:
    """FF45h: cash, fifteen other sums 0, rounding 0, six taxes 0, ОСН, no text."""
    params = cash.to_bytes(5, "little") + bytes(15 * 5) + b"\0" + bytes(6 * 5) + b"\x01"
    return ff(0x45, params)


def item_tags(*tags: tlv.Tlv) -> bytes:
    """FF4Dh with these tags."""
    return ff(0x4D, tlv.join(tags))


UNIT = tlv.byte(2108, 0)
OPEN_SHIFT = bytes((0xE0,)) + SYSADMIN.to_bytes(4, "little")
CANCEL = bytes((0x88,)) + SYSADMIN.to_bytes(4, "little")
DEVICE_TYPE = bytes((0xFC,))


def open_receipt(receipt_type: int = 0) -> bytes:
    return bytes((0x8D,)) + SYSADMIN.to_bytes(4, "little") + bytes((receipt_type,))


async def send(emu: Emulator, body: bytes) -> tuple[int, bytes]:
    """(error code, answer data) of one request."""
    reply = await emu.handle(body)
    skip = 2 if body[0] == 0xFF else 1
    return reply.answer[skip], reply.answer[skip + 1 :]


async def ok(emu: Emulator, body: bytes) -> bytes:
    error, data = await send(emu, body)
    assert error == 0, f"{body[:2].hex()} refused with {error:#04x}"
    return data


async def error(emu: Emulator, body: bytes) -> int:
    code, data = await send(emu, body)
    assert code != 0, f"{body[:2].hex()} was not refused"
    assert data == b""
    return code


async def accept(emu: Emulator, code: bytes) -> int:
    """FF61h then FF69h(1); the 2106 FF69h answers."""
    await ok(emu, check_request(code))
    answer = await ok(emu, decide(1))
    assert len(answer) == 1
    return answer[0]


async def set_answer(emu: Emulator, code: bytes, answer: str) -> None:
    await emu.apply_fault("ism_code_answer", {"code": code.decode("ascii"), "answer": answer})


def fn_m(emu: Emulator) -> marking.FnMarking:
    """The ФН-М's marking state now."""
    return emu.state.marking


def body_of(wire: bytes) -> bytes:
    """The body of one frame as the register's receiver reads it (LRC checked)."""
    events = Receiver().feed(wire)
    [event] = events
    assert isinstance(event, Message), event
    return event.body


# --- the real traces ------------------------------------------------------------------------


async def test_trace_145_tobacco_pack_byte_for_byte(tmp_path: Path) -> None:
    """[NG] #145: a tobacco pack checked, the ОИСМ answered; the request at 11:35:28 UTC on
    12.08.2021 (tag 2114 = 0x61150780), 2106 = 05h."""
    at = dt.datetime(2021, 8, 12, 11, 35, 28)
    emu = Emulator.open(tmp_path / "emulator.state", host_clock=lambda: at)
    try:
        request = bytes.fromhex("0227ff611e00000001001d00") + TOBACCO + bytes.fromhex("86")
        await set_answer(emu, TOBACCO, "negative")
        reply = await emu.handle(body_of(request))
        expected = bytes.fromhex(
            "021bff6100" "00010114" "0005" "4208040080071561" "3908010000" "d507010005" "cf"
        )  # fmt: skip
        assert frame(reply.answer) == expected
        assert await ok(emu, decide(1)) == bytes((0x05,))
    finally:
        emu.close()


async def test_trace_165_dairy_byte_for_byte(emulator: Emulator) -> None:
    """[NG] #165: a dairy code with a 4-character check code: not checkable in the ФН (reason
    1, type 5) and no server data (n = 0)."""
    code = b"0104600653105990" + b"2152CUnq" + bytes((0x1D,)) + b"93Gk30"
    request = bytes.fromhex("0229ff611e00000001001f00") + code + bytes.fromhex("85")
    await emulator.apply_fault("ism_answer", "autonomous")
    reply = await emulator.handle(body_of(request))
    assert frame(reply.answer) == bytes.fromhex("0207ff6100000105009d")
    assert await ok(emulator, decide(1)) == bytes((marking.AUTONOMOUS,))


# --- the ФН's own check and the fake ОИСМ ---------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (GS1_44, (3, 0, 4)),
        (GS1_88, (3, 0, 2)),
        (GS1_93, (0, 1, 5)),
        (GS1_BARE, (0, 3, 0)),
        (TOBACCO, (0, 1, 1)),
        (b"4601234567893", (0, 4, 0)),
    ],
)
def test_code_shapes(code: bytes, expected: tuple[int, int, int]) -> None:
    assert marking.recognise(code) == expected


@pytest.mark.parametrize(
    ("answer", "local", "tail", "result"),
    [
        ("positive", 3, "00 0f", 0x0F),
        ("negative", 1, "00 05", 0x05),
        ("sold", 3, "00 07", 0x07),
        ("timeout", 3, "ff 03", 0x03),
        ("autonomous", 3, "", 0x13),
    ],
)
async def test_ism_answers(
    emulator: Emulator, answer: str, local: int, tail: str, result: int
) -> None:
    await emulator.apply_fault("ism_answer", answer)
    data = await ok(emulator, check_request(GS1_44))
    head, rest = data[:4], data[4:]
    expected_tail = bytes.fromhex(tail)
    assert head[:3] == bytes((local, 0, 4))
    assert head[3] == len(rest)
    assert rest[:2] == expected_tail
    if answer in ("positive", "negative", "sold"):
        ism = {t.tag: t.value for t in tlv.parse(rest[2:])}
        assert set(ism) == {2114, 2105, 2005}
        assert ism[2005] == bytes((result,))
    else:
        assert rest == expected_tail  # no ОИСМ tags
    assert await ok(emulator, decide(1)) == bytes((result,))
    assert fn_m(emulator).table[0].result == result


async def test_silent_ism_takes_the_timeout(emulator: Emulator) -> None:
    await emulator.apply_fault("ism_answer", "timeout")
    await emulator.apply_fault("ism_timeout", 0.3)
    started = time.monotonic()
    data = await ok(emulator, check_request(TOBACCO))
    assert time.monotonic() - started >= 0.3
    assert data == bytes((0, 1, 1, 2, 0xFF, 0))  # 2106 without bits 2/3: nothing checked
    await emulator.apply_fault("ism_answer", "positive")
    started = time.monotonic()
    await ok(emulator, decide(0))
    await ok(emulator, check_request(TOBACCO))
    assert time.monotonic() - started < 0.3


async def test_per_code_answers_mix_in_one_table(emulator: Emulator) -> None:
    await set_answer(emulator, GS1_44_B, "sold")
    assert await accept(emulator, GS1_44) == 0x0F
    assert await accept(emulator, GS1_44_B) == 0x07
    await emulator.apply_fault(
        "ism_code_answer", {"code": GS1_44_B.decode().replace(GS, "<GS>"), "answer": None}
    )
    await ok(emulator, check_request(GS1_44_B))
    assert await ok(emulator, decide(0)) == bytes((0x0F,))
    with pytest.raises(FaultError):
        await emulator.apply_fault("ism_code_answer", {"code": "x", "answer": "maybe"})
    with pytest.raises(FaultError):
        await emulator.apply_fault("ism_answer", "yes")
    await emulator.apply_fault("ism_code_answer", None)
    assert emulator.state.ism.overrides == ()


# --- FF61h / FF69h refusals and the table ---------------------------------------------------


async def test_check_refusals(emulator: Emulator) -> None:
    assert await error(emulator, check_request(b"")) == 0x33
    assert fn_m(emulator).extended_error == machine.EXT_EMPTY_CODE
    assert await error(emulator, check_request(GS1_44, status=5)) == 0x33
    assert await error(emulator, check_request(GS1_44, mode=1)) == 0x33
    other_tag = tlv.join((tlv.string(1030, "x"),))
    assert await error(emulator, check_request(GS1_44, tlvs=other_tag)) == 0x33
    assert await error(emulator, check_request(GS1_44, tlvs=b"\x3c\x08\x05")) == 0x33
    # A measured item: 2108 and 1023 go with the check and are kept with it.
    measured = tlv.join((tlv.byte(2108, 11), tlv.fvln(1023, 1_500_000, 6)))
    await ok(emulator, check_request(GS1_44, status=2, tlvs=measured))
    pending = fn_m(emulator).pending
    assert pending is not None
    assert pending.check_tlv == measured
    assert pending.planned_status == 2


async def test_second_check_before_decision_is_out_of_order(emulator: Emulator) -> None:
    await ok(emulator, check_request(GS1_44))
    assert await error(emulator, check_request(GS1_44_B)) == 0xA1
    await ok(emulator, decide(0))
    await ok(emulator, check_request(GS1_44_B))


async def test_decision_without_a_check(emulator: Emulator) -> None:
    assert await error(emulator, decide(1)) == 0xA1
    assert await error(emulator, decide(0)) == 0xA1
    assert await error(emulator, decide(3)) == 0x33
    assert await ok(emulator, decide(2)) == b""


async def test_reject_and_clear_leave_nothing_to_bind(emulator: Emulator) -> None:
    await ok(emulator, OPEN_SHIFT)
    await ok(emulator, check_request(GS1_44))
    assert await ok(emulator, decide(0)) == bytes((0x0F,))
    assert not fn_m(emulator).table
    await accept(emulator, GS1_44)
    await accept(emulator, GS1_44_B)
    assert len(fn_m(emulator).table) == 2
    await ok(emulator, decide(2))
    assert fn_m(emulator).table == ()
    await ok(emulator, operation())
    assert await error(emulator, bind(GS1_44)) == 0xAC


async def test_clear_drops_a_code_waiting_for_decision(emulator: Emulator) -> None:
    await ok(emulator, check_request(GS1_44))
    await ok(emulator, decide(2))
    assert fn_m(emulator).pending is None
    await ok(emulator, check_request(GS1_44_B))


async def test_table_survives_a_restart(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "emulator.state"
    emu = Emulator.open(path, host_clock=clock)
    await ok(emu, OPEN_SHIFT)
    await accept(emu, GS1_44)
    await ok(emu, check_request(GS1_44_B))  # waits for FF69h across the power cut
    emu.close()
    assert [e.code for e in load_state(path).marking.table] == [GS1_44]
    emu = Emulator.open(path, host_clock=clock)
    try:
        assert fn_m(emu).pending is not None
        await ok(emu, decide(1))
        await ok(emu, operation())
        await ok(emu, bind(GS1_44))
        await ok(emu, operation(name="Вода"))
        await ok(emu, bind(GS1_44_B))
        await ok(emu, close(20000))
    finally:
        emu.close()


# --- classic firmware: FF46h, FF4Dh, FF67h ------------------------------------------------


async def test_classic_order_binds_to_the_last_line(emulator: Emulator) -> None:
    await ok(emulator, OPEN_SHIFT)
    await accept(emulator, GS1_44)
    await ok(emulator, operation())
    await ok(emulator, item_tags(UNIT))
    answer = await ok(emulator, bind(GS1_44))
    # 44 4D DataMatrix, kind 3 (КМ44); FF61h checked the code, so no check block follows.
    assert answer == bytes((0x44, 0x4D, 3))
    # A code goes to one line once.
    assert await error(emulator, bind(GS1_44)) == 0xA1
    data = await ok(emulator, close(10000))
    number = int.from_bytes(data[5:9], "little")
    assert fn_m(emulator).table == ()  # the close empties the table
    [item] = read_tape(tape_path(emulator.state_path))[-1].items
    assert item.tags["2000"] == GS1_44.hex()
    assert item.tags["2106"] == 0x0F
    assert item.tags["2102"] == 0
    assert item.tags["1212"] == 33
    assert item.tags["2108"] == 0
    # FF3Ah/FF3Bh hand the same tags out of the ФН archive.
    header = await ok(emulator, ff(0x3A, number.to_bytes(4, "little")))
    assert int.from_bytes(header[:2], "little") == 3  # a receipt
    read = b""
    while True:
        code, data = await send(emulator, ff(0x3B))
        if code:
            assert code == 0x08
            break
        read += data
    [item_tlv] = [t for t in tlv.parse(read) if t.tag == 1059]
    members = {t.tag: t.value for t in tlv.parse(item_tlv.value)}
    assert members[2000] == GS1_44
    assert members[2106] == bytes((0x0F,))


async def test_classic_marked_line_without_a_code_is_refused(emulator: Emulator) -> None:
    await ok(emulator, OPEN_SHIFT)
    await ok(emulator, operation(subject=33))
    assert await error(emulator, operation(subject=1)) == 0xA4  # at the next FF46h
    assert await error(emulator, close(10000)) == 0xA4  # or at the close
    await accept(emulator, GS1_44)
    await ok(emulator, bind(GS1_44))
    await ok(emulator, operation(subject=31, name="Пиво"))
    assert await error(emulator, close(20000)) == 0xA4
    await accept(emulator, GS1_44_B)
    await ok(emulator, bind(GS1_44_B))
    await ok(emulator, close(20000))


async def test_classic_bind_refusals(emulator: Emulator) -> None:
    await ok(emulator, OPEN_SHIFT)
    assert await error(emulator, bind(GS1_44)) == 0x73  # no receipt
    await ok(emulator, open_receipt())
    await accept(emulator, GS1_44)
    assert await error(emulator, bind(GS1_44)) == 0x02  # no line yet
    await ok(emulator, operation())
    assert await error(emulator, bind(GS1_44_B)) == 0xAC  # never checked
    await ok(emulator, check_request(GS1_44_B))
    assert await error(emulator, bind(GS1_44_B)) == 0xAC  # checked, not accepted


async def test_cancel_keeps_the_table_and_frees_bound_codes(emulator: Emulator) -> None:
    await ok(emulator, OPEN_SHIFT)
    await accept(emulator, GS1_44)
    await ok(emulator, operation())
    await ok(emulator, bind(GS1_44))
    await ok(emulator, CANCEL)
    assert [e.bound for e in fn_m(emulator).table] == [False]
    await ok(emulator, operation())
    await ok(emulator, bind(GS1_44))
    await ok(emulator, ff(0x08))  # FF08h cancels the same way
    assert [e.bound for e in fn_m(emulator).table] == [False]


# --- «кассовое ядро»: 8Dh, FF4Dh (2108), FF67h, FF46h ----------------------------------------


async def core(emulator: Emulator) -> None:
    await emulator.apply_fault("firmware", "core")
    await ok(emulator, OPEN_SHIFT)


async def test_core_reports_its_model(emulator: Emulator) -> None:
    assert (await ok(emulator, DEVICE_TYPE))[4] == machine.MODEL_ID
    await emulator.apply_fault("firmware", "core")
    assert (await ok(emulator, DEVICE_TYPE))[4] == 45
    with pytest.raises(FaultError):
        await emulator.apply_fault("firmware", "nano")


async def test_core_order(emulator: Emulator) -> None:
    await core(emulator)
    await accept(emulator, GS1_44)
    await accept(emulator, TOBACCO)
    await ok(emulator, open_receipt(0))
    await ok(emulator, item_tags(UNIT))
    answer = await ok(emulator, bind(GS1_44))
    assert answer[:3] == bytes((0x44, 0x4D, 3))
    await ok(emulator, operation(subject=33))
    await ok(emulator, item_tags(UNIT))
    assert (await ok(emulator, bind(TOBACCO)))[:3] == bytes((0x44, 0x4D, 2))
    await ok(emulator, operation(subject=31, name="Сигареты"))
    await ok(emulator, operation(subject=1, name="Пакет"))  # unmarked: no code needed
    await ok(emulator, close(30000))
    items = read_tape(tape_path(emulator.state_path))[-1].items
    assert [i.tags.get("2000") for i in items] == [GS1_44.hex(), TOBACCO.hex(), None]
    assert [i.tags.get("2106") for i in items] == [0x0F, 0x0F, None]
    assert items[0].tags["2108"] == 0


async def test_core_refusals(emulator: Emulator) -> None:
    await core(emulator)
    await accept(emulator, GS1_44)
    await ok(emulator, open_receipt(0))
    # FF67h before 2108: 33h with the extended code 00330054h.
    assert await error(emulator, bind(GS1_44)) == 0x33
    assert fn_m(emulator).extended_error == machine.EXT_UNIT_BEFORE_BIND
    # A marked line without a code bound before it: A4h at its own FF46h.
    assert await error(emulator, operation(subject=33)) == 0xA4
    await ok(emulator, item_tags(UNIT))
    assert await error(emulator, bind(GS1_44_B)) == 0xAC
    await ok(emulator, bind(GS1_44))
    assert await error(emulator, bind(GS1_44)) == 0xA1  # one code per line
    # Tags and a code waiting for an FF46h that never comes: the close is refused.
    assert await error(emulator, close(10000)) == 0x02
    await ok(emulator, operation(subject=33))
    await ok(emulator, close(10000))
    # Marked goods only in приход / возврат прихода: 5Eh, extended 005E0013h, in расход.
    await accept(emulator, GS1_44_B)
    await ok(emulator, open_receipt(1))
    await ok(emulator, item_tags(UNIT))
    assert await error(emulator, bind(GS1_44_B)) == 0x5E
    assert fn_m(emulator).extended_error == machine.EXT_NOT_IN_THIS_DOCUMENT


# --- FF70h, FF68h and the notifications -----------------------------------------------------


async def test_marking_status_follows_the_check(emulator: Emulator) -> None:
    assert await ok(emulator, ff(0x70)) == bytes((1, 0, 0, 0, 0, 0, 0, 0))
    await ok(emulator, check_request(GS1_44))
    assert (await ok(emulator, ff(0x70)))[:4] == bytes((4, 0, 0b11001, 0))
    await ok(emulator, decide(1))
    assert (await ok(emulator, ff(0x70)))[:4] == bytes((1, 0, 0, 1))
    await emulator.apply_fault("ism_answer", "timeout")
    await emulator.apply_fault("ism_timeout", 0)
    await ok(emulator, check_request(GS1_44_B))
    assert (await ok(emulator, ff(0x70)))[:3] == bytes((3, 0, 0b01001))
    await ok(emulator, decide(1))
    await ok(emulator, OPEN_SHIFT)
    await ok(emulator, operation())
    await ok(emulator, bind(GS1_44))
    status = await ok(emulator, ff(0x70))
    assert status[1] == 1
    assert status[4] == 1


async def test_notifications_of_unconfirmed_sales(emulator: Emulator) -> None:
    await ok(emulator, OPEN_SHIFT)
    await set_answer(emulator, GS1_44_B, "autonomous")
    await accept(emulator, GS1_44)
    await accept(emulator, GS1_44_B)
    await ok(emulator, operation())
    await ok(emulator, bind(GS1_44))
    await ok(emulator, operation(name="Вода"))
    await ok(emulator, bind(GS1_44_B))
    await ok(emulator, close(20000))
    last = emulator.state.last_document
    # A receipt the ОИСМ confirmed whole owes nothing.
    await accept(emulator, GS1_44)
    await ok(emulator, operation())
    await ok(emulator, bind(GS1_44))
    await ok(emulator, close(10000))
    [notice] = fn_m(emulator).notifications
    assert notice.document == last.number
    status = await ok(emulator, ff(0x70))
    assert int.from_bytes(status[6:8], "little") == 1
    ism = await ok(emulator, ff(0x68))
    assert ism[0] == 0
    assert int.from_bytes(ism[1:3], "little") == 1
    assert int.from_bytes(ism[3:7], "little") == notice.number
    assert await error(emulator, ff(0x72)) == 0x02  # FF72h before FF71h
    begin = await ok(emulator, ff(0x71))
    size = int.from_bytes(begin[6:8], "little")
    assert begin[:6] == (1).to_bytes(2, "little") + notice.number.to_bytes(4, "little")
    assert (await ok(emulator, ff(0x68)))[0] == 1  # reading
    data = b""
    while len(data) < size:
        block = await ok(emulator, ff(0x72))
        assert int.from_bytes(block[6:8], "little") == len(data)
        data += block[8:]
    assert await error(emulator, ff(0x72)) == 0x08
    assert (await ok(emulator, ff(0x68)))[0] == 2  # waiting for the ticket
    tags = tlv.parse(data)
    assert tags[0] == tlv.uint32(1040, last.number)
    assert [t.value for t in tags if t.tag == 2000] == [GS1_44_B]
    crc = marking.Notification(0, 0, H0, data).crc
    number = notice.number.to_bytes(4, "little")
    assert await error(emulator, ff(0x73, number + ((crc + 1) % 2**32).to_bytes(4, "little"))) == 9
    await emulator.apply_fault("ism_uploads", False)
    assert await error(emulator, ff(0x73, number + crc.to_bytes(4, "little"))) == 0x08
    assert len(fn_m(emulator).notifications) == 1
    await emulator.apply_fault("ism_uploads", True)
    await ok(emulator, ff(0x73, number + crc.to_bytes(4, "little")))
    assert not fn_m(emulator).notifications
    assert await error(emulator, ff(0x71)) == 0x08
    assert (await ok(emulator, ff(0x68)))[:3] == bytes((0, 0, 0))


async def test_fn_without_marking(tmp_path: Path, clock: Clock) -> None:
    emu = Emulator.open(tmp_path / "emulator.state", host_clock=clock, marking_enabled=False)
    try:
        assert await error(emu, check_request(GS1_44)) == 0xA0
        assert await error(emu, decide(2)) == 0xA0
        assert await error(emu, ff(0x70)) == 0xA0
        assert await error(emu, ff(0x68)) == 0x32
        await ok(emu, OPEN_SHIFT)
        await ok(emu, operation())
        assert await error(emu, bind(GS1_44)) == 0xA0
        await emu.apply_fault("fn_marking", True)
        await ok(emu, ff(0x68))
    finally:
        emu.close()


# --- switches from outside: control channel and command line ----------------------------------


async def test_control_channel_switches_the_ism(emulator: Emulator, tmp_path: Path) -> None:
    control = ControlServer(tmp_path / "control", emulator.apply_fault)
    assert await control.request(b'{"fault": "ism_answer", "value": "sold"}') == {"ok": True}
    line = json.dumps(
        {"fault": "ism_code_answer", "value": {"code": "hex:" + GS1_44.hex(), "answer": "timeout"}}
    )
    assert await control.request(line.encode()) == {"ok": True}
    assert await control.request(b'{"fault": "ism_timeout", "value": 0}') == {"ok": True}
    answer = await control.request(b'{"fault": "ism_answer", "value": "perhaps"}')
    assert answer["ok"] is False
    assert "positive" in answer["error"]
    assert (await ok(emulator, check_request(GS1_44)))[4] == 0xFF
    await ok(emulator, decide(0))
    assert (await ok(emulator, check_request(GS1_44_B)))[5] == 0x07


def test_command_line_options() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "--pty",
            "--firmware",
            "core",
            "--no-marking",
            "--ism-answer",
            "timeout",
            "--ism-timeout",
            "2.5",
            "--no-ism-uploads",
            "--ism-code",
            "0104601234567893215Abc<GS>93Gk30=sold",
            "--ism-bind-recheck",
            "negative",
            "--marking-clear-refused",
        ]
    )
    assert args.firmware == "core"
    assert args.marking is False
    assert args.ism_answer == "timeout"
    assert args.ism_timeout == 2.5
    assert args.no_ism_uploads is False
    assert args.ism_code == [{"code": "0104601234567893215Abc<GS>93Gk30", "answer": "sold"}]
    assert args.ism_bind_recheck == "negative"
    assert args.marking_clear_refused is True
    assert parser.parse_args(["--pty"]).marking_clear_refused is None  # not applied
    with pytest.raises(SystemExit):
        parser.parse_args(["--pty", "--ism-code", "abc=maybe"])


def test_options_of_an_existing_register(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "emulator.state"
    Emulator.open(path, host_clock=clock, firmware="core").close()
    emu = Emulator.open(path, host_clock=clock)
    try:
        assert emu.state.identity.firmware == "core"
        assert emu.state.identity.marking is True
    finally:
        emu.close()


# --- FF67h re-check, a register that does not clear, autonomous FF68h ----------------------


async def test_bind_recheck_answers_with_the_check_block(emulator: Emulator) -> None:
    await ok(emulator, OPEN_SHIFT)
    await accept(emulator, GS1_44)
    await emulator.apply_fault("ism_bind_recheck", "sold")
    await ok(emulator, operation())
    await ok(emulator, item_tags(UNIT))
    answer = await ok(emulator, bind(GS1_44))
    # Kind, then the block of the new check: 2004 = 3, reason 0, 2100 = 4, n, fnCode 0,
    # 2106 = 07h (the code is right, the item is sold already), the ОИСМ's tags.
    assert answer[:3] == bytes((0x44, 0x4D, 3))
    assert answer[3:6] == bytes((3, 0, 4))
    assert answer[6] == len(answer) - 7
    assert answer[7:9] == bytes((0, 0x07))
    # The document records the re-checked 2106.
    await ok(emulator, close(10000))
    [item] = read_tape(tape_path(emulator.state_path))[-1].items
    assert item.tags["2106"] == 0x07
    with pytest.raises(FaultError):
        await emulator.apply_fault("ism_bind_recheck", "maybe")
    await emulator.apply_fault("ism_bind_recheck", None)
    assert emulator.state.ism.bind_recheck is None


async def test_clear_refused_like_nano_f(emulator: Emulator) -> None:
    await accept(emulator, GS1_44)
    await emulator.apply_fault("marking_clear_refused", True)
    assert await error(emulator, decide(2)) == 0xA1
    assert len(fn_m(emulator).table) == 1  # the table stays
    # Reject and accept still work.
    await ok(emulator, check_request(GS1_44_B))
    await ok(emulator, decide(0))
    await emulator.apply_fault("marking_clear_refused", False)
    await ok(emulator, decide(2))
    assert fn_m(emulator).table == ()


async def test_autonomous_fn_has_no_ism_exchange(emulator: Emulator) -> None:
    await emulator.apply_fault("ism_answer", "autonomous")
    assert await error(emulator, ff(0x68)) == 0x02
    await ok(emulator, ff(0x70))  # the marking state still answers
    await emulator.apply_fault("ism_answer", "positive")
    assert len(await ok(emulator, ff(0x68))) == 13
