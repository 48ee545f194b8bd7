"""Pure: the app's status dict -> one typed view of the box. Missing pieces stay None.

The page never trusts the dict's shape: another component may not have filled a section yet,
or may spell a value as a bool or as a word. Every reader here tolerates that and a section
the status does not carry shows as "unknown" on the page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_TRUE_WORDS = frozenset({"ok", "yes", "true", "present", "open", "synchronised", "synchronized"})
_FALSE_WORDS = frozenset({"out", "no", "false", "absent", "closed", "missing", "empty"})


@dataclass(frozen=True, slots=True)
class StatusView:
    """What the page shows, each field None when the status does not say."""

    version: str | None = None
    box_id: str | None = None
    overall: str | None = None  # ok | degraded | down, as /health says
    journal_state: str | None = None
    register_state: str | None = None  # connected | connecting | disconnected | stopped | …
    register_error: str | None = None
    register_mismatch: str | None = None  # plain words: which register answers instead
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    mode: str | None = None
    shift_state: str | None = None  # opened | closed | expired
    shift_number: int | None = None
    shift_opened_at: dt.datetime | None = None
    shift_age_h: float | None = None
    paper_present: bool | None = None
    cover_open: bool | None = None
    fn_number: str | None = None
    fn_expiry: dt.date | None = None
    fn_days_left: int | None = None
    fn_warnings: tuple[str, ...] | None = None
    ofd_unsent: int | None = None
    ofd_oldest: dt.datetime | None = None  # naive = the register's wall time
    ofd_oldest_age_days: float | None = None
    clock_synchronised: bool | None = None
    clock_drift_s: float | None = None
    clock_source: str | None = None
    queue_depth: int | None = None
    queue_blocked: str | None = None
    queue_paused: str | None = None
    mqtt_state: str | None = None
    mqtt_last_command_at: dt.datetime | None = None
    # Marking (the marking monitor's snapshot under "marking").
    marking_enabled: bool | None = None
    marking_reason: str | None = None  # why marking is not enabled
    ism_autonomous: bool | None = None  # the ФН works in autonomous mode (FF68h)
    ism_reachable: bool | None = None  # the ОИСМ answered the last check the box made
    ism_last_answered_at: dt.datetime | None = None
    ism_unanswered_since: dt.datetime | None = None  # autonomous since
    marking_unsent: int | None = None  # notifications not yet sent to the ОИСМ
    marking_oldest: dt.datetime | None = None  # naive = the register's wall time
    marking_check_state: str | None = None  # idle | code_checked | blocked | …
    marking_problems: tuple[str, ...] | None = None  # the monitor's active conditions


def _section(status: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = status.get(name)
    return value if isinstance(value, Mapping) else {}


def _first(*values: object) -> object:
    for value in values:
        if value is not None and value != "":
            return value
    return None


def text(value: object) -> str | None:
    """A non-empty string, or None."""
    if value is None or isinstance(value, Mapping | list | tuple):
        return None
    out = str(value).strip()
    return out or None


def number(value: object) -> float | None:
    """A finite number (bools are not numbers here), or None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(str(value)) if not isinstance(value, int | float) else float(value)
    except ValueError:
        return None
    return out if out == out and abs(out) != float("inf") else None


def integer(value: object) -> int | None:
    """A whole number, or None."""
    out = number(value)
    return int(out) if out is not None else None


def flag(value: object, *, true_words: frozenset[str] = _TRUE_WORDS) -> bool | None:
    """A bool from a bool or a word ("ok", "out", "open"…), or None."""
    if isinstance(value, bool):
        return value
    word = text(value)
    if word is None:
        return None
    word = word.lower()
    if word in true_words:
        return True
    if word in _FALSE_WORDS:
        return False
    return None


def timestamp(value: object) -> dt.datetime | None:
    """A datetime from a datetime or ISO text ("Z" = UTC; naive stays naive: wall time)."""
    if isinstance(value, dt.datetime):
        out = value
    else:
        raw = text(value)
        if raw is None:
            return None
        try:
            out = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
    return out


def day(value: object) -> dt.date | None:
    """A date from a date, a datetime or ISO text, or None."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raw = text(value)
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(raw[:10])
    except ValueError:
        return None


def _warnings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(sorted(str(v) for v in value))
    return None


def _refused(register: Mapping[str, Any]) -> str | None:
    """The supervisor's `refused` identity (another register answers) in plain words."""
    who = register.get("refused")
    if isinstance(who, Mapping):
        parts = [text(who.get("model")) or "register"]
        if text(who.get("serial")):
            parts.append(f"serial {who['serial']}")
        if text(who.get("fn_number")):
            parts.append(f"ФН {who['fn_number']}")
        return ", ".join(parts)
    return "another register" if register.get("state") == "refused" else None


def read_status(status: Mapping[str, Any], now: dt.datetime) -> StatusView:
    """Read the keys listed in the package docstring; anything else is ignored."""
    register = _section(status, "register")
    health = _section(status, "health")
    # The health monitor's snapshot: {"reading": {flat fields}, "conditions": [...], ...}.
    reading = _section(health, "reading")
    shift = _section(health, "shift") or _section(register, "shift")
    shift = shift or {
        "state": reading.get("shift_state"),
        "number": reading.get("shift_number"),
        "opened_at": reading.get("shift_opened_at"),
        "age_h": reading.get("shift_age_h"),
    }
    fn = _section(health, "fn") or {
        "number": reading.get("fn_number"),
        "expiry": reading.get("fn_expiry"),
        "days_left": reading.get("fn_days_left"),
        "warnings": reading.get("fn_warnings"),
    }
    ofd = _section(health, "ofd") or {
        "unsent": reading.get("ofd_unsent"),
        "oldest": reading.get("ofd_oldest"),
        "oldest_age_days": reading.get("ofd_oldest_age_days"),
    }
    clock = _section(status, "clock")
    queue = _section(status, "queue")
    mqtt = _section(status, "mqtt")
    journal = _section(status, "journal")
    marking = _section(status, "marking")
    ism = _section(marking, "ism")
    notifications = _section(marking, "notifications")
    marking_check = _section(marking, "check")

    opened_at = timestamp(shift.get("opened_at"))
    age_h = number(shift.get("age_h"))
    if age_h is None and opened_at is not None and opened_at.tzinfo is not None:
        age_h = max(0.0, (now - opened_at).total_seconds() / 3600)
    ofd_oldest = timestamp(_first(ofd.get("oldest"), ofd.get("first_unsent_datetime")))
    ofd_age = number(ofd.get("oldest_age_days"))
    if ofd_age is None and ofd_oldest is not None and ofd_oldest.tzinfo is not None:
        ofd_age = (now - ofd_oldest).total_seconds() / 86400
    expiry = day(fn.get("expiry"))
    days_left = integer(fn.get("days_left"))
    if days_left is None and expiry is not None:
        days_left = (expiry - now.date()).days
    cover = _first(
        health.get("cover"),
        reading.get("cover_open"),
        register.get("cover"),
        register.get("cover_open"),
    )
    firmware = _first(register.get("firmware"), health.get("firmware"))
    if firmware is None and reading.get("firmware_version") is not None:
        build = reading.get("firmware_build")
        firmware = f"{reading['firmware_version']}" + (f" build {build}" if build else "")
    mismatch = _first(register.get("mismatch"), health.get("register_mismatch"), _refused(register))
    return StatusView(
        version=text(status.get("version")),
        box_id=text(status.get("box_id")),
        overall=text(status.get("status")),
        journal_state=text(journal.get("state")),
        register_state=text(register.get("state")),
        register_error=text(register.get("error")),
        register_mismatch=text(mismatch) if mismatch is not False else None,
        model=text(_first(register.get("model"), reading.get("model"))),
        serial=text(_first(register.get("serial"), reading.get("serial"))),
        firmware=text(firmware),
        mode=text(_first(register.get("mode"), health.get("mode"))),
        shift_state=text(shift.get("state")),
        shift_number=integer(shift.get("number")),
        shift_opened_at=opened_at,
        shift_age_h=age_h,
        paper_present=flag(
            _first(health.get("paper"), reading.get("paper_present"), register.get("paper"))
        ),
        cover_open=flag(cover, true_words=frozenset({"open", "true", "yes"})),
        fn_number=text(fn.get("number")),
        fn_expiry=expiry,
        fn_days_left=days_left,
        fn_warnings=_warnings(fn.get("warnings")),
        ofd_unsent=integer(_first(ofd.get("unsent"), ofd.get("unsent_count"))),
        ofd_oldest=ofd_oldest,
        ofd_oldest_age_days=ofd_age,
        clock_synchronised=flag(
            _first(clock.get("synchronised"), clock.get("synchronized"), clock.get("box_synced"))
        ),
        clock_drift_s=number(clock.get("drift_s")),
        clock_source=text(_first(clock.get("source"), clock.get("sync_source"))),
        queue_depth=integer(queue.get("depth")),
        queue_blocked=text(queue.get("blocked")),
        queue_paused=text(queue.get("paused")),
        mqtt_state=text(mqtt.get("state")),
        mqtt_last_command_at=timestamp(mqtt.get("last_command_at")),
        marking_enabled=flag(marking.get("enabled")),
        marking_reason=text(marking.get("reason")),
        ism_autonomous=flag(ism.get("autonomous")),
        ism_reachable=flag(ism.get("reachable")),
        ism_last_answered_at=timestamp(ism.get("last_answered_at")),
        ism_unanswered_since=timestamp(ism.get("unanswered_since")),
        marking_unsent=integer(notifications.get("unsent")),
        marking_oldest=timestamp(notifications.get("oldest")),
        marking_check_state=text(marking_check.get("state")),
        marking_problems=_problems(marking.get("conditions")),
    )


def _problems(value: object) -> tuple[str, ...] | None:
    """The messages of a monitor's `conditions` list; anything else is ignored."""
    if not isinstance(value, list | tuple):
        return None
    out = []
    for item in value:
        if isinstance(item, Mapping) and text(item.get("message")):
            action = text(item.get("action"))
            out.append(f"{item['message']} — {action}" if action else str(item["message"]))
    return tuple(out)
