"""Status and identity: 10h short status, 11h long status, FCh device type. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar, Self

from gateway.domain.errors import ProtocolError
from gateway.registers.shtrih.codec.messages import Answer, Cmd, Request, command_bytes
from gateway.registers.shtrih.codec.wire import (
    U8,
    U16,
    U32,
    Ascii,
    Date,
    Int,
    Layout,
    Text,
    Time,
    unpack,
)


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
        ("firmware_version", Ascii(2)),
        ("firmware_build", U16),
        ("firmware_date", Date()),
        ("hall", U8),
        ("document_number", U16),
        ("flags", U16),
        ("mode", U8),
        ("submode", U8),
        ("port", U8),
        ("fp_version", Ascii(2)),
        ("fp_build", U16),
        ("fp_date", Date()),
        ("date", Date()),
        ("time", Time()),
        ("fp_flags", U8),
        ("serial_low", U32),
        ("last_shift", U16),
        ("free_fp_records", U16),
        ("registrations", U8),
        ("registrations_left", U8),
        ("inn", Int(6)),
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
        values = unpack(cls._data_of(body), cls.LAYOUT, cls.OPTIONAL_FROM)
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
        ("name", Text(None)),
    )
    device_type: int
    subtype: int
    protocol_version: int
    protocol_subversion: int
    model: int
    language: int
    name: str
