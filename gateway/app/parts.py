"""The daemon's parts, built in order once the journal and the register are open.

Each part gets what it needs when it is made, so nothing is filled in later. Optional parts
import their code only when the config turns them on: the MQTT link (paho, signatures),
the hotplug monitor (pyudev, Shtrih only). The status page (its routes, templates, jinja2)
is imported and built when its first client connects; its port is held from the start.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from gateway.app.events import EventQueue
from gateway.app.register import OpenRegister, timezone
from gateway.app.status import StatusReport
from gateway.app.telemetry import telemetry
from gateway.app.update_tasks import Updates
from gateway.atol.names import NameMapping, PermitDefaults
from gateway.config import Config
from gateway.config.schema import MarkingConfig
from gateway.domain import fiscal, marking
from gateway.engine.supervisor import Heartbeat, LinkState, RegisterSupervisor
from gateway.engine.worker import ShiftPolicy, Worker
from gateway.ingress.http_api import HttpApi
from gateway.journal import Journal
from gateway.monitors.clock import ClockMonitor
from gateway.monitors.health import HealthMonitor
from gateway.monitors.marking import MarkingMonitor
from gateway.runtime.on_demand import OnDemandServer
from gateway.runtime.restart import Restarter

if TYPE_CHECKING:
    from gateway.ingress.box_mqtt import BoxMqtt
    from gateway.monitors.hotplug import HotplugMonitor
    from gateway.web.diagnostics import RecentLogs
    from gateway.web.server import StatusPage

PAGE_STOP_TIMEOUT_S = 10.0  # requests in flight on the status page get this long to finish


def task_rules(
    mapping: NameMapping, register: fiscal.Register, permits: MarkingConfig
) -> NameMapping:
    """The config's name mapping with what the register can take: a Shtrih register prints
    cp1251 and carries every field; a cloud РРО takes any text and declares what it carries.
    An `industryInfo` entry without its own document cites `permits` (`marking:`), and
    `marking.strict` makes every marked sale ask for the marking system's confirmation."""
    mapping = dataclasses.replace(
        mapping,
        permit=PermitDefaults(permits.permit_fois, permits.permit_date, permits.permit_number),
        marking_strict=permits.strict,
    )
    carries: frozenset[str] | None = getattr(register, "CARRIES", None)
    if carries is None:
        return mapping
    return dataclasses.replace(mapping, charset=None, carries=carries)


def refresh_after_job(health: HealthMonitor) -> None:
    """The worker's hook after every finished job: the status page shows the register's state
    read anew (a receipt may have opened the shift), not the reading of a poll interval ago."""
    health.poll_now()


def _status_page(
    cfg: Config,
    journal: Journal,
    report: StatusReport,
    supervisor: RegisterSupervisor,
    clock: ClockMonitor,
    worker: Worker,
    logs: RecentLogs,
    tz: dt.tzinfo | None,
) -> StatusPage:
    """The status page, imported and made on its first visit."""
    from gateway.app.controls import SupervisorControls
    from gateway.web.diagnostics import masked
    from gateway.web.server import StatusPage

    return StatusPage(
        config=cfg.web,
        journal=journal,
        status=report.health,
        controls=SupervisorControls(supervisor, clock),
        on_submitted=worker.wake,
        config_dump=masked(cfg),
        logs=logs,
        tz=tz,
    )


@dataclass(frozen=True, slots=True)
class Parts:
    """Everything the running daemon is made of."""

    journal: Journal
    opened: OpenRegister
    events: EventQueue
    restarter: Restarter
    supervisor: RegisterSupervisor
    worker: Worker
    clock: ClockMonitor
    health: HealthMonitor
    marking: MarkingMonitor
    hotplug: HotplugMonitor | None
    report: StatusReport
    http: HttpApi
    mqtt: BoxMqtt | None
    updates: Updates
    web: OnDemandServer | None
    logs: RecentLogs | None

    @property
    def register(self) -> fiscal.Register:
        return self.opened.register


def _worker(
    cfg: Config,
    journal: Journal,
    register: fiscal.Register,
    supervisor: RegisterSupervisor,
    mapping: NameMapping,
    *,
    before_shift_open: Callable[[], Awaitable[None]],
    after_job: Callable[[], None],
    on_code_check: Callable[[marking.CodeCheck], None],
) -> Worker:
    operator = (
        fiscal.Operator(cfg.register.operator.name, cfg.register.operator.vatin)
        if cfg.register.operator is not None
        else None
    )
    return Worker(
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
        tz=timezone(cfg.timezone),
        device_info=lambda: supervisor.device,
        before_shift_open=before_shift_open,
        after_job=after_job,
        on_code_check=on_code_check,
    )


def build_parts(
    cfg: Config,
    journal: Journal,
    opened: OpenRegister,
    events: EventQueue,
    restarter: Restarter,
    *,
    restart: Callable[[int], None],
) -> Parts:
    """Make every part, in dependency order; nothing runs yet."""
    register = opened.register
    tz = timezone(cfg.timezone)
    heartbeat = (  # a cloud РРО has no port to hang on; each of its calls fails by itself
        Heartbeat(cfg.register.heartbeat_interval_s, cfg.register.heartbeat_failures)
        if cfg.register.driver == "shtrih"
        else None
    )
    supervisor = RegisterSupervisor(register, journal=journal, heartbeat=heartbeat)
    mapping = task_rules(cfg.mapping, register, cfg.marking)
    # The worker's hooks reach the monitors made just below, which need the worker's lock.
    clock: ClockMonitor
    health: HealthMonitor
    marking_monitor: MarkingMonitor

    async def before_shift_open() -> None:
        await clock.before_shift_open()

    def after_job() -> None:
        refresh_after_job(health)

    def on_code_check(check: marking.CodeCheck) -> None:
        marking_monitor.note_check(check)

    worker = _worker(
        cfg,
        journal,
        register,
        supervisor,
        mapping,
        before_shift_open=before_shift_open,
        after_job=after_job,
        on_code_check=on_code_check,
    )
    supervisor.share_register_lock(worker.register_lock)
    clock = ClockMonitor(
        journal,
        register,
        supervisor.connected_event,
        worker.register_lock,
        config=cfg.clock,
        tz=tz,
        wake_worker=worker.wake,
    )
    health = HealthMonitor(
        journal,
        register,
        supervisor.connected_event,
        worker.register_lock,
        config=cfg.health,
        device_info=lambda: supervisor.device,
        journal_fault=worker.current_journal_fault,
    )
    marking_monitor = MarkingMonitor(
        journal,
        register,
        supervisor.connected_event,
        worker.register_lock,
        config=cfg.health,
        tz=tz,
    )
    # These are read again on every (re)connect, not only on their own interval.
    supervisor.add_listener(
        lambda state: health.poll_now() if state is LinkState.CONNECTED else None
    )
    supervisor.add_listener(
        lambda state: marking_monitor.poll_now() if state is LinkState.CONNECTED else None
    )
    supervisor.add_listener(
        lambda state: clock.check_now() if state is LinkState.CONNECTED else None
    )
    hotplug: HotplugMonitor | None = None
    # A cloud РРО has no cable to watch, nor has the built-in emulator.
    if cfg.register.driver == "shtrih" and cfg.register.port != "emulator":
        from gateway.monitors.hotplug import DeviceMatcher, HotplugMonitor

        hotplug = HotplugMonitor(
            supervisor,
            DeviceMatcher.from_config(cfg.register.usb, cfg.register.port),
            journal=journal,
        )
    updates = Updates(cfg.updates, journal, restart=restart)
    # /health shows the MQTT link, and the link sends /health as telemetry: the report
    # looks the link up when asked, by then it exists.
    mqtt: BoxMqtt | None = None
    report = StatusReport(
        cfg,
        journal=journal,
        supervisor=supervisor,
        worker=worker,
        clock=clock,
        health=health,
        marking=marking_monitor,
        hotplug=hotplug,
        mqtt=lambda: mqtt.health() if mqtt is not None else None,
        restarts=lambda: restarter.restarts,
    )
    http = HttpApi(
        config=cfg.http,
        journal=journal,
        mapping=mapping,
        health=report.health,
        on_submitted=worker.wake,
    )
    if cfg.mqtt.enabled:
        from gateway.ingress.box_mqtt import BoxMqtt

        mqtt = BoxMqtt(
            cfg,
            journal,
            mapping=mapping,
            on_submitted=worker.wake,
            status=report.device_summary,
            telemetry=lambda: telemetry(report, journal, cfg.state_dir),
            clock_trusted=report.clock_trusted,
            on_update=updates.request,
        )
    web: OnDemandServer | None = None
    logs: RecentLogs | None = None
    if cfg.web.enabled:
        from gateway.web.diagnostics import RecentLogs

        logs = RecentLogs()  # the last log lines, for the diagnostics bundle, from the start
        web = OnDemandServer(
            partial(_status_page, cfg, journal, report, supervisor, clock, worker, logs, tz),
            cfg.web.listen,
            key="web.listen",
            code="web_listen",
            what="The status page",
            stop_timeout_s=PAGE_STOP_TIMEOUT_S,
        )
    return Parts(
        journal=journal,
        opened=opened,
        events=events,
        restarter=restarter,
        supervisor=supervisor,
        worker=worker,
        clock=clock,
        health=health,
        marking=marking_monitor,
        hotplug=hotplug,
        report=report,
        http=http,
        mqtt=mqtt,
        updates=updates,
        web=web,
        logs=logs,
    )
