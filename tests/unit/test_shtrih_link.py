"""The host link end to end over in-memory lines.

Part 1: a small fake register written here (the device side of [PROTO] p.8) on fake
transports that chunk, delay, drop, garble and add noise. Part 2: the same link against the
emulator's real device side, so both ends of the project agree.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.errors import ConnectionLost, FrameError, NoAnswer, NotConnected
from gateway.registers.emulator.register import Emulator
from gateway.registers.emulator.wire import DeviceLink
from gateway.registers.shtrih import codec
from gateway.registers.shtrih import link as link_mod
from gateway.registers.shtrih.framing import (
    ACK,
    ENQ,
    NAK,
    STX,
    BadFrame,
    Control,
    Event,
    Frame,
    FrameDecoder,
    encode_frame,
)
from gateway.registers.shtrih.link import ShtrihLink

E = bytes((ENQ,))
A = bytes((ACK,))
N = bytes((NAK,))

# The fake register drops a partial frame sooner than the host waits for an ACK.
DEVICE_BYTE_TIMEOUT_S = 0.05


@pytest.fixture(autouse=True)
def fast_link(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short timeouts that still leave an idle in-memory line plenty of slack."""
    monkeypatch.setattr(link_mod, "ENQ_TIMEOUT_S", 0.2)
    monkeypatch.setattr(link_mod, "ACK_TIMEOUT_S", 0.2)
    monkeypatch.setattr(link_mod, "PENDING_ANSWER_TIMEOUT_S", 0.4)
    monkeypatch.setattr(link_mod, "BYTE_TIMEOUT_S", 0.1)
    monkeypatch.setattr(link_mod, "CLOSE_TIMEOUT_S", 2.0)


def command(n: int) -> bytes:
    """A command body: 10h with a 4-byte argument, so each one is told apart on the wire."""
    return bytes((0x10,)) + n.to_bytes(4, "little")


def answer_to(body: bytes) -> bytes:
    """What the fake register answers: CMD, ERR 0, then the arguments echoed."""
    return body[:1] + b"\x00" + body[1:]


# --- manglers: one write -> the chunks that arrive (maybe none) ------------------------------

Mangler = Callable[[bytes], list[bytes]]


def whole(data: bytes) -> list[bytes]:
    return [data]


def byte_by_byte(data: bytes) -> list[bytes]:
    return [bytes((b,)) for b in data]


def noisy(data: bytes) -> list[bytes]:
    """Line noise (no STX/ENQ/ACK/NAK in it) before and after every write."""
    return [b"\x99\x00\x42", data, b"\x77\xff"]


def is_frame(data: bytes) -> bool:
    return data[:1] == bytes((STX,))


def is_ack(data: bytes) -> bool:
    return data == A


def drop(data: bytes) -> list[bytes]:
    return []


def corrupt_lrc(data: bytes) -> list[bytes]:
    return [data[:-1] + bytes((data[-1] ^ 0x55,))]


def lose_byte(index: int) -> Mangler:
    def mangle(data: bytes) -> list[bytes]:
        return [data[:index] + data[index + 1 :]]

    return mangle


class Once:
    """Apply `change` to the first write that matches; pass everything else whole."""

    def __init__(self, match: Callable[[bytes], bool], change: Mangler) -> None:
        self.match = match
        self.change = change
        self.done = False

    def __call__(self, data: bytes) -> list[bytes]:
        if not self.done and self.match(data):
            self.done = True
            return self.change(data)
        return [data]


# --- the line ----------------------------------------------------------------------------------


class Pipe(asyncio.Transport):
    """One direction of an in-memory line: what the sender writes reaches the receiver.

    Chunks are delivered in order, from the loop (never re-entrantly), after `delay_s`, and
    `gap_s` apart when a slow line is wanted.
    """

    def __init__(
        self,
        sender: asyncio.Protocol,
        receiver: asyncio.Protocol,
        *,
        mangle: Mangler = whole,
        delay_s: float = 0.0,
        gap_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.sender = sender
        self.receiver = receiver
        self.mangle = mangle
        self.delay_s = delay_s
        self.gap_s = gap_s
        self.written = bytearray()  # what the sender wrote, before the line mangled it
        self.in_flight: collections.deque[bytes] = collections.deque()
        self.closed = False
        self._last_at = 0.0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        loop = asyncio.get_running_loop()
        self.written += data
        for chunk in self.mangle(bytes(data)):
            self.in_flight.append(chunk)
            if not self.delay_s and not self.gap_s:
                loop.call_soon(self._deliver)
                continue
            at = max(loop.time() + self.delay_s, self._last_at + self.gap_s)
            self._last_at = at
            loop.call_at(at, self._deliver)

    def _deliver(self) -> None:
        chunk = self.in_flight.popleft()
        if not self.closed:
            self.receiver.data_received(chunk)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.sender.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closed


class FakeDevice(asyncio.Protocol):
    """The register's side of [PROTO] p.8, with switches for misbehaviour.

    ENQ: NAK when idle, ACK while working, ACK and the answer again while an answer is
    pending (sent, not yet ACKed). A good frame: ACK, run it, send the answer. A bad LRC: NAK.
    The host's NAK of an answer: nothing ([PROTO]: it waits for ENQ), or a resend when
    `resend_on_nak` is set (some hosts expect that; the link must cope with both).
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.decoder = FrameDecoder()
        self.byte_timer: asyncio.TimerHandle | None = None
        self.last_command: bytes | None = None
        self.working = False
        self.pending: bytes | None = None
        self.executed: list[bytes] = []
        self.violations: list[str] = []
        self.naks_received = 0
        # misbehaviour
        self.silent = False
        self.silent_after_frame = False
        self.nak_frames = 0
        self.lose_answers = 0
        self.garble_answers = 0
        self.answer_delay_s = 0.0
        self.resend_on_nak = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.byte_timer is not None:
            self.byte_timer.cancel()
        for event in self.decoder.feed(data):
            self.event_received(event)
        if self.decoder.in_frame:
            self.byte_timer = asyncio.get_running_loop().call_later(
                DEVICE_BYTE_TIMEOUT_S, self.decoder.reset
            )

    def send(self, data: bytes) -> None:
        if not self.silent:
            assert self.transport is not None
            self.transport.write(data)

    def send_answer(self) -> None:
        assert self.pending is not None
        out = encode_frame(self.pending)
        if self.garble_answers:
            self.garble_answers -= 1
            out = corrupt_lrc(out)[0]
        self.send(out)

    def event_received(self, event: Event) -> None:
        if self.silent:
            return
        if event is Control.ENQ:
            if self.pending is not None:
                self.send(A)
                self.send_answer()
            else:
                self.send(A if self.working else N)
        elif event is Control.ACK:
            self.pending = None
        elif event is Control.NAK:
            self.naks_received += 1
            if self.resend_on_nak and self.pending is not None:
                self.send_answer()
        elif isinstance(event, BadFrame):
            self.send(N)
        elif isinstance(event, Frame):
            self.frame_received(event.body)
        # Garbage (the 0xFF after an ACK over TCP, noise) is ignored.

    def frame_received(self, body: bytes) -> None:
        if self.working or self.pending is not None:
            if body == self.last_command:
                # The same command again while it is being answered: never run it twice.
                self.send(A)
                if self.pending is not None:
                    self.send_answer()
                return
            self.violations.append(f"command {body.hex()} arrived while busy")
        if self.nak_frames:
            self.nak_frames -= 1
            self.send(N)
            return
        self.executed.append(body)
        self.last_command = body
        self.pending = None
        if self.silent_after_frame:
            self.silent = True
            return
        self.send(A)
        self.working = True
        if self.answer_delay_s:
            asyncio.get_running_loop().call_later(self.answer_delay_s, self.answer_ready, body)
        else:
            self.answer_ready(body)

    def answer_ready(self, body: bytes) -> None:
        self.working = False
        self.pending = answer_to(body)
        if self.lose_answers:
            self.lose_answers -= 1  # "sent" but lost on the wire: stays pending
            return
        self.send_answer()


@dataclass
class Line:
    host: ShtrihLink
    device: FakeDevice
    to_device: Pipe
    to_host: Pipe

    @property
    def host_wrote(self) -> bytes:
        return bytes(self.to_device.written)

    async def quiet(self) -> None:
        """Until nothing is in flight either way."""
        async with asyncio.timeout(2.0):
            while self.to_device.in_flight or self.to_host.in_flight:
                await asyncio.sleep(0.005)


def connect(
    *,
    to_device: Mangler = whole,
    to_host: Mangler = whole,
    delay_s: float = 0.0,
    gap_s: float = 0.0,
    ack_suffix: bytes = b"",
) -> Line:
    host = ShtrihLink(ack_suffix=ack_suffix)
    device = FakeDevice()
    down = Pipe(host, device, mangle=to_device, delay_s=delay_s)
    up = Pipe(device, host, mangle=to_host, delay_s=delay_s, gap_s=gap_s)
    host.connection_made(down)
    device.connection_made(up)
    return Line(host, device, down, up)


def exchange(body: bytes, suffix: bytes = b"", *, enq: bool = True) -> bytes:
    """What the host writes for one clean request; right after a clean one it skips ENQ."""
    return (E if enq else b"") + encode_frame(body) + A + suffix


async def until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(2.0):
        while not predicate():
            await asyncio.sleep(0.002)


CMD = command(1)
CMD2 = command(2)

LINES: dict[str, Callable[[], Line]] = {
    "whole": lambda: connect(),
    "byte-by-byte": lambda: connect(to_device=byte_by_byte, to_host=byte_by_byte),
    "delayed": lambda: connect(delay_s=0.01),
    "delayed-bytes": lambda: connect(to_host=byte_by_byte, delay_s=0.005),
    "slow-line": lambda: connect(to_host=byte_by_byte, gap_s=0.002),
    "noisy": lambda: connect(to_device=noisy, to_host=noisy),
}


@pytest.mark.parametrize("variant", list(LINES))
async def test_request(variant: str) -> None:
    line = LINES[variant]()
    assert await line.host.request(CMD, timeout_s=1.0) == answer_to(CMD)
    assert await line.host.request(CMD2, timeout_s=1.0) == answer_to(CMD2)
    await line.quiet()
    assert line.device.executed == [CMD, CMD2]
    assert line.device.pending is None  # our ACKs arrived
    if variant == "noisy":
        # Line noise is doubt: the next request asks with ENQ first.
        assert line.host_wrote == exchange(CMD) + exchange(CMD2)
    else:
        assert line.host_wrote == exchange(CMD) + exchange(CMD2, enq=False)
        assert line.host.stats.enqs_skipped == 1
    stats = line.host.stats
    assert (stats.requests, stats.frames_sent, stats.resends, stats.naks_sent) == (2, 2, 0, 0)
    assert stats.bytes_out == len(line.host_wrote)
    if variant == "noisy":
        assert stats.garbage_bytes > 0


async def test_ack_suffix_follows_every_ack() -> None:
    line = connect(ack_suffix=b"\xff")
    assert await line.host.request(CMD, timeout_s=1.0) == answer_to(CMD)
    assert await line.host.request(CMD2, timeout_s=1.0) == answer_to(CMD2)
    await line.quiet()
    assert line.host_wrote == exchange(CMD, b"\xff") + exchange(CMD2, b"\xff", enq=False)
    assert line.device.executed == [CMD, CMD2]


async def test_nak_on_first_send_then_success() -> None:
    line = connect()
    line.device.nak_frames = 1
    assert await line.host.request(CMD, timeout_s=1.0) == answer_to(CMD)
    assert line.device.executed == [CMD]
    assert line.host_wrote == E + encode_frame(CMD) * 2 + A
    assert (line.host.stats.resends, line.host.stats.naks_received) == (1, 1)


async def test_after_a_nak_the_next_request_asks_with_enq() -> None:
    line = connect()
    line.device.nak_frames = 1
    assert await line.host.request(CMD, timeout_s=1.0) == answer_to(CMD)
    assert await line.host.request(CMD2, timeout_s=1.0) == answer_to(CMD2)
    assert await line.host.request(CMD, timeout_s=1.0) == answer_to(CMD)
    frame = encode_frame(CMD)
    # The NAKed exchange leaves doubt (ENQ next); the clean one after it does not.
    assert line.host_wrote == E + frame * 2 + A + exchange(CMD2) + exchange(CMD, enq=False)
    assert line.host.stats.enqs_skipped == 1


async def test_after_a_timeout_or_a_probe_the_next_request_asks_with_enq() -> None:
    line = connect()
    assert await line.host.request(CMD, timeout_s=1.0) == answer_to(CMD)
    line.device.lose_answers = 1
    with pytest.raises(NoAnswer):
        await line.host.request(CMD2, timeout_s=0.1)
    assert await line.host.probe_pending(timeout_s=1.0) == answer_to(CMD2)
    assert await line.host.request(CMD, timeout_s=1.0) == answer_to(CMD)
    # The second request skipped ENQ (the first was clean); the one after the probe did not.
    assert line.host_wrote == (exchange(CMD) + encode_frame(CMD2) + E + A + exchange(CMD))
    assert line.device.executed == [CMD, CMD2, CMD]


async def test_corrupted_frame_is_nakked_and_resent() -> None:
    line = connect(to_device=Once(is_frame, corrupt_lrc))
    assert await line.host.request(CMD, timeout_s=1.0) == answer_to(CMD)
    assert line.device.executed == [CMD]
    assert line.host.stats.resends == 1


@pytest.mark.parametrize("mangle", [drop, lose_byte(3)], ids=["whole-frame-lost", "one-byte-lost"])
async def test_frame_lost_on_the_way_is_resent_after_enq(mangle: Mangler) -> None:
    line = connect(to_device=Once(is_frame, mangle))
    assert await line.host.request(CMD, timeout_s=1.0) == answer_to(CMD)
    assert line.device.executed == [CMD]
    frame = encode_frame(CMD)
    # No ACK came, so ENQ: the register says NAK (it never got the frame), so resend.
    assert line.host_wrote == E + frame + E + frame + A
    assert line.host.stats.resends == 1


async def test_lost_ack_is_asked_with_enq_and_never_resent() -> None:
    line = connect(to_host=Once(is_ack, drop))
    assert await line.host.request(CMD, timeout_s=1.0) == answer_to(CMD)
    assert line.device.executed == [CMD]
    # No ACK: ENQ; ACK to it means the register has the frame, so the answer is read.
    assert line.host_wrote == E + encode_frame(CMD) + E + A
    assert (line.host.stats.frames_sent, line.host.stats.resends) == (1, 0)


async def test_lost_ack_while_register_is_still_working() -> None:
    line = connect(to_host=Once(is_ack, drop))
    line.device.answer_delay_s = 0.4  # longer than ACK_TIMEOUT_S: ENQ finds it working
    assert await line.host.request(CMD, timeout_s=2.0) == answer_to(CMD)
    assert line.device.executed == [CMD]
    assert line.host.stats.resends == 0


@pytest.mark.parametrize("resend_on_nak", [False, True], ids=["enq-repeats", "nak-repeats"])
async def test_garbled_answer_is_nakked_then_fetched_again(resend_on_nak: bool) -> None:
    line = connect()
    line.device.resend_on_nak = resend_on_nak
    line.device.garble_answers = 1
    assert await line.host.request(CMD, timeout_s=1.0) == answer_to(CMD)
    assert await line.host.request(CMD2, timeout_s=1.0) == answer_to(CMD2)
    await line.quiet()
    assert line.device.executed == [CMD, CMD2]
    assert line.device.naks_received == 1
    assert line.host.stats.naks_sent == 1
    assert line.host_wrote.startswith(E + encode_frame(CMD) + N + E)
    assert line.device.pending is None


async def test_answer_with_a_lost_byte_is_dropped_then_fetched_again() -> None:
    line = connect(to_host=Once(is_frame, lose_byte(4)))
    assert await line.host.request(CMD, timeout_s=1.0) == answer_to(CMD)
    assert line.device.executed == [CMD]
    assert line.host.stats.dropped_frames == 1
    assert line.host.stats.naks_sent == 1


async def test_answer_damaged_every_time_gives_frame_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(link_mod, "MAX_READ_TRIES", 2)
    line = connect()
    line.device.garble_answers = 100
    with pytest.raises(FrameError, match="damaged"):
        await line.host.request(CMD, timeout_s=1.0)
    assert line.device.executed == [CMD]
    assert line.host.stats.naks_sent == 1  # two reads in all


async def test_frame_refused_every_time_gives_frame_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(link_mod, "MAX_SEND_TRIES", 3)
    line = connect()
    line.device.nak_frames = 100
    with pytest.raises(FrameError, match="refused"):
        await line.host.request(CMD, timeout_s=1.0)
    assert line.device.executed == []
    assert line.host_wrote == E + encode_frame(CMD) * 3


async def test_lost_answer_gives_no_answer_and_next_request_collects_it() -> None:
    line = connect()
    line.device.lose_answers = 1
    with pytest.raises(NoAnswer) as err:
        await line.host.request(CMD, timeout_s=0.1)
    assert err.value.command_sent
    assert line.host.stats.timeouts == 1

    assert await line.host.request(CMD2, timeout_s=1.0) == answer_to(CMD2)
    assert list(line.host.orphan_answers) == [answer_to(CMD)]
    assert line.host.stats.orphan_answers == 1
    assert line.device.executed == [CMD, CMD2]  # CMD was never sent again
    assert line.host_wrote == (E + encode_frame(CMD)) + (E + A) + exchange(CMD2)


async def test_probe_pending() -> None:
    line = connect()
    assert await line.host.probe_pending(timeout_s=1.0) is None  # idle: NAK
    line.device.lose_answers = 1
    with pytest.raises(NoAnswer):
        await line.host.request(CMD, timeout_s=0.1)
    assert await line.host.probe_pending(timeout_s=1.0) == answer_to(CMD)
    assert await line.host.probe_pending(timeout_s=1.0) is None  # ACKed: idle again
    assert line.device.executed == [CMD]
    assert not line.host.orphan_answers  # the probe's caller got it


@pytest.fixture
def fast_enq(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(link_mod, "ENQ_TIMEOUT_S", 0.05)
    monkeypatch.setattr(link_mod, "ACK_TIMEOUT_S", 0.05)
    monkeypatch.setattr(link_mod, "MAX_ENQ_TRIES", 3)


@pytest.mark.usefixtures("fast_enq")
async def test_silent_register_gives_no_answer_command_not_sent() -> None:
    line = connect()
    line.device.silent = True
    with pytest.raises(NoAnswer) as err:
        await line.host.request(CMD, timeout_s=1.0)
    assert not err.value.command_sent
    assert line.host_wrote == E * 3  # the frame never went out
    with pytest.raises(NoAnswer) as err:
        await line.host.probe_pending(timeout_s=1.0)
    assert not err.value.command_sent


@pytest.mark.usefixtures("fast_enq")
async def test_register_dead_after_taking_the_frame_gives_command_sent() -> None:
    line = connect()
    line.device.silent_after_frame = True
    with pytest.raises(NoAnswer) as err:
        await line.host.request(CMD, timeout_s=1.0)
    assert err.value.command_sent  # it may have run: the caller must reconcile
    assert line.device.executed == [CMD]
    assert line.host_wrote == E + encode_frame(CMD) + E * 3


async def test_connection_lost_fails_waiters_then_not_connected() -> None:
    line = connect()
    line.device.answer_delay_s = 5.0
    first = asyncio.create_task(line.host.request(CMD, timeout_s=10.0))
    await until(lambda: line.device.executed == [CMD])
    queued = asyncio.create_task(line.host.request(CMD2, timeout_s=10.0))
    await asyncio.sleep(0.01)
    line.host.connection_lost(OSError(5, "Input/output error"))
    with pytest.raises(ConnectionLost, match="Input/output error"):
        await first
    with pytest.raises(ConnectionLost):
        await queued
    assert not line.host.connected
    with pytest.raises(NotConnected):
        await line.host.request(CMD2, timeout_s=1.0)
    with pytest.raises(NotConnected):
        await line.host.probe_pending(timeout_s=1.0)
    assert line.device.executed == [CMD]


async def test_cancelled_caller_lets_the_exchange_finish() -> None:
    line = connect(to_host=byte_by_byte)
    line.device.answer_delay_s = 0.1
    caller = asyncio.create_task(line.host.request(CMD, timeout_s=2.0))
    await until(lambda: line.device.executed == [CMD])
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert line.host_wrote == E + encode_frame(CMD)  # left before the answer came

    # The next request waits for the wire to be quiet, then goes out whole.
    assert await line.host.request(CMD2, timeout_s=1.0) == answer_to(CMD2)
    assert line.device.executed == [CMD, CMD2]
    assert line.device.violations == []
    assert line.host_wrote == exchange(CMD) + exchange(CMD2)
    # The abandoned answer is kept for recovery, not thrown away.
    assert list(line.host.orphan_answers) == [answer_to(CMD)]
    assert line.host.stats.abandoned_answers == 1


async def test_cancelled_while_queued_sends_nothing() -> None:
    line = connect()
    line.device.answer_delay_s = 0.05
    first = asyncio.create_task(line.host.request(CMD, timeout_s=1.0))
    await until(lambda: line.device.executed == [CMD])
    second = asyncio.create_task(line.host.request(CMD2, timeout_s=1.0))
    await asyncio.sleep(0)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert await first == answer_to(CMD)
    assert line.host_wrote == exchange(CMD)
    assert await line.host.request(CMD2, timeout_s=1.0) == answer_to(CMD2)


async def test_requests_are_serialised() -> None:
    line = connect(to_host=byte_by_byte, delay_s=0.002)
    line.device.answer_delay_s = 0.01
    bodies = [command(n) for n in range(5)]
    answers = await asyncio.gather(*(line.host.request(b, timeout_s=1.0) for b in bodies))
    assert answers == [answer_to(b) for b in bodies]
    assert sorted(line.device.executed) == sorted(bodies)
    assert line.device.violations == []
    # Never interleaved: the wire is whole exchanges one after the other.
    # Only the first asks with ENQ: each exchange leaves the line quiet for the next.
    first, *rest = line.device.executed
    assert line.host_wrote == exchange(first) + b"".join(exchange(b, enq=False) for b in rest)


async def test_stray_partial_frame_is_dropped_after_byte_timeout() -> None:
    line = connect()
    line.host.data_received(bytes((STX, 5, 0x10)))  # the rest never comes
    await until(lambda: line.host.stats.dropped_frames == 1)
    assert await line.host.request(CMD, timeout_s=1.0) == answer_to(CMD)
    assert line.host_wrote == exchange(CMD)


async def test_answer_in_progress_at_the_deadline_is_read() -> None:
    # A slow line: the answer's first bytes arrive before the deadline, the rest after it.
    line = connect(to_host=byte_by_byte, gap_s=0.03)
    assert await line.host.request(CMD, timeout_s=0.08) == answer_to(CMD)
    assert line.host.stats.timeouts == 0


async def test_close_lets_the_exchange_finish() -> None:
    line = connect()
    line.device.answer_delay_s = 0.05
    caller = asyncio.create_task(line.host.request(CMD, timeout_s=1.0))
    await until(lambda: line.device.executed == [CMD])
    await line.host.close()
    assert await caller == answer_to(CMD)
    assert line.to_device.closed
    assert not line.host.connected
    with pytest.raises(NotConnected):
        await line.host.request(CMD2, timeout_s=1.0)


async def test_not_connected_before_the_port_opens() -> None:
    host = ShtrihLink()
    assert not host.connected
    with pytest.raises(NotConnected):
        await host.request(CMD, timeout_s=1.0)
    await host.close()


async def test_bad_body_is_refused_before_any_byte() -> None:
    line = connect()
    with pytest.raises(ValueError, match=r"1\.\.255"):
        await line.host.request(b"", timeout_s=1.0)
    assert line.host_wrote == b""


# --- part 2: against the emulator's device side -------------------------------------------


class EmuHostTransport(asyncio.Transport):
    """What the host link writes goes to the emulator's queue, through a mangler."""

    def __init__(self, wire: EmuWire) -> None:
        super().__init__()
        self.wire = wire
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        for chunk in self.wire.to_device(bytes(data)):
            self.wire.device_queue.put_nowait(chunk)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.wire.device_queue.put_nowait(b"")
            asyncio.get_running_loop().call_soon(self.wire.host.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closed


class EmuWire:
    """Connects a ShtrihLink to the emulator's DeviceLink; manglers for each direction."""

    def __init__(
        self,
        host: ShtrihLink,
        *,
        to_device: Mangler = whole,
        to_host: Mangler = whole,
        delay_s: float = 0.0,
    ) -> None:
        self.host = host
        self.to_device = to_device
        self.to_host = to_host
        self.delay_s = delay_s
        self.device_queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.device_received = bytearray()
        self.transport = EmuHostTransport(self)

    async def read(self) -> bytes:
        """Device side: bytes from the host."""
        data = await self.device_queue.get()
        self.device_received += data
        return data

    async def write(self, data: bytes) -> None:
        """Device side: bytes to the host."""
        loop = asyncio.get_running_loop()
        for chunk in self.to_host(data):
            if self.delay_s:
                loop.call_later(self.delay_s, self.host.data_received, chunk)
            else:
                self.host.data_received(chunk)


@pytest.fixture
async def emulator(tmp_path: Path) -> Emulator:
    return await asyncio.to_thread(Emulator.open, tmp_path / "emu.state")


EmuConnect = Callable[..., Awaitable[tuple[ShtrihLink, EmuWire, DeviceLink]]]


@pytest.fixture
async def emu_connect(emulator: Emulator) -> AsyncIterator[EmuConnect]:
    tasks: list[asyncio.Task[None]] = []

    async def _connect(**kwargs: Any) -> tuple[ShtrihLink, EmuWire, DeviceLink]:
        host = ShtrihLink()
        wire = EmuWire(host, **kwargs)
        host.connection_made(wire.transport)
        device = DeviceLink(emulator)
        tasks.append(asyncio.create_task(device.serve(wire)))
        return host, wire, device

    yield _connect
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


STATUS = codec.encode_request(codec.LongStatusRequest())


async def status(host: ShtrihLink) -> codec.LongStatus:
    return codec.decode_answer(await host.request(STATUS, timeout_s=1.0), codec.LongStatus)


def commands_seen(wire: EmuWire, body: bytes) -> int:
    return bytes(wire.device_received).count(body)


@pytest.mark.parametrize("mangler", [whole, byte_by_byte], ids=["whole", "byte-by-byte"])
async def test_emulator_request(emu_connect: EmuConnect, mangler: Mangler) -> None:
    host, _wire, _ = await emu_connect(to_device=mangler, to_host=mangler)
    st = await status(host)
    assert st.mode & 0x0F == 4
    assert host.stats.requests == 1
    assert host.stats.resends == 0


async def test_emulator_delayed_bytes(emu_connect: EmuConnect) -> None:
    host, _, _ = await emu_connect(to_host=byte_by_byte, delay_s=0.005)
    assert (await status(host)).mode & 0x0F == 4


async def test_emulator_garbage_between_frames_is_ignored(
    emu_connect: EmuConnect,
) -> None:
    host, _, _ = await emu_connect(to_host=noisy)
    assert (await status(host)).mode & 0x0F == 4
    assert (await status(host)).mode & 0x0F == 4
    assert host.stats.garbage_bytes >= 8


async def test_emulator_lost_frame_to_device_is_resent(
    emu_connect: EmuConnect,
) -> None:
    host, wire, _ = await emu_connect(to_device=Once(is_frame, drop))
    assert (await status(host)).mode & 0x0F == 4
    assert host.stats.resends == 1
    assert commands_seen(wire, STATUS) == 1


async def test_emulator_lost_ack_is_asked_with_enq(emu_connect: EmuConnect) -> None:
    host, wire, _ = await emu_connect(to_host=Once(is_ack, drop))
    assert (await status(host)).mode & 0x0F == 4
    assert commands_seen(wire, STATUS) == 1  # never sent twice


async def test_emulator_corrupted_frame_is_nakked_and_resent(
    emu_connect: EmuConnect,
) -> None:
    host, _, _ = await emu_connect(to_device=Once(is_frame, corrupt_lrc))
    assert (await status(host)).mode & 0x0F == 4
    assert host.stats.resends == 1


async def test_emulator_garbled_answer_is_nakked_and_fetched_again(
    emu_connect: EmuConnect, emulator: Emulator
) -> None:
    host, _, _ = await emu_connect()
    emulator.faults.garbled = 2
    assert (await status(host)).mode & 0x0F == 4
    assert (await status(host)).mode & 0x0F == 4
    assert host.stats.naks_sent == 2


async def test_emulator_answer_pending_is_never_resent(
    emu_connect: EmuConnect, emulator: Emulator
) -> None:
    host, wire, _ = await emu_connect()
    open_shift = codec.encode_request(codec.OpenShiftRequest())
    emulator.faults.answer_lost = 1
    with pytest.raises(NoAnswer) as err:
        await host.request(open_shift, timeout_s=0.3)
    assert err.value.command_sent
    pending = await host.probe_pending(timeout_s=1.0)
    assert pending is not None
    assert codec.decode_answer(pending, codec.OpenShiftAnswer).operator == 30
    assert await host.probe_pending(timeout_s=1.0) is None  # idle now
    assert commands_seen(wire, open_shift) == 1


async def test_emulator_orphan_answer_collected_before_next_request(
    emu_connect: EmuConnect, emulator: Emulator
) -> None:
    host, _, _ = await emu_connect()
    emulator.faults.answer_lost = 1
    with pytest.raises(NoAnswer):
        await host.request(codec.encode_request(codec.OpenShiftRequest()), timeout_s=0.3)
    st = await status(host)
    assert st.mode & 0x0F == 2  # the shift did open, once
    assert host.stats.orphan_answers == 1
    assert host.orphan_answers[0][:1] == bytes((codec.Cmd.OPEN_SHIFT,))


async def test_emulator_connection_lost_fails_waiter_then_not_connected(
    emu_connect: EmuConnect, emulator: Emulator
) -> None:
    host, _, _ = await emu_connect()
    emulator.faults.answer_dropped = 1
    waiter = asyncio.create_task(
        host.request(codec.encode_request(codec.OpenShiftRequest()), timeout_s=5.0)
    )
    await asyncio.sleep(0.05)
    host.connection_lost(OSError(5, "Input/output error"))
    with pytest.raises(ConnectionLost):
        await waiter
    with pytest.raises(NotConnected):
        await status(host)


async def test_emulator_cancelled_caller_lets_the_exchange_finish(
    emu_connect: EmuConnect, emulator: Emulator
) -> None:
    host, wire, _ = await emu_connect()
    emulator.faults.slow_byte_s = 0.01  # the answer trickles in: the caller gives up mid-frame
    open_shift = codec.encode_request(codec.OpenShiftRequest())
    task = asyncio.create_task(host.request(open_shift, timeout_s=2.0))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    emulator.faults.slow_byte_s = 0.0
    # The lock was held until the wire was quiet: the next request works and sees the shift.
    assert (await status(host)).mode & 0x0F == 2
    assert commands_seen(wire, open_shift) == 1
    assert host.stats.orphan_answers == 0
    assert host.stats.abandoned_answers == 1


async def test_emulator_requests_are_serialised(emu_connect: EmuConnect) -> None:
    host, wire, _ = await emu_connect(to_host=byte_by_byte)
    results = await asyncio.gather(*(status(host) for _ in range(5)))
    assert len(results) == 5
    assert commands_seen(wire, STATUS) == 5
    assert host.stats.resends == 0
