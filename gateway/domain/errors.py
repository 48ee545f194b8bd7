"""One exception root for the whole gateway; subclasses carry codes and fields."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""

    code: str = "gateway_error"

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.hint = hint

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


# --- configuration and input -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file: the dotted key path, the line (1-based) and what is wrong."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "line ?"
        return f"{where}: {self.path}: {self.message}"


class ConfigError(GatewayError):
    """The configuration is invalid; `issues` lists every problem found."""

    code = "config_invalid"

    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("; ".join(str(i) for i in issues) or "invalid configuration")
        self.issues = issues


class ValidationError(GatewayError):
    """Input from an ingress is invalid; `field` is the path of the offending value."""

    code = "invalid_request"

    def __init__(self, field: str, message: str) -> None:
        # both are sent back and logged, and may quote a client's bytes
        field, message = escape_controls(field), escape_controls(message)
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


def escape_controls(text: str) -> str:
    """`text` with each control character (C0, DEL, C1) written as its escape, e.g. `\\x1f`."""
    return text.translate(_CONTROL_ESCAPES) if _HAS_CONTROL.search(text) else text


_CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_HAS_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class CommandRefused(GatewayError):
    """An MQTT command was refused before anything was queued; `field` names what failed."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message, code=code)
        self.field = field
        self.reason = message


# --- register layer ----------------------------------------------------------------------


class RegisterError(GatewayError):
    """Anything that went wrong talking to a fiscal register."""

    code = "register_error"


class LinkError(RegisterError):
    """The line to the register misbehaved: no answer, bad frames, closed port."""

    code = "link_error"


class ConnectionLost(LinkError):
    """The port closed or was unplugged; pending requests fail with this."""

    code = "connection_lost"


class NotConnected(LinkError):
    """A request was made while there is no link to the register."""

    code = "not_connected"


class NoAnswer(LinkError):
    """The register did not answer in time. Whether a sent command ran is unknown."""

    code = "no_answer"

    def __init__(self, message: str, *, command_sent: bool) -> None:
        super().__init__(message)
        self.command_sent = command_sent


class FrameError(LinkError):
    """A frame could not be exchanged intact after the allowed retries."""

    code = "frame_error"


class ProtocolError(RegisterError):
    """The register answered something the codec cannot make sense of."""

    code = "protocol_error"


class Refusal(enum.Enum):
    """Why a register said no, in words every driver maps its own codes to.

    The worker and the result shapes know only these; the driver keeps its own code and text
    in `RegisterRefused.detail` for the technician.
    """

    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    PRINTER_FAULT = "printer_fault"  # cutter, print head: a service engineer's job
    BUSY = "busy"  # still printing, overheated, low power, rate limited: clears by itself
    WRONG_MODE = "wrong_mode"  # not allowed now (shift open / closed, document state)
    SHIFT_EXPIRED = "shift_expired"  # open for more than 24 h: only a Z report is possible
    RECEIPT_OPEN = "receipt_open"
    CLOCK = "clock"  # date or time wrong, or earlier than the last document
    FN_EXHAUSTED = "fn_exhausted"  # ФН full, expired or its key used up: replace it
    FN_FAULT = "fn_fault"  # the ФН failed or does not answer the register
    OFD_BACKLOG = "ofd_backlog"  # the ФН waited too long for the OFD and refuses documents
    TAX_SYSTEM = "tax_system"  # the register is not registered for the receipt's tax system
    INVALID_DATA = "invalid_data"  # the register refused what it was sent
    UNMAPPED = "unmapped"  # the register has no code for a name in the receipt (VAT, payment)
    NOT_SUPPORTED = "not_supported"
    NOT_FOUND = "not_found"  # no such document or receipt
    MARKING = "marking"  # a marking code was refused by the ФН or the ОИСМ, or not confirmed
    OTHER = "other"


# States that clear by a person's hand or by themselves: the queue pauses, the job waits.
TRANSIENT_REFUSALS = frozenset({Refusal.PAPER_OUT, Refusal.COVER_OPEN, Refusal.BUSY})


@dataclass(frozen=True, slots=True)
class VendorDetail:
    """The register's own words for a refusal, kept for the technician and the logs.

    `number` is the register's numeric error code where it has one (a Shtrih-M ERR byte);
    `code` its code as the vendor writes it (`0x6b`, `HTTP 400 receipt.already_exists`).
    """

    source: str  # the driver: shtrih, checkbox, vchasno; "gateway" for the box's own rules
    code: str
    text: str
    command: str = ""  # the command or call that was refused
    number: int | None = None


class RegisterRefused(RegisterError):
    """The register refused a command; `reason` says why in driver-neutral words.

    `transient` refusals (paper out, cover open, busy) clear by themselves or by a person's
    hand; the queue pauses and resumes. The others need a decision.
    """

    code = "register_refused"

    def __init__(
        self,
        reason: Refusal,
        message: str,
        *,
        detail: VendorDetail | None = None,
        hint: str | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
        self.detail = detail
        self.transient = reason in TRANSIENT_REFUSALS if transient is None else transient

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(reason={self.reason.value!r}, message={self.message!r}, "
            f"detail={self.detail!r})"
        )


class RegisterMismatch(RegisterError):
    """A different register (another serial or ФН) answers on the port."""

    code = "register_mismatch"


class OutcomeUnproven(RegisterError):
    """The register holds a document that may or may not be this job's (e.g. a cloud РРО
    answers "this id exists" with other contents): a person must decide, never a resend."""

    code = "unproven"


# --- journal and jobs --------------------------------------------------------------------


class JournalError(GatewayError):
    """The durable journal failed."""

    code = "journal_error"


class JournalFull(JournalError):
    """A journal write failed for want of space (the disk or the card is full)."""

    code = "journal_full"


class CorruptJournal(JournalError):
    """The journal file failed its integrity check at start-up."""

    code = "journal_corrupt"


class DuplicateJob(JournalError):
    """A job with this uuid exists already; nothing new was queued."""

    code = "duplicate"

    def __init__(self, uuid: str, record: object = None) -> None:
        super().__init__(f"a job with uuid {uuid!r} exists already")
        self.uuid = uuid
        self.record = record  # the stored job (a journal JobRecord)


class StaleCommand(JournalError):
    """A signed command's sequence number is not above the last one accepted: a replay."""

    code = "stale_sequence"

    def __init__(self, seq: int, last: int) -> None:
        super().__init__(f"sequence {seq} is not above the last accepted {last}")
        self.seq = seq
        self.last = last


class JobNotFound(JournalError):
    """No job with this uuid."""

    code = "not_found"

    def __init__(self, uuid: str) -> None:
        super().__init__(f"no job with uuid {uuid!r}")
        self.uuid = uuid


class InvalidJobState(JournalError):
    """The job is not in a state that allows the operation (e.g. cancel after start)."""

    code = "invalid_state"


# --- journal: added with the durable journal ---------------------------------------------


class JournalTooNew(JournalError):
    """The journal file was written by a newer gateway (its schema version is unknown here)."""

    code = "journal_too_new"

    def __init__(self, message: str, *, found: int, known: int) -> None:
        super().__init__(message)
        self.found = found
        self.known = known
