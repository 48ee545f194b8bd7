"""Pure: what a failed journal write means for the queue, in words for a person.

The worker pauses on any journal error instead of dying: nothing is acknowledged or printed
without a commit, so waiting loses nothing. `JournalFault` is what it reports meanwhile (the
status page, /health and the health monitor read it).
"""

from __future__ import annotations

import datetime as dt
import enum
import errno
from dataclasses import dataclass

from gateway.domain.errors import CorruptJournal, JournalError, JournalFull

SQLITE_FULL = 13  # SQLite's primary result code "database or disk is full"


class JournalFaultKind(enum.Enum):
    """Why the journal cannot write."""

    DISK_FULL = "disk_full"
    DAMAGED = "journal_damaged"
    FAILED = "journal_failed"


_WORDS: dict[JournalFaultKind, tuple[str, str]] = {
    JournalFaultKind.DISK_FULL: (
        "disk full: free space or replace the card",
        "free space on the box's data partition or replace its SD card; the queue resumes by "
        "itself and nothing queued is lost",
    ),
    JournalFaultKind.DAMAGED: (
        "the journal file is damaged: restart the box to check it",
        "restart the gateway; if the journal is reported damaged, see the status page's "
        "diagnostics before printing again",
    ),
    JournalFaultKind.FAILED: (
        "the journal cannot write: check the box's storage",
        "check the box's SD card and its data partition; the queue resumes by itself once "
        "the journal writes again",
    ),
}


@dataclass(frozen=True, slots=True)
class JournalFault:
    """The journal failed to commit since `since`; `error` is the last failure."""

    kind: JournalFaultKind
    error: str
    since: dt.datetime

    @property
    def reason(self) -> str:
        """One line for the paused queue."""
        return _WORDS[self.kind][0]

    @property
    def action(self) -> str:
        """What a person does about it."""
        return _WORDS[self.kind][1]

    def as_dict(self) -> dict[str, str]:
        """JSON-ready, for /health and events."""
        return {
            "kind": self.kind.value,
            "message": self.reason,
            "action": self.action,
            "error": self.error,
            "since": self.since.isoformat(),
        }


def classify(err: JournalError) -> JournalFaultKind:
    """The kind of a journal failure, read from the error and what caused it."""
    if isinstance(err, JournalFull) or _disk_full(err):
        return JournalFaultKind.DISK_FULL
    if isinstance(err, CorruptJournal):
        return JournalFaultKind.DAMAGED
    return JournalFaultKind.FAILED


def _disk_full(err: BaseException) -> bool:
    """Somewhere in the chain of causes: ENOSPC, or SQLite's SQLITE_FULL."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        code = getattr(cause, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF == SQLITE_FULL:
            return True
        cause = cause.__cause__ or cause.__context__
    return False
