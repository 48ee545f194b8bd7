"""Settings tables and counters: 1Eh write a table field, 1Ah money and 1Bh operation
registers. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gateway.registers.shtrih.codec.messages import Answer, Cmd, Request
from gateway.registers.shtrih.codec.wire import U8, U16, Int, Layout, Rest


@dataclass(frozen=True, slots=True)
class WriteTableRequest(Request):
    """1Eh write one field of a settings table ([PROTO] 1Eh p.23): table, row(2), field, value."""

    COMMAND: ClassVar[Cmd] = Cmd.WRITE_TABLE
    LAYOUT: ClassVar[Layout] = (
        ("table", U8),
        ("row", U16),
        ("field", U8),
        ("value", Rest(40)),
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
    LAYOUT: ClassVar[Layout] = (("operator", U8), ("value", Int(6)))
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
