"""Host side of the Shtrih-M exchange: an asyncio.Protocol with ENQ/ACK/NAK and retries.

[PROTO] p.8 and Appendix 3:
  1. ENQ; NAK = the register is idle, ACK = an answer to an earlier command is pending.
  2. Send the frame; ACK = taken, NAK = resend. No reply: ENQ again to find out.
  3. Wait for the answer frame; good LRC -> ACK, bad -> NAK (the register resends).
A command that may have run is never sent again: an answer that does not come in time
raises NoAnswer(command_sent=True) and the caller reconciles.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from gateway.errors import ConnectionLost, FrameError, NoAnswer, NotConnected
from gateway.registers.shtrih.framing import (
    ACK,
    ENQ,
    NAK,
    BadFrame,
    Control,
    Event,
    Frame,
    FrameDecoder,
    Garbage,
    encode_frame,
)

_LOGGER = logging.getLogger(__name__)

ENQ_TIMEOUT_S = 1.0  # a live register answers ENQ within a byte time or two
ACK_TIMEOUT_S = 1.0
BYTE_TIMEOUT_S = 0.5  # a frame with a gap longer than this is dropped
MAX_ENQ_TRIES = 5
MAX_SEND_TRIES = 10  # [PROTO] suggests up to 10 tries each way
MAX_READ_TRIES = 10
CLOSE_TIMEOUT_S = 5.0
ORPHANS_KEPT = 8


@dataclass(slots=True)
class LinkStats:
    """Counters for benchmarks and telemetry."""

    requests: int = 0
    frames_sent: int = 0
    resends: int = 0
    naks_sent: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    orphan_answers: int = 0
    garbage_bytes: int = 0


class ShtrihLink(asyncio.Protocol):
    """One Shtrih-M line; one request in flight."""

    def __init__(self, *, ack_suffix: bytes = b"") -> None:
        self._ack_suffix = ack_suffix  # one extra 0xFF after ACK over TCP/RNDIS ([PROTO])
        self._transport: asyncio.Transport | None = None
        self._decoder = FrameDecoder()
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._lost: Exception | None = None
        self._closed = asyncio.get_running_loop().create_future()
        self._byte_timer: asyncio.TimerHandle | None = None
        self._exchange: asyncio.Future[bytes | None] | None = None
        self.orphan_answers: collections.deque[bytes] = collections.deque(maxlen=ORPHANS_KEPT)
        self.stats = LinkStats()

    def __repr__(self) -> str:
        return f"ShtrihLink(connected={self.connected})"

    # --- asyncio.Protocol -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True between connection_made and connection_lost."""
        return self._transport is not None and self._lost is None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Port open."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        """Feed the decoder; a partial frame arms the byte timer."""
        self.stats.bytes_in += len(data)
        if _LOGGER.isEnabledFor(logging.DEBUG):
            _LOGGER.debug("<- %s", data.hex())
        for event in self._decoder.feed(data):
            if isinstance(event, Garbage):
                self.stats.garbage_bytes += len(event.data)
                _LOGGER.debug("Line noise ignored: %s", event.data.hex())
                continue
            self._events.put_nowait(event)
        if self._byte_timer is not None:
            self._byte_timer.cancel()
            self._byte_timer = None
        if self._decoder.in_frame:
            loop = asyncio.get_running_loop()
            self._byte_timer = loop.call_later(BYTE_TIMEOUT_S, self._drop_partial)

    def _drop_partial(self) -> None:
        self._byte_timer = None
        dropped = self._decoder.reset()
        _LOGGER.debug("Dropped a partial frame after the byte timeout: %s", dropped.hex())

    def connection_lost(self, exc: Exception | None) -> None:
        """Port closed or unplugged: every waiter fails with ConnectionLost."""
        self._lost = ConnectionLost(f"register link lost: {exc or 'port closed'}")
        if self._byte_timer is not None:
            self._byte_timer.cancel()
        # Wake a waiter; it sees _lost and raises.
        self._events.put_nowait(Control.NAK)
        if not self._closed.done():
            self._closed.set_result(None)

    # --- public API ----------------------------------------------------------------------------

    async def request(self, body: bytes, *, timeout_s: float) -> bytes:
        """Send one command body; return the answer body. One request at a time."""
        result = await self._run(lambda: self._exchange_request(body, timeout_s))
        assert result is not None
        return result

    async def probe_pending(self, *, timeout_s: float) -> bytes | None:
        """ENQ: if an answer is pending read and return it; None when the register is idle."""
        return await self._run(lambda: self._probe(timeout_s))

    async def close(self) -> None:
        """Let an exchange on the wire finish, then close the port."""
        exchange = self._exchange
        if exchange is not None and not exchange.done():
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await asyncio.shield(exchange)
            except (TimeoutError, Exception):
                pass
        if self._transport is not None and self._lost is None:
            self._transport.close()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Until connection_lost ran."""
        if self._transport is None:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await asyncio.shield(self._closed)
        except TimeoutError:
            _LOGGER.warning("Register port did not close in time")

    # --- exchange --------------------------------------------------------------------------------

    async def _run(self, exchange: Callable[[], Coroutine[Any, Any, bytes | None]]) -> bytes | None:
        if not self.connected:
            raise NotConnected("the register link is not open")
        async with self._lock:
            if self._lost is not None:
                raise NotConnected("the register link is not open")
            # A frame on the wire cannot be taken back: the exchange runs to its end even if
            # the caller is cancelled, and the lock is held until then.
            task = asyncio.ensure_future(exchange())
            self._exchange = task
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.done():
                    await asyncio.wait({task})  # the lock stays held until the wire is quiet
                raise

    def _write(self, data: bytes) -> None:
        if self._lost is not None or self._transport is None:
            raise self._lost or NotConnected("the register link is not open")
        self.stats.bytes_out += len(data)
        if _LOGGER.isEnabledFor(logging.DEBUG):
            _LOGGER.debug("-> %s", data.hex())
        self._transport.write(data)

    def _ack(self) -> None:
        self._write(bytes((ACK,)) + self._ack_suffix)

    async def _next(self, timeout_s: float) -> Event | None:
        """The next event, or None on timeout. Raises ConnectionLost after a loss."""
        if self._lost is not None:
            raise self._lost
        try:
            async with asyncio.timeout(timeout_s):
                event = await self._events.get()
        except TimeoutError:
            return None
        if self._lost is not None:
            raise self._lost
        return event

    def _drain(self) -> None:
        while not self._events.empty():
            self._events.get_nowait()

    async def _enq(self) -> bool:
        """ENQ until the register answers; True when an answer is pending (ACK)."""
        for _ in range(MAX_ENQ_TRIES):
            self._drain()
            self._write(bytes((ENQ,)))
            event = await self._next(ENQ_TIMEOUT_S)
            while isinstance(event, Frame | BadFrame):
                event = await self._next(ENQ_TIMEOUT_S)  # a late frame; ENQ will fetch it anew
            if event is Control.NAK:
                return False
            if event is Control.ACK:
                return True
        raise NoAnswer(
            "the register does not answer (check the cable and power)", command_sent=False
        )

    async def _read_answer(self, timeout_s: float) -> bytes | None:
        """Wait for an answer frame; ACK it. None when none came in time."""
        naks = 0
        wait_s = timeout_s
        while True:
            event = await self._next(wait_s)
            if event is None:
                return None
            if isinstance(event, Frame):
                self._ack()
                return event.body
            if isinstance(event, BadFrame):
                naks += 1
                self.stats.naks_sent += 1
                if naks > MAX_READ_TRIES:
                    raise FrameError(f"answer arrived damaged {naks} times")
                self._write(bytes((NAK,)))
                # [PROTO] p.8: after NAK ask with ENQ; ACK = the answer is still there, resent.
                if not await self._enq():
                    return None
                wait_s = ACK_TIMEOUT_S * 2
            # Control bytes while waiting for a frame are stray; ignore them.

    async def _collect_pending(self) -> bytes:
        body = await self._read_answer(ACK_TIMEOUT_S * 2)
        if body is None:
            raise NoAnswer(
                "register signalled a pending answer but did not send it", command_sent=False
            )
        return body

    async def _probe(self, timeout_s: float) -> bytes | None:
        if not await self._enq():
            return None
        body = await self._read_answer(timeout_s)
        if body is None:
            raise NoAnswer(
                "register signalled a pending answer but did not send it", command_sent=False
            )
        return body

    async def _exchange_request(self, body: bytes, timeout_s: float) -> bytes:
        self.stats.requests += 1
        # 1. make sure the register is idle; collect answers nobody is waiting for.
        while await self._enq():
            orphan = await self._collect_pending()
            self.stats.orphan_answers += 1
            self.orphan_answers.append(orphan)
            _LOGGER.warning("Register had an unclaimed answer pending: %s", orphan.hex())
        # 2. send until the register takes the frame.
        frame = encode_frame(body)
        for attempt in range(MAX_SEND_TRIES):
            if attempt:
                self.stats.resends += 1
            self._drain()
            self._write(frame)
            self.stats.frames_sent += 1
            event = await self._next(ACK_TIMEOUT_S)
            if event is Control.ACK:
                break
            if event is Control.NAK:
                continue
            # No reply (or a stray frame): did it get ours? ACK to ENQ = yes, working or done.
            if (event is None or isinstance(event, Frame | BadFrame)) and await self._enq():
                break
        else:
            raise FrameError(f"register refused the frame {MAX_SEND_TRIES} times")
        # 3. the answer.
        answer = await self._read_answer(timeout_s)
        if answer is None:
            raise NoAnswer(
                f"no answer within {timeout_s:.0f} s; the command may have run", command_sent=True
            )
        return answer
