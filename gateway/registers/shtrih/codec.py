"""Shtrih-M commands: request/answer dataclasses <-> frame bodies. Pure, no I/O.

Every request encodes to a frame body (`to_body`) and decodes from one (`from_body`, used
by the emulator); every answer likewise (`to_body` for the emulator, `from_body` for the
driver). Each class declares its byte layout once (`LAYOUT`: field name and wire type);
both directions follow it. Integers little-endian; money 5 bytes in kopecks; legacy
quantity 5 bytes ×1000; FF46h quantity 6 bytes ×10⁶; text cp1251, 0-padded; legacy dates
DD MM YY, FN date-times YY MM DD HH MM.

[PROTO] = Shtrih-M "Протокол работы ККТ с ФН" v1.17. Layouts were checked against it and
against public drivers: pyshtrih (handlers/commands.py), kkt-shtrih (PHP, src/Response) and
the vendor's JavaPOS driver (fiscalprinter/command). Fields a model may leave out (the
extended-answer date-time, the serial's high word) are optional tails: absent on the wire,
None (or the default) in the dataclass, and never written when None.

Answers: CMD ERR data; with ERR≠0 only CMD ERR ([PROTO] p.8).
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Self, TypeVar

from gateway.domain import fiscal
from gateway.domain.errors import ProtocolError
from gateway.registers.shtrih.errors_table import device_error


class Cmd(enum.IntEnum):
    """Command codes; FFxx commands go on the wire as two bytes, FF first."""

    SHORT_STATUS = 0x10
    LONG_STATUS = 0x11
    WRITE_TABLE = 0x1E
    SET_TIME = 0x21
    SET_DATE = 0x22
    CONFIRM_DATE = 0x23
    X_REPORT = 0x40
    Z_REPORT = 0x41
    SALE = 0x80
    RETURN_SALE = 0x82
    CLOSE_RECEIPT = 0x85
    CANCEL_RECEIPT = 0x88
    OPEN_RECEIPT = 0x8D
    CONTINUE_PRINT = 0xB0
    OPEN_SHIFT = 0xE0
    DEVICE_TYPE = 0xFC
    FN_STATUS = 0xFF01
    FN_EXPIRY = 0xFF03
    FN_VERSION = 0xFF04
    FN_CANCEL_DOCUMENT = 0xFF08
    FN_REGISTRATION = 0xFF09
    FN_FIND_DOCUMENT = 0xFF0A
    FN_OPEN_SHIFT = 0xFF0B
    FN_SEND_TLV = 0xFF0C
    FN_OFD_STATUS = 0xFF39
    FN_SHIFT_PARAMS = 0xFF40
    FN_SEND_OPERATION_TLV = 0xFF4D
    FN_BEGIN_OPEN_SHIFT = 0xFF41
    FN_BEGIN_CLOSE_SHIFT = 0xFF42
    FN_CLOSE_SHIFT = 0xFF43
    FN_CLOSE_RECEIPT_V2 = 0xFF45
    FN_OPERATION_V2 = 0xFF46
    READ_MONEY_REGISTER = 0x1A
    READ_OPERATION_REGISTER = 0x1B
    CASH_IN = 0x50
    CASH_OUT = 0x51
    FN_DOCUMENT_TLV = 0xFF3A
    FN_READ_DOCUMENT_TLV = 0xFF3B


def command_bytes(cmd: int) -> bytes:
    """The command's bytes on the wire."""
    return cmd.to_bytes(2, "big") if cmd > 0xFF else bytes((cmd,))


def split_command(body: bytes) -> tuple[int, bytes]:
    """(command, rest) of a frame body; FFxx commands take two bytes."""
    if not body:
        raise ProtocolError("empty frame body")
    if body[0] == 0xFF:
        if len(body) < 2:
            raise ProtocolError("FF command without its second byte")
        return 0xFF00 | body[1], body[2:]
    return body[0], body[1:]


# --- wire types -----------------------------------------------------------------------------------


class _Wire(abc.ABC):
    """A field's wire encoding; `size` None means 'the rest of the body'."""

    size: int | None = None

    @abc.abstractmethod
    def encode(self, value: Any) -> bytes:
        """The value's bytes; ValueError when it does not fit."""

    @abc.abstractmethod
    def decode(self, data: bytes) -> Any:
        """The value of exactly `size` bytes (or the rest of the body)."""


class _Int(_Wire):
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


class _OptMoney(_Wire):
    """5-byte money where FF FF FF FF FF means 'the register computes it' ([PROTO] FF46h)."""

    size = 5

    def encode(self, value: Any) -> bytes:
        """FF×5 for None, else the sum (which must not itself be FF×5)."""
        if value is None:
            return _NOT_GIVEN
        raw = _MONEY.encode(value)
        if raw == _NOT_GIVEN:
            raise ValueError(f"{value} is the 'not given' marker FF FF FF FF FF")
        return raw

    def decode(self, data: bytes) -> Any:
        """None for FF×5, else the sum."""
        return None if data == _NOT_GIVEN else _MONEY.decode(data)


class _Ascii(_Wire):
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


class _Text(_Wire):
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


class _Date(_Wire):
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


class _Time(_Wire):
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


class _FnDate(_Wire):
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


class _FnDateTime(_Wire):
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


class _Tuple(_Wire):
    """`count` fixed-size items in a row (payment sums, tax groups)."""

    def __init__(self, item: _Wire, count: int) -> None:
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


class _Bool(_Wire):
    """One byte, 0 false and anything else true."""

    size = 1

    def encode(self, value: Any) -> bytes:
        """01 or 00."""
        return b"\x01" if value else b"\x00"

    def decode(self, data: bytes) -> Any:
        """True unless 00."""
        return data[0] != 0


class _Rest(_Wire):
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


U8, U16, U32 = _Int(1), _Int(2), _Int(4)
_MONEY = _Int(5)
_NOT_GIVEN = b"\xff" * 5
MONEY = _MONEY
QTY5 = _Int(5)  # ×1000
QTY6 = _Int(6)  # ×10⁶
PASSWORD = _Int(4)
MAX_TLV_BLOCK = 249  # FF0Ch: 255 (one LEN byte) - FF 0C - password(4)

Layout = tuple[tuple[str, _Wire], ...]


def _pack(obj: Any, layout: Layout, optional_from: int | None = None) -> bytes:
    """The fields' bytes in layout order; absent (None) optional tail fields are left out."""
    out = bytearray()
    for index, (name, wire) in enumerate(layout):
        value = getattr(obj, name)
        if value is None and optional_from is not None and index >= optional_from:
            break  # an optional tail: nothing after it can be present either
        out += wire.encode(value)
    return bytes(out)


def _unpack(data: bytes, layout: Layout, optional_from: int | None) -> dict[str, Any]:
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


# --- message bases --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """A command to the register; carries the access password ([PROTO] "Пароли")."""

    COMMAND: ClassVar[Cmd]
    LAYOUT: ClassVar[Layout] = ()
    HAS_PASSWORD: ClassVar[bool] = True
    password: int = 30

    def to_body(self) -> bytes:
        """CMD [password] params."""
        head = command_bytes(self.COMMAND)
        if self.HAS_PASSWORD:
            head += PASSWORD.encode(self.password)
        return head + _pack(self, self.LAYOUT)

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        """Parse a request body (the emulator's side)."""
        command, rest = split_command(body)
        if command != cls.COMMAND:
            raise ProtocolError(f"body is command {command:#x}, not {cls.COMMAND:#x}")
        kwargs: dict[str, Any] = {}
        if cls.HAS_PASSWORD:
            if len(rest) < 4:
                raise ProtocolError(f"command {command:#x}: no password")
            kwargs["password"] = PASSWORD.decode(rest[:4])
            rest = rest[4:]
        kwargs.update(_unpack(rest, cls.LAYOUT, None))
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class Answer:
    """A register's answer with ERR = 0."""

    COMMAND: ClassVar[Cmd]
    LAYOUT: ClassVar[Layout] = ()
    OPTIONAL_FROM: ClassVar[int | None] = None  # fields from this index on may be absent

    def to_body(self) -> bytes:
        """CMD 00 data."""
        return command_bytes(self.COMMAND) + b"\x00" + _pack(self, self.LAYOUT, self.OPTIONAL_FROM)

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        """Parse an answer body (the driver's side); ERR must be 0."""
        return cls(**_unpack(cls._data_of(body), cls.LAYOUT, cls.OPTIONAL_FROM))

    @classmethod
    def _data_of(cls, body: bytes) -> bytes:
        """The data after CMD ERR; ProtocolError for another command, ShtrihError for ERR≠0."""
        command, rest = split_command(body)
        if command != cls.COMMAND:
            raise ProtocolError(f"answer is for command {command:#x}, expected {cls.COMMAND:#x}")
        if not rest:
            raise ProtocolError(f"answer to {command:#x} has no error byte")
        if rest[0] != 0:
            raise device_error(rest[0], command)
        return rest[1:]


def _op() -> Layout:
    """The layout of answers that carry only the operator number."""
    return (("operator", U8),)


# --- status and identity --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShortStatusRequest(Request):
    """10h short status."""

    COMMAND: ClassVar[Cmd] = Cmd.SHORT_STATUS


@dataclass(frozen=True, slots=True)
class ShortStatus(Answer):
    """10h answer ([PROTO] 10h; pyshtrih; JavaPOS ReadShortStatus): see `to_body` for the bytes."""

    COMMAND: ClassVar[Cmd] = Cmd.SHORT_STATUS
    operator: int
    flags: int
    mode: int
    submode: int
    receipt_operations: int
    battery_voltage: int
    power_voltage: int
    last_print_result: int | None = None

    def to_body(self) -> bytes:
        """op, flags(2), mode, submode, ops lo, battery, power, 2 old errors, ops hi, 3 zeros."""
        # [PROTO] 10h: receipt operations are split, low byte at data[5], high byte at data[10];
        # data[8] and data[9] are the old ФП/ЭКЛЗ error codes (pyshtrih), always 0 with a ФН.
        ops = U16.encode(self.receipt_operations)
        data = bytes((self.operator,)) + U16.encode(self.flags)
        data += bytes((self.mode, self.submode, ops[0], self.battery_voltage, self.power_voltage))
        data += bytes((0, 0, ops[1], 0, 0, 0))
        if self.last_print_result is not None:
            data += bytes((self.last_print_result,))
        return command_bytes(self.COMMAND) + b"\x00" + data

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        """Parse the 10h answer; the print result byte is there only on some models."""
        d = cls._data_of(body)
        if len(d) < 14:
            raise ProtocolError(f"10h answer too short: {body.hex()}")
        return cls(
            operator=d[0],
            flags=U16.decode(d[1:3]),
            mode=d[3],
            submode=d[4],
            receipt_operations=d[5] | d[10] << 8,
            battery_voltage=d[6],
            power_voltage=d[7],
            last_print_result=d[14] if len(d) > 14 else None,
        )


@dataclass(frozen=True, slots=True)
class LongStatusRequest(Request):
    """11h long status."""

    COMMAND: ClassVar[Cmd] = Cmd.LONG_STATUS


@dataclass(frozen=True, slots=True)
class LongStatus(Answer):
    """11h answer: 48-byte layout ([PROTO] 11h, pyshtrih, JavaPOS LongPrinterStatus), serial hi."""

    COMMAND: ClassVar[Cmd] = Cmd.LONG_STATUS
    LAYOUT: ClassVar[Layout] = (
        ("operator", U8),
        ("firmware_version", _Ascii(2)),
        ("firmware_build", U16),
        ("firmware_date", _Date()),
        ("hall", U8),
        ("document_number", U16),
        ("flags", U16),
        ("mode", U8),
        ("submode", U8),
        ("port", U8),
        ("fp_version", _Ascii(2)),
        ("fp_build", U16),
        ("fp_date", _Date()),
        ("date", _Date()),
        ("time", _Time()),
        ("fp_flags", U8),
        ("serial_low", U32),
        ("last_shift", U16),
        ("free_fp_records", U16),
        ("registrations", U8),
        ("registrations_left", U8),
        ("inn", _Int(6)),
        ("serial_high", U16),
    )
    OPTIONAL_FROM: ClassVar[int | None] = 22
    operator: int
    firmware_version: str
    firmware_build: int
    firmware_date: dt.date
    hall: int
    document_number: int
    flags: int
    mode: int
    submode: int
    port: int
    fp_version: str
    fp_build: int
    fp_date: dt.date
    date: dt.date
    time: dt.time
    fp_flags: int
    serial: int
    last_shift: int
    free_fp_records: int
    registrations: int
    registrations_left: int
    inn: int

    @property
    def serial_low(self) -> int:
        """Low 4 bytes of the serial."""
        return self.serial & 0xFFFFFFFF

    @property
    def serial_high(self) -> int:
        """High 2 bytes of the serial (newer firmware appends them)."""
        return self.serial >> 32 & 0xFFFF

    def to_body(self) -> bytes:
        """CMD 00 data, always with the serial's 2 high bytes ([PROTO] 11h "50 байт")."""
        if not 0 <= self.serial < 1 << 48:
            raise ValueError(f"serial {self.serial} does not fit in 6 bytes")
        return Answer.to_body(self)

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        """Parse, joining the serial's low and high parts."""
        values = _unpack(cls._data_of(body), cls.LAYOUT, cls.OPTIONAL_FROM)
        values["serial"] = values.pop("serial_low") | values.pop("serial_high", 0) << 32
        return cls(**values)


@dataclass(frozen=True, slots=True)
class DeviceTypeRequest(Request):
    """FCh device type; the only command without a password."""

    COMMAND: ClassVar[Cmd] = Cmd.DEVICE_TYPE
    HAS_PASSWORD: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class DeviceType(Answer):
    """FCh answer: type, subtype, protocol version and subversion, model, language, name."""

    COMMAND: ClassVar[Cmd] = Cmd.DEVICE_TYPE
    LAYOUT: ClassVar[Layout] = (
        ("device_type", U8),
        ("subtype", U8),
        ("protocol_version", U8),
        ("protocol_subversion", U8),
        ("model", U8),
        ("language", U8),
        ("name", _Text(None)),
    )
    device_type: int
    subtype: int
    protocol_version: int
    protocol_subversion: int
    model: int
    language: int
    name: str


# --- clock ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetTimeRequest(Request):
    """21h set time HH MM SS (shift closed)."""

    COMMAND: ClassVar[Cmd] = Cmd.SET_TIME
    LAYOUT: ClassVar[Layout] = (("time", _Time()),)
    time: dt.time = dt.time()


@dataclass(frozen=True, slots=True)
class SetTimeAnswer(Answer):
    """21h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.SET_TIME


@dataclass(frozen=True, slots=True)
class SetDateRequest(Request):
    """22h set date DD MM YY; the register then waits for 23h (mode 6)."""

    COMMAND: ClassVar[Cmd] = Cmd.SET_DATE
    LAYOUT: ClassVar[Layout] = (("date", _Date()),)
    date: dt.date = dt.date(2000, 1, 1)


@dataclass(frozen=True, slots=True)
class SetDateAnswer(Answer):
    """22h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.SET_DATE


@dataclass(frozen=True, slots=True)
class ConfirmDateRequest(Request):
    """23h confirm the date set by 22h."""

    COMMAND: ClassVar[Cmd] = Cmd.CONFIRM_DATE
    LAYOUT: ClassVar[Layout] = (("date", _Date()),)
    date: dt.date = dt.date(2000, 1, 1)


@dataclass(frozen=True, slots=True)
class ConfirmDateAnswer(Answer):
    """23h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.CONFIRM_DATE


# --- reports, shifts, legacy receipts -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class XReportRequest(Request):
    """40h X report."""

    COMMAND: ClassVar[Cmd] = Cmd.X_REPORT


@dataclass(frozen=True, slots=True)
class XReportAnswer(Answer):
    """40h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.X_REPORT
    LAYOUT: ClassVar[Layout] = _op()
    operator: int = 30


@dataclass(frozen=True, slots=True)
class ZReportRequest(Request):
    """41h Z report (closes the shift)."""

    COMMAND: ClassVar[Cmd] = Cmd.Z_REPORT


@dataclass(frozen=True, slots=True)
class ZReportAnswer(Answer):
    """41h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.Z_REPORT
    LAYOUT: ClassVar[Layout] = _op()
    operator: int = 30


@dataclass(frozen=True, slots=True)
class OpenShiftRequest(Request):
    """E0h open shift."""

    COMMAND: ClassVar[Cmd] = Cmd.OPEN_SHIFT


@dataclass(frozen=True, slots=True)
class OpenShiftAnswer(Answer):
    """E0h answer; [PROTO] gives its length as 2 (CMD ERR), so the operator byte may be absent."""

    COMMAND: ClassVar[Cmd] = Cmd.OPEN_SHIFT
    LAYOUT: ClassVar[Layout] = _op()
    OPTIONAL_FROM: ClassVar[int | None] = 0
    operator: int = 30


@dataclass(frozen=True, slots=True)
class OpenReceiptRequest(Request):
    """8Dh open receipt: 0 sale, 1 buy, 2 sale return, 3 buy return."""

    COMMAND: ClassVar[Cmd] = Cmd.OPEN_RECEIPT
    LAYOUT: ClassVar[Layout] = (("receipt_type", U8),)
    receipt_type: int = 0


@dataclass(frozen=True, slots=True)
class OpenReceiptAnswer(Answer):
    """8Dh answer."""

    COMMAND: ClassVar[Cmd] = Cmd.OPEN_RECEIPT
    LAYOUT: ClassVar[Layout] = _op()
    operator: int = 30


_LINE_LAYOUT: Layout = (
    ("quantity", QTY5),
    ("price", MONEY),
    ("department", U8),
    ("taxes", _Tuple(U8, 4)),
    ("text", _Text(40)),
)


@dataclass(frozen=True, slots=True)
class SaleRequest(Request):
    """80h sale line: qty ×1000, price, department, tax groups 1..4, text(40)."""

    COMMAND: ClassVar[Cmd] = Cmd.SALE
    LAYOUT: ClassVar[Layout] = _LINE_LAYOUT
    quantity: int = 1000
    price: int = 0
    department: int = 1
    taxes: tuple[int, int, int, int] = (0, 0, 0, 0)
    text: str = ""


@dataclass(frozen=True, slots=True)
class SaleAnswer(Answer):
    """80h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.SALE
    LAYOUT: ClassVar[Layout] = _op()
    operator: int = 30


@dataclass(frozen=True, slots=True)
class ReturnSaleRequest(Request):
    """82h sale-return line, same layout as 80h."""

    COMMAND: ClassVar[Cmd] = Cmd.RETURN_SALE
    LAYOUT: ClassVar[Layout] = _LINE_LAYOUT
    quantity: int = 1000
    price: int = 0
    department: int = 1
    taxes: tuple[int, int, int, int] = (0, 0, 0, 0)
    text: str = ""


@dataclass(frozen=True, slots=True)
class ReturnSaleAnswer(Answer):
    """82h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.RETURN_SALE
    LAYOUT: ClassVar[Layout] = _op()
    operator: int = 30


@dataclass(frozen=True, slots=True)
class CloseReceiptRequest(Request):
    """85h close: 4 payment sums (cash first), discount % ×100 (int16), tax groups, text(40)."""

    COMMAND: ClassVar[Cmd] = Cmd.CLOSE_RECEIPT
    LAYOUT: ClassVar[Layout] = (
        ("payments", _Tuple(MONEY, 4)),
        ("discount_percent_x100", _Int(2, signed=True)),
        ("taxes", _Tuple(U8, 4)),
        ("text", _Text(40)),
    )
    payments: tuple[int, int, int, int] = (0, 0, 0, 0)
    discount_percent_x100: int = 0
    taxes: tuple[int, int, int, int] = (0, 0, 0, 0)
    text: str = ""


@dataclass(frozen=True, slots=True)
class CloseReceiptAnswer(Answer):
    """85h answer: op, change(5)."""

    COMMAND: ClassVar[Cmd] = Cmd.CLOSE_RECEIPT
    LAYOUT: ClassVar[Layout] = (("operator", U8), ("change", MONEY))
    operator: int = 30
    change: int = 0


@dataclass(frozen=True, slots=True)
class CancelReceiptRequest(Request):
    """88h cancel the open receipt."""

    COMMAND: ClassVar[Cmd] = Cmd.CANCEL_RECEIPT


@dataclass(frozen=True, slots=True)
class CancelReceiptAnswer(Answer):
    """88h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.CANCEL_RECEIPT
    LAYOUT: ClassVar[Layout] = _op()
    operator: int = 30


@dataclass(frozen=True, slots=True)
class ContinuePrintRequest(Request):
    """B0h continue printing after paper was loaded."""

    COMMAND: ClassVar[Cmd] = Cmd.CONTINUE_PRINT


@dataclass(frozen=True, slots=True)
class ContinuePrintAnswer(Answer):
    """B0h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.CONTINUE_PRINT
    LAYOUT: ClassVar[Layout] = _op()
    operator: int = 30


# --- ФН commands ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FnStatusRequest(Request):
    """FF01h FN status."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_STATUS


@dataclass(frozen=True, slots=True)
class FnStatus(Answer):
    """FF01h answer: phase, current doc, doc data, shift, warnings, last FD time, FN No, last FD."""

    # [PROTO] FF01h pp.42–43 (33 bytes); the same order in pyshtrih and JavaPOS FSReadStatus.

    COMMAND: ClassVar[Cmd] = Cmd.FN_STATUS
    LAYOUT: ClassVar[Layout] = (
        ("life_phase", U8),
        ("current_document", U8),
        ("document_data", U8),
        ("shift_open", _Bool()),
        ("warnings", U8),
        ("last_document_datetime", _FnDateTime()),
        ("fn_number", _Ascii(16)),
        ("last_document_number", U32),
    )
    life_phase: int
    current_document: int
    document_data: int
    shift_open: bool
    warnings: int
    last_document_datetime: dt.datetime | None
    fn_number: str
    last_document_number: int


@dataclass(frozen=True, slots=True)
class FnExpiryRequest(Request):
    """FF03h FN validity."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_EXPIRY


@dataclass(frozen=True, slots=True)
class FnExpiry(Answer):
    """FF03h answer: expiry YY MM DD, [re-registrations left, done]."""

    # [PROTO] v1.17 gives the answer as 6 bytes (the date only); pyshtrih and the vendor's
    # JavaPOS (FSReadExpDate) read the two counters after it, so they are optional here.
    COMMAND: ClassVar[Cmd] = Cmd.FN_EXPIRY
    LAYOUT: ClassVar[Layout] = (
        ("expiry", _FnDate()),
        ("registrations_left", U8),
        ("registrations_done", U8),
    )
    OPTIONAL_FROM: ClassVar[int | None] = 1
    expiry: dt.date
    registrations_left: int | None = None
    registrations_done: int | None = None


@dataclass(frozen=True, slots=True)
class FnVersionRequest(Request):
    """FF04h FN firmware version."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_VERSION


@dataclass(frozen=True, slots=True)
class FnVersion(Answer):
    """FF04h answer: version (16 ASCII), type (0 debug, 1 serial)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_VERSION
    LAYOUT: ClassVar[Layout] = (("version", _Ascii(16)), ("fn_type", U8))
    version: str
    fn_type: int


@dataclass(frozen=True, slots=True)
class FnCancelDocumentRequest(Request):
    """FF08h cancel the FN document in progress."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_CANCEL_DOCUMENT


@dataclass(frozen=True, slots=True)
class FnCancelDocumentAnswer(Answer):
    """FF08h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_CANCEL_DOCUMENT


@dataclass(frozen=True, slots=True)
class FnFindDocumentRequest(Request):
    """FF0Ah find a fiscal document by number."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_FIND_DOCUMENT
    LAYOUT: ClassVar[Layout] = (("number", U32),)
    number: int = 0


@dataclass(frozen=True, slots=True)
class FnDocument(Answer):
    """FF0Ah answer: type, OFD ack, datetime, FD, FP; a receipt (type 3) adds op(1), total(5)."""

    # [PROTO] FF0Ah p.46 gives type and OFD ack, then "data by document type"; the common head
    # (datetime, FD, FP) and the receipt part follow kkt-shtrih's FNFindDocument.

    COMMAND: ClassVar[Cmd] = Cmd.FN_FIND_DOCUMENT
    document_type: int
    ofd_acknowledged: bool
    datetime: dt.datetime | None
    number: int
    fiscal_sign: int
    receipt_type: int | None = None
    total: int | None = None
    tail: bytes = b""

    _HEAD: ClassVar[Layout] = (
        ("document_type", U8),
        ("ofd_acknowledged", _Bool()),
        ("datetime", _FnDateTime()),
        ("number", U32),
        ("fiscal_sign", U32),
    )
    _RECEIPT: ClassVar[Layout] = (("receipt_type", U8), ("total", MONEY))

    def to_body(self) -> bytes:
        """Head, then the receipt part for receipts, then any tail."""
        data = _pack(self, self._HEAD)
        if self.document_type == fiscal.DOC_TYPE_RECEIPT:
            if self.receipt_type is None or self.total is None:
                raise ValueError("a receipt (type 3) needs receipt_type and total")
            data += _pack(self, self._RECEIPT)
        return command_bytes(self.COMMAND) + b"\x00" + data + self.tail

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        """Parse the head; decode the receipt part for receipts, keep the rest as `tail`."""
        data = cls._data_of(body)
        values = _unpack(data[:15], cls._HEAD, None)
        tail = data[15:]
        if values["document_type"] == fiscal.DOC_TYPE_RECEIPT and len(tail) >= 6:
            values.update(_unpack(tail[:6], cls._RECEIPT, None))
            tail = tail[6:]
        return cls(tail=tail, **values)


@dataclass(frozen=True, slots=True)
class FnBeginOpenShiftRequest(Request):
    """FF41h begin opening a shift (TLVs may follow)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_BEGIN_OPEN_SHIFT


@dataclass(frozen=True, slots=True)
class FnBeginOpenShiftAnswer(Answer):
    """FF41h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_BEGIN_OPEN_SHIFT


@dataclass(frozen=True, slots=True)
class FnOpenShiftRequest(Request):
    """FF0Bh open the shift."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_OPEN_SHIFT


_SHIFT_DOC: Layout = (
    ("shift_number", U16),
    ("document_number", U32),
    ("fiscal_sign", U32),
    ("datetime", _FnDateTime()),
)


@dataclass(frozen=True, slots=True)
class FnOpenShiftAnswer(Answer):
    """FF0Bh answer: shift No(2), FD(4), FP(4), [datetime(5) with the extended-answer setting]."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_OPEN_SHIFT
    LAYOUT: ClassVar[Layout] = _SHIFT_DOC
    OPTIONAL_FROM: ClassVar[int | None] = 3
    shift_number: int
    document_number: int
    fiscal_sign: int
    datetime: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class FnBeginCloseShiftRequest(Request):
    """FF42h begin closing the shift (TLVs may follow)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_BEGIN_CLOSE_SHIFT


@dataclass(frozen=True, slots=True)
class FnBeginCloseShiftAnswer(Answer):
    """FF42h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_BEGIN_CLOSE_SHIFT


@dataclass(frozen=True, slots=True)
class FnCloseShiftRequest(Request):
    """FF43h close the shift (the Z report)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_CLOSE_SHIFT


@dataclass(frozen=True, slots=True)
class FnCloseShiftAnswer(Answer):
    """FF43h answer: shift No(2), FD(4), FP(4), [datetime(5)] ([PROTO] FF43h "13 (18) байт")."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_CLOSE_SHIFT
    LAYOUT: ClassVar[Layout] = _SHIFT_DOC
    OPTIONAL_FROM: ClassVar[int | None] = 3
    shift_number: int
    document_number: int
    fiscal_sign: int
    datetime: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class FnSendTlvRequest(Request):
    """FF0Ch TLV data for the open document (tag u16, len u16, value)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_SEND_TLV
    # [PROTO] FF0Ch allows "мах 250 байт", but FF 0C + password leave 249 in a 255-byte frame.
    LAYOUT: ClassVar[Layout] = (("tlv", _Rest(MAX_TLV_BLOCK)),)
    tlv: bytes = b""


@dataclass(frozen=True, slots=True)
class FnSendTlvAnswer(Answer):
    """FF0Ch answer."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_SEND_TLV


@dataclass(frozen=True, slots=True)
class FnSendOperationTlvRequest(Request):
    """FF4Dh TLV data bound to the last operation (FF46h) of the open receipt: item tags."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_SEND_OPERATION_TLV
    LAYOUT: ClassVar[Layout] = (("tlv", _Rest(MAX_TLV_BLOCK)),)
    tlv: bytes = b""


@dataclass(frozen=True, slots=True)
class FnSendOperationTlvAnswer(Answer):
    """FF4Dh answer."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_SEND_OPERATION_TLV


@dataclass(frozen=True, slots=True)
class FnOfdStatusRequest(Request):
    """FF39h OFD exchange status."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_OFD_STATUS


@dataclass(frozen=True, slots=True)
class FnOfdStatus(Answer):
    """FF39h answer: exchange status, read flag, count(2), first doc No(4), its datetime(5)."""

    # [PROTO] FF39h p.51 (16 bytes); pyshtrih, kkt-shtrih and JavaPOS FSReadCommStatus agree.

    COMMAND: ClassVar[Cmd] = Cmd.FN_OFD_STATUS
    LAYOUT: ClassVar[Layout] = (
        ("exchange_status", U8),
        ("read_flag", U8),
        ("count", U16),
        ("first_number", U32),
        ("first_datetime", _FnDateTime()),
    )
    exchange_status: int
    read_flag: int
    count: int
    first_number: int
    first_datetime: dt.datetime | None


@dataclass(frozen=True, slots=True)
class FnCloseReceiptV2Request(Request):
    """FF45h close receipt: 16 payment sums, rounding, 6 tax sums, tax system, text(≤64)."""

    # [PROTO] FF45h pp.52–53 (182 bytes with 64 bytes of text): sums 1 cash, 2–13 reported to
    # the OFD as electronic, 14 prepayment, 15 credit, 16 counter-provision; rounding in kopecks;
    # taxes 1..6 = VAT 20 (18)%, 10%, 0% turnover, no-VAT turnover, 20/120, 10/110; tax system 1055.

    COMMAND: ClassVar[Cmd] = Cmd.FN_CLOSE_RECEIPT_V2
    LAYOUT: ClassVar[Layout] = (
        ("payments", _Tuple(MONEY, 16)),
        ("rounding", U8),
        ("taxes", _Tuple(MONEY, 6)),
        ("tax_system", U8),
        ("text", _Text(None, 64)),
    )
    payments: tuple[int, ...] = (0,) * 16
    rounding: int = 0
    taxes: tuple[int, ...] = (0,) * 6
    tax_system: int = 1
    text: str = ""


@dataclass(frozen=True, slots=True)
class FnCloseReceiptV2Answer(Answer):
    """FF45h answer: change(5), FD(4), FP(4), [datetime(5)] ([PROTO] FF45h "16 (21) байт")."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_CLOSE_RECEIPT_V2
    LAYOUT: ClassVar[Layout] = (
        ("change", MONEY),
        ("document_number", U32),
        ("fiscal_sign", U32),
        ("datetime", _FnDateTime()),
    )
    OPTIONAL_FROM: ClassVar[int | None] = 3
    change: int
    document_number: int
    fiscal_sign: int
    datetime: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class FnOperationV2Request(Request):
    """FF46h receipt line: operation, qty ×10⁶, price, sum, tax, rate, dept, 1214, 1212, name."""

    # [PROTO] FF46h pp.53–54 (160 bytes with a 128-byte name); sum FF×5: the register computes
    # price × quantity (a given sum may differ from it by ±1 kopeck); tax FF×5: not given.

    COMMAND: ClassVar[Cmd] = Cmd.FN_OPERATION_V2
    LAYOUT: ClassVar[Layout] = (
        ("operation", U8),
        ("quantity", QTY6),
        ("price", MONEY),
        ("amount", _OptMoney()),
        ("tax_amount", _OptMoney()),
        ("tax_rate", U8),
        ("department", U8),
        ("payment_method", U8),
        ("payment_object", U8),
        ("name", _Text(None, 128)),
    )
    operation: int = 1
    quantity: int = 1_000_000
    price: int = 0
    amount: int | None = None
    tax_amount: int | None = None
    tax_rate: int = 8
    department: int = 1
    payment_method: int = 4
    payment_object: int = 1
    name: str = ""


@dataclass(frozen=True, slots=True)
class FnOperationV2Answer(Answer):
    """FF46h answer (empty)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_OPERATION_V2


@dataclass(frozen=True, slots=True)
class WriteTableRequest(Request):
    """1Eh write one field of a settings table ([PROTO] 1Eh p.23): table, row(2), field, value."""

    COMMAND: ClassVar[Cmd] = Cmd.WRITE_TABLE
    LAYOUT: ClassVar[Layout] = (
        ("table", U8),
        ("row", U16),
        ("field", U8),
        ("value", _Rest(40)),
    )
    table: int = 0
    row: int = 0
    field: int = 0
    value: bytes = b""


@dataclass(frozen=True, slots=True)
class WriteTableAnswer(Answer):
    """1Eh answer: only the error byte."""

    COMMAND: ClassVar[Cmd] = Cmd.WRITE_TABLE


@dataclass(frozen=True, slots=True)
class FnShiftParamsRequest(Request):
    """FF40h current shift parameters ([PROTO] FF40h p.51)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_SHIFT_PARAMS


@dataclass(frozen=True, slots=True)
class FnShiftParams(Answer):
    """FF40h answer: shift state(1), shift number(2), receipt number(2) ([PROTO] p.51)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_SHIFT_PARAMS
    LAYOUT: ClassVar[Layout] = (
        ("shift_open", _Bool()),
        ("shift_number", U16),
        ("receipt_number", U16),
    )
    shift_open: bool
    shift_number: int
    receipt_number: int


@dataclass(frozen=True, slots=True)
class FnRegistrationRequest(Request):
    """FF09h totals of the last registration ([PROTO] FF09h p.44)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_REGISTRATION


@dataclass(frozen=True, slots=True)
class FnRegistration(Answer):
    """FF09h answer: date-time(5), ИНН(12), registration number(20), tax systems(1), work mode(1),
    then fields that differ between ФФД versions ([PROTO] p.44–45), kept raw."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_REGISTRATION
    LAYOUT: ClassVar[Layout] = (
        ("datetime", _FnDateTime()),
        ("inn", _Ascii(12)),
        ("registration_number", _Ascii(20)),
        ("tax_systems", U8),
        ("work_mode", U8),
        ("rest", _Rest()),
    )
    datetime: dt.datetime | None
    inn: str
    registration_number: str
    tax_systems: int
    work_mode: int
    rest: bytes = b""


# FF46h tax-rate byte: bits 01h 20%, 02h 10%, 04h 0%, 08h no VAT, 10h 20/120, 20h 10/110
# ([PROTO] FF46h, pyshtrih); the 2025–2026 rates 81h–CCh follow the vendor's JavaPOS
# (getVatCodeShtrih, February 2026; its Shtrih-Nano branch uses 90h/A0h for 22% and 22/122).
VAT_TO_TAX_RATE: Mapping[fiscal.Vat, int] = MappingProxyType(
    {
        fiscal.Vat.VAT20: 0x01,
        fiscal.Vat.VAT10: 0x02,
        fiscal.Vat.VAT0: 0x04,
        fiscal.Vat.NONE: 0x08,
        fiscal.Vat.VAT120: 0x10,
        fiscal.Vat.VAT110: 0x20,
        fiscal.Vat.VAT5: 0x81,
        fiscal.Vat.VAT7: 0x82,
        fiscal.Vat.VAT105: 0x84,
        fiscal.Vat.VAT107: 0x88,
        fiscal.Vat.VAT22: 0xCB,
        fiscal.Vat.VAT122: 0xCC,
    }
)
TAX_RATE_TO_VAT: Mapping[int, fiscal.Vat] = MappingProxyType(
    {v: k for k, v in VAT_TO_TAX_RATE.items()}
)


# --- TLV ------------------------------------------------------------------------------------------


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


# --- cash in and out, registers, documents as TLV -------------------------------------------------


@dataclass(frozen=True, slots=True)
class CashInRequest(Request):
    """50h Внесение: password, sum(5) ([PROTO] 50h p.28, 10 bytes)."""

    COMMAND: ClassVar[Cmd] = Cmd.CASH_IN
    LAYOUT: ClassVar[Layout] = (("amount", MONEY),)
    amount: int = 0


@dataclass(frozen=True, slots=True)
class CashInAnswer(Answer):
    """50h answer: operator, through document number(2) ([PROTO] 50h p.28, 5 bytes)."""

    COMMAND: ClassVar[Cmd] = Cmd.CASH_IN
    LAYOUT: ClassVar[Layout] = (("operator", U8), ("document_number", U16))
    operator: int = 30
    document_number: int = 0


@dataclass(frozen=True, slots=True)
class CashOutRequest(Request):
    """51h Выплата: password, sum(5) ([PROTO] 51h p.28, 10 bytes)."""

    COMMAND: ClassVar[Cmd] = Cmd.CASH_OUT
    LAYOUT: ClassVar[Layout] = (("amount", MONEY),)
    amount: int = 0


@dataclass(frozen=True, slots=True)
class CashOutAnswer(Answer):
    """51h answer: operator, through document number(2) ([PROTO] 51h p.28, 5 bytes)."""

    COMMAND: ClassVar[Cmd] = Cmd.CASH_OUT
    LAYOUT: ClassVar[Layout] = (("operator", U8), ("document_number", U16))
    operator: int = 30
    document_number: int = 0


@dataclass(frozen=True, slots=True)
class MoneyRegisterRequest(Request):
    """1Ah Запрос денежного регистра: password, register number(1) ([PROTO] 1Ah p.22, 6 bytes).

    [PROTO] also allows a 2-byte К-register number on some models; the registers the driver
    reads are all below 256 ([GUIDE] pp.5–7), so only the 1-byte form is sent.
    """

    COMMAND: ClassVar[Cmd] = Cmd.READ_MONEY_REGISTER
    LAYOUT: ClassVar[Layout] = (("register", U8),)
    register: int = 0


@dataclass(frozen=True, slots=True)
class MoneyRegister(Answer):
    """1Ah answer: operator, contents(6) in kopecks ([PROTO] 1Ah p.22, 9 bytes)."""

    COMMAND: ClassVar[Cmd] = Cmd.READ_MONEY_REGISTER
    LAYOUT: ClassVar[Layout] = (("operator", U8), ("value", _Int(6)))
    operator: int
    value: int


@dataclass(frozen=True, slots=True)
class OperationRegisterRequest(Request):
    """1Bh Запрос операционного регистра: password, register number(1) ([PROTO] 1Bh p.22)."""

    COMMAND: ClassVar[Cmd] = Cmd.READ_OPERATION_REGISTER
    LAYOUT: ClassVar[Layout] = (("register", U8),)
    register: int = 0


@dataclass(frozen=True, slots=True)
class OperationRegister(Answer):
    """1Bh answer: operator, contents(2) ([PROTO] 1Bh pp.22–23, 5 bytes)."""

    COMMAND: ClassVar[Cmd] = Cmd.READ_OPERATION_REGISTER
    LAYOUT: ClassVar[Layout] = (("operator", U8), ("value", U16))
    operator: int
    value: int


@dataclass(frozen=True, slots=True)
class FnDocumentTlvRequest(Request):
    """FF3Ah ask the ФН for a fiscal document as TLV: document number(4) ([PROTO] p.50)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_DOCUMENT_TLV
    LAYOUT: ClassVar[Layout] = (("number", U32),)
    number: int = 0


@dataclass(frozen=True, slots=True)
class FnDocumentTlv(Answer):
    """FF3Ah answer: document type (its STLV tag, 2), document length (2) ([PROTO] p.50).

    The `length` bytes of the document then come in FF3Bh blocks.
    """

    COMMAND: ClassVar[Cmd] = Cmd.FN_DOCUMENT_TLV
    LAYOUT: ClassVar[Layout] = (("document_type", U16), ("length", U16))
    document_type: int
    length: int


@dataclass(frozen=True, slots=True)
class FnReadDocumentTlvRequest(Request):
    """FF3Bh read the next TLV block of the document asked for by FF3Ah ([PROTO] p.50)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_READ_DOCUMENT_TLV


@dataclass(frozen=True, slots=True)
class FnDocumentTlvBlock(Answer):
    """FF3Bh answer: TLV data (N bytes) ([PROTO] p.50, 3+N bytes)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_READ_DOCUMENT_TLV
    # A frame carries at most 255 bytes: FF 3B and the error byte leave 252 for data.
    LAYOUT: ClassVar[Layout] = (("tlv", _Rest(252)),)
    tlv: bytes = b""


# --- dispatch -------------------------------------------------------------------------------------

A = TypeVar("A", bound=Answer)

_REQUESTS: Mapping[int, type[Request]] = MappingProxyType(
    {
        cls.COMMAND: cls
        for cls in (
            ShortStatusRequest,
            LongStatusRequest,
            DeviceTypeRequest,
            SetTimeRequest,
            SetDateRequest,
            ConfirmDateRequest,
            XReportRequest,
            ZReportRequest,
            OpenShiftRequest,
            OpenReceiptRequest,
            SaleRequest,
            ReturnSaleRequest,
            CloseReceiptRequest,
            CancelReceiptRequest,
            ContinuePrintRequest,
            FnStatusRequest,
            FnExpiryRequest,
            FnVersionRequest,
            FnCancelDocumentRequest,
            FnFindDocumentRequest,
            FnBeginOpenShiftRequest,
            FnOpenShiftRequest,
            FnBeginCloseShiftRequest,
            FnCloseShiftRequest,
            FnSendTlvRequest,
            FnSendOperationTlvRequest,
            FnOfdStatusRequest,
            FnShiftParamsRequest,
            FnRegistrationRequest,
            WriteTableRequest,
            FnCloseReceiptV2Request,
            FnOperationV2Request,
            CashInRequest,
            CashOutRequest,
            MoneyRegisterRequest,
            OperationRegisterRequest,
            FnDocumentTlvRequest,
            FnReadDocumentTlvRequest,
        )
    }
)


def encode_request(req: Request) -> bytes:
    """The request's frame body."""
    return req.to_body()


def decode_request(body: bytes) -> Request:
    """Parse any known request (the emulator's side)."""
    command, _ = split_command(body)
    cls = _REQUESTS.get(command)
    if cls is None:
        raise ProtocolError(f"unknown command {command:#x}")
    try:
        return cls.from_body(body)
    except (ValueError, IndexError) as err:
        raise ProtocolError(f"malformed command {command:#x}: {err}") from err


def encode_answer(answer: Answer) -> bytes:
    """The answer's frame body with ERR = 0."""
    return answer.to_body()


def encode_error(command: int, code: int) -> bytes:
    """An error answer: CMD ERR only ([PROTO] p.8); `code` 01h–FFh."""
    if not 0 < code <= 0xFF:
        raise ValueError(f"error code {code} is not 1..255")
    return command_bytes(command) + bytes((code,))


def answer_error_code(body: bytes) -> int:
    """The ERR byte of an answer body."""
    _, rest = split_command(body)
    if not rest:
        raise ProtocolError(f"answer without an error byte: {body.hex()}")
    return rest[0]


def decode_answer(body: bytes, cls: type[A]) -> A:
    """Parse an answer as `cls`; ERR≠0 raises ShtrihError, anything unparsable ProtocolError."""
    try:
        return cls.from_body(body)
    except (ValueError, IndexError) as err:
        raise ProtocolError(f"malformed answer {body.hex()}: {err}") from err


def fields_of(obj: Request | Answer) -> dict[str, Any]:
    """The dataclass fields as a dict (for logs and tests)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
