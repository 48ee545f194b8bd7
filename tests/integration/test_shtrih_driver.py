"""The Shtrih driver against the emulator on a real pty: shifts, receipts, clock, faults."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.domain import fiscal
from gateway.domain.errors import LinkError, NoAnswer
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.shtrih import driver as driver_mod
from gateway.registers.shtrih.driver import ShtrihRegister
from gateway.registers.shtrih.errors_table import ShtrihError


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer(tmp_path / "emu.state")
    await server.start_pty(link=tmp_path / "emu.tty")
    yield server
    await server.close()


@pytest.fixture
async def register(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ShtrihRegister]:
    # Faults that swallow answers should fail fast in tests.
    monkeypatch.setattr(driver_mod, "PRINT_TIMEOUT_S", 1.5)
    monkeypatch.setattr(driver_mod, "QUERY_TIMEOUT_S", 1.5)
    reg = ShtrihRegister(str(tmp_path / "emu.tty"))
    await reg.connect()
    yield reg
    await reg.close()


def tape(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "emu.state.journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def item(
    name: str,
    price: int,
    qty: float = 1,
    vat: fiscal.Vat = fiscal.Vat.VAT20,
    amount: int | None = None,
) -> fiscal.Item:
    quantity = round(qty * fiscal.QTY_SCALE)
    full = fiscal.round_qty(price * quantity)
    return fiscal.Item(
        name=name,
        price=price,
        quantity=quantity,
        amount=full if amount is None else amount,
        vat=vat,
    )


def receipt(
    kind: fiscal.ReceiptType, *items: fiscal.Item, cash: int | None = None, card: int = 0
) -> fiscal.Receipt:
    total = sum(i.amount for i in items)
    pays = []
    if cash is None:
        cash = total - card
    if cash:
        pays.append(fiscal.Payment(fiscal.PaymentType.CASH, cash))
    if card:
        pays.append(fiscal.Payment(fiscal.PaymentType.ELECTRONICALLY, card))
    return fiscal.Receipt(
        type=kind,
        taxation=fiscal.TaxationType.OSN,
        items=items,
        payments=tuple(pays),
        operator=fiscal.Operator("Иванова А.", "7707083893"),
        client_contact="buyer@example.com",
    )


async def test_identity_and_status(register: ShtrihRegister) -> None:
    info = await register.device_info()
    assert "ШТРИХ" in info.model.upper()
    assert info.serial
    status = await register.status()
    assert status.shift is fiscal.ShiftState.CLOSED
    assert status.paper_present
    assert not status.cover_open
    fn = await register.fn_status()
    assert len(fn.number) == 16
    assert await register.fn_expiry() is not None
    ofd = await register.ofd_status()
    assert ofd.unsent_count >= 0


async def test_full_shift_with_every_receipt_type(register: ShtrihRegister, tmp_path: Path) -> None:
    opened = await register.open_shift(fiscal.Operator("Иванова А."))
    assert (await register.shift_info()).state is fiscal.ShiftState.OPENED
    last = opened.document_number
    for kind in fiscal.ReceiptType:
        r = receipt(
            kind,
            item("Молоко 3,2%", 8990, 2, fiscal.Vat.VAT10),
            item("Сыр весовой", 89900, 0.357, fiscal.Vat.VAT20),
            item("Пакет", 500, 1, fiscal.Vat.NONE),
            cash=60000,
        )
        res = await register.print_receipt(r)
        assert res.document_number == last + 1
        assert res.fiscal_sign > 0
        assert res.total == r.total
        last = res.document_number
        found = await register.find_document(res.document_number)
        assert found.document_type == fiscal.DOC_TYPE_RECEIPT
        assert found.receipt_type is kind
        assert found.total == r.total
        assert found.fiscal_sign == res.fiscal_sign
    await register.x_report()
    closed = await register.close_shift()
    assert closed.document_number == last + 1
    assert (await register.shift_info()).state is fiscal.ShiftState.CLOSED

    lines = tape(tmp_path)
    kinds = [line["type"] for line in lines]
    assert kinds == ["openShift", "sell", "sellReturn", "buy", "buyReturn", "closeShift"]
    sell = lines[1]
    assert [i["name"] for i in sell["items"]] == ["Молоко 3,2%", "Сыр весовой", "Пакет"]  # type: ignore[index]
    assert sell["total"] == 8990 * 2 + 32094 + 500


async def test_discounted_line_prints_exact_amounts(
    register: ShtrihRegister, tmp_path: Path
) -> None:
    await register.open_shift()
    # 7 × 0.20 with the line discounted to 1.00: no single price fits, so two lines.
    r = receipt(fiscal.ReceiptType.SELL, item("Спички", 20, 7, amount=100))
    res = await register.print_receipt(r)
    assert res.total == 100
    printed = tape(tmp_path)[-1]
    assert sum(i["sum"] for i in printed["items"]) == 100  # type: ignore[union-attr]
    assert printed["total"] == 100


async def test_card_payment_and_change(register: ShtrihRegister) -> None:
    await register.open_shift()
    r = receipt(fiscal.ReceiptType.SELL, item("Кофе", 15000), cash=10000, card=5000)
    res = await register.print_receipt(r)
    assert res.total == 15000


async def test_clock_read_set_and_refused_in_open_shift(register: ShtrihRegister) -> None:
    clock = await register.read_clock()
    assert abs((clock - dt.datetime.now()).total_seconds()) < 120
    target = (dt.datetime.now() + dt.timedelta(minutes=10)).replace(microsecond=0)
    await register.set_clock(target)
    assert abs((await register.read_clock() - target).total_seconds()) < 5
    await register.open_shift()
    with pytest.raises(ShtrihError) as err:
        await register.set_clock(target)
    assert err.value.command in (0x21, 0x22)
    # The link is fine after a refusal.
    assert (await register.status()).shift is fiscal.ShiftState.OPENED


async def test_date_before_last_document_refused(register: ShtrihRegister) -> None:
    await register.open_shift()
    await register.close_shift()
    with pytest.raises(ShtrihError):
        await register.set_clock(dt.datetime.now() - dt.timedelta(days=3))


async def test_paper_out_is_transient_and_recovers(
    register: ShtrihRegister, emulator: EmulatorServer
) -> None:
    await register.open_shift()
    await emulator.apply_fault("paper_out", True)
    status = await register.status()
    assert not status.paper_present
    with pytest.raises(ShtrihError) as err:
        await register.print_receipt(receipt(fiscal.ReceiptType.SELL, item("Хлеб", 4550)))
    assert err.value.error_code == 0x6B
    assert err.value.transient
    assert not (await register.status()).receipt_open  # the driver cancelled the open receipt
    await emulator.apply_fault("paper_out", False)
    res = await register.print_receipt(receipt(fiscal.ReceiptType.SELL, item("Хлеб", 4550)))
    assert res.total == 4550


async def test_cover_open_refused(register: ShtrihRegister, emulator: EmulatorServer) -> None:
    await register.open_shift()
    await emulator.apply_fault("cover_open", True)
    assert (await register.status()).cover_open
    with pytest.raises(ShtrihError) as err:
        await register.x_report()
    assert err.value.transient
    await emulator.apply_fault("cover_open", False)
    await register.x_report()


async def test_payments_below_total_refused_and_cancelled(
    register: ShtrihRegister, tmp_path: Path
) -> None:
    await register.open_shift()
    bad = receipt(fiscal.ReceiptType.SELL, item("Хлеб", 4550), cash=100)
    with pytest.raises(ShtrihError) as err:
        await register.print_receipt(bad)
    assert err.value.error_code == 0x45
    assert not (await register.status()).receipt_open
    assert [line["type"] for line in tape(tmp_path)] == ["openShift"]


async def test_answer_pending_recovery(
    register: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path
) -> None:
    await register.open_shift()
    n0 = (await register.fn_status()).last_document_number
    await emulator.apply_fault("answer_lost", True)
    with pytest.raises(NoAnswer) as err:
        await register.print_receipt(receipt(fiscal.ReceiptType.SELL, item("Чай", 9900)))
    assert err.value.command_sent
    # The document closed; its answer waits on the register. settle() collects it, never resends.
    status = await register.settle()
    assert not status.receipt_open
    fn = await register.fn_status()
    assert fn.last_document_number == n0 + 1
    doc = await register.find_document(n0 + 1)
    assert doc.total == 9900
    assert [line["type"] for line in tape(tmp_path)].count("sell") == 1


async def test_answer_dropped_then_reconcile(
    register: ShtrihRegister, emulator: EmulatorServer
) -> None:
    await register.open_shift()
    n0 = (await register.fn_status()).last_document_number
    await emulator.apply_fault("answer_dropped", True)
    with pytest.raises(NoAnswer):
        await register.print_receipt(receipt(fiscal.ReceiptType.SELL, item("Чай", 9900)))
    await register.settle()
    assert (await register.fn_status()).last_document_number == n0 + 1


async def test_garbled_answer_is_resent(register: ShtrihRegister, emulator: EmulatorServer) -> None:
    emulator.faults.garbled = 3
    for _ in range(3):
        assert (await register.status()).mode in (2, 4)
    assert emulator.faults.garbled == 0  # every garbled answer was NAKed and resent intact


async def test_slow_bytes_still_work(register: ShtrihRegister, emulator: EmulatorServer) -> None:
    emulator.faults.slow_byte_s = 0.002
    info = await register.device_info()
    assert info.serial


async def test_power_cut_mid_receipt_leaves_it_open(
    register: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path
) -> None:
    await register.open_shift()
    n0 = (await register.fn_status()).last_document_number
    await emulator.apply_fault("power_cut_mid_receipt", 2)
    with pytest.raises(LinkError):
        await register.print_receipt(
            receipt(fiscal.ReceiptType.SELL, item("Один", 100), item("Два", 200), item("Три", 300))
        )
    await emulator.power_lost.wait()
    await register.close()
    # Power comes back: the register starts again from its state file.
    revived = EmulatorServer(tmp_path / "emu.state")
    await revived.start_pty(link=tmp_path / "emu.tty")
    try:
        await register.connect()
        status = await register.settle()
        assert status.receipt_open
        await register.cancel_receipt()
        assert not (await register.status()).receipt_open
        assert (await register.fn_status()).last_document_number == n0
        assert [line["type"] for line in tape(tmp_path)] == ["openShift"]
    finally:
        await register.close()
        await revived.close()


async def test_unplug_fails_waiters_and_replug_works(
    register: ShtrihRegister, emulator: EmulatorServer
) -> None:
    await emulator.unplug(0.5)

    async def poll_until_failure() -> None:
        for _ in range(50):
            await register.status()
            await asyncio.sleep(0.02)

    with pytest.raises(LinkError):
        await poll_until_failure()
    assert not register.connected
    await register.close()
    for _ in range(100):
        try:
            await register.connect()
            break
        except LinkError:
            await asyncio.sleep(0.05)
    assert register.connected
    assert (await register.status()).mode in (2, 4)
