"""Pure: the fleet page's rows from the fleet state and the hub's box table."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from gateway.hub.alerts.model import BoxState
from gateway.hub.model import BoxInfo


def when(ms: int | None) -> str | None:
    """A time for the page: UTC, to the second."""
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _dig(body: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


@dataclass(frozen=True, slots=True)
class BoxRow:
    box_id: str
    state: str  # online | offline | silent | unknown
    since: str | None
    version: str | None
    register: str | None
    firmware: str | None
    fn_number: str | None
    fn_expiry: str | None
    fn_days_left: int | None
    ofd_unsent: int | None
    ofd_days: float | None
    drift_s: float | None
    queue_depth: int | None
    blocked: str | None
    mismatch: str | None
    telemetry_at: str | None


def box_row(
    state: BoxState | None,
    info: BoxInfo | None,
    now_ms: int,
    stale_ms: int,
    box_id: str | None = None,
) -> BoxRow:
    """One box; `silent` when it says online but its telemetry stopped for `stale_ms`."""
    if box_id is None:
        box_id = state.box_id if state is not None else info.box_id if info is not None else "?"
    status = state.status if state is not None else None
    if status is None and info is not None:
        status = info.status
    online = state.online if state is not None and state.online is not None else None
    if online is None and info is not None and info.status is not None:
        online = info.online
    t = state.telemetry if state is not None else None
    t_ms = state.telemetry_ms if state is not None else None
    if online is None:
        word = "unknown"
    elif not online:
        word = "offline"
    elif t_ms is not None and now_ms - t_ms > stale_ms:
        word = "silent"
    else:
        word = "online"
    since_ms = state.since_ms if state is not None else None
    if since_ms is None and info is not None:
        since_ms = info.seen_ms
    reading = _dig(t, "health", "reading")
    mismatch = state.shift_mismatch if state is not None else None
    depth, days = _dig(t, "queue", "depth"), _dig(reading, "fn_days_left")
    unsent, ofd_days = _dig(reading, "ofd_unsent"), _dig(reading, "ofd_oldest_age_days")
    drift = _dig(t, "clock", "drift_s")
    return BoxRow(
        box_id=box_id,
        state=word,
        since=when(since_ms),
        version=_dig(status, "version") or _dig(t, "version"),
        register=_dig(t, "register", "state") or _dig(status, "device", "register"),
        firmware=_dig(status, "device", "firmware"),
        fn_number=_dig(reading, "fn_number"),
        fn_expiry=_dig(reading, "fn_expiry"),
        fn_days_left=days if isinstance(days, int) else None,
        ofd_unsent=unsent if isinstance(unsent, int) else None,
        ofd_days=ofd_days if isinstance(ofd_days, int | float) else None,
        drift_s=drift if isinstance(drift, int | float) else None,
        queue_depth=depth if isinstance(depth, int) else None,
        blocked=_dig(t, "queue", "blocked"),
        mismatch=(
            f"#{mismatch.get('shift')}: {mismatch.get('text', '')}"
            if mismatch is not None
            else None
        ),
        telemetry_at=when(t_ms),
    )


def fleet_rows(
    states: list[BoxState],
    infos: list[BoxInfo],
    routed: list[str],
    now_ms: int,
    stale_ms: int,
) -> list[BoxRow]:
    """Every box the hub knows of; one routed but never heard from shows as unknown."""
    by_state = {s.box_id: s for s in states}
    by_info = {i.box_id: i for i in infos}
    ids = sorted(set(by_state) | set(by_info) | set(routed))
    return [box_row(by_state.get(b), by_info.get(b), now_ms, stale_ms, b) for b in ids]
