"""The serial adapter: a real pty, TCP, and messages a technician can act on."""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import tty
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.domain.errors import NotConnected
from gateway.registers import serial_port
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.shtrih import codec
from gateway.registers.shtrih.framing import (
    ACK,
    ENQ,
    NAK,
    Control,
    Frame,
    FrameDecoder,
    encode_frame,
)
from gateway.registers.shtrih.link import ShtrihLink

E = bytes((ENQ,))
A = bytes((ACK,))
N = bytes((NAK,))
COMMAND = bytes((0xFC,))  # "get device type": no password, any mode
ANSWER = bytes((0xFC, 0x00)) + b"answer"


class TinyRegister:
    """Just enough of a register: NAK to ENQ; ACK and the answer to any good frame."""

    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.heard = bytearray()

    def received(self, data: bytes) -> bytes:
        """Bytes from the host -> bytes to send back."""
        self.heard += data
        out = b""
        for event in self.decoder.feed(data):
            if event is Control.ENQ:
                out += N
            elif isinstance(event, Frame):
                out += A + encode_frame(ANSWER)
        return out


async def until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(5.0):
        while not predicate():
            await asyncio.sleep(0.005)


@pytest.fixture
async def pty_register() -> AsyncIterator[tuple[str, TinyRegister]]:
    """A TinyRegister on the master side of a real pty; yields the slave's path."""
    master, slave = os.openpty()
    tty.setraw(master)
    os.set_blocking(master, False)
    register = TinyRegister()
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            data = os.read(master, 4096)
        except BlockingIOError:
            return
        except OSError:  # EIO: every slave fd closed
            loop.remove_reader(master)
            return
        reply = register.received(data)
        if reply:
            os.write(master, reply)

    loop.add_reader(master, readable)
    try:
        yield os.ttyname(slave), register
    finally:
        loop.remove_reader(master)
        os.close(master)
        os.close(slave)


def test_parse_port() -> None:
    assert serial_port.parse_port("/dev/ttyACM0") == serial_port.PortSpec(
        "serial", path="/dev/ttyACM0"
    )
    assert serial_port.parse_port("/dev/serial/by-id/usb-SHTRIH-M-if00") == serial_port.PortSpec(
        "serial", path="/dev/serial/by-id/usb-SHTRIH-M-if00"
    )
    assert serial_port.parse_port("tcp://10.0.0.5:7778") == serial_port.PortSpec(
        "tcp", host="10.0.0.5", port=7778
    )
    with pytest.raises(ValueError, match="tcp://host:port"):
        serial_port.parse_port("tcp://nohost")
    with pytest.raises(ValueError, match="device path"):
        serial_port.parse_port("")


async def test_request_over_a_pty(pty_register: tuple[str, TinyRegister]) -> None:
    path, register = pty_register
    transport, link = await serial_port.open_connection(
        path, baudrate=115200, protocol_factory=ShtrihLink
    )
    try:
        assert link.connected
        assert await link.request(COMMAND, timeout_s=2.0) == ANSWER
        await until(lambda: bytes(register.heard).endswith(A))
        assert bytes(register.heard) == E + encode_frame(COMMAND) + A  # no suffix on serial
    finally:
        await link.close()
    assert transport.is_closing()
    assert not link.connected


async def test_port_in_use_is_refused(pty_register: tuple[str, TinyRegister]) -> None:
    path, _ = pty_register
    _transport, link = await serial_port.open_connection(
        path, baudrate=115200, protocol_factory=ShtrihLink
    )
    try:
        with pytest.raises(NotConnected, match="in use by another program"):
            await serial_port.open_connection(path, baudrate=115200, protocol_factory=ShtrihLink)
    finally:
        await link.close()


async def test_request_over_tcp_sends_ff_after_ack() -> None:
    register = TinyRegister()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            reply = register.received(data)
            if reply:
                writer.write(reply)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    where = f"tcp://127.0.0.1:{port}"
    try:
        assert serial_port.parse_port(where).kind == "tcp"
        transport, link = await serial_port.open_connection(
            where, baudrate=115200, protocol_factory=lambda: ShtrihLink(ack_suffix=b"\xff")
        )
        try:
            assert await link.request(COMMAND, timeout_s=2.0) == ANSWER
            await until(lambda: bytes(register.heard).endswith(A + b"\xff"))
            assert bytes(register.heard) == E + encode_frame(COMMAND) + A + b"\xff"
        finally:
            await link.close()
        assert transport.is_closing()
    finally:
        server.close()
        await server.wait_closed()


async def test_missing_device_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NotConnected, match="plugged in and switched on") as err:
        await serial_port.open_connection(
            str(tmp_path / "ttyACM9"), baudrate=115200, protocol_factory=ShtrihLink
        )
    assert str(tmp_path / "ttyACM9") in str(err.value)


async def test_not_a_serial_port_says_so(tmp_path: Path) -> None:
    plain = tmp_path / "notatty"
    plain.write_bytes(b"")
    with pytest.raises(NotConnected, match="not a serial port"):
        await serial_port.open_connection(str(plain), baudrate=115200, protocol_factory=ShtrihLink)


async def test_permission_denied_names_the_dialout_group(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(
        "gateway.registers.serial_port.serial_asyncio.create_serial_connection", refuse
    )
    with pytest.raises(NotConnected, match=r"permission denied .* dialout group") as err:
        await serial_port.open_connection(
            "/dev/ttyACM0", baudrate=115200, protocol_factory=ShtrihLink
        )
    assert "/dev/ttyACM0" in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root opens any file")
async def test_permission_denied_on_a_real_file(tmp_path: Path) -> None:
    locked = tmp_path / "ttyS9"
    locked.write_bytes(b"")
    locked.chmod(0)
    with pytest.raises(NotConnected, match="dialout"):
        await serial_port.open_connection(str(locked), baudrate=115200, protocol_factory=ShtrihLink)


async def test_refused_tcp() -> None:
    with pytest.raises(NotConnected, match="cannot connect"):
        await serial_port.open_connection(
            "tcp://127.0.0.1:9", baudrate=115200, protocol_factory=ShtrihLink
        )


async def test_emulator_on_pty_and_tcp(tmp_path: Path) -> None:
    server = EmulatorServer(tmp_path / "e.state")
    try:
        device = await server.start_pty()
        host, port = await server.start_tcp("127.0.0.1", 0)
        for where, suffix in ((device, b""), (f"tcp://{host}:{port}", b"\xff")):
            transport, link = await serial_port.open_connection(
                where,
                baudrate=115200,
                protocol_factory=functools.partial(ShtrihLink, ack_suffix=suffix),
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
