"""Pure: what is wrong with the box, in order of how badly, and the next step for each.

Each finding is a message key (translated by the page) with its parameters; the first
finding is the big state at the top of the overview.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Final

from gateway.web.status_view import StatusView

SHIFT_LIMIT_H: Final = 24.0
SHIFT_WARN_H: Final = 23.0  # the worker closes it before 24 h; past 23 h someone should look
FN_WARN_DAYS: Final = 30
OFD_WARN_DAYS: Final = 3  # 54-FZ allows 30 days before the ФН stops; warn well before
CLOCK_DRIFT_WARN_S: Final = 60.0
QUEUE_WAIT_WARN: Final = dt.timedelta(minutes=10)
MQTT_BAD_STATES: Final = frozenset({"disconnected", "connecting", "error", "down", "refused"})
REGISTER_GOOD_STATE: Final = "connected"


class Level(enum.IntEnum):
    """How bad: the page colours and the big word follow it."""

    OK = 0
    ATTENTION = 1
    DOWN = 2

    @property
    def key(self) -> str:
        """Message key of the big word."""
        return {Level.OK: "state_ok", Level.ATTENTION: "state_attention", Level.DOWN: "state_down"}[
            self
        ]

    @property
    def css(self) -> str:
        """CSS class of the banner."""
        return {Level.OK: "ok", Level.ATTENTION: "warn", Level.DOWN: "bad"}[self]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: reason and next step are message keys; `params` fill them."""

    level: Level
    reason: str
    step: str
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the journal adds to the status: the blocked job, the oldest waiting one, and the
    shift of a recent `shift_mismatch` event."""

    blocked_uuid: str | None = None
    blocked_why: str | None = None
    oldest_queued_at: dt.datetime | None = None
    status_error: str | None = None  # the status callable failed
    shift_mismatch: int | None = None  # a recent Z report found the register's counters differ


ALL_GOOD: Final = Finding(Level.OK, "reason_all_good", "step_none")


def findings(view: StatusView, facts: Facts, now: dt.datetime) -> list[Finding]:
    """Every problem, worst first; [ALL_GOOD] when there is none."""
    out: list[Finding] = []
    down, warn = Level.DOWN, Level.ATTENTION
    if facts.status_error is not None:
        out.append(Finding(down, "reason_status_failed", "step_diagnostics"))
    if view.journal_state not in (None, "ok"):
        out.append(Finding(down, "reason_journal_down", "step_diagnostics"))
    if view.register_mismatch is not None:
        out.append(
            Finding(
                down,
                "reason_register_swapped",
                "step_accept_register",
                {"what": view.register_mismatch},
            )
        )
    elif view.register_state is None:
        out.append(Finding(warn, "reason_register_unknown", "step_wait"))
    elif view.register_state != REGISTER_GOOD_STATE:
        out.append(
            Finding(
                down,
                "reason_register_offline",
                "step_check_cable",
                {"error": view.register_error or view.register_state},
            )
        )
    blocked = facts.blocked_uuid or view.queue_blocked
    if blocked is not None:
        out.append(
            Finding(
                down,
                "reason_job_blocked",
                "step_resolve_blocked",
                {"uuid": blocked, "why": facts.blocked_why or "?"},
            )
        )
    if view.paper_present is False:
        out.append(Finding(down, "reason_paper_out", "step_load_paper"))
    if view.cover_open is True:
        out.append(Finding(down, "reason_cover_open", "step_close_cover"))
    if view.fn_days_left is not None and view.fn_days_left < 0:
        out.append(Finding(down, "reason_fn_expired", "step_replace_fn"))
    already_said = view.paper_present is False or view.cover_open is True
    if view.queue_paused and not already_said and view.register_state == REGISTER_GOOD_STATE:
        out.append(
            Finding(down, "reason_queue_paused", "step_check_register", {"why": view.queue_paused})
        )
    age = view.shift_age_h
    if view.shift_state == "expired" or (age is not None and age >= SHIFT_LIMIT_H):
        out.append(Finding(down, "reason_shift_expired", "step_close_shift"))
    elif age is not None and age >= SHIFT_WARN_H and view.shift_state != "closed":
        out.append(Finding(warn, "reason_shift_old", "step_close_shift", {"hours": int(age)}))
    if view.fn_days_left is not None and 0 <= view.fn_days_left <= FN_WARN_DAYS:
        out.append(
            Finding(warn, "reason_fn_expiring", "step_order_fn", {"days": view.fn_days_left})
        )
    elif view.fn_warnings:
        out.append(
            Finding(
                warn,
                "reason_fn_warnings",
                "step_order_fn",
                {"warnings": ", ".join(view.fn_warnings)},
            )
        )
    if view.ofd_oldest_age_days is not None and view.ofd_unsent:
        days = int(view.ofd_oldest_age_days)
        if days >= OFD_WARN_DAYS:
            out.append(
                Finding(
                    warn,
                    "reason_ofd_backlog",
                    "step_check_internet",
                    {"count": view.ofd_unsent, "days": days},
                )
            )
    if view.clock_synchronised is False:
        out.append(Finding(warn, "reason_clock_unsynced", "step_check_ntp"))
    if view.clock_drift_s is not None and abs(view.clock_drift_s) > CLOCK_DRIFT_WARN_S:
        out.append(
            Finding(
                warn,
                "reason_clock_drift",
                "step_sync_clock",
                {"seconds": round(view.clock_drift_s)},
            )
        )
    if view.mqtt_state is not None and view.mqtt_state.lower() in MQTT_BAD_STATES:
        out.append(Finding(warn, "reason_mqtt_down", "step_check_internet"))
    oldest = facts.oldest_queued_at
    if oldest is not None and now - oldest > QUEUE_WAIT_WARN and blocked is None:
        minutes = int((now - oldest).total_seconds() // 60)
        out.append(Finding(warn, "reason_queue_slow", "step_check_register", {"minutes": minutes}))
    if facts.shift_mismatch is not None:
        out.append(
            Finding(
                warn,
                "reason_shift_mismatch",
                "step_shift_mismatch",
                {"shift": facts.shift_mismatch},
            )
        )
    if view.marking_problems:
        out.append(
            Finding(
                warn, "reason_marking", "step_marking", {"what": "; ".join(view.marking_problems)}
            )
        )
    out.sort(key=lambda f: -f.level)  # stable: within a level, the order above stands
    return out or [ALL_GOOD]
