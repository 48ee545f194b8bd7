"""Marked goods in the emulated ФН-М: what it remembers, how it reads a code, the fake ОИСМ.

Pure: no I/O. `machine` runs the commands (FF61h check, FF69h decide, FF67h bind, FF68h/FF70h
status, FF71h–FF73h notification upload) on the values kept here; the layouts are [PROTO]'s
marking commands as the vendor's drivers quote them ([JPOS] commands.xml, [OPOS]
FiscalPrinterDevice.pas).

The ФН's own check of a code comes from its shape ([FFD] 2004, 2100; [JPOS] the "reason not
checked" byte):

- a GS1 code (`01` + 14 digits, `21` serial) with AI 91 (key id) and 92 (check code, 44 or
  88 characters) is checked in the ФН: 2004 = 3, reason 0, 2100 = 4 (44) or 2 (88);
- a GS1 code with AI 93 (a 4-character check code: dairy, water…) is not: 2004 = 0, reason 1,
  2100 = 5 (as the register answered in the [NG] #165 trace);
- a GS1 code with none of them: 2004 = 0, reason 3 ("AI 91/92 missing or malformed"), 2100 = 0;
- a 29-character code that starts with 14 digits and has no GS is a tobacco pack's short code:
  2004 = 0, reason 1, 2100 = 1 (the [NG] #145 trace);
- anything else: 2004 = 0, reason 4 ("other"), 2100 = 0.

The fake ОИСМ answers every check with one of `IsmAnswer`, by default or per code. Its 2106
([FFD] bits: 0 code checked, 1 check code right, 2 ОИСМ checked the status, 3 planned status
right, 4 autonomous):

- positive 0x0F; negative 0x05 (the code is false: checked, wrong; status not confirmed —
  the [NG] #145 answer); sold 0x07 (the code is right, the item is sold already);
- timeout: no answer in time, fnCode FFh, no ОИСМ tags; 2106 carries only what the ФН
  checked itself (bits 0–1 from 2004);
- autonomous: n = 0, nothing from the ОИСМ; 2106 = bits 0–1 from 2004 plus bit 4;
- refused: the ОИСМ answered but the ФН refused its answer: fnCode 20h and the reason byte 1
  (bad fiscal sign of the answer) instead of 2106, no tags; the sale owes a notification and
  records 2106 = bits 0–1 from 2004.

A negative answer for a code the ФН checks itself also fails that check (2004 = 1): a false
code's check code does not verify either. The ОИСМ answer's tags are 2114 (the request time,
UnixTime), 2105 (request processing code, 0 = correct) and 2005 (processing results), in the
order of the [NG] #145 trace; 2005 repeats the 2106 bits as in that trace (UNSURE: [ATOLJS]
names only bits 1 and 3 of 2005).
"""

from __future__ import annotations

import datetime as dt
import enum
import zlib
from dataclasses import dataclass, replace

from gateway.registers.emulator import tlv
from gateway.registers.emulator.tlv import Tlv

GS = 0x1D

# 2106 bits ([FFD]; [JPOS] checkTag2106, [ATOLJS] getItemInfoCheckResult).
CHECK_DONE = 0x01
CHECK_POSITIVE = 0x02
ISM_DONE = 0x04
ISM_POSITIVE = 0x08
AUTONOMOUS = 0x10
# 2004 bits: the ФН checked the code itself, and the check code was right.
LOCAL_CHECKED = 0x01
LOCAL_POSITIVE = 0x02

# The "reason not checked in the ФН" byte of FF61h ([JPOS], [OPOS]).
REASON_CHECKED = 0
REASON_TYPE_NOT_CHECKABLE = 1
REASON_NO_GS1_91_92 = 3
REASON_OTHER = 4

# 2100, the code type the ФН recognised ([KSL] ImcType, [TSDEF]).
TYPE_UNRECOGNISED = 0
TYPE_SHORT = 1
TYPE_VERIFY88 = 2
TYPE_VERIFY44 = 4
TYPE_VERIFY4 = 5

# 2003 planned status ([JPOS] FSCheckMC, [TSDEF]): 1 piece sold, 2 measured sold, 3 piece
# returned, 4 measured returned, 255 unchanged.
PLANNED_STATUSES = frozenset({1, 2, 3, 4, 255})
# 2102 processing mode: "сейчас всегда 0" ([JPOS] commands.xml).
PROCESSING_MODE = 0

# FF61h fnCode ([JPOS], [OPOS]): 0 the ОИСМ answered, FFh no answer within the timeout.
SERVER_ANSWERED = 0x00
SERVER_TIMEOUT = 0xFF
# fnCode 20h: the ФН refused the ОИСМ's answer; the next byte says why (1 bad fiscal sign).
SERVER_ANSWER_REFUSED = 0x20
REFUSED_BAD_SIGN = 1

# Tags of the ОИСМ answer ([NG] #145 trace; the name of 2114 is UNSURE).
TAG_REQUEST_TIME = 2114
TAG_REQUEST_CODE = 2105
TAG_PROCESSING_RESULTS = 2005
# Tags of a marked item in the ФН archive ([FFD]): the code, the processing mode, the result.
TAG_CODE = 2000
TAG_MODE = 2102
TAG_RESULT = 2106
# The FF61h TLV may carry only the measured quantity ([JPOS] commands.xml: 2108 unit, 1023
# quantity, 1291 fractional quantity).
CHECK_TLV_TAGS = frozenset({2108, 1023, 1291})

# The ФН-М's check table and notification area are finite (ФН A3h "таблица проверки КМ
# переполнена"); their sizes are not in any source (UNSURE): the emulator holds 100 checked
# codes and 100 unsent notifications, enough for any receipt a test prints.
TABLE_CAPACITY = 100
NOTIFICATION_CAPACITY = 100
# FF72h hands a notification out in blocks of at most 128 bytes ([JPOS] commands.xml).
NOTIFICATION_BLOCK = 128
# How long the register waits for an ОИСМ that does not answer. [JPOS] allows FF61h 40 s; the
# emulator's default is short so that tests of the no-answer path stay fast.
DEFAULT_TIMEOUT_S = 0.05

# FF67h: the code type pair and the DataMatrix kind ([JPOS] FSBindMC): `44 4D` a DataMatrix;
# DataMatrix kinds 0 КМ88, 1 symmetric, 2 tobacco, 3 КМ44. A code with a 4-character check
# code is a short-key DataMatrix; UNSURE which kind the register reports: 1.
CODE_TYPE_DATAMATRIX = b"\x44\x4d"
CODE_TYPE_UNKNOWN = b"\x00\x00"
_DM_KIND = {TYPE_VERIFY88: 0, TYPE_VERIFY4: 1, TYPE_SHORT: 2, TYPE_VERIFY44: 3}


class IsmAnswer(enum.StrEnum):
    """What the fake ОИСМ says about a code."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    SOLD = "sold"
    TIMEOUT = "timeout"
    AUTONOMOUS = "autonomous"
    REFUSED = "refused"  # answered, but the ФН refused the answer (fnCode 20h)


class Firmware(enum.StrEnum):
    """The register's firmware family: where the item tags and FF67h go around FF46h.

    classic: FF46h, then FF4Dh (the item's tags), then FF67h binds the code to that line
    ([OPOS] PrintFSSale; [JPOS] by default). core («кассовое ядро»): 8Dh opens the receipt, then
    per line FF4Dh (2108 first), FF67h, and only then FF46h, which takes them all ([JPOS]
    getCapOperationTagsFirst; [NG] examples #42, #180).
    """

    CLASSIC = "classic"
    CORE = "core"


# The 2106 an answer gives when the ОИСМ answered.
_ANSWERED_RESULT = {
    IsmAnswer.POSITIVE: CHECK_DONE | CHECK_POSITIVE | ISM_DONE | ISM_POSITIVE,
    IsmAnswer.NEGATIVE: CHECK_DONE | ISM_DONE,
    IsmAnswer.SOLD: CHECK_DONE | CHECK_POSITIVE | ISM_DONE,
}


@dataclass(frozen=True, slots=True)
class IsmOverride:
    """One code the fake ОИСМ answers its own way."""

    code: bytes
    answer: str  # an IsmAnswer value


@dataclass(frozen=True, slots=True)
class IsmConfig:
    """The fake ОИСМ: its answer, per-code answers, its silence, whether it takes uploads."""

    answer: str = IsmAnswer.POSITIVE.value
    overrides: tuple[IsmOverride, ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S  # how long a check waits when the ОИСМ is silent
    uploads_ok: bool = True  # FF73h: the ОИСМ acknowledges an uploaded notification
    # An IsmAnswer value: FF67h checks every code again, as a register does with a code that
    # is not in its table, and this is the ОИСМ's answer to that check (None: no re-check).
    bind_recheck: str | None = None

    def answer_for(self, code: bytes) -> IsmAnswer:
        """The answer the ОИСМ gives `code`."""
        for override in self.overrides:
            if override.code == code:
                return IsmAnswer(override.answer)
        return IsmAnswer(self.answer)

    def with_override(self, code: bytes, answer: IsmAnswer | None) -> IsmConfig:
        """This config with `code` answered `answer` (None: the default answer again)."""
        kept = tuple(o for o in self.overrides if o.code != code)
        if answer is not None:
            kept += (IsmOverride(code, answer.value),)
        return replace(self, overrides=kept)


@dataclass(frozen=True, slots=True)
class CheckedCode:
    """One code as FF61h checked it, with everything the host sent for it."""

    code: bytes
    planned_status: int  # 2003
    mode: int  # 2102
    check_tlv: bytes  # the FF61h TLV as sent (2108, 1023, 1291)
    local: int  # 2004
    reason: int
    code_type: int  # 2100
    server: int | None  # fnCode; None when the answer has n = 0
    result: int  # 2106
    ism_tags: bytes  # the ОИСМ answer's TLV
    answer: str  # the IsmAnswer the fake ОИСМ gave
    bound: bool = False  # FF67h bound it to a line of the open receipt
    rechecked: bool = False  # FF67h checked it again (not FF61h): its answer has the block

    @property
    def without_ism(self) -> bool:
        """The ОИСМ gave no answer (timeout or autonomous): the sale owes a notification."""
        return not self.result & ISM_DONE

    def check_block(self) -> bytes:
        """The FF61h answer after ERR: 2004, reason, 2100, n, [fnCode, 2106, TLV]."""
        head = bytes((self.local, self.reason, self.code_type))
        if self.server is None:
            return head + b"\0"
        if self.server == SERVER_ANSWER_REFUSED:
            # After 20h the byte is why the ФН refused the answer, not 2106.
            return head + bytes((2, SERVER_ANSWER_REFUSED, REFUSED_BAD_SIGN))
        tail = bytes((self.server, self.result)) + self.ism_tags
        return head + bytes((len(tail),)) + tail

    def bind_answer(self) -> bytes:
        """The FF67h answer after ERR: code type(2), DataMatrix kind(1), and the check's block
        (the same block as FF61h's, [JPOS] FSBindMC) only when FF67h checked the code itself:
        "if the code was not checked by FF61h first, the register checks it and appends the
        result" ([OPOS] FSBindItemCode, [JPOS] commands.xml). A code FF61h checked and FF69h
        accepted gets the three bytes alone."""
        kind = _DM_KIND.get(self.code_type)
        head = CODE_TYPE_UNKNOWN + b"\0" if kind is None else CODE_TYPE_DATAMATRIX + bytes((kind,))
        return head + self.check_block() if self.rechecked else head

    def item_tags(self) -> tuple[Tlv, ...]:
        """What the item carries in the ФН archive: 2000 the code, 2102 the mode, 2106 the
        result. [FFD] 1163 is built from the code by the register ([JPOS] markingType 0); the
        emulator keeps 2000 itself instead (UNSURE which the ФН stores; the code is what a
        test needs to see)."""
        return (
            Tlv(TAG_CODE, self.code),
            tlv.byte(TAG_MODE, self.mode),
            tlv.byte(TAG_RESULT, self.result),
        )


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification of sale the ФН keeps until the ОИСМ acknowledges it (FF71h–FF73h)."""

    number: int
    document: int  # the receipt's fiscal document number
    created: dt.datetime
    data: bytes  # TLV: 1040 FD number, 1012 date-time, then per item 2000 and 2106

    @property
    def crc(self) -> int:
        """The checksum FF73h confirms: CRC-32 of the data (UNSURE which CRC the ФН uses)."""
        return zlib.crc32(self.data)


@dataclass(frozen=True, slots=True)
class NotificationRead:
    """FF71h began reading notification `number`; FF72h has handed out `offset` bytes."""

    number: int
    offset: int = 0


@dataclass(frozen=True, slots=True)
class FnMarking:
    """The ФН-М's marking state: the code waiting for FF69h, the checked-codes table, the
    notifications not yet acknowledged. Saved with the rest of the state: a power cut keeps it."""

    pending: CheckedCode | None = None
    table: tuple[CheckedCode, ...] = ()
    notifications: tuple[Notification, ...] = ()
    next_notification: int = 1
    reading: NotificationRead | None = None
    # The extended code of the last 33h/5Eh marking refusal of «кассовое ядро» ([NG] #249,
    # examples #42): the error answer carries no data, so it is kept here and logged.
    extended_error: int = 0
    # FF69h(2) is refused with ФН A1h, as Штрих-Нано-Ф does ([NG] javapos #156).
    clear_refused: bool = False

    def accepted(self, code: bytes) -> CheckedCode | None:
        """The accepted, not yet bound entry for `code`."""
        for entry in self.table:
            if entry.code == code and not entry.bound:
                return entry
        return None


def recognise(code: bytes) -> tuple[int, int, int]:
    """2004, the reason byte and 2100 the ФН gives `code` by its shape (see the module)."""
    gs1 = _gs1_groups(code)
    if gs1 is not None:
        keys = {group[:2] for group in gs1[1:]}
        if b"93" in keys:
            return 0, REASON_TYPE_NOT_CHECKABLE, TYPE_VERIFY4
        check = next((group[2:] for group in gs1[1:] if group[:2] == b"92"), None)
        if b"91" in keys and check is not None and len(check) in (44, 88):
            code_type = TYPE_VERIFY44 if len(check) == 44 else TYPE_VERIFY88
            return LOCAL_CHECKED | LOCAL_POSITIVE, REASON_CHECKED, code_type
        return 0, REASON_NO_GS1_91_92, TYPE_UNRECOGNISED
    if len(code) == 29 and GS not in code and code[:14].isdigit():
        return 0, REASON_TYPE_NOT_CHECKABLE, TYPE_SHORT
    return 0, REASON_OTHER, TYPE_UNRECOGNISED


def _gs1_groups(code: bytes) -> list[bytes] | None:
    """The GS-separated groups of a GS1 marking code (`01` GTIN `21` serial first), or None."""
    if len(code) < 19 or code[:2] != b"01" or not code[2:16].isdigit() or code[16:18] != b"21":
        return None
    return code.split(bytes((GS,)))


def check(
    code: bytes,
    planned_status: int,
    mode: int,
    check_tlv: bytes,
    ism: IsmConfig,
    when: dt.datetime,
) -> CheckedCode:
    """FF61h: the ФН's own check and the fake ОИСМ's answer for `code` at RTC time `when`."""
    local, reason, code_type = recognise(code)
    answer = ism.answer_for(code)
    if answer is IsmAnswer.NEGATIVE and local & LOCAL_CHECKED:
        local = LOCAL_CHECKED
    local_bits = (CHECK_DONE if local & LOCAL_CHECKED else 0) | (
        CHECK_POSITIVE if local & LOCAL_POSITIVE else 0
    )
    server: int | None
    if answer is IsmAnswer.TIMEOUT:
        server, result, tags = SERVER_TIMEOUT, local_bits, b""
    elif answer is IsmAnswer.REFUSED:
        server, result, tags = SERVER_ANSWER_REFUSED, local_bits, b""
    elif answer is IsmAnswer.AUTONOMOUS:
        server, result, tags = None, local_bits | AUTONOMOUS, b""
    else:
        server, result = SERVER_ANSWERED, _ANSWERED_RESULT[answer]
        tags = tlv.join(
            (
                tlv.unixtime(TAG_REQUEST_TIME, when.replace(microsecond=0)),
                tlv.byte(TAG_REQUEST_CODE, 0),
                tlv.byte(TAG_PROCESSING_RESULTS, result),
            )
        )
    return CheckedCode(
        code=code,
        planned_status=planned_status,
        mode=mode,
        check_tlv=check_tlv,
        local=local,
        reason=reason,
        code_type=code_type,
        server=server,
        result=result,
        ism_tags=tags,
        answer=answer.value,
    )


def bind(entry: CheckedCode, ism: IsmConfig, when: dt.datetime) -> CheckedCode:
    """The entry FF67h binds: as FF61h checked it, or checked again with the answer
    `ism.bind_recheck` (the re-checked 2106 is what the document then records)."""
    if ism.bind_recheck is None:
        return replace(entry, bound=True)
    again = check(
        entry.code,
        entry.planned_status,
        entry.mode,
        entry.check_tlv,
        replace(ism, answer=ism.bind_recheck, overrides=()),
        when,
    )
    return replace(again, bound=True, rechecked=True)


def notification(
    number: int, document: int, when: dt.datetime, marks: tuple[CheckedCode, ...]
) -> Notification:
    """The notification of sale for a receipt whose marked items the ОИСМ never confirmed."""
    tags: list[Tlv] = [
        tlv.uint32(tlv.TAG_FD_NUMBER, document),
        tlv.unixtime(tlv.TAG_DATETIME, when),
    ]
    for mark in marks:
        tags.append(Tlv(TAG_CODE, mark.code))
        tags.append(tlv.byte(TAG_RESULT, mark.result))
    return Notification(number, document, when, tlv.join(tags))


def area_fill(count: int) -> int:
    """FF70h notification area fill: 0 below 50 %, 1 50–80, 2 80–90, 3 above 90, 4 full."""
    if count >= NOTIFICATION_CAPACITY:
        return 4
    percent = count * 100 // NOTIFICATION_CAPACITY
    if percent < 50:
        return 0
    if percent < 80:
        return 1
    if percent < 90:
        return 2
    return 3


def parse_code(text: str) -> bytes:
    """A marking code given as text (control channel, command line): `<GS>` or the GS
    character itself between AIs; `hex:` followed by hex digits for any bytes."""
    if text.startswith("hex:"):
        try:
            return bytes.fromhex(text[4:])
        except ValueError as err:
            raise ValueError(f"bad hex marking code {text!r}: {err}") from None
    raw = text.replace("<GS>", "\x1d")
    try:
        return raw.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"a marking code is ASCII, got {text!r}") from None
