"""Command codes and the request/answer bases every Shtrih-M message derives from. Pure.

Answers: CMD ERR data; with ERR≠0 only CMD ERR ([PROTO] p.8).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from gateway.domain.errors import ProtocolError
from gateway.registers.shtrih.codec.wire import PASSWORD, U8, Layout, pack, unpack
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
    # Marked goods (ФФД 1.2, ФН-М): check, bind, accept, status, autonomous notifications.
    FN_MARKING_CHECK = 0xFF61
    FN_MARKING_BIND = 0xFF67
    FN_ISM_EXCHANGE_STATUS = 0xFF68
    FN_MARKING_ACCEPT = 0xFF69
    FN_MARKING_STATUS = 0xFF70
    FN_NOTIFICATION_BEGIN = 0xFF71
    FN_NOTIFICATION_READ = 0xFF72
    FN_NOTIFICATION_CONFIRM = 0xFF73


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
        return head + pack(self, self.LAYOUT)

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
        kwargs.update(unpack(rest, cls.LAYOUT, None))
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class Answer:
    """A register's answer with ERR = 0."""

    COMMAND: ClassVar[Cmd]
    LAYOUT: ClassVar[Layout] = ()
    OPTIONAL_FROM: ClassVar[int | None] = None  # fields from this index on may be absent

    def to_body(self) -> bytes:
        """CMD 00 data."""
        return command_bytes(self.COMMAND) + b"\x00" + pack(self, self.LAYOUT, self.OPTIONAL_FROM)

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        """Parse an answer body (the driver's side); ERR must be 0."""
        return cls(**unpack(cls._data_of(body), cls.LAYOUT, cls.OPTIONAL_FROM))

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


def operator_only() -> Layout:
    """The layout of answers that carry only the operator number."""
    return (("operator", U8),)
