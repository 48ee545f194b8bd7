"""Pure clock policy: what to do about the register's clock, the box's clock, or neither.

No I/O. The monitor (`clock.py`) measures; this decides. The rules (docs/clock.md):

1. The box's clock is the truth only when it is trusted (NTP-synchronised, or
   `clock.trust: always`). An untrusted box never touches the register.
2. Within `drift_threshold_s` nothing happens.
3. The register's clock is set only with the shift closed (the register refuses otherwise),
   and never to a time before the ФН's last document (the ФН would refuse every document
   until real time caught up: ФН error 07). When that document is only a little ahead
   (`max_hold`, 5 minutes) the correction waits until the box's time passes it; further
   ahead, a person decides.
4. With a shift open and a large drift: raise an alert, or — with
   `correct_in_open_shift: close_shift` — ask for the shift to be closed at the next idle
   moment; the correction follows once it is closed.
5. An untrusted box sets its own clock from the register only when that is clearly the
   better source: allowed by config, the box reads earlier than the ФН's last document (so
   the box is provably behind), the register reads at or after it (consistent with its ФН)
   and the two differ by more than the threshold. The box's clock is never moved backwards.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

# Past this the ФН and the register's timers disagree enough to block the register (ФН 17h).
FN_TIMER_LIMIT = dt.timedelta(minutes=5)


class ClockAction(enum.Enum):
    """What the policy decided; the value is the event kind it becomes."""

    IN_SYNC = "clock_ok"
    SET_REGISTER = "clock_register_set"
    HOLD_FOR_FN = "clock_correction_held"
    ALERT_OPEN_SHIFT = "clock_drift_in_open_shift"
    CLOSE_SHIFT = "clock_shift_close_requested"
    FN_AHEAD = "clock_fn_ahead_of_box"
    BOX_UNTRUSTED = "clock_box_unsynchronised"
    SET_BOX = "clock_box_set_from_register"


class OpenShiftRule(enum.Enum):
    """What to do with a large drift while a shift is open."""

    ALERT = "alert"
    CLOSE_SHIFT = "close_shift"


@dataclass(frozen=True, slots=True)
class ClockRules:
    """The configured thresholds and switches."""

    drift_threshold: dt.timedelta = dt.timedelta(seconds=30)
    open_shift: OpenShiftRule = OpenShiftRule.ALERT
    set_box_from_register: bool = False
    # A register running ahead dates its last document ahead too (the Z report included): a
    # correction that close is held until the box's time passes it, instead of given up.
    max_hold: dt.timedelta = FN_TIMER_LIMIT


@dataclass(frozen=True, slots=True)
class ClockObservation:
    """One measurement. All times are naive wall time in the register's zone."""

    box_trusted: bool
    box_now: dt.datetime
    register_now: dt.datetime
    shift_open: bool
    fn_last_document: dt.datetime | None  # minute resolution, as the ФН stores it

    @property
    def drift(self) -> dt.timedelta:
        """Register minus box: positive when the register is ahead."""
        return self.register_now - self.box_now


@dataclass(frozen=True, slots=True)
class ClockDecision:
    """The policy's answer: an action, the time to set (if any), and why, in plain words."""

    action: ClockAction
    reason: str
    target: dt.datetime | None = None  # SET_REGISTER / SET_BOX: the time to set; HOLD: until
    blocking: bool = False  # the drift is past the ФН's 5-minute limit

    @property
    def changes_something(self) -> bool:
        """True when the decision sets a clock or asks for a shift close."""
        return self.action in (
            ClockAction.SET_REGISTER,
            ClockAction.SET_BOX,
            ClockAction.CLOSE_SHIFT,
        )


def decide(obs: ClockObservation, rules: ClockRules) -> ClockDecision:
    """Apply the rules of this module's docstring to one observation."""
    drift = obs.drift
    big = abs(drift) > rules.drift_threshold
    blocking = abs(drift) > FN_TIMER_LIMIT
    drift_txt = _fmt(drift)
    if not obs.box_trusted:
        return _untrusted(obs, rules, big, drift_txt)
    if not big:
        return ClockDecision(ClockAction.IN_SYNC, f"drift {drift_txt} is within the threshold")
    if obs.shift_open:
        if rules.open_shift is OpenShiftRule.CLOSE_SHIFT:
            return ClockDecision(
                ClockAction.CLOSE_SHIFT,
                f"drift {drift_txt} with a shift open: closing the shift when idle, then "
                "correcting",
                blocking=blocking,
            )
        return ClockDecision(
            ClockAction.ALERT_OPEN_SHIFT,
            f"drift {drift_txt} with a shift open: the clock will be corrected after the shift "
            "closes",
            blocking=blocking,
        )
    last = obs.fn_last_document
    if last is not None and obs.box_now < last:
        # Setting the register to the box's time now would date it before the ФН's last document.
        if last - obs.box_now <= rules.max_hold:
            return ClockDecision(
                ClockAction.HOLD_FOR_FN,
                f"drift {drift_txt}; the ФН's last document is dated {last:%Y-%m-%d %H:%M}, "
                "a little after the box's time: correcting once the box's time passes it",
                target=last,
                blocking=blocking,
            )
        return ClockDecision(
            ClockAction.FN_AHEAD,
            f"the ФН's last document is dated {last:%Y-%m-%d %H:%M}, after the box's "
            f"synchronised time {obs.box_now:%Y-%m-%d %H:%M:%S}; the register's clock "
            f"(drift {drift_txt}) is left alone",
            blocking=blocking,
        )
    return ClockDecision(
        ClockAction.SET_REGISTER,
        f"drift {drift_txt} with the shift closed: setting the register's clock",
        target=obs.box_now,
        blocking=blocking,
    )


def _untrusted(
    obs: ClockObservation, rules: ClockRules, big: bool, drift_txt: str
) -> ClockDecision:
    """Rule 1 and rule 5: the box is not synchronised."""
    last = obs.fn_last_document
    register_better = (
        big
        and last is not None
        and obs.box_now < last <= obs.register_now
        and obs.register_now > obs.box_now  # never backwards (implied; stated for the reader)
    )
    if register_better and rules.set_box_from_register:
        return ClockDecision(
            ClockAction.SET_BOX,
            f"the box is not synchronised and reads before the ФН's last document "
            f"({last:%Y-%m-%d %H:%M}); the register's clock agrees with its ФН: setting the "
            f"box's clock from the register (drift {drift_txt})",
            target=obs.register_now,
        )
    why = (
        "the register's clock is the better source but clock.set_box_clock_from_register is off"
        if register_better
        else "the register's clock is left alone"
    )
    return ClockDecision(
        ClockAction.BOX_UNTRUSTED,
        f"the box's clock is not synchronised (drift {drift_txt}); {why}",
        blocking=abs(obs.drift) > FN_TIMER_LIMIT,
    )


def _fmt(delta: dt.timedelta) -> str:
    """A signed drift in seconds, e.g. '+42 s' (register ahead) or '-3 s'."""
    seconds = delta.total_seconds()
    return f"{seconds:+.0f} s"
