"""Events raised from plain callbacks (a cloud register gone offline, a task restarted) on
their way into the journal's outbox.

Callbacks cannot await; they put the event on a bounded queue, and one named task in the
daemon's TaskGroup writes them in order. Whatever is still queued at shutdown is written
before the journal closes, so no write outlives it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from gateway.journal import Journal

_LOGGER = logging.getLogger(__name__)

QUEUE_SIZE = 256  # events are rare; a full queue means the journal stopped taking them
WRITE_TIMEOUT_S = 30.0
FLUSH_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    data: dict[str, Any]
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


class EventQueue:
    """Events from synchronous callbacks -> the journal, written by `drain`."""

    def __init__(self, journal: Journal, *, maxsize: int = QUEUE_SIZE) -> None:
        self._journal = journal
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def put(self, kind: str, data: dict[str, object]) -> None:
        """Queue an event (callable from any callback on the loop's thread)."""
        try:
            self._queue.put_nowait(Event(kind, dict(data)))
        except asyncio.QueueFull:
            self.dropped += 1
            _LOGGER.warning("Event %s dropped: %d events wait for the journal", kind, QUEUE_SIZE)

    async def _write(self, event: Event) -> None:
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await self._journal.add_event(event.kind, event.data, now=event.at)

    async def drain(self) -> None:
        """Write events as they come; runs until cancelled."""
        while True:
            event = await self._queue.get()
            await self._write(event)

    async def flush(self) -> None:
        """Write what is left (at shutdown, before the journal closes)."""
        try:
            async with asyncio.timeout(FLUSH_TIMEOUT_S):
                while not self._queue.empty():
                    await self._write(self._queue.get_nowait())
        except TimeoutError:
            _LOGGER.warning("%d events not written at shutdown", self._queue.qsize())
