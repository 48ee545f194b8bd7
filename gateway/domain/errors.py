"""One exception root for the whole gateway; subclasses carry codes and fields."""

from __future__ import annotations

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
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


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


class DeviceError(RegisterError):
    """The register refused a command with an error code of its own.

    `transient` errors (paper out, cover open, printing) clear by themselves or by a person's
    hand; the queue pauses and resumes. The others need a decision.
    """

    code = "device_error"

    def __init__(
        self,
        error_code: int,
        text: str,
        *,
        command: int,
        hint: str | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(
            f"register error {error_code:#04x} on command {command:#x}: {text}", hint=hint
        )
        self.error_code = error_code
        self.text = text
        self.command = command
        self.transient = transient


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
