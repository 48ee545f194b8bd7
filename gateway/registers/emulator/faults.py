"""Faults the emulator can inject, by name: the same names on the command line, in the
Python API (`Emulator.apply_fault`) and on the control socket (`{"fault": name, "value": v}`).

Device faults change the persisted state (the paper stays out across restarts); wire faults
are one-shot counters held in memory (`WireFaults`).

| name                    | value            | effect |
|-------------------------|------------------|--------|
| paper_out               | bool             | no paper: submode 1, printing commands get 6Bh |
| cover_open              | bool             | flags bit 10; printing commands refused |
| paper_ends              | bool             | the roll runs out while the next fiscal document prints: it is closed in the ФН, then submode 2, and 3 (B0h) once paper is back |
| power_cut_mid_receipt   | int K / null     | after the next K receipt lines (80h/82h/FF46h) the register loses power with the receipt open: the line is saved, its answer never sent |
| answer_lost             | bool / int N     | the next N document-closing answers are lost on the wire; they stay pending, ENQ gets ACK and the answer |
| answer_dropped          | bool / int N     | the next N document-closing answers are discarded; ENQ gets NAK |
| garbled                 | bool / int N     | one byte of each of the next N answers is corrupted (the host NAKs, then ENQ resends it intact) |
| slow_bytes              | float seconds    | delay before each byte the register sends |
| silent                  | bool             | the register hangs with its port open: it takes every byte and answers none, not even ENQ; the commands are not run |
| unplug                  | float seconds    | the pty disappears for that long, then a new one appears at the link (server only) |
| clock_offset            | float seconds    | RTC = host clock + offset from now on |
| drift                   | float ppm        | the RTC gains (or loses) that many millionths from now on |
| fn_expiry               | "YYYY-MM-DD"     | ФН validity end (FF03h; refuses documents after it) |
| fn_warnings             | int bits         | FF01h warning bits (0 replace, 1 resource, 2 memory 90 %, 3 OFD timeout) |
| ofd_drain               | bool             | the OFD acknowledges documents (one per interval) or not |
| ofd_interval            | float seconds    | RTC seconds per acknowledged document (0: at once) |
| ofd_backlog             | int N            | the last N documents wait for the OFD again |
| ofd_ack                 | int N            | the OFD acknowledges the N oldest waiting documents now |
| ism_answer              | str              | the fake ОИСМ's answer to every FF61h check: positive, negative, sold, timeout, autonomous, refused (see `marking`) |
| ism_code_answer         | {"code", "answer"} / null | one code answered its own way (`answer` null: the default again); null forgets every such code. The code is text with `<GS>` (or the GS character) between AIs, or `hex:` and its bytes |
| ism_timeout             | float seconds    | how long FF61h waits when the ОИСМ is silent (answer `timeout`) |
| ism_uploads             | bool             | the ОИСМ acknowledges notifications uploaded with FF71h–FF73h (false: FF73h gets no ticket) |
| firmware                | "classic" / "core" | the firmware family: order of FF46h, FF4Dh and FF67h; «кассовое ядро» reports model 45 in FCh |
| fn_marking              | bool             | the ФН-М is registered with the marking flag (false: FF61h… answer A0h, FF68h 32h) |
| ism_bind_recheck        | str / null       | FF67h checks each code again, as for a code not in its table, and the fake ОИСМ gives this answer (positive, negative, sold, timeout, autonomous); the FF67h answer then carries the check block. null: no re-check |
| marking_clear_refused   | bool             | FF69h(2) (clear the table of checked codes) is refused with ФН A1h, as on Штрих-Нано-Ф |
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from gateway.domain.errors import GatewayError


class FaultName(enum.StrEnum):
    """Every fault the emulator understands."""

    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    PAPER_ENDS = "paper_ends"
    POWER_CUT_MID_RECEIPT = "power_cut_mid_receipt"
    ANSWER_LOST = "answer_lost"
    ANSWER_DROPPED = "answer_dropped"
    GARBLED = "garbled"
    SLOW_BYTES = "slow_bytes"
    SILENT = "silent"
    UNPLUG = "unplug"
    CLOCK_OFFSET = "clock_offset"
    DRIFT = "drift"
    FN_EXPIRY = "fn_expiry"
    FN_WARNINGS = "fn_warnings"
    OFD_DRAIN = "ofd_drain"
    OFD_INTERVAL = "ofd_interval"
    OFD_BACKLOG = "ofd_backlog"
    OFD_ACK = "ofd_ack"
    ISM_ANSWER = "ism_answer"
    ISM_CODE_ANSWER = "ism_code_answer"
    ISM_TIMEOUT = "ism_timeout"
    ISM_UPLOADS = "ism_uploads"
    FIRMWARE = "firmware"
    FN_MARKING = "fn_marking"
    ISM_BIND_RECHECK = "ism_bind_recheck"
    MARKING_CLEAR_REFUSED = "marking_clear_refused"


class FaultError(GatewayError, ValueError):
    """An unknown fault name or a value of the wrong kind."""

    code = "emulator_fault"


@dataclass(slots=True)
class WireFaults:
    """One-shot faults of the link, consumed as they fire. Mutable: tests set them directly."""

    answer_lost: int = 0
    answer_dropped: int = 0
    garbled: int = 0
    slow_byte_s: float = 0.0
    silent: bool = False  # a hung register: reads everything, answers nothing
    power_cut_after_lines: int | None = None


def parse_name(name: str) -> FaultName:
    """The fault called `name`."""
    try:
        return FaultName(name)
    except ValueError:
        raise FaultError(
            f"unknown fault {name!r}; known: {', '.join(f.value for f in FaultName)}"
        ) from None


def as_bool(name: FaultName, value: object) -> bool:
    """A switch value."""
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise FaultError(f"{name}: expected true or false, got {value!r}")


def as_count(name: FaultName, value: object) -> int:
    """A count: true means 1, false or null 0."""
    if value is None or value is False:
        return 0
    if value is True:
        return 1
    if isinstance(value, int) and value >= 0:
        return value
    raise FaultError(f"{name}: expected a count, got {value!r}")


def as_seconds(name: FaultName, value: object, *, signed: bool = False) -> float:
    """A number of seconds (or ppm)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f"{name}: expected a number, got {value!r}")
    if value < 0 and not signed:
        raise FaultError(f"{name}: must not be negative")
    return float(value)


def as_date(name: FaultName, value: object) -> dt.date:
    """An ISO date."""
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise FaultError(f"{name}: expected YYYY-MM-DD, got {value!r}")


def as_choice(name: FaultName, value: object, choices: type[enum.StrEnum]) -> str:
    """One of the values of `choices`."""
    known = [c.value for c in choices]
    if not isinstance(value, str) or value not in known:
        raise FaultError(f"{name}: expected one of {', '.join(known)}, got {value!r}")
    return value
