"""Builds the components, owns the one TaskGroup, start and stop order, READY / STOPPING.

Start order: journal -> register (embedded emulator first when configured) -> worker ->
ingress -> READY. Nothing waits for NTP or the broker: a shop may be offline for days.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import signal
import zoneinfo
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

from gateway import __version__, updates
from gateway.app.controls import SupervisorControls
from gateway.atol.tasks import NameMapping
from gateway.config import Config
from gateway.domain import fiscal
from gateway.domain.errors import GatewayError
from gateway.engine.supervisor import Heartbeat, LinkState, RegisterSupervisor
from gateway.engine.worker import ShiftPolicy, Worker
from gateway.ingress.box_mqtt import BoxMqtt
from gateway.ingress.http_api import HttpApi
from gateway.journal import JobState, Journal
from gateway.monitors import system
from gateway.monitors.clock import ClockMonitor
from gateway.monitors.health import HealthMonitor
from gateway.monitors.health_rules import Severity
from gateway.monitors.hotplug import DeviceMatcher, HotplugMonitor
from gateway.registers.checkbox.driver import CheckboxRegister
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.shtrih.driver import ShtrihRegister
from gateway.registers.vchasno.driver import VchasnoRegister
from gateway.runtime.systemd import Notifier, Progress, keep_alive
from gateway.updates.service import python_for_venvs
from gateway.web.diagnostics import RecentLogs, masked
from gateway.web.server import StatusPage

_LOGGER = logging.getLogger(__name__)

EMULATOR_STATE = "emulator.state"
EMULATOR_LINK = "emulator.tty"
JOURNAL_FILE = "journal.sqlite3"
RETENTION_INTERVAL_S = 6 * 3600.0
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")  # systemd-timesyncd: NTP sync done
WATCHDOG_STALL_S = 300.0  # a worker busy this long on one step without progress counts as hung


def _task_rules(mapping: NameMapping, register: fiscal.Register) -> NameMapping:
    """The config's name mapping with what the register can take: a Shtrih register prints
    cp1251 and carries every field; a cloud РРО takes any text and declares what it carries."""
    carries: frozenset[str] | None = getattr(register, "CARRIES", None)
    if carries is None:
        return mapping
    return dataclasses.replace(mapping, charset=None, carries=carries)


def _timezone(name: str) -> dt.tzinfo | None:
    """The register's wall-clock zone: an IANA name, or the box's local zone."""
    if name == "local":
        return dt.datetime.now().astimezone().tzinfo
    return zoneinfo.ZoneInfo(name)


class Gateway:
    """The daemon: one instance per process."""

    def __init__(self, cfg: Config, *, notifier: Notifier | None = None) -> None:
        self.cfg = cfg
        self.notifier = notifier or Notifier(unset=True)
        self.stop_event = asyncio.Event()
        self.emulator: EmulatorServer | None = None
        self.register: fiscal.Register | None = None
        self.supervisor: RegisterSupervisor | None = None
        self.journal: Journal | None = None
        self.worker: Worker | None = None
        self.http: HttpApi | None = None
        self.mqtt: BoxMqtt | None = None
        self.web: StatusPage | None = None
        self.clock: ClockMonitor | None = None
        self.health_monitor: HealthMonitor | None = None
        self.hotplug: HotplugMonitor | None = None
        self._event_tasks: set[asyncio.Task[int]] = set()
        self.exit_code = 0  # RESTART_EXIT_CODE after switching to a new release
        self.update_settings = updates.UpdateSettings(
            root=cfg.updates.root,
            public_keys=cfg.updates.public_keys,
            python=python_for_venvs(),
            confirm_after_s=60.0 * cfg.updates.confirm_after_min,
            max_artifact_bytes=cfg.updates.max_artifact_mb * 2**20,
        )
        self._update_requests: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1)
        self.logs = RecentLogs()  # the last log lines, for the diagnostics bundle
        self.started_at = dt.datetime.now(dt.UTC)
        self._tasks: list[asyncio.Task[Any]] = []

    def request_stop(self) -> None:
        """Begin a clean shutdown (signal handlers call this)."""
        self.stop_event.set()

    @contextlib.asynccontextmanager
    async def _register(self) -> AsyncIterator[fiscal.Register]:
        reg = self.cfg.register
        port = reg.port
        tz = _timezone(self.cfg.timezone)
        if reg.driver == "checkbox":
            if reg.url is None or reg.license_key is None:
                raise GatewayError(
                    "register.driver checkbox needs register.url and register.license_key",
                    code="config_invalid",
                )
            yield CheckboxRegister(
                reg.url,
                license_key=reg.license_key.reveal(),
                login=reg.login.reveal() if reg.login else None,
                password=reg.password.reveal() if reg.password else None,
                pin_code=reg.pin_code.reveal() if reg.pin_code else None,
                client_name=reg.client_name,
                tz=tz,
                on_event=self._register_event,
            )
            return
        if reg.driver == "vchasno":
            if reg.url is None or reg.token is None:
                raise GatewayError(
                    "register.driver vchasno needs register.url and register.token",
                    code="config_invalid",
                )
            yield VchasnoRegister(
                reg.url,
                token=reg.token.reveal(),
                tax_groups=reg.tax_groups.table() if reg.tax_groups else None,
                tz=tz,
                on_event=self._register_event,
            )
            return
        if port == "emulator":
            state_dir = self.cfg.state_dir
            state_dir.mkdir(parents=True, exist_ok=True)
            self.emulator = EmulatorServer(
                state_dir / EMULATOR_STATE,
                clock_offset_s=reg.emulator.clock_offset_s,
                ofd_interval_s=reg.emulator.ofd_interval_s,
            )
            port = await self.emulator.start_pty(link=state_dir / EMULATOR_LINK)
            _LOGGER.info(
                "Built-in register emulator on %s (paper tape %s.journal.jsonl)",
                port,
                state_dir / EMULATOR_STATE,
            )
        try:
            yield ShtrihRegister(
                port,
                baudrate=reg.baudrate,
                password=reg.device_password,
                answer_timeout_s=reg.answer_timeout_s,
                print_timeout_s=reg.print_timeout_s,
                report_timeout_s=reg.report_timeout_s,
            )
        finally:
            if self.emulator is not None:
                await self.emulator.close()

    def _register_event(self, name: str, data: dict[str, object]) -> None:
        """A cloud register's event (offline, limits, keys) -> the journal's outbox."""
        if self.journal is None:
            return
        task = asyncio.get_running_loop().create_task(
            self.journal.add_event(name, dict(data), now=dt.datetime.now(dt.UTC))
        )
        self._event_tasks.add(task)
        task.add_done_callback(self._event_tasks.discard)

    async def _before_shift_open(self) -> None:
        """The worker's clock check before it opens a shift (the monitor is built after it)."""
        if self.clock is not None:
            await self.clock.before_shift_open()

    def _after_job(self) -> None:
        """After every finished job the status page shows the register's state read anew (a
        receipt may have opened the shift), not the reading of up to a poll interval ago."""
        if self.health_monitor is not None:
            self.health_monitor.poll_now()

    def _spawn(self, tg: asyncio.TaskGroup, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(tg.create_task(coro, name=name))

    async def run(self) -> None:
        """Run until `request_stop()`; every background task lives in one TaskGroup."""
        cfg = self.cfg
        _LOGGER.info("fiscal-gateway %s starting, box %s", __version__, cfg.box_id)
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        journal = await Journal.open(
            cfg.state_dir / JOURNAL_FILE, recreate_if_corrupt=cfg.journal.recreate_if_corrupt
        )
        self.journal = journal
        logging.getLogger().addHandler(self.logs)
        try:
            async with self._register() as register:
                await self._serve(journal, register)
        finally:
            logging.getLogger().removeHandler(self.logs)
            await journal.close()
        _LOGGER.info("Stopped")

    async def _serve(self, journal: Journal, register: fiscal.Register) -> None:
        cfg = self.cfg
        self.register = register
        heartbeat = (  # a cloud РРО has no port to hang on; each of its calls fails by itself
            Heartbeat(cfg.register.heartbeat_interval_s, cfg.register.heartbeat_failures)
            if cfg.register.driver == "shtrih"
            else None
        )
        self.supervisor = supervisor = RegisterSupervisor(
            register, journal=journal, heartbeat=heartbeat
        )
        supervisor.add_listener(self._on_link_state)
        tz = _timezone(cfg.timezone)
        operator = (
            fiscal.Operator(cfg.register.operator.name, cfg.register.operator.vatin)
            if cfg.register.operator is not None
            else None
        )
        mapping = _task_rules(cfg.mapping, register)
        self.worker = worker = Worker(
            journal,
            register,
            supervisor.connected_event,
            mapping=mapping,
            policy=ShiftPolicy(
                auto_open=cfg.shift.auto_open,
                close_before_limit=dt.timedelta(minutes=cfg.shift.close_before_limit_min),
                operator=operator,
                taxation=fiscal.TaxationType[cfg.register.taxation_type.name],
                close_at=cfg.shift.close_at,
            ),
            tz=tz,
            device_info=lambda: supervisor.device,
            before_shift_open=self._before_shift_open,
            after_job=self._after_job,
        )
        supervisor.share_register_lock(worker.register_lock)
        self.clock = ClockMonitor(
            journal,
            register,
            supervisor.connected_event,
            worker.register_lock,
            config=cfg.clock,
            tz=tz,
            wake_worker=worker.wake,
        )
        self.health_monitor = health = HealthMonitor(
            journal,
            register,
            supervisor.connected_event,
            worker.register_lock,
            config=cfg.health,
            device_info=lambda: supervisor.device,
        )
        supervisor.add_listener(
            lambda state: health.poll_now() if state is LinkState.CONNECTED else None
        )
        clock = self.clock  # compared on every (re)connect, not only every check_interval_s
        supervisor.add_listener(
            lambda state: clock.check_now() if state is LinkState.CONNECTED else None
        )
        if cfg.register.driver == "shtrih":  # a cloud РРО has no cable to watch
            self.hotplug = HotplugMonitor(
                supervisor,
                DeviceMatcher.from_config(cfg.register.usb, cfg.register.port),
                journal=journal,
            )
        self.http = HttpApi(
            config=cfg.http,
            journal=journal,
            mapping=mapping,
            health=self.health,
            on_submitted=worker.wake,
        )
        if cfg.mqtt.enabled:
            self.mqtt = BoxMqtt(
                cfg,
                journal,
                mapping=mapping,
                on_submitted=worker.wake,
                status=self._device_summary,
                telemetry=self.telemetry,
                clock_trusted=self._clock_trusted,
                on_update=self._request_update,
            )
        async with asyncio.TaskGroup() as tg:
            self._spawn(tg, supervisor.run(), "register-supervisor")
            self._spawn(tg, self._report_register(), "register-report")
            self._spawn(tg, worker.run(), "worker")
            self._spawn(tg, self._retention(), "journal-retention")
            self._spawn(tg, self.clock.run(), "clock-monitor")
            self._spawn(tg, health.run(), "health-monitor")
            if self.hotplug is not None:
                self._spawn(tg, self.hotplug.run(), "hotplug")
            await self.http.start()
            if cfg.web.enabled:
                self.web = StatusPage(
                    config=cfg.web,
                    journal=journal,
                    status=self.health,
                    controls=SupervisorControls(supervisor, self.clock),
                    on_submitted=worker.wake,
                    config_dump=masked(cfg),
                    logs=self.logs,
                    tz=tz,
                )
                await self.web.start()
                self._spawn(tg, self.web.sample_queue_depth(), "queue-depth-samples")
            if self.mqtt is not None:
                self._spawn(tg, self.mqtt.run(), "mqtt")
            try:
                self._spawn(tg, self._watchdog(), "systemd-watchdog")
                self._spawn(tg, self._updates(), "updates")
                if (self.update_settings.root / "current").exists():  # installed as releases
                    self._spawn(tg, self._confirm_update(), "update-confirm")
                self.notifier.ready(self._status_line())
                await self.stop_event.wait()
                _LOGGER.info("Stopping")
                self.notifier.stopping()
            finally:
                await self.http.stop()
                if self.web is not None:
                    await self.web.stop()
                if self.mqtt is not None:
                    await self.mqtt.stop()
                for task in self._tasks:
                    task.cancel()

    async def _retention(self) -> None:
        """Purge finished jobs past `journal.retention_days`, a few times a day."""
        assert self.journal is not None
        while True:
            removed = await self.journal.purge(
                self.cfg.journal.retention_days, now=dt.datetime.now(dt.UTC)
            )
            if removed:
                _LOGGER.info(
                    "Purged %d finished jobs older than %d days",
                    removed,
                    self.cfg.journal.retention_days,
                )
            await asyncio.sleep(RETENTION_INTERVAL_S)

    def _request_update(self, command: dict[str, Any]) -> bool:
        """An update command from the office; False when one is already waiting."""
        try:
            self._update_requests.put_nowait(command)
        except asyncio.QueueFull:
            return False
        return True

    async def _confirm_update(self) -> None:
        """A release on trial is confirmed after READY plus a healthy while (docs/box.md)."""

        async def healthy() -> bool:
            body = await self.health()
            register = body.get("register")
            connected = isinstance(register, dict) and register.get("state") == "connected"
            return body.get("status") != "down" and connected

        await updates.confirm_when_healthy(self.update_settings, healthy)

    async def _updates(self) -> None:
        """Apply the office's update commands one at a time; restart into a new release."""
        journal = self.journal
        assert journal is not None
        while True:
            command = await self._update_requests.get()
            await journal.add_event("update_started", {"version": command.get("version")})
            outcome = await updates.apply_signed_update(command, self.update_settings)
            await journal.add_event("update_outcome", outcome.as_json())
            _LOGGER.info("Update: %s (%s)", outcome.result, outcome.message)
            if outcome.restart_required:
                self.exit_code = updates.RESTART_EXIT_CODE
                self.request_stop()

    async def _watchdog(self) -> None:
        """WATCHDOG=1 only while the loop runs and the worker is not stuck on one step."""

        def probe() -> Progress | None:
            worker, sup = self.worker, self.supervisor
            if worker is None or sup is None:
                return None
            waiting = (
                worker.current_job is None
                or worker.paused_reason is not None
                or sup.state is not LinkState.CONNECTED
            )
            return Progress(worker.progress, waiting=waiting)

        await keep_alive(self.notifier, probe, self._status_line, stall_after_s=WATCHDOG_STALL_S)

    async def health(self) -> dict[str, object]:
        """`/health`: register, journal and queue state; ok / degraded / down."""
        sup, worker, journal = self.supervisor, self.worker, self.journal
        register_state = sup.state.value if sup else "starting"
        body: dict[str, object] = {"version": __version__, "box_id": self.cfg.box_id}
        body["register"] = {
            "state": register_state,
            "error": sup.last_error if sup else None,
            "model": sup.device.model if sup and sup.device else None,
            "serial": sup.device.serial if sup and sup.device else None,
        }
        queue: dict[str, object] = {}
        journal_ok = journal is not None
        if journal is not None:
            try:
                blocked = await journal.is_blocked()
                queue = {
                    "depth": await journal.queue_depth(),
                    "blocked": blocked.uuid if blocked else None,
                    "paused": worker.paused_reason if worker else None,
                }
            except GatewayError as err:
                journal_ok = False
                queue = {"error": str(err)}
        body["journal"] = {"state": "ok" if journal_ok else "down"}
        body["queue"] = queue
        body["mqtt"] = self.mqtt.health() if self.mqtt is not None else {"state": "off"}
        if sup is not None:
            body["register"] = {**body["register"], "link": sup.snapshot()}  # type: ignore[dict-item]
        critical = False
        if self.clock is not None:
            clock = self.clock.snapshot()
            body["clock"] = clock.as_dict()
            critical = critical or clock.blocking
        if self.health_monitor is not None:
            snap = self.health_monitor.snapshot()
            body["health"] = snap.as_dict()
            critical = critical or snap.worst is Severity.CRITICAL
        if self.hotplug is not None:
            body["hotplug"] = self.hotplug.snapshot().as_dict()
        if not journal_ok:
            status = "down"
        elif (
            register_state != "connected" or queue.get("blocked") or queue.get("paused") or critical
        ):
            status = "degraded"
        else:
            status = "ok"
        body["status"] = status
        return body

    def _clock_trusted(self) -> bool:
        """Whether the box clock may judge a signed command's expiry."""
        trust = self.cfg.clock.trust.value
        if trust != "auto":
            return trust == "always"
        return TIMESYNC_FLAG.exists()

    async def _device_summary(self) -> dict[str, object]:
        """What the retained `online` status says about the register."""
        sup = self.supervisor
        dev = sup.device if sup else None
        return {
            "register": sup.state.value if sup else "starting",
            "model": dev.model if dev else None,
            "serial": dev.serial if dev else None,
            "firmware": f"{dev.firmware_version} build {dev.firmware_build}" if dev else None,
        }

    async def telemetry(self) -> dict[str, object]:
        """The periodic telemetry message: queue, register, box."""
        body = await self.health()
        journal = self.journal
        if journal is not None:
            counts = await journal.counts()
            oldest = await journal.oldest_queued()
            body["jobs"] = {
                "done": counts.get(JobState.DONE, 0),
                "failed": counts.get(JobState.FAILED, 0),
                "blocked": counts.get(JobState.BLOCKED, 0),
                "oldest_queued_age_s": (
                    int((dt.datetime.now(dt.UTC) - oldest.created_at).total_seconds())
                    if oldest is not None
                    else None
                ),
                "outbox": await journal.outbox_depth(),
            }
        body["system"] = system.snapshot(self.cfg.state_dir)
        return body

    def _status_line(self) -> str:
        sup, worker = self.supervisor, self.worker
        parts = [f"register {sup.state.value if sup else 'starting'}"]
        if worker is not None and worker.paused_reason:
            parts.append(f"queue paused: {worker.paused_reason}")
        elif worker is not None and worker.current_job:
            parts.append(f"printing {worker.current_job}")
        return "; ".join(parts)

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


async def run(cfg: Config) -> int:
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
    return gateway.exit_code
