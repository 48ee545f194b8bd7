"""Round trips and resync behaviour of the pure Shtrih-M framing."""

from __future__ import annotations

import pytest

from gateway.registers.shtrih.framing import (
    ACK,
    ENQ,
    MAX_BODY,
    NAK,
    STX,
    BadFrame,
    Control,
    Frame,
    FrameDecoder,
    Garbage,
    encode_frame,
    lrc,
)

BODIES = [
    b"\x10\x1e\x00\x00\x00",
    b"\xff\x46" + bytes(range(40)),
    bytes([0x02] * 10),
    bytes(MAX_BODY),
]


def test_encode_known_vector() -> None:
    # [PROTO] p.8: 02 LEN CMD params LRC; short status with password 30.
    frame = encode_frame(b"\x10\x1e\x00\x00\x00")
    assert frame == bytes([STX, 0x05, 0x10, 0x1E, 0x00, 0x00, 0x00, 0x05 ^ 0x10 ^ 0x1E])


@pytest.mark.parametrize("body", BODIES)
def test_round_trip_whole(body: bytes) -> None:
    assert FrameDecoder().feed(encode_frame(body)) == [Frame(body)]


@pytest.mark.parametrize("body", BODIES)
def test_round_trip_byte_by_byte(body: bytes) -> None:
    decoder = FrameDecoder()
    events = [e for b in encode_frame(body) for e in decoder.feed(bytes([b]))]
    assert events == [Frame(body)]


def test_control_bytes_outside_frames() -> None:
    data = bytes([ENQ, ACK, NAK]) + encode_frame(b"\x06\x15\x05") + bytes([ACK])
    assert FrameDecoder().feed(data) == [
        Control.ENQ,
        Control.ACK,
        Control.NAK,
        Frame(b"\x06\x15\x05"),
        Control.ACK,
    ]


def test_garbage_is_skipped_and_reported() -> None:
    data = b"\x99\x98" + encode_frame(b"\x11\x1e\x00\x00\x00") + b"\x77"
    events = FrameDecoder().feed(data)
    assert events == [Garbage(b"\x99\x98"), Frame(b"\x11\x1e\x00\x00\x00"), Garbage(b"\x77")]


def test_bad_lrc_gives_bad_frame_then_resyncs() -> None:
    good = encode_frame(b"\x10\x1e\x00\x00\x00")
    bad = good[:-1] + bytes([good[-1] ^ 0xFF])
    events = FrameDecoder().feed(bad + good)
    assert events == [
        BadFrame(b"\x10\x1e\x00\x00\x00", good[-1] ^ 0xFF),
        Frame(b"\x10\x1e\x00\x00\x00"),
    ]


def test_zero_length_is_noise() -> None:
    assert FrameDecoder().feed(bytes([STX, 0]) + bytes([ACK])) == [
        Garbage(bytes([STX, 0])),
        Control.ACK,
    ]


def test_reset_drops_partial_frame() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(b"\xfc")
    assert decoder.feed(frame[:2]) == []
    assert decoder.in_frame
    assert decoder.reset() == b""  # STX and LEN seen, no body byte yet
    assert not decoder.in_frame
    assert decoder.feed(frame) == [Frame(b"\xfc")]


def test_buffer_is_capped_by_frame_length() -> None:
    decoder = FrameDecoder()
    decoder.feed(bytes([STX, 0xFF]) + bytes(254))
    assert decoder.in_frame
    events = decoder.feed(bytes([0x00, lrc(bytes([0xFF]) + bytes(255))]))
    assert events == [Frame(bytes(255))]
    assert not decoder.in_frame


@pytest.mark.parametrize("size", [0, MAX_BODY + 1])
def test_encode_rejects_bad_sizes(size: int) -> None:
    with pytest.raises(ValueError, match="frame body"):
        encode_frame(bytes(size))
