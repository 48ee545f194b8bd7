"""The register's command handler: (state, request, host time) -> new state and an answer.

Pure: no I/O, no clock reads; the caller passes the host time and persists the new state.
Modes follow [PROTO] Appendix 1 and [GUIDE] pp.74–76 (reference §1 "Which commands run in
which mode", §5 clock rules):

- mode 2 shift open (under 24 h), 3 shift open over 24 h (receipts refused 4Eh; Z only),
  4 shift closed, 6 waiting for date confirmation (23h), 8 document open (high nibble: receipt
  type); submode 0 paper, 1 no paper, 2 paper ran out while printing, 3 waits for B0h.
- E0h / FF41h+FF0Bh open a shift in mode 4; 40h, 41h, FF42h+FF43h run in modes 2 and 3.
- 8Dh opens a receipt; 80h/82h and FF46h open one themselves in mode 2 and add lines in mode 8;
  85h and FF45h close it in the ФН; 88h / FF08h cancel it.
- 21h/22h only with the shift closed; 22h waits in mode 6 for 23h with the same date; no date
  before the last fiscal document (ФН error 07h), and no fiscal document while the RTC is
  earlier than the last one.
- A document whose printout is cut by the paper running out is still closed in the ФН:
  the register then waits for paper (submode 2) and for B0h (submode 3).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from gateway import fiscal
from gateway.errors import ProtocolError
from gateway.registers.emulator import fn
from gateway.registers.emulator.refusals import Fn, Kkt, Refused
from gateway.registers.emulator.state import (
    MODEL_NAME,
    BegunDocument,
    Document,
    EmulatorState,
    Line,
    OpenReceipt,
    Shift,
    Tlv,
)
from gateway.registers.emulator.tape import TapeItem, TapePayment, TapeRecord
from gateway.registers.shtrih import codec

SHIFT_LIMIT = dt.timedelta(hours=24)
OFD_WAIT_LIMIT = dt.timedelta(days=30)
FN_WARN_REPLACE_DAYS = 3
FN_WARN_RESOURCE_DAYS = 30

# FCh answer. The model byte of a ШТРИХ-М-01Ф could not be confirmed from public sources
# (drivers recognise the model by its name); the name is the one real units report.
DEVICE_TYPE = 0  # ККТ
DEVICE_SUBTYPE = 0
PROTOCOL_VERSION = 1
PROTOCOL_SUBVERSION = 0
MODEL_ID = 0
LANGUAGE_RUSSIAN = 0

FN_VERSION = "fn-emulator 1.2"
FN_TYPE_SERIAL = 1

# 10h/11h flag bits ([PROTO] "Флаги ККТ"; reference §1). A real ШТРИХ-М-01Ф with paper and
# the cover shut reports 0x0292.
FLAG_RECEIPT_ROLL = 1 << 1
FLAG_RECEIPT_OPTICAL = 1 << 7
FLAG_COVER_OPEN = 1 << 10
FLAGS_ALWAYS = (1 << 4) | (1 << 9)
BATTERY_VOLTAGE = 0x9F
POWER_VOLTAGE = 0xE5
FP_VERSION = "NA"  # 01Ф models have no fiscal memory: 11h reports "N.A", build 0
FP_DATE = dt.date(2016, 1, 1)

# FF39h exchange status bits: 0 transport connected, 1 message for the OFD waiting.
OFD_CONNECTED = 1 << 0
OFD_MESSAGE_WAITING = 1 << 1

# Passwords ([PROTO]; reference §1 "Passwords"): cashiers 1–28, administrator 29, system
# administrator 30. FFxxh and 21h–23h need 30; X and Z reports need 29 or 30.
CASHIER_PASSWORDS = range(1, 31)
ADMIN_PASSWORDS = (29, 30)
SYSADMIN_PASSWORDS = (30,)

MODE_SHIFT_OPEN = 2
MODE_SHIFT_EXPIRED = 3
MODE_SHIFT_CLOSED = 4
MODE_DATE_CONFIRM = 6
MODE_DOCUMENT = 8

SUBMODE_PAPER = 0
SUBMODE_NO_PAPER = 1
SUBMODE_PAPER_RAN_OUT = 2
SUBMODE_WAIT_CONTINUE = 3

# Legacy tax groups of 80h–85h (table 6 of a 01Ф register) -> ATOL tax names.
_LEGACY_TAX = {0: "none", 1: "vat20", 2: "vat10", 3: "vat0", 4: "none", 5: "vat120", 6: "vat110"}
# 85h's four payment sums: cash, then payment types 2–4 (cashless).
_LEGACY_PAYMENT_TYPES = ("cash", "electronically", "electronically", "electronically")
# FF45h's sixteen: 1 cash, 2–13 electronic, 14 prepayment, 15 credit, 16 counter-provision.
_V2_PAYMENT_TYPES = ("cash",) + ("electronically",) * 12 + ("prepaid", "credit", "other")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did: the new state and either an answer or an error code."""

    state: EmulatorState
    answer: codec.Answer | None = None
    error: int = 0
    printed: TapeRecord | None = None  # a fiscal document closed: its paper-tape record
    added_line: bool = False  # 80h/82h/FF46h added a receipt line

    @property
    def closes_document(self) -> bool:
        """True when the command closed a fiscal document in the ФН."""
        return self.printed is not None


@dataclass(frozen=True, slots=True)
class _Ctx:
    """What every handler needs: host time, RTC time, the operator number."""

    host: dt.datetime
    rtc: dt.datetime
    operator: int


Handler = Callable[[EmulatorState, Any, _Ctx], Outcome]


def execute(state: EmulatorState, request: codec.Request, host: dt.datetime) -> Outcome:
    """Run one request against `state` at host time `host`."""
    rtc = state.rtc(host)
    state = ofd_tick(state, rtc)
    handler = _HANDLERS.get(type(request))
    if handler is None:
        return Outcome(state, error=Kkt.UNSUPPORTED)
    try:
        operator = _check_password(request)
        return handler(state, request, _Ctx(host, rtc, operator))
    except Refused as refusal:
        return Outcome(state, error=refusal.code)


# --- derived status -------------------------------------------------------------------


def mode_of(state: EmulatorState, rtc: dt.datetime) -> int:
    """The mode byte: low nibble the mode, high nibble the receipt type in mode 8."""
    if state.pending_date is not None:
        return MODE_DATE_CONFIRM
    if state.receipt is not None:
        return MODE_DOCUMENT | (state.receipt.receipt_type << 4)
    if state.shift.is_open:
        assert state.shift.opened_at is not None
        return MODE_SHIFT_EXPIRED if rtc - state.shift.opened_at > SHIFT_LIMIT else MODE_SHIFT_OPEN
    return MODE_SHIFT_CLOSED


def submode_of(state: EmulatorState) -> int:
    """The printer submode."""
    printer = state.printer
    if printer.interrupted:
        return SUBMODE_WAIT_CONTINUE if printer.paper else SUBMODE_PAPER_RAN_OUT
    return SUBMODE_PAPER if printer.paper else SUBMODE_NO_PAPER


def flags_of(state: EmulatorState) -> int:
    """The 16-bit flags of 10h/11h."""
    flags = FLAGS_ALWAYS
    if state.printer.paper:
        flags |= FLAG_RECEIPT_ROLL | FLAG_RECEIPT_OPTICAL
    if state.printer.cover_open:
        flags |= FLAG_COVER_OPEN
    return flags


def fn_warnings_of(state: EmulatorState, rtc: dt.datetime) -> int:
    """FF01h warning bits: the injected ones plus those the dates imply."""
    warnings = state.fn_warnings
    days_left = (state.identity.fn_expiry - rtc.date()).days
    if days_left <= FN_WARN_REPLACE_DAYS:
        warnings |= fn.WARN_REPLACE_URGENTLY
    if days_left <= FN_WARN_RESOURCE_DAYS:
        warnings |= fn.WARN_RESOURCE_EXHAUSTED
    oldest = _oldest_unacked(state)
    if oldest is not None and rtc - oldest.datetime > OFD_WAIT_LIMIT:
        warnings |= fn.WARN_OFD_TIMEOUT
    return warnings


def unacked_count(state: EmulatorState) -> int:
    """Documents the OFD has not acknowledged yet."""
    return max(0, state.last_document.number - state.ofd.first_unacked + 1)


def _oldest_unacked(state: EmulatorState) -> Document | None:
    """The oldest document the OFD has not acknowledged."""
    return state.document(state.ofd.first_unacked)


def ofd_tick(state: EmulatorState, rtc: dt.datetime) -> EmulatorState:
    """Let the OFD acknowledge documents: one per `interval_s` of RTC time while draining."""
    ofd = state.ofd
    last = state.last_document.number
    if not ofd.draining or ofd.first_unacked > last:
        return state
    if ofd.head_since is None:
        return replace(state, ofd=replace(ofd, head_since=rtc))
    waiting = last - ofd.first_unacked + 1
    if ofd.interval_s <= 0:
        acked = waiting
    else:
        acked = min(waiting, max(0, int((rtc - ofd.head_since).total_seconds() // ofd.interval_s)))
    if acked == 0:
        return state
    first = ofd.first_unacked + acked
    head: dt.datetime | None = ofd.head_since + dt.timedelta(seconds=acked * ofd.interval_s)
    if first > last:
        head = None
    return replace(state, ofd=replace(ofd, first_unacked=first, head_since=head))


# --- checks -----------------------------------------------------------------------------


def _check_password(request: codec.Request) -> int:
    """[PROTO] passwords: FFxxh and 21h–23h need 30, X/Z 29 or 30, the rest 1–30; returns the operator."""
    password = getattr(request, "password", None)
    if password is None:
        return 0
    allowed: range | tuple[int, ...] = CASHIER_PASSWORDS
    if type(request) in _SYSADMIN_ONLY:
        allowed = SYSADMIN_PASSWORDS
    elif type(request) in _ADMIN_ONLY:
        allowed = ADMIN_PASSWORDS
    if password not in allowed:
        raise Refused(Kkt.WRONG_PASSWORD)
    return int(password)


def _require_mode(state: EmulatorState, ctx: _Ctx, *allowed: int) -> int:
    """Refuse unless the mode is one of `allowed` (C0h in mode 6, 4Ah in mode 8, 4Eh over 24 h, else 73h)."""
    mode = mode_of(state, ctx.rtc) & 0x0F
    if mode in allowed:
        return mode
    if mode == MODE_DATE_CONFIRM:
        raise Refused(Kkt.CONFIRM_DATE)
    if mode == MODE_DOCUMENT:
        raise Refused(Kkt.RECEIPT_OPEN)
    if mode == MODE_SHIFT_EXPIRED and MODE_SHIFT_OPEN in allowed:
        raise Refused(Kkt.SHIFT_OVER_24H)
    raise Refused(Kkt.WRONG_MODE)


def _require_printer(state: EmulatorState) -> None:
    """Refuse a printing command while waiting for B0h (58h), without paper (6Bh) or with the cover open."""
    submode = submode_of(state)
    if submode == SUBMODE_WAIT_CONTINUE:
        raise Refused(Kkt.WAITING_CONTINUE_PRINT)
    if submode in (SUBMODE_NO_PAPER, SUBMODE_PAPER_RAN_OUT):
        raise Refused(Kkt.NO_PAPER)
    if state.printer.cover_open:
        raise Refused(Kkt.PRINTER_SENSORS)


def _require_fiscal_time(state: EmulatorState, ctx: _Ctx, *, closing_shift: bool = False) -> None:
    """The ФН refuses a document dated before the last one, after expiry, or with a stale OFD queue."""
    if fn.fn_time(ctx.rtc) < state.last_document.datetime:
        raise Refused(Fn.BAD_DATETIME)
    if closing_shift:
        return
    if ctx.rtc.date() > state.identity.fn_expiry:
        raise Refused(Fn.EXPIRED)
    oldest = _oldest_unacked(state)
    if oldest is not None and ctx.rtc - oldest.datetime > OFD_WAIT_LIMIT:
        raise Refused(Fn.OFD_WAIT_EXHAUSTED)


def _require_no_begun(state: EmulatorState) -> None:
    """A receipt cannot start while a shift document begun with FF41h/FF42h is pending."""
    if state.begun is not None:
        raise Refused(Fn.WRONG_STATE)


# --- documents --------------------------------------------------------------------------


def _close_document(
    state: EmulatorState,
    ctx: _Ctx,
    doc_type: int,
    tape_type: str,
    *,
    shift: Shift,
    shift_number: int,
    operation: int | None = None,
    total: int = 0,
    items: tuple[TapeItem, ...] = (),
    payments: tuple[TapePayment, ...] = (),
) -> tuple[EmulatorState, Document, TapeRecord]:
    """Register a fiscal document in the ФН; its printout may be cut by the paper running out."""
    number = state.last_document.number + 1
    when = fn.fn_time(ctx.rtc)
    sign = fn.fiscal_sign(state.identity.fn_number, number, when, total)
    doc = Document(
        number, doc_type, when, sign, shift_number, operation, total if operation else None
    )
    record = TapeRecord(number, tape_type, when, sign, total, items, payments, shift_number)
    ofd = state.ofd
    if ofd.first_unacked > state.last_document.number:
        ofd = replace(ofd, head_since=ctx.rtc)
    printer = state.printer
    if printer.paper_ends_next_document:
        printer = replace(printer, paper=False, interrupted=True, paper_ends_next_document=False)
    new = replace(
        state,
        documents=(*state.documents, doc),
        ofd=ofd,
        printer=printer,
        shift=shift,
        receipt=None,
        begun=None,
        last_tape=record,
    )
    return new, doc, record


def _open_shift(state: EmulatorState, ctx: _Ctx) -> tuple[EmulatorState, Document]:
    """Register the shift-open report."""
    number = state.shift.number + 1
    shift = Shift(number=number, is_open=True, opened_at=fn.fn_time(ctx.rtc), receipts=0)
    new, doc, _ = _close_document(
        state, ctx, fn.DOC_SHIFT_OPEN, "openShift", shift=shift, shift_number=number
    )
    return new, doc


def _close_shift(state: EmulatorState, ctx: _Ctx) -> tuple[EmulatorState, Document]:
    """Register the shift-close report (Z)."""
    number = state.shift.number
    shift = Shift(number=number, is_open=False, opened_at=None, receipts=0)
    new, doc, _ = _close_document(
        state, ctx, fn.DOC_SHIFT_CLOSE, "closeShift", shift=shift, shift_number=number
    )
    return new, doc


def _close_receipt(
    state: EmulatorState, ctx: _Ctx, sums: tuple[int, ...], kinds: tuple[str, ...], discount: int
) -> tuple[EmulatorState, Document, int]:
    """Close the open receipt with payment `sums` (slot types `kinds`); returns the change."""
    receipt = state.receipt
    assert receipt is not None
    total = receipt.total - discount
    paid = sum(sums)
    cash = sum(s for s, k in zip(sums, kinds, strict=True) if k == "cash")
    if paid < total:
        raise Refused(Kkt.PAYMENTS_BELOW_TOTAL)
    if paid - cash > total:
        raise Refused(Kkt.CASHLESS_ABOVE_TOTAL)
    change = paid - total
    payments: dict[str, int] = {}
    for amount, kind in zip(sums, kinds, strict=True):
        if amount:
            payments[kind] = payments.get(kind, 0) + amount
    items = tuple(
        TapeItem(line.name, line.price, line.quantity / fiscal.QTY_SCALE, line.amount, line.vat)
        for line in receipt.lines
    )
    shift = replace(state.shift, receipts=state.shift.receipts + 1)
    new, doc, _ = _close_document(
        state,
        ctx,
        fn.DOC_RECEIPT,
        fn.TAPE_TYPE_OF_RECEIPT_TYPE[receipt.receipt_type],
        shift=shift,
        shift_number=state.shift.number,
        operation=int(fn.OPERATION_OF_RECEIPT_TYPE[receipt.receipt_type]),
        total=total,
        items=items,
        payments=tuple(TapePayment(kind, amount) for kind, amount in payments.items()),
    )
    return new, doc, change


def _open_receipt(state: EmulatorState, ctx: _Ctx, receipt_type: int) -> EmulatorState:
    """Open a receipt of `receipt_type` (checks the ФН's clock rules)."""
    _require_no_begun(state)
    _require_fiscal_time(state, ctx)
    return replace(state, receipt=OpenReceipt(receipt_type=receipt_type, opened_at=ctx.rtc))


def _add_line(
    state: EmulatorState, ctx: _Ctx, receipt_type: int, line: Line, answer: codec.Answer
) -> Outcome:
    """Add a line; in mode 2 the line opens a receipt of its type first."""
    mode = _require_mode(state, ctx, MODE_SHIFT_OPEN, MODE_DOCUMENT)
    _require_printer(state)
    if mode == MODE_SHIFT_OPEN:
        state = _open_receipt(state, ctx, receipt_type)
    receipt = state.receipt
    assert receipt is not None
    if receipt.receipt_type != receipt_type:
        raise Refused(Kkt.WRONG_RECEIPT_TYPE)
    new = replace(state, receipt=replace(receipt, lines=(*receipt.lines, line)))
    return Outcome(new, answer, added_line=True)


# --- handlers: status -------------------------------------------------------------------


def _short_status(state: EmulatorState, req: codec.ShortStatusRequest, ctx: _Ctx) -> Outcome:
    """10h: operator, flags, mode, submode, lines in the receipt."""
    operations = len(state.receipt.lines) if state.receipt is not None else 0
    return Outcome(
        state,
        codec.ShortStatus(
            operator=ctx.operator,
            flags=flags_of(state),
            mode=mode_of(state, ctx.rtc),
            submode=submode_of(state),
            receipt_operations=operations,
            battery_voltage=BATTERY_VOLTAGE,
            power_voltage=POWER_VOLTAGE,
            last_print_result=None,
        ),
    )


def _long_status(state: EmulatorState, req: codec.LongStatusRequest, ctx: _Ctx) -> Outcome:
    """11h: firmware, flags, mode, RTC, serial, last closed shift, ИНН."""
    ident = state.identity
    last_closed = state.shift.number - 1 if state.shift.is_open else state.shift.number
    return Outcome(
        state,
        codec.LongStatus(
            operator=ctx.operator,
            firmware_version=ident.firmware_version,
            firmware_build=ident.firmware_build,
            firmware_date=ident.firmware_date,
            hall=1,
            document_number=state.last_document.number & 0xFFFF,
            flags=flags_of(state),
            mode=mode_of(state, ctx.rtc),
            submode=submode_of(state),
            port=0,
            fp_version=FP_VERSION,
            fp_build=0,
            fp_date=FP_DATE,
            date=ctx.rtc.date(),
            time=ctx.rtc.time().replace(microsecond=0),
            fp_flags=0,
            serial=ident.serial,
            last_shift=last_closed,
            free_fp_records=0,
            registrations=ident.registrations,
            registrations_left=ident.registrations_left,
            inn=ident.inn,
        ),
    )


def _device_type(state: EmulatorState, req: codec.DeviceTypeRequest, ctx: _Ctx) -> Outcome:
    """FCh: model and name."""
    return Outcome(
        state,
        codec.DeviceType(
            device_type=DEVICE_TYPE,
            subtype=DEVICE_SUBTYPE,
            protocol_version=PROTOCOL_VERSION,
            protocol_subversion=PROTOCOL_SUBVERSION,
            model=MODEL_ID,
            language=LANGUAGE_RUSSIAN,
            name=MODEL_NAME,
        ),
    )


def _fn_status(state: EmulatorState, req: codec.FnStatusRequest, ctx: _Ctx) -> Outcome:
    """FF01h: phase, current document, shift, warnings, last document."""
    current = fn.CURRENT_NONE
    data = 0
    if state.receipt is not None:
        current = fn.CURRENT_RECEIPT
        data = int(bool(state.receipt.lines or state.receipt.tlvs))
    elif state.begun is not None:
        current = state.begun.current
        data = int(bool(state.begun.tlvs))
    last = state.last_document
    return Outcome(
        state,
        codec.FnStatus(
            life_phase=fn.PHASE_FISCAL,
            current_document=current,
            document_data=data,
            shift_open=state.shift.is_open,
            warnings=fn_warnings_of(state, ctx.rtc),
            last_document_datetime=last.datetime,
            fn_number=state.identity.fn_number,
            last_document_number=last.number,
        ),
    )


def _fn_expiry(state: EmulatorState, req: codec.FnExpiryRequest, ctx: _Ctx) -> Outcome:
    """FF03h: validity end and re-registrations."""
    ident = state.identity
    return Outcome(
        state,
        codec.FnExpiry(
            expiry=ident.fn_expiry,
            registrations_left=ident.registrations_left,
            registrations_done=ident.registrations,
        ),
    )


def _fn_version(state: EmulatorState, req: codec.FnVersionRequest, ctx: _Ctx) -> Outcome:
    """FF04h: ФН firmware."""
    return Outcome(state, codec.FnVersion(version=FN_VERSION, fn_type=FN_TYPE_SERIAL))


def _fn_find_document(state: EmulatorState, req: codec.FnFindDocumentRequest, ctx: _Ctx) -> Outcome:
    """FF0Ah: a document from the archive (08h if there is none)."""
    doc = state.document(req.number)
    if doc is None:
        raise Refused(Fn.NO_DATA)
    return Outcome(
        state,
        codec.FnDocument(
            document_type=doc.doc_type,
            ofd_acknowledged=doc.number < state.ofd.first_unacked,
            datetime=doc.datetime,
            number=doc.number,
            fiscal_sign=doc.fiscal_sign,
            receipt_type=doc.operation,
            total=doc.total,
            tail=b"",
        ),
    )


def _fn_ofd_status(state: EmulatorState, req: codec.FnOfdStatusRequest, ctx: _Ctx) -> Outcome:
    """FF39h: documents waiting for the OFD, the oldest first."""
    count = unacked_count(state)
    oldest = _oldest_unacked(state)
    status = 0
    if state.ofd.draining:
        status |= OFD_CONNECTED
    if count:
        status |= OFD_MESSAGE_WAITING
    return Outcome(
        state,
        codec.FnOfdStatus(
            exchange_status=status,
            read_flag=0,
            count=count,
            first_number=oldest.number if oldest is not None else 0,
            first_datetime=oldest.datetime if oldest is not None else None,
        ),
    )


# --- handlers: clock --------------------------------------------------------------------


def _set_time(state: EmulatorState, req: codec.SetTimeRequest, ctx: _Ctx) -> Outcome:
    """21h: set the time of day (shift closed)."""
    _require_mode(state, ctx, MODE_SHIFT_CLOSED)
    target = dt.datetime.combine(ctx.rtc.date(), req.time)
    return Outcome(
        replace(state, clock=state.clock.set_rtc(ctx.host, target)), codec.SetTimeAnswer()
    )


def _set_date(state: EmulatorState, req: codec.SetDateRequest, ctx: _Ctx) -> Outcome:
    """22h: remember the date and wait for 23h (mode 6)."""
    _require_mode(state, ctx, MODE_SHIFT_CLOSED, MODE_DATE_CONFIRM)
    if req.date < state.last_document.datetime.date():
        raise Refused(Fn.BAD_DATETIME)
    return Outcome(replace(state, pending_date=req.date), codec.SetDateAnswer())


def _confirm_date(state: EmulatorState, req: codec.ConfirmDateRequest, ctx: _Ctx) -> Outcome:
    """23h: the same date again sets the RTC's date."""
    _require_mode(state, ctx, MODE_DATE_CONFIRM)
    if req.date != state.pending_date:
        raise Refused(Kkt.DATE_MISMATCH)
    if req.date < state.last_document.datetime.date():
        raise Refused(Fn.BAD_DATETIME)
    target = dt.datetime.combine(req.date, ctx.rtc.time())
    new = replace(state, clock=state.clock.set_rtc(ctx.host, target), pending_date=None)
    return Outcome(new, codec.ConfirmDateAnswer())


# --- handlers: shifts and reports ---------------------------------------------------------


def _x_report(state: EmulatorState, req: codec.XReportRequest, ctx: _Ctx) -> Outcome:
    """40h: X report (printed, no fiscal document)."""
    _require_mode(state, ctx, MODE_SHIFT_OPEN, MODE_SHIFT_EXPIRED)
    _require_printer(state)
    return Outcome(state, codec.XReportAnswer(operator=ctx.operator))


def _z_report(state: EmulatorState, req: codec.ZReportRequest, ctx: _Ctx) -> Outcome:
    """41h: Z report, closes the shift in the ФН."""
    _require_mode(state, ctx, MODE_SHIFT_OPEN, MODE_SHIFT_EXPIRED)
    _require_printer(state)
    _require_fiscal_time(state, ctx, closing_shift=True)
    new, _ = _close_shift(state, ctx)
    return Outcome(new, codec.ZReportAnswer(operator=ctx.operator), printed=new.last_tape)


def _open_shift_e0(state: EmulatorState, req: codec.OpenShiftRequest, ctx: _Ctx) -> Outcome:
    """E0h: open the shift."""
    _require_mode(state, ctx, MODE_SHIFT_CLOSED)
    _require_printer(state)
    _require_fiscal_time(state, ctx)
    new, _ = _open_shift(state, ctx)
    return Outcome(new, codec.OpenShiftAnswer(operator=ctx.operator), printed=new.last_tape)


def _fn_begin_open_shift(
    state: EmulatorState, req: codec.FnBeginOpenShiftRequest, ctx: _Ctx
) -> Outcome:
    """FF41h: begin the shift-open report (TLVs may follow)."""
    _require_mode(state, ctx, MODE_SHIFT_CLOSED)
    _require_fiscal_time(state, ctx)
    return Outcome(
        replace(state, begun=BegunDocument(fn.CURRENT_SHIFT_OPEN)), codec.FnBeginOpenShiftAnswer()
    )


def _fn_open_shift(state: EmulatorState, req: codec.FnOpenShiftRequest, ctx: _Ctx) -> Outcome:
    """FF0Bh: finish the shift-open report begun with FF41h."""
    _require_mode(state, ctx, MODE_SHIFT_CLOSED)
    if state.begun is None or state.begun.current != fn.CURRENT_SHIFT_OPEN:
        raise Refused(Fn.WRONG_STATE)
    _require_printer(state)
    _require_fiscal_time(state, ctx)
    new, doc = _open_shift(state, ctx)
    answer = codec.FnOpenShiftAnswer(
        shift_number=new.shift.number, document_number=doc.number, fiscal_sign=doc.fiscal_sign
    )
    return Outcome(new, answer, printed=new.last_tape)


def _fn_begin_close_shift(
    state: EmulatorState, req: codec.FnBeginCloseShiftRequest, ctx: _Ctx
) -> Outcome:
    """FF42h: begin the shift-close report (TLVs may follow)."""
    _require_mode(state, ctx, MODE_SHIFT_OPEN, MODE_SHIFT_EXPIRED)
    _require_fiscal_time(state, ctx, closing_shift=True)
    return Outcome(
        replace(state, begun=BegunDocument(fn.CURRENT_SHIFT_CLOSE)), codec.FnBeginCloseShiftAnswer()
    )


def _fn_close_shift(state: EmulatorState, req: codec.FnCloseShiftRequest, ctx: _Ctx) -> Outcome:
    """FF43h: finish the shift-close report begun with FF42h."""
    _require_mode(state, ctx, MODE_SHIFT_OPEN, MODE_SHIFT_EXPIRED)
    if state.begun is None or state.begun.current != fn.CURRENT_SHIFT_CLOSE:
        raise Refused(Fn.WRONG_STATE)
    _require_printer(state)
    _require_fiscal_time(state, ctx, closing_shift=True)
    new, doc = _close_shift(state, ctx)
    answer = codec.FnCloseShiftAnswer(
        shift_number=doc.shift, document_number=doc.number, fiscal_sign=doc.fiscal_sign
    )
    return Outcome(new, answer, printed=new.last_tape)


# --- handlers: receipts -----------------------------------------------------------------


def _open_receipt_8d(state: EmulatorState, req: codec.OpenReceiptRequest, ctx: _Ctx) -> Outcome:
    """8Dh: open a receipt."""
    if req.receipt_type not in fn.OPERATION_OF_RECEIPT_TYPE:
        raise Refused(Kkt.BAD_PARAMETERS)
    _require_mode(state, ctx, MODE_SHIFT_OPEN)
    _require_printer(state)
    new = _open_receipt(state, ctx, req.receipt_type)
    return Outcome(new, codec.OpenReceiptAnswer(operator=ctx.operator))


def _legacy_line(req: codec.SaleRequest | codec.ReturnSaleRequest) -> Line:
    """The line of an 80h/82h request."""
    if req.quantity <= 0 or req.price < 0:
        raise Refused(Kkt.BAD_PARAMETERS)
    # 80h/82h quantity is ×1000 ([PROTO] 80h); the amount is price × quantity, half up.
    amount = (req.price * req.quantity + 500) // 1000
    vat = _LEGACY_TAX.get(req.taxes[0])
    if vat is None:
        raise Refused(Kkt.BAD_PARAMETERS)
    return Line(
        name=req.text,
        price=req.price,
        quantity=req.quantity * (fiscal.QTY_SCALE // 1000),
        amount=amount,
        vat=vat,
        department=req.department,
    )


def _sale(state: EmulatorState, req: codec.SaleRequest, ctx: _Ctx) -> Outcome:
    """80h: a sale line (opens a sale receipt in mode 2)."""
    return _add_line(state, ctx, 0, _legacy_line(req), codec.SaleAnswer(operator=ctx.operator))


def _return_sale(state: EmulatorState, req: codec.ReturnSaleRequest, ctx: _Ctx) -> Outcome:
    """82h: a sale-return line (opens a sale-return receipt in mode 2)."""
    return _add_line(
        state, ctx, 2, _legacy_line(req), codec.ReturnSaleAnswer(operator=ctx.operator)
    )


_VAT_OF_TAX_RATE = {rate: vat.value for vat, rate in codec.VAT_TO_TAX_RATE.items()}


def _fn_operation(state: EmulatorState, req: codec.FnOperationV2Request, ctx: _Ctx) -> Outcome:
    """FF46h: a receipt line; opens the receipt in mode 2."""
    try:
        operation = fn.Operation(req.operation)
    except ValueError:
        raise Refused(Kkt.BAD_PARAMETERS) from None
    if req.quantity <= 0 or req.price < 0:
        raise Refused(Kkt.BAD_PARAMETERS)
    exact = req.price * req.quantity  # kopecks × 10⁶
    amount = fiscal.round_qty(exact) if req.amount is None else req.amount
    # [PROTO] FF46h: the sum may differ from price × quantity by at most one kopeck.
    if abs(amount * fiscal.QTY_SCALE - exact) > fiscal.QTY_SCALE:
        raise Refused(Kkt.BAD_PARAMETERS)
    vat = _VAT_OF_TAX_RATE.get(req.tax_rate)
    if vat is None:
        raise Refused(Kkt.BAD_PARAMETERS)
    line = Line(
        name=req.name,
        price=req.price,
        quantity=req.quantity,
        amount=amount,
        vat=vat,
        department=req.department,
        payment_method=req.payment_method,
        payment_object=req.payment_object,
    )
    receipt_type = fn.RECEIPT_TYPE_OF_OPERATION[operation]
    return _add_line(state, ctx, receipt_type, line, codec.FnOperationV2Answer())


def _fn_send_tlv(state: EmulatorState, req: codec.FnSendTlvRequest, ctx: _Ctx) -> Outcome:
    """FF0Ch: TLVs for the open receipt or the begun shift document."""
    _require_mode(state, ctx, MODE_SHIFT_OPEN, MODE_SHIFT_EXPIRED, MODE_SHIFT_CLOSED, MODE_DOCUMENT)
    try:
        tlvs = tuple(Tlv(tag, value) for tag, value in codec.decode_tlvs(req.tlv))
    except (ValueError, ProtocolError):
        raise Refused(Kkt.BAD_PARAMETERS) from None
    if state.receipt is not None:
        new = replace(state, receipt=replace(state.receipt, tlvs=state.receipt.tlvs + tlvs))
    elif state.begun is not None:
        new = replace(state, begun=replace(state.begun, tlvs=state.begun.tlvs + tlvs))
    else:
        raise Refused(Fn.WRONG_STATE)
    return Outcome(new, codec.FnSendTlvAnswer())


def _close_receipt_85(state: EmulatorState, req: codec.CloseReceiptRequest, ctx: _Ctx) -> Outcome:
    """85h: close the receipt with four payment sums and a percent discount."""
    _require_mode(state, ctx, MODE_DOCUMENT)
    _require_printer(state)
    _require_fiscal_time(state, ctx)
    assert state.receipt is not None
    if not -9999 <= req.discount_percent_x100 <= 9999:
        raise Refused(Kkt.BAD_PARAMETERS)
    discount = (state.receipt.total * req.discount_percent_x100 + 5000) // 10000
    new, _, change = _close_receipt(
        state, ctx, tuple(req.payments), _LEGACY_PAYMENT_TYPES, discount
    )
    return Outcome(
        new, codec.CloseReceiptAnswer(operator=ctx.operator, change=change), printed=new.last_tape
    )


def _close_receipt_v2(
    state: EmulatorState, req: codec.FnCloseReceiptV2Request, ctx: _Ctx
) -> Outcome:
    """FF45h: close the receipt with sixteen payment sums and a rounding discount."""
    _require_mode(state, ctx, MODE_DOCUMENT)
    _require_printer(state)
    _require_fiscal_time(state, ctx)
    assert state.receipt is not None
    # FF45h rounding: a discount of 0–99 kopecks that takes the total down to whole rubles.
    if not 0 <= req.rounding <= min(99, state.receipt.total):
        raise Refused(Kkt.BAD_PARAMETERS)
    new, doc, change = _close_receipt(
        state, ctx, tuple(req.payments), _V2_PAYMENT_TYPES, req.rounding
    )
    answer = codec.FnCloseReceiptV2Answer(
        change=change,
        document_number=doc.number,
        fiscal_sign=doc.fiscal_sign,
        datetime=doc.datetime,
    )
    return Outcome(new, answer, printed=new.last_tape)


def _cancel_receipt(state: EmulatorState, req: codec.CancelReceiptRequest, ctx: _Ctx) -> Outcome:
    """88h: cancel the open receipt."""
    _require_mode(state, ctx, MODE_DOCUMENT)
    return Outcome(replace(state, receipt=None), codec.CancelReceiptAnswer(operator=ctx.operator))


def _fn_cancel_document(
    state: EmulatorState, req: codec.FnCancelDocumentRequest, ctx: _Ctx
) -> Outcome:
    """FF08h: cancel the open receipt or the begun shift document."""
    if state.receipt is None and state.begun is None:
        raise Refused(Fn.WRONG_STATE)
    return Outcome(replace(state, receipt=None, begun=None), codec.FnCancelDocumentAnswer())


def _continue_print(state: EmulatorState, req: codec.ContinuePrintRequest, ctx: _Ctx) -> Outcome:
    """B0h: finish an interrupted printout once paper is back."""
    if state.printer.cover_open:
        raise Refused(Kkt.PRINTER_SENSORS)
    if not state.printer.paper:
        raise Refused(Kkt.NO_PAPER)
    new = replace(state, printer=replace(state.printer, interrupted=False))
    return Outcome(new, codec.ContinuePrintAnswer(operator=ctx.operator))


_HANDLERS: dict[type[Any], Handler] = {
    codec.ShortStatusRequest: _short_status,
    codec.LongStatusRequest: _long_status,
    codec.DeviceTypeRequest: _device_type,
    codec.SetTimeRequest: _set_time,
    codec.SetDateRequest: _set_date,
    codec.ConfirmDateRequest: _confirm_date,
    codec.XReportRequest: _x_report,
    codec.ZReportRequest: _z_report,
    codec.OpenShiftRequest: _open_shift_e0,
    codec.OpenReceiptRequest: _open_receipt_8d,
    codec.SaleRequest: _sale,
    codec.ReturnSaleRequest: _return_sale,
    codec.CloseReceiptRequest: _close_receipt_85,
    codec.CancelReceiptRequest: _cancel_receipt,
    codec.ContinuePrintRequest: _continue_print,
    codec.FnStatusRequest: _fn_status,
    codec.FnExpiryRequest: _fn_expiry,
    codec.FnVersionRequest: _fn_version,
    codec.FnCancelDocumentRequest: _fn_cancel_document,
    codec.FnFindDocumentRequest: _fn_find_document,
    codec.FnBeginOpenShiftRequest: _fn_begin_open_shift,
    codec.FnOpenShiftRequest: _fn_open_shift,
    codec.FnBeginCloseShiftRequest: _fn_begin_close_shift,
    codec.FnCloseShiftRequest: _fn_close_shift,
    codec.FnSendTlvRequest: _fn_send_tlv,
    codec.FnOfdStatusRequest: _fn_ofd_status,
    codec.FnCloseReceiptV2Request: _close_receipt_v2,
    codec.FnOperationV2Request: _fn_operation,
}

_ADMIN_ONLY: frozenset[type[Any]] = frozenset({codec.XReportRequest, codec.ZReportRequest})
_SYSADMIN_ONLY: frozenset[type[Any]] = frozenset(
    {
        codec.SetTimeRequest,
        codec.SetDateRequest,
        codec.ConfirmDateRequest,
        codec.FnStatusRequest,
        codec.FnExpiryRequest,
        codec.FnVersionRequest,
        codec.FnCancelDocumentRequest,
        codec.FnFindDocumentRequest,
        codec.FnBeginOpenShiftRequest,
        codec.FnOpenShiftRequest,
        codec.FnBeginCloseShiftRequest,
        codec.FnCloseShiftRequest,
        codec.FnSendTlvRequest,
        codec.FnOfdStatusRequest,
        codec.FnCloseReceiptV2Request,
        codec.FnOperationV2Request,
    }
)
