"""The marking monitor: the ФН-М's marking state and the notifications waiting for the ОИСМ.

Polls FF70h (marking state) and FF68h (ОИСМ exchange) at the health monitor's cadence,
holding the worker's register lock and giving way to a waiting job between the two reads,
as the health monitor does. A register that cannot check codes (not a `MarkingRegister`, or
a ФН registered without marking: `Refusal.NOT_SUPPORTED`) is shown as "not enabled" once and
never polled again.

A ФН in autonomous mode has no exchange with the ОИСМ (FF68h: ФН 02h, the driver's
`IsmExchange.autonomous`): marking still works, so polling goes on — FF70h still counts the
notifications waiting for an upload by hand — and the snapshot shows "autonomous". FF68h then
gives no date of the oldest notification: the monitor counts its age from the first poll that
saw notifications waiting (in memory; a restart starts counting again).

Whether the ОИСМ answers a check is not something the register reports by itself: the worker
tells this monitor about every code it checked (`note_check`), so the page shows when the ОИСМ last
answered and since when it has not ("autonomous since"). Those two times live in memory; a
restart shows "unknown" until the next check.

Conditions (`health_rules.marking_conditions`) become events when they appear and clear, like
the health monitor's; the active set is kept in the journal's meta table.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from gateway.config.schema import HealthConfig
from gateway.domain import fiscal, marking
from gateway.domain.errors import GatewayError, Refusal, RegisterRefused
from gateway.journal import Journal
from gateway.monitors.health_rules import (
    Condition,
    HealthThresholds,
    MarkingReading,
    Severity,
    marking_conditions,
)
from gateway.monitors.polling import ActiveConditions, RegisterTurns
from gateway.runtime.aio import wait_set

_LOGGER = logging.getLogger(__name__)

META_ACTIVE = "marking_conditions"
NOT_A_MARKING_REGISTER = "this register does not check marking codes"

# FF70h check state, in words for the page and telemetry.
CHECK_STATES = {
    0: "blocked",
    1: "idle",
    2: "code_checked",
    3: "request_formed",
    4: "answer_passed",
}


@dataclass(frozen=True, slots=True)
class MarkingSnapshot:
    """What the page and telemetry show about marking.

    `enabled`: None until the first poll answers, False when the register does not check
    codes (`reason` says why). `autonomous`: the ФН works in autonomous mode (None before a
    poll); `autonomous_unsent_since` is when a poll first saw its notifications waiting.
    `last_answered_at` is when the ОИСМ last answered a check, `unanswered_since` when the
    first check after that went unanswered (box time, UTC).
    """

    enabled: bool | None = None
    reason: str | None = None
    autonomous: bool | None = None
    autonomous_unsent_since: dt.datetime | None = None  # the register's wall time
    reading: MarkingReading | None = None
    exchange_state: int | None = None
    fill_percent: int | None = None
    last_answered_at: dt.datetime | None = None
    unanswered_since: dt.datetime | None = None
    checks_seen: int = 0
    conditions: tuple[Condition, ...] = ()
    polled_at: dt.datetime | None = None
    error: str | None = None
    stale: bool = True

    @property
    def ism_reachable(self) -> bool | None:
        """The last check the box made was answered by the ОИСМ; None before any check."""
        if self.unanswered_since is not None:
            return False
        return True if self.last_answered_at is not None else None

    @property
    def worst(self) -> Severity | None:
        """The most urgent active severity."""
        if any(c.severity is Severity.CRITICAL for c in self.conditions):
            return Severity.CRITICAL
        return Severity.WARNING if self.conditions else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for /health, telemetry and the status page."""
        r = self.reading
        age = r.oldest_unsent_age if r is not None else None
        return {
            "enabled": self.enabled,
            "reason": self.reason,
            "ism": {
                "mode": None
                if self.autonomous is None
                else "autonomous"
                if self.autonomous
                else "online",
                "autonomous": self.autonomous,
                "reachable": self.ism_reachable,
                "last_answered_at": _iso(self.last_answered_at),
                "unanswered_since": _iso(self.unanswered_since),
                "checks_seen": self.checks_seen,
            },
            "notifications": {
                "unsent": r.unsent if r is not None else None,
                "oldest": _iso(r.oldest_unsent) if r is not None else None,
                # Autonomous: FF68h gives no date, "oldest" is when a poll first saw them.
                "oldest_seen_by_poll": bool(self.autonomous and r and r.oldest_unsent),
                "oldest_age_days": round(age.total_seconds() / 86400, 2) if age else None,
                "state": r.notification_state if r is not None else None,
                "area_fill": r.area_fill if r is not None else None,
                "exchange_state": self.exchange_state,
                "fill_percent": self.fill_percent,
            },
            "check": {
                "state": CHECK_STATES.get(r.check_state, str(r.check_state))
                if r is not None
                else None,
                "waiting_decision": r.waiting_decision if r is not None else None,
            },
            "conditions": [c.as_dict() for c in self.conditions],
            "worst": self.worst.value if self.worst else None,
            "polled_at": _iso(self.polled_at),
            "error": self.error,
            "stale": self.stale,
        }


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def register_time(text: str | None) -> dt.datetime | None:
    """FF68h's date of the oldest unsent notification ("YYYY-MM-DDTHH:MM"), or None."""
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        return None


class MarkingMonitor:
    """Polls the register's marking state every `health.poll_interval_s`; one per register."""

    def __init__(
        self,
        journal: Journal,
        register: fiscal.Register,
        connected: asyncio.Event,
        register_lock: asyncio.Lock,
        *,
        config: HealthConfig,
        tz: dt.tzinfo | None = None,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._register = register
        self._connected = connected
        self._config = config
        self._limits = HealthThresholds(
            fn_expiry_warn_days=config.fn_expiry_warn_days,
            ofd_backlog_warn_days=config.ofd_backlog_warn_days,
        )
        self._tz = tz
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._kick = asyncio.Event()
        self._active = ActiveConditions(journal, META_ACTIVE, "Marking", self._now)
        self._turns = RegisterTurns(register_lock, "Marking")
        self._snapshot = (
            MarkingSnapshot()
            if isinstance(register, fiscal.MarkingRegister)
            else MarkingSnapshot(enabled=False, reason=NOT_A_MARKING_REGISTER, stale=False)
        )
        self.polls = 0

    @property
    def gave_way(self) -> int:
        """Readings given up for a job that wanted the register."""
        return self._turns.gave_way

    def snapshot(self) -> MarkingSnapshot:
        """The latest state."""
        return self._snapshot

    def poll_now(self) -> None:
        """Poll without waiting for the interval."""
        self._kick.set()

    def note_check(self, check: marking.CodeCheck) -> None:
        """The worker checked a code (a task's check or a receipt's): note whether the ОИСМ
        answered. Called from the worker's task, no I/O."""
        now = self._now()
        snap = self._snapshot
        if check.answered:
            snap = replace(snap, last_answered_at=now, unanswered_since=None)
        elif snap.unanswered_since is None:
            snap = replace(snap, unanswered_since=now)
        self._snapshot = replace(snap, checks_seen=snap.checks_seen + 1)

    async def run(self) -> None:
        """Poll until cancelled, or until the register proves it does not do marking."""
        while self._snapshot.enabled is not False:
            try:
                await self.poll_once()
            except (GatewayError, OSError) as err:
                _LOGGER.warning("Marking poll failed: %s", err)
                self._snapshot = replace(self._snapshot, error=str(err), stale=True)
            if self._snapshot.enabled is False:
                break
            await wait_set(self._kick, self._config.poll_interval_s)
            self._kick.clear()
        _LOGGER.info("Marking monitor stopped: %s", self._snapshot.reason)

    async def poll_once(self) -> MarkingSnapshot | None:
        """Read, evaluate, raise/clear events; None when the register was not read."""
        try:
            return await self._poll()
        finally:
            self.polls += 1

    async def _poll(self) -> MarkingSnapshot | None:
        register = self._register
        if not isinstance(register, fiscal.MarkingRegister) or self._snapshot.enabled is False:
            return None
        if not self._connected.is_set():
            self._snapshot = replace(self._snapshot, error="register not connected", stale=True)
            return None
        try:
            read = await self._read_whole(register)
        except RegisterRefused as err:
            if err.reason is not Refusal.NOT_SUPPORTED:
                raise
            _LOGGER.info("Marking is not enabled on this register: %s", err.message)
            self._snapshot = replace(
                self._snapshot,
                enabled=False,
                reason=err.message,
                polled_at=self._now(),
                error=None,
                stale=False,
            )
            return self._snapshot
        if read is None:
            return None
        state, exchange = read
        read_at = self._wall_now()
        unsent = max(exchange.unsent, state.unsent)
        oldest = register_time(exchange.first_unsent_at)
        since: dt.datetime | None = None
        if exchange.autonomous:
            if self._snapshot.autonomous is not True:
                _LOGGER.info(
                    "The ФН works in autonomous mode: no exchange with the marking system; "
                    "%d notifications wait for an upload by hand",
                    unsent,
                )
            if unsent:
                since = self._snapshot.autonomous_unsent_since or read_at
                oldest = since
        elif self._snapshot.autonomous:
            _LOGGER.info("The ФН exchanges with the marking system again (not autonomous)")
        reading = MarkingReading(
            read_at=read_at,
            check_state=state.check_state,
            waiting_decision=state.waiting_decision,
            notification_state=state.notification_state,
            area_fill=state.area_fill,
            unsent=unsent,
            oldest_unsent=oldest,
        )
        found = marking_conditions(reading, self._limits)
        self._snapshot = replace(
            self._snapshot,
            enabled=True,
            reason=None,
            autonomous=exchange.autonomous,
            autonomous_unsent_since=since,
            reading=reading,
            exchange_state=exchange.state,
            fill_percent=exchange.fill_percent,
            conditions=found,
            polled_at=self._now(),
            error=None,
            stale=False,
        )
        await self._active.report(found)
        return self._snapshot

    def _wall_now(self) -> dt.datetime:
        """Now as the register's wall time (the box's zone), to age FF68h's date."""
        now = self._now()
        return (
            now.astimezone(self._tz).replace(tzinfo=None) if self._tz else now.replace(tzinfo=None)
        )

    async def _read_whole(
        self, register: fiscal.MarkingRegister
    ) -> tuple[marking.MarkingState, marking.IsmExchange] | None:
        """Both reads under the register lock, giving way to a job between them."""

        async def steps() -> tuple[marking.MarkingState, marking.IsmExchange] | None:
            state = await register.marking_state()
            if not await self._turns.give_way():
                return None
            return state, await register.ism_exchange()

        return await self._turns.read(steps)
