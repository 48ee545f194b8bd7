"""The emulated register with its files: state on disk, paper tape, restarts, device faults."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest

from gateway.domain.fiscal import Vat
from gateway.registers.emulator import fn
from gateway.registers.emulator.faults import FaultError
from gateway.registers.emulator.register import Emulator
from gateway.registers.emulator.state import fresh_state, load_state, save_state
from gateway.registers.emulator.tape import read_tape, tape_path
from gateway.registers.shtrih import codec
from gateway.registers.shtrih.errors_table import ShtrihError

H0 = dt.datetime(2026, 3, 2, 10, 0, 0)
A = TypeVar("A", bound=codec.Answer)


class Clock:
    """A host clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = H0

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(tmp_path: Path, clock: Clock) -> Iterator[Emulator]:
    emu = Emulator.open(tmp_path / "emulator.state", host_clock=clock)
    yield emu
    emu.close()


async def call(emu: Emulator, request: codec.Request, answer_cls: type[A]) -> A:
    reply = await emu.handle(codec.encode_request(request))
    return codec.decode_answer(reply.answer, answer_cls)


async def sell(
    emu: Emulator, name: str, price: int, qty: int, cash: int
) -> codec.FnCloseReceiptV2Answer:
    await call(
        emu,
        codec.FnOperationV2Request(
            operation=1,
            quantity=qty,
            price=price,
            amount=None,
            tax_amount=None,
            tax_rate=codec.VAT_TO_TAX_RATE[Vat.VAT10],
            department=1,
            payment_method=4,
            payment_object=1,
            name=name,
        ),
        codec.FnOperationV2Answer,
    )
    payments = (cash,) + (0,) * 15
    return await call(
        emu,
        codec.FnCloseReceiptV2Request(
            payments=payments, rounding=0, taxes=(0,) * 6, tax_system=1, text=""
        ),
        codec.FnCloseReceiptV2Answer,
    )


async def test_fresh_register_is_fiscalised(emulator: Emulator) -> None:
    status = await call(emulator, codec.FnStatusRequest(), codec.FnStatus)
    assert status.last_document_number == 1
    assert status.life_phase == fn.PHASE_FISCAL
    assert not status.shift_open
    kind = await call(emulator, codec.DeviceTypeRequest(), codec.DeviceType)
    assert kind.name == "ШТРИХ-М-01Ф"
    assert emulator.state_path.exists()


async def test_tape_lines_match_documents(emulator: Emulator) -> None:
    await call(emulator, codec.OpenShiftRequest(), codec.OpenShiftAnswer)
    first = await sell(emulator, "Чай", 9900, 2_000_000, 20000)
    second = await sell(emulator, "Сахар", 4550, 500_000, 5000)
    await call(emulator, codec.ZReportRequest(), codec.ZReportAnswer)

    tape = read_tape(tape_path(emulator.state_path))
    assert [r.type for r in tape] == ["openShift", "sell", "sell", "closeShift"]
    assert [r.number for r in tape] == [2, 3, 4, 5]
    for record in tape:
        doc = await call(
            emulator, codec.FnFindDocumentRequest(number=record.number), codec.FnDocument
        )
        assert doc.fiscal_sign == record.fiscal_sign
        assert doc.datetime == record.datetime
        assert record.shift == 1
    assert (tape[1].fiscal_sign, tape[2].fiscal_sign) == (first.fiscal_sign, second.fiscal_sign)
    raw = json.loads(tape_path(emulator.state_path).read_text(encoding="utf-8").splitlines()[1])
    tags = raw.pop("tags")
    item_tags = raw["items"][0].pop("tags")
    assert (raw.pop("fiscal"), raw.pop("printed")) == (True, True)
    # [FFD]: 1040 FD number, 1020 total, 1031 cash kept (paid − change), 1103 VAT 10 %.
    assert (tags["1040"], tags["1020"], tags["1031"], tags["1103"]) == (3, 19800, 19800, 1800)
    # The line's STLV 1059: 1199 = 2 (10 %), 1023 quantity as a number, 2108 defaulted.
    assert (item_tags["1199"], item_tags["1023"], item_tags["2108"]) == (2, 2, 0)
    assert raw == {
        "number": 3,
        "type": "sell",
        "datetime": tape[1].datetime.isoformat(),
        "fiscal_sign": first.fiscal_sign,
        "total": 19800,
        "items": [
            {
                "name": "Чай",
                "price": 9900,
                "quantity": 2.0,
                "sum": 19800,
                "vat": "vat10",
                "department": 1,
            }
        ],
        "payments": [{"type": "cash", "sum": 20000}],
        "shift": 1,
    }
    assert tape[2].total == 2275


async def test_restart_keeps_everything(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "emulator.state"
    emu = Emulator.open(path, host_clock=clock)
    await call(emu, codec.OpenShiftRequest(), codec.OpenShiftAnswer)
    await call(emu, codec.OpenReceiptRequest(receipt_type=0), codec.OpenReceiptAnswer)
    state = emu.state
    emu.close()

    again = Emulator.open(path, host_clock=clock)
    try:
        assert again.state.documents == state.documents
        assert again.state.receipt == state.receipt
        status = await call(again, codec.ShortStatusRequest(), codec.ShortStatus)
        assert status.mode & 0x0F == 8
    finally:
        again.close()


async def test_tape_is_completed_after_a_kill_between_state_and_tape(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "emulator.state"
    emu = Emulator.open(path, host_clock=clock)
    await call(emu, codec.OpenShiftRequest(), codec.OpenShiftAnswer)
    closed = await sell(emu, "Кофе", 25000, 1_000_000, 25000)
    emu.close()
    tape_file = tape_path(path)
    lines = tape_file.read_bytes().splitlines(keepends=True)
    # The kill came after the state was saved and while the tape line was half written.
    tape_file.write_bytes(lines[0] + lines[1][:17])

    again = Emulator.open(path, host_clock=clock)
    again.close()
    tape = read_tape(tape_file)
    assert [r.number for r in tape] == [2, closed.document_number]
    assert tape[-1].fiscal_sign == closed.fiscal_sign
    assert tape_file.read_bytes().endswith(b"\n")


async def test_clock_offset_option(tmp_path: Path, clock: Clock) -> None:
    emu = Emulator.open(tmp_path / "e.state", clock_offset_s=-3600, host_clock=clock)
    try:
        status = await call(emu, codec.LongStatusRequest(), codec.LongStatus)
        rtc = dt.datetime.combine(status.date, status.time)
        assert abs((rtc - (clock.now - dt.timedelta(hours=1))).total_seconds()) < 5
    finally:
        emu.close()


async def test_unknown_command_answers_37(emulator: Emulator) -> None:
    reply = await emulator.handle(bytes((0xE7,)) + (30).to_bytes(4, "little"))
    assert reply.answer == codec.encode_error(0xE7, 0x37)


async def test_device_faults_persist(emulator: Emulator) -> None:
    await emulator.apply_fault("paper_out", True)
    assert not load_state(emulator.state_path).printer.paper
    with pytest.raises(ShtrihError) as err:
        await call(emulator, codec.OpenShiftRequest(), codec.OpenShiftAnswer)
    assert err.value.error_code == 0x6B
    await emulator.apply_fault("paper_out", False)
    await call(emulator, codec.OpenShiftRequest(), codec.OpenShiftAnswer)

    await emulator.apply_fault("fn_expiry", "2027-01-31")
    expiry = await call(emulator, codec.FnExpiryRequest(), codec.FnExpiry)
    assert expiry.expiry == dt.date(2027, 1, 31)

    await emulator.apply_fault("fn_warnings", 0b1000)
    status = await call(emulator, codec.FnStatusRequest(), codec.FnStatus)
    assert status.warnings & 0b1000

    with pytest.raises(FaultError):
        await emulator.apply_fault("no_such_fault", True)
    with pytest.raises(FaultError):
        await emulator.apply_fault("paper_out", "maybe")


async def test_ofd_backlog_and_no_drain(emulator: Emulator) -> None:
    await emulator.apply_fault("ofd_drain", False)
    await call(emulator, codec.OpenShiftRequest(), codec.OpenShiftAnswer)
    for _ in range(3):
        await sell(emulator, "Соль", 1000, 1_000_000, 1000)
    ofd = await call(emulator, codec.FnOfdStatusRequest(), codec.FnOfdStatus)
    assert (ofd.count, ofd.first_number) == (4, 2)
    await emulator.apply_fault("ofd_ack", 3)
    ofd = await call(emulator, codec.FnOfdStatusRequest(), codec.FnOfdStatus)
    assert (ofd.count, ofd.first_number) == (1, 5)
    await emulator.apply_fault("ofd_backlog", 2)
    ofd = await call(emulator, codec.FnOfdStatusRequest(), codec.FnOfdStatus)
    assert (ofd.count, ofd.first_number) == (2, 4)


async def test_power_cut_after_lines(emulator: Emulator) -> None:
    await call(emulator, codec.OpenShiftRequest(), codec.OpenShiftAnswer)
    emulator.faults.power_cut_after_lines = 2
    body = codec.encode_request(
        codec.SaleRequest(quantity=1000, price=100, department=1, taxes=(1, 0, 0, 0), text="x")
    )
    first = await emulator.handle(body)
    assert not first.power_cut
    second = await emulator.handle(body)
    assert second.power_cut
    saved = load_state(emulator.state_path)
    assert saved.receipt is not None
    assert len(saved.receipt.lines) == 2


def test_state_file_replace_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    state = fresh_state(H0)
    save_state(path, state)
    save_state(path, replace(state, fn_warnings=3))
    assert load_state(path).fn_warnings == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.state"]
