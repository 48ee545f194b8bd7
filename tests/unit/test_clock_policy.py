"""The clock policy as a table: observation + rules -> action (and the time it would set)."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.monitors.clock_policy import (
    ClockAction,
    ClockDecision,
    ClockObservation,
    ClockRules,
    OpenShiftRule,
    decide,
)

NOW = dt.datetime(2026, 3, 10, 12, 0, 0)
ALERT = ClockRules(dt.timedelta(seconds=30), OpenShiftRule.ALERT, False)
CLOSE = ClockRules(dt.timedelta(seconds=30), OpenShiftRule.CLOSE_SHIFT, False)
BOX_FROM_REG = ClockRules(dt.timedelta(seconds=30), OpenShiftRule.ALERT, True)


def s(seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)


def obs(
    drift_s: float,
    *,
    trusted: bool = True,
    shift_open: bool = False,
    last_doc: dt.datetime | None = NOW - dt.timedelta(hours=1),
    box: dt.datetime = NOW,
) -> ClockObservation:
    return ClockObservation(trusted, box, box + s(drift_s), shift_open, last_doc)


CASES = [
    # (id, observation, rules, action, target)
    ("in sync", obs(0), ALERT, ClockAction.IN_SYNC, None),
    ("just under threshold", obs(29.9), ALERT, ClockAction.IN_SYNC, None),
    ("exactly threshold", obs(-30), ALERT, ClockAction.IN_SYNC, None),
    ("ahead, closed shift", obs(31), ALERT, ClockAction.SET_REGISTER, NOW),
    ("behind, closed shift", obs(-600), ALERT, ClockAction.SET_REGISTER, NOW),
    ("open shift, alert", obs(120, shift_open=True), ALERT, ClockAction.ALERT_OPEN_SHIFT, None),
    (
        "open shift, close policy",
        obs(-120, shift_open=True),
        CLOSE,
        ClockAction.CLOSE_SHIFT,
        None,
    ),
    ("open shift, small drift", obs(10, shift_open=True), CLOSE, ClockAction.IN_SYNC, None),
    (
        "ФН last document after the box's time",
        obs(900, last_doc=NOW + s(600)),
        ALERT,
        ClockAction.FN_AHEAD,
        None,
    ),
    (
        "ФН last document a little ahead: hold until the box passes it",
        obs(120, last_doc=NOW + s(60)),
        ALERT,
        ClockAction.HOLD_FOR_FN,
        NOW + s(60),
    ),
    (
        "open shift with the ФН ahead: the open-shift rule applies",
        obs(120, shift_open=True, last_doc=NOW + s(60)),
        CLOSE,
        ClockAction.CLOSE_SHIFT,
        None,
    ),
    (
        "ФН last document in the same minute is fine",
        obs(90, last_doc=NOW.replace(second=0)),
        ALERT,
        ClockAction.SET_REGISTER,
        NOW,
    ),
    ("fresh ФН, no documents", obs(90, last_doc=None), ALERT, ClockAction.SET_REGISTER, NOW),
    ("box unsynchronised, in sync", obs(1, trusted=False), ALERT, ClockAction.BOX_UNTRUSTED, None),
    (
        "box unsynchronised, big drift: register untouched",
        obs(3600, trusted=False),
        BOX_FROM_REG,
        ClockAction.BOX_UNTRUSTED,
        None,
    ),
    (
        "box behind the ФН, register consistent, allowed: set the box",
        obs(7200, trusted=False, last_doc=NOW + s(3600)),
        BOX_FROM_REG,
        ClockAction.SET_BOX,
        NOW + s(7200),
    ),
    (
        "same but not allowed by config",
        obs(7200, trusted=False, last_doc=NOW + s(3600)),
        ALERT,
        ClockAction.BOX_UNTRUSTED,
        None,
    ),
    (
        "register itself before its ФН's last document: no source is clearly right",
        obs(60, trusted=False, last_doc=NOW + s(3600)),
        BOX_FROM_REG,
        ClockAction.BOX_UNTRUSTED,
        None,
    ),
    (
        "box ahead of the register, unsynchronised: never move the box backwards",
        obs(-7200, trusted=False, last_doc=NOW - s(9000)),
        BOX_FROM_REG,
        ClockAction.BOX_UNTRUSTED,
        None,
    ),
    (
        "box unsynchronised, shift open: still hands off",
        obs(600, trusted=False, shift_open=True),
        CLOSE,
        ClockAction.BOX_UNTRUSTED,
        None,
    ),
]


@pytest.mark.parametrize(
    ("observation", "rules", "action", "target"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_clock_policy_table(
    observation: ClockObservation,
    rules: ClockRules,
    action: ClockAction,
    target: dt.datetime | None,
) -> None:
    decision = decide(observation, rules)
    assert decision.action is action, decision.reason
    assert decision.target == target
    assert decision.reason  # every decision says why, in words


def test_drift_past_five_minutes_is_flagged_blocking() -> None:
    assert decide(obs(301), ALERT).blocking
    assert not decide(obs(299), ALERT).blocking
    assert decide(obs(-400, shift_open=True), ALERT).blocking


def test_only_actions_change_something() -> None:
    changing = {a for a in ClockAction if decide_any(a).changes_something}
    assert changing == {ClockAction.SET_REGISTER, ClockAction.SET_BOX, ClockAction.CLOSE_SHIFT}


def decide_any(action: ClockAction) -> ClockDecision:
    """A decision of `action` taken from the table."""
    for _, observation, rules, expected, _target in CASES:
        if expected is action:
            return decide(observation, rules)
    raise AssertionError(f"no table row for {action}")


def test_event_kinds_are_stable_names() -> None:
    assert {a.value for a in ClockAction} == {
        "clock_ok",
        "clock_register_set",
        "clock_correction_held",
        "clock_drift_in_open_shift",
        "clock_shift_close_requested",
        "clock_fn_ahead_of_box",
        "clock_box_unsynchronised",
        "clock_box_set_from_register",
    }
