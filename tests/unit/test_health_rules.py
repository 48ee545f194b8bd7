"""Health rules as tables: a reading + thresholds -> conditions; changes raise and clear once."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from gateway.domain import fiscal
from gateway.monitors.health_rules import (
    HealthReading,
    HealthThresholds,
    Severity,
    changes,
    conditions,
    firmware_below,
    version_key,
)

NOW = dt.datetime(2026, 3, 10, 12, 0)
LIMITS = HealthThresholds(fn_expiry_warn_days=30, ofd_backlog_warn_days=3, min_firmware="C.3")

HEALTHY = HealthReading(
    read_at=NOW,
    model="ШТРИХ-М-01Ф",
    serial="12345678",
    firmware_version="C3",
    firmware_build=62776,
    fn_number="9999078900000001",
    fn_expiry=dt.date(2027, 1, 1),
    ofd_unsent=0,
    paper_present=True,
    cover_open=False,
    shift_state=fiscal.ShiftState.OPENED,
    shift_number=5,
    shift_opened_at=NOW - dt.timedelta(hours=3),
)


def with_(**changes: object) -> HealthReading:
    return dataclasses.replace(HEALTHY, **changes)  # type: ignore[arg-type]


CASES = [
    ("healthy", HEALTHY, []),
    ("ФН expires in 31 days", with_(fn_expiry=dt.date(2026, 4, 10)), []),
    ("ФН expires in 29 days", with_(fn_expiry=dt.date(2026, 4, 8)), ["fn_expiring"]),
    ("ФН expired", with_(fn_expiry=dt.date(2026, 3, 9)), ["fn_expired"]),
    (
        "ФН warning bits",
        with_(
            fn_warnings=frozenset({fiscal.FnWarning.OFD_TIMEOUT, fiscal.FnWarning.REPLACE_URGENTLY})
        ),
        ["fn_ofd_timeout", "fn_replace_urgently"],
    ),
    (
        "OFD backlog 2 days old",
        with_(ofd_unsent=4, ofd_oldest=NOW - dt.timedelta(days=2)),
        [],
    ),
    (
        "OFD backlog 3 days old",
        with_(ofd_unsent=4, ofd_oldest=NOW - dt.timedelta(days=3, minutes=1)),
        ["ofd_backlog_old"],
    ),
    (
        "OFD backlog 31 days old",
        with_(ofd_unsent=40, ofd_oldest=NOW - dt.timedelta(days=31)),
        ["ofd_backlog_blocking"],
    ),
    ("firmware below the minimum", with_(firmware_version="B9"), ["firmware_outdated"]),
    ("paper out", with_(paper_present=False), ["paper_out"]),
    ("cover open", with_(cover_open=True), ["cover_open"]),
    (
        "shift over 24 h",
        with_(shift_opened_at=NOW - dt.timedelta(hours=25)),
        ["shift_over_24h"],
    ),
    ("shift expired mode", with_(shift_state=fiscal.ShiftState.EXPIRED), ["shift_over_24h"]),
    (
        "closed shift has no age",
        with_(shift_state=fiscal.ShiftState.CLOSED, shift_opened_at=NOW - dt.timedelta(days=3)),
        [],
    ),
    ("nothing read yet", HealthReading(read_at=NOW), []),
]


@pytest.mark.parametrize(("reading", "kinds"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_conditions_table(reading: HealthReading, kinds: list[str]) -> None:
    found = conditions(reading, LIMITS)
    assert sorted(c.kind for c in found) == sorted(kinds)
    for cond in found:
        assert cond.message
        assert cond.action


def test_expiry_severity_grows_near_the_end() -> None:
    (soon,) = conditions(with_(fn_expiry=dt.date(2026, 3, 25)), LIMITS)
    (very_soon,) = conditions(with_(fn_expiry=dt.date(2026, 3, 12)), LIMITS)
    assert soon.severity is Severity.WARNING
    assert very_soon.severity is Severity.CRITICAL


def test_changes_raise_once_and_clear_once() -> None:
    paper_out = conditions(with_(paper_present=False), LIMITS)
    raised, cleared = changes({}, paper_out)
    assert [c.kind for c in raised] == ["paper_out"]
    assert cleared == []
    active = {c.kind: c for c in paper_out}
    assert changes(active, paper_out) == ([], [])  # the next poll: nothing new
    raised, cleared = changes(active, conditions(HEALTHY, LIMITS))
    assert raised == []
    assert [c.kind for c in cleared] == ["paper_out"]


VERSIONS = [
    ("C3", 62776, "C.3", False),
    ("C3", 62776, "c3", False),
    ("C3", 62776, "C.3 62777", True),
    ("C3", 62776, "C.3 62776", False),
    ("C3", 62776, "C.4", True),
    ("D1", 1, "C.9", False),
    ("C10", 1, "C.9", False),  # numbers compare as numbers, not text
    ("C3", None, "C.3 1", False),
]


@pytest.mark.parametrize(("version", "build", "minimum", "below"), VERSIONS)
def test_firmware_comparison(version: str, build: int | None, minimum: str, below: bool) -> None:
    assert firmware_below(version, build, minimum) is below


def test_version_key_ignores_separators() -> None:
    assert version_key("C.3") == version_key("c3") == version_key("C-3")


def test_reading_as_dict_is_json_ready() -> None:
    import json

    body = with_(fn_warnings=frozenset({fiscal.FnWarning.OFD_TIMEOUT})).as_dict()
    json.dumps(body)
    assert body["fn_days_left"] == (dt.date(2027, 1, 1) - NOW.date()).days
    assert body["shift_age_h"] == 3.0
    assert body["fn_warnings"] == ["ofd_timeout"]
