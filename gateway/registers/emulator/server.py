"""Serving the emulated register on a pty or a TCP port; unplugging it; its control socket.

In-process use (the gateway's embedded default, tests):

    server = EmulatorServer(Path("var/emulator.state"))
    device = await server.start_pty(link=Path("var/emulator.tty"))   # the slave path
    await server.apply_fault("paper_out", True)                      # or server.faults.garbled = 1
    await server.unplug(2.0)                                         # new pty behind the same link
    await server.close()

`server.state` is the register's current state; `server.emulator` the register itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from gateway.registers.emulator.channels import Pty, TcpChannel, point_link, remove_link
from gateway.registers.emulator.control import ControlServer
from gateway.registers.emulator.faults import FaultName, WireFaults, as_seconds, parse_name
from gateway.registers.emulator.register import Emulator, HostClock
from gateway.registers.emulator.state import EmulatorState
from gateway.registers.emulator.wire import DeviceLink

_LOGGER = logging.getLogger(__name__)

DEFAULT_BAUDRATE = 115200
BITS_PER_BYTE = 10  # 8N1: start + 8 data + stop
OPEN_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 10.0
# How long a power cut waits for the host to read the bytes already sent.
POWER_CUT_DRAIN_S = 0.5


class EmulatorServer:
    """One emulated register served on a pty and/or TCP, with its state in `state_path`."""

    def __init__(
        self,
        state_path: Path,
        *,
        clock_offset_s: float | None = None,
        ofd_interval_s: float | None = None,
        baudrate: int = DEFAULT_BAUDRATE,
        pace: bool = False,
        host_clock: HostClock = dt.datetime.now,
        tax_systems: int | None = None,
        firmware: str | None = None,
        marking_enabled: bool | None = None,
    ) -> None:
        self.state_path = state_path
        self.baudrate = baudrate
        self.pace = pace
        self._options = (clock_offset_s, ofd_interval_s, host_clock)
        self._tax_systems = tax_systems
        self._marking_options = (firmware, marking_enabled)
        self._emulator: Emulator | None = None
        self._link: DeviceLink | None = None
        self._pty: Pty | None = None
        self._pty_task: asyncio.Task[None] | None = None
        self._link_path: Path | None = None
        self._tcp: asyncio.Server | None = None
        self._tcp_tasks: set[asyncio.Task[None]] = set()
        self._control: ControlServer | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.power_lost = asyncio.Event()

    def __repr__(self) -> str:
        device = self._pty.device if self._pty is not None else None
        return f"EmulatorServer(state={str(self.state_path)!r}, pty={device!r})"

    # --- the register ----------------------------------------------------------------

    @property
    def emulator(self) -> Emulator:
        """The register (after a start_* call)."""
        if self._emulator is None:
            raise RuntimeError("the emulator is not started")
        return self._emulator

    @property
    def state(self) -> EmulatorState:
        """The register's current state."""
        return self.emulator.state

    @property
    def faults(self) -> WireFaults:
        """One-shot wire faults; set their fields directly."""
        return self.emulator.faults

    @property
    def device(self) -> str | None:
        """The current pty slave path, None while unplugged or not serving a pty."""
        return self._pty.device if self._pty is not None else None

    async def apply_fault(self, name: str, value: object) -> None:
        """Set a fault by name; `unplug` runs in the background for `value` seconds."""
        if parse_name(name) is FaultName.UNPLUG:
            seconds = as_seconds(FaultName.UNPLUG, value)
            self._spawn(self.unplug(seconds), "emulator-unplug")
            return
        await self.emulator.apply_fault(name, value)

    async def _ensure_open(self) -> DeviceLink:
        """Load the register (once) and make its link."""
        if self._link is None:
            clock_offset_s, ofd_interval_s, host_clock = self._options
            async with asyncio.timeout(OPEN_TIMEOUT_S):
                self._emulator = await asyncio.to_thread(
                    Emulator.open,
                    self.state_path,
                    clock_offset_s=clock_offset_s,
                    ofd_interval_s=ofd_interval_s,
                    host_clock=host_clock,
                    tax_systems=self._tax_systems,
                    firmware=self._marking_options[0],
                    marking_enabled=self._marking_options[1],
                )
            bytes_per_s = self.baudrate / BITS_PER_BYTE if self.pace else None
            self._link = DeviceLink(self._emulator, bytes_per_s=bytes_per_s)
            self._spawn(self._watch_power(self._link), "emulator-power")
        return self._link

    async def _watch_power(self, link: DeviceLink) -> None:
        """Stop serving when an injected power cut fires."""
        await link.power_cut.wait()
        _LOGGER.warning("Emulated register lost power; its state file holds the open receipt")
        if self._pty is not None:
            # The bytes sent before the power went (the frame's ACK) are on the wire already.
            await self._pty.drain(POWER_CUT_DRAIN_S)
        await self._stop_serving()
        self.power_lost.set()

    # --- pty ------------------------------------------------------------------------

    async def start_pty(self, link: Path | None = None) -> str:
        """Serve on a new pty; `link` (if given) becomes a symlink to it. Returns the slave path."""
        await self._ensure_open()
        self._link_path = link
        return self._plug_in()

    def _plug_in(self) -> str:
        """Create a pty, point the link at it and serve it."""
        assert self._link is not None
        pty = Pty(self.baudrate)
        self._pty = pty
        if self._link_path is not None:
            point_link(self._link_path, pty.device)
        self._pty_task = asyncio.create_task(self._link.serve(pty), name="emulator-pty")
        _LOGGER.info(
            "Emulated register on %s%s",
            pty.device,
            f" ({self._link_path})" if self._link_path else "",
        )
        return pty.device

    async def _unplug_now(self) -> None:
        """Stop serving the pty, close it, remove the link."""
        task, self._pty_task = self._pty_task, None
        if task is not None:
            task.cancel()
            # asyncio.wait (not `await task`) so that a cancellation of *this* call propagates.
            await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_S)
        pty, self._pty = self._pty, None
        if pty is not None:
            pty.close()
        if self._link_path is not None:
            remove_link(self._link_path)

    async def unplug(self, seconds: float) -> str | None:
        """Pull the USB cable for `seconds`, then plug it back as a new pty behind the same link.

        Returns the new device path (None if the server was not serving a pty).
        """
        if self._pty is None:
            return None
        _LOGGER.warning("Unplugging the emulated register for %.1f s", seconds)
        await self._unplug_now()
        await asyncio.sleep(seconds)
        if self.power_lost.is_set():
            return None
        return self._plug_in()

    # --- tcp ------------------------------------------------------------------------

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Serve on a TCP port (0: any free one). Returns the bound (host, port)."""
        link = await self._ensure_open()

        async def client_connected(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            """Serve one TCP client."""
            channel = TcpChannel(reader, writer)
            task = asyncio.current_task()
            assert task is not None
            self._tcp_tasks.add(task)
            try:
                await link.serve(channel)
            finally:
                self._tcp_tasks.discard(task)
                await channel.close()

        self._tcp = await asyncio.start_server(client_connected, host, port)
        bound = self._tcp.sockets[0].getsockname()
        _LOGGER.info("Emulated register on tcp://%s:%d", bound[0], bound[1])
        return str(bound[0]), int(bound[1])

    # --- control socket ---------------------------------------------------------------

    async def start_control(self, path: Path | None = None) -> Path:
        """Listen for JSON-line fault commands on a Unix socket (default `<state>.control`)."""
        await self._ensure_open()
        path = path or self.state_path.with_name(self.state_path.name + ".control")
        self._control = ControlServer(path, self.apply_fault)
        await self._control.start()
        return path

    # --- lifetime ---------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, object], name: str) -> None:
        """Run a background task owned by the server."""
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _stop_serving(self) -> None:
        """Stop the pty and TCP service."""
        await self._unplug_now()
        if self._tcp is not None:
            self._tcp.close()
            for task in list(self._tcp_tasks):
                task.cancel()
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._tcp.wait_closed()
            self._tcp = None

    async def close(self) -> None:
        """Stop serving, close the control socket, let pending file writes finish."""
        current = asyncio.current_task()
        background = {task for task in self._background if task is not current}
        for task in background:
            task.cancel()
        if background:
            await asyncio.wait(background, timeout=CLOSE_TIMEOUT_S)
        if self._control is not None:
            await self._control.close()
            self._control = None
        await self._stop_serving()
        if self._emulator is not None:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await asyncio.to_thread(self._emulator.close)
