"""Everything the emulated register remembers, and how it survives a kill.

The state is one immutable value (`EmulatorState`); each command yields a new one, saved
before the answer goes out. On disk it is a snapshot (`<state>`, replaced atomically: temp
file, fsync, rename, directory fsync) and a change log beside it (`<state>.log`), one JSON
line per change holding only what changed: the documents added and the other fields that
differ. Rewriting the whole snapshot per command cost more with every document in the
archive; a log line costs the same at document 10 and 10 000. A line that closes a document
is fdatasynced before the tape line is written (so the tape never holds a document the state
lost); other lines reach the kernel before the answer, which is what a kill needs. Every
`COMPACT_AFTER` lines the snapshot is rewritten under a new epoch and the log emptied; lines of
another epoch (a kill between the two steps) are ignored on load, and so is a torn last line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import secrets
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gateway.domain.errors import GatewayError
from gateway.registers.emulator import fn, tlv
from gateway.registers.emulator.clock import ClockState
from gateway.registers.emulator.marking import CheckedCode, Firmware, FnMarking, IsmConfig
from gateway.registers.emulator.tape import TapeRecord
from gateway.registers.emulator.tlv import Tlv
from gateway.runtime.durable import fsync_dir, write_atomic

STATE_VERSION = 1

# Identity of the emulated register. Firmware as reported by a ШТРИХ-М-01Ф in the field
# (version "C.3", build 62776 of 19.08.2025; shtrih-m/fr_drv_ng issue #321).
MODEL_NAME = "ШТРИХ-М-01Ф"
FIRMWARE_VERSION = "C3"
FIRMWARE_BUILD = 62776
FIRMWARE_DATE = dt.date(2025, 8, 19)
DEFAULT_SERIAL = 12345678
DEFAULT_INN = 7700000000
DEFAULT_REGISTRATION_NUMBER = "0000000001012345"
DEFAULT_FN_NUMBER = "9999078900000001"
FN_LIFETIME_DAYS = 3 * 365  # a 36-month ФН
DEFAULT_OFD_INTERVAL_S = 10.0
DEFAULT_USER_NAME = "ООО «Эмулятор»"
DEFAULT_PAYMENTS_ADDRESS = "101000, г. Москва, ул. Тестовая, д. 1"
DEFAULT_PAYMENTS_PLACE = "Торговый зал"

# Tax systems, the bits of [PROTO] FF06h p.43 / FF45h p.52 and [GUIDE] p.17 (ФФД tag 1055).
TAX_OSN = 1 << 0
TAX_USN_INCOME = 1 << 1
TAX_USN_INCOME_OUTCOME = 1 << 2
TAX_ESN = 1 << 4  # ЕСХН ("ЕСП" in [PROTO])
TAX_PATENT = 1 << 5
TAX_SYSTEM_NAMES = {
    "osn": TAX_OSN,
    "usnIncome": TAX_USN_INCOME,
    "usnIncomeOutcome": TAX_USN_INCOME_OUTCOME,
    "esn": TAX_ESN,
    "patent": TAX_PATENT,
}
# All five systems still in use (ЕНВД, bit 3, is gone since 2021), so a register made
# without the option accepts whatever tax system a host sends.
ALL_TAX_SYSTEMS = TAX_OSN | TAX_USN_INCOME | TAX_USN_INCOME_OUTCOME | TAX_ESN | TAX_PATENT

# [GUIDE] pp.5–10: money registers 0…255 (6 bytes each via 1Ah), operational 0…255 (2 bytes
# via 1Bh).
REGISTER_COUNT = 256


class StateError(GatewayError):
    """The emulator state file is unreadable or of an unknown version."""

    code = "emulator_state"


def parse_tax_systems(text: str) -> int:
    """The bitmask of a comma-separated list of tax-system names (`osn,usnIncome`)."""
    mask = 0
    for name in (part.strip() for part in text.split(",")):
        if name not in TAX_SYSTEM_NAMES:
            known = ", ".join(TAX_SYSTEM_NAMES)
            raise ValueError(f"unknown tax system {name!r} (known: {known})")
        mask |= TAX_SYSTEM_NAMES[name]
    if not mask:
        raise ValueError("at least one tax system is needed")
    return mask


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the open receipt (FF46h or 80h/82h)."""

    name: str
    price: int  # kopecks
    quantity: int  # ×10⁶
    amount: int  # kopecks
    vat: str  # ATOL tax name
    department: int = 1
    payment_method: int = 4  # ФФД 1214, 4 = full payment
    payment_object: int = 1  # ФФД 1212, 1 = goods
    tax: int | None = None  # FF46h "Налог": the host's VAT of the line (1200), None if not given
    tlvs: tuple[Tlv, ...] = ()  # bound to this line with FF4Dh
    mark: CheckedCode | None = None  # the marking code FF67h bound to this line


@dataclass(frozen=True, slots=True)
class OpenReceipt:
    """The receipt in progress (mode 8)."""

    receipt_type: int  # 0 sale, 1 buy, 2 sale return, 3 buy return
    opened_at: dt.datetime
    lines: tuple[Line, ...] = ()
    tlvs: tuple[Tlv, ...] = ()
    # «кассовое ядро»: FF4Dh tags and the FF67h code waiting for the line's FF46h.
    staged_tlvs: tuple[Tlv, ...] = ()
    staged_mark: CheckedCode | None = None

    @property
    def total(self) -> int:
        """Sum of the line amounts, kopecks."""
        return sum(line.amount for line in self.lines)


@dataclass(frozen=True, slots=True)
class BegunDocument:
    """A shift document begun with FF41h/FF42h, waiting for FF0Bh/FF43h."""

    current: int  # fn.CURRENT_SHIFT_OPEN or fn.CURRENT_SHIFT_CLOSE
    tlvs: tuple[Tlv, ...] = ()


@dataclass(frozen=True, slots=True)
class Document:
    """A fiscal document in the ФН archive."""

    number: int
    doc_type: int  # fn.DOC_*
    datetime: dt.datetime
    fiscal_sign: int
    shift: int
    operation: int | None = None  # ФФД 1054 for receipts
    total: int | None = None
    tlv: bytes = b""  # every tag of the document, as FF3Ah/FF3Bh hand it out


@dataclass(frozen=True, slots=True)
class Shift:
    """The shift counter and the open shift, if any."""

    number: int = 0  # the last shift opened (0: none yet)
    is_open: bool = False
    opened_at: dt.datetime | None = None
    receipts: int = 0  # receipts in the open (or the last) shift


@dataclass(frozen=True, slots=True)
class OfdState:
    """The ФН's queue towards the OFD: documents numbered `first_unacked` and later wait."""

    first_unacked: int
    head_since: dt.datetime | None = None  # RTC moment the oldest waiting document started waiting
    interval_s: float = DEFAULT_OFD_INTERVAL_S  # one document acknowledged per interval of RTC time
    draining: bool = True


@dataclass(frozen=True, slots=True)
class Printer:
    """Paper, cover and an interrupted printout."""

    paper: bool = True
    cover_open: bool = False
    interrupted: bool = False  # a document closed in the ФН but its printout stopped (submode 2/3)
    paper_ends_next_document: bool = (
        False  # fault: the roll runs out while the next document prints
    )


@dataclass(frozen=True, slots=True)
class Identity:
    """Serial numbers, ИНН, firmware and the ФН's own data."""

    serial: int = DEFAULT_SERIAL
    inn: int = DEFAULT_INN
    registration_number: str = DEFAULT_REGISTRATION_NUMBER
    fn_number: str = DEFAULT_FN_NUMBER
    fn_expiry: dt.date = dt.date(2030, 1, 1)
    firmware_version: str = FIRMWARE_VERSION
    firmware_build: int = FIRMWARE_BUILD
    firmware_date: dt.date = FIRMWARE_DATE
    registrations: int = 1
    registrations_left: int = 11
    user_name: str = DEFAULT_USER_NAME  # ФФД 1048
    payments_address: str = DEFAULT_PAYMENTS_ADDRESS  # ФФД 1009
    payments_place: str = DEFAULT_PAYMENTS_PLACE  # ФФД 1187
    tax_systems: int = ALL_TAX_SYSTEMS  # ФФД 1062, registered tax systems
    work_mode: int = 0  # [PROTO] FF06h p.44 "Режим работы": 0, online and with receipts
    firmware: str = Firmware.CLASSIC.value  # a `marking.Firmware`: where FF4Dh/FF67h go
    marking: bool = True  # the ФН-М is registered with the marking flag (ФФД 1.2 marked goods)


@dataclass(frozen=True, slots=True)
class Registers:
    """The money and operational registers ([GUIDE] pp.5–10) and the through document number."""

    money: tuple[int, ...] = (0,) * REGISTER_COUNT
    operational: tuple[int, ...] = (0,) * REGISTER_COUNT
    through_number: int = 1  # every printed document counts, the registration report first


@dataclass(frozen=True, slots=True)
class DocumentRead:
    """The document FF3Ah chose and how many of its TLVs FF3Bh handed out so far."""

    number: int
    position: int = 0


@dataclass(frozen=True, slots=True)
class EmulatorState:
    """The whole register: identity, ФН archive, shift, open documents, clock, printer, OFD."""

    identity: Identity
    documents: tuple[Document, ...]
    ofd: OfdState
    shift: Shift = field(default_factory=Shift)
    clock: ClockState = field(default_factory=ClockState)
    printer: Printer = field(default_factory=Printer)
    fn_warnings: int = 0
    receipt: OpenReceipt | None = None
    begun: BegunDocument | None = None
    pending_date: dt.date | None = None  # 22h given, waiting for 23h (mode 6)
    last_tape: TapeRecord | None = None  # what was printed for the last document
    registers: Registers = field(default_factory=Registers)
    no_print: int = 0  # table 17 field 7 «не печатать документ» ([GUIDE] p.62)
    reading: DocumentRead | None = None  # FF3Ah/FF3Bh in progress
    marking: FnMarking = field(default_factory=FnMarking)  # the ФН-М's marking state
    ism: IsmConfig = field(default_factory=IsmConfig)  # the fake ОИСМ the register talks to
    version: int = STATE_VERSION

    @property
    def last_document(self) -> Document:
        """The last fiscal document in the ФН."""
        return self.documents[-1]

    def document(self, number: int) -> Document | None:
        """Document `number` from the archive, or None."""
        if 1 <= number <= len(self.documents):
            return self.documents[number - 1]
        return None

    def rtc(self, host: dt.datetime) -> dt.datetime:
        """The register's clock at host time `host`."""
        return self.clock.rtc(host)


def fresh_state(
    host: dt.datetime,
    *,
    clock_offset_s: float = 0.0,
    tax_systems: int = ALL_TAX_SYSTEMS,
    **identity: Any,
) -> EmulatorState:
    """A register just fiscalised: registration report #1, shift closed, OFD queue empty.

    `tax_systems` is the bitmask of tax systems the register is registered with (FF45h refuses
    any other); `identity` overrides other `Identity` fields.
    """
    clock = ClockState().with_offset(host, clock_offset_s)
    now = fn.fn_time(clock.rtc(host))
    ident = Identity(
        fn_expiry=(now + dt.timedelta(days=FN_LIFETIME_DAYS)).date(),
        tax_systems=tax_systems,
        **identity,
    )
    sign = fn.fiscal_sign(ident.fn_number, 1, now, 0)
    registration = Document(
        number=1,
        doc_type=fn.DOC_REGISTRATION,
        datetime=now,
        fiscal_sign=sign,
        shift=0,
        tlv=registration_tags(ident, now, sign),
    )
    return EmulatorState(
        identity=ident, documents=(registration,), ofd=OfdState(first_unacked=2), clock=clock
    )


def header_tags(ident: Identity, number: int, when: dt.datetime, sign: int) -> list[Tlv]:
    """The tags every fiscal document starts with ([FFD]): user, address, place, date-time,
    registration number, FN number, FD number, ФПД."""
    return [
        tlv.string(tlv.TAG_USER_NAME, ident.user_name),
        tlv.string(tlv.TAG_USER_INN, str(ident.inn).ljust(12)),
        tlv.string(tlv.TAG_PAYMENTS_ADDRESS, ident.payments_address),
        tlv.string(tlv.TAG_PAYMENTS_PLACE, ident.payments_place),
        tlv.unixtime(tlv.TAG_DATETIME, when),
        tlv.string(tlv.TAG_REGISTRATION_NUMBER, ident.registration_number),
        tlv.string(tlv.TAG_FN_NUMBER, ident.fn_number),
        tlv.uint32(tlv.TAG_FD_NUMBER, number),
        tlv.fiscal_sign_1077(sign),
    ]


def registration_tags(ident: Identity, when: dt.datetime, sign: int) -> bytes:
    """The registration report's tags: the header and 1062, the registered tax systems."""
    tags = header_tags(ident, 1, when, sign)
    tags.append(tlv.byte(TAG_TAX_SYSTEMS, ident.tax_systems))
    return tlv.join(tags)


TAG_TAX_SYSTEMS = 1062  # [FFD] "системы налогообложения" of the registration report


# --- persistence --------------------------------------------------------------------------


# Log lines between snapshots: a snapshot costs about what every command cost before.
COMPACT_AFTER = 500

_FIELDS = tuple(f.name for f in dataclasses.fields(EmulatorState) if f.name != "documents")


def log_path(state_path: Path) -> Path:
    """The change log beside a state file."""
    return state_path.with_name(state_path.name + ".log")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def save_state(path: Path, state: EmulatorState) -> str:
    """Write a whole snapshot atomically under a new epoch; return the epoch. Blocking.

    Lines already in the log belong to an older epoch, so they no longer count.
    """
    epoch = secrets.token_hex(8)
    write_atomic(path, _dumps({**_encode(state), "epoch": epoch}))
    return epoch


def load_state(path: Path) -> EmulatorState:
    """The snapshot in `path` with the lines of its epoch in the change log applied."""
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError) as err:
        raise StateError(f"cannot read emulator state {path}: {err}") from err
    if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
        raise StateError(f"emulator state {path} has an unknown version")
    try:
        state: EmulatorState = _decode(EmulatorState, raw)
        epoch = raw.get("epoch")
        for change in _read_log(log_path(path)):
            if change.get("epoch") == epoch:
                state = _apply(state, change)
        return state
    except (KeyError, TypeError, ValueError) as err:
        raise StateError(f"emulator state {path} is malformed: {err}") from err


def _read_log(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a change log; a torn line (a kill mid-write) ends it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as err:
        raise StateError(f"cannot read emulator state log {path}: {err}") from err
    out: list[dict[str, Any]] = []
    for line in data.split(b"\n"):
        try:
            change = json.loads(line)
        except ValueError:
            break
        if not isinstance(change, dict):
            break
        out.append(change)
    return out


def _apply(state: EmulatorState, change: dict[str, Any]) -> EmulatorState:
    """`state` with one log line applied."""
    hints = typing.get_type_hints(EmulatorState)
    fields = {name: _decode(hints[name], value) for name, value in change["set"].items()}
    added = tuple(_decode(Document, d) for d in change["docs"])
    if added and added[0].number != len(state.documents) + 1:
        raise ValueError(f"log adds document {added[0].number} after {len(state.documents)}")
    return dataclasses.replace(state, documents=state.documents + added, **fields)


class StateStore:
    """Saves each new state as one change-log line; compacts into a snapshot now and then.

    Blocking and not thread-safe: the emulator calls it from its one file-writer thread.
    """

    def __init__(self, path: Path, state: EmulatorState) -> None:
        """Start from `state`, written whole (a new epoch) before the first line."""
        self.path = path
        self._log_path = log_path(path)
        self._state = state
        self._lines = 0
        self._log: int | None = None
        self._compact()

    def __repr__(self) -> str:
        return f"StateStore({str(self.path)!r}, lines={self._lines})"

    def save(self, state: EmulatorState) -> None:
        """Make `state` survive a kill (and, when it adds a document, a power cut)."""
        old = self._state
        n = len(old.documents)
        if len(state.documents) < n or state.documents[:n] != old.documents:
            # The archive only grows; anything else is written whole.
            self._state = state
            self._compact()
            return
        changed = {
            name: _encode(getattr(state, name))
            for name in _FIELDS
            if getattr(state, name) != getattr(old, name)
        }
        added = [_encode(d) for d in state.documents[n:]]
        if not changed and not added:
            return
        assert self._log is not None
        line = _dumps({"epoch": self._epoch, "docs": added, "set": changed}) + b"\n"
        view = memoryview(line)
        while view:
            view = view[os.write(self._log, view) :]
        if added:
            os.fdatasync(self._log)
        self._state = state
        self._lines += 1
        if self._lines >= COMPACT_AFTER:
            self._compact()

    def close(self) -> None:
        """Fold the log into the snapshot and close it."""
        if self._log is None:
            return
        if self._lines:
            self._compact()
        os.close(self._log)
        self._log = None

    def _compact(self) -> None:
        """Snapshot under a new epoch, then an empty log (the old lines no longer count)."""
        self._epoch = save_state(self.path, self._state)
        if self._log is not None:
            os.close(self._log)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        self._log = os.open(self._log_path, flags, 0o644)
        fsync_dir(self.path.parent)
        self._lines = 0


# --- JSON mapping of the frozen dataclasses --------------------------------------------

T = TypeVar("T")


def _encode(value: Any) -> Any:
    """A JSON-ready value of a state field."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    return value


def _decode(tp: Any, data: Any) -> Any:
    """A value of type `tp` from its JSON form."""
    origin = typing.get_origin(tp)
    if origin is dict:
        # Tape tags: already JSON, kept as read.
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got {data!r}")
        return dict(data)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if data is None else _decode(args[0], data)
    if origin is tuple:
        (item,) = (a for a in typing.get_args(tp) if a is not Ellipsis)
        return tuple(_decode(item, v) for v in data)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        kwargs = {
            f.name: _decode(hints[f.name], data[f.name])
            for f in dataclasses.fields(tp)
            if f.name in data
        }
        return tp(**kwargs)
    if tp is dt.datetime:
        return dt.datetime.fromisoformat(data)
    if tp is dt.date:
        return dt.date.fromisoformat(data)
    if tp is bytes:
        return bytes.fromhex(data)
    if tp is float:
        return float(data)
    if tp in (int, str, bool):
        if not isinstance(data, tp):
            raise TypeError(f"expected {tp.__name__}, got {data!r}")
        return data
    raise TypeError(f"cannot decode {tp!r}")
