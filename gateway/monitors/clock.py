"""The clock monitor: measures the register's drift, applies `clock_policy`, acts, reports.

Every check: ask the box whether its clock is synchronised (`timesync`), then — holding the
worker's register lock, so no job is mid-document — read the register's status, clock and
the ФН's last document, decide, and act: set the register's clock, submit a `closeShift`
job (source "system") that runs in queue order through the exactly-once path, or set the
box's clock. Each decision is logged; a change of decision, and every action taken,
becomes an event in the journal's outbox.

Checks run every `clock.check_interval_s`, at once on every (re)connect (`check_now`), and
right before the worker opens a shift (`before_shift_open`): a shift is the one moment the
register may be set, and every document of the shift carries the clock it opened with.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from gateway.atol.tasks import CloseShiftTask
from gateway.config.choices import OpenShiftClockPolicy
from gateway.config.schema import ClockConfig
from gateway.domain import fiscal
from gateway.domain.errors import GatewayError, LinkError, Refusal, RegisterRefused
from gateway.journal import FINISHED, Journal
from gateway.journal.intake import Intake, Outcome
from gateway.monitors.clock_policy import (
    ClockAction,
    ClockDecision,
    ClockObservation,
    ClockRules,
    OpenShiftRule,
    decide,
)
from gateway.monitors.timesync import BoxClockProbe, ClockError, SyncVerdict, set_system_clock
from gateway.runtime.aio import wait_set

_LOGGER = logging.getLogger(__name__)

LOCK_WAIT_S = 10.0  # a check gives up when a job holds the register this long
REGISTER_IO_TIMEOUT_S = 30.0  # all register calls of one check together
HOLD_MARGIN_S = 1.0  # past the ФН's last document, to be sure of the minute boundary
CLOSE_WAIT_POLL_S = 0.01  # how often a pending shift close looks whether the worker took the lock
# The register reports whole seconds, truncated: its true time is on average half a second on.
REGISTER_RESOLUTION = dt.timedelta(seconds=0.5)
SET_TIME_COMMAND = 0x21  # the register's "set time": what a correction before a shift needs
# The event of a shift opened with a large drift the box could not judge.
UNCORRECTED_EVENT = "clock_shift_opened_uncorrected"

# What a technician should do, per decision.
ACTIONS: dict[ClockAction, str] = {
    ClockAction.IN_SYNC: "nothing to do",
    ClockAction.SET_REGISTER: "nothing to do; the register's clock was corrected",
    ClockAction.ALERT_OPEN_SHIFT: (
        "close the shift (Z report) when convenient; the clock is corrected right after"
    ),
    ClockAction.CLOSE_SHIFT: (
        "nothing to do; the box closes the shift between receipts and then corrects the clock"
    ),
    ClockAction.HOLD_FOR_FN: (
        "nothing to do; the register's clock is corrected within minutes, once the box's time "
        "passes the ФН's last document"
    ),
    ClockAction.FN_AHEAD: (
        "check the box's time source; do not set the register's clock back before the ФН's "
        "last document — the ФН would refuse every document until then"
    ),
    ClockAction.BOX_UNTRUSTED: (
        "give the box internet access for NTP (check systemd-timesyncd); until then the "
        "register's clock is not touched"
    ),
    ClockAction.SET_BOX: "nothing to do; check the box's NTP access so it keeps its own time",
}


class ClockNotCorrected(RegisterRefused):
    """No shift may open yet: the register's clock is off and could not be corrected.

    A transient refusal, so the worker pauses its queue and retries by itself.
    """

    code = "clock_not_corrected"

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(Refusal.CLOCK, message, hint=hint, transient=True)
        self.message = message  # not dressed up as a register error code: none was returned
        self.args = (message,)


@dataclass(frozen=True, slots=True)
class ClockSnapshot:
    """The clock state for /health, telemetry and the status page."""

    box_synced: bool | None = None
    sync_source: str | None = None
    sync_detail: str | None = None
    checked_at: dt.datetime | None = None
    register_time: dt.datetime | None = None
    box_time: dt.datetime | None = None
    drift_s: float | None = None
    decision: str | None = None
    reason: str | None = None
    blocking: bool = False
    pending_close_job: str | None = None
    last_correction_at: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in asdict(self).items()
        }


class ClockMonitor:
    """Watches and corrects the register's clock; one per register."""

    def __init__(
        self,
        journal: Journal,
        register: fiscal.Register,
        connected: asyncio.Event,
        register_lock: asyncio.Lock,
        *,
        config: ClockConfig,
        tz: dt.tzinfo | None = None,
        probe: BoxClockProbe | None = None,
        now: Callable[[], dt.datetime] | None = None,
        set_box_clock: Callable[[dt.timedelta], None] = set_system_clock,
        wake_worker: Callable[[], None] = lambda: None,
        job_prefix: str = "clock",
    ) -> None:
        self._journal = journal
        self._register = register
        self._connected = connected
        self._lock = register_lock
        self._config = config
        self._rules = ClockRules(
            drift_threshold=dt.timedelta(seconds=config.drift_threshold_s),
            open_shift=OpenShiftRule.CLOSE_SHIFT
            if config.correct_in_open_shift is OpenShiftClockPolicy.CLOSE_SHIFT
            else OpenShiftRule.ALERT,
            set_box_from_register=config.set_box_clock_from_register,
        )
        self._tz = tz
        self._probe = probe or BoxClockProbe(config.trust)
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._set_box_clock = set_box_clock
        self._wake_worker = wake_worker
        self._intake = Intake(journal, wake=lambda _uuid: wake_worker())
        self._job_prefix = job_prefix
        self._kick = asyncio.Event()
        self._last_event: ClockAction | None = None
        self._snapshot = ClockSnapshot()
        self._fn_document = -1  # the ФН's last document number at the latest observation
        self._uncorrected_noted: int | None = None  # ...when the last uncorrected shift was noted
        self.checks = 0

    def snapshot(self) -> ClockSnapshot:
        """The latest state."""
        return self._snapshot

    def check_now(self) -> None:
        """Run a check without waiting for the interval (on connect; "sync clock" on the page)."""
        self._kick.set()

    # --- loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Check every `clock.check_interval_s` until cancelled."""
        while True:
            try:
                await self.check_once()
            except (GatewayError, OSError) as err:
                _LOGGER.warning("Clock check failed: %s", err)
            await self._wait_interval()

    async def _wait_interval(self) -> None:
        await wait_set(self._kick, self._config.check_interval_s)
        self._kick.clear()

    async def check_once(self) -> ClockDecision | None:
        """One measurement and decision; None when the register could not be read."""
        self.checks += 1
        verdict = await self._verdict()
        if not self._connected.is_set():
            _LOGGER.debug("Clock check skipped: register not connected")
            return None
        try:
            async with asyncio.timeout(LOCK_WAIT_S):
                await self._lock.acquire()
        except TimeoutError:
            _LOGGER.debug("Clock check skipped: a job holds the register")
            return None
        try:
            async with asyncio.timeout(self._locked_budget_s):
                decision = await self._check_locked(verdict)
        finally:
            self._lock.release()
        if decision.action is ClockAction.CLOSE_SHIFT and self._snapshot.pending_close_job:
            await self._correct_after_close(self._snapshot.pending_close_job)
        return decision

    async def _verdict(self) -> SyncVerdict:
        verdict = await self._probe.check()
        self._snapshot = _replace(
            self._snapshot,
            box_synced=verdict.synced,
            sync_source=verdict.source,
            sync_detail=verdict.detail,
        )
        return verdict

    # --- before a shift opens (the worker holds the register lock) -------------------------

    async def before_shift_open(self) -> None:
        """Compare the clocks right before the worker opens a shift; correct first if needed.

        The worker calls this while it holds its register lock, so the lock is not taken here.
        Box trusted and the drift past the threshold: the register is set now (its shift is
        closed, so it allows it); when that is not possible a `ClockNotCorrected` pauses the
        queue rather than dating a whole shift by a wrong clock. Box untrusted: the shift
        opens with the register's time, and an event (once per shift) says why.
        """
        self.checks += 1
        verdict = await self._verdict()
        try:
            async with asyncio.timeout(REGISTER_IO_TIMEOUT_S):
                # A paused queue asks again every few seconds: a repeat is logged quietly.
                obs, decision = await self._measure(verdict, repeat_quietly=True)
                await self._act_before_open(obs, decision, verdict)
        except TimeoutError as err:
            raise ClockNotCorrected(
                "the register's clock could not be read in time before opening a shift",
                hint="check the register's cable and power; the queue resumes by itself",
            ) from err

    async def _act_before_open(
        self, obs: ClockObservation, decision: ClockDecision, verdict: SyncVerdict
    ) -> None:
        action = decision.action
        if action is ClockAction.SET_REGISTER:
            try:
                extra = await self._set_register(obs)
            except LinkError:
                raise  # the worker's own recovery handles a lost link
            except GatewayError as err:
                raise ClockNotCorrected(
                    f"the register's clock is {self._off} and setting it failed ({err}); "
                    "no shift is opened with the wrong time",
                    hint="set the register's clock on the status page (sync clock); the queue "
                    "resumes by itself",
                ) from err
            await self._event(decision, obs, extra)
            residual = extra["drift_after_s"]
            if abs(residual) > self._rules.drift_threshold.total_seconds():
                raise ClockNotCorrected(
                    f"the register's clock is still {self._off} after setting it; "
                    "no shift is opened with the wrong time",
                    hint="check the register's clock on the status page; the queue retries "
                    "by itself",
                )
            return
        if action in (ClockAction.HOLD_FOR_FN, ClockAction.FN_AHEAD):
            # Setting the register now would date it before the ФН's last document.
            if action is not self._last_event:
                hold = action is ClockAction.HOLD_FOR_FN
                await self._event(decision, obs, {"until": _iso(decision.target)} if hold else {})
            last = obs.fn_last_document
            when = f"{last:%Y-%m-%d %H:%M}" if last else "?"
            raise ClockNotCorrected(
                f"the register's clock is {self._off} and cannot be set before the ФН's "
                f"last document ({when}); no shift is opened with the wrong time",
                hint=(
                    "nothing to do: the clock is corrected and the shift opened once the box's "
                    "time passes it"
                    if action is ClockAction.HOLD_FOR_FN
                    else ACTIONS[ClockAction.FN_AHEAD]
                    + "; the queue resumes by itself once the box's time passes it"
                ),
            )
        if action is ClockAction.SET_BOX:
            extra = self._set_box(obs)
            await self._event(decision, obs, extra)
            return
        if action is ClockAction.BOX_UNTRUSTED:
            if action is not self._last_event:
                await self._event(decision, obs, {})
            if abs(obs.drift) > self._rules.drift_threshold:
                await self._note_uncorrected(obs, verdict)
            return
        # In sync; or the register reports a shift open after all, and opening fails there.
        if action is not self._last_event:
            await self._event(decision, obs, {})

    @property
    def _off(self) -> str:
        # No live numbers: the worker's pause reason must stay the same from retry to retry.
        return f"more than {self._rules.drift_threshold.total_seconds():.0f} s off"

    async def _note_uncorrected(self, obs: ClockObservation, verdict: SyncVerdict) -> None:
        """Say why a shift opens with a large drift uncorrected; once per shift (retries of
        the same opening find the ФН's last document unchanged)."""
        if self._uncorrected_noted == self._fn_document:
            return
        self._uncorrected_noted = self._fn_document
        message = (
            f"a shift opens with the register's own time ({_drift(obs)} from the box's): the "
            f"box's clock is not synchronised ({verdict.source}: {verdict.detail}), so it "
            "cannot judge the register's; nothing was corrected"
        )
        _LOGGER.warning("Clock: %s", message)
        await self._journal.add_event(
            UNCORRECTED_EVENT,
            {
                "message": message,
                "action": ACTIONS[ClockAction.BOX_UNTRUSTED],
                "drift_s": round(obs.drift.total_seconds(), 1),
                "register_time": obs.register_now.replace(microsecond=0).isoformat(),
                "box_time": obs.box_now.replace(microsecond=0).isoformat(),
                "box_synced": False,
                "sync_source": verdict.source,
                "sync_detail": verdict.detail,
            },
            now=self._now(),
        )

    # --- under the register lock --------------------------------------------------------

    def _box_wall(self) -> dt.datetime:
        """The box's time as the register's wall clock reads it (naive, register's zone)."""
        return self._now().astimezone(self._tz).replace(tzinfo=None)

    async def _observe(self, verdict: SyncVerdict) -> ClockObservation:
        before = self._box_wall()
        status = await self._register.status()
        after = self._box_wall()
        register_now = status.datetime or await self._register.read_clock()
        fn = await self._register.fn_status()
        self._fn_document = fn.last_document_number
        return ClockObservation(
            box_trusted=verdict.synced,
            box_now=before + (after - before) / 2,
            register_now=register_now + REGISTER_RESOLUTION,
            shift_open=status.shift is not fiscal.ShiftState.CLOSED or status.receipt_open,
            fn_last_document=fn.last_document_datetime,
        )

    async def _measure(
        self, verdict: SyncVerdict, *, repeat_quietly: bool = False
    ) -> tuple[ClockObservation, ClockDecision]:
        """Observe and decide; the snapshot and the log say what was found."""
        obs = await self._observe(verdict)
        decision = decide(obs, self._rules)
        self._snapshot = _replace(
            self._snapshot,
            checked_at=self._now(),
            register_time=obs.register_now.replace(microsecond=0),
            box_time=obs.box_now.replace(microsecond=0),
            drift_s=round(obs.drift.total_seconds(), 1),
            decision=decision.action.value,
            reason=decision.reason,
            blocking=decision.blocking,
        )
        quiet = decision.action is ClockAction.IN_SYNC or (
            repeat_quietly and decision.action is self._last_event
        )
        (_LOGGER.debug if quiet else _LOGGER.warning)("Clock: %s", decision.reason)
        return obs, decision

    async def _check_locked(self, verdict: SyncVerdict) -> ClockDecision:
        obs, decision = await self._measure(verdict)
        extra: dict[str, Any] = {}
        if decision.action is ClockAction.HOLD_FOR_FN:
            await self._event(decision, obs, {"until": _iso(decision.target)})
            obs, decision = await self._hold(decision, verdict)
        if decision.action is ClockAction.SET_REGISTER:
            extra = await self._set_register(obs)
        elif decision.action is ClockAction.CLOSE_SHIFT:
            extra = await self._request_close()
        elif decision.action is ClockAction.SET_BOX:
            extra = self._set_box(obs)
        repeat = extra.pop("already_queued", False)  # the same close job: no second alarm
        if (decision.changes_something and not repeat) or decision.action is not self._last_event:
            await self._event(decision, obs, extra)
        return decision

    async def _set_register(self, obs: ClockObservation) -> dict[str, Any]:
        """Set the register to the box's time now; refuse a time before the ФН's last document."""
        target = (self._box_wall() + REGISTER_RESOLUTION).replace(microsecond=0)
        last = obs.fn_last_document
        if last is not None and target < last:
            raise ClockError(f"refusing to set the register to {target}, before the ФН's {last}")
        try:
            await self._register.set_clock(target)
        except GatewayError as err:
            _LOGGER.error("Setting the register's clock to %s failed: %s", target, err)
            await self._journal.add_event(
                "clock_set_failed",
                {
                    "message": f"setting the register's clock failed: {err}",
                    "action": "check the register's mode; set its clock on the status page",
                    "target": target.isoformat(),
                },
                now=self._now(),
            )
            raise
        after = await self._register.read_clock()
        residual = (after + REGISTER_RESOLUTION - self._box_wall()).total_seconds()
        _LOGGER.warning(
            "Register clock set to %s (was %+.0f s off, now %+.1f s)",
            target,
            obs.drift.total_seconds(),
            residual,
        )
        self._snapshot = _replace(
            self._snapshot,
            last_correction_at=self._now(),
            register_time=after,
            drift_s=round(residual, 1),
            pending_close_job=None,
        )
        return {"set_to": target.isoformat(), "drift_after_s": round(residual, 1)}

    async def _request_close(self) -> dict[str, Any]:
        """Queue a closeShift job (once per shift) so it runs in order, exactly once."""
        shift = await self._register.shift_info()
        uuid = f"{self._job_prefix}-close-shift-{shift.number}"
        submitted = await self._intake.submit_tasks(
            uuid, [CloseShiftTask()], source="system", now=self._now()
        )
        already = submitted.outcome is Outcome.DUPLICATE
        if already:
            _LOGGER.debug("%s was queued before", uuid)
            self._wake_worker()  # it may be waiting still
        else:
            _LOGGER.warning("Queued %s to close shift %d for the clock", uuid, shift.number)
        self._snapshot = _replace(self._snapshot, pending_close_job=uuid)
        return {"job": uuid, "shift": shift.number, "already_queued": already}

    def _set_box(self, obs: ClockObservation) -> dict[str, Any]:
        offset = obs.drift
        try:
            self._set_box_clock(offset)
        except ClockError as err:
            _LOGGER.error("%s", err)
            return {"error": str(err)}
        _LOGGER.warning("Box clock moved %+.0f s to the register's clock", offset.total_seconds())
        return {"moved_s": round(offset.total_seconds(), 1)}

    async def _correct_after_close(self, uuid: str) -> None:
        """Wait for the closeShift job; take the lock right after it, before the next job.

        asyncio.Lock is fair: a task already waiting gets the lock before the worker can take
        it again, so joining the queue while the worker holds the lock means running between
        its jobs. Gives up after one check interval; the next check resumes.
        """
        try:
            async with asyncio.timeout(self._config.check_interval_s):
                while True:
                    if not self._lock.locked():
                        await asyncio.sleep(CLOSE_WAIT_POLL_S)
                        continue
                    async with self._lock:
                        job = await self._journal.get(uuid)
                        if job.state in FINISHED:
                            await self._after_close_locked(job.state.value)
                            return
        except TimeoutError:
            _LOGGER.info("Shift close %s has not run yet; the next clock check follows it", uuid)

    async def _after_close_locked(self, job_state: str) -> None:
        verdict = await self._probe.check()
        async with asyncio.timeout(self._locked_budget_s):
            obs = await self._observe(verdict)
            decision = decide(obs, self._rules)
            _LOGGER.info("Clock after the shift close (%s): %s", job_state, decision.reason)
            if decision.action is ClockAction.HOLD_FOR_FN:
                await self._event(decision, obs, {"until": _iso(decision.target)})
                obs, decision = await self._hold(decision, verdict)
            if decision.action is ClockAction.SET_REGISTER:
                extra = await self._set_register(obs)
                await self._event(decision, obs, extra)
            elif decision.action is not ClockAction.CLOSE_SHIFT:
                self._snapshot = _replace(self._snapshot, pending_close_job=None)

    @property
    def _locked_budget_s(self) -> float:
        """How long one check may hold the register: its I/O plus the longest hold."""
        return REGISTER_IO_TIMEOUT_S + self._rules.max_hold.total_seconds() + HOLD_MARGIN_S

    async def _hold(
        self, decision: ClockDecision, verdict: SyncVerdict
    ) -> tuple[ClockObservation, ClockDecision]:
        """Keep the register (lock held) until the box's time passes the ФН's last document.

        No job may open a shift meanwhile: it would be dated by the fast clock again.
        """
        assert decision.target is not None
        wait_s = (decision.target - self._box_wall()).total_seconds() + HOLD_MARGIN_S
        wait_s = min(max(wait_s, 0.0), self._rules.max_hold.total_seconds() + HOLD_MARGIN_S)
        _LOGGER.warning(
            "Holding the register %.0f s until the box's time passes the ФН's last document %s",
            wait_s,
            decision.target,
        )
        await asyncio.sleep(wait_s)
        obs = await self._observe(verdict)
        again = decide(obs, self._rules)
        _LOGGER.info("Clock after the hold: %s", again.reason)
        return obs, again

    async def _event(
        self, decision: ClockDecision, obs: ClockObservation, extra: dict[str, Any]
    ) -> None:
        self._last_event = decision.action
        payload: dict[str, Any] = {
            "message": decision.reason,
            "action": ACTIONS[decision.action],
            "drift_s": round(obs.drift.total_seconds(), 1),
            "register_time": obs.register_now.replace(microsecond=0).isoformat(),
            "box_time": obs.box_now.replace(microsecond=0).isoformat(),
            "box_synced": obs.box_trusted,
            "shift_open": obs.shift_open,
            "fn_last_document": obs.fn_last_document.isoformat() if obs.fn_last_document else None,
            "blocking": decision.blocking,
            **extra,
        }
        await self._journal.add_event(decision.action.value, payload, now=self._now())


def _replace(snapshot: ClockSnapshot, **changes: Any) -> ClockSnapshot:
    """A copy of `snapshot` with `changes`."""
    values = asdict(snapshot)
    values.update(changes)
    return ClockSnapshot(**values)


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat() if when else None


def _drift(obs: ClockObservation) -> str:
    return f"{obs.drift.total_seconds():+.0f} s"
