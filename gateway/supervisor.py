"""Keeps one register connected: connect, watch, reconnect with jittered backoff.

Drivers report (a lost link fails their calls); this one supervisor reconnects — the
pattern of aioesphomeapi's ReconnectLogic and zigpy's watchdog loop.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Callable

from gateway import fiscal
from gateway.errors import GatewayError

_LOGGER = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
WATCH_INTERVAL_S = 1.0
CONNECT_TIMEOUT_S = 15.0


class LinkState(enum.Enum):
    """Where the supervisor is."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


class RegisterSupervisor:
    """Owns the register's connection; others wait for `connected_event`."""

    def __init__(self, register: fiscal.Register, *, name: str = "register") -> None:
        self.register = register
        self.name = name
        self.state = LinkState.DISCONNECTED
        self.last_error: str | None = None
        self.device: fiscal.DeviceInfo | None = None
        self.connected_event = asyncio.Event()
        self._kick = asyncio.Event()
        self._listeners: list[Callable[[LinkState], None]] = []
        self._failures = 0

    def add_listener(self, callback: Callable[[LinkState], None]) -> Callable[[], None]:
        """Call `callback(state)` on every change; returns an unsubscribe function."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def _set_state(self, state: LinkState) -> None:
        if state is self.state:
            return
        self.state = state
        if state is LinkState.CONNECTED:
            self.connected_event.set()
        else:
            self.connected_event.clear()
        for callback in list(self._listeners):
            callback(state)

    def reconnect_now(self) -> None:
        """Drop the current link (if any) and connect again without waiting for backoff."""
        self._kick.set()

    async def wait_connected(self, timeout_s: float) -> bool:
        """True once connected, False after `timeout_s`."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.connected_event.wait()
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Connect, watch, reconnect; until cancelled."""
        try:
            while True:
                await self._connect_once()
                if self.state is LinkState.CONNECTED:
                    await self._watch()
                else:
                    await self._backoff()
        finally:
            self._set_state(LinkState.STOPPED)
            await asyncio.shield(self.register.close())

    async def _connect_once(self) -> None:
        self._set_state(LinkState.CONNECTING)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await self.register.connect()
                self.device = await self.register.device_info()
        except (GatewayError, OSError, TimeoutError) as err:
            self._failures += 1
            self.last_error = str(err) or type(err).__name__
            # First failure loud, the rest quiet while the cable stays out.
            log = _LOGGER.warning if self._failures == 1 else _LOGGER.debug
            log("%s: cannot connect (%s); retrying", self.name, self.last_error)
            await self.register.close()
            self._set_state(LinkState.DISCONNECTED)
            return
        self._failures = 0
        self.last_error = None
        _LOGGER.info(
            "%s connected: %s serial %s firmware %s build %d",
            self.name,
            self.device.model,
            self.device.serial,
            self.device.firmware_version,
            self.device.firmware_build,
        )
        self._set_state(LinkState.CONNECTED)

    async def _watch(self) -> None:
        while self.register.connected and not self._kick.is_set():
            try:
                async with asyncio.timeout(WATCH_INTERVAL_S):
                    await self._kick.wait()
            except TimeoutError:
                pass
        if self._kick.is_set():
            self._kick.clear()
            _LOGGER.info("%s: reconnect requested", self.name)
        else:
            _LOGGER.warning("%s: link lost", self.name)
        await self.register.close()
        self._set_state(LinkState.DISCONNECTED)

    async def _backoff(self) -> None:
        delay = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** min(self._failures, 10))
        delay *= random.uniform(
            0.5, 1.0
        )  # jitter: boxes that lost power together don't retry together
        try:
            async with asyncio.timeout(delay):
                await self._kick.wait()
            self._kick.clear()
        except TimeoutError:
            pass
