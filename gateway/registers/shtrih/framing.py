"""Shtrih-M link framing: bytes in, frames and control bytes out. No I/O.

[PROTO] "Протокол работы ККТ" v1.17, p.8 and Appendix 3:
  frame  = STX(02) LEN body LRC, body = CMD(1 byte, or FFxx sent big-endian) + params
  LEN    = len(body), 1..255
  LRC    = XOR of LEN and every body byte
Outside a frame single control bytes travel: ENQ(05), ACK(06), NAK(15).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import reduce

STX = 0x02
ENQ = 0x05
ACK = 0x06
NAK = 0x15

MAX_BODY = 255
MAX_FRAME = 1 + 1 + MAX_BODY + 1


class Control(enum.IntEnum):
    """Single-byte signals of the exchange."""

    ENQ = ENQ
    ACK = ACK
    NAK = NAK


def lrc(data: bytes) -> int:
    """XOR checksum over LEN and the body."""
    return reduce(lambda a, b: a ^ b, data, 0)


def encode_frame(body: bytes) -> bytes:
    """STX LEN body LRC."""
    if not 1 <= len(body) <= MAX_BODY:
        raise ValueError(f"frame body must be 1..{MAX_BODY} bytes, got {len(body)}")
    head = bytes((len(body),)) + body
    return bytes((STX,)) + head + bytes((lrc(head),))


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame whose LRC matched."""

    body: bytes


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame that arrived whole but with a wrong LRC: answer NAK."""

    body: bytes
    received_lrc: int


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes outside any frame that are not control bytes (line noise)."""

    data: bytes


Event = Control | Frame | BadFrame | Garbage


class _State(enum.Enum):
    IDLE = enum.auto()
    LENGTH = enum.auto()
    BODY = enum.auto()


class FrameDecoder:
    """Resumable decoder: feed any chunk of bytes, get the events completed so far.

    A partial frame is kept between calls (never more than MAX_FRAME bytes). The link calls
    `reset()` when the byte timeout expires mid-frame, so a lost byte cannot wedge it.
    """

    def __init__(self) -> None:
        self._state = _State.IDLE
        self._length = 0
        self._buf = bytearray()
        self._garbage = bytearray()

    @property
    def in_frame(self) -> bool:
        """True while a frame has started but not ended."""
        return self._state is not _State.IDLE

    def reset(self) -> bytes:
        """Drop a partial frame; returns the dropped bytes."""
        dropped = bytes(self._buf)
        self._state = _State.IDLE
        self._buf.clear()
        self._length = 0
        return dropped

    def feed(self, data: bytes) -> list[Event]:
        """Consume bytes; return the events they complete, in order."""
        events: list[Event] = []
        for byte in data:
            if self._state is _State.IDLE:
                if byte == STX:
                    self._flush_garbage(events)
                    self._state = _State.LENGTH
                elif byte in (ENQ, ACK, NAK):
                    self._flush_garbage(events)
                    events.append(Control(byte))
                else:
                    self._garbage.append(byte)
            elif self._state is _State.LENGTH:
                if byte == 0:
                    # LEN 0 is not a frame: the STX was noise.
                    self._garbage.extend((STX, byte))
                    self._state = _State.IDLE
                else:
                    self._length = byte
                    self._buf.clear()
                    self._state = _State.BODY
            elif len(self._buf) < self._length:
                self._buf.append(byte)
            else:
                body = bytes(self._buf)
                expected = lrc(bytes((self._length,)) + body)
                events.append(Frame(body) if byte == expected else BadFrame(body, byte))
                self.reset()
        self._flush_garbage(events)
        return events

    def _flush_garbage(self, events: list[Event]) -> None:
        if self._garbage:
            events.append(Garbage(bytes(self._garbage)))
            self._garbage.clear()
