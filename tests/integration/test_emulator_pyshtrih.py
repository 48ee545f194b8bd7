"""A third-party Shtrih-M driver (pyshtrih, PyPI) runs a whole shift against the emulator's pty.

pyshtrih knows nothing of this project: if it can identify the register, read its status,
open a shift, sell, close the receipt and print the Z report, the emulator speaks the
protocol the way real registers do (ENQ/ACK handshake, frame layouts, passwords, modes).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.emulator.tape import read_tape, tape_path

pyshtrih = pytest.importorskip("pyshtrih")


def _drive(port: str) -> dict[str, Any]:
    """The blocking pyshtrih session: what a POS program written with it would do."""
    found = pyshtrih.discovery(port=port, baudrate=115200)
    assert [type(d).__name__ for d in found] == ["ShtrihM01F"]
    device = pyshtrih.ShtrihM01F(port=port, baudrate=115200)
    device.connect()
    try:
        result: dict[str, Any] = {"name": device.name}
        result["state"] = device.state()
        result["full_state"] = device.full_state()
        result["fs_before"] = device.fs_state()
        device.open_shift()
        device.open_check(0)
        device.sale(("Товар", 2000, 15000), department_num=1, tax1=1)  # 2 × 150.00
        result["close"] = device.close_check(cash=40000)
        result["fs_after"] = device.fs_state()
        result["document"] = device.fs_find_document_by_num(
            result["fs_after"]["Номер последнего ФД"]
        )
        device.z_report()
        result["final_state"] = device.state()
        return result
    finally:
        device.disconnect()


async def test_pyshtrih_full_shift(tmp_path: Path) -> None:
    server = EmulatorServer(tmp_path / "e.state")
    await server.start_pty(link=tmp_path / "tty")
    try:
        result = await asyncio.to_thread(_drive, str(tmp_path / "tty"))
    finally:
        await server.close()

    assert result["name"] == "ШТРИХ-М-01Ф"
    assert result["state"]["Режим ФР"].num == 4
    assert result["full_state"]["Заводской номер"] == server.state.identity.serial
    assert result["fs_before"]["Номер ФН"] == server.state.identity.fn_number.encode()
    assert result["fs_before"]["Номер последнего ФД"] == 1
    assert result["close"]["Сдача"] == 10000
    assert result["fs_after"]["Номер последнего ФД"] == 3
    assert result["document"]["Тип фискального документа"] == 3
    assert result["final_state"]["Режим ФР"].num == 4

    tape = read_tape(tape_path(tmp_path / "e.state"))
    assert [(r.number, r.type, r.total) for r in tape] == [
        (2, "openShift", 0),
        (3, "sell", 30000),
        (4, "closeShift", 0),
    ]
    sale = tape[1]
    assert [(i.name, i.price, i.quantity, i.sum, i.vat) for i in sale.items] == [
        ("Товар", 15000, 2.0, 30000, "vat20")
    ]
    assert [(p.type, p.sum) for p in sale.payments] == [("cash", 40000)]
