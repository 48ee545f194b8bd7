"""USB hotplug: the register's tty appearing and disappearing. The only pyudev import.

udev events are read on the asyncio loop (the monitor's netlink socket via `add_reader`, as
pyudev#450 suggests), turned into `DeviceEvent`s and matched against the configured USB
vendor/product ids, the `/dev/serial/by-id` glob or the configured port path. A matching
`remove` drops the link at once (a job in flight then goes through recovery); a matching
`add` reconnects without waiting for backoff; the supervisor checks the register's identity.

Where udev is absent (containers, CI: no /run/udev/control) the monitor polls the device
paths instead and says so in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fnmatch
import glob
import logging
import os
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyudev

from gateway.config.schema import UsbConfig
from gateway.engine.supervisor import RegisterSupervisor
from gateway.journal import Journal

_LOGGER = logging.getLogger(__name__)

UDEV_CONTROL = Path("/run/udev/control")  # exists while systemd-udevd runs
POLL_INTERVAL_S = 1.0
QUEUE_WAIT_S = 60.0  # an idle source wakes this often (nothing else happens then)
QUEUE_LIMIT = 256


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """A tty appeared or disappeared."""

    action: str  # add | remove | change | ...
    device_node: str | None
    devlinks: tuple[str, ...] = ()
    vendor_id: str | None = None
    product_id: str | None = None
    serial: str | None = None
    source: str = "udev"


class UdevDevice(Protocol):
    """What the monitor uses of a pyudev.Device."""

    @property
    def action(self) -> str | None:
        """add, remove, change…"""

    @property
    def device_node(self) -> str | None:
        """/dev/ttyACM0"""

    @property
    def properties(self) -> Mapping[str, str]:
        """udev properties (ID_VENDOR_ID, DEVLINKS…)."""


class UdevMonitor(Protocol):
    """What the monitor uses of a pyudev.Monitor: a pollable descriptor."""

    def fileno(self) -> int:
        """The netlink socket."""

    def poll(self, timeout: float | None = None) -> UdevDevice | None:
        """The next device event, or None."""


def event_from_udev(device: UdevDevice) -> DeviceEvent:
    """The one conversion every udev event goes through."""
    props = device.properties
    vendor = props.get("ID_VENDOR_ID")
    product = props.get("ID_MODEL_ID")
    return DeviceEvent(
        action=device.action or "change",
        device_node=device.device_node,
        devlinks=tuple(props.get("DEVLINKS", "").split()),
        vendor_id=vendor.lower() if vendor else None,
        product_id=product.lower() if product else None,
        serial=props.get("ID_SERIAL_SHORT"),
        source="udev",
    )


@dataclass(frozen=True, slots=True)
class DeviceMatcher:
    """Which tty is the register: USB ids, a by-id glob, or the configured port path."""

    vendor_id: str | None = None
    product_id: str | None = None
    by_id: str | None = None
    port: str | None = None

    @classmethod
    def from_config(cls, usb: UsbConfig, port: str) -> DeviceMatcher:
        """From `register.usb` and `register.port` (a device path; not tcp or emulator)."""
        return cls(usb.vendor_id, usb.product_id, usb.by_id, port if port.startswith("/") else None)

    @property
    def configured(self) -> bool:
        """True when there is anything to match on."""
        return bool(self.vendor_id or self.by_id or self.port)

    def matches(self, event: DeviceEvent) -> bool:
        """True when `event` is about the register's tty."""
        if (
            self.vendor_id
            and event.vendor_id == self.vendor_id
            and (self.product_id is None or event.product_id == self.product_id)
        ):
            return True
        names = [*event.devlinks, *([event.device_node] if event.device_node else [])]
        if self.by_id and any(fnmatch.fnmatchcase(n, self.by_id) for n in names):
            return True
        return bool(self.port and self.port in names)

    def poll_paths(self) -> list[str]:
        """Paths polling watches: the by-id glob and the port."""
        return [p for p in (self.by_id, self.port) if p]


class EventSource(Protocol):
    """Where device events come from."""

    name: str

    def events(self) -> AsyncGenerator[DeviceEvent, None]:
        """Events until cancelled."""


class UdevSource:
    """Events from a udev monitor, read on the loop when its descriptor is readable."""

    name = "udev"

    def __init__(self, monitor: UdevMonitor) -> None:
        self._monitor = monitor
        self._queue: asyncio.Queue[DeviceEvent] = asyncio.Queue(QUEUE_LIMIT)

    def _readable(self) -> None:
        """Drain every event pending on the descriptor (called by the loop)."""
        while True:
            try:
                device = self._monitor.poll(timeout=0)
            except OSError as err:
                _LOGGER.warning("Reading a udev event failed: %s", err)
                return
            if device is None:
                return
            event = event_from_udev(device)
            try:
                self._queue.put_nowait(event)
            except asyncio.QueueFull:
                _LOGGER.warning("udev events arrive faster than handled; dropped %s", event)

    async def events(self) -> AsyncGenerator[DeviceEvent, None]:
        """Events until cancelled."""
        loop = asyncio.get_running_loop()
        fd = self._monitor.fileno()
        loop.add_reader(fd, self._readable)
        try:
            while True:
                try:
                    async with asyncio.timeout(QUEUE_WAIT_S):
                        event = await self._queue.get()
                except TimeoutError:
                    continue
                yield event
        finally:
            loop.remove_reader(fd)


class PollSource:
    """Events made by looking at the device paths every `interval_s` (no udev)."""

    name = "poll"

    def __init__(self, patterns: list[str], interval_s: float = POLL_INTERVAL_S) -> None:
        self._patterns = patterns
        self._interval_s = interval_s

    def _present(self) -> dict[str, str]:
        """Existing paths -> the device they resolve to (a replug changes the target)."""
        found: dict[str, str] = {}
        for pattern in self._patterns:
            for path in glob.glob(pattern) if glob.has_magic(pattern) else [pattern]:
                if os.path.exists(path):
                    found[path] = os.path.realpath(path)
        return found

    async def events(self) -> AsyncGenerator[DeviceEvent, None]:
        """Events until cancelled; the first look reports what is already there as `add`."""
        seen: dict[str, str] = {}
        while True:
            now = await asyncio.to_thread(self._present)
            for path, target in seen.items():
                if now.get(path) != target:
                    yield DeviceEvent("remove", target, (path,), source=self.name)
            for path, target in now.items():
                if seen.get(path) != target:
                    yield DeviceEvent("add", target, (path,), source=self.name)
            seen = now
            await asyncio.sleep(self._interval_s)


def open_udev_monitor() -> UdevMonitor | None:
    """A started pyudev monitor for tty events, or None where udev is absent."""
    if not UDEV_CONTROL.exists():
        return None
    try:
        context = pyudev.Context()
        monitor = pyudev.Monitor.from_netlink(context)
        monitor.filter_by("tty")
        monitor.start()
    except OSError as err:
        _LOGGER.warning("udev monitor unavailable: %s", err)
        return None
    result: UdevMonitor = monitor
    return result


@dataclass(frozen=True, slots=True)
class HotplugSnapshot:
    """For /health and the status page."""

    source: str | None
    present: bool | None
    last_event: str | None
    last_event_at: dt.datetime | None
    events_seen: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "source": self.source,
            "present": self.present,
            "last_event": self.last_event,
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
            "events_seen": self.events_seen,
        }


class HotplugMonitor:
    """Feeds matching add/remove events to the supervisor."""

    def __init__(
        self,
        supervisor: RegisterSupervisor,
        matcher: DeviceMatcher,
        *,
        journal: Journal | None = None,
        source: EventSource | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._supervisor = supervisor
        self._matcher = matcher
        self._journal = journal
        self._source = source
        self._poll_interval_s = poll_interval_s
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._node: str | None = None  # the register's device node while present
        self._snapshot = HotplugSnapshot(None, None, None, None, 0)

    def snapshot(self) -> HotplugSnapshot:
        """The latest state."""
        return self._snapshot

    def _choose_source(self) -> EventSource | None:
        if self._source is not None:
            return self._source
        monitor = open_udev_monitor()
        if monitor is not None:
            _LOGGER.info("Hotplug: listening to udev tty events")
            return UdevSource(monitor)
        paths = self._matcher.poll_paths()
        if not paths:
            _LOGGER.info(
                "Hotplug: udev is not available and no device path is configured "
                "(register.usb.by_id or a /dev port); relying on link errors"
            )
            return None
        _LOGGER.warning(
            "Hotplug: udev is not available here (container or CI?); polling %s every %.1f s",
            ", ".join(paths),
            self._poll_interval_s,
        )
        return PollSource(paths, self._poll_interval_s)

    async def run(self) -> None:
        """Handle events until cancelled."""
        if not self._matcher.configured:
            _LOGGER.info("Hotplug: nothing to match (register.usb and port not set); off")
            return
        source = self._choose_source()
        if source is None:
            return
        self._snapshot = HotplugSnapshot(source.name, None, None, None, 0)
        async with contextlib.aclosing(source.events()) as events:
            async for event in events:
                await self.handle(event)

    async def handle(self, event: DeviceEvent) -> bool:
        """Act on one event; True when it was about the register."""
        ours = self._matcher.matches(event) or (
            event.action == "remove"
            and event.device_node is not None
            and event.device_node == self._node
        )
        if not ours or event.action not in ("add", "remove"):
            return False
        snap = self._snapshot
        self._snapshot = HotplugSnapshot(
            snap.source or event.source,
            event.action == "add",
            event.action,
            self._now(),
            snap.events_seen + 1,
        )
        node = event.device_node or "?"
        if event.action == "remove":
            self._node = None
            self._supervisor.link_down_now(f"{node} removed")
            await self._event(
                "register_unplugged",
                f"the register's USB device {node} was removed",
                "check the register's USB cable and power; printing resumes when it is back",
                event,
            )
        else:
            self._node = event.device_node
            _LOGGER.info("Hotplug: %s added; reconnecting", node)
            self._supervisor.device_added()
            await self._event(
                "register_plugged",
                f"the register's USB device {node} is back",
                "nothing to do",
                event,
            )
        return True

    async def _event(self, kind: str, message: str, action: str, event: DeviceEvent) -> None:
        if self._journal is None:
            return
        await self._journal.add_event(
            kind,
            {
                "message": message,
                "action": action,
                "device": event.device_node,
                "links": list(event.devlinks),
                "source": event.source,
            },
            now=self._now(),
        )
