"""Fleet state, conditions, incidents and deliveries as frozen values."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Rule(enum.Enum):
    """What an incident is about; the value is stored and sent in webhooks."""

    BOX_OFFLINE = "box_offline"
    BOX_SILENT = "box_silent"  # online, but no telemetry for too long (a hung daemon)
    FN_EXPIRING = "fn_expiring"
    OFD_BACKLOG = "ofd_backlog"
    CLOCK_DRIFT = "clock_drift"
    JOB_BLOCKED = "job_blocked"
    MARKING = "marking"  # the box reports a marking problem (blocked checks, unsent notices)
    SHIFT_MISMATCH = "shift_mismatch"
    WRITEBACK_FAILING = "writeback_failing"


class Phase(enum.Enum):
    """A delivery announces an incident once when it opens and once when it clears."""

    OPENED = "opened"
    CLEARED = "cleared"


class Channel(enum.Enum):
    EMAIL = "email"
    WEBHOOK = "webhook"


@dataclass(frozen=True, slots=True)
class BoxState:
    """What the boxes' status, telemetry and events told the hub about one box."""

    box_id: str
    online: bool | None  # None: no status seen yet
    since_ms: int | None  # when `online` last changed
    status: dict[str, Any] | None
    telemetry: dict[str, Any] | None
    telemetry_ms: int | None
    shift_mismatch: dict[str, Any] | None  # the last `shift_mismatch` event
    shift_mismatch_ms: int | None


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule that holds now for one box (and subject: a job uuid, a ФН number…)."""

    rule: Rule
    box_id: str
    subject: str
    text: str
    details: dict[str, Any]

    @property
    def key(self) -> str:
        return incident_key(self.rule, self.box_id, self.subject)


SUBJECT_MAX = 256


def incident_key(rule: Rule, box_id: str, subject: str) -> str:
    """What makes a condition the same one again; fits the `open_key` column."""
    return f"{rule.value}|{box_id}|{subject[:SUBJECT_MAX]}"


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    rule: Rule
    box_id: str
    subject: str
    text: str
    details: dict[str, Any]
    opened_ms: int
    cleared_ms: int | None

    @property
    def key(self) -> str:
        return incident_key(self.rule, self.box_id, self.subject)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to one recipient about one incident phase; durable until sent."""

    id: int
    incident: Incident
    phase: Phase
    channel: Channel
    target: str
    attempts: int
