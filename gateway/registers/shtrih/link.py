"""Host side of the Shtrih-M exchange: an asyncio.Protocol with ENQ/ACK/NAK and retries.

[PROTO] p.8 and Appendix 3:
  1. ENQ; NAK = the register is idle, ACK = an answer to an earlier command is pending
     (read it, ACK it, do not resend that command).
  2. Send the frame; ACK = taken, NAK = resend. No reply: ENQ to find out; ACK = it has the
     frame and is working on it, NAK = it never got it, resend.
  3. Wait for the answer frame; good LRC -> ACK, bad -> NAK then ENQ (the register repeats
     the answer only when asked with ENQ).
Step 1 is skipped while the line is known quiet: the previous exchange ended cleanly (its
frame ACKed at once, its answer read whole and ACKed) and nothing came since. After anything
else — a timeout, a NAK either way, a damaged answer, a cancelled caller, a new or lost
connection, a probe — the next request starts with ENQ again, as recovery needs (design §4).
A command that may have run is never sent again: an answer that does not come in time raises
NoAnswer(command_sent=True) and the caller reconciles. Over TCP/RNDIS one 0xFF follows the
host's ACK ([PROTO]); the adapter passes it as `ack_suffix`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.domain.errors import ConnectionLost, FrameError, NoAnswer, NotConnected
from gateway.registers.shtrih.framing import (
    ACK,
    ENQ,
    NAK,
    BadFrame,
    Control,
    Frame,
    FrameDecoder,
    Garbage,
    encode_frame,
)

_LOGGER = logging.getLogger(__name__)

# A live register answers ENQ within a byte time or two; [PHP] waits 1 s, pyshtrih 3 s.
ENQ_TIMEOUT_S = 1.0
# The ACK/NAK to a command frame: the register sends it before it starts working.
ACK_TIMEOUT_S = 1.0
# The answer frame after the register said (ACK to ENQ) that one is pending.
PENDING_ANSWER_TIMEOUT_S = 2.0
# A frame whose next byte is this late is dropped. The register's own default is 50 ms
# ([PROTO]); USB CDC adapters and a loaded host deliver in bursts, so the host is lenient.
BYTE_TIMEOUT_S = 0.5
# [PROTO] suggests up to 10 tries each way; ENQ gets fewer: silence means no link.
MAX_ENQ_TRIES = 5
MAX_SEND_TRIES = 10
MAX_READ_TRIES = 10
# How long close() lets an exchange on the wire run before closing the port anyway.
CLOSE_TIMEOUT_S = 5.0
# Unclaimed answers kept for the driver's recovery (newest last).
ORPHANS_KEPT = 8

T = TypeVar("T")


@dataclass(slots=True)
class LinkStats:
    """Counters for benchmarks and telemetry."""

    requests: int = 0
    frames_sent: int = 0
    resends: int = 0
    enqs_sent: int = 0
    naks_sent: int = 0
    naks_received: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    orphan_answers: int = 0  # pending answers found with ENQ before a request
    enqs_skipped: int = 0  # requests sent without ENQ: the line was known quiet
    abandoned_answers: int = 0  # answers that came after their caller was cancelled
    garbage_bytes: int = 0
    stray_events: int = 0  # frames or control bytes that came when none was expected
    dropped_frames: int = 0  # partial frames dropped after the byte timeout
    timeouts: int = 0  # NoAnswer raised
    answers: int = 0  # whole answer frames (good LRC) received: the register is alive


@dataclass(frozen=True, slots=True)
class _Dropped:
    """A partial frame was dropped after the byte timeout (treated like a bad frame)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class _Lost:
    """Wakes a waiter after connection_lost."""


_LinkEvent = Control | Frame | BadFrame | _Dropped | _Lost


class ShtrihLink(asyncio.Protocol):
    """One Shtrih-M line; one request in flight."""

    def __init__(self, *, ack_suffix: bytes = b"") -> None:
        self._ack_suffix = ack_suffix
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._decoder = FrameDecoder()
        self._events: asyncio.Queue[_LinkEvent] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._lost: ConnectionLost | None = None
        self._closing = False
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._byte_timer: asyncio.TimerHandle | None = None
        self._exchange: asyncio.Task[Any] | None = None
        # True only right after a clean exchange: no answer can be pending, ENQ adds nothing.
        self._quiet = False
        self._began_quiet = False  # the state `_quiet` had when the running exchange began
        self.orphan_answers: collections.deque[bytes] = collections.deque(maxlen=ORPHANS_KEPT)
        self.stats = LinkStats()

    def __repr__(self) -> str:
        return (
            f"ShtrihLink(connected={self.connected}, busy={self._lock.locked()}, "
            f"ack_suffix={self._ack_suffix.hex()!r})"
        )

    # --- asyncio.Protocol -------------------------------------------------------------------

    @property
    def answers(self) -> int:
        """Whole answer frames received so far: the watchdog counts them as progress, as one
        command may keep the worker on one step for long (FF61h waits for the ОИСМ)."""
        return self.stats.answers

    @property
    def connected(self) -> bool:
        """True between connection_made and connection_lost, until close() starts."""
        return self._transport is not None and self._lost is None and not self._closing

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Port open."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        _LOGGER.debug("Register link open: %r", transport)

    def data_received(self, data: bytes) -> None:
        """Feed the decoder; while a frame is incomplete the byte timer runs."""
        self.stats.bytes_in += len(data)
        if _LOGGER.isEnabledFor(logging.DEBUG):
            _LOGGER.debug("<- %s", data.hex())
        for event in self._decoder.feed(data):
            if isinstance(event, Garbage):
                self.stats.garbage_bytes += len(event.data)
                _LOGGER.debug("Line noise ignored: %s", event.data.hex())
            else:
                if isinstance(event, Frame):
                    self.stats.answers += 1
                self._events.put_nowait(event)
        self._cancel_byte_timer()
        if self._decoder.in_frame:
            self._byte_timer = self._loop.call_later(BYTE_TIMEOUT_S, self._byte_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        """Port closed or unplugged: every waiter fails with ConnectionLost."""
        if self._lost is None:
            reason = f"{exc}" if exc is not None else "port closed"
            self._lost = ConnectionLost(f"register link lost: {reason}")
            if exc is not None and not self._closing:
                _LOGGER.warning("Register link lost: %s", reason)
            else:
                _LOGGER.debug("Register link closed")
        self._quiet = False
        self._cancel_byte_timer()
        self._decoder.reset()
        self._events.put_nowait(_Lost())
        if not self._closed.done():
            self._closed.set_result(None)

    # --- public API -------------------------------------------------------------------------

    async def request(self, body: bytes, *, timeout_s: float) -> bytes:
        """Send one command body; return the answer body (CMD ERR data) within `timeout_s`."""
        frame = encode_frame(body)  # a bad body is the caller's ValueError, before any I/O
        return await self._run(lambda: self._exchange_request(frame, timeout_s))

    async def probe_pending(self, *, timeout_s: float) -> bytes | None:
        """ENQ: if an answer is pending read, ACK and return it; None when the register is idle."""
        return await self._run(lambda: self._probe(timeout_s))

    async def close(self, *, timeout_s: float | None = None) -> None:
        """Let an exchange on the wire finish (bounded), then close the port."""
        self._closing = True
        exchange = self._exchange
        if exchange is not None and not exchange.done():
            limit_s = CLOSE_TIMEOUT_S if timeout_s is None else timeout_s
            try:
                async with asyncio.timeout(limit_s):
                    await asyncio.wait({exchange})
            except TimeoutError:
                _LOGGER.warning("Closing the register port with an exchange still running")
        if self._transport is not None and self._lost is None:
            self._transport.close()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Until connection_lost ran (bounded)."""
        if self._transport is None:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await asyncio.shield(self._closed)
        except TimeoutError:
            _LOGGER.warning("Register port did not close in time")

    # --- one exchange at a time -----------------------------------------------------------

    async def _run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run one exchange under the lock; it runs to its end even if the caller leaves."""
        if not self.connected:
            raise NotConnected("the register link is not open")
        await self._lock.acquire()
        if self._lost is not None or self._closing:
            self._lock.release()
            if self._lost is not None:
                # This caller was queued when the line went: it sees the loss itself.
                raise ConnectionLost(self._lost.message)
            raise NotConnected("the register link is closing")
        # A frame on the wire cannot be taken back: the exchange is its own task, shielded
        # from the caller, and the lock is released only when it ends. Every wait inside it
        # has its own timeout, so it always ends.
        # The line is in doubt from here until an exchange ends cleanly.
        self._began_quiet, self._quiet = self._quiet, False
        exchange = self._loop.create_task(make())
        self._exchange = exchange
        exchange.add_done_callback(self._exchange_done)
        try:
            return await asyncio.shield(exchange)
        except asyncio.CancelledError:
            self._quiet = False
            exchange.add_done_callback(self._abandoned_done)
            raise

    def _exchange_done(self, exchange: asyncio.Task[Any]) -> None:
        """The wire is quiet again: let the next exchange in."""
        if self._exchange is exchange:
            self._exchange = None
        self._lock.release()

    def _abandoned_done(self, exchange: asyncio.Task[Any]) -> None:
        """Keep what an exchange got after its caller was cancelled."""
        self._quiet = False  # nobody saw how it ended: the next request asks with ENQ
        if exchange.cancelled():
            return
        error = exchange.exception()
        if error is not None:
            _LOGGER.warning("A request whose caller was cancelled ended with %r", error)
            return
        answer = exchange.result()
        if isinstance(answer, bytes):
            self.stats.abandoned_answers += 1
            self.orphan_answers.append(answer)
            _LOGGER.warning("Answer to a cancelled request kept as unclaimed: %s", answer.hex())

    # --- wire helpers ---------------------------------------------------------------------

    def _cancel_byte_timer(self) -> None:
        """Stop the byte timer if it runs."""
        if self._byte_timer is not None:
            self._byte_timer.cancel()
            self._byte_timer = None

    def _byte_timeout(self) -> None:
        """No byte for BYTE_TIMEOUT_S inside a frame: drop it so a lost byte cannot wedge us."""
        self._byte_timer = None
        dropped = self._decoder.reset()
        self.stats.dropped_frames += 1
        _LOGGER.debug("Dropped a partial frame after the byte timeout: %s", dropped.hex())
        self._events.put_nowait(_Dropped(dropped))

    def _write(self, data: bytes) -> None:
        """Bytes to the register; raises ConnectionLost / NotConnected without a line."""
        if self._lost is not None:
            raise ConnectionLost(self._lost.message)
        if self._transport is None:
            raise NotConnected("the register link is not open")
        self.stats.bytes_out += len(data)
        if _LOGGER.isEnabledFor(logging.DEBUG):
            _LOGGER.debug("-> %s", data.hex())
        self._transport.write(data)

    def _send_ack(self) -> None:
        """ACK an answer; over TCP/RNDIS the register expects 0xFF after it ([PROTO])."""
        self._write(bytes((ACK,)) + self._ack_suffix)

    def _drain(self) -> None:
        """Forget events nobody asked for yet (a fresh ENQ or frame is about to go out)."""
        while not self._events.empty():
            if isinstance(self._events.get_nowait(), _Lost):
                self._events.put_nowait(_Lost())
                return

    async def _next(self, timeout_s: float) -> _LinkEvent | None:
        """The next event, or None on timeout. Raises ConnectionLost after a loss."""
        if self._lost is not None:
            raise ConnectionLost(self._lost.message)
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                event = await self._events.get()
        except TimeoutError:
            return None
        if isinstance(event, _Lost) or self._lost is not None:
            assert self._lost is not None
            raise ConnectionLost(self._lost.message)
        return event

    async def _control(self, timeout_s: float) -> Control | None:
        """The next control byte within `timeout_s`; frames in between are not ours to take."""
        deadline = self._loop.time() + timeout_s
        while True:
            event = await self._next(deadline - self._loop.time())
            if event is None or isinstance(event, Control):
                return event
            self.stats.stray_events += 1
            _LOGGER.debug("Ignored %r while waiting for a control byte", event)

    # --- the exchange, [PROTO] p.8 ----------------------------------------------------------

    async def _enq(self, *, command_sent: bool) -> bool:
        """ENQ until the register replies: True = an answer is pending (ACK), False = idle."""
        for _ in range(MAX_ENQ_TRIES):
            self._drain()
            self._write(bytes((ENQ,)))
            self.stats.enqs_sent += 1
            reply = await self._control(ENQ_TIMEOUT_S)
            if reply is Control.NAK:
                return False
            if reply is Control.ACK:
                return True
        self.stats.timeouts += 1
        raise NoAnswer(
            f"the register does not answer ENQ ({MAX_ENQ_TRIES} tries) — "
            "check the cable and that it is switched on",
            command_sent=command_sent,
        )

    async def _read_answer(self, timeout_s: float, *, command_sent: bool) -> bytes | None:
        """Wait for an answer frame and ACK it; None when none came (or it is gone)."""
        deadline = self._loop.time() + timeout_s
        damaged = 0
        while True:
            event = await self._next(deadline - self._loop.time())
            if event is None:
                if self._decoder.in_frame:
                    # The answer is arriving right now; the byte timer ends a stalled one.
                    deadline = self._loop.time() + BYTE_TIMEOUT_S
                    continue
                return None
            if isinstance(event, Frame):
                self._send_ack()
                return event.body
            if isinstance(event, BadFrame | _Dropped):
                damaged += 1
                if damaged >= MAX_READ_TRIES:
                    # It stays pending in the register; the next ENQ collects it.
                    raise FrameError(f"the answer arrived damaged {damaged} times")
                _LOGGER.debug("Damaged answer (%r): NAK, then ENQ for a repeat", event)
                self._write(bytes((NAK,)))
                self.stats.naks_sent += 1
                # [PROTO] p.8: the register does not repeat on NAK; ENQ asks for the answer
                # again (ACK = still pending, the frame follows; NAK = there is none).
                if not await self._enq(command_sent=command_sent):
                    return None
                deadline = max(deadline, self._loop.time() + PENDING_ANSWER_TIMEOUT_S)
            # A control byte while waiting for a frame is stray: ignore it.
            self.stats.stray_events += 1

    async def _collect_orphans(self) -> None:
        """Step 1: make sure the register is idle, keeping answers nobody waited for."""
        for _ in range(MAX_ENQ_TRIES):
            if not await self._enq(command_sent=False):
                return
            orphan = await self._read_answer(PENDING_ANSWER_TIMEOUT_S, command_sent=False)
            if orphan is None:
                self.stats.timeouts += 1
                raise NoAnswer(
                    "the register reported a pending answer but did not send it",
                    command_sent=False,
                )
            self.stats.orphan_answers += 1
            self.orphan_answers.append(orphan)
            _LOGGER.warning("The register had an unclaimed answer pending: %s", orphan.hex())
        raise FrameError(
            f"the register still reports a pending answer after {MAX_ENQ_TRIES} collected"
        )

    async def _send_frame(self, frame: bytes) -> None:
        """Step 2: send until the register takes the frame."""
        for attempt in range(MAX_SEND_TRIES):
            if attempt:
                self.stats.resends += 1
            self._drain()
            self._write(frame)
            self.stats.frames_sent += 1
            reply = await self._control(ACK_TIMEOUT_S)
            if reply is Control.ACK:
                return
            if reply is Control.NAK:
                self.stats.naks_received += 1
                _LOGGER.debug("The register NAKed the frame (try %d)", attempt + 1)
                continue
            # No reply: did it get the frame? From here on it may have run.
            if await self._enq(command_sent=True):
                _LOGGER.debug("No ACK to the frame, but ENQ says the register has it")
                return
            _LOGGER.debug("No ACK to the frame and ENQ says the register never got it")
        raise FrameError(f"the register refused the frame {MAX_SEND_TRIES} times")

    async def _exchange_request(self, frame: bytes, timeout_s: float) -> bytes:
        """Steps 1–3 for one command."""
        self.stats.requests += 1
        if self._began_quiet and self._events.empty() and not self._decoder.in_frame:
            self.stats.enqs_skipped += 1
        else:
            await self._collect_orphans()
        before = self._doubts()
        await self._send_frame(frame)
        answer = await self._read_answer(timeout_s, command_sent=True)
        if answer is None:
            self.stats.timeouts += 1
            raise NoAnswer(
                f"no answer within {timeout_s:g} s; the command may have run", command_sent=True
            )
        # Frame ACKed at once, answer whole at once, nothing else on the line: quiet.
        self._quiet = (
            self._doubts() == before and self._events.empty() and not self._decoder.in_frame
        )
        return answer

    def _doubts(self) -> tuple[int, ...]:
        """Counters any of which moves when an exchange is not clean."""
        s = self.stats
        return (
            s.enqs_sent,
            s.resends,
            s.naks_sent,
            s.naks_received,
            s.garbage_bytes,
            s.dropped_frames,
            s.stray_events,
        )

    async def _probe(self, timeout_s: float) -> bytes | None:
        """The recovery step: ENQ; an ACK means an answer is pending — read it."""
        if not await self._enq(command_sent=False):
            return None
        answer = await self._read_answer(timeout_s, command_sent=False)
        if answer is None:
            self.stats.timeouts += 1
            raise NoAnswer(
                "the register reported a pending answer but did not send it", command_sent=False
            )
        return answer
