"""What the box says about itself: `/health`, the retained MQTT status, the STATUS= line.

Read-only over the running parts; `ok` / `degraded` / `down` is decided here once for the
HTTP API, the status page, telemetry and the update trial.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import __version__
from gateway.config import Config
from gateway.domain.errors import GatewayError
from gateway.engine.supervisor import LinkState, RegisterSupervisor
from gateway.engine.worker import Worker
from gateway.journal import Journal
from gateway.monitors.clock import ClockMonitor
from gateway.monitors.health import HealthMonitor
from gateway.monitors.health_rules import Severity
from gateway.monitors.marking import MarkingMonitor

if TYPE_CHECKING:
    from gateway.monitors.hotplug import HotplugMonitor

TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")  # systemd-timesyncd: NTP sync done


class StatusReport:
    """Builds the status bodies from the parts; holds no state of its own."""

    def __init__(
        self,
        cfg: Config,
        *,
        journal: Journal,
        supervisor: RegisterSupervisor,
        worker: Worker,
        clock: ClockMonitor,
        health: HealthMonitor,
        marking: MarkingMonitor,
        hotplug: HotplugMonitor | None,
        mqtt: Callable[[], dict[str, Any] | None],
        restarts: Callable[[], dict[str, int]],
    ) -> None:
        self._cfg = cfg
        self._journal = journal
        self._sup = supervisor
        self._worker = worker
        self._clock = clock
        self._health = health
        self._marking = marking
        self._hotplug = hotplug
        self._mqtt = mqtt
        self._restarts = restarts

    async def health(self) -> dict[str, object]:
        """`/health`: register, journal and queue state; ok / degraded / down."""
        sup, worker, journal = self._sup, self._worker, self._journal
        dev = sup.device
        body: dict[str, object] = {"version": __version__, "box_id": self._cfg.box_id}
        body["register"] = {
            "state": sup.state.value,
            "error": sup.last_error,
            "model": dev.model if dev else None,
            "serial": dev.serial if dev else None,
            "link": sup.snapshot(),
        }
        queue: dict[str, object]
        journal_ok = True
        try:
            blocked = await journal.is_blocked()
            queue = {
                "depth": await journal.queue_depth(),
                "blocked": blocked.uuid if blocked else None,
                "paused": worker.paused_reason,
            }
        except GatewayError as err:
            journal_ok = False
            queue = {"error": str(err)}
        # Reads may work while commits fail (a full disk): the worker's last commit decides too.
        body["journal"] = worker.journal_health() if journal_ok else {"state": "down"}
        body["queue"] = queue
        body["mqtt"] = self._mqtt() or {"state": "off"}
        clock = self._clock.snapshot()
        body["clock"] = clock.as_dict()
        snap = self._health.snapshot()
        body["health"] = snap.as_dict()
        marking = self._marking.snapshot()
        body["marking"] = marking.as_dict()
        if self._hotplug is not None:
            body["hotplug"] = self._hotplug.snapshot().as_dict()
        body["tasks"] = {"restarts": self._restarts()}
        critical = (
            clock.blocking or snap.worst is Severity.CRITICAL or marking.worst is Severity.CRITICAL
        )
        journal_state = body["journal"]
        if not journal_ok or (isinstance(journal_state, dict) and journal_state["state"] != "ok"):
            status = "down"  # nothing new can be committed, so nothing new is accepted
        elif (
            sup.state is not LinkState.CONNECTED
            or queue.get("blocked")
            or queue.get("paused")
            or critical
        ):
            status = "degraded"
        else:
            status = "ok"
        body["status"] = status
        return body

    async def healthy_for_trial(self) -> bool:
        """A release on trial is confirmed only while this holds (docs/box.md)."""
        body = await self.health()
        register = body.get("register")
        connected = isinstance(register, dict) and register.get("state") == "connected"
        return body.get("status") != "down" and connected

    async def device_summary(self) -> dict[str, object]:
        """What the retained MQTT `online` status says about the register."""
        sup = self._sup
        dev = sup.device
        return {
            "register": sup.state.value,
            "model": dev.model if dev else None,
            "serial": dev.serial if dev else None,
            "firmware": f"{dev.firmware_version} build {dev.firmware_build}" if dev else None,
        }

    def clock_trusted(self) -> bool:
        """Whether the box clock may judge a signed command's expiry."""
        trust = self._cfg.clock.trust.value
        if trust != "auto":
            return trust == "always"
        return TIMESYNC_FLAG.exists()

    def line(self) -> str:
        """The STATUS= line for `systemctl status`."""
        parts = [f"register {self._sup.state.value}"]
        worker = self._worker
        if worker.paused_reason:
            parts.append(f"queue paused: {worker.paused_reason}")
        elif worker.current_job:
            parts.append(f"printing {worker.current_job}")
        return "; ".join(parts)
