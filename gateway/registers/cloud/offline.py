"""Pure: the legal limits of a software РРО's offline mode, and when to warn before them.

ДПС allows a ПРРО to work offline at most 36 hours in a row and 168 hours in a calendar
month, and only with fiscal numbers reserved in advance. The ledger records the offline
periods the driver saw; `budget(now)` says how much of each limit is used and left.
`OfflineWatch` is what both cloud drivers keep on top of it: the offline backlog, the
warnings it means for the worker, and the events a person sees.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from gateway.domain import fiscal
from gateway.registers.cloud.events import CloudEvents

_LOGGER = logging.getLogger(__name__)

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


class OfflineWatch:
    """One cloud register's offline state as its driver observes it: the ledger, the
    offline backlog, the warnings it means for the worker and the events a person sees."""

    def __init__(self, events: CloudEvents, *, label: str, now: Callable[[], dt.datetime]) -> None:
        self._events = events
        self._label = label  # "Checkbox register", "Вчасно.Каса device"
        self._now = now
        self.ledger = Ledger()
        self.level = Level.OK
        self._backlog = 0  # documents made offline, not yet delivered

    @property
    def offline_since(self) -> dt.datetime | None:
        """When the register went offline (UTC), or None while online."""
        return self.ledger.offline_since

    @property
    def unsent(self) -> int:
        """Documents made offline and not delivered yet (0 while online)."""
        return self._backlog if self.offline_since is not None else 0

    def ofd_status(self, tz: dt.tzinfo | None) -> fiscal.OfdStatus:
        """The offline backlog in the words of a ФН's OFD queue; `tz` is the register's own
        (None: the machine's)."""
        since = self.offline_since
        return fiscal.OfdStatus(
            unsent_count=self.unsent,
            first_unsent_number=None,
            first_unsent_datetime=(
                since.astimezone(tz).replace(tzinfo=None) if since is not None else None
            ),
        )

    def budget(self) -> Budget:
        """The legal offline limits, used and left, now."""
        return self.ledger.budget(self._now())

    def warnings(self) -> set[fiscal.FnWarning]:
        """What being offline means in the ФН's words: the OFD (tax service) is not reached;
        near a legal limit the resource is short; past it the register must stop."""
        found: set[fiscal.FnWarning] = set()
        if self.offline_since is not None:
            found.add(fiscal.FnWarning.OFD_TIMEOUT)
        level = self.budget().level
        if level is Level.WARN:
            found.add(fiscal.FnWarning.RESOURCE_EXHAUSTED)
        elif level is Level.EXCEEDED:
            found.add(fiscal.FnWarning.REPLACE_URGENTLY)
        return found

    def made_offline(self) -> None:
        """The backend fiscalised a document offline."""
        self._backlog += 1
        self.observe(offline=True)

    def observe(self, *, offline: bool) -> None:
        """The backend says it is offline (or not): record it, report changes and limits."""
        now = self._now()
        since = self.ledger.offline_since
        register = self._events.register
        if offline and since is None:
            self.ledger = self.ledger.went_offline(now)
            _LOGGER.warning("%s %s is offline", self._label, register)
            self._events.emit("register_offline", {"since": now.isoformat()})
        elif not offline and since is not None:
            self.ledger = self.ledger.went_online(now)
            backlog, self._backlog = self._backlog, 0
            seconds = int((now - since).total_seconds())
            _LOGGER.warning(
                "%s %s is online again after %.1f h; %d offline documents sent",
                self._label,
                register,
                seconds / 3600,
                backlog,
            )
            self._events.emit("register_online", {"offline_seconds": seconds, "backlog": backlog})
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        self.ledger = self.ledger.forget_before(month_start)
        budget = self.ledger.budget(now)
        if budget.level is self.level:
            return
        self.level = budget.level
        if budget.level is Level.OK:
            return
        _LOGGER.warning(
            "%s %s offline limits: %s (run %.1f h, month %.1f h)",
            self._label,
            register,
            budget.level.value,
            budget.run.total_seconds() / 3600,
            budget.month.total_seconds() / 3600,
        )
        self._events.emit(
            f"offline_limit_{budget.level.value}",
            {
                "run_left_s": int(budget.run_left.total_seconds()),
                "month_left_s": int(budget.month_left.total_seconds()),
            },
        )
