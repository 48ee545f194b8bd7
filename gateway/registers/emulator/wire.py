"""The register's side of the Shtrih-M link on a byte stream ([PROTO] p.8, Appendix 3).

- ENQ: NAK when idle; ACK followed by the answer again when an answer is pending, i.e. sent
  but not yet acknowledged by the host.
- A good frame: ACK, execute, send the answer, keep it pending until the host's ACK. The same
  command frame arriving again while its answer is pending is not executed twice: it gets ACK
  and the pending answer.
- A frame with a bad LRC: NAK. A frame whose bytes stop coming is dropped (byte timeout).
- The host's NAK of an answer: "the message is not repeated; the KKT waits for ENQ to repeat
  the answer" ([PROTO] p.8), so the answer stays pending.
- One 0xFF after the host's ACK (TCP, RNDIS) is ignored, as is any other line noise.

The pending answer belongs to the register, not to a connection: it survives an unplug or a
new TCP client, as it does in a real register that stays powered.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from gateway.registers.emulator.framing import (
    ACK,
    NAK,
    Corrupted,
    Message,
    Noise,
    Receiver,
    Signal,
    frame,
)
from gateway.registers.emulator.register import Emulator, Reply

_LOGGER = logging.getLogger(__name__)

# A frame whose bytes stop for this long is dropped. [PROTO] default is 50 ms; a little more
# keeps a loaded test machine from splitting a host's frame.
BYTE_TIMEOUT_S = 0.2
# Reads wake up this often while the line is quiet.
IDLE_READ_S = 1.0
# Writing one answer (a full pty or socket buffer means the host is gone).
WRITE_TIMEOUT_S = 10.0
READ_CHUNK_BYTES = 4096
# Pacing: the event loop's sleeps end on whole milliseconds, so an ACK's 87 µs sleep takes a
# millisecond; up to this much slept too long counts towards the next bytes' line time.
PACE_CREDIT_S = 0.002


class Channel(Protocol):
    """A byte stream to the host: a pty master or a TCP connection."""

    async def read(self) -> bytes:
        """Some bytes; b"" once the stream is closed."""

    async def write(self, data: bytes) -> None:
        """Send bytes."""


class DeviceLink:
    """Serves the host on one channel after another; holds the pending answer between them."""

    def __init__(self, emulator: Emulator, *, bytes_per_s: float | None = None) -> None:
        self.emulator = emulator
        self.bytes_per_s = bytes_per_s
        self.pending: Reply | None = None
        self.power_cut = asyncio.Event()
        self._owed_s = 0.0  # line time of bytes sent but not yet slept off (negative: credit)

    def __repr__(self) -> str:
        return (
            f"DeviceLink(pending={self.pending is not None}, power_cut={self.power_cut.is_set()})"
        )

    async def serve(self, channel: Channel) -> None:
        """Answer the host until the channel closes or the register loses power."""
        decoder = Receiver()
        while not self.power_cut.is_set():
            try:
                async with asyncio.timeout(BYTE_TIMEOUT_S if decoder.in_message else IDLE_READ_S):
                    data = await channel.read()
            except TimeoutError:
                if decoder.in_message:
                    dropped = decoder.reset()
                    _LOGGER.debug("Dropped an incomplete frame: %s", dropped.hex())
                continue
            if not data:
                return
            # The host's bytes arrive at once on a pty; on a line they come one at a time.
            await self._pace(len(data))
            if self.emulator.faults.silent:
                decoder.reset()  # hung: the bytes arrive and nothing comes of them
                continue
            for event in decoder.feed(data):
                await self._event_received(channel, event)
                if self.power_cut.is_set():
                    return

    async def _event_received(
        self, channel: Channel, event: Signal | Message | Corrupted | Noise
    ) -> None:
        """React to one decoded event ([PROTO] p.8)."""
        if event is Signal.ENQ:
            if self.pending is None:
                await self._send(channel, bytes((NAK,)))
            else:
                await self._send(channel, bytes((ACK,)) + frame(self.pending.answer))
        elif event is Signal.ACK:
            self.pending = None
        elif event is Signal.NAK:
            _LOGGER.debug("Host NAKed the answer; it stays pending until ENQ")
        elif isinstance(event, Corrupted):
            _LOGGER.debug("Bad LRC on %s; NAK", event.body.hex())
            await self._send(channel, bytes((NAK,)))
        elif isinstance(event, Message):
            await self._frame_received(channel, event.body)
        # Noise, such as the 0xFF after an ACK over TCP, is ignored.

    async def _frame_received(self, channel: Channel, body: bytes) -> None:
        """ACK and execute a command frame, or answer a repeated one again."""
        if self.pending is not None and self.pending.request == body:
            _LOGGER.debug(
                "Repeated command %#x while its answer is pending: answer again",
                self.pending.command,
            )
            await self._send(channel, bytes((ACK,)) + frame(self.pending.answer))
            return
        self.pending = None
        await self._send(channel, bytes((ACK,)))
        reply = await self.emulator.handle(body)
        if reply.power_cut:
            _LOGGER.warning("Power cut after command %#x: the answer is never sent", reply.command)
            self.power_cut.set()
            return
        faults = self.emulator.faults
        if reply.closes_document and faults.answer_dropped:
            faults.answer_dropped -= 1
            _LOGGER.warning("Fault: the answer to %#x is dropped", reply.command)
            return
        self.pending = reply
        if reply.closes_document and faults.answer_lost:
            faults.answer_lost -= 1
            _LOGGER.warning(
                "Fault: the answer to %#x is lost on the wire (still pending)", reply.command
            )
            return
        out = frame(reply.answer)
        if faults.garbled:
            faults.garbled -= 1
            out = out[:-2] + bytes((out[-2] ^ 0x5A,)) + out[-1:]
            _LOGGER.warning("Fault: the answer to %#x goes out garbled", reply.command)
        await self._send(channel, out)

    async def _send(self, channel: Channel, data: bytes) -> None:
        """Write bytes, slowly when slow_bytes is set, paced to the baud rate when pacing."""
        async with asyncio.timeout(WRITE_TIMEOUT_S + len(data) * self.emulator.faults.slow_byte_s):
            if self.emulator.faults.slow_byte_s:
                for byte in data:
                    await asyncio.sleep(self.emulator.faults.slow_byte_s)
                    await channel.write(bytes((byte,)))
            else:
                await channel.write(data)
        await self._pace(len(data))

    async def _pace(self, count: int) -> None:
        """Like a serial line: `count` bytes either way take their line time before the
        register can act on them (incoming) or send more (outgoing)."""
        if not self.bytes_per_s:
            return
        self._owed_s += count / self.bytes_per_s
        if self._owed_s > 0:
            loop = asyncio.get_running_loop()
            start = loop.time()
            await asyncio.sleep(self._owed_s)
            self._owed_s = max(self._owed_s - (loop.time() - start), -PACE_CREDIT_S)
