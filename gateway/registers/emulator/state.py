"""Everything the emulated register remembers, and its atomic save/load.

The state is one immutable value (`EmulatorState`); each command yields a new one. It is
saved after every change and before the answer goes out: written to a temporary file in the
same directory, fsynced, renamed over the old file with `os.replace`, and the directory
fsynced, so a kill at any instant leaves either the old or the new state on disk, whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gateway.durable import write_atomic
from gateway.errors import GatewayError
from gateway.registers.emulator import fn
from gateway.registers.emulator.clock import ClockState
from gateway.registers.emulator.tape import TapeRecord

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


class StateError(GatewayError):
    """The emulator state file is unreadable or of an unknown version."""

    code = "emulator_state"


@dataclass(frozen=True, slots=True)
class Tlv:
    """A TLV attached to an open document with FF0Ch."""

    tag: int
    value: bytes


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


@dataclass(frozen=True, slots=True)
class OpenReceipt:
    """The receipt in progress (mode 8)."""

    receipt_type: int  # 0 sale, 1 buy, 2 sale return, 3 buy return
    opened_at: dt.datetime
    lines: tuple[Line, ...] = ()
    tlvs: tuple[Tlv, ...] = ()

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


@dataclass(frozen=True, slots=True)
class Shift:
    """The shift counter and the open shift, if any."""

    number: int = 0  # the last shift opened (0: none yet)
    is_open: bool = False
    opened_at: dt.datetime | None = None
    receipts: int = 0  # receipts in the open shift


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
    host: dt.datetime, *, clock_offset_s: float = 0.0, **identity: Any
) -> EmulatorState:
    """A register just fiscalised: registration report #1, shift closed, OFD queue empty."""
    clock = ClockState().with_offset(host, clock_offset_s)
    now = fn.fn_time(clock.rtc(host))
    ident = Identity(fn_expiry=(now + dt.timedelta(days=FN_LIFETIME_DAYS)).date(), **identity)
    registration = Document(
        number=1,
        doc_type=fn.DOC_REGISTRATION,
        datetime=now,
        fiscal_sign=fn.fiscal_sign(ident.fn_number, 1, now, 0),
        shift=0,
    )
    return EmulatorState(
        identity=ident, documents=(registration,), ofd=OfdState(first_unacked=2), clock=clock
    )


# --- persistence --------------------------------------------------------------------------


def save_state(path: Path, state: EmulatorState) -> None:
    """Write `state` atomically: temp file, fsync, rename, fsync the directory. Blocking."""
    data = json.dumps(_encode(state), ensure_ascii=False, separators=(",", ":")).encode()
    write_atomic(path, data)


def load_state(path: Path) -> EmulatorState:
    """Read a state file written by `save_state`."""
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError) as err:
        raise StateError(f"cannot read emulator state {path}: {err}") from err
    if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
        raise StateError(f"emulator state {path} has an unknown version")
    try:
        state: EmulatorState = _decode(EmulatorState, raw)
        return state
    except (KeyError, TypeError, ValueError) as err:
        raise StateError(f"emulator state {path} is malformed: {err}") from err


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
