"""Keeps the daemon's background tasks alive: a crashed task is started again after a pause.

A side task (the MQTT link, a monitor, a sampler) that raises is logged with its traceback,
counted, reported through `on_restart`, and started again after a growing pause; the other
tasks, and printing, go on. Cancellation passes straight through. An error `is_fatal` names
(the journal gone: nothing can be committed any more) propagates, so the TaskGroup, and with
it the process, ends and systemd starts it afresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from gateway.domain.errors import GatewayError

_LOGGER = logging.getLogger(__name__)

TaskFactory = Callable[[], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Pauses between restarts: `first_s`, doubling up to `max_s`; a task that then runs
    `reset_after_s` without crashing starts again from `first_s`."""

    first_s: float = 1.0
    max_s: float = 60.0
    reset_after_s: float = 300.0

    def delay(self, attempt: int) -> float:
        """The pause before restart number `attempt` (0-based) of one crash streak."""
        return min(self.max_s, self.first_s * 2.0 ** min(attempt, 32))


@dataclass(frozen=True, slots=True)
class Restart:
    """One restart, as logged and reported."""

    task: str
    restarts: int  # this task's restarts since the daemon started, this one included
    error: str
    delay_s: float

    def as_event(self) -> dict[str, object]:
        return {
            "task": self.task,
            "restarts": self.restarts,
            "error": self.error,
            "delay_s": self.delay_s,
        }


def _describe(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class Restarter:
    """Runs named tasks in a caller's TaskGroup and restarts those that crash."""

    def __init__(
        self,
        *,
        is_fatal: Callable[[Exception], bool] = lambda _err: False,
        on_restart: Callable[[Restart], None] = lambda _restart: None,
        backoff: Backoff = Backoff(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._is_fatal = is_fatal
        self._on_restart = on_restart
        self._backoff = backoff
        self._clock = clock
        self._restarts: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def restarts(self) -> dict[str, int]:
        """Restarts per task name (only tasks that crashed at least once)."""
        return {name: n for name, n in self._restarts.items() if n}

    def spawn(self, tg: asyncio.TaskGroup, name: str, factory: TaskFactory) -> asyncio.Task[None]:
        """Start `factory()` as task `name` in `tg`, restarted whenever it crashes."""
        task = tg.create_task(self._keep(name, factory), name=name)
        self._tasks.append(task)
        return task

    def cancel_all(self) -> None:
        """Cancel every task started here (the group then waits for them)."""
        for task in self._tasks:
            task.cancel()

    async def _keep(self, name: str, factory: TaskFactory) -> None:
        attempt = 0
        while True:
            started = self._clock()
            try:
                await factory()
            except Exception as err:
                if self._is_fatal(err):
                    _LOGGER.critical("Task %s failed for good: %s", name, _describe(err))
                    raise
                if self._clock() - started >= self._backoff.reset_after_s:
                    attempt = 0
                delay = self._backoff.delay(attempt)
                attempt += 1
                count = self._restarts.get(name, 0) + 1
                self._restarts[name] = count
                restart = Restart(name, count, _describe(err), delay)
                _LOGGER.error(
                    "Task %s crashed (%s); restart %d in %.0f s",
                    name,
                    restart.error,
                    count,
                    delay,
                    # A traceback for a bug; an error raised on purpose says enough.
                    exc_info=None if isinstance(err, GatewayError) else err,
                )
                self._on_restart(restart)
                await asyncio.sleep(delay)
            else:
                return  # a task that ends by itself has nothing left to do
