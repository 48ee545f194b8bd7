"""The serial adapter: a real pty, TCP, and messages a technician can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import NotConnected
from gateway.registers import serial_port
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.shtrih import codec
from gateway.registers.shtrih.link import ShtrihLink


def test_parse_port() -> None:
    assert serial_port.parse_port("/dev/ttyACM0") == serial_port.PortSpec(
        "serial", path="/dev/ttyACM0"
    )
    assert serial_port.parse_port("tcp://10.0.0.5:7778") == serial_port.PortSpec(
        "tcp", host="10.0.0.5", port=7778
    )
    with pytest.raises(ValueError, match="tcp://host:port"):
        serial_port.parse_port("tcp://nohost")


async def test_missing_device_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NotConnected, match="plugged in"):
        await serial_port.open_connection(
            str(tmp_path / "ttyACM9"), baudrate=115200, protocol_factory=ShtrihLink
        )


async def test_pty_and_tcp(tmp_path: Path) -> None:
    server = EmulatorServer(tmp_path / "e.state")
    try:
        device = await server.start_pty()
        host, port = await server.start_tcp("127.0.0.1", 0)
        for where, suffix in ((device, b""), (f"tcp://{host}:{port}", b"\xff")):
            transport, link = await serial_port.open_connection(
                where, baudrate=115200, protocol_factory=lambda s=suffix: ShtrihLink(ack_suffix=s)
            )
            try:
                answer = await link.request(
                    codec.encode_request(codec.DeviceTypeRequest()), timeout_s=2.0
                )
                assert "ШТРИХ" in codec.decode_answer(answer, codec.DeviceType).name
            finally:
                await link.close()
            assert transport.is_closing()
    finally:
        await server.close()


async def test_refused_tcp(tmp_path: Path) -> None:
    with pytest.raises(NotConnected, match="cannot connect"):
        await serial_port.open_connection(
            "tcp://127.0.0.1:9", baudrate=115200, protocol_factory=ShtrihLink
        )
