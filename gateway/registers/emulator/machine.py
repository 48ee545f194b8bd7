"""The register's command handler: (state, request, host time) -> new state and an answer.

Pure: no I/O, no clock reads; the caller passes the host time and persists the new state.
Requests come from `protocol.parse`; answers are the data after the error byte, built here
field by field with the page of [PROTO] that gives the layout.

Modes follow [PROTO] Appendix 1 (p.71) and [GUIDE] pp.74–76:

- mode 2 shift open (under 24 h), 3 shift open over 24 h (receipts refused 4Eh; Z only),
  4 shift closed, 6 waiting for date confirmation (23h), 8 document open (high nibble: receipt
  type); submode 0 paper, 1 no paper, 2 paper ran out while printing, 3 waits for B0h.
- E0h / FF41h+FF0Bh open a shift in mode 4; 40h, 41h, FF42h+FF43h run in modes 2 and 3.
- 8Dh opens a receipt; 80h/82h and FF46h open one themselves in mode 2 and add lines in mode 8;
  85h and FF45h close it in the ФН; 88h / FF08h cancel it; FF4Dh (mode 8) binds tags to the
  last line (classic firmware) or to the next FF46h («кассовое ядро», see `marking.Firmware`).
- Marked goods: FF61h checks a code, FF69h accepts it into the ФН's table of checked codes (or
  rejects it, or clears the table), FF67h binds an accepted code to a line; FF68h/FF70h report
  the state, FF71h–FF73h hand out the notifications of sales the ОИСМ never confirmed. The
  rules are written next to the handlers ("marking" below).
- 50h/51h run in modes 2, 3 and 4 ([GUIDE] p.75); 1Ah/1Bh, FF09h, FF0Ah, FF3Ah/FF3Bh, FF40h in
  any mode.
- 21h/22h only with the shift closed; 22h waits in mode 6 for 23h with the same date; no date
  before the last fiscal document (ФН error 07h), and no fiscal document while the RTC is
  earlier than the last one.
- A document whose printout is cut by the paper running out is still closed in the ФН:
  the register then waits for paper (submode 2) and for B0h (submode 3).

Every fiscal document is kept with all its tags ([FFD] ФФД 1.2): those the register builds
(see `tlv.REGISTER_BUILT`), those the host sent with FF0Ch, and per line an STLV 1059 with the
FF46h fields and the FF4Dh tags of that line. FF3Ah/FF3Bh read them back and the paper tape
shows them, so a tag a driver never sent is missing there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from gateway.registers.emulator import counters, fn, marking, protocol, tlv
from gateway.registers.emulator.marking import CheckedCode, Firmware, FnMarking, IsmAnswer
from gateway.registers.emulator.protocol import Cmd
from gateway.registers.emulator.refusals import Fn, Kkt, Refused
from gateway.registers.emulator.state import (
    MODEL_NAME,
    BegunDocument,
    Document,
    DocumentRead,
    EmulatorState,
    Line,
    OpenReceipt,
    Shift,
    header_tags,
)
from gateway.registers.emulator.tape import TapeItem, TapePayment, TapeRecord
from gateway.registers.emulator.tlv import Tlv

SHIFT_LIMIT = dt.timedelta(hours=24)
OFD_WAIT_LIMIT = dt.timedelta(days=30)
FN_WARN_REPLACE_DAYS = 3
FN_WARN_RESOURCE_DAYS = 30

# FCh answer ([PROTO] p.41). Its table gives a ШТРИХ-М-01Ф protocol 1.14 and model 250; the
# emulator has always answered 1.0 and model 0, and drivers recognise the model by its name.
DEVICE_TYPE = 0  # ККТ
DEVICE_SUBTYPE = 0
PROTOCOL_VERSION = 1
PROTOCOL_SUBVERSION = 0
MODEL_ID = 0
LANGUAGE_RUSSIAN = 0

FN_VERSION = "fn-emulator 1.2"
FN_TYPE_SERIAL = 1  # [PROTO] FF04h p.43: 1 серийная версия

# 10h/11h flag bits ([PROTO] 10h p.17). A real ШТРИХ-М-01Ф with paper and the cover shut
# reports 0x0292.
FLAG_RECEIPT_ROLL = 1 << 1
FLAG_RECEIPT_OPTICAL = 1 << 7
FLAG_COVER_OPEN = 1 << 10
FLAGS_ALWAYS = (1 << 4) | (1 << 9)
BATTERY_VOLTAGE = 0x9F
POWER_VOLTAGE = 0xE5
FP_VERSION = "NA"  # 01Ф models have no fiscal memory: 11h reports "N.A", build 0
FP_DATE = dt.date(2016, 1, 1)

# FF39h exchange status bits ([PROTO] p.50): 0 transport connected, 1 message for the OFD.
OFD_CONNECTED = 1 << 0
OFD_MESSAGE_WAITING = 1 << 1
OFD_INN = "000000000000"  # FF09h: the emulated OFD has no real ИНН

# Passwords ([PROTO] per command; [GUIDE] p.76 "Обозначение паролей"): cashiers 1–28,
# administrator 29, system administrator 30.
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

# [PROTO] FF3Bh p.50: CMD(2) ERR(1) and N bytes of TLV in one 255-byte message.
TLV_READ_BLOCK = 252

# Table 17 «Региональные настройки», row 1, field 7 «не печатать документ» ([GUIDE] pp.59, 62):
# 0 print all, 1 skip one (the next or the one already open), 2 print none, 3 to the SD card.
TABLE_REGIONAL = 17
FIELD_NO_PRINT = 7
NO_PRINT_ONE = 1

# [FFD] 1212: 31 excise goods with a marking code, 33 other goods with one (marked goods). Such a
# line needs a code bound with FF67h: classic firmware binds after FF46h, so the line is checked
# at the next FF46h or at the close; «кассовое ядро» binds before, so at its own FF46h. Without
# one the ФН refuses with A4h, required tags missing ([PROTO] p.70).
MARKED_PAYMENT_OBJECTS = (31, 33)
# FCh model ids of «кассовое ядро» registers ([JPOS] isCashCore: 16, 20, 21, 45, 46); the
# emulator with `firmware: core` reports 45. Classic firmware keeps MODEL_ID.
CORE_MODEL_ID = 45
# «кассовое ядро» extended error codes ([NG] #249, examples #42): 2108 must come before FF67h;
# FF67h is not allowed in this document; an empty code ([NG] examples #42).
EXT_UNIT_BEFORE_BIND = 0x00330054
EXT_NOT_IN_THIS_DOCUMENT = 0x005E0013
EXT_EMPTY_CODE = 0x00D30015
# Receipt types in which «кассовое ядро» takes a marked item: 0 приход, 2 возврат прихода.
CORE_MARKED_RECEIPT_TYPES = (0, 2)
# 2108 unit when the host sends none. [PROTO] v1.17 says nothing of a default (2108 appears only
# in FF61h p.58); UNSURE: 0, "штука", the unit of goods sold by the piece.
DEFAULT_UNIT = 0


@dataclass(frozen=True, slots=True)
class VatRate:
    """One value of the FF46h tax-rate byte: its ATOL name, ФФД 1199 code, tax fraction, the
    receipt tag that totals it (1102–1107) and the [GUIDE] tax group А–Г (1–4, 0 none)."""

    byte: int
    name: str
    code_1199: int
    percent: int  # tax included in the price: amount × percent / (100 + percent)
    total_tag: int | None
    turnover: bool  # the total tag sums the turnover (0 %, no VAT), not a tax
    group: int


# The FF46h tax-rate byte is a bitmask of the six taxes FF45h lists ([PROTO] FF45h p.52: tax 1
# НДС 18 (now 20) %, 2 НДС 10 %, 3 turnover at 0 %, 4 turnover without VAT, 5 18/118 (20/120),
# 6 10/110), bit n−1 for tax n as in the tax bitfields of FF0Dh (p.46); [PROTO] describes no
# other value (p.54: "Для налогов 3 и 4 сумма налога всегда считается равной нулю").
# The 2025–2026 rates 81h–CCh are the vendor's JavaPOS driver's ([JPOS]); UNSURE, accepted.
# ФФД 1199 ([FFD]): 1 20 %, 2 10 %, 3 20/120, 4 10/110, 5 0 %, 6 no VAT; 7 5 %, 8 7 %, 9 5/105,
# 10 7/107 from 2025, 11 22 %, 12 22/122 from 2026: codes 7–12 UNSURE, and so are the receipt
# totals of the new rates (none is written for them).
VAT_RATES: tuple[VatRate, ...] = (
    VatRate(0x01, "vat20", 1, 20, tlv.TAG_VAT20_SUM, False, 1),
    VatRate(0x02, "vat10", 2, 10, tlv.TAG_VAT10_SUM, False, 2),
    VatRate(0x04, "vat0", 5, 0, tlv.TAG_VAT0_TURNOVER, True, 3),
    VatRate(0x08, "none", 6, 0, tlv.TAG_NO_VAT_TURNOVER, True, 4),
    VatRate(0x10, "vat120", 3, 20, tlv.TAG_VAT120_SUM, False, 0),
    VatRate(0x20, "vat110", 4, 10, tlv.TAG_VAT110_SUM, False, 0),
    VatRate(0x81, "vat5", 7, 5, None, False, 0),
    VatRate(0x82, "vat7", 8, 7, None, False, 0),
    VatRate(0x84, "vat105", 9, 5, None, False, 0),
    VatRate(0x88, "vat107", 10, 7, None, False, 0),
    VatRate(0xCB, "vat22", 11, 22, None, False, 0),
    VatRate(0xCC, "vat122", 12, 22, None, False, 0),
)
_RATE_OF_BYTE = {rate.byte: rate for rate in VAT_RATES}
_RATE_OF_NAME = {rate.name: rate for rate in VAT_RATES}

# 80h–85h tax groups ([PROTO] 80h p.29: «0» – нет, «1»…«4» – налоговая группа; table 6 rows
# [GUIDE] p.35: 1 НДС 18(20)%, 2 НДС 10%, 3 НДС 0%, 4 без налога; 5 and 6, the calculated
# rates, are accepted as before).
_LEGACY_TAX = {0: "none", 1: "vat20", 2: "vat10", 3: "vat0", 4: "none", 5: "vat120", 6: "vat110"}

# 85h's four payment sums: cash, then payment types 2–4 (cashless) ([PROTO] 85h p.31).
_LEGACY_PAYMENT_KINDS = ("cash", "electronically", "electronically", "electronically")
# FF45h's sixteen ([PROTO] p.52–53): 1 cash, 2–13 electronic, 14 prepayment, 15 credit,
# 16 counter-provision.
_V2_PAYMENT_KINDS = ("cash",) + ("electronically",) * 12 + ("prepaid", "credit", "other")
# ФФД payment tags of each kind ([FFD] 1031, 1081, 1215, 1216, 1217).
_PAYMENT_TAGS = {
    "cash": tlv.TAG_CASH,
    "electronically": tlv.TAG_ELECTRONIC,
    "prepaid": tlv.TAG_PREPAYMENT,
    "credit": tlv.TAG_CREDIT,
    "other": tlv.TAG_COUNTER_PROVISION,
}
# FF45h tax-system bits ([PROTO] p.52–53): 0 ОСН … 5 ПСН; anything above is no system.
_TAX_SYSTEM_BITS = 0b111111


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did: the new state and either the answer's data or an error code."""

    state: EmulatorState
    answer: bytes | None = None  # the data after CMD and the zero error byte
    error: int = 0
    printed: TapeRecord | None = None  # a document was made: its paper-tape record
    added_line: bool = False  # 80h/82h/FF46h added a receipt line
    delay_s: float = 0.0  # the register takes this long before it answers (a silent ОИСМ)

    @property
    def closes_document(self) -> bool:
        """True when the command closed a fiscal document in the ФН."""
        return self.printed is not None and self.printed.fiscal


@dataclass(frozen=True, slots=True)
class _Ctx:
    """What every handler needs: host time, RTC time, the operator number."""

    host: dt.datetime
    rtc: dt.datetime
    operator: int


Handler = Callable[[EmulatorState, Any, _Ctx], Outcome]


def execute(state: EmulatorState, request: protocol.Request, host: dt.datetime) -> Outcome:
    """Run one request against `state` at host time `host`."""
    rtc = state.rtc(host)
    state = ofd_tick(state, rtc)
    handler = _HANDLERS.get(request.command)
    if handler is None:
        return Outcome(state, error=Kkt.UNSUPPORTED)
    try:
        operator = _check_password(request)
        return handler(state, request, _Ctx(host, rtc, operator))
    except Refused as refusal:
        if refusal.extended:
            state = replace(state, marking=replace(state.marking, extended_error=refusal.extended))
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


def _check_password(request: protocol.Request) -> int:
    """FFxxh, 1Eh and 21h–23h need 30, X/Z 29 or 30, the rest 1–30; returns the operator."""
    password = request.password
    if password is None:
        return 0
    allowed: range | tuple[int, ...] = CASHIER_PASSWORDS
    if request.command > 0xFF or request.command in _SYSADMIN_ONLY:
        allowed = SYSADMIN_PASSWORDS
    elif request.command in _ADMIN_ONLY:
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


def _host_tlvs(data: bytes) -> tuple[Tlv, ...]:
    """The TLVs of an FF0Ch/FF4Dh block: 10h above 250 bytes ([PROTO] p.46, error p.67), 33h
    when a header or a length runs past the end, also inside an STLV (p.68)."""
    if len(data) > tlv.MAX_BLOCK:
        raise Refused(Fn.TLV_TOO_BIG)
    try:
        tlvs = tlv.parse(data)
        for item in tlvs:
            _check_nested(item)
    except tlv.TlvError:
        raise Refused(Kkt.BAD_PARAMETERS) from None
    if not tlvs:
        raise Refused(Kkt.BAD_PARAMETERS)
    return tlvs


def _check_nested(item: Tlv) -> None:
    """Parse an STLV's members all the way down (TlvError when one is cut short)."""
    if tlv.KINDS.get(item.tag) is tlv.Kind.STLV:
        for member in tlv.parse(item.value):
            _check_nested(member)


def _line_tax(line: Line, rate: VatRate) -> int:
    """The line's VAT as the register computes it, half up ([GUIDE] p.35, p.7 note)."""
    if not rate.percent:
        return 0
    return (2 * line.amount * rate.percent + 100 + rate.percent) // (2 * (100 + rate.percent))


# --- documents --------------------------------------------------------------------------


def _print_flags(state: EmulatorState) -> tuple[bool, int]:
    """(printed, table 17 field 7 afterwards): «не печатать один документ» applies once."""
    if state.no_print == 0:
        return True, 0
    if state.no_print == NO_PRINT_ONE:
        return False, 0
    return False, state.no_print


def _close_document(
    state: EmulatorState,
    ctx: _Ctx,
    doc_type: int,
    tape_type: str,
    *,
    shift: Shift,
    shift_number: int,
    host_tlvs: tuple[Tlv, ...] = (),
    body: tuple[Tlv, ...] = (),
    operation: int | None = None,
    total: int = 0,
    items: tuple[TapeItem, ...] = (),
    payments: tuple[TapePayment, ...] = (),
) -> tuple[EmulatorState, Document, TapeRecord]:
    """Register a fiscal document in the ФН with all its tags; its printout may be cut by the
    paper running out. `body` are the document's own tags after the header (receipt fields,
    items, totals), `host_tlvs` those the host sent with FF0Ch."""
    number = state.last_document.number + 1
    when = fn.fn_time(ctx.rtc)
    sign = fn.fiscal_sign(state.identity.fn_number, number, when, total)
    sent = {t.tag for t in host_tlvs}
    # The registration's address and place stand in for what the host did not send ([FFD]
    # 1009, 1187 are mandatory in ФФД 1.2 documents).
    header = [t for t in header_tags(state.identity, number, when, sign) if t.tag not in sent]
    header.append(tlv.uint32(tlv.TAG_SHIFT_NUMBER, shift_number))
    tlvs = (*header, *body, *host_tlvs)
    doc = Document(
        number,
        doc_type,
        when,
        sign,
        shift_number,
        operation,
        total if operation else None,
        tlv.join(tlvs),
    )
    printed, no_print = _print_flags(state)
    record = TapeRecord(
        number,
        tape_type,
        when,
        sign,
        total,
        items,
        payments,
        shift_number,
        tags=tlv.tags_json(t for t in tlvs if t.tag != tlv.TAG_ITEM),
        printed=printed,
    )
    ofd = state.ofd
    if ofd.first_unacked > state.last_document.number:
        ofd = replace(ofd, head_since=ctx.rtc)
    printer = state.printer
    if printed and printer.paper_ends_next_document:
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
        no_print=no_print,
    )
    return new, doc, record


def _open_shift(state: EmulatorState, ctx: _Ctx) -> tuple[EmulatorState, Document]:
    """Register the shift-open report ([FFD] document 2)."""
    number = state.shift.number + 1
    shift = Shift(number=number, is_open=True, opened_at=fn.fn_time(ctx.rtc), receipts=0)
    host = state.begun.tlvs if state.begun is not None else ()
    state = replace(state, registers=counters.document_printed(state.registers))
    new, doc, _ = _close_document(
        state,
        ctx,
        fn.DOC_SHIFT_OPEN,
        "openShift",
        shift=shift,
        shift_number=number,
        host_tlvs=host,
    )
    return new, doc


def _close_shift(state: EmulatorState, ctx: _Ctx) -> tuple[EmulatorState, Document]:
    """Register the shift-close report (Z, [FFD] document 5); the shift registers go to zero."""
    number = state.shift.number
    shift = replace(state.shift, is_open=False, opened_at=None)
    host = state.begun.tlvs if state.begun is not None else ()
    registers = counters.shift_cleared(counters.document_printed(state.registers))
    state = replace(state, registers=registers)
    new, doc, _ = _close_document(
        state,
        ctx,
        fn.DOC_SHIFT_CLOSE,
        "closeShift",
        shift=shift,
        shift_number=number,
        host_tlvs=host,
    )
    return new, doc


def _item_tlvs(line: Line, rate: VatRate) -> tuple[Tlv, ...]:
    """The members of a line's STLV 1059 ([FFD] ФФД 1.2 "предмет расчета")."""
    bound = {t.tag for t in line.tlvs}
    members = [
        tlv.byte(tlv.TAG_PAYMENT_METHOD, line.payment_method),
        tlv.byte(tlv.TAG_PAYMENT_OBJECT, line.payment_object),
        tlv.string(tlv.TAG_ITEM_NAME, line.name),
        tlv.vln(tlv.TAG_PRICE, line.price),
        tlv.fvln(tlv.TAG_QUANTITY, line.quantity, 6),
        tlv.byte(tlv.TAG_VAT_RATE, rate.code_1199),
        tlv.vln(tlv.TAG_ITEM_SUM, line.amount),
    ]
    if line.tax is not None:
        # [PROTO] FF46h p.54 note 2: a tax sum given is kept and sent to the OFD.
        members.append(tlv.vln(tlv.TAG_ITEM_VAT, line.tax))
    if tlv.TAG_UNIT not in bound:
        members.append(tlv.byte(tlv.TAG_UNIT, DEFAULT_UNIT))
    marked = line.mark.item_tags() if line.mark is not None else ()
    return (*members, *line.tlvs, *marked)


def _close_receipt(
    state: EmulatorState,
    ctx: _Ctx,
    sums: tuple[int, ...],
    kinds: tuple[str, ...],
    discount: int,
    tax_system: int,
) -> tuple[EmulatorState, Document, int]:
    """Close the open receipt with payment `sums` (slot types `kinds`); returns the change."""
    receipt = state.receipt
    assert receipt is not None
    if state.identity.firmware == Firmware.CORE:
        if receipt.staged_tlvs or receipt.staged_mark is not None:
            # Tags or a code sent for an operation that never came (UNSURE what КЯ answers).
            raise Refused(Fn.WRONG_STATE)
    else:
        _require_marks_bound(receipt)
    total = receipt.total - discount
    paid = sum(sums)
    cash = sum(s for s, k in zip(sums, kinds, strict=True) if k == "cash")
    if paid < total:
        raise Refused(Kkt.PAYMENTS_BELOW_TOTAL)
    if paid - cash > total:
        raise Refused(Kkt.CASHLESS_ABOVE_TOTAL)
    change = paid - total
    by_kind: dict[str, int] = {}
    for amount, kind in zip(sums, kinds, strict=True):
        if amount:
            by_kind[kind] = by_kind.get(kind, 0) + amount

    rates = [_RATE_OF_NAME[line.vat] for line in receipt.lines]
    line_sums = [
        counters.LineSum(line.department, line.amount, rate.group, _line_tax(line, rate))
        for line, rate in zip(receipt.lines, rates, strict=True)
    ]
    guide_payments = (sums[0], sums[1], sums[2], sums[3])
    registers = counters.receipt_closed(
        state.registers, receipt.receipt_type, line_sums, guide_payments, change, discount
    )

    receipt_number = state.shift.receipts + 1
    operation = int(fn.OPERATION_OF_RECEIPT_TYPE[receipt.receipt_type])
    body: list[Tlv] = [
        tlv.uint32(tlv.TAG_RECEIPT_NUMBER, receipt_number),
        tlv.byte(tlv.TAG_OPERATION, operation),
        tlv.byte(tlv.TAG_TAX_SYSTEM, tax_system),
    ]
    item_tlvs = [_item_tlvs(line, rate) for line, rate in zip(receipt.lines, rates, strict=True)]
    body.extend(tlv.stlv(tlv.TAG_ITEM, members) for members in item_tlvs)
    body.append(tlv.vln(tlv.TAG_TOTAL, total))
    kept = dict(by_kind)
    kept["cash"] = kept.get("cash", 0) - change
    for kind, tag in _PAYMENT_TAGS.items():
        body.append(tlv.vln(tag, kept.get(kind, 0)))
    vat_totals: dict[int, int] = {}
    for line, rate, line_sum in zip(receipt.lines, rates, line_sums, strict=True):
        if rate.total_tag is not None:
            value = line.amount if rate.turnover else line_sum.tax
            vat_totals[rate.total_tag] = vat_totals.get(rate.total_tag, 0) + value
    body.extend(tlv.vln(tag, value) for tag, value in sorted(vat_totals.items()))

    items = tuple(
        TapeItem(
            line.name,
            line.price,
            line.quantity / fn.QTY_SCALE,
            line.amount,
            line.vat,
            tlv.tags_json(members),
            line.department,
        )
        for line, members in zip(receipt.lines, item_tlvs, strict=True)
    )
    shift = replace(state.shift, receipts=receipt_number)
    new, doc, _ = _close_document(
        replace(state, registers=registers),
        ctx,
        fn.DOC_RECEIPT,
        fn.TAPE_TYPE_OF_RECEIPT_TYPE[receipt.receipt_type],
        shift=shift,
        shift_number=state.shift.number,
        host_tlvs=receipt.tlvs,
        body=tuple(body),
        operation=operation,
        total=total,
        items=items,
        payments=tuple(TapePayment(kind, amount) for kind, amount in by_kind.items()),
    )
    return replace(new, marking=_marking_after_receipt(state.marking, receipt, doc)), doc, change


def _marking_after_receipt(
    marking_state: FnMarking, receipt: OpenReceipt, doc: Document
) -> FnMarking:
    """The ФН-М after a receipt closed: the table of checked codes is emptied, a code still
    waiting for FF69h too (UNSURE: no source says when the ФН-М empties it; the vendor's drivers
    clear it themselves with FF69h(2), [OPOS] at every receipt), and the items the ОИСМ never
    confirmed owe one notification of sale."""
    unconfirmed = tuple(
        line.mark for line in receipt.lines if line.mark is not None and line.mark.without_ism
    )
    notifications = marking_state.notifications
    number = marking_state.next_notification
    if unconfirmed:
        notifications += (marking.notification(number, doc.number, doc.datetime, unconfirmed),)
        number += 1
    return replace(
        marking_state,
        pending=None,
        table=(),
        notifications=notifications,
        next_notification=number,
    )


def _open_receipt(state: EmulatorState, ctx: _Ctx, receipt_type: int) -> EmulatorState:
    """Open a receipt of `receipt_type` (checks the ФН's clock rules)."""
    _require_no_begun(state)
    _require_fiscal_time(state, ctx)
    return replace(state, receipt=OpenReceipt(receipt_type=receipt_type, opened_at=ctx.rtc))


def _add_line(
    state: EmulatorState, ctx: _Ctx, receipt_type: int, line: Line, answer: bytes
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


def _op(ctx: _Ctx) -> bytes:
    """The answer that is just the operator's number (1…30)."""
    return bytes((ctx.operator,))


# --- handlers: status -------------------------------------------------------------------


def _short_status(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """10h ([PROTO] p.17): op, flags(2), mode, submode, operations (low byte), battery, power,
    reserved (2, the old ФП/ЭКЛЗ error codes), operations (high byte), reserved (3)."""
    operations = len(state.receipt.lines) if state.receipt is not None else 0
    data = bytes((ctx.operator,)) + protocol.u(flags_of(state), 2)
    data += bytes((mode_of(state, ctx.rtc), submode_of(state), operations & 0xFF))
    data += bytes((BATTERY_VOLTAGE, POWER_VOLTAGE, 0, 0, operations >> 8 & 0xFF, 0, 0, 0))
    return Outcome(state, data)


def _long_status(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """11h. [PROTO] p.18 gives a 48-byte answer without the old fiscal-memory fields; registers
    answer the older layout that pyshtrih and the vendor's JavaPOS driver read, with them:
    op, firmware version(2 ASCII), build(2), date(3), hall, through document number(2),
    flags(2), mode, submode, port, ФП version(2), build(2), date(3), date(3), time(3), ФП flags,
    serial low(4), last closed shift(2), free ФП records(2), registrations, left, ИНН(6),
    serial high(2)."""
    ident = state.identity
    last_closed = state.shift.number - 1 if state.shift.is_open else state.shift.number
    data = bytes((ctx.operator,))
    data += protocol.ascii_field(ident.firmware_version, 2)
    data += protocol.u(ident.firmware_build, 2) + protocol.ddmmyy(ident.firmware_date)
    data += bytes((1,)) + protocol.u(state.registers.through_number & 0xFFFF, 2)
    data += protocol.u(flags_of(state), 2)
    data += bytes((mode_of(state, ctx.rtc), submode_of(state), 0))
    data += protocol.ascii_field(FP_VERSION, 2) + protocol.u(0, 2) + protocol.ddmmyy(FP_DATE)
    data += protocol.ddmmyy(ctx.rtc.date()) + protocol.hhmmss(ctx.rtc.time())
    data += bytes((0,)) + protocol.u(ident.serial & 0xFFFFFFFF, 4)
    data += protocol.u(last_closed, 2) + protocol.u(0, 2)
    data += bytes((ident.registrations, ident.registrations_left))
    data += protocol.u(ident.inn, 6) + protocol.u(ident.serial >> 32 & 0xFFFF, 2)
    return Outcome(state, data)


def _device_type(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FCh ([PROTO] p.41): type, subtype, protocol version, subversion, model, language, name."""
    data = bytes(
        (
            DEVICE_TYPE,
            DEVICE_SUBTYPE,
            PROTOCOL_VERSION,
            PROTOCOL_SUBVERSION,
            CORE_MODEL_ID if state.identity.firmware == Firmware.CORE else MODEL_ID,
            LANGUAGE_RUSSIAN,
        )
    )
    return Outcome(state, data + MODEL_NAME.encode("cp1251"))


def _money_register(state: EmulatorState, req: protocol.RegisterRead, ctx: _Ctx) -> Outcome:
    """1Ah ([PROTO] p.22): op, contents(6); numbers per [GUIDE] pp.5–7 (see `counters`)."""
    value = counters.money(state.registers, req.register)
    return Outcome(state, _op(ctx) + protocol.u(value, 6))


def _operation_register(state: EmulatorState, req: protocol.RegisterRead, ctx: _Ctx) -> Outcome:
    """1Bh ([PROTO] pp.22–23): op, contents(2); numbers per [GUIDE] pp.7–10."""
    value = counters.operational(state.registers, req.register)
    return Outcome(state, _op(ctx) + protocol.u(value, 2))


def _write_table(state: EmulatorState, req: protocol.WriteTable, ctx: _Ctx) -> Outcome:
    """1Eh ([PROTO] p.23). Only table 17 row 1 field 7 «не печатать документ» is kept; [GUIDE]
    p.62 lets it cover "the one already open", so it is accepted with a receipt open although
    p.75 lists 1Eh for modes other than 8. Other tables are not emulated (37h)."""
    if (req.table, req.row, req.field) != (TABLE_REGIONAL, 1, FIELD_NO_PRINT):
        raise Refused(Kkt.UNSUPPORTED)
    value = req.value[0]
    if len(req.value) != 1 or value > 3:
        raise Refused(Kkt.BAD_PARAMETERS)
    return Outcome(replace(state, no_print=value), b"")


def _fn_status(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF01h ([PROTO] pp.42–43): phase, current document, document data, shift, warnings,
    last FD date-time(5), ФН number(16 ASCII), last FD number(4)."""
    current = fn.CURRENT_NONE
    has_data = 0
    if state.receipt is not None:
        current = fn.CURRENT_RECEIPT
        has_data = int(bool(state.receipt.lines or state.receipt.tlvs))
    elif state.begun is not None:
        current = state.begun.current
        has_data = int(bool(state.begun.tlvs))
    last = state.last_document
    data = bytes(
        (
            fn.PHASE_FISCAL,
            current,
            has_data,
            int(state.shift.is_open),
            fn_warnings_of(state, ctx.rtc),
        )
    )
    data += protocol.date_time(last.datetime) + protocol.ascii_field(state.identity.fn_number, 16)
    return Outcome(state, data + protocol.u(last.number, 4))


def _fn_expiry(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF03h ([PROTO] p.43): validity end YY MM DD; then re-registrations left and done, which
    v1.17 leaves out but pyshtrih and the vendor's JavaPOS driver read."""
    ident = state.identity
    data = protocol.yymmdd(ident.fn_expiry)
    return Outcome(state, data + bytes((ident.registrations_left, ident.registrations)))


def _fn_version(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF04h ([PROTO] p.43): version (16 ASCII), type."""
    return Outcome(state, protocol.ascii_field(FN_VERSION, 16) + bytes((FN_TYPE_SERIAL,)))


def _fn_registration(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF09h, the ФФД 1.1 answer ([PROTO] p.45): date-time(5), ИНН(12), registration number
    (20), tax systems(1), work mode(1), extended work flags(1), OFD ИНН(12), reason code(4),
    FD(4), FP(4) of the registration report."""
    ident = state.identity
    registration = state.documents[0]
    data = protocol.date_time(registration.datetime)
    data += protocol.ascii_field(str(ident.inn).ljust(12), 12)
    data += protocol.ascii_field(ident.registration_number.ljust(20), 20)
    data += bytes((ident.tax_systems, ident.work_mode, 0))
    data += protocol.ascii_field(OFD_INN, 12) + protocol.u(0, 4)
    data += protocol.u(registration.number, 4) + protocol.u(registration.fiscal_sign, 4)
    return Outcome(state, data)


def _fn_find_document(state: EmulatorState, req: protocol.DocumentNumber, ctx: _Ctx) -> Outcome:
    """FF0Ah ([PROTO] pp.45–46): type, OFD receipt flag, then the document's data: date-time(5),
    FD(4), FP(4), and for a receipt its operation(1) and total(5); 08h if there is none."""
    doc = state.document(req.number)
    if doc is None:
        raise Refused(Fn.NO_DATA)
    data = bytes((doc.doc_type, int(doc.number < state.ofd.first_unacked)))
    data += protocol.date_time(doc.datetime) + protocol.u(doc.number, 4)
    data += protocol.u(doc.fiscal_sign, 4)
    if doc.doc_type == fn.DOC_RECEIPT:
        data += bytes((doc.operation or 0,)) + protocol.u(doc.total or 0, 5)
    return Outcome(state, data)


def _fn_document_tlv(state: EmulatorState, req: protocol.DocumentNumber, ctx: _Ctx) -> Outcome:
    """FF3Ah ([PROTO] p.50): the document's type (its STLV tag, 2) and length (2); FF3Bh then
    reads its TLVs. 08h for a document the archive does not hold."""
    doc = state.document(req.number)
    if doc is None:
        raise Refused(Fn.NO_DATA)
    data = protocol.u(doc.doc_type, 2) + protocol.u(len(doc.tlv), 2)
    return Outcome(replace(state, reading=DocumentRead(doc.number)), data)


def _fn_read_document_tlv(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF3Bh ([PROTO] p.50): the next TLV of the document FF3Ah chose. One whole top-level TLV
    per answer when it fits in a message, else its next 252 bytes (UNSURE: [PROTO] only says
    "TLV структура (N байт)"). 02h without FF3Ah, 08h once all is read."""
    reading = state.reading
    doc = state.document(reading.number) if reading is not None else None
    if reading is None or doc is None:
        raise Refused(Fn.WRONG_STATE)
    data = doc.tlv
    pos = reading.position
    if pos >= len(data):
        raise Refused(Fn.NO_DATA)
    boundary = 0
    for item in tlv.parse(data):
        boundary += 4 + len(item.value)
        if boundary > pos:
            break
    end = min(boundary, pos + TLV_READ_BLOCK)
    new = replace(state, reading=replace(reading, position=end))
    return Outcome(new, data[pos:end])


def _fn_ofd_status(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF39h ([PROTO] p.50): exchange status, read flag, count(2), first FD(4), its date-time(5)."""
    count = unacked_count(state)
    oldest = _oldest_unacked(state)
    status = 0
    if state.ofd.draining:
        status |= OFD_CONNECTED
    if count:
        status |= OFD_MESSAGE_WAITING
    data = bytes((status, 0)) + protocol.u(count, 2)
    data += protocol.u(oldest.number if oldest is not None else 0, 4)
    data += protocol.date_time(oldest.datetime if oldest is not None else None)
    return Outcome(state, data)


def _fn_shift_params(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF40h ([PROTO] p.51): shift state(1), shift number(2), receipt number(2) — the last
    receipt of the open shift, or of the last one once it is closed."""
    shift = state.shift
    data = bytes((int(shift.is_open),)) + protocol.u(shift.number, 2)
    return Outcome(state, data + protocol.u(shift.receipts, 2))


# --- handlers: clock --------------------------------------------------------------------


def _set_time(state: EmulatorState, req: protocol.SetTime, ctx: _Ctx) -> Outcome:
    """21h: set the time of day (shift closed)."""
    _require_mode(state, ctx, MODE_SHIFT_CLOSED)
    target = dt.datetime.combine(ctx.rtc.date(), req.time)
    return Outcome(replace(state, clock=state.clock.set_rtc(ctx.host, target)), b"")


def _set_date(state: EmulatorState, req: protocol.SetDate, ctx: _Ctx) -> Outcome:
    """22h: remember the date and wait for 23h (mode 6)."""
    _require_mode(state, ctx, MODE_SHIFT_CLOSED, MODE_DATE_CONFIRM)
    if req.date < state.last_document.datetime.date():
        raise Refused(Fn.BAD_DATETIME)
    return Outcome(replace(state, pending_date=req.date), b"")


def _confirm_date(state: EmulatorState, req: protocol.SetDate, ctx: _Ctx) -> Outcome:
    """23h: the same date again sets the RTC's date."""
    _require_mode(state, ctx, MODE_DATE_CONFIRM)
    if req.date != state.pending_date:
        raise Refused(Kkt.DATE_MISMATCH)
    if req.date < state.last_document.datetime.date():
        raise Refused(Fn.BAD_DATETIME)
    target = dt.datetime.combine(req.date, ctx.rtc.time())
    new = replace(state, clock=state.clock.set_rtc(ctx.host, target), pending_date=None)
    return Outcome(new, b"")


# --- handlers: shifts, reports, cash ------------------------------------------------------


def _x_report(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """40h: X report (printed, no fiscal document)."""
    _require_mode(state, ctx, MODE_SHIFT_OPEN, MODE_SHIFT_EXPIRED)
    _require_printer(state)
    new = replace(state, registers=counters.document_printed(state.registers, x_report=True))
    return Outcome(new, _op(ctx))


def _z_report(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """41h: Z report, closes the shift in the ФН."""
    _require_mode(state, ctx, MODE_SHIFT_OPEN, MODE_SHIFT_EXPIRED)
    _require_printer(state)
    _require_fiscal_time(state, ctx, closing_shift=True)
    new, _ = _close_shift(state, ctx)
    return Outcome(new, _op(ctx), printed=new.last_tape)


def _open_shift_e0(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """E0h ([PROTO] p.38): open the shift; the answer carries the operator."""
    _require_mode(state, ctx, MODE_SHIFT_CLOSED)
    _require_printer(state)
    _require_fiscal_time(state, ctx)
    new, _ = _open_shift(state, ctx)
    return Outcome(new, _op(ctx), printed=new.last_tape)


def _fn_begin_open_shift(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF41h: begin the shift-open report (TLVs may follow)."""
    _require_mode(state, ctx, MODE_SHIFT_CLOSED)
    _require_fiscal_time(state, ctx)
    return Outcome(replace(state, begun=BegunDocument(fn.CURRENT_SHIFT_OPEN)), b"")


def _shift_document_answer(doc: Document) -> bytes:
    """FF0Bh / FF43h ([PROTO] pp.46, 52): shift number(2), FD(4), FP(4)."""
    return protocol.u(doc.shift, 2) + protocol.u(doc.number, 4) + protocol.u(doc.fiscal_sign, 4)


def _fn_open_shift(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF0Bh: finish the shift-open report begun with FF41h."""
    _require_mode(state, ctx, MODE_SHIFT_CLOSED)
    if state.begun is None or state.begun.current != fn.CURRENT_SHIFT_OPEN:
        raise Refused(Fn.WRONG_STATE)
    _require_printer(state)
    _require_fiscal_time(state, ctx)
    new, doc = _open_shift(state, ctx)
    return Outcome(new, _shift_document_answer(doc), printed=new.last_tape)


def _fn_begin_close_shift(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF42h: begin the shift-close report (TLVs may follow)."""
    _require_mode(state, ctx, MODE_SHIFT_OPEN, MODE_SHIFT_EXPIRED)
    _require_fiscal_time(state, ctx, closing_shift=True)
    return Outcome(replace(state, begun=BegunDocument(fn.CURRENT_SHIFT_CLOSE)), b"")


def _fn_close_shift(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF43h: finish the shift-close report begun with FF42h."""
    _require_mode(state, ctx, MODE_SHIFT_OPEN, MODE_SHIFT_EXPIRED)
    if state.begun is None or state.begun.current != fn.CURRENT_SHIFT_CLOSE:
        raise Refused(Fn.WRONG_STATE)
    _require_printer(state)
    _require_fiscal_time(state, ctx, closing_shift=True)
    new, doc = _close_shift(state, ctx)
    return Outcome(new, _shift_document_answer(doc), printed=new.last_tape)


def _cash_move(state: EmulatorState, req: protocol.CashMove, ctx: _Ctx) -> Outcome:
    """50h Внесение / 51h Выплата ([PROTO] p.28): a non-fiscal document in modes 2, 3, 4
    ([GUIDE] p.75); the answer is op and the through document number(2). 51h above the cash in
    the drawer: 46h ([PROTO] p.68)."""
    _require_mode(state, ctx, MODE_SHIFT_OPEN, MODE_SHIFT_EXPIRED, MODE_SHIFT_CLOSED)
    _require_printer(state)
    into = req.command == Cmd.CASH_IN
    try:
        registers = counters.cash_moved(state.registers, req.amount, into=into)
    except counters.NotEnoughCash:
        raise Refused(Kkt.NOT_ENOUGH_CASH) from None
    printed, no_print = _print_flags(state)
    record = TapeRecord(
        registers.through_number,
        "cashIn" if into else "cashOut",
        ctx.rtc.replace(microsecond=0),
        0,
        req.amount,
        (),
        (TapePayment("cash", req.amount),),
        state.shift.number,
        fiscal=False,
        printed=printed,
    )
    new = replace(state, registers=registers, last_tape=record, no_print=no_print)
    answer = _op(ctx) + protocol.u(registers.through_number & 0xFFFF, 2)
    return Outcome(new, answer, printed=record)


# --- handlers: receipts -----------------------------------------------------------------


def _open_receipt_8d(state: EmulatorState, req: protocol.OpenReceipt, ctx: _Ctx) -> Outcome:
    """8Dh: open a receipt of type 0–3 ([PROTO] p.32)."""
    if req.receipt_type not in fn.OPERATION_OF_RECEIPT_TYPE:
        raise Refused(Kkt.BAD_PARAMETERS)
    _require_mode(state, ctx, MODE_SHIFT_OPEN)
    _require_printer(state)
    return Outcome(_open_receipt(state, ctx, req.receipt_type), _op(ctx))


def _legacy_line(state: EmulatorState, req: protocol.LegacyLine, ctx: _Ctx) -> Outcome:
    """80h (a sale line) / 82h (a sale-return line) ([PROTO] pp.29–30); opens a receipt of
    its type in mode 2. Quantity ×1000; the amount is price × quantity, half up."""
    if req.quantity <= 0:
        raise Refused(Kkt.BAD_PARAMETERS)
    vat = _LEGACY_TAX.get(req.taxes[0])
    if vat is None:
        raise Refused(Kkt.BAD_PARAMETERS)
    line = Line(
        name=req.text,
        price=req.price,
        quantity=req.quantity * (fn.QTY_SCALE // 1000),
        amount=(req.price * req.quantity + 500) // 1000,
        vat=vat,
        department=req.department,
    )
    receipt_type = 0 if req.command == Cmd.SALE else 2
    return _add_line(state, ctx, receipt_type, line, _op(ctx))


def _fn_operation(state: EmulatorState, req: protocol.OperationV2, ctx: _Ctx) -> Outcome:
    """FF46h ([PROTO] pp.53–54): a receipt line; opens the receipt in mode 2."""
    try:
        operation = fn.Operation(req.operation)
    except ValueError:
        raise Refused(Kkt.BAD_PARAMETERS) from None
    if req.quantity <= 0:
        raise Refused(Kkt.BAD_PARAMETERS)
    exact = req.price * req.quantity  # kopecks × 10⁶
    amount = fn.round_qty(exact) if req.amount is None else req.amount
    # [PROTO] FF46h p.54 note 1: a sum given may differ from price × quantity by ±1 kopeck.
    if abs(amount * fn.QTY_SCALE - exact) > fn.QTY_SCALE:
        raise Refused(Kkt.BAD_PARAMETERS)
    rate = _RATE_OF_BYTE.get(req.tax_rate)
    if rate is None:
        raise Refused(Kkt.BAD_PARAMETERS)
    core = state.identity.firmware == Firmware.CORE
    receipt = state.receipt
    staged_tlvs: tuple[Tlv, ...] = ()
    staged_mark: CheckedCode | None = None
    if core and receipt is not None:
        staged_tlvs, staged_mark = receipt.staged_tlvs, receipt.staged_mark
    if core and req.payment_object in MARKED_PAYMENT_OBJECTS and staged_mark is None:
        # No marking code was bound before this line: the ФН lacks a required tag, A4h.
        raise Refused(Fn.MISSING_TAGS)
    if not core and receipt is not None:
        # Classic: the previous line had its chance to get its code (FF67h after its FF46h).
        _require_marks_bound(receipt)
    line = Line(
        name=req.name,
        price=req.price,
        quantity=req.quantity,
        amount=amount,
        vat=rate.name,
        department=req.department,
        payment_method=req.payment_method,
        payment_object=req.payment_object,
        tax=req.tax,
        tlvs=staged_tlvs,
        mark=staged_mark,
    )
    receipt_type = fn.RECEIPT_TYPE_OF_OPERATION[operation]
    outcome = _add_line(state, ctx, receipt_type, line, b"")
    opened = outcome.state.receipt
    if opened is not None and (opened.staged_tlvs or opened.staged_mark is not None):
        unstaged = replace(opened, staged_tlvs=(), staged_mark=None)
        outcome = replace(outcome, state=replace(outcome.state, receipt=unstaged))
    return outcome


def _require_marks_bound(receipt: OpenReceipt) -> None:
    """Classic firmware: the last line, if it is a marked item, has its code (else A4h)."""
    if receipt.lines:
        last = receipt.lines[-1]
        if last.payment_object in MARKED_PAYMENT_OBJECTS and last.mark is None:
            raise Refused(Fn.MISSING_TAGS)


def _fn_send_tlv(state: EmulatorState, req: protocol.TlvBlock, ctx: _Ctx) -> Outcome:
    """FF0Ch ([PROTO] p.46): document tags for the open receipt or the begun shift document.
    A tag of an item or one the register builds itself does not belong here: ФН 09h (p.67)."""
    _require_mode(state, ctx, MODE_SHIFT_OPEN, MODE_SHIFT_EXPIRED, MODE_SHIFT_CLOSED, MODE_DOCUMENT)
    tlvs = _host_tlvs(req.data)
    if any(t.tag in tlv.ITEM_ONLY or t.tag in tlv.REGISTER_BUILT for t in tlvs):
        raise Refused(Fn.BAD_VALUE)
    if state.receipt is not None:
        new = replace(state, receipt=replace(state.receipt, tlvs=state.receipt.tlvs + tlvs))
    elif state.begun is not None:
        new = replace(state, begun=replace(state.begun, tlvs=state.begun.tlvs + tlvs))
    else:
        raise Refused(Fn.WRONG_STATE)
    return Outcome(new, b"")


def _fn_send_operation_tlv(state: EmulatorState, req: protocol.TlvBlock, ctx: _Ctx) -> Outcome:
    """FF4Dh ([PROTO] p.56): tags bound to the last operation of the open receipt (mode 8,
    [GUIDE] p.76). A document-level tag does not belong to an item: ФН 09h (p.67); no line to
    bind to: ФН 02h. «кассовое ядро» keeps them for the next FF46h instead."""
    _require_mode(state, ctx, MODE_DOCUMENT)
    tlvs = _host_tlvs(req.data)
    if any(t.tag in tlv.DOCUMENT_ONLY for t in tlvs):
        raise Refused(Fn.BAD_VALUE)
    receipt = state.receipt
    if receipt is not None and state.identity.firmware == Firmware.CORE:
        # «кассовое ядро» takes an operation's tags before the operation ([JPOS]
        # getCapOperationTagsFirst): they wait for the next FF46h.
        staged = replace(receipt, staged_tlvs=receipt.staged_tlvs + tlvs)
        return Outcome(replace(state, receipt=staged), b"")
    if receipt is None or not receipt.lines:
        raise Refused(Fn.WRONG_STATE)
    last = receipt.lines[-1]
    lines = (*receipt.lines[:-1], replace(last, tlvs=last.tlvs + tlvs))
    return Outcome(replace(state, receipt=replace(receipt, lines=lines)), b"")


def _default_tax_system(state: EmulatorState) -> int:
    """85h carries no tax system: the lowest one the register is registered with."""
    systems = state.identity.tax_systems
    return systems & -systems


def _close_receipt_85(state: EmulatorState, req: protocol.LegacyClose, ctx: _Ctx) -> Outcome:
    """85h ([PROTO] p.31): close the receipt with four payment sums and a percent discount."""
    _require_mode(state, ctx, MODE_DOCUMENT)
    _require_printer(state)
    _require_fiscal_time(state, ctx)
    assert state.receipt is not None
    if not -9999 <= req.discount_percent_x100 <= 9999:
        raise Refused(Kkt.BAD_PARAMETERS)
    discount = (state.receipt.total * req.discount_percent_x100 + 5000) // 10000
    new, _, change = _close_receipt(
        state, ctx, req.payments, _LEGACY_PAYMENT_KINDS, discount, _default_tax_system(state)
    )
    return Outcome(new, _op(ctx) + protocol.u(change, 5), printed=new.last_tape)


def _close_receipt_v2(state: EmulatorState, req: protocol.CloseV2, ctx: _Ctx) -> Outcome:
    """FF45h ([PROTO] pp.52–53): close the receipt with sixteen payment sums and a rounding.

    The tax system must be one bit (p.53 note 1 "Может быть только одна система
    налогообложения в чеке": 33h, p.68) and one the register is registered with (35h
    «Некорректный параметр при данных настройках», p.68). The six tax sums are read and not
    used: in tax mode 0 (table 1, the default) "касса рассчитывает налоги самостоятельно ...
    и налоги переданные в команде игнорируются" (p.53).
    """
    _require_mode(state, ctx, MODE_DOCUMENT)
    _require_printer(state)
    _require_fiscal_time(state, ctx)
    assert state.receipt is not None
    system = req.tax_system
    if system == 0 or system & (system - 1) or system & ~_TAX_SYSTEM_BITS:
        raise Refused(Kkt.BAD_PARAMETERS)
    if not system & state.identity.tax_systems:
        raise Refused(Kkt.BAD_FOR_SETTINGS)
    # Rounding to the ruble: a discount of 0–99 kopecks ([PROTO] p.52 "Округление до рубля").
    if not 0 <= req.rounding <= min(99, state.receipt.total):
        raise Refused(Kkt.BAD_PARAMETERS)
    new, doc, change = _close_receipt(
        state, ctx, req.payments, _V2_PAYMENT_KINDS, req.rounding, system
    )
    # Change(5), FD(4), FP(4), date-time(5) (p.53, the extended answer).
    data = protocol.u(change, 5) + protocol.u(doc.number, 4) + protocol.u(doc.fiscal_sign, 4)
    return Outcome(new, data + protocol.date_time(doc.datetime), printed=new.last_tape)


def _cancel_receipt(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """88h: cancel the open receipt."""
    _require_mode(state, ctx, MODE_DOCUMENT)
    return Outcome(_receipt_cancelled(state), _op(ctx))


def _receipt_cancelled(state: EmulatorState) -> EmulatorState:
    """No receipt, no begun document. Codes bound in the cancelled receipt are free again in
    the table: a cancel does not clear it (the choice here; the host clears it with FF69h(2),
    and ATOL's cancel keeps checked codes unless told otherwise, [ATOLJS] base_receipt)."""
    table = tuple(replace(entry, bound=False) for entry in state.marking.table)
    return replace(state, receipt=None, begun=None, marking=replace(state.marking, table=table))


def _fn_cancel_document(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF08h: cancel the open receipt or the begun shift document."""
    if state.receipt is None and state.begun is None:
        raise Refused(Fn.WRONG_STATE)
    return Outcome(_receipt_cancelled(state), b"")


def _continue_print(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """B0h: finish an interrupted printout once paper is back."""
    if state.printer.cover_open:
        raise Refused(Kkt.PRINTER_SENSORS)
    if not state.printer.paper:
        raise Refused(Kkt.NO_PAPER)
    new = replace(state, printer=replace(state.printer, interrupted=False))
    return Outcome(new, _op(ctx))


# --- handlers: marking ------------------------------------------------------------------
#
# Rules (the reference for each is next to it):
# - a ФН registered without the marking flag refuses every marking command with A0h, FF68h
#   with 32h ([JPOS] messages; [NG]);
# - FF61h checks one code; until FF69h(0/1) decides it, another FF61h is out of order: A1h
#   (UNSURE: the ФН-М may instead drop the undecided code; A1h is "bad Bxh sequence");
# - FF69h(1) puts the code into the table of checked codes, FF69h(0) drops it, FF69h(2)
#   empties the table (a code still waiting goes too); closing a receipt empties it as well;
# - FF67h binds only a code accepted into the table (ФН ACh otherwise), once per receipt;
# - the table is ФН state: it is saved like everything else and survives a power cut.


def _require_marking(state: EmulatorState) -> FnMarking:
    """The ФН-М's marking state; A0h when the ФН is registered without marking."""
    if not state.identity.marking:
        raise Refused(Fn.MARKING_FORBIDDEN)
    return state.marking


def _fn_check_mark(state: EmulatorState, req: protocol.MarkCheck, ctx: _Ctx) -> Outcome:
    """FF61h: check a code in the ФН and with the ОИСМ; the answer is 2004, reason, 2100, n and
    n bytes: fnCode, 2106, the ОИСМ's TLV ([JPOS] FSCheckMC, [OPOS]). The code then waits for
    FF69h. An empty code: 33h, extended D30015h ([NG] examples #42); a planned status other than
    1–4 or 255, a processing mode other than 0 or a TLV with other tags than 2108, 1023, 1291:
    33h. A silent ОИСМ makes the register wait `IsmConfig.timeout_s` before it answers."""
    state_marking = _require_marking(state)
    if not req.code:
        raise Refused(Kkt.BAD_PARAMETERS, EXT_EMPTY_CODE)
    if req.planned_status not in marking.PLANNED_STATUSES or req.mode != marking.PROCESSING_MODE:
        raise Refused(Kkt.BAD_PARAMETERS)
    if req.tlv:
        try:
            sent = tlv.parse(req.tlv)
        except tlv.TlvError:
            raise Refused(Kkt.BAD_PARAMETERS) from None
        if any(t.tag not in marking.CHECK_TLV_TAGS for t in sent):
            raise Refused(Kkt.BAD_PARAMETERS)
    if state_marking.pending is not None:
        raise Refused(Fn.MARKING_SEQUENCE)
    if len(state_marking.notifications) >= marking.NOTIFICATION_CAPACITY:
        raise Refused(Fn.MARKING_BLOCKED)
    if len(state_marking.table) >= marking.TABLE_CAPACITY:
        raise Refused(Fn.MARKING_TABLE_FULL)
    checked = marking.check(req.code, req.planned_status, req.mode, req.tlv, state.ism, ctx.rtc)
    delay = state.ism.timeout_s if checked.answer == IsmAnswer.TIMEOUT else 0.0
    new = replace(state, marking=replace(state_marking, pending=checked))
    return Outcome(new, checked.check_block(), delay_s=delay)


DECIDE_REJECT = 0
DECIDE_ACCEPT = 1
DECIDE_CLEAR = 2


def _fn_decide_mark(state: EmulatorState, req: protocol.MarkDecision, ctx: _Ctx) -> Outcome:
    """FF69h: 0 reject or 1 accept the code FF61h checked (the answer is its 2106, [JPOS]
    FSAcceptMC); 2 empty the table of checked codes (no answer data). 0/1 with no code waiting:
    A1h; another action: 33h."""
    state_marking = _require_marking(state)
    if req.action == DECIDE_CLEAR:
        if state_marking.clear_refused:
            raise Refused(Fn.MARKING_SEQUENCE)
        return Outcome(replace(state, marking=replace(state_marking, pending=None, table=())), b"")
    if req.action not in (DECIDE_REJECT, DECIDE_ACCEPT):
        raise Refused(Kkt.BAD_PARAMETERS)
    pending = state_marking.pending
    if pending is None:
        raise Refused(Fn.MARKING_SEQUENCE)
    table = state_marking.table
    if req.action == DECIDE_ACCEPT:
        table = (*table, pending)
    new = replace(state, marking=replace(state_marking, pending=None, table=table))
    return Outcome(new, bytes((pending.result,)))


def _fn_bind_mark(state: EmulatorState, req: protocol.MarkBind, ctx: _Ctx) -> Outcome:
    """FF67h: bind an accepted code to an item; the answer is the code type(2) and the DataMatrix
    kind(1), plus a check block when the fault `ism_bind_recheck` makes it check the code again
    ([JPOS] FSBindMC, `marking.bind`). Classic firmware binds it to the
    last line (none: ФН 02h; one bound already: A1h). «кассовое ядро» keeps it for the next
    FF46h: only in приход / возврат прихода (5Eh, extended 5E0013h), only after FF4Dh gave the
    line's 2108 (33h, extended 330054h), one per line (A1h). A code not accepted in the table:
    ФН ACh (UNSURE: a real КЯ checks it itself instead). The ОСУ flag (FFh after the code) is
    taken; the emulator keeps no volume-sort accounting, so it changes nothing."""
    state_marking = _require_marking(state)
    _require_mode(state, ctx, MODE_DOCUMENT)
    receipt = state.receipt
    assert receipt is not None
    core = state.identity.firmware == Firmware.CORE
    if core:
        if receipt.receipt_type not in CORE_MARKED_RECEIPT_TYPES:
            raise Refused(Kkt.NOT_IN_THIS_DOCUMENT, EXT_NOT_IN_THIS_DOCUMENT)
        if not any(t.tag == tlv.TAG_UNIT for t in receipt.staged_tlvs):
            raise Refused(Kkt.BAD_PARAMETERS, EXT_UNIT_BEFORE_BIND)
        if receipt.staged_mark is not None:
            raise Refused(Fn.MARKING_SEQUENCE)
    else:
        if not receipt.lines:
            raise Refused(Fn.WRONG_STATE)
        if receipt.lines[-1].mark is not None:
            raise Refused(Fn.MARKING_SEQUENCE)
    entry = state_marking.accepted(req.code)
    if entry is None:
        raise Refused(Fn.MARK_NOT_CHECKED)
    bound = marking.bind(entry, state.ism, ctx.rtc)
    position = state_marking.table.index(entry)
    table = (*state_marking.table[:position], bound, *state_marking.table[position + 1 :])
    if core:
        receipt = replace(receipt, staged_mark=bound)
    else:
        last = replace(receipt.lines[-1], mark=bound)
        receipt = replace(receipt, lines=(*receipt.lines[:-1], last))
    new = replace(state, receipt=receipt, marking=replace(state_marking, table=table))
    return Outcome(new, bound.bind_answer())


# FF68h exchange states ([JPOS] commands.xml): 0 idle, 1 a notification is being read,
# 2 read whole, waiting for the ОИСМ's ticket (FF73h).
ISM_IDLE = 0
ISM_READING = 1
ISM_WAITING_TICKET = 2


def _fn_ism_status(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF68h: exchange state(1), notifications waiting(2), the current one's number(4), the
    oldest one's date-time(5), notification area fill %(1). 32h without marking."""
    if not state.identity.marking:
        raise Refused(Kkt.NO_MARKING)
    if state.ism.answer == IsmAnswer.AUTONOMOUS:
        # A ФН in autonomous mode has no exchange with the ОИСМ: ФН 02h ([OPOS]).
        raise Refused(Fn.WRONG_STATE)
    notifications = state.marking.notifications
    reading = state.marking.reading
    exchange = ISM_IDLE
    current = notifications[0].number if notifications else 0
    if reading is not None:
        current = reading.number
        read = _notification(state.marking, reading.number)
        exchange = ISM_WAITING_TICKET if reading.offset >= len(read.data) else ISM_READING
    oldest = notifications[0].created if notifications else None
    fill = min(100, len(notifications) * 100 // marking.NOTIFICATION_CAPACITY)
    data = bytes((exchange,)) + protocol.u(len(notifications), 2) + protocol.u(current, 4)
    return Outcome(state, data + protocol.date_time(oldest) + bytes((fill,)))


# FF70h check states ([JPOS] FSReadMCStatus): 0 blocked, 1 no check in progress, 2 the code
# passed to the ФН (B1h), 3 the ОИСМ request formed (B5h), 4 its answer passed to the ФН (B6h).
CHECK_BLOCKED = 0
CHECK_IDLE = 1
CHECK_CODE_PASSED = 2
CHECK_REQUEST_FORMED = 3
CHECK_ANSWER_PASSED = 4
# Its command flags: bit0 B1h … bit4 B6h. Which ФН commands the middle bits stand for is not
# given; UNSURE: bit 0 B1h (code given), bit 3 B5h (request formed), bit 4 B6h (answer given).
FLAG_B1 = 1 << 0
FLAG_B5 = 1 << 3
FLAG_B6 = 1 << 4
# Notification states: 0 none, 1 one is being formed (a receipt with marked items is open),
# 2 blocked (the notification area is full).
NOTICE_NONE = 0
NOTICE_FORMING = 1
NOTICE_BLOCKED = 2


def _fn_marking_status(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF70h: check state(1), notification state(1), command flags(1), codes in the table(1),
    codes in the notification being formed(1), notification area fill(1), notifications
    waiting(2) ([JPOS] FSReadMCStatus)."""
    state_marking = _require_marking(state)
    pending = state_marking.pending
    waiting = len(state_marking.notifications)
    full = waiting >= marking.NOTIFICATION_CAPACITY
    flags = 0
    if full or len(state_marking.table) >= marking.TABLE_CAPACITY:
        check_state = CHECK_BLOCKED
    elif pending is None:
        check_state = CHECK_IDLE
    elif pending.server is None:
        check_state, flags = CHECK_CODE_PASSED, FLAG_B1
    elif pending.server == marking.SERVER_TIMEOUT:
        check_state, flags = CHECK_REQUEST_FORMED, FLAG_B1 | FLAG_B5
    else:
        check_state, flags = CHECK_ANSWER_PASSED, FLAG_B1 | FLAG_B5 | FLAG_B6
    in_receipt = 0
    if state.receipt is not None:
        in_receipt = sum(line.mark is not None for line in state.receipt.lines)
        in_receipt += state.receipt.staged_mark is not None
    notice = NOTICE_BLOCKED if full else NOTICE_FORMING if in_receipt else NOTICE_NONE
    data = bytes(
        (
            check_state,
            notice,
            flags,
            min(0xFF, len(state_marking.table)),
            in_receipt,
            marking.area_fill(waiting),
        )
    )
    return Outcome(state, data + protocol.u(waiting, 2))


def _notification(state_marking: FnMarking, number: int) -> marking.Notification:
    """Notification `number` among those waiting; ФН 08h when it is gone."""
    for notice in state_marking.notifications:
        if notice.number == number:
            return notice
    raise Refused(Fn.NO_DATA)


def _fn_notifications_begin(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF71h: start reading the oldest notification: waiting count(2), its number(4), its
    size(2) ([JPOS] commands.xml). None waiting: ФН 08h."""
    state_marking = _require_marking(state)
    if not state_marking.notifications:
        raise Refused(Fn.NO_DATA)
    first = state_marking.notifications[0]
    reading = marking.NotificationRead(first.number)
    new = replace(state, marking=replace(state_marking, reading=reading))
    data = protocol.u(len(state_marking.notifications), 2) + protocol.u(first.number, 4)
    return Outcome(new, data + protocol.u(len(first.data), 2))


def _fn_notification_read(state: EmulatorState, req: protocol.Request, ctx: _Ctx) -> Outcome:
    """FF72h: the next block of the notification FF71h chose: its number(4), full size(2),
    this block's offset(2), up to 128 bytes. Without FF71h: 02h; all read: 08h."""
    state_marking = _require_marking(state)
    reading = state_marking.reading
    if reading is None:
        raise Refused(Fn.WRONG_STATE)
    notice = _notification(state_marking, reading.number)
    if reading.offset >= len(notice.data):
        raise Refused(Fn.NO_DATA)
    block = notice.data[reading.offset : reading.offset + marking.NOTIFICATION_BLOCK]
    moved = replace(reading, offset=reading.offset + len(block))
    new = replace(state, marking=replace(state_marking, reading=moved))
    data = protocol.u(notice.number, 4) + protocol.u(len(notice.data), 2)
    return Outcome(new, data + protocol.u(reading.offset, 2) + block)


def _fn_notification_confirm(
    state: EmulatorState, req: protocol.NotificationConfirm, ctx: _Ctx
) -> Outcome:
    """FF73h: the notification read whole went to the ОИСМ; its ticket removes it from the ФН.
    Not the one read, or not read whole: 02h; a wrong checksum (CRC-32 of the data, UNSURE):
    09h; the fake ОИСМ set to refuse uploads gives no ticket: 08h (UNSURE which code a real
    ФН gives), and the notification stays."""
    state_marking = _require_marking(state)
    reading = state_marking.reading
    if reading is None or reading.number != req.number:
        raise Refused(Fn.WRONG_STATE)
    notice = _notification(state_marking, reading.number)
    if reading.offset < len(notice.data):
        raise Refused(Fn.WRONG_STATE)
    if req.crc != notice.crc:
        raise Refused(Fn.BAD_VALUE)
    if not state.ism.uploads_ok:
        raise Refused(Fn.NO_DATA)
    left = tuple(n for n in state_marking.notifications if n.number != notice.number)
    new = replace(state, marking=replace(state_marking, notifications=left, reading=None))
    return Outcome(new, b"")


_HANDLERS: dict[int, Handler] = {
    Cmd.SHORT_STATUS: _short_status,
    Cmd.LONG_STATUS: _long_status,
    Cmd.DEVICE_TYPE: _device_type,
    Cmd.MONEY_REGISTER: _money_register,
    Cmd.OPERATION_REGISTER: _operation_register,
    Cmd.WRITE_TABLE: _write_table,
    Cmd.SET_TIME: _set_time,
    Cmd.SET_DATE: _set_date,
    Cmd.CONFIRM_DATE: _confirm_date,
    Cmd.X_REPORT: _x_report,
    Cmd.Z_REPORT: _z_report,
    Cmd.CASH_IN: _cash_move,
    Cmd.CASH_OUT: _cash_move,
    Cmd.OPEN_SHIFT: _open_shift_e0,
    Cmd.OPEN_RECEIPT: _open_receipt_8d,
    Cmd.SALE: _legacy_line,
    Cmd.RETURN_SALE: _legacy_line,
    Cmd.CLOSE_RECEIPT: _close_receipt_85,
    Cmd.CANCEL_RECEIPT: _cancel_receipt,
    Cmd.CONTINUE_PRINT: _continue_print,
    Cmd.FN_STATUS: _fn_status,
    Cmd.FN_EXPIRY: _fn_expiry,
    Cmd.FN_VERSION: _fn_version,
    Cmd.FN_CANCEL_DOCUMENT: _fn_cancel_document,
    Cmd.FN_REGISTRATION: _fn_registration,
    Cmd.FN_FIND_DOCUMENT: _fn_find_document,
    Cmd.FN_BEGIN_OPEN_SHIFT: _fn_begin_open_shift,
    Cmd.FN_OPEN_SHIFT: _fn_open_shift,
    Cmd.FN_BEGIN_CLOSE_SHIFT: _fn_begin_close_shift,
    Cmd.FN_CLOSE_SHIFT: _fn_close_shift,
    Cmd.FN_SEND_TLV: _fn_send_tlv,
    Cmd.FN_OFD_STATUS: _fn_ofd_status,
    Cmd.FN_DOCUMENT_TLV: _fn_document_tlv,
    Cmd.FN_READ_DOCUMENT_TLV: _fn_read_document_tlv,
    Cmd.FN_SHIFT_PARAMS: _fn_shift_params,
    Cmd.FN_CLOSE_RECEIPT_V2: _close_receipt_v2,
    Cmd.FN_OPERATION_V2: _fn_operation,
    Cmd.FN_SEND_OPERATION_TLV: _fn_send_operation_tlv,
    Cmd.FN_CHECK_MARK: _fn_check_mark,
    Cmd.FN_DECIDE_MARK: _fn_decide_mark,
    Cmd.FN_BIND_MARK: _fn_bind_mark,
    Cmd.FN_ISM_STATUS: _fn_ism_status,
    Cmd.FN_MARKING_STATUS: _fn_marking_status,
    Cmd.FN_NOTIFICATIONS_BEGIN: _fn_notifications_begin,
    Cmd.FN_NOTIFICATION_READ: _fn_notification_read,
    Cmd.FN_NOTIFICATION_CONFIRM: _fn_notification_confirm,
}

# [PROTO] 40h/41h p.26: administrator or system administrator.
_ADMIN_ONLY = frozenset({Cmd.X_REPORT, Cmd.Z_REPORT})
# [PROTO] 1Eh p.23, 21h–23h pp.23–24: system administrator (as every FFxxh command, pp.42–56).
_SYSADMIN_ONLY = frozenset({Cmd.WRITE_TABLE, Cmd.SET_TIME, Cmd.SET_DATE, Cmd.CONFIRM_DATE})
