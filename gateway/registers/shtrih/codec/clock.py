"""The register's clock: 21h set time, 22h set date, 23h confirm date. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar

from gateway.registers.shtrih.codec.messages import Answer, Cmd, Request
from gateway.registers.shtrih.codec.wire import Date, Layout, Time


@dataclass(frozen=True, slots=True)
class SetTimeRequest(Request):
    """21h set time HH MM SS (shift closed)."""

    COMMAND: ClassVar[Cmd] = Cmd.SET_TIME
    LAYOUT: ClassVar[Layout] = (("time", Time()),)
    time: dt.time = dt.time()


@dataclass(frozen=True, slots=True)
class SetTimeAnswer(Answer):
    """21h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.SET_TIME


@dataclass(frozen=True, slots=True)
class SetDateRequest(Request):
    """22h set date DD MM YY; the register then waits for 23h (mode 6)."""

    COMMAND: ClassVar[Cmd] = Cmd.SET_DATE
    LAYOUT: ClassVar[Layout] = (("date", Date()),)
    date: dt.date = dt.date(2000, 1, 1)


@dataclass(frozen=True, slots=True)
class SetDateAnswer(Answer):
    """22h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.SET_DATE


@dataclass(frozen=True, slots=True)
class ConfirmDateRequest(Request):
    """23h confirm the date set by 22h."""

    COMMAND: ClassVar[Cmd] = Cmd.CONFIRM_DATE
    LAYOUT: ClassVar[Layout] = (("date", Date()),)
    date: dt.date = dt.date(2000, 1, 1)


@dataclass(frozen=True, slots=True)
class ConfirmDateAnswer(Answer):
    """23h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.CONFIRM_DATE
