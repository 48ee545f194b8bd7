"""Pure: the events a cloud РРО driver raises, each tagged with the register's fiscal number."""

from __future__ import annotations

import logging
from collections.abc import Callable

from gateway.registers.cloud.errors import CredentialsRejected

_LOGGER = logging.getLogger(__name__)

EventSink = Callable[[str, dict[str, object]], None]


class CloudEvents:
    """Hands a driver's events to the box (the journal's outbox) when a sink is given."""

    def __init__(self, sink: EventSink | None) -> None:
        self._sink = sink
        self.register = ""  # the fiscal number, once the driver has read it

    def emit(self, event: str, data: dict[str, object]) -> None:
        """One event, with the register's fiscal number."""
        if self._sink is not None:
            self._sink(event, {"register": self.register, **data})

    def credentials_rejected(self, err: CredentialsRejected) -> None:
        """The backend refused the box's keys: logged and reported naming which key."""
        _LOGGER.error("%s", err.message)
        self.emit("register_credentials_rejected", {"which": err.which, "message": err.message})
