"""Field encodings of Shtrih-M frame bodies and the layout packer. Pure, no I/O.

Each message class declares its byte layout once (`LAYOUT`: field name and wire type); `pack`
and `unpack` follow it in both directions. Integers little-endian; money 5 bytes in kopecks;
legacy quantity 5 bytes ×1000; FF46h quantity 6 bytes ×10⁶; text cp1251, 0-padded; legacy
dates DD MM YY, FN date-times YY MM DD HH MM. Fields a model may leave out (the
extended-answer date-time, the serial's high word) are optional tails: absent on the wire,
None (or the default) in the dataclass, and never written when None.
"""

from __future__ import annotations

import abc
import datetime as dt
from typing import Any

from gateway.domain.errors import ProtocolError


class Wire(abc.ABC):
    """A field's wire encoding; `size` None means 'the rest of the body'."""

    size: int | None = None

    @abc.abstractmethod
    def encode(self, value: Any) -> bytes:
        """The value's bytes; ValueError when it does not fit."""

    @abc.abstractmethod
    def decode(self, data: bytes) -> Any:
        """The value of exactly `size` bytes (or the rest of the body)."""


class Int(Wire):
    """A little-endian integer of `size` bytes ([PROTO] p.8: "младшим байтом вперёд")."""

    def __init__(self, size: int, *, signed: bool = False) -> None:
        """An integer field of `size` bytes."""
        self.size = size
        self.signed = signed

    def encode(self, value: Any) -> bytes:
        """Little-endian bytes; ValueError when negative (unsigned) or too large."""
        assert self.size is not None
        try:
            return int(value).to_bytes(self.size, "little", signed=self.signed)
        except OverflowError as err:
            raise ValueError(f"{value} does not fit in {self.size} bytes") from err

    def decode(self, data: bytes) -> Any:
        """The integer."""
        return int.from_bytes(data, "little", signed=self.signed)


class OptMoney(Wire):
    """5-byte money where FF FF FF FF FF means 'the register computes it' ([PROTO] FF46h)."""

    size = 5

    def encode(self, value: Any) -> bytes:
        """FF×5 for None, else the sum (which must not itself be FF×5)."""
        if value is None:
            return _NOT_GIVEN
        raw = MONEY.encode(value)
        if raw == _NOT_GIVEN:
            raise ValueError(f"{value} is the 'not given' marker FF FF FF FF FF")
        return raw

    def decode(self, data: bytes) -> Any:
        """None for FF×5, else the sum."""
        return None if data == _NOT_GIVEN else MONEY.decode(data)


class Ascii(Wire):
    """ASCII text: fixed and 0-padded, or the rest of the body."""

    def __init__(self, size: int | None) -> None:
        """A text field of `size` bytes (None: the rest of the body)."""
        self.size = size

    def encode(self, value: Any) -> bytes:
        """ASCII bytes, 0-padded; ValueError when too long or not ASCII."""
        try:
            raw = str(value).encode("ascii")
        except UnicodeEncodeError as err:
            raise ValueError(f"{value!r} is not ASCII") from err
        if self.size is None:
            return raw
        if len(raw) > self.size:
            raise ValueError(f"{value!r} is longer than {self.size} characters")
        return raw.ljust(self.size, b"\0")

    def decode(self, data: bytes) -> Any:
        """The text without trailing NULs."""
        return data.rstrip(b"\0").decode("ascii", errors="replace")


class Text(Wire):
    """cp1251 text: fixed and 0-padded, or the rest of the body up to `limit` bytes."""

    def __init__(self, size: int | None, limit: int = 255) -> None:
        """A text field of `size` bytes, or of at most `limit` bytes at the end of the body."""
        self.size = size
        self.limit = limit

    def encode(self, value: Any) -> bytes:
        """cp1251 bytes (unmappable characters become '?'); ValueError when too long."""
        raw = str(value).encode("cp1251", errors="replace")
        if len(raw) > (self.size or self.limit):
            raise ValueError(f"text longer than {self.size or self.limit} bytes: {value!r}")
        return raw.ljust(self.size, b"\0") if self.size is not None else raw

    def decode(self, data: bytes) -> Any:
        """The text without trailing NULs."""
        return data.rstrip(b"\0").decode("cp1251", errors="replace")


def _two_digit_year(year: int) -> int:
    """The YY byte of a date; the protocol counts years from 2000."""
    if not 2000 <= year <= 2099:
        raise ValueError(f"year {year} cannot be sent: the register counts years 2000–2099")
    return year - 2000


class Date(Wire):
    """Legacy date DD MM YY ([PROTO] 11h, 22h, 23h)."""

    size = 3

    def encode(self, value: Any) -> bytes:
        """DD MM YY."""
        d: dt.date = value
        return bytes((d.day, d.month, _two_digit_year(d.year)))

    def decode(self, data: bytes) -> Any:
        """The date; 00 00 00 (never set) reads as 2000-01-01."""
        if data == b"\0\0\0":
            return dt.date(2000, 1, 1)
        try:
            return dt.date(2000 + data[2], data[1], data[0])
        except ValueError as err:
            raise ProtocolError(f"bad date bytes {data.hex()}") from err


class Time(Wire):
    """Legacy time HH MM SS ([PROTO] 11h, 21h)."""

    size = 3

    def encode(self, value: Any) -> bytes:
        """HH MM SS."""
        t: dt.time = value
        return bytes((t.hour, t.minute, t.second))

    def decode(self, data: bytes) -> Any:
        """The time of day."""
        try:
            return dt.time(data[0], data[1], data[2])
        except ValueError as err:
            raise ProtocolError(f"bad time bytes {data.hex()}") from err


class FnDate(Wire):
    """FN date YY MM DD ([PROTO] FF03h)."""

    size = 3

    def encode(self, value: Any) -> bytes:
        """YY MM DD."""
        d: dt.date = value
        return bytes((_two_digit_year(d.year), d.month, d.day))

    def decode(self, data: bytes) -> Any:
        """The date."""
        try:
            return dt.date(2000 + data[0], data[1], data[2])
        except ValueError as err:
            raise ProtocolError(f"bad FN date bytes {data.hex()}") from err


class FnDateTime(Wire):
    """FN date-time YY MM DD HH MM ([PROTO] "DATE_TIME"); all zeros means none."""

    size = 5

    def encode(self, value: Any) -> bytes:
        """YY MM DD HH MM; None as five zero bytes."""
        if value is None:
            return bytes(5)
        w: dt.datetime = value
        return bytes((_two_digit_year(w.year), w.month, w.day, w.hour, w.minute))

    def decode(self, data: bytes) -> Any:
        """The date-time to the minute, or None for all zeros."""
        if data == bytes(5):
            return None
        try:
            return dt.datetime(2000 + data[0], data[1], data[2], data[3], data[4])
        except ValueError as err:
            raise ProtocolError(f"bad FN date-time bytes {data.hex()}") from err


class Tuple(Wire):
    """`count` fixed-size items in a row (payment sums, tax groups)."""

    def __init__(self, item: Wire, count: int) -> None:
        """`count` items of the fixed-size type `item`."""
        assert item.size is not None
        self.item = item
        self.count = count
        self.size = item.size * count

    def encode(self, value: Any) -> bytes:
        """Every item in order; ValueError on a wrong count."""
        values = tuple(value)
        if len(values) != self.count:
            raise ValueError(f"expected {self.count} values, got {len(values)}")
        return b"".join(self.item.encode(v) for v in values)

    def decode(self, data: bytes) -> Any:
        """A tuple of the items."""
        step = self.item.size or 0
        return tuple(self.item.decode(data[i : i + step]) for i in range(0, len(data), step))


class Bool(Wire):
    """One byte, 0 false and anything else true."""

    size = 1

    def encode(self, value: Any) -> bytes:
        """01 or 00."""
        return b"\x01" if value else b"\x00"

    def decode(self, data: bytes) -> Any:
        """True unless 00."""
        return data[0] != 0


class Rest(Wire):
    """Raw bytes to the end of the body, at most `limit` of them."""

    def __init__(self, limit: int = 255) -> None:
        """Raw bytes, at most `limit`."""
        self.limit = limit

    def encode(self, value: Any) -> bytes:
        """The bytes as they are; ValueError when longer than `limit`."""
        raw = bytes(value)
        if len(raw) > self.limit:
            raise ValueError(f"{len(raw)} bytes, more than {self.limit}")
        return raw

    def decode(self, data: bytes) -> Any:
        """The bytes as they are."""
        return bytes(data)


U8, U16, U32 = Int(1), Int(2), Int(4)
MONEY = Int(5)
_NOT_GIVEN = b"\xff" * 5
QTY5 = Int(5)  # ×1000
QTY6 = Int(6)  # ×10⁶
PASSWORD = Int(4)

Layout = tuple[tuple[str, Wire], ...]


def pack(obj: Any, layout: Layout, optional_from: int | None = None) -> bytes:
    """The fields' bytes in layout order; absent (None) optional tail fields are left out."""
    out = bytearray()
    for index, (name, wire) in enumerate(layout):
        value = getattr(obj, name)
        if value is None and optional_from is not None and index >= optional_from:
            break  # an optional tail: nothing after it can be present either
        out += wire.encode(value)
    return bytes(out)


def unpack(data: bytes, layout: Layout, optional_from: int | None) -> dict[str, Any]:
    """Field values by name; optional tail fields missing from `data` are left out."""
    values: dict[str, Any] = {}
    pos = 0
    for index, (name, wire) in enumerate(layout):
        if optional_from is not None and index >= optional_from and pos >= len(data):
            break
        if wire.size is None:
            values[name] = wire.decode(data[pos:])
            pos = len(data)
            continue
        chunk = data[pos : pos + wire.size]
        if len(chunk) < wire.size:
            raise ProtocolError(f"body too short for field {name!r}: {data.hex()}")
        values[name] = wire.decode(chunk)
        pos += wire.size
    return values
