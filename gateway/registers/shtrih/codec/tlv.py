"""TLV data of fiscal documents (tag u16, length u16, value), as FF0Ch, FF4Dh and FF3Bh carry
it. Pure."""

from __future__ import annotations

from gateway.domain.errors import ProtocolError
from gateway.registers.shtrih.codec.wire import U16


def encode_tlv(tag: int, value: bytes) -> bytes:
    """tag u16 LE, length u16 LE, value."""
    if len(value) > 0xFFFF:
        raise ValueError("TLV value too long")
    return U16.encode(tag) + U16.encode(len(value)) + value


def tlv_str(tag: int, text: str) -> bytes:
    """A string TLV in cp1251."""
    return encode_tlv(tag, text.encode("cp1251", errors="replace"))


def decode_tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """All TLVs in `data`."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise ProtocolError(f"truncated TLV header at {pos}")
        tag = U16.decode(data[pos : pos + 2])
        length = U16.decode(data[pos + 2 : pos + 4])
        value = data[pos + 4 : pos + 4 + length]
        if len(value) != length:
            raise ProtocolError(f"truncated TLV {tag}")
        out.append((tag, value))
        pos += 4 + length
    return out
