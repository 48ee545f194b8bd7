"""Pure: the legal limits of a software РРО's offline mode, and when to warn before them.

ДПС allows a ПРРО to work offline at most 36 hours in a row and 168 hours in a calendar
month, and only with fiscal numbers reserved in advance. The ledger records the offline
periods the driver saw; `budget(now)` says how much of each limit is used and left.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace

RUN_LIMIT = dt.timedelta(hours=36)
MONTH_LIMIT = dt.timedelta(hours=168)
WARN_BEFORE = dt.timedelta(hours=6)  # a shop needs hours to restore internet or stop selling


class Level(enum.Enum):
    """How close the register is to a legal offline limit."""

    OK = "ok"
    WARN = "warn"  # less than WARN_BEFORE left of either limit
    EXCEEDED = "exceeded"  # a limit is used up: selling offline is no longer legal


@dataclass(frozen=True, slots=True)
class Budget:
    """Offline time used and left, now."""

    run: dt.timedelta  # the current offline run (zero when online)
    month: dt.timedelta  # offline time in the calendar month of `now`
    run_left: dt.timedelta
    month_left: dt.timedelta
    level: Level


@dataclass(frozen=True, slots=True)
class Ledger:
    """Offline periods, oldest first; the last one is open while offline."""

    periods: tuple[tuple[dt.datetime, dt.datetime | None], ...] = ()

    @property
    def offline_since(self) -> dt.datetime | None:
        """Start of the current offline run, or None when online."""
        if self.periods and self.periods[-1][1] is None:
            return self.periods[-1][0]
        return None

    def went_offline(self, at: dt.datetime) -> Ledger:
        """Record the start of an offline run (a no-op while already offline)."""
        if self.offline_since is not None:
            return self
        return replace(self, periods=(*self.periods, (at, None)))

    def went_online(self, at: dt.datetime) -> Ledger:
        """Close the current offline run (a no-op while online)."""
        since = self.offline_since
        if since is None:
            return self
        return replace(self, periods=(*self.periods[:-1], (since, max(at, since))))

    def forget_before(self, when: dt.datetime) -> Ledger:
        """Drop periods that ended before `when` (older months no longer count)."""
        kept = tuple(p for p in self.periods if p[1] is None or p[1] >= when)
        return replace(self, periods=kept)

    def budget(self, now: dt.datetime) -> Budget:
        """Used and remaining offline time at `now`."""
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        month = dt.timedelta()
        for start, end in self.periods:
            lo, hi = max(start, month_start), min(end or now, now)
            if hi > lo:
                month += hi - lo
        since = self.offline_since
        run = now - since if since is not None and now > since else dt.timedelta()
        run_left = max(dt.timedelta(), RUN_LIMIT - run)
        month_left = max(dt.timedelta(), MONTH_LIMIT - month)
        if run >= RUN_LIMIT or month >= MONTH_LIMIT:
            level = Level.EXCEEDED
        elif since is not None and (run_left <= WARN_BEFORE or month_left <= WARN_BEFORE):
            level = Level.WARN
        else:
            level = Level.OK
        return Budget(run, month, run_left, month_left, level)
