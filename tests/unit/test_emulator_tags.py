"""The ФН archive with tags ([FFD] ФФД 1.2) and the paper tape's `tags`, through the emulator
with its files. Request bytes are written by hand from [PROTO] (FF0Ch p.46, FF45h p.52,
FF46h p.53, FF4Dh p.56); nothing here uses the driver's codec.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.registers.emulator import tlv
from gateway.registers.emulator.register import Emulator
from gateway.registers.emulator.tape import Tape, read_tape, tape_path

H0 = dt.datetime(2026, 3, 2, 10, 0, 0)
PWD = bytes((30, 0, 0, 0))


def le(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


def t(tag: int, value: bytes) -> bytes:
    return le(tag, 2) + le(len(value), 2) + value


def s(tag: int, text: str) -> bytes:
    return t(tag, text.encode("cp1251"))


class Clock:
    def __init__(self) -> None:
        self.now = H0

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    emu = Emulator.open(tmp_path / "e.state", host_clock=Clock())
    yield emu
    emu.close()


async def send(emu: Emulator, body: bytes) -> bytes:
    reply = await emu.handle(body)
    assert reply.answer[len(body[:2]) if body[0] == 0xFF else 1] == 0, reply.answer.hex()
    return reply.answer


def ff46(name: str, price: int, qty: int, rate: int, *, tax: int | None = None) -> bytes:
    return (
        b"\xff\x46"
        + PWD
        + b"\x01"
        + le(qty, 6)
        + le(price, 5)
        + b"\xff" * 5
        + (b"\xff" * 5 if tax is None else le(tax, 5))
        + bytes((rate, 1, 4, 1))
        + name.encode("cp1251")
    )


async def test_receipt_keeps_every_tag(emulator: Emulator) -> None:
    await send(emulator, b"\xff\x41" + PWD)
    await send(emulator, b"\xff\x0c" + PWD + s(1021, "Иванова А.") + s(1203, "7707083893"))
    await send(emulator, b"\xff\x0b" + PWD)

    await send(emulator, ff46("Сыр", 45_000, 350_000, 0x02, tax=1432))  # 0.35 kg × 450.00
    item_tags = t(2108, b"\x0b") + t(1229, le(1500, 2)) + s(1230, "643")
    item_tags += s(1231, "10702070/010124/0001234") + s(1191, "партия 7")
    await send(emulator, b"\xff\x4d" + PWD + item_tags)
    await send(emulator, b"\xff\x4d" + PWD + t(1162, bytes.fromhex("444d0001")))
    await send(emulator, ff46("Вода", 5_000, 2_000_000, 0x08))
    buyer = t(1256, s(1227, "ООО Ромашка") + s(1228, "7707083893"))
    extra = t(1084, s(1085, "заказ") + s(1086, "42"))
    await send(emulator, b"\xff\x0c" + PWD + buyer + extra + s(1008, "a@b.c"))
    await send(emulator, b"\xff\x0c" + PWD + s(1187, "Касса 2"))
    sums = le(10_000, 5) + le(15_750, 5) + bytes(5 * 14)
    closed = await send(
        emulator, b"\xff\x45" + PWD + sums + b"\x00" + bytes(30) + b"\x02"
    )  # УСН доход
    number = int.from_bytes(closed[8:12], "little")

    record = read_tape(tape_path(emulator.state_path))[-1]
    assert record.number == number
    tags = record.tags
    # Built by the register ([FFD]).
    assert tags["1054"] == 1
    assert tags["1055"] == 2
    assert tags["1020"] == 15_750 + 10_000
    assert (tags["1031"], tags["1081"]) == (10_000, 15_750)
    assert (tags["1215"], tags["1216"], tags["1217"]) == (0, 0, 0)
    assert tags["1040"] == number
    assert tags["1038"] == 1
    assert tags["1042"] == 1
    assert tags["1041"] == emulator.state.identity.fn_number
    assert tags["1037"] == emulator.state.identity.registration_number
    assert tags["1077"] == record.fiscal_sign
    assert tags["1012"] == record.datetime.isoformat()
    assert tags["1018"] == f"{emulator.state.identity.inn:<12}"
    assert tags["1048"] == emulator.state.identity.user_name
    # 1009 from the registration, 1187 as the host sent it.
    assert tags["1009"] == emulator.state.identity.payments_address
    assert tags["1187"] == "Касса 2"
    # VAT: 10 % of 157.50 (the line's own tax was given: 14.32) and the no-VAT turnover.
    assert tags["1103"] == 1432
    assert tags["1105"] == 10_000
    # Sent by the host with FF0Ch, STLVs nested.
    assert tags["1256"] == {"1227": "ООО Ромашка", "1228": "7707083893"}
    assert tags["1084"] == {"1085": "заказ", "1086": "42"}
    assert tags["1008"] == "a@b.c"
    assert "1021" not in tags  # the cashier went to the shift report, not to this receipt

    cheese, water = (item.tags for item in record.items)
    assert cheese == {
        "1214": 4,
        "1212": 1,
        "1030": "Сыр",
        "1079": 45_000,
        "1023": 0.35,
        "1199": 2,
        "1043": 15_750,
        "1200": 1432,
        "2108": 11,
        "1229": 1500,
        "1230": "643",
        "1231": "10702070/010124/0001234",
        "1191": "партия 7",
        "1162": "444d0001",
    }
    assert (water["1199"], water["1023"], water["2108"], water["1043"]) == (6, 2, 0, 10_000)

    # The archive holds the same: the document's TLVs with one STLV 1059 per line.
    doc = emulator.state.document(number)
    assert doc is not None
    archived = tlv.parse(doc.tlv)
    items = [tlv.parse(x.value) for x in archived if x.tag == tlv.TAG_ITEM]
    assert [dict((m.tag, m.value) for m in item)[1030] for item in items] == [
        "Сыр".encode("cp1251"),
        "Вода".encode("cp1251"),
    ]
    assert tlv.tags_json(x for x in archived if x.tag != tlv.TAG_ITEM) == tags

    shift_report = read_tape(tape_path(emulator.state_path))[0]
    assert shift_report.tags["1021"] == "Иванова А."
    assert shift_report.tags["1203"] == "7707083893"


async def test_tape_line_of_a_cash_in(emulator: Emulator) -> None:
    await send(emulator, b"\xe0" + PWD)
    answer = await send(emulator, b"\x50" + PWD + le(50_000, 5))
    through = int.from_bytes(answer[3:5], "little")
    lines = tape_path(emulator.state_path).read_text(encoding="utf-8").splitlines()
    raw = json.loads(lines[-1])
    assert raw["type"] == "cashIn"
    assert raw["fiscal"] is False
    assert (raw["number"], raw["fiscal_sign"], raw["total"]) == (through, 0, 50_000)
    assert raw["payments"] == [{"type": "cash", "sum": 50_000}]
    assert raw["items"] == []
    # Counting fiscal documents skips it.
    assert [r.number for r in read_tape(tape_path(emulator.state_path)) if r.fiscal] == [2]


async def test_reconcile_prints_a_lost_cash_line(tmp_path: Path) -> None:
    path = tmp_path / "e.state"
    emu = Emulator.open(path, host_clock=Clock())
    await send(emu, b"\xe0" + PWD)
    await send(emu, b"\x50" + PWD + le(700, 5))
    emu.close()
    tape_file = tape_path(path)
    first = tape_file.read_text(encoding="utf-8").splitlines(keepends=True)[0]
    tape_file.write_text(first, encoding="utf-8")  # killed before the cash line was written

    again = Emulator.open(path, host_clock=Clock())
    again.close()
    records = read_tape(tape_file)
    assert [(r.type, r.fiscal) for r in records] == [("openShift", True), ("cashIn", False)]
    # Once complete, a restart adds nothing, even though the through number (3) is larger
    # than the last FD number (2).
    assert not Tape(tape_file).reconcile(again.state.last_tape)
    assert len(read_tape(tape_file)) == 2


def test_value_types() -> None:
    assert tlv.value_of(tlv.fvln(1023, 1_500_000, 6)) == 1.5
    assert tlv.value_of(tlv.fvln(1023, 3_000_000, 6)) == 3
    assert tlv.value_of(tlv.fvln(1023, 455_000, 6)) == 0.455
    assert tlv.fvln(1023, 455_000, 6).value == b"\x03\xc7\x01"  # three digits, 455 = 01C7h
    assert tlv.fvln(1023, 1_500_000, 6).value == b"\x01\x0f"  # one digit after the point, 15
    assert tlv.value_of(tlv.unixtime(1012, H0)) == H0.isoformat()
    assert tlv.unixtime(1012, H0).value == le(
        int((H0 - dt.datetime(1970, 1, 1)).total_seconds()), 4
    )
    assert tlv.value_of(tlv.Tlv(9999, b"\x01\x02")) == "0102"
    assert tlv.value_of(tlv.fiscal_sign_1077(0x12345678)) == 0x12345678
    with pytest.raises(tlv.TlvError):
        tlv.parse(b"\x08\x04\x05\x00ab")
