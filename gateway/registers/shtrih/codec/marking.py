"""Marked goods (ФФД 1.2, ФН-М): FF61h check, FF67h bind, FF68h ОИСМ exchange status, FF69h
accept / reject / clear, FF70h marking status, FF71h–FF73h autonomous notification upload. Pure.

Layouts follow the vendor's protocol text as [OPOS] (FiscalPrinterDevice) and [JPOS]
(FSCheckMC, FSBindMC, FSAcceptMC, FSReadMCStatus) quote it. Where the two differ, the vendor
text quoted by [OPOS] wins: FF68h is 13 bytes (state, queue, number, date-time, fill %), FF72h
has no block-size field and FF73h takes the CRC in 4 bytes; [JPOS] reads other shapes there.

The check result block (FF61h answer, optional tail of the FF67h answer):
`2004(1) reason(1) 2100(1) n(1) [fnCode(1) 2106(1) TLV(n-2)]`. n is 0 when the register works
autonomously or the ОИСМ did not answer. fnCode 00h: the ОИСМ answered, 2106 and its tags
follow; 20h: its answer was refused and the next byte is why (1 fiscal sign, 2 format, 3
request number, 4 ФН number, 5 CRC, 7 length); FFh: no answer within the timeout.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar, Self

from gateway.domain import marking
from gateway.domain.errors import ProtocolError
from gateway.registers.shtrih.codec.messages import (
    Answer,
    Cmd,
    Request,
    command_bytes,
    split_command,
)
from gateway.registers.shtrih.codec.tlv import decode_tlvs
from gateway.registers.shtrih.codec.wire import (
    PASSWORD,
    U8,
    U16,
    U32,
    FnDateTime,
    Layout,
    Rest,
)

# A frame body holds 255 bytes: FF 61, the password and four length/status bytes leave 245
# for the code and its TLV together.
MAX_CHECK_DATA = 255 - 2 - 4 - 4
# FF67h: FF 67, the password, the length byte and the optional volume-sort flag.
MAX_BIND_CODE = 255 - 2 - 4 - 1 - 1

# FF69h actions ([OPOS] FSAcceptItemCode).
REJECT = 0
ACCEPT = 1
CLEAR = 2

# fnCode of the check block.
SERVER_OK = 0x00
SERVER_BAD_ANSWER = marking.SERVER_ANSWER_REFUSED
SERVER_TIMEOUT = 0xFF

# FF67h `Тип Data Matrix` (meaningful only for a GS1 DataMatrix code).
DM_KM88 = 0
DM_SYMMETRIC = 1
DM_TOBACCO = 2
DM_KM44 = 3
DM_GS1_UNMARKED = 0xFF
# FF67h flag byte after the code: volume-sort accounting (ОСУ).
VOLUME_SORT = 0xFF


def _with_password(request: Request) -> bytes:
    return command_bytes(request.COMMAND) + PASSWORD.encode(request.password)


def _request_data(cls: type[Request], body: bytes) -> tuple[int, bytes]:
    """(password, parameters) of a request body of `cls`."""
    command, rest = split_command(body)
    if command != cls.COMMAND:
        raise ProtocolError(f"body is command {command:#x}, not {cls.COMMAND:#x}")
    if len(rest) < 4:
        raise ProtocolError(f"command {command:#x}: no password")
    return PASSWORD.decode(rest[:4]), rest[4:]


# --- the check result block ------------------------------------------------------------------


def _encode_block(local: int, reason: int, code_type: int, server: bytes) -> bytes:
    if len(server) > 0xFF:
        raise ValueError(f"server data of {len(server)} bytes does not fit its length byte")
    return bytes((local, reason, code_type, len(server))) + server


def _decode_block(data: bytes) -> tuple[int, int, int, bytes]:
    """(2004, reason, 2100, server data) of a check block; trailing bytes are an error."""
    if len(data) < 4:
        raise ProtocolError(f"marking check block too short: {data.hex()}")
    n = data[3]
    server = data[4:]
    if len(server) != n:
        raise ProtocolError(
            f"marking check block too short or too long: announces {n} bytes, has {len(server)}"
        )
    return data[0], data[1], data[2], server


def _server_code(server: bytes) -> int | None:
    return server[0] if server else None


def _server_result(server: bytes) -> int | None:
    """2106 of the check: present after fnCode 00h. After FFh (no answer) the byte, when a
    register sends it, is read as the 2106 the ФН keeps without the ОИСМ (UNSURE: [OPOS]
    says 2106 is there "only when the server answered without errors"); after 20h it is the
    reason of the refusal, not 2106."""
    if len(server) < 2 or server[0] == SERVER_BAD_ANSWER:
        return None
    return server[1]


def _answer_refusal(server: bytes) -> int | None:
    """Why the ФН refused the ОИСМ's answer: the byte after fnCode 20h."""
    return server[1] if len(server) >= 2 and server[0] == SERVER_BAD_ANSWER else None


def _server_tags(server: bytes) -> tuple[tuple[int, bytes], ...]:
    """The ОИСМ answer's TLVs (2105, 2109, 2005…), only after fnCode 00h."""
    if len(server) <= 2 or server[0] != SERVER_OK:
        return ()
    return tuple(decode_tlvs(server[2:]))


def _code_check(local: int, reason: int, code_type: int, server: bytes) -> marking.CodeCheck:
    try:
        why: marking.NotCheckedReason | int = marking.NotCheckedReason(reason)
    except ValueError:
        why = reason
    code = _server_code(server)
    return marking.CodeCheck(
        local=local,
        reason=why,
        code_type=code_type,
        answered=code == SERVER_OK,
        result=_server_result(server),
        server_code=code,
        server_tags=_server_tags(server),
        answer_refusal=_answer_refusal(server),
    )


# --- FF61h check -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarkingCheckRequest(Request):
    """FF61h check a marking code: 2003(1) 2102(1) code length(1) TLV length(1) code TLV.

    The TLV is only for a measured or fractional sale: 2108, 1023 and 1291 ([JPOS] FSCheckMC;
    [OPOS]). Wire example from [NG] #145: `FF 61 1E 00 00 00 01 00 1D 00 <29 bytes of code>`.
    """

    COMMAND: ClassVar[Cmd] = Cmd.FN_MARKING_CHECK
    planned_status: int = int(marking.PlannedStatus.PIECE_SOLD)
    processing_mode: int = 0
    code: bytes = b""
    tlv: bytes = b""

    def to_body(self) -> bytes:
        """CMD password 2003 2102 len(code) len(tlv) code tlv; ValueError when too long."""
        if len(self.code) + len(self.tlv) > MAX_CHECK_DATA:
            raise ValueError(
                f"a code of {len(self.code)} bytes with {len(self.tlv)} bytes of tags is over "
                f"the {MAX_CHECK_DATA} bytes FF61h carries"
            )
        head = bytes((self.planned_status, self.processing_mode, len(self.code), len(self.tlv)))
        return _with_password(self) + head + self.code + self.tlv

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        """Parse (the emulator's side and tests)."""
        password, data = _request_data(cls, body)
        if len(data) < 4:
            raise ProtocolError(f"FF61h too short: {body.hex()}")
        code_len, tlv_len = data[2], data[3]
        if len(data) != 4 + code_len + tlv_len:
            raise ProtocolError(f"FF61h lengths {code_len}+{tlv_len} do not fit: {body.hex()}")
        return cls(
            password=password,
            planned_status=data[0],
            processing_mode=data[1],
            code=data[4 : 4 + code_len],
            tlv=data[4 + code_len :],
        )


@dataclass(frozen=True, slots=True)
class MarkingCheck(Answer):
    """FF61h answer: the check result block (see the module's text)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_MARKING_CHECK
    local: int  # 2004
    reason: int  # why the ФН did not check the code itself
    code_type: int  # 2100
    server: bytes = b""  # fnCode, 2106, the ОИСМ's TLVs: the block's n bytes

    def to_body(self) -> bytes:
        """CMD 00 block."""
        block = _encode_block(self.local, self.reason, self.code_type, self.server)
        return command_bytes(self.COMMAND) + b"\x00" + block

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        """Parse; the block's length byte must match the bytes that follow it."""
        local, reason, code_type, server = _decode_block(cls._data_of(body))
        return cls(local=local, reason=reason, code_type=code_type, server=server)

    @property
    def server_code(self) -> int | None:
        """fnCode: 00h answered, 20h answer refused, FFh no answer; None when n = 0."""
        return _server_code(self.server)

    @property
    def result(self) -> int | None:
        """2106, when the block carries it."""
        return _server_result(self.server)

    @property
    def refusal_reason(self) -> int | None:
        """Why the ФН refused the ОИСМ's answer (after fnCode 20h)."""
        return _answer_refusal(self.server)

    def check(self) -> marking.CodeCheck:
        """The domain view; ProtocolError when the ОИСМ tags are malformed."""
        return _code_check(self.local, self.reason, self.code_type, self.server)


# --- FF67h bind ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarkingBindRequest(Request):
    """FF67h bind a marking code to the line: code length(1) code [FFh volume-sort flag]."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_MARKING_BIND
    code: bytes = b""
    volume_sort: bool = False

    def to_body(self) -> bytes:
        """CMD password len(code) code [FF]; ValueError when the code is too long."""
        if len(self.code) > MAX_BIND_CODE:
            raise ValueError(
                f"a code of {len(self.code)} bytes is over the {MAX_BIND_CODE} FF67h carries"
            )
        flag = bytes((VOLUME_SORT,)) if self.volume_sort else b""
        return _with_password(self) + bytes((len(self.code),)) + self.code + flag

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        """Parse (the emulator's side and tests)."""
        password, data = _request_data(cls, body)
        if not data or len(data) < 1 + data[0]:
            raise ProtocolError(f"FF67h too short: {body.hex()}")
        code = data[1 : 1 + data[0]]
        tail = data[1 + data[0] :]
        if tail not in (b"", bytes((VOLUME_SORT,))):
            raise ProtocolError(f"FF67h has {tail.hex()} after the code")
        return cls(password=password, code=code, volume_sort=bool(tail))


@dataclass(frozen=True, slots=True)
class MarkingBind(Answer):
    """FF67h answer: code kind(2) Data Matrix type(1) [check result block].

    Code kind: `44 4D` GS1 DataMatrix, `45 08`/`45 0D` EAN-8/13, `49 0E` ITF-14, `52 46` fur
    tag, `C5 14`/`C5 1E` ЕГАИС, `4F xx` volume-sort, `00 00` unknown. The block is there when
    the register checked the code itself because FF61h had not ([OPOS] FSBindItemCode).
    """

    COMMAND: ClassVar[Cmd] = Cmd.FN_MARKING_BIND
    code_kind: bytes
    dm_type: int
    local: int | None = None
    reason: int | None = None
    code_type: int | None = None
    server: bytes = b""

    def to_body(self) -> bytes:
        """CMD 00 kind type [block]."""
        if len(self.code_kind) != 2:
            raise ValueError("the code kind is two bytes")
        data = self.code_kind + bytes((self.dm_type,))
        if self.local is not None:
            data += _encode_block(self.local, self.reason or 0, self.code_type or 0, self.server)
        return command_bytes(self.COMMAND) + b"\x00" + data

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        """Parse; the check block is optional."""
        data = cls._data_of(body)
        if len(data) < 3:
            raise ProtocolError(f"FF67h answer too short: {body.hex()}")
        if len(data) == 3:
            return cls(code_kind=data[:2], dm_type=data[2])
        local, reason, code_type, server = _decode_block(data[3:])
        return cls(
            code_kind=data[:2],
            dm_type=data[2],
            local=local,
            reason=reason,
            code_type=code_type,
            server=server,
        )

    @property
    def result(self) -> int | None:
        """2106 of the register's own check, when it made one."""
        return _server_result(self.server) if self.local is not None else None

    def check(self) -> marking.CodeCheck | None:
        """The register's own check, when it made one."""
        if self.local is None:
            return None
        return _code_check(self.local, self.reason or 0, self.code_type or 0, self.server)


# --- FF69h accept / reject / clear -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarkingAcceptRequest(Request):
    """FF69h: 0 reject the code just checked, 1 accept it, 2 clear the table of checked codes.

    "Must be sent after checking each code" ([OPOS]). Штрих-Нано-Ф refuses action 2 with
    ФН error A1h ([NG] javapos #156).
    """

    COMMAND: ClassVar[Cmd] = Cmd.FN_MARKING_ACCEPT
    LAYOUT: ClassVar[Layout] = (("action", U8),)
    action: int = ACCEPT


@dataclass(frozen=True, slots=True)
class MarkingAcceptAnswer(Answer):
    """FF69h answer: [2106] — [JPOS] commands.xml and FSAcceptMC read it, [OPOS] reads
    nothing, so it is optional."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_MARKING_ACCEPT
    LAYOUT: ClassVar[Layout] = (("result", U8),)
    OPTIONAL_FROM: ClassVar[int | None] = 0
    result: int | None = None


# --- FF70h marking status --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarkingStatusRequest(Request):
    """FF70h marking status."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_MARKING_STATUS


@dataclass(frozen=True, slots=True)
class MarkingStatus(Answer):
    """FF70h answer ([OPOS] FSReadMarkStatus, [JPOS] FSReadMCStatus): check state, notification
    state, allowed-command flags (B1h…B7h), saved results, codes in the notification, storage
    fill (0 <50 % … 4 full), notifications queued (2)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_MARKING_STATUS
    LAYOUT: ClassVar[Layout] = (
        ("check_state", U8),
        ("notification_state", U8),
        ("flags", U8),
        ("saved_results", U8),
        ("codes_in_notification", U8),
        ("area_fill", U8),
        ("unsent", U16),
    )
    check_state: int
    notification_state: int
    flags: int
    saved_results: int
    codes_in_notification: int
    area_fill: int
    unsent: int

    def state(self) -> marking.MarkingState:
        """The domain view."""
        return marking.MarkingState(
            check_state=self.check_state,
            notification_state=self.notification_state,
            flags=self.flags,
            saved_results=self.saved_results,
            codes_in_notification=self.codes_in_notification,
            area_fill=self.area_fill,
            unsent=self.unsent,
        )


# --- FF68h ОИСМ exchange status --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IsmExchangeStatusRequest(Request):
    """FF68h status of the notification exchange with the ОИСМ."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_ISM_EXCHANGE_STATUS


@dataclass(frozen=True, slots=True)
class IsmExchangeStatus(Answer):
    """FF68h answer ([OPOS] FSReadTicketStatus): state (0 idle, 1 reading a notification, 2
    waiting for its receipt), notifications queued (2), current notification number (4), its
    date-time (5, zeros when none), storage fill % (1). Errors: 32h the ФН was registered
    without marked goods; ФН 02h it works autonomously (or a reading is under way)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_ISM_EXCHANGE_STATUS
    LAYOUT: ClassVar[Layout] = (
        ("state", U8),
        ("unsent", U16),
        ("current_number", U32),
        ("current_datetime", FnDateTime()),
        ("fill_percent", U8),
    )
    state: int
    unsent: int
    current_number: int
    current_datetime: dt.datetime | None
    fill_percent: int

    def exchange(self) -> marking.IsmExchange:
        """The domain view."""
        when = self.current_datetime
        return marking.IsmExchange(
            state=self.state,
            unsent=self.unsent,
            current_number=self.current_number,
            first_unsent_at=when.strftime("%Y-%m-%dT%H:%M") if when is not None else None,
            fill_percent=self.fill_percent,
        )


# --- FF71h–FF73h autonomous notification upload ----------------------------------------------


@dataclass(frozen=True, slots=True)
class NotificationBeginRequest(Request):
    """FF71h start reading the notifications of an autonomous register."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_NOTIFICATION_BEGIN


@dataclass(frozen=True, slots=True)
class NotificationBegin(Answer):
    """FF71h answer: notifications (2), the first one's number (4) and size (2)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_NOTIFICATION_BEGIN
    LAYOUT: ClassVar[Layout] = (("count", U16), ("first_number", U32), ("first_size", U16))
    count: int
    first_number: int
    first_size: int


@dataclass(frozen=True, slots=True)
class NotificationReadRequest(Request):
    """FF72h read the next block of a notification; "no data" (error) after the last."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_NOTIFICATION_READ


@dataclass(frozen=True, slots=True)
class NotificationBlock(Answer):
    """FF72h answer: notification number (4), its full size (2), this block's offset (2), the
    block (at most 128 bytes per the vendor text)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_NOTIFICATION_READ
    LAYOUT: ClassVar[Layout] = (
        ("number", U32),
        ("full_size", U16),
        ("offset", U16),
        ("block", Rest(128)),
    )
    number: int
    full_size: int
    offset: int
    block: bytes = b""


@dataclass(frozen=True, slots=True)
class NotificationConfirmRequest(Request):
    """FF73h confirm the upload of notification `number` with its CRC (4 bytes in the vendor
    text quoted by [OPOS]; [JPOS] writes 2)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_NOTIFICATION_CONFIRM
    LAYOUT: ClassVar[Layout] = (("number", U32), ("crc", U32))
    number: int = 0
    crc: int = 0


@dataclass(frozen=True, slots=True)
class NotificationConfirmAnswer(Answer):
    """FF73h answer (empty)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_NOTIFICATION_CONFIRM
