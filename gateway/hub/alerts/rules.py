"""Pure: which conditions hold now, from the fleet state and the overdue write-backs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.hub.alerts.model import BoxState, Condition, Rule
from gateway.hub.alerts.settings import AlertSettings


def _dig(body: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _took(ms: int) -> str:
    seconds = ms / 1000
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _silent_since(box: BoxState, now_ms: int, cfg: AlertSettings) -> int | None:
    """When an online box's telemetry stopped, if it stopped `silent_after_s` ago or more.

    The box sends telemetry every `mqtt.telemetry_interval_s` while its daemon runs; its
    MQTT client lives in the same process, so "online" alone does not prove the daemon works.
    """
    if box.online is not True or box.since_ms is None:
        return None
    last = box.since_ms if box.telemetry_ms is None else max(box.telemetry_ms, box.since_ms)
    return last if now_ms - last >= cfg.silent_after_s * 1000 else None


def box_conditions(box: BoxState, now_ms: int, cfg: AlertSettings) -> list[Condition]:
    """Every rule that holds for one box now."""
    out: list[Condition] = []
    b = box.box_id
    if box.online is False and box.since_ms is not None:
        took = _took(now_ms - box.since_ms)
        if now_ms - box.since_ms >= cfg.offline_after_s * 1000:
            reason = _dig(box.status, "reason") or "offline"
            out.append(
                Condition(
                    Rule.BOX_OFFLINE,
                    b,
                    "",
                    f"box {b} offline for {took} ({reason})",
                    {"since_ms": box.since_ms, "reason": reason},
                )
            )
    silent = _silent_since(box, now_ms, cfg)
    if silent is not None:
        out.append(
            Condition(
                Rule.BOX_SILENT,
                b,
                "",
                f"box {b} is online but has sent no telemetry for {_took(now_ms - silent)}: "
                "its service may hang; open its status page or restart it",
                {"last_telemetry_ms": box.telemetry_ms, "online_since_ms": box.since_ms},
            )
        )
    t = box.telemetry
    reading = _dig(t, "health", "reading")
    days = _number(_dig(reading, "fn_days_left"))
    if days is not None and days <= cfg.fn_days:
        fn = str(_dig(reading, "fn_number") or "")
        out.append(
            Condition(
                Rule.FN_EXPIRING,
                b,
                fn,
                f"box {b}: the ФН {fn} expires in {days:.0f} days ({_dig(reading, 'fn_expiry')})",
                {"fn_number": fn, "days_left": days, "expiry": _dig(reading, "fn_expiry")},
            )
        )
    ofd_age = _number(_dig(reading, "ofd_oldest_age_days"))
    if ofd_age is not None and ofd_age >= cfg.ofd_days:
        unsent = _dig(reading, "ofd_unsent")
        out.append(
            Condition(
                Rule.OFD_BACKLOG,
                b,
                "",
                f"box {b}: {unsent} document(s) not sent to the OFD, oldest {ofd_age:.1f} days",
                {"unsent": unsent, "oldest_age_days": ofd_age},
            )
        )
    drift = _number(_dig(t, "clock", "drift_s"))
    if drift is not None and abs(drift) >= cfg.drift_s:
        out.append(
            Condition(
                Rule.CLOCK_DRIFT,
                b,
                "",
                f"box {b}: the register's clock is {drift:+.0f} s off",
                {"drift_s": drift},
            )
        )
    blocked = _dig(t, "queue", "blocked")
    if isinstance(blocked, str) and blocked:
        out.append(
            Condition(
                Rule.JOB_BLOCKED,
                b,
                blocked,
                f"box {b}: job {blocked} is blocked; the register's queue waits for a person",
                {"job_uuid": blocked},
            )
        )
    for problem in _dig(t, "marking", "conditions") or ():
        kind = _dig(problem, "kind")
        if not isinstance(kind, str) or not kind:
            continue
        out.append(
            Condition(
                Rule.MARKING,
                b,
                kind,
                f"box {b}: {_dig(problem, 'message')} — {_dig(problem, 'action')}",
                {"condition": kind, "severity": _dig(problem, "severity")},
            )
        )
    mismatch = box.shift_mismatch
    if (
        mismatch is not None
        and box.shift_mismatch_ms is not None
        and now_ms - box.shift_mismatch_ms < cfg.mismatch_hold_s * 1000
    ):
        shift = str(mismatch.get("shift", ""))
        out.append(
            Condition(
                Rule.SHIFT_MISMATCH,
                b,
                shift,
                f"box {b}: shift {shift} does not match the register: {mismatch.get('text', '')}",
                {"shift": mismatch.get("shift"), "differences": mismatch.get("differences")},
            )
        )
    return out


def writeback_conditions(overdue: Iterable[dict[str, Any]]) -> list[Condition]:
    """One condition per write-back still undelivered past its alert limit."""
    return [
        Condition(
            Rule.WRITEBACK_FAILING,
            str(w["box_id"]),
            str(w["id"]),
            f"write-back of order {w['job_uuid']} to {w['connector']} failing "
            f"after {w['attempts']} attempt(s): {w['last_error']}",
            {
                "job_uuid": w["job_uuid"],
                "connector": w["connector"],
                "attempts": w["attempts"],
                "last_error": w["last_error"],
            },
        )
        for w in overdue
    ]


def conditions(
    boxes: Iterable[BoxState],
    overdue: Iterable[dict[str, Any]],
    now_ms: int,
    cfg: AlertSettings,
) -> dict[str, Condition]:
    """Every condition that holds now, by its key."""
    found = [c for box in boxes for c in box_conditions(box, now_ms, cfg)]
    found += writeback_conditions(overdue)
    return {c.key: c for c in found}
