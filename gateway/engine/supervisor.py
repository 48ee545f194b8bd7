"""Keeps one register connected: connect, watch, reconnect with jittered backoff.

Drivers report (a lost link fails their calls); this one supervisor reconnects — the
pattern of aioesphomeapi's ReconnectLogic and zigpy's watchdog loop. Hotplug tells it at
once when the cable goes (`link_down_now`) and comes back (`device_added`), so it neither
waits for a failed call to notice nor sits out a long backoff after the replug.

Heartbeat: a register can hang with its port open, and then nothing fails until the next
job. While idle (the worker's register lock free) the supervisor polls its status; after
`failures` misses in a row the link counts as lost: it is closed and reconnected.

Identity: with a journal, the first register seen is remembered (serial and ФН number). A
register that later answers with another serial or ФН is refused — the link is closed, the
state is REFUSED, an alarm goes out — until a technician calls `accept_register()`: printing
on the wrong register (or a new ФН nobody registered) must be a person's decision. So is
a ФН whose last document is behind one the journal recorded for it (`journal_check`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
import logging
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from gateway.domain import fiscal
from gateway.domain.errors import GatewayError, RegisterMismatch, RegisterRefused
from gateway.engine.journal_check import JournalGap, check_journal, check_not_behind
from gateway.journal import Journal
from gateway.runtime.aio import wait_set

_LOGGER = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
WATCH_INTERVAL_S = 1.0
CONNECT_TIMEOUT_S = 15.0
META_IDENTITY = "register_identity"
# One heartbeat status poll, the driver's own ENQ tries included: a register this slow when
# idle is as good as hung.
HEARTBEAT_TIMEOUT_S = 10.0


class LinkState(enum.Enum):
    """Where the supervisor is."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    REFUSED = "refused"  # another register answers; waiting for a technician
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class RegisterIdentity:
    """What tells one register (and its ФН) from another."""

    serial: str
    fn_number: str
    model: str = ""

    def same_as(self, other: RegisterIdentity) -> bool:
        """Same serial and same ФН."""
        return self.serial == other.serial and self.fn_number == other.fn_number

    def describe(self) -> str:
        """For messages."""
        return f"{self.model or 'register'} serial {self.serial}, ФН {self.fn_number}"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The idle status poll: every `interval_s`, each within `timeout_s`; `failures` misses
    in a row are a lost link."""

    interval_s: float = 15.0
    failures: int = 3
    timeout_s: float = HEARTBEAT_TIMEOUT_S


class RegisterSupervisor:
    """Owns the register's connection; others wait for `connected_event`."""

    def __init__(
        self,
        register: fiscal.Register,
        *,
        name: str = "register",
        journal: Journal | None = None,
        now: Callable[[], dt.datetime] | None = None,
        heartbeat: Heartbeat | None = None,
        register_lock: asyncio.Lock | None = None,
    ) -> None:
        self.register = register
        self.name = name
        self.state = LinkState.DISCONNECTED
        self.last_error: str | None = None
        self.device: fiscal.DeviceInfo | None = None
        self.identity: RegisterIdentity | None = None  # the accepted register
        self.refused: RegisterIdentity | None = None  # the one waiting for a technician
        self.connected_event = asyncio.Event()
        self._journal = journal
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._kick = asyncio.Event()
        self._listeners: list[Callable[[LinkState], None]] = []
        self._failures = 0
        self._device_absent = False
        self._accept_next = False
        self._identity_loaded = False
        self._heartbeat = heartbeat
        self._register_lock = register_lock
        self.heartbeats = 0  # polls that reached the register
        self.journal_gap: JournalGap | None = None  # documents the journal does not know
        self._journal_checked = False

    def share_register_lock(self, lock: asyncio.Lock) -> None:
        """The worker's register lock: a heartbeat never talks across a job."""
        self._register_lock = lock

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

    # --- commands from hotplug and the status page ----------------------------------------

    def reconnect_now(self) -> None:
        """Drop the current link (if any) and connect again without waiting for backoff."""
        self._kick.set()

    def link_down_now(self, reason: str = "device removed") -> None:
        """The device is gone (udev remove): drop the link now and wait for `device_added`."""
        _LOGGER.warning("%s: %s; link down", self.name, reason)
        self._device_absent = True
        self.last_error = reason
        self.connected_event.clear()  # no new job starts on a link that is going away
        self._kick.set()

    def device_added(self) -> None:
        """The device is back (udev add): connect now, skipping any backoff."""
        was_absent, self._device_absent = self._device_absent, False
        self._failures = 0
        # An add while connected (e.g. the first look of polling) needs no reconnect.
        if was_absent or self.state in (LinkState.DISCONNECTED, LinkState.REFUSED):
            self._kick.set()

    def accept_register(self) -> None:
        """A technician accepts the register now plugged in: remember it and go on."""
        _LOGGER.warning("%s: the register on the port is accepted by a technician", self.name)
        self._accept_next = True
        self._kick.set()

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state for /health and the status page."""
        return {
            "state": self.state.value,
            "error": self.last_error,
            "device_present": not self._device_absent,
            "identity": asdict(self.identity) if self.identity else None,
            "refused": asdict(self.refused) if self.refused else None,
        }

    async def wait_connected(self, timeout_s: float) -> bool:
        """True once connected, False after `timeout_s`."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.connected_event.wait()
        except TimeoutError:
            return False
        return True

    # --- loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, watch, reconnect; until cancelled."""
        try:
            while True:
                if self._device_absent:
                    await self._wait_kick(BACKOFF_MAX_S)
                    # Without an add event after the longest backoff, try anyway: an event
                    # may have been missed.
                    self._device_absent = False
                    continue
                await self._connect_once()
                if self.state is LinkState.CONNECTED:
                    await self._watch()
                elif self.state is LinkState.REFUSED:
                    # Retried now and then: the right register may come back without an event.
                    await self._wait_kick(BACKOFF_MAX_S)
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
                device = await self.register.device_info()
                fn = await self.register.fn_status()
                seen = RegisterIdentity(device.serial, fn.number, device.model)
                accepting = self._accept_next
                await self._check_identity(seen)
                await self._check_not_behind(seen, fn, accept=accepting)
        except RegisterMismatch as err:
            self.last_error = str(err)
            await self.register.close()
            self._set_state(LinkState.REFUSED)
            return
        except (GatewayError, OSError, TimeoutError) as err:
            self._failures += 1
            self.last_error = str(err) or type(err).__name__
            # First failure loud, the rest quiet while the cable stays out.
            log = _LOGGER.warning if self._failures == 1 else _LOGGER.debug
            log("%s: cannot connect (%s); retrying", self.name, self.last_error)
            await self.register.close()
            self._set_state(LinkState.DISCONNECTED)
            return
        self.device = device
        self._failures = 0
        self.last_error = None
        await self._check_journal_once(fn)
        _LOGGER.info(
            "%s connected: %s serial %s firmware %s build %d, ФН %s",
            self.name,
            device.model,
            device.serial,
            device.firmware_version,
            device.firmware_build,
            fn.number,
        )
        self._set_state(LinkState.CONNECTED)

    async def _check_identity(self, seen: RegisterIdentity) -> None:
        """Remember the first register; refuse another one until accepted."""
        if self._journal is None:
            return
        if not self._identity_loaded:
            stored = await self._journal.meta_get(META_IDENTITY)
            if stored:
                self.identity = RegisterIdentity(**json.loads(stored))
            self._identity_loaded = True
        known = self.identity
        if known is not None and known.same_as(seen):
            self.refused = None
            return
        if known is not None and not self._accept_next:
            if self.refused is None or not self.refused.same_as(seen):
                self.refused = seen
                what = "ФН" if seen.serial == known.serial else "register"
                message = (
                    f"a different {what} is plugged in: {seen.describe()}; this box prints on "
                    f"{known.describe()}. Nothing is printed until a technician accepts it"
                )
                _LOGGER.error("%s: %s", self.name, message)
                await self._journal.add_event(
                    "register_mismatch",
                    {
                        "message": message,
                        "action": "plug the right register back in, or accept this one on "
                        "the status page if it replaced the old one (new ФН registered)",
                        "expected": asdict(known),
                        "found": asdict(seen),
                    },
                    now=self._now(),
                )
            raise RegisterMismatch(f"refused {seen.describe()}; expected {known.describe()}")
        accepted = self._accept_next
        self._accept_next = False
        self.identity = seen
        self.refused = None
        await self._journal.meta_set(META_IDENTITY, json.dumps(asdict(seen)))
        kind = "register_accepted" if accepted else "register_identified"
        message = (
            f"{seen.describe()} accepted by a technician"
            if accepted
            else f"first register seen: {seen.describe()}"
        )
        _LOGGER.warning("%s: %s", self.name, message)
        await self._journal.add_event(
            kind,
            {"message": message, "action": "nothing to do", "register": asdict(seen)},
            now=self._now(),
        )

    async def _check_not_behind(
        self, seen: RegisterIdentity, fn: fiscal.FnStatus, *, accept: bool
    ) -> None:
        """Refuse a ФН behind what the journal recorded for it (`journal_check`): the same
        serial and ФН number, yet not the register the box printed on."""
        if self._journal is None or isinstance(self.register, fiscal.KeyedRegister):
            return
        self._accept_next = False
        gap = await check_not_behind(self._journal, fn, self._now(), accept=accept)
        if gap is None:
            return
        self.refused = seen
        raise RegisterMismatch(
            f"refused {seen.describe()}: its last document {gap.register_last} is behind "
            f"document {gap.journal_last} the journal recorded on that ФН"
        )

    async def _check_journal_once(self, fn: fiscal.FnStatus) -> None:
        """Before the first job of this run: does the journal know the register's last
        document? (`journal_check`; a cloud РРО numbers no documents to compare.)"""
        if (
            self._journal is None
            or self._journal_checked
            or isinstance(self.register, fiscal.KeyedRegister)
        ):
            return
        try:
            self.journal_gap = await check_journal(self._journal, fn, self._now())
        except GatewayError as err:
            _LOGGER.warning(
                "%s: could not compare the journal with the register: %s", self.name, err
            )
            return
        self._journal_checked = True

    async def _watch(self) -> None:
        unresponsive: str | None = None
        async with asyncio.TaskGroup() as tg:
            beat = (
                tg.create_task(
                    self._beat_until_dead(self._heartbeat), name=f"{self.name}-heartbeat"
                )
                if self._heartbeat is not None
                else None
            )
            while self.register.connected and not self._kick.is_set():
                await wait_set(self._kick, WATCH_INTERVAL_S)
            if beat is not None and beat.done():
                unresponsive = beat.result()
            elif beat is not None:
                beat.cancel()
        if self._kick.is_set():
            self._kick.clear()
            if self._device_absent:
                _LOGGER.info("%s: device removed; closing the link", self.name)
            elif unresponsive is not None:
                await self._unresponsive(unresponsive)
            else:
                _LOGGER.info("%s: reconnect requested", self.name)
        else:
            _LOGGER.warning("%s: link lost", self.name)
        self._set_state(LinkState.DISCONNECTED)
        await self.register.close()

    # --- heartbeat -------------------------------------------------------------------------

    async def _beat_until_dead(self, heartbeat: Heartbeat) -> str:
        """Poll while connected; after `failures` misses in a row, kick the watch and say why."""
        misses = 0
        while True:
            await asyncio.sleep(heartbeat.interval_s)
            try:
                if not await self._beat(heartbeat):
                    continue  # skipped: neither an answer nor a miss
            except (GatewayError, OSError, TimeoutError) as err:
                misses += 1
                error = (
                    f"no answer within {heartbeat.timeout_s:g} s"
                    if isinstance(err, TimeoutError)
                    else str(err) or type(err).__name__
                )
                _LOGGER.warning(
                    "%s: no answer to the heartbeat (%d of %d): %s",
                    self.name,
                    misses,
                    heartbeat.failures,
                    error,
                )
                if misses >= heartbeat.failures:
                    self.last_error = f"no answer to {misses} heartbeats in a row ({error})"
                    self._kick.set()
                    return self.last_error
                continue
            if misses:
                _LOGGER.info("%s answers the heartbeat again", self.name)
            misses = 0

    async def _beat(self, heartbeat: Heartbeat) -> bool:
        """One status poll while the worker is not using the register; False when it was
        skipped: a busy register is left alone (the job talking to it finds out itself)."""
        lock = self._register_lock
        if lock is not None:
            try:
                # asyncio.Lock is fair: waiting here gets the register between two jobs.
                async with asyncio.timeout(heartbeat.interval_s):
                    await lock.acquire()
            except TimeoutError:
                _LOGGER.debug("%s: heartbeat skipped, the register is busy", self.name)
                return False
        try:
            async with asyncio.timeout(heartbeat.timeout_s):
                await self.register.status()
        except RegisterRefused:
            pass  # it answered, if only to refuse: alive
        finally:
            if lock is not None:
                lock.release()
        self.heartbeats += 1
        return True

    async def _unresponsive(self, reason: str) -> None:
        message = f"the register stopped answering with its port open: {reason}; reconnecting"
        _LOGGER.warning("%s: %s", self.name, message)
        if self._journal is None:
            return
        await self._journal.add_event(
            "register_unresponsive",
            {
                "message": message,
                "action": "nothing to do if it comes back; otherwise check that the register "
                "is switched on and not frozen (switch it off and on), and its cable",
                "reason": reason,
            },
            now=self._now(),
        )

    async def _wait_kick(self, timeout_s: float) -> None:
        await wait_set(self._kick, timeout_s)
        self._kick.clear()

    async def _backoff(self) -> None:
        delay = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** min(self._failures, 10))
        # Jitter: boxes that lost power together don't retry together.
        delay *= random.uniform(0.5, 1.0)
        await self._wait_kick(delay)
