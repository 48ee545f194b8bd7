"""Pure health rules: a register reading plus thresholds -> the conditions that need a person.

No I/O. `conditions()` returns every condition active now; `changes()` compares two sets, so
the monitor raises an event when a condition appears and one when it clears — never on every
poll.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import asdict, dataclass
from typing import Any

from gateway.domain import fiscal

OFD_BLOCK_DAYS = 30  # the ФН refuses documents once the oldest unsent one is this old (ФН 15h)
SHIFT_LIMIT = dt.timedelta(hours=24)


class Severity(enum.Enum):
    """How urgent a condition is."""

    WARNING = "warning"  # sales go on; act soon
    CRITICAL = "critical"  # sales stop, or will within days


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """From `health:` in the config."""

    fn_expiry_warn_days: int = 30
    ofd_backlog_warn_days: int = 3
    min_firmware: str | None = None


@dataclass(frozen=True, slots=True)
class HealthReading:
    """Everything read from the register in one poll. Times: naive register wall time."""

    read_at: dt.datetime  # the register's clock at the poll
    model: str | None = None
    serial: str | None = None
    firmware_version: str | None = None
    firmware_build: int | None = None
    firmware_date: dt.date | None = None
    fn_number: str | None = None
    fn_expiry: dt.date | None = None
    fn_phase: int | None = None
    fn_warnings: frozenset[fiscal.FnWarning] = frozenset()
    fn_last_document: int | None = None
    ofd_unsent: int | None = None
    ofd_oldest: dt.datetime | None = None
    paper_present: bool | None = None
    cover_open: bool | None = None
    shift_state: fiscal.ShiftState | None = None
    shift_number: int | None = None
    shift_opened_at: dt.datetime | None = None

    @property
    def fn_days_left(self) -> int | None:
        """Days until the ФН expires (negative: expired)."""
        return None if self.fn_expiry is None else (self.fn_expiry - self.read_at.date()).days

    @property
    def ofd_oldest_age(self) -> dt.timedelta | None:
        """How long the oldest unsent document has waited for the OFD."""
        return None if self.ofd_oldest is None else self.read_at - self.ofd_oldest

    @property
    def shift_age(self) -> dt.timedelta | None:
        """How long the open shift has been open."""
        if self.shift_opened_at is None or self.shift_state is fiscal.ShiftState.CLOSED:
            return None
        return self.read_at - self.shift_opened_at

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the derived ages."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if isinstance(value, dt.datetime | dt.date):
                value = value.isoformat()
            elif isinstance(value, frozenset):
                value = sorted(w.value for w in value)
            elif isinstance(value, enum.Enum):
                value = value.value
            out[key] = value
        out["fn_days_left"] = self.fn_days_left
        age = self.ofd_oldest_age
        out["ofd_oldest_age_days"] = round(age.total_seconds() / 86400, 2) if age else None
        shift_age = self.shift_age
        out["shift_age_h"] = round(shift_age.total_seconds() / 3600, 2) if shift_age else None
        return out


@dataclass(frozen=True, slots=True)
class Condition:
    """One thing that needs attention; `kind` is the stable event name."""

    kind: str
    severity: Severity
    message: str
    action: str

    def as_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return {
            "kind": self.kind,
            "severity": self.severity.value,
            "message": self.message,
            "action": self.action,
        }


_FN_WARNING_TEXT: dict[fiscal.FnWarning, tuple[str, Severity, str, str]] = {
    fiscal.FnWarning.REPLACE_URGENTLY: (
        "fn_replace_urgently",
        Severity.CRITICAL,
        "the ФН asks to be replaced urgently (3 days or less of its crypto key left)",
        "replace the ФН now and re-register the register with the tax service",
    ),
    fiscal.FnWarning.RESOURCE_EXHAUSTED: (
        "fn_resource_exhausted",
        Severity.WARNING,
        "the ФН's crypto key has less than 30 days left",
        "order a new ФН and plan its replacement",
    ),
    fiscal.FnWarning.MEMORY_ALMOST_FULL: (
        "fn_memory_almost_full",
        Severity.WARNING,
        "the ФН's archive is 90 % full",
        "plan the ФН's replacement",
    ),
    fiscal.FnWarning.OFD_TIMEOUT: (
        "fn_ofd_timeout",
        Severity.WARNING,
        "the ФН has waited too long for an answer from the OFD",
        "check the register's internet connection and the OFD contract",
    ),
}


def conditions(reading: HealthReading, limits: HealthThresholds) -> tuple[Condition, ...]:
    """Every condition active in `reading`, in a stable order."""
    found: list[Condition] = []
    days = reading.fn_days_left
    if days is not None and days < 0:
        found.append(
            Condition(
                "fn_expired",
                Severity.CRITICAL,
                f"the ФН expired on {reading.fn_expiry}; the register refuses receipts",
                "replace the ФН and re-register the register with the tax service",
            )
        )
    elif days is not None and days < limits.fn_expiry_warn_days:
        found.append(
            Condition(
                "fn_expiring",
                Severity.CRITICAL if days <= 3 else Severity.WARNING,
                f"the ФН expires on {reading.fn_expiry}, in {days} days",
                "order a new ФН and replace it before that date",
            )
        )
    for warning in sorted(reading.fn_warnings, key=lambda w: w.value):
        kind, severity, message, action = _FN_WARNING_TEXT[warning]
        found.append(Condition(kind, severity, message, action))
    age = reading.ofd_oldest_age
    if age is not None and reading.ofd_unsent:
        age_days = age.total_seconds() / 86400
        if age_days >= OFD_BLOCK_DAYS:
            found.append(
                Condition(
                    "ofd_backlog_blocking",
                    Severity.CRITICAL,
                    f"{reading.ofd_unsent} documents not sent to the OFD, the oldest for "
                    f"{age_days:.0f} days; the ФН refuses receipts after {OFD_BLOCK_DAYS} days",
                    "restore the register's internet connection to the OFD now",
                )
            )
        elif age_days >= limits.ofd_backlog_warn_days:
            found.append(
                Condition(
                    "ofd_backlog_old",
                    Severity.CRITICAL
                    if age_days >= OFD_BLOCK_DAYS - limits.ofd_backlog_warn_days
                    else Severity.WARNING,
                    f"{reading.ofd_unsent} documents not sent to the OFD, the oldest since "
                    f"{reading.ofd_oldest:%Y-%m-%d %H:%M} ({age_days:.1f} days); sales stop "
                    f"at {OFD_BLOCK_DAYS} days",
                    "check the register's internet connection and the OFD contract",
                )
            )
    if (
        limits.min_firmware
        and reading.firmware_version is not None
        and firmware_below(reading.firmware_version, reading.firmware_build, limits.min_firmware)
    ):
        found.append(
            Condition(
                "firmware_outdated",
                Severity.WARNING,
                f"firmware {reading.firmware_version} build {reading.firmware_build} is older "
                f"than the minimum {limits.min_firmware}",
                "update the register's firmware (a service centre job)",
            )
        )
    if reading.paper_present is False:
        found.append(
            Condition(
                "paper_out",
                Severity.CRITICAL,
                "the register has no receipt paper",
                "load a new paper roll; the queue resumes by itself",
            )
        )
    if reading.cover_open:
        found.append(
            Condition(
                "cover_open",
                Severity.CRITICAL,
                "the printer cover is open",
                "close the printer cover; the queue resumes by itself",
            )
        )
    shift_age = reading.shift_age
    if reading.shift_state is fiscal.ShiftState.EXPIRED or (
        shift_age is not None and shift_age > SHIFT_LIMIT
    ):
        found.append(
            Condition(
                "shift_over_24h",
                Severity.CRITICAL,
                f"shift {reading.shift_number} has been open for more than 24 hours; only a "
                "Z report is possible",
                "close the shift (Z report); the box does this by itself when the queue is idle",
            )
        )
    return tuple(found)


def journal_fault_condition(kind: str, message: str, action: str, error: str) -> Condition:
    """The journal cannot commit (disk full, damaged file): the queue waits, sales stop."""
    return Condition(kind, Severity.CRITICAL, f"{message} ({error})", action)


def journal_gap_condition(message: str, action: str, *, behind: bool = False) -> Condition:
    """The register made documents the journal does not know: a person compares them.

    `behind`: the other way round, the ФН is behind what the journal recorded for it — not
    the box's register, so the queue is stopped."""
    if behind:
        return Condition("register_behind_journal", Severity.CRITICAL, message, action)
    return Condition("journal_behind_register", Severity.WARNING, message, action)


def changes(
    before: dict[str, Condition], now: tuple[Condition, ...]
) -> tuple[list[Condition], list[Condition]]:
    """(raised, cleared) between the conditions active before and now, by kind."""
    current = {c.kind: c for c in now}
    raised = [c for kind, c in current.items() if kind not in before]
    cleared = [c for kind, c in before.items() if kind not in current]
    return raised, cleared


_TOKEN = re.compile(r"\d+|[A-Za-z]+")


def version_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """A comparable key: numbers compare as numbers, letters case-insensitively ("C.3" == "C3")."""
    return tuple(
        (1, int(tok)) if tok.isdigit() else (0, tok.lower()) for tok in _TOKEN.findall(text)
    )


def firmware_below(version: str, build: int | None, minimum: str) -> bool:
    """True when `version` (plus `build`) is older than `minimum`.

    `minimum` is a version ("C.3") optionally followed by a build ("C.3 62776"); the
    register's version tokens and its build are compared with it, token by token, over the
    tokens both have.
    """
    want = version_key(minimum)
    have = version_key(version)
    if build is not None:
        have = (*have, (1, build))
    n = min(len(have), len(want))  # an unknown build does not count as older
    return have[:n] < want[:n]


# --- marking (ФН-М and the ОИСМ) ---------------------------------------------------------

# Tag FF70h area fill at or above which the notification area is nearly full (3: over 90 %).
MARKING_AREA_NEARLY_FULL = 3


@dataclass(frozen=True, slots=True)
class MarkingReading:
    """One poll of the register's marking state (FF70h) and ОИСМ exchange (FF68h).

    `read_at` and `oldest_unsent` are naive register wall time; `oldest_unsent` is None when
    nothing waits or the register does not say when the oldest notification was made.
    """

    read_at: dt.datetime
    check_state: int
    waiting_decision: bool
    notification_state: int
    area_fill: int
    unsent: int
    oldest_unsent: dt.datetime | None

    @property
    def oldest_unsent_age(self) -> dt.timedelta | None:
        """How long the oldest unsent notification has waited for the ОИСМ."""
        if self.oldest_unsent is None or not self.unsent:
            return None
        return self.read_at - self.oldest_unsent


def marking_conditions(reading: MarkingReading, limits: HealthThresholds) -> tuple[Condition, ...]:
    """The marking conditions that need a person. Unsent notifications use the OFD backlog's
    threshold (`health.ofd_backlog_warn_days`): both are the register's link to the outside."""
    found: list[Condition] = []
    if reading.check_state == 0 or reading.notification_state == 2:
        found.append(
            Condition(
                "marking_blocked",
                Severity.CRITICAL,
                "the ФН blocks marking-code checks (its check table or notification area is "
                "full); marked goods cannot be sold",
                "restore the register's connection to the ОИСМ so it sends its notifications",
            )
        )
    elif reading.area_fill >= MARKING_AREA_NEARLY_FULL:
        found.append(
            Condition(
                "marking_area_nearly_full",
                Severity.WARNING,
                "the ФН's notification area is over 90 % full; marked sales stop when it fills",
                "restore the register's connection to the ОИСМ so it sends its notifications",
            )
        )
    age = reading.oldest_unsent_age
    if age is not None:
        days = age.total_seconds() / 86400
        if days >= limits.ofd_backlog_warn_days:
            found.append(
                Condition(
                    "marking_notifications_old",
                    Severity.WARNING,
                    f"{reading.unsent} marking notifications not sent to the ОИСМ, the oldest "
                    f"since {reading.oldest_unsent:%Y-%m-%d %H:%M} ({days:.1f} days)",
                    "check the register's internet connection and its ОИСМ address (table 26 "
                    "on a Shtrih-M)",
                )
            )
    return tuple(found)
