"""The status page's live actions over the running supervisor and clock monitor.

The page knows only the `BoxControls` protocol; this is the box's implementation. Printing
actions (test print, shifts) do not come here: they are journal jobs like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.engine.supervisor import LinkState, RegisterSupervisor
from gateway.monitors.clock import ClockMonitor
from gateway.web.controls import Outcome

RELINK_TIMEOUT_S = 30.0


class SupervisorControls:
    """Reconnect, accept a swapped register, sync the clock now."""

    def __init__(self, supervisor: RegisterSupervisor, clock: ClockMonitor | None) -> None:
        self._sup = supervisor
        self._clock = clock

    async def _relink(self, kick: Callable[[], None]) -> bool:
        """Kick the supervisor, see the link drop, and wait for it to come back."""
        dropped = asyncio.Event()
        off = self._sup.add_listener(
            lambda state: dropped.set() if state is not LinkState.CONNECTED else None
        )
        try:
            kick()
            async with asyncio.timeout(RELINK_TIMEOUT_S):
                await dropped.wait()
        except TimeoutError:
            pass  # it may have reconnected between our looks; the wait below decides
        finally:
            off()
        return await self._sup.wait_connected(RELINK_TIMEOUT_S)

    async def reconnect_register(self) -> Outcome:
        if not await self._relink(self._sup.reconnect_now):
            return Outcome(False, f"the register did not come back: {self._sup.last_error}")
        dev = self._sup.device
        return Outcome(
            True, f"reconnected to {dev.model} serial {dev.serial}" if dev else "reconnected"
        )

    async def accept_register(self) -> Outcome:
        if not await self._relink(self._sup.accept_register):
            return Outcome(False, f"the register did not come back: {self._sup.last_error}")
        ident = self._sup.identity
        what = ident.describe() if ident is not None else "the register"
        return Outcome(True, f"{what} is now this box's register")

    async def sync_clock(self) -> Outcome:
        if self._clock is None:
            return Outcome(False, "the clock monitor is not running")
        decision = await self._clock.check_once()
        if decision is None:
            return Outcome(
                False, "the register could not be read (busy or not connected); try again"
            )
        snap = self._clock.snapshot()
        return Outcome(
            not snap.blocking, f"{snap.reason or decision.reason}; drift now {snap.drift_s} s"
        )
