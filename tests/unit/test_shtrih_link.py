"""The host link against the emulator's device side over fake transports.

The transports chunk, delay, drop and garble bytes; the device side is the emulator's real
`DeviceLink`, so both ends of the exchange are the project's own code.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.errors import ConnectionLost, NoAnswer, NotConnected
from gateway.registers.emulator.register import Emulator
from gateway.registers.emulator.wire import DeviceLink
from gateway.registers.shtrih import codec
from gateway.registers.shtrih import link as link_mod
from gateway.registers.shtrih.framing import ACK, STX
from gateway.registers.shtrih.link import ShtrihLink

Mangler = Callable[[bytes], list[bytes]]  # one write -> the chunks that arrive (maybe none)


def whole(data: bytes) -> list[bytes]:
    return [data]


def byte_by_byte(data: bytes) -> list[bytes]:
    return [bytes([b]) for b in data]


class HostTransport(asyncio.Transport):
    """What the host link writes goes to the device's queue, through a mangler."""

    def __init__(self, wire: FakeWire) -> None:
        super().__init__()
        self.wire = wire
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        for chunk in self.wire.to_device(bytes(data)):
            self.wire.device_queue.put_nowait(chunk)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.wire.device_queue.put_nowait(b"")
            asyncio.get_running_loop().call_soon(self.wire.host.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closed


class FakeWire:
    """Connects a ShtrihLink to a DeviceLink; manglers for each direction."""

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
        self.transport = HostTransport(self)

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


@pytest.fixture(autouse=True)
def fast_link(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(link_mod, "ENQ_TIMEOUT_S", 0.2)
    monkeypatch.setattr(link_mod, "ACK_TIMEOUT_S", 0.2)
    monkeypatch.setattr(link_mod, "BYTE_TIMEOUT_S", 0.1)


@pytest.fixture
async def emulator(tmp_path: Path) -> Emulator:
    return await asyncio.to_thread(Emulator.open, tmp_path / "emu.state")


@pytest.fixture
async def connect(emulator: Emulator) -> AsyncIterator[Callable[..., object]]:
    tasks: list[asyncio.Task[None]] = []

    async def _connect(**kwargs: object) -> tuple[ShtrihLink, FakeWire, DeviceLink]:
        host = ShtrihLink()
        wire = FakeWire(host, **kwargs)  # type: ignore[arg-type]
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


def commands_seen(wire: FakeWire, body: bytes) -> int:
    return bytes(wire.device_received).count(body)


@pytest.mark.parametrize("mangler", [whole, byte_by_byte], ids=["whole", "byte-by-byte"])
async def test_request(connect: Callable[..., object], mangler: Mangler) -> None:
    host, _wire, _ = await connect(to_device=mangler, to_host=mangler)  # type: ignore[operator,misc]
    st = await status(host)
    assert st.mode & 0x0F == 4
    assert host.stats.requests == 1
    assert host.stats.resends == 0


async def test_delayed_bytes(connect: Callable[..., object]) -> None:
    host, _, _ = await connect(to_host=byte_by_byte, delay_s=0.005)  # type: ignore[operator,misc]
    assert (await status(host)).mode & 0x0F == 4


async def test_garbage_between_frames_is_ignored(connect: Callable[..., object]) -> None:
    def noisy(data: bytes) -> list[bytes]:
        return [b"\x99\x00\x42", data, b"\x77"]

    host, _, _ = await connect(to_host=noisy)  # type: ignore[operator,misc]
    assert (await status(host)).mode & 0x0F == 4
    assert (await status(host)).mode & 0x0F == 4
    assert host.stats.garbage_bytes >= 8


async def test_lost_frame_to_device_is_resent(connect: Callable[..., object]) -> None:
    dropped: list[bytes] = []

    def lose_first_frame(data: bytes) -> list[bytes]:
        if data[:1] == bytes((STX,)) and not dropped:
            dropped.append(data)
            return []
        return [data]

    host, wire, _ = await connect(to_device=lose_first_frame)  # type: ignore[operator,misc]
    assert (await status(host)).mode & 0x0F == 4
    assert dropped
    assert host.stats.resends == 1
    assert commands_seen(wire, STATUS) == 1


async def test_lost_ack_from_device_is_asked_with_enq(connect: Callable[..., object]) -> None:
    state = {"lost": False}

    def lose_first_ack(data: bytes) -> list[bytes]:
        if data == bytes((ACK,)) and not state["lost"]:
            state["lost"] = True
            return []
        return [data]

    host, wire, _ = await connect(to_host=lose_first_ack)  # type: ignore[operator,misc]
    assert (await status(host)).mode & 0x0F == 4
    assert state["lost"]
    assert commands_seen(wire, STATUS) == 1  # never sent twice


async def test_corrupted_frame_to_device_is_nakked_and_resent(
    connect: Callable[..., object],
) -> None:
    state = {"done": False}

    def corrupt_once(data: bytes) -> list[bytes]:
        if data[:1] == bytes((STX,)) and not state["done"]:
            state["done"] = True
            return [data[:-1] + bytes((data[-1] ^ 0xFF,))]
        return [data]

    host, _, _ = await connect(to_device=corrupt_once)  # type: ignore[operator,misc]
    assert (await status(host)).mode & 0x0F == 4
    assert host.stats.resends == 1


async def test_garbled_answer_is_nakked_and_fetched_again(
    connect: Callable[..., object], emulator: Emulator
) -> None:
    host, _, _ = await connect()  # type: ignore[operator,misc]
    emulator.faults.garbled = 2
    assert (await status(host)).mode & 0x0F == 4
    assert (await status(host)).mode & 0x0F == 4
    assert host.stats.naks_sent == 2


async def test_answer_pending_is_never_resent(
    connect: Callable[..., object], emulator: Emulator
) -> None:
    host, wire, _ = await connect()  # type: ignore[operator,misc]
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


async def test_orphan_answer_collected_before_next_request(
    connect: Callable[..., object], emulator: Emulator
) -> None:
    host, _, _ = await connect()  # type: ignore[operator,misc]
    emulator.faults.answer_lost = 1
    with pytest.raises(NoAnswer):
        await host.request(codec.encode_request(codec.OpenShiftRequest()), timeout_s=0.3)
    st = await status(host)
    assert st.mode & 0x0F == 2  # the shift did open, once
    assert host.stats.orphan_answers == 1
    assert host.orphan_answers[0][:1] == bytes((codec.Cmd.OPEN_SHIFT,))


async def test_silent_device_gives_no_answer_not_sent() -> None:
    host = ShtrihLink()

    class Silent(asyncio.Transport):
        def write(self, data: bytes) -> None:  # type: ignore[override]
            pass

    host.connection_made(Silent())
    with pytest.raises(NoAnswer) as err:
        await host.request(STATUS, timeout_s=0.2)
    assert not err.value.command_sent


async def test_connection_lost_fails_waiter_then_not_connected(
    connect: Callable[..., object], emulator: Emulator
) -> None:
    host, _, _ = await connect()  # type: ignore[operator,misc]
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


async def test_cancelled_caller_lets_the_exchange_finish(
    connect: Callable[..., object], emulator: Emulator
) -> None:
    host, wire, _ = await connect()  # type: ignore[operator,misc]
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


async def test_requests_are_serialised(connect: Callable[..., object]) -> None:
    host, wire, _ = await connect(to_host=byte_by_byte)  # type: ignore[operator,misc]
    results = await asyncio.gather(*(status(host) for _ in range(5)))
    assert len(results) == 5
    assert commands_seen(wire, STATUS) == 5
    assert host.stats.resends == 0


async def test_partial_frame_dropped_after_byte_timeout() -> None:
    host = ShtrihLink()

    class Null(asyncio.Transport):
        def write(self, data: bytes) -> None:  # type: ignore[override]
            pass

    host.connection_made(Null())
    host.data_received(bytes((STX, 5, 0x10)))
    await asyncio.sleep(0.2)
    # A fresh whole frame decodes: the stale partial one was dropped.
    host.data_received(bytes((STX, 1, 0xFC, 1 ^ 0xFC)))
    assert host._events.qsize() == 1
