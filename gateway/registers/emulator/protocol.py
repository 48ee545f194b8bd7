"""The register's reading of request bodies and writing of answer bodies, straight from [PROTO].

Pure. A request body is the command code (one byte, or FFh and a second byte for the ФН
commands) and its parameters; an answer body is the command code, the error code and, when the
error code is 0, the answer's data ([PROTO] p.8; with an error only the command and its code).
Numbers are binary, least significant byte first; money is 5 bytes of kopecks; text is WIN1251
([PROTO] p.9). The layout of every command is written next to its parser with its page.

This module knows nothing of the driver's codec on purpose: the emulator is an oracle for the
driver, so it reads the bytes the way the protocol document describes them.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class Cmd(enum.IntEnum):
    """Command codes the emulated register implements."""

    SHORT_STATUS = 0x10
    LONG_STATUS = 0x11
    MONEY_REGISTER = 0x1A
    OPERATION_REGISTER = 0x1B
    WRITE_TABLE = 0x1E
    SET_TIME = 0x21
    SET_DATE = 0x22
    CONFIRM_DATE = 0x23
    X_REPORT = 0x40
    Z_REPORT = 0x41
    CASH_IN = 0x50
    CASH_OUT = 0x51
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
    FN_DOCUMENT_TLV = 0xFF3A
    FN_READ_DOCUMENT_TLV = 0xFF3B
    FN_SHIFT_PARAMS = 0xFF40
    FN_BEGIN_OPEN_SHIFT = 0xFF41
    FN_BEGIN_CLOSE_SHIFT = 0xFF42
    FN_CLOSE_SHIFT = 0xFF43
    FN_CLOSE_RECEIPT_V2 = 0xFF45
    FN_OPERATION_V2 = 0xFF46
    FN_SEND_OPERATION_TLV = 0xFF4D
    FN_CHECK_MARK = 0xFF61
    FN_BIND_MARK = 0xFF67
    FN_ISM_STATUS = 0xFF68
    FN_DECIDE_MARK = 0xFF69
    FN_MARKING_STATUS = 0xFF70
    FN_NOTIFICATIONS_BEGIN = 0xFF71
    FN_NOTIFICATION_READ = 0xFF72
    FN_NOTIFICATION_CONFIRM = 0xFF73


class Malformed(ValueError):
    """A request whose bytes do not fit its command's layout."""


class Unsupported(LookupError):
    """A command the emulated register does not implement."""


def command_bytes(command: int) -> bytes:
    """The code on the wire: FFxxh commands go as FF then xx ([PROTO] p.42 "Код команды FF01h")."""
    return command.to_bytes(2, "big") if command > 0xFF else bytes((command,))


def command_of(body: bytes) -> int:
    """The command code of a request body; Malformed when there is none."""
    if not body:
        raise Malformed("empty message")
    if body[0] == 0xFF:
        if len(body) < 2:
            raise Malformed("FFh without the second byte of the command")
        return 0xFF00 | body[1]
    return body[0]


def answer(command: int, data: bytes = b"") -> bytes:
    """CMD 00 data: a successful answer."""
    return command_bytes(command) + b"\0" + data


def error(command: int, code: int) -> bytes:
    """CMD ERR: a refusal carries no data ([PROTO] p.8)."""
    if not 0 < code <= 0xFF:
        raise ValueError(f"error code {code} is not 1..255")
    return command_bytes(command) + bytes((code,))


# --- reading parameters -----------------------------------------------------------------------


class _Reader:
    """Takes fields off the front of a request's parameters."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, size: int) -> bytes:
        chunk = self._data[self._pos : self._pos + size]
        if len(chunk) != size:
            raise Malformed(f"{size} bytes wanted at offset {self._pos}, {len(chunk)} there")
        self._pos += size
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "little")

    def rest(self, limit: int) -> bytes:
        chunk = self._data[self._pos :]
        if len(chunk) > limit:
            raise Malformed(f"{len(chunk)} bytes where at most {limit} are allowed")
        self._pos = len(self._data)
        return chunk

    def text(self, size: int | None, limit: int = 0) -> str:
        """WIN1251 text of `size` bytes, or the rest up to `limit`; a 00h byte ends it."""
        raw = self.take(size) if size is not None else self.rest(limit)
        return raw.split(b"\0", 1)[0].decode("cp1251", errors="replace")

    def date_ddmmyy(self) -> dt.date:
        day, month, year = self.take(3)
        try:
            return dt.date(2000 + year, month, day)
        except ValueError as err:
            raise Malformed(f"bad date {day:02}.{month:02}.{year:02}") from err

    def time_hhmmss(self) -> dt.time:
        hour, minute, second = self.take(3)
        try:
            return dt.time(hour, minute, second)
        except ValueError as err:
            raise Malformed(f"bad time {hour:02}:{minute:02}:{second:02}") from err

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def end(self) -> None:
        if self._pos != len(self._data):
            raise Malformed(f"{len(self._data) - self._pos} bytes more than the layout holds")


# --- requests -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request; `password` is None only for FCh, which carries none ([PROTO] p.41)."""

    command: Cmd
    password: int | None


@dataclass(frozen=True, slots=True)
class Bare(Request):
    """A command that carries only the password."""


@dataclass(frozen=True, slots=True)
class RegisterRead(Request):
    """1Ah / 1Bh: register number ([PROTO] p.22)."""

    register: int


@dataclass(frozen=True, slots=True)
class WriteTable(Request):
    """1Eh: table(1), row(2), field(1), value(X ≤ 40) ([PROTO] p.23)."""

    table: int
    row: int
    field: int
    value: bytes


@dataclass(frozen=True, slots=True)
class SetTime(Request):
    """21h: HH MM SS ([PROTO] p.23)."""

    time: dt.time


@dataclass(frozen=True, slots=True)
class SetDate(Request):
    """22h / 23h: DD MM YY ([PROTO] pp.23–24)."""

    date: dt.date


@dataclass(frozen=True, slots=True)
class CashMove(Request):
    """50h / 51h: sum(5) ([PROTO] p.28)."""

    amount: int


@dataclass(frozen=True, slots=True)
class LegacyLine(Request):
    """80h / 82h: quantity(5) ×1000, price(5), department(1), tax 1..4 (1 each), text."""

    quantity: int
    price: int
    department: int
    taxes: tuple[int, int, int, int]
    text: str


@dataclass(frozen=True, slots=True)
class LegacyClose(Request):
    """85h: 4 payment sums (5 each), discount % ×100 (2, signed), tax 1..4, text."""

    payments: tuple[int, int, int, int]
    discount_percent_x100: int
    taxes: tuple[int, int, int, int]
    text: str


@dataclass(frozen=True, slots=True)
class OpenReceipt(Request):
    """8Dh: document type(1) ([PROTO] p.32)."""

    receipt_type: int


@dataclass(frozen=True, slots=True)
class DocumentNumber(Request):
    """FF0Ah / FF3Ah: fiscal document number(4) ([PROTO] pp.45, 50)."""

    number: int


@dataclass(frozen=True, slots=True)
class TlvBlock(Request):
    """FF0Ch / FF4Dh: a TLV block of N bytes, at most 250 ([PROTO] pp.46, 56)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CloseV2(Request):
    """FF45h ([PROTO] pp.52–53): 16 payment sums (5 each: 1 cash, 2–13 sent to the OFD as
    electronic, 14 prepayment, 15 credit ("постоплата"), 16 counter-provision), rounding to
    the ruble in kopecks (1), 6 tax sums (5 each: 1 НДС 18(20)%, 2 НДС 10%, 3 turnover at 0%,
    4 turnover without VAT, 5 НДС 18/118 (20/120), 6 НДС 10/110), tax system (1, one bit: 0 ОСН,
    1 УСН доход, 2 УСН доход минус расход, 3 ЕНВД, 4 ЕСП, 5 ПСН), text (0–64)."""

    payments: tuple[int, ...]
    rounding: int
    taxes: tuple[int, ...]
    tax_system: int
    text: str


@dataclass(frozen=True, slots=True)
class OperationV2(Request):
    """FF46h ([PROTO] pp.53–54): operation type(1) 1 приход, 2 возврат прихода, 3 расход,
    4 возврат расхода; quantity(6, six digits after the point); price(5); sum(5, FF×5: the
    register computes price × quantity); tax(5, FF×5: not given); tax rate(1); department(1);
    payment method 1214 (1); payment object 1212 (1); name (0–128)."""

    operation: int
    quantity: int
    price: int
    amount: int | None
    tax: int | None
    tax_rate: int
    department: int
    payment_method: int
    payment_object: int
    name: str


@dataclass(frozen=True, slots=True)
class MarkCheck(Request):
    """FF61h «Проверка маркированного товара» ([JPOS] commands.xml, FSCheckMC; [OPOS]):
    planned status 2003 (1), processing mode 2102 (1), code length(1), TLV length(1), the code,
    the TLV (2108, 1023, 1291 of a measured item)."""

    planned_status: int
    mode: int
    code: bytes
    tlv: bytes


@dataclass(frozen=True, slots=True)
class MarkBind(Request):
    """FF67h «Привязка маркированного товара к позиции» ([JPOS] FSBindMC): code length(1), the
    code, then optionally one byte FFh, the volume-sort (ОСУ) flag."""

    code: bytes
    volume_sort: bool


@dataclass(frozen=True, slots=True)
class MarkDecision(Request):
    """FF69h «Принять или отвергнуть» ([JPOS] FSAcceptMC): action(1) 0 reject, 1 accept,
    2 clear the table of checked codes."""

    action: int


@dataclass(frozen=True, slots=True)
class NotificationConfirm(Request):
    """FF73h: notification number(4), its checksum(4) ([JPOS] commands.xml)."""

    number: int
    crc: int


_NOT_GIVEN = b"\xff" * 5  # [PROTO] FF46h p.54 notes 1 and 2

# Commands that carry only a password ([PROTO]: 10h p.17; FF68h, FF70h–FF72h per [JPOS], 11h p.18, 40h/41h p.26, 88h p.32,
# B0h p.33, E0h p.38, FF01h p.42, FF03h/FF04h p.43, FF08h/FF09h p.44, FF0Bh p.46, FF39h/FF3Bh
# p.50, FF40h/FF41h p.51, FF42h/FF43h pp.51–52).
_BARE = frozenset(
    {
        Cmd.SHORT_STATUS, Cmd.LONG_STATUS, Cmd.X_REPORT, Cmd.Z_REPORT, Cmd.CANCEL_RECEIPT,
        Cmd.CONTINUE_PRINT, Cmd.OPEN_SHIFT, Cmd.FN_STATUS, Cmd.FN_EXPIRY, Cmd.FN_VERSION,
        Cmd.FN_CANCEL_DOCUMENT, Cmd.FN_REGISTRATION, Cmd.FN_OPEN_SHIFT, Cmd.FN_OFD_STATUS,
        Cmd.FN_READ_DOCUMENT_TLV, Cmd.FN_SHIFT_PARAMS, Cmd.FN_BEGIN_OPEN_SHIFT,
        Cmd.FN_BEGIN_CLOSE_SHIFT, Cmd.FN_CLOSE_SHIFT, Cmd.FN_ISM_STATUS, Cmd.FN_MARKING_STATUS,
        Cmd.FN_NOTIFICATIONS_BEGIN, Cmd.FN_NOTIFICATION_READ,
    }
)  # fmt: skip

# [PROTO] 80h p.29, 85h p.31: the text is 40 bytes, "или до Y" on models that allow longer
# messages (pyshtrih sends 48): whatever the message still holds is taken.
LEGACY_TEXT = 0xFF
# [PROTO] FF45h p.53 "Текст (0-64 байт)", FF46h p.53 "Наименование товара (0-128 байт)".
CLOSE_TEXT = 64
ITEM_NAME = 128
# [PROTO] 1Eh p.23 "Значение (X байт) до 40".
TABLE_VALUE = 40
# [PROTO] FF0Ch p.46 "мах 250 байт".
TLV_BLOCK = 250


def parse(body: bytes) -> Request:
    """The request in `body`. Unsupported when the register does not implement the command,
    Malformed when the bytes do not fit the command's layout."""
    code = command_of(body)
    try:
        command = Cmd(code)
    except ValueError:
        raise Unsupported(f"command {code:#x}") from None
    params = body[2:] if code > 0xFF else body[1:]
    if command is Cmd.DEVICE_TYPE:
        if params:
            raise Malformed("FCh carries no parameters")  # [PROTO] p.41: length 1
        return Bare(command, None)
    r = _Reader(params)
    password = r.uint(4)
    request = _parse_params(command, password, r)
    r.end()
    return request


def _parse_params(command: Cmd, password: int, r: _Reader) -> Request:
    """The parameters after the password, by the command's layout."""
    if command in _BARE:
        return Bare(command, password)
    if command is Cmd.MONEY_REGISTER:
        # [PROTO] 1Ah p.22: a 1-byte register number, or a 2-byte К-register on some models.
        return RegisterRead(command, password, r.uint(2 if r.remaining() == 2 else 1))
    if command is Cmd.OPERATION_REGISTER:
        return RegisterRead(command, password, r.uint(1))  # [PROTO] 1Bh p.22
    if command is Cmd.WRITE_TABLE:
        table, row, field = r.uint(1), r.uint(2), r.uint(1)
        value = r.rest(TABLE_VALUE)
        if not value:
            raise Malformed("1Eh without a value")
        return WriteTable(command, password, table, row, field, value)
    if command is Cmd.SET_TIME:
        return SetTime(command, password, r.time_hhmmss())
    if command in (Cmd.SET_DATE, Cmd.CONFIRM_DATE):
        return SetDate(command, password, r.date_ddmmyy())
    if command in (Cmd.CASH_IN, Cmd.CASH_OUT):
        return CashMove(command, password, r.uint(5))
    if command in (Cmd.SALE, Cmd.RETURN_SALE):
        quantity, price, department = r.uint(5), r.uint(5), r.uint(1)
        taxes = (r.uint(1), r.uint(1), r.uint(1), r.uint(1))
        return LegacyLine(
            command, password, quantity, price, department, taxes, r.text(None, LEGACY_TEXT)
        )
    if command is Cmd.CLOSE_RECEIPT:
        # [PROTO] 85h p.31: cash, payment types 2, 3, 4; discount (negative: a surcharge).
        payments = (r.uint(5), r.uint(5), r.uint(5), r.uint(5))
        discount = int.from_bytes(r.take(2), "little", signed=True)
        taxes = (r.uint(1), r.uint(1), r.uint(1), r.uint(1))
        return LegacyClose(command, password, payments, discount, taxes, r.text(None, LEGACY_TEXT))
    if command is Cmd.OPEN_RECEIPT:
        return OpenReceipt(command, password, r.uint(1))
    if command in (Cmd.FN_FIND_DOCUMENT, Cmd.FN_DOCUMENT_TLV):
        return DocumentNumber(command, password, r.uint(4))
    if command in (Cmd.FN_SEND_TLV, Cmd.FN_SEND_OPERATION_TLV):
        return TlvBlock(command, password, r.rest(0xFF))
    if command is Cmd.FN_CLOSE_RECEIPT_V2:
        sums = tuple(r.uint(5) for _ in range(16))
        rounding = r.uint(1)
        tax_sums = tuple(r.uint(5) for _ in range(6))
        tax_system = r.uint(1)
        text = r.text(None, CLOSE_TEXT)
        return CloseV2(command, password, sums, rounding, tax_sums, tax_system, text)
    if command is Cmd.FN_OPERATION_V2:
        operation, quantity, price = r.uint(1), r.uint(6), r.uint(5)
        amount, tax = r.take(5), r.take(5)
        tax_rate, department, method, subject = r.uint(1), r.uint(1), r.uint(1), r.uint(1)
        return OperationV2(
            command,
            password,
            operation,
            quantity,
            price,
            None if amount == _NOT_GIVEN else int.from_bytes(amount, "little"),
            None if tax == _NOT_GIVEN else int.from_bytes(tax, "little"),
            tax_rate,
            department,
            method,
            subject,
            r.text(None, ITEM_NAME),
        )
    if command is Cmd.FN_CHECK_MARK:
        status, mode, code_len, tlv_len = r.uint(1), r.uint(1), r.uint(1), r.uint(1)
        return MarkCheck(command, password, status, mode, r.take(code_len), r.take(tlv_len))
    if command is Cmd.FN_BIND_MARK:
        code = r.take(r.uint(1))
        flag = r.rest(1)
        if flag not in (b"", b"\xff"):
            raise Malformed(f"FF67h: the byte after the code is FFh or absent, got {flag.hex()}")
        return MarkBind(command, password, code, bool(flag))
    if command is Cmd.FN_DECIDE_MARK:
        return MarkDecision(command, password, r.uint(1))
    if command is Cmd.FN_NOTIFICATION_CONFIRM:
        return NotificationConfirm(command, password, r.uint(4), r.uint(4))
    raise AssertionError(f"no layout for {command!r}")


# --- writing answers -------------------------------------------------------------------------


def u(value: int, size: int) -> bytes:
    """An unsigned little-endian field of `size` bytes."""
    return value.to_bytes(size, "little")


def ddmmyy(day: dt.date) -> bytes:
    """DD MM YY ([PROTO] 11h p.18)."""
    return bytes((day.day, day.month, day.year - 2000))


def hhmmss(moment: dt.time) -> bytes:
    """HH MM SS ([PROTO] 11h p.18)."""
    return bytes((moment.hour, moment.minute, moment.second))


def yymmdd(day: dt.date) -> bytes:
    """YY MM DD ([PROTO] FF03h p.43 "ГГММДД")."""
    return bytes((day.year - 2000, day.month, day.day))


def date_time(moment: dt.datetime | None) -> bytes:
    """DATE_TIME: YY MM DD HH MM, five zero bytes for none ([PROTO] FF01h p.43, FF39h p.50)."""
    if moment is None:
        return bytes(5)
    return bytes((moment.year - 2000, moment.month, moment.day, moment.hour, moment.minute))


def ascii_field(text: str, size: int) -> bytes:
    """ASCII text padded with 00h to `size` bytes."""
    raw = text.encode("ascii")
    if len(raw) > size:
        raise ValueError(f"{text!r} is longer than {size} bytes")
    return raw.ljust(size, b"\0")
