"""The emulator on a real pty (and TCP), talked to with raw Shtrih-M frames through pyserial.

The host side is blocking pyserial run in a thread; the emulator serves on the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import serial

from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.emulator.state import load_state
from gateway.registers.emulator.tape import read_tape, tape_path
from gateway.registers.shtrih import codec
from gateway.registers.shtrih.framing import (
    ACK,
    ENQ,
    NAK,
    BadFrame,
    Frame,
    FrameDecoder,
    encode_frame,
)

READ_TIMEOUT_S = 3.0
QUIET_S = 0.4  # long enough to be sure nothing more is coming
SUBPROCESS_TIMEOUT_S = 20.0

STATUS = codec.encode_request(codec.ShortStatusRequest())
OPEN_SHIFT = codec.encode_request(codec.OpenShiftRequest())
FN_STATUS = codec.encode_request(codec.FnStatusRequest())


class Host:
    """A blocking host on a serial port: the way a POS driver talks to a register."""

    def __init__(self, port: str) -> None:
        self.port = serial.Serial(port, 115200, timeout=READ_TIMEOUT_S)

    def close(self) -> None:
        self.port.close()

    def enq(self) -> bytes:
        self.port.write(bytes((ENQ,)))
        return bytes(self.port.read(1))

    def send(self, body: bytes) -> bytes:
        """Send a command frame; returns the register's ACK/NAK byte."""
        self.port.write(encode_frame(body))
        return bytes(self.port.read(1))

    def read_frame(self) -> Frame | BadFrame | None:
        stx = self.port.read(1)
        if not stx:
            return None
        length = self.port.read(1)
        rest = self.port.read(length[0] + 1)
        (event,) = FrameDecoder().feed(bytes(stx + length + rest))
        assert isinstance(event, Frame | BadFrame)
        return event

    def ack(self) -> None:
        self.port.write(bytes((ACK,)))

    def nak(self) -> None:
        self.port.write(bytes((NAK,)))

    def quiet(self) -> bytes:
        """Whatever arrives within QUIET_S (expected: nothing)."""
        try:
            self.port.timeout = QUIET_S
            data = bytes(self.port.read(64))
            self.port.timeout = READ_TIMEOUT_S
        except serial.SerialException:
            return b""  # the register lost power: a dead line says nothing
        return data

    def command(self, body: bytes) -> bytes:
        """A whole exchange: ENQ/NAK, frame/ACK, answer/ACK. Returns the answer body."""
        assert self.enq() == bytes((NAK,))
        assert self.send(body) == bytes((ACK,))
        frame = self.read_frame()
        assert isinstance(frame, Frame)
        self.ack()
        return frame.body


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmulatorServer]:
    srv = EmulatorServer(tmp_path / "e.state")
    await srv.start_pty(link=tmp_path / "tty")
    yield srv
    await srv.close()


@pytest.fixture
async def host(server: EmulatorServer, tmp_path: Path) -> AsyncIterator[Host]:
    h = await asyncio.to_thread(Host, str(tmp_path / "tty"))
    yield h
    await asyncio.to_thread(h.close)


def last_document(server: EmulatorServer) -> int:
    return server.state.last_document.number


async def test_enq_nak_command_ack(host: Host) -> None:
    answer = await asyncio.to_thread(host.command, STATUS)
    status = codec.decode_answer(answer, codec.ShortStatus)
    assert status.mode & 0x0F == 4
    assert await asyncio.to_thread(host.enq) == bytes((NAK,))


async def test_answer_lost_then_enq_gets_it(server: EmulatorServer, host: Host) -> None:
    server.faults.answer_lost = 1
    before = last_document(server)
    assert await asyncio.to_thread(host.enq) == bytes((NAK,))
    assert await asyncio.to_thread(host.send, OPEN_SHIFT) == bytes((ACK,))
    assert await asyncio.to_thread(host.quiet) == b""
    assert last_document(server) == before + 1  # closed in the ФН all the same

    assert await asyncio.to_thread(host.enq) == bytes((ACK,))  # an answer is pending
    frame = await asyncio.to_thread(host.read_frame)
    assert isinstance(frame, Frame)
    codec.decode_answer(frame.body, codec.OpenShiftAnswer)
    await asyncio.to_thread(host.ack)
    assert await asyncio.to_thread(host.enq) == bytes((NAK,))


async def test_repeated_frame_while_pending_runs_once(server: EmulatorServer, host: Host) -> None:
    server.faults.answer_lost = 1
    before = last_document(server)
    await asyncio.to_thread(host.enq)
    assert await asyncio.to_thread(host.send, OPEN_SHIFT) == bytes((ACK,))
    assert await asyncio.to_thread(host.quiet) == b""
    # The host gives up waiting and sends the same frame again: answered, not executed again.
    assert await asyncio.to_thread(host.send, OPEN_SHIFT) == bytes((ACK,))
    frame = await asyncio.to_thread(host.read_frame)
    assert isinstance(frame, Frame)
    codec.decode_answer(frame.body, codec.OpenShiftAnswer)
    await asyncio.to_thread(host.ack)
    assert last_document(server) == before + 1


async def test_answer_dropped_enq_gets_nak(server: EmulatorServer, host: Host) -> None:
    server.faults.answer_dropped = 1
    before = last_document(server)
    await asyncio.to_thread(host.enq)
    assert await asyncio.to_thread(host.send, OPEN_SHIFT) == bytes((ACK,))
    assert await asyncio.to_thread(host.quiet) == b""
    assert await asyncio.to_thread(host.enq) == bytes((NAK,))
    answer = await asyncio.to_thread(host.command, FN_STATUS)
    assert codec.decode_answer(answer, codec.FnStatus).last_document_number == before + 1


async def test_garbled_answer_nak_then_enq_resends(server: EmulatorServer, host: Host) -> None:
    server.faults.garbled = 1
    await asyncio.to_thread(host.enq)
    assert await asyncio.to_thread(host.send, STATUS) == bytes((ACK,))
    bad = await asyncio.to_thread(host.read_frame)
    assert isinstance(bad, BadFrame)
    await asyncio.to_thread(host.nak)
    assert await asyncio.to_thread(host.quiet) == b""  # a NAKed answer is not repeated by itself
    assert await asyncio.to_thread(host.enq) == bytes((ACK,))
    good = await asyncio.to_thread(host.read_frame)
    assert isinstance(good, Frame)
    codec.decode_answer(good.body, codec.ShortStatus)
    await asyncio.to_thread(host.ack)


async def test_bad_frame_gets_nak(host: Host) -> None:
    frame = bytearray(encode_frame(STATUS))
    frame[-1] ^= 0xFF

    def exchange() -> bytes:
        host.port.write(bytes(frame))
        return bytes(host.port.read(1))

    assert await asyncio.to_thread(exchange) == bytes((NAK,))


async def test_unplug_gives_eof_and_a_new_pty(
    server: EmulatorServer, host: Host, tmp_path: Path
) -> None:
    link = tmp_path / "tty"
    unplug = asyncio.create_task(server.unplug(0.5))
    await asyncio.sleep(0.1)
    assert not link.exists()

    def read_old() -> None:
        host.port.write(bytes((ENQ,)))
        host.port.read(1)

    with pytest.raises(serial.SerialException):
        await asyncio.to_thread(read_old)
    new = await unplug
    assert new is not None
    assert os.readlink(link) == new
    again = await asyncio.to_thread(Host, str(link))
    try:
        assert await asyncio.to_thread(again.enq) == bytes((NAK,))
    finally:
        await asyncio.to_thread(again.close)


async def test_tcp_with_ff_after_ack(tmp_path: Path) -> None:
    srv = EmulatorServer(tmp_path / "e.state")
    host, port = await srv.start_tcp()
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(bytes((ENQ,)))
        async with asyncio.timeout(READ_TIMEOUT_S):
            assert await reader.readexactly(1) == bytes((NAK,))
            writer.write(encode_frame(STATUS))
            assert await reader.readexactly(1) == bytes((ACK,))
            head = await reader.readexactly(2)
            rest = await reader.readexactly(head[1] + 1)
            writer.write(bytes((ACK, 0xFF)))  # [PROTO]: one 0xFF follows the host's ACK over TCP
            (frame,) = FrameDecoder().feed(head + rest)
            assert isinstance(frame, Frame)
            codec.decode_answer(frame.body, codec.ShortStatus)
            writer.write(bytes((ENQ,)))
            assert await reader.readexactly(1) == bytes((NAK,))
        writer.close()
    finally:
        await srv.close()


# --- the command line ---------------------------------------------------------------------


def _start(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    args = [
        sys.executable,
        "-m",
        "gateway.registers.emulator",
        "--pty",
        "--link",
        str(tmp_path / "tty"),
    ]
    args += ["--state", str(tmp_path / "e.state"), *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ready(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY "), line
    return line.split(" ", 1)[1].strip()


def _control(path: Path, message: dict[str, object]) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(READ_TIMEOUT_S)
        sock.connect(str(path))
        sock.sendall(json.dumps(message).encode() + b"\n")
        answer: dict[str, object] = json.loads(sock.makefile("rb").readline())
        return answer


def test_cli_ready_control_and_sigterm(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    try:
        where = _ready(proc)
        assert where == str(tmp_path / "tty")
        host = Host(where)
        try:
            assert host.enq() == bytes((NAK,))
            control = tmp_path / "e.state.control"
            assert _control(control, {"fault": "paper_out", "value": True}) == {"ok": True}
            bad = _control(control, {"fault": "nope", "value": 1})
            assert bad["ok"] is False
            status = codec.decode_answer(host.command(STATUS), codec.ShortStatus)
            assert status.submode == 1
        finally:
            host.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(SUBPROCESS_TIMEOUT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_power_cut_leaves_receipt_open(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--power-cut-after-lines", "1", "--no-control")
    try:
        host = Host(_ready(proc))
        try:
            host.command(OPEN_SHIFT)
            sale = codec.SaleRequest(
                quantity=1000, price=4200, department=1, taxes=(1, 0, 0, 0), text="Кефир"
            )
            assert host.enq() == bytes((NAK,))
            assert host.send(codec.encode_request(sale)) == bytes((ACK,))
            assert host.quiet() == b""
        finally:
            host.close()
        assert proc.wait(SUBPROCESS_TIMEOUT_S) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    state = load_state(tmp_path / "e.state")
    assert state.receipt is not None
    assert [line.name for line in state.receipt.lines] == ["Кефир"]
    assert [r.type for r in read_tape(tape_path(tmp_path / "e.state"))] == ["openShift"]


def test_cli_marking_switches_over_a_real_line(tmp_path: Path) -> None:
    """The fake ОИСМ and the firmware family set on the command line and switched over the
    control socket; the [NG] #165 FF61h frame replayed byte for byte on the pty."""
    tobacco = b"04606203103348a3=EfODAB=UpGbL"
    proc = _start(
        tmp_path,
        "--firmware",
        "core",
        "--ism-answer",
        "autonomous",
        "--ism-code",
        f"{tobacco.decode()}=negative",
        "--marking-clear-refused",
    )
    try:
        host = Host(_ready(proc))
        try:
            device = host.command(codec.encode_request(codec.DeviceTypeRequest()))
            assert device[6] == 45  # «кассовое ядро»: FCh model id
            dairy = b"0104600653105990" + b"2152CUnq" + b"\x1d" + b"93Gk30"
            assert host.enq() == bytes((NAK,))
            host.port.write(bytes.fromhex("0229ff611e00000001001f00") + dairy + b"\x85")
            assert bytes(host.port.read(1)) == bytes((ACK,))
            assert bytes(host.port.read(10)) == bytes.fromhex("0207ff6100000105009d")
            host.ack()
            sysadmin = bytes((30, 0, 0, 0))
            assert host.command(b"\xff\x69" + sysadmin + b"\x00") == b"\xff\x69\x00\x10"
            # Штрих-Нано-Ф's answer to a clear: ФН A1h.
            assert host.command(b"\xff\x69" + sysadmin + b"\x02") == b"\xff\x69\xa1"
            check = b"\xff\x61" + sysadmin + bytes((1, 0, len(tobacco), 0)) + tobacco
            answer = host.command(check)
            assert answer[3:9] == bytes((0, 1, 1, 20, 0, 0x05))  # negative, 2106 = 05h
            assert host.command(b"\xff\x69" + sysadmin + b"\x00") == b"\xff\x69\x00\x05"
            control = tmp_path / "e.state.control"
            switch = {"fault": "ism_code_answer", "value": None}
            assert _control(control, switch) == {"ok": True}
            switch = {"fault": "ism_answer", "value": "timeout"}
            assert _control(control, switch) == {"ok": True}
            answer = host.command(check)
            assert answer[3:9] == bytes((0, 1, 1, 2, 0xFF, 0))  # no answer in time
        finally:
            host.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(SUBPROCESS_TIMEOUT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
