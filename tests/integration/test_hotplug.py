"""Hotplug against the emulator on a real pty: unplug/replug mid-receipt, a swapped register.

Two event paths: the polling fallback watching the real device link, and the udev path fed
by a fake monitor — a real descriptor (a pipe) the loop watches, handing out device objects
shaped like pyudev's — so events go through the same reader and conversion as real ones.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.config.schema import UsbConfig
from gateway.engine import supervisor as supervisor_mod
from gateway.engine import worker as worker_mod
from gateway.engine.supervisor import LinkState
from gateway.journal import JobState
from gateway.monitors.hotplug import (
    DeviceEvent,
    DeviceMatcher,
    EventSource,
    HotplugMonitor,
    PollSource,
    UdevSource,
    event_from_udev,
)
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.emulator.state import fresh_state, save_state
from gateway.registers.shtrih import driver as driver_mod
from tests.support import box as support_box
from tests.support import tape as tapes
from tests.support.box import ShtrihBox

WAIT_S = 30.0
VENDOR, PRODUCT = "1fc9", "0083"


def sell(name: str, lines: int = 1) -> dict[str, Any]:
    items = [
        {
            "type": "position",
            "name": f"{name} #{i}",
            "price": 10,
            "quantity": 1,
            "amount": 10,
            "tax": {"type": "vat20"},
        }
        for i in range(lines)
    ]
    return {"type": "sell", "items": items, "payments": [{"type": "cash", "sum": 10 * lines}]}


def read_tape(state: Path) -> list[dict[str, Any]]:
    return tapes.read_tape(tapes.tape_of(state))


@dataclass(kw_only=True)
class Box(ShtrihBox):
    hotplug: HotplugMonitor = field(init=False)


@pytest.fixture(autouse=True)
def timers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_mod, "PRINT_TIMEOUT_S", 1.5)
    monkeypatch.setattr(driver_mod, "QUERY_TIMEOUT_S", 1.5)
    monkeypatch.setattr(worker_mod, "PAUSE_POLL_INTERVAL_S", 0.1)
    monkeypatch.setattr(worker_mod, "CONNECT_WAIT_S", 0.2)
    # Without a hotplug event the supervisor would not retry within the test's time: only
    # the add event can bring the register back.
    monkeypatch.setattr(supervisor_mod, "BACKOFF_MIN_S", 1000.0)
    monkeypatch.setattr(supervisor_mod, "BACKOFF_MAX_S", 1000.0)


@contextlib.asynccontextmanager
async def running_box(
    tmp_path: Path, source: EventSource, matcher: DeviceMatcher
) -> AsyncIterator[Box]:
    def start_hotplug(box: Box) -> dict[str, Coroutine[Any, Any, None]]:
        box.hotplug = HotplugMonitor(box.supervisor, matcher, journal=box.journal, source=source)
        return {"hotplug": box.hotplug.run()}

    async with support_box.running_box(tmp_path, box_type=Box, also=start_hotplug) as box:
        yield box


# --- a udev monitor that is not the kernel's ---------------------------------------------


@dataclass
class FakeUdevDevice:
    """Shaped like pyudev.Device: action, device_node, properties."""

    action: str | None
    device_node: str | None
    properties: Mapping[str, str] = field(default_factory=dict)


class FakeUdevMonitor:
    """Shaped like pyudev.Monitor: a readable descriptor and poll(); events are pushed in."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        self._pending: collections.deque[FakeUdevDevice] = collections.deque()

    def fileno(self) -> int:
        return self._read

    def poll(self, timeout: float | None = None) -> FakeUdevDevice | None:
        try:
            os.read(self._read, 1)
        except BlockingIOError:
            return None
        return self._pending.popleft()

    def emit(self, action: str, node: str, **props: str) -> None:
        self._pending.append(FakeUdevDevice(action, node, props))
        os.write(self._write, b"!")

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


def usb_props(node: str) -> dict[str, str]:
    return {
        "ID_VENDOR_ID": VENDOR,
        "ID_MODEL_ID": PRODUCT,
        "ID_SERIAL_SHORT": "0012345678",
        "DEVLINKS": f"/dev/serial/by-id/usb-SHTRIH_Fiscal-if00 {node}-alias",
        "SUBSYSTEM": "tty",
    }


# --- tests ---------------------------------------------------------------------------------


async def test_udev_unplug_replug_mid_receipt_prints_each_receipt_once(tmp_path: Path) -> None:
    udev = FakeUdevMonitor()
    matcher = DeviceMatcher(vendor_id=VENDOR, product_id=PRODUCT)
    try:
        async with running_box(tmp_path, UdevSource(udev), matcher) as box:
            await box.submit("r0", sell("Первый"))
            await box.wait_state("r0", JobState.DONE)
            box.emulator.faults.slow_byte_s = 0.002  # a receipt now takes a while on the wire
            for n in range(1, 4):
                await box.submit(f"r{n}", sell(f"Чек {n}", lines=6))
            await box.receipt_open_on_register()
            old_node = box.emulator.device
            assert old_node is not None
            replug = asyncio.create_task(box.emulator.unplug(0.3))
            udev.emit("remove", old_node, **usb_props(old_node))
            await box.wait_link(LinkState.DISCONNECTED, LinkState.CONNECTING)
            new_node = await replug
            assert new_node is not None
            box.emulator.faults.slow_byte_s = 0.0
            udev.emit("add", new_node, **usb_props(new_node))
            for n in range(1, 4):
                await box.wait_state(f"r{n}", JobState.DONE)
            tape = read_tape(tmp_path / "emu.state")
            printed = collections.Counter(i["name"] for d in tape for i in d["items"])
            for n in range(1, 4):
                for line in range(6):
                    assert printed[f"Чек {n} #{line}"] == 1  # 0 lost, 0 doubled
            kinds = await box.kinds()
            assert "register_unplugged" in kinds
            assert "register_plugged" in kinds
            assert "receipt_cancelled" in kinds  # the receipt cut off mid-way went via recovery
            assert box.hotplug.snapshot().source == "udev"
            assert box.hotplug.snapshot().events_seen == 2
    finally:
        udev.close()


async def test_polling_fallback_sees_the_real_link_go_and_come_back(tmp_path: Path) -> None:
    link = tmp_path / "emu.tty"
    source = PollSource([str(link)], interval_s=0.05)
    async with running_box(tmp_path, source, DeviceMatcher(port=str(link))) as box:
        await box.submit("r0", sell("Первый"))
        await box.wait_state("r0", JobState.DONE)
        box.emulator.faults.slow_byte_s = 0.002
        await box.submit("r1", sell("Сквозной", lines=8))
        await box.receipt_open_on_register()
        await box.emulator.unplug(0.5)
        box.emulator.faults.slow_byte_s = 0.0
        await box.wait_state("r1", JobState.DONE)
        tape = read_tape(tmp_path / "emu.state")
        printed = collections.Counter(i["name"] for d in tape for i in d["items"])
        assert all(printed[f"Сквозной #{i}"] == 1 for i in range(8))
        kinds = await box.kinds()
        assert "receipt_cancelled" in kinds
        assert kinds.count("register_unplugged") == 1
        assert kinds.count("register_plugged") == 2  # the first look, and the replug
        assert box.hotplug.snapshot().source == "poll"


async def test_a_swapped_register_is_refused_until_a_technician_accepts_it(
    tmp_path: Path,
) -> None:
    link = tmp_path / "emu.tty"
    source = PollSource([str(link)], interval_s=0.05)
    async with running_box(tmp_path, source, DeviceMatcher(port=str(link))) as box:
        assert box.supervisor.identity is not None
        first_fn = box.supervisor.identity.fn_number
        # Someone unplugs our register and plugs in another one, with its own ФН.
        await box.emulator.close()
        other_state = tmp_path / "other.state"
        await asyncio.to_thread(
            save_state,
            other_state,
            fresh_state(dt.datetime.now(), serial=87654321, fn_number="9999078900000999"),
        )
        box.emulator = EmulatorServer(other_state)
        await box.emulator.start_pty(link=link)
        await box.wait_link(LinkState.REFUSED)
        assert box.supervisor.refused is not None
        assert box.supervisor.refused.fn_number == "9999078900000999"
        assert "register_mismatch" in await box.kinds()
        await box.submit("r1", sell("Чужой"))
        await asyncio.sleep(0.5)
        assert (await box.journal.get("r1")).state is JobState.QUEUED  # nothing printed
        assert read_tape(other_state) == []
        # Still refused after another look (no second alarm for the same register).
        box.supervisor.reconnect_now()
        await asyncio.sleep(0.3)
        assert box.supervisor.state is LinkState.REFUSED
        assert (await box.kinds()).count("register_mismatch") == 1
        # The technician registered the new ФН and accepts it on the status page.
        box.supervisor.accept_register()
        await box.wait_state("r1", JobState.DONE)
        assert [d["type"] for d in read_tape(other_state)] == ["openShift", "sell"]
        assert box.supervisor.identity.fn_number == "9999078900000999" != first_fn
        assert "register_accepted" in await box.kinds()
        assert not any(
            i["name"].startswith("Чужой")
            for d in read_tape(tmp_path / "emu.state")
            for i in d["items"]
        )


def test_matcher_table() -> None:
    by_id = DeviceMatcher.from_config(
        UsbConfig(by_id="/dev/serial/by-id/usb-SHTRIH*"), "/dev/ttyACM0"
    )
    ids = DeviceMatcher.from_config(UsbConfig(vendor_id=VENDOR, product_id=PRODUCT), "emulator")
    event = event_from_udev(FakeUdevDevice("add", "/dev/ttyACM3", usb_props("/dev/ttyACM3")))
    other = DeviceEvent("add", "/dev/ttyUSB0", ("/dev/serial/by-id/usb-FTDI-if00",), "0403", "6001")
    port_only = DeviceEvent("add", "/dev/ttyACM0")
    assert by_id.matches(event)
    assert ids.matches(event)
    assert not by_id.matches(other)
    assert not ids.matches(other)
    assert by_id.matches(port_only)
    assert not ids.matches(port_only)
    assert not ids.configured or ids.port is None  # "emulator" is not a device path
    assert not DeviceMatcher().configured


def test_real_pyudev_devices_convert() -> None:
    pyudev = pytest.importorskip("pyudev")
    context = pyudev.Context()
    devices = list(context.list_devices(subsystem="tty"))
    if not devices:
        pytest.skip("no tty devices in /sys here")
    event = event_from_udev(devices[0])  # a real pyudev.Device: no action outside a monitor
    assert event.action == "change"
    assert event.device_node is None or event.device_node.startswith("/dev/")
