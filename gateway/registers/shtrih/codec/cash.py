"""Cash in and out: 50h Внесение, 51h Выплата. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gateway.registers.shtrih.codec.messages import Answer, Cmd, Request
from gateway.registers.shtrih.codec.wire import MONEY, U8, U16, Layout


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
