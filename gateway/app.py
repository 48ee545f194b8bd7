"""Builds the components, owns the one TaskGroup, start and stop order, READY / STOPPING.

Start order: journal -> register (embedded emulator first when configured) -> worker ->
ingress -> READY. Nothing waits for NTP or the broker: a shop may be offline for days.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from gateway import __version__, fiscal
from gateway.config import Config
from gateway.errors import GatewayError
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.shtrih.driver import ShtrihRegister
from gateway.supervisor import LinkState, RegisterSupervisor
from gateway.systemd import Notifier

_LOGGER = logging.getLogger(__name__)

EMULATOR_STATE = "emulator.state"
EMULATOR_LINK = "emulator.tty"


class Gateway:
    """The daemon: one instance per process."""

    def __init__(self, cfg: Config, *, notifier: Notifier | None = None) -> None:
        self.cfg = cfg
        self.notifier = notifier or Notifier()
        self.stop_event = asyncio.Event()
        self.emulator: EmulatorServer | None = None
        self.register: fiscal.Register | None = None
        self.supervisor: RegisterSupervisor | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    def request_stop(self) -> None:
        """Begin a clean shutdown (signal handlers call this)."""
        self.stop_event.set()

    @contextlib.asynccontextmanager
    async def _register(self) -> AsyncIterator[fiscal.Register]:
        reg = self.cfg.register
        port = reg.port
        if reg.driver != "shtrih":
            raise GatewayError(
                f"register.driver {reg.driver!r} is not available in this build",
                code="config_invalid",
            )
        if port == "emulator":
            state_dir = self.cfg.state_dir
            state_dir.mkdir(parents=True, exist_ok=True)
            self.emulator = EmulatorServer(state_dir / EMULATOR_STATE)
            port = await self.emulator.start_pty(link=state_dir / EMULATOR_LINK)
            _LOGGER.info(
                "Built-in register emulator on %s (paper tape %s.journal.jsonl)",
                port,
                state_dir / EMULATOR_STATE,
            )
        try:
            yield ShtrihRegister(port, baudrate=reg.baudrate, password=reg.device_password)
        finally:
            if self.emulator is not None:
                await self.emulator.close()

    def _spawn(self, tg: asyncio.TaskGroup, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(tg.create_task(coro, name=name))

    async def run(self) -> None:
        """Run until `request_stop()`; every background task lives in one TaskGroup."""
        _LOGGER.info("fiscal-gateway %s starting, box %s", __version__, self.cfg.box_id)
        async with self._register() as register:
            self.register = register
            self.supervisor = RegisterSupervisor(register)
            self.supervisor.add_listener(self._on_link_state)
            async with asyncio.TaskGroup() as tg:
                self._spawn(tg, self.supervisor.run(), "register-supervisor")
                self._spawn(tg, self._report_register(), "register-report")
                self.notifier.ready(self._status_line())
                await self.stop_event.wait()
                _LOGGER.info("Stopping")
                self.notifier.stopping()
                for task in self._tasks:
                    task.cancel()
        _LOGGER.info("Stopped")

    def _status_line(self) -> str:
        sup = self.supervisor
        state = sup.state.value if sup else "starting"
        return f"register {state}"

    def _on_link_state(self, state: LinkState) -> None:
        self.notifier.status(self._status_line())

    async def _report_register(self) -> None:
        """Log what the register says each time it (re)connects."""
        assert self.supervisor is not None
        assert self.register is not None
        supervisor, register = self.supervisor, self.register
        changed = asyncio.Event()
        unsubscribe = supervisor.add_listener(lambda _state: changed.set())
        try:
            while True:
                if supervisor.state is LinkState.CONNECTED:
                    await self._log_register(register)
                await changed.wait()
                changed.clear()
        finally:
            unsubscribe()

    @staticmethod
    async def _log_register(register: fiscal.Register) -> None:
        try:
            status = await register.status()
            fn = await register.fn_status()
        except GatewayError as err:
            _LOGGER.warning("Could not read the register's status: %s", err)
            return
        _LOGGER.info(
            "Register mode %d submode %d, shift %s, paper %s, cover %s; ФН %s, last document %d",
            status.mode,
            status.submode,
            status.shift.value,
            "ok" if status.paper_present else "OUT",
            "open" if status.cover_open else "closed",
            fn.number,
            fn.last_document_number,
        )


async def run(cfg: Config) -> None:
    """Entry for `fiscal-gateway run`: stops cleanly on SIGINT/SIGTERM."""
    gateway = Gateway(cfg)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, gateway.request_stop)
    try:
        await gateway.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
