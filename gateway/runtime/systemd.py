"""A small in-tree sd_notify: READY / STATUS / WATCHDOG / STOPPING. No-op outside systemd.

The notify protocol is stable and tiny (sd_notify(3)): datagrams of `KEY=VALUE` lines to the
AF_UNIX socket named by $NOTIFY_SOCKET ('@' prefix = abstract namespace). A dependency for it
is not worth having: the `systemd` binding has no wheels and needs libsystemd to build.

Three parts:
- `Notifier`: sends the datagrams (never raises into the caller).
- `ProgressGate` and `format_status`: pure decisions, tested by tables.
- `keep_alive`: the asyncio task that pings WATCHDOG=1 only while the worker makes progress.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)

# The variables systemd hands to a notify service; forgotten after reading (see `unset`).
_NOTIFY_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
SEND_TIMEOUT_S = 1.0  # a datagram to PID 1 either goes at once or the socket is gone
STATUS_MAX_CHARS = 200  # `systemctl status` shows one line; keep it readable


def _socket_address(raw: str) -> str:
    """$NOTIFY_SOCKET as a connect() address: '@name' is the abstract namespace ('\\0name')."""
    if raw.startswith("@"):
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    return ""  # anything else (e.g. vsock: addresses) is not for us


def _watchdog_usec(env: Mapping[str, str], pid: int) -> int:
    """WATCHDOG_USEC when it is meant for this process (sd_watchdog_enabled(3)), else 0."""
    raw = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(pid):
        return 0  # inherited from a parent service: not ours to feed
    try:
        usec = int(raw)
    except ValueError:
        return 0
    return usec if usec > 0 else 0


class Notifier:
    """Sends notifications to systemd when started by it; otherwise does nothing."""

    def __init__(
        self,
        environ: MutableMapping[str, str] | None = None,
        *,
        unset: bool = False,
        pid: int | None = None,
    ) -> None:
        env: MutableMapping[str, str] = os.environ if environ is None else environ
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self._watchdog_usec = _watchdog_usec(env, os.getpid() if pid is None else pid)
        if unset:
            # Child processes (a venv being built during an update) must not talk for us.
            for name in _NOTIFY_VARS:
                env.pop(name, None)

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notify socket."""
        return bool(self._address)

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to ping: half the watchdog timeout (sd_watchdog_enabled(3)), or None."""
        if not self._address or not self._watchdog_usec:
            return None
        return self._watchdog_usec / 2_000_000

    def notify(self, *fields: str) -> bool:
        """Send one datagram of `KEY=VALUE` lines; errors are logged, never raised."""
        if not self._address or not fields:
            return False
        message = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(SEND_TIMEOUT_S)
                sock.connect(self._address)
                sock.sendall(message)
        except OSError as err:
            # systemd may be re-executing; the next ping or status goes through again.
            _LOGGER.debug("sd_notify %s failed: %s", fields[0].split("=", 1)[0], err)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        """READY=1, optionally with a STATUS line, in one datagram."""
        fields = ["READY=1"]
        if status:
            fields.append(_status_field(status))
        return self.notify(*fields)

    def status(self, text: str) -> bool:
        """A STATUS= line a person reads in `systemctl status`."""
        return self.notify(_status_field(text))

    def watchdog(self) -> bool:
        """WATCHDOG=1: the loop and the worker make progress."""
        return self.notify("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """EXTEND_TIMEOUT_USEC=: a long journal migration is still going on at start-up."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")

    def stopping(self, status: str = "") -> bool:
        """STOPPING=1, optionally with a STATUS line."""
        fields = ["STOPPING=1"]
        if status:
            fields.append(_status_field(status))
        return self.notify(*fields)


def _status_field(text: str) -> str:
    # One line: a newline would start a new KEY=VALUE field in the datagram.
    flat = " ".join(text.split())
    if len(flat) > STATUS_MAX_CHARS:
        flat = flat[: STATUS_MAX_CHARS - 1] + "…"
    return f"STATUS={flat}"


# --- STATUS= text -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusFacts:
    """What a person at `systemctl status` wants to know, in the order they read it."""

    register: str  # connected / connecting / disconnected / starting
    queue_depth: int | None = None
    printing: str | None = None  # uuid of the job on the register now
    paused: str | None = None  # why the queue waits
    blocked: str | None = None  # uuid of a job whose outcome is unknown
    clock: str | None = None  # synced / unsynced / register-rtc
    update: str | None = None  # e.g. "trial 0.2.0"


def format_status(facts: StatusFacts) -> str:
    """One short line: 'register connected; queue 3, printing X; clock synced'."""
    parts = [f"register {facts.register}"]
    queue: list[str] = []
    if facts.queue_depth is not None:
        queue.append(f"queue {facts.queue_depth}")
    if facts.blocked:
        queue.append(f"BLOCKED on {facts.blocked}")
    elif facts.paused:
        queue.append(f"paused: {facts.paused}")
    elif facts.printing:
        queue.append(f"printing {facts.printing}")
    if queue:
        parts.append(", ".join(queue))
    if facts.clock:
        parts.append(f"clock {facts.clock}")
    if facts.update:
        parts.append(f"update {facts.update}")
    return "; ".join(parts)


# --- watchdog -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    """A sample of the worker: its step counter and whether it may legitimately stand still.

    `waiting` is true while the worker waits on something outside the box (register unplugged,
    paper out): a restart would not help there, the queue just waits.
    """

    counter: int
    waiting: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether to send WATCHDOG=1 now; `stalled_s` says for how long the worker stood still."""

    ping: bool
    stalled_s: float


class ProgressGate:
    """Pings only while the worker's counter moves within `stall_after_s` (or it waits).

    Time is passed in (monotonic seconds), so this is a pure state machine.
    """

    def __init__(self, stall_after_s: float, *, now: float) -> None:
        if stall_after_s <= 0:
            raise ValueError("stall_after_s must be positive")
        self._stall_after_s = stall_after_s
        self._last_counter: int | None = None
        self._since = now

    def check(self, sample: Progress, now: float) -> Verdict:
        """Record a sample taken at `now`; say whether the service counts as alive."""
        if sample.counter != self._last_counter or sample.waiting:
            self._last_counter = sample.counter
            self._since = now
        stalled = max(0.0, now - self._since)
        return Verdict(ping=stalled < self._stall_after_s, stalled_s=stalled)


async def keep_alive(
    notifier: Notifier,
    probe: Callable[[], Progress | None],
    status: Callable[[], str],
    *,
    stall_after_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Ping WATCHDOG=1 at half the watchdog interval while the worker makes progress.

    Runs as an asyncio task, not a thread: a blocked event loop stops the pings by itself.
    `probe` returns None before the worker exists (start-up counts as progress). The STATUS
    line is refreshed on the same beat, only when it changed.
    """
    interval = notifier.watchdog_interval_s
    if interval is None:
        return
    gate = ProgressGate(stall_after_s, now=clock())
    last_status = ""
    withheld = False
    while True:
        sample = probe()
        verdict = gate.check(sample or Progress(counter=-1, waiting=True), clock())
        if verdict.ping:
            notifier.watchdog()
            if withheld:
                _LOGGER.warning("Worker moves again; watchdog pings resumed")
                withheld = False
        elif not withheld:
            _LOGGER.error(
                "Worker made no progress for %.0f s; withholding the watchdog ping so the "
                "service is restarted",
                verdict.stalled_s,
            )
            withheld = True
        text = status()
        if text != last_status:
            notifier.status(text)
            last_status = text
        await asyncio.sleep(interval)
