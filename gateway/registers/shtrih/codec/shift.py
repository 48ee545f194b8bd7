"""Reports and shifts: 40h X, 41h Z, E0h open shift, FF41h/FF0Bh, FF42h/FF43h, FF40h. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar

from gateway.registers.shtrih.codec.messages import Answer, Cmd, Request, operator_only
from gateway.registers.shtrih.codec.wire import U16, U32, Bool, FnDateTime, Layout


@dataclass(frozen=True, slots=True)
class XReportRequest(Request):
    """40h X report."""

    COMMAND: ClassVar[Cmd] = Cmd.X_REPORT


@dataclass(frozen=True, slots=True)
class XReportAnswer(Answer):
    """40h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.X_REPORT
    LAYOUT: ClassVar[Layout] = operator_only()
    operator: int = 30


@dataclass(frozen=True, slots=True)
class ZReportRequest(Request):
    """41h Z report (closes the shift)."""

    COMMAND: ClassVar[Cmd] = Cmd.Z_REPORT


@dataclass(frozen=True, slots=True)
class ZReportAnswer(Answer):
    """41h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.Z_REPORT
    LAYOUT: ClassVar[Layout] = operator_only()
    operator: int = 30


@dataclass(frozen=True, slots=True)
class OpenShiftRequest(Request):
    """E0h open shift."""

    COMMAND: ClassVar[Cmd] = Cmd.OPEN_SHIFT


@dataclass(frozen=True, slots=True)
class OpenShiftAnswer(Answer):
    """E0h answer; [PROTO] gives its length as 2 (CMD ERR), so the operator byte may be absent."""

    COMMAND: ClassVar[Cmd] = Cmd.OPEN_SHIFT
    LAYOUT: ClassVar[Layout] = operator_only()
    OPTIONAL_FROM: ClassVar[int | None] = 0
    operator: int = 30


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
    ("datetime", FnDateTime()),
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
class FnShiftParamsRequest(Request):
    """FF40h current shift parameters ([PROTO] FF40h p.51)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_SHIFT_PARAMS


@dataclass(frozen=True, slots=True)
class FnShiftParams(Answer):
    """FF40h answer: shift state(1), shift number(2), receipt number(2) ([PROTO] p.51)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_SHIFT_PARAMS
    LAYOUT: ClassVar[Layout] = (
        ("shift_open", Bool()),
        ("shift_number", U16),
        ("receipt_number", U16),
    )
    shift_open: bool
    shift_number: int
    receipt_number: int
