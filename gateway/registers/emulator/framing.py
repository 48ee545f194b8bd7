"""The register's end of the Shtrih-M standard low level: bytes in, frames and signals out. No I/O.

Written from [PROTO] p.8–9 ("Стандартный нижний уровень") and Appendix 2 (p.72, the register's
state diagram), independently of the driver's framing:

- a message is STX, LEN, then LEN bytes (the command code and its parameters), then LRC;
- LEN counts neither STX, LEN itself nor LRC (p.8 "В длину сообщения не включаются байты 0,
  LRC и этот байт");
- LRC is the XOR of every byte of the message except STX (p.8 "кроме байта 0");
- outside a message single bytes travel: ENQ 05h, ACK 06h, NAK 15h (p.9 table of codes).

The decoder is resumable; the caller drops a half-received message when the byte timeout runs
out (p.72 "Таймаут истек" -> waiting for a command again).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

STX = 0x02
ENQ = 0x05
ACK = 0x06
NAK = 0x15

# One LEN byte: a message carries at most 255 bytes of command and parameters.
MAX_BODY = 0xFF


class Signal(enum.IntEnum):
    """The one-byte signals of the exchange ([PROTO] p.9)."""

    ENQ = ENQ
    ACK = ACK
    NAK = NAK


def lrc(data: bytes) -> int:
    """XOR of `data` (LEN and the body) ([PROTO] p.8)."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def frame(body: bytes) -> bytes:
    """STX LEN body LRC for an answer body (command code, error code, data)."""
    if not 1 <= len(body) <= MAX_BODY:
        raise ValueError(f"a message carries 1..{MAX_BODY} bytes, not {len(body)}")
    head = bytes((len(body),)) + body
    return bytes((STX,)) + head + bytes((lrc(head),))


@dataclass(frozen=True, slots=True)
class Message:
    """A message received whole with a matching LRC."""

    body: bytes


@dataclass(frozen=True, slots=True)
class Corrupted:
    """A message received whole whose LRC does not match: the register answers NAK."""

    body: bytes
    received_lrc: int


@dataclass(frozen=True, slots=True)
class Noise:
    """Bytes outside a message that are no signal (e.g. the 0xFF after a host's ACK over TCP)."""

    data: bytes


Event = Signal | Message | Corrupted | Noise


class _Phase(enum.Enum):
    WAIT_STX = enum.auto()
    WAIT_LEN = enum.auto()
    BODY = enum.auto()
    WAIT_LRC = enum.auto()


class Receiver:
    """Feed it bytes as they come; it returns the events they complete."""

    def __init__(self) -> None:
        self._phase = _Phase.WAIT_STX
        self._length = 0
        self._body = bytearray()
        self._noise = bytearray()

    def __repr__(self) -> str:
        return f"Receiver(phase={self._phase.name}, have={len(self._body)}/{self._length})"

    @property
    def in_message(self) -> bool:
        """True between a message's STX and its LRC."""
        return self._phase is not _Phase.WAIT_STX

    def reset(self) -> bytes:
        """Forget a half-received message (byte timeout); returns what was dropped."""
        dropped = bytes(self._body)
        self._phase = _Phase.WAIT_STX
        self._length = 0
        self._body.clear()
        return dropped

    def feed(self, data: bytes) -> list[Event]:
        """Consume `data`; the completed events in order."""
        events: list[Event] = []
        for byte in data:
            phase = self._phase
            if phase is _Phase.WAIT_STX:
                if byte == STX:
                    self._flush_noise(events)
                    self._phase = _Phase.WAIT_LEN
                elif byte in (ENQ, ACK, NAK):
                    self._flush_noise(events)
                    events.append(Signal(byte))
                else:
                    self._noise.append(byte)
            elif phase is _Phase.WAIT_LEN:
                if byte == 0:
                    # An empty message does not exist: that STX was line noise.
                    self._noise += bytes((STX, byte))
                    self._phase = _Phase.WAIT_STX
                else:
                    self._length = byte
                    self._body.clear()
                    self._phase = _Phase.BODY
            elif phase is _Phase.BODY:
                self._body.append(byte)
                if len(self._body) == self._length:
                    self._phase = _Phase.WAIT_LRC
            else:
                body = bytes(self._body)
                expected = lrc(bytes((self._length,)) + body)
                events.append(Message(body) if byte == expected else Corrupted(body, byte))
                self.reset()
        self._flush_noise(events)
        return events

    def _flush_noise(self, events: list[Event]) -> None:
        if self._noise:
            events.append(Noise(bytes(self._noise)))
            self._noise.clear()
