"""The daemon: opens the journal and the register, builds the parts, owns the one TaskGroup.

Start order: journal -> register (the built-in emulator first when configured) -> parts ->
tasks -> HTTP API, status page -> READY. Nothing waits for NTP or the broker: a shop may be
offline for days. Every background task is named, lives in the TaskGroup, and is restarted
if it crashes; only the journal failing ends the process. Stop order is the reverse, and the
events still queued are written before the journal closes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

from gateway import __version__
from gateway.app.events import EventQueue
from gateway.app.journal_upkeep import keep_purging, sample_queue_depth
from gateway.app.parts import Parts, build_parts, task_rules
from gateway.app.register import open_register
from gateway.app.startup import check_state_dir
from gateway.app.update_tasks import installed_as_releases
from gateway.config import Config
from gateway.domain import fiscal
from gateway.domain.errors import CorruptJournal, GatewayError, JournalError
from gateway.engine.supervisor import LinkState, RegisterSupervisor
from gateway.engine.worker import Worker
from gateway.journal import Journal
from gateway.runtime.memory import release_freed_memory
from gateway.runtime.restart import Restart, Restarter
from gateway.runtime.systemd import Notifier, Progress, keep_alive

if TYPE_CHECKING:
    from gateway.ingress.box_mqtt import BoxMqtt
    from gateway.ingress.kkmserver.server import KkmServer
    from gateway.registers.emulator.server import EmulatorServer

_LOGGER = logging.getLogger(__name__)

JOURNAL_FILE = "journal.sqlite3"
STATE_DIR_TIMEOUT_S = 60.0  # a failing SD card can take long to say no
WATCHDOG_STALL_S = 300.0  # a worker busy this long on one step without progress counts as hung


def journal_failed(err: Exception) -> bool:
    """The one failure no restart can mend: the journal itself (damaged, closed, its file
    refusing writes). A journal slow to answer is not: the task is restarted and tries again."""
    if isinstance(err, CorruptJournal):
        return True
    return type(err) is JournalError and not isinstance(err.__cause__, TimeoutError)


class Gateway:
    """The daemon: one instance per process.

    `emulator_in_process` keeps the built-in emulator inside this process (reachable as
    `.emulator`); the command line runs it as a child process instead.
    """

    def __init__(
        self,
        cfg: Config,
        *,
        notifier: Notifier | None = None,
        emulator_in_process: bool = True,
    ) -> None:
        self.cfg = cfg
        self.notifier = notifier or Notifier(unset=True)
        self.stop_event = asyncio.Event()
        self.exit_code = 0  # RESTART_EXIT_CODE after switching to a new release
        self._emulator_in_process = emulator_in_process
        self._parts: Parts | None = None

    # --- views for callers and tests (None until the parts exist) -----------------------

    @property
    def parts(self) -> Parts | None:
        return self._parts

    @property
    def journal(self) -> Journal | None:
        return self._parts.journal if self._parts else None

    @property
    def supervisor(self) -> RegisterSupervisor | None:
        return self._parts.supervisor if self._parts else None

    @property
    def worker(self) -> Worker | None:
        return self._parts.worker if self._parts else None

    @property
    def mqtt(self) -> BoxMqtt | None:
        return self._parts.mqtt if self._parts else None

    @property
    def emulator(self) -> EmulatorServer | None:
        return self._parts.opened.emulator_inline if self._parts else None

    async def health(self) -> dict[str, object]:
        """`/health` (a starting box answers `down`)."""
        if self._parts is None:
            return {"version": __version__, "box_id": self.cfg.box_id, "status": "down"}
        return await self._parts.report.health()

    # --- running ------------------------------------------------------------------------

    def request_stop(self, exit_code: int | None = None) -> None:
        """Begin a clean shutdown (signal handlers call this)."""
        if exit_code is not None:
            self.exit_code = exit_code
        self.stop_event.set()

    async def run(self) -> None:
        """Run until `request_stop()`."""
        cfg = self.cfg
        _LOGGER.info("fiscal-gateway %s starting, box %s", __version__, cfg.box_id)
        try:
            async with asyncio.timeout(STATE_DIR_TIMEOUT_S):
                await asyncio.to_thread(check_state_dir, cfg.state_dir)
        except TimeoutError as err:
            raise GatewayError(
                f"state_dir {cfg.state_dir} did not answer within {STATE_DIR_TIMEOUT_S:.0f} s",
                code="state_dir_unwritable",
                hint="check the SD card or disk it is on",
            ) from err
        journal = await Journal.open(
            cfg.state_dir / JOURNAL_FILE, recreate_if_corrupt=cfg.journal.recreate_if_corrupt
        )
        events = EventQueue(journal)

        def restarted(restart: Restart) -> None:
            events.put("task_restarted", restart.as_event())

        restarter = Restarter(is_fatal=journal_failed, on_restart=restarted)
        try:
            async with open_register(
                cfg, on_event=events.put, emulator_in_process=self._emulator_in_process
            ) as opened:
                parts = build_parts(
                    cfg, journal, opened, events, restarter, restart=self.request_stop
                )
                self._parts = parts
                if parts.logs is not None:
                    logging.getLogger().addHandler(parts.logs)
                try:
                    await self._serve(parts)
                finally:
                    if parts.logs is not None:
                        logging.getLogger().removeHandler(parts.logs)
            await events.flush()
        finally:
            await journal.close()
        _LOGGER.info("Stopped")

    async def _serve(self, parts: Parts) -> None:
        cfg = self.cfg
        report = parts.report

        def link_changed(_state: LinkState) -> None:
            self.notifier.status(report.line())

        parts.supervisor.add_listener(link_changed)
        keep = parts.restarter
        async with asyncio.TaskGroup() as tg:
            keep.spawn(tg, "events", parts.events.drain)
            child = parts.opened.emulator_process
            if child is not None:
                keep.spawn(
                    tg, "register-emulator", lambda: child.run(parts.supervisor.reconnect_now)
                )
            keep.spawn(tg, "register-supervisor", parts.supervisor.run)
            keep.spawn(tg, "register-report", lambda: _report_register(parts))
            keep.spawn(tg, "worker", parts.worker.run)
            keep.spawn(
                tg,
                "journal-retention",
                lambda: keep_purging(parts.journal, cfg.journal.retention_days),
            )
            keep.spawn(tg, "clock-monitor", parts.clock.run)
            keep.spawn(tg, "health-monitor", parts.health.run)
            keep.spawn(tg, "marking-monitor", parts.marking.run)
            if parts.hotplug is not None:
                keep.spawn(tg, "hotplug", parts.hotplug.run)
            kkmserver: KkmServer | None = None
            try:
                await parts.http.start()
                kkmserver = await _start_kkmserver(cfg, parts)
                if parts.web is not None:
                    await parts.web.start()
                    keep.spawn(tg, "status-page", parts.web.serve)
                    keep.spawn(tg, "queue-depth-samples", lambda: sample_queue_depth(parts.journal))
                if parts.mqtt is not None:
                    keep.spawn(tg, "mqtt", parts.mqtt.run)
                    keep.spawn(tg, "updates", parts.updates.run)
                if installed_as_releases(cfg.updates.root):
                    keep.spawn(
                        tg,
                        "update-confirm",
                        lambda: parts.updates.confirm(report.healthy_for_trial),
                    )
                keep.spawn(tg, "systemd-watchdog", lambda: self._watchdog(parts))
                self.notifier.ready(report.line())
                release_freed_memory()
                await self.stop_event.wait()
                _LOGGER.info("Stopping")
                self.notifier.stopping()
            finally:
                await parts.http.stop()
                if kkmserver is not None:
                    await kkmserver.stop()
                if parts.web is not None:
                    await parts.web.stop()
                if parts.mqtt is not None:
                    await parts.mqtt.stop()
                keep.cancel_all()

    async def _watchdog(self, parts: Parts) -> None:
        """WATCHDOG=1 only while the loop runs and the worker is not stuck on one step; a
        side task being restarted does not count as stuck."""
        worker, sup, register = parts.worker, parts.supervisor, parts.register
        await keep_alive(
            self.notifier,
            lambda: watchdog_sample(worker, sup.state, register),
            parts.report.line,
            stall_after_s=WATCHDOG_STALL_S,
        )


def watchdog_sample(worker: Worker, link: LinkState, register: fiscal.Register) -> Progress:
    """The worker's step counter plus the answers its register sent: one step may run long
    while the register keeps answering (a marked receipt checks each code with FF61h, each
    up to the driver's marking timeout while the ОИСМ is silent), and that is progress. A
    register without a link of its own (a cloud РРО) adds nothing; a hung one answers nothing,
    so it still counts as no progress."""
    waiting = (
        worker.current_job is None
        or worker.paused_reason is not None
        or link is not LinkState.CONNECTED
    )
    # Answers count only while the worker holds the register for a job: otherwise they are
    # the heartbeat's or a monitor's reads, and the worker may be stuck elsewhere.
    answers = _register_answers(register) if worker.on_register else 0
    return Progress(worker.progress + answers, waiting=waiting)


def _register_answers(register: fiscal.Register) -> int:
    """Answer frames the register's serial link received (the Shtrih driver's `link`), else 0."""
    answers = getattr(getattr(register, "link", None), "answers", None)
    return answers if isinstance(answers, int) else 0


# --- the KKMServer-compatible API (docs/kkmserver.md): imported only when configured ---


async def _start_kkmserver(cfg: Config, parts: Parts) -> KkmServer | None:
    """Listen on `kkmserver.listen` when the section is present; None when it is not."""
    if cfg.kkmserver is None:
        return None
    from gateway.ingress.kkmserver.server import KkmServer

    server = KkmServer(
        config=cfg.kkmserver,
        journal=parts.journal,
        mapping=task_rules(cfg.mapping, parts.register, cfg.marking),
        device=parts.report.device_summary,
        on_submitted=parts.worker.wake,
    )
    await server.start()
    return server


async def _report_register(parts: Parts) -> None:
    """Log what the register says each time it (re)connects."""
    supervisor, register = parts.supervisor, parts.register
    changed = asyncio.Event()
    unsubscribe = supervisor.add_listener(lambda _state: changed.set())
    try:
        while True:
            if supervisor.state is LinkState.CONNECTED:
                await _log_register(register)
            await changed.wait()
            changed.clear()
    finally:
        unsubscribe()


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


async def run(cfg: Config) -> int:
    """Entry for `fiscal-gateway run`: stops cleanly on SIGINT/SIGTERM."""
    gateway = Gateway(cfg, emulator_in_process=False)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, gateway.request_stop)
    try:
        await gateway.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return gateway.exit_code
