"""The notify protocol on a real AF_UNIX datagram socket, as PID 1 would receive it.

The whole daemon (`python -m gateway run`) runs on its built-in emulator with NOTIFY_SOCKET,
WATCHDOG_USEC and JOURNAL_STREAM set the way systemd sets them. No systemd is needed: the test
owns the socket and reads the datagrams.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from gateway.app.gateway import Gateway
from gateway.config.reader import parse_config
from gateway.monitors.health import HealthMonitor
from gateway.runtime.systemd import Notifier, Progress, keep_alive
from tests.support.broker import free_port

START_TIMEOUT_S = 40.0
WATCHDOG_USEC = 1_000_000  # pings expected every 0.5 s


@dataclass
class Datagrams:
    """Messages received on the notify socket, with their arrival times (monotonic)."""

    sock: socket.socket
    got: list[tuple[float, str]] = field(default_factory=list)

    def pump(self, until: float) -> None:
        """Receive until the monotonic deadline."""
        while (left := until - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                return
            self.got.append((time.monotonic(), data.decode()))

    def wait_for(self, predicate_key: str, *, count: int = 1, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.count(predicate_key) < count and time.monotonic() < deadline:
            self.pump(min(deadline, time.monotonic() + 0.2))
        assert self.count(predicate_key) >= count, f"{predicate_key} x{count}: {self.got}"

    def fields(self) -> list[list[str]]:
        return [msg.split("\n") for _, msg in self.got]

    def count(self, key: str) -> int:
        return sum(key in f for f in self.fields())

    def first(self, key: str) -> int:
        return next(i for i, f in enumerate(self.fields()) if key in f)

    def times(self, key: str) -> list[float]:
        return [t for (t, msg) in self.got if key in msg.split("\n")]

    def statuses(self) -> list[str]:
        return [x[len("STATUS=") :] for f in self.fields() for x in f if x.startswith("STATUS=")]


@pytest.fixture
def abstract_socket() -> Iterator[tuple[str, Datagrams]]:
    """A datagram socket in the abstract namespace, named the way systemd writes it ('@…')."""
    name = f"fiscal-gateway-test-{secrets.token_hex(6)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        yield "@" + name, Datagrams(sock)
    finally:
        sock.close()


class _Drain(threading.Thread):
    """Reads the daemon's stderr so a full pipe never blocks its event loop."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self._file = os.fdopen(fd, "r", encoding="utf-8", errors="replace")
        self.lines: list[str] = []

    def run(self) -> None:
        for line in self._file:
            self.lines.append(line.rstrip("\n"))


def test_daemon_notifies_ready_status_watchdog_and_stopping(
    tmp_path: Path, abstract_socket: tuple[str, Datagrams]
) -> None:
    address, dgrams = abstract_socket
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        f"http:\n  listen: 127.0.0.1:{free_port()}\n"
        f"web:\n  listen: 127.0.0.1:{free_port()}\n",
        encoding="utf-8",
    )
    read_fd, write_fd = os.pipe()
    st = os.fstat(write_fd)  # both ends of a pipe share one inode, as a journald stream would
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        NOTIFY_SOCKET=address,
        WATCHDOG_USEC=str(WATCHDOG_USEC),
        JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(cfg)],
        env=env,
        stderr=write_fd,
        stdin=subprocess.DEVNULL,
    )
    os.close(write_fd)
    drain = _Drain(read_fd)
    drain.start()
    try:
        dgrams.wait_for("READY=1", timeout=START_TIMEOUT_S)
        dgrams.wait_for("WATCHDOG=1", count=4, timeout=START_TIMEOUT_S)
        # The register answers shortly after start; STATUS then says so.
        deadline = time.monotonic() + START_TIMEOUT_S
        while not any("register connected" in s for s in dgrams.statuses()):
            assert time.monotonic() < deadline, dgrams.statuses()
            dgrams.pump(time.monotonic() + 0.5)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        dgrams.wait_for("STOPPING=1", timeout=START_TIMEOUT_S)
        assert proc.wait(timeout=START_TIMEOUT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drain.join(timeout=10)

    # Ordering: READY once, before any watchdog ping; STOPPING after READY.
    assert dgrams.count("READY=1") == 1
    ready_at = dgrams.first("READY=1")
    assert dgrams.first("WATCHDOG=1") > ready_at
    assert dgrams.first("STOPPING=1") > ready_at
    # Pings come at about WATCHDOG_USEC/2: never faster (a slow machine only makes them rarer).
    pings = [t for t in dgrams.times("WATCHDOG=1") if t <= dgrams.times("STOPPING=1")[0]]
    span = pings[-1] - pings[0]
    assert len(pings) - 1 <= span / (WATCHDOG_USEC / 2e6) + 2, (len(pings), span)
    # A person reads these in `systemctl status`: one line each.
    assert all("\n" not in s and s for s in dgrams.statuses())
    # Log lines on the journal stream carry <N> priorities and no timestamps of their own.
    lines = [line for line in drain.lines if line]
    assert lines, "no log output"
    assert all(line[:1] == "<" and line[2:3] == ">" for line in lines), lines[:5]
    assert any(line.startswith("<6>gateway.app.gateway: fiscal-gateway") for line in lines), lines[
        :5
    ]
    assert not any("Traceback" in line for line in lines)


async def test_keep_alive_withholds_pings_when_the_worker_stands_still(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A hung worker: the counter stops, pings stop (so systemd restarts), and come back."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "20000"})  # 10 ms beat
    assert notifier.watchdog_interval_s == pytest.approx(0.01)

    # A fake clock: each probe advances it by one second, so no wall-clock speed matters.
    now = [0.0]
    phase = {"counter": 0, "moving": True}

    def probe() -> Progress:
        now[0] += 1.0
        if phase["moving"]:
            phase["counter"] += 1
        return Progress(phase["counter"])

    task = asyncio.create_task(
        keep_alive(
            notifier, probe, lambda: "register connected", stall_after_s=5.0, clock=lambda: now[0]
        )
    )

    async def collect(n_probes: int) -> list[str]:
        start = now[0]
        while now[0] < start + n_probes:
            await asyncio.sleep(0.005)
        out: list[str] = []
        while True:
            try:
                out.append(sock.recv(4096).decode())
            except BlockingIOError:
                return out

    try:
        moving = await collect(10)
        phase["moving"] = False
        hung = await collect(20)
        phase["moving"] = True
        back = await collect(10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        sock.close()
    assert moving.count("WATCHDOG=1") >= 8
    assert moving.count("STATUS=register connected") == 1  # sent only when it changes
    # Stalled: pings continue only for the first 5 fake seconds, then stop.
    assert 3 <= hung.count("WATCHDOG=1") <= 6, hung
    assert "withholding the watchdog ping" in caplog.text
    assert "watchdog pings resumed" in caplog.text
    assert back.count("WATCHDOG=1") >= 8


RECEIPT = {
    "uuid": "after-crash-1",
    "request": [
        {
            "type": "sell",
            "items": [
                {
                    "type": "position",
                    "name": "Хлеб",
                    "price": 45.0,
                    "quantity": 1,
                    "amount": 45.0,
                    "tax": {"type": "vat10"},
                }
            ],
            "payments": [{"type": "cash", "sum": 45.0}],
        }
    ],
}


async def test_a_crashed_task_is_restarted_the_watchdog_fed_and_receipts_printed(
    tmp_path: Path,
    abstract_socket: tuple[str, Datagrams],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A side task raising (here the health monitor, once) is restarted; the watchdog keeps
    being fed, the restart is counted in /health and queued as an event, and printing goes on."""
    address, dgrams = abstract_socket
    crashed = asyncio.Event()
    original = HealthMonitor.run

    async def crash_once(self: HealthMonitor) -> None:
        if not crashed.is_set():
            crashed.set()
            raise RuntimeError("injected fault")
        await original(self)

    monkeypatch.setattr(HealthMonitor, "run", crash_once)
    port = free_port()
    cfg = parse_config(
        f"state_dir: {tmp_path / 'state'}\n"
        f"http:\n  listen: 127.0.0.1:{port}\n"
        "web:\n  enabled: false\n"
    )
    notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"}, pid=os.getpid())
    gw = Gateway(cfg, notifier=notifier)
    pump = asyncio.create_task(asyncio.to_thread(dgrams.pump, time.monotonic() + 8.0))
    run = asyncio.create_task(gw.run())
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while gw.supervisor is None or not gw.supervisor.connected_event.is_set():
                assert not run.done(), run
                await asyncio.sleep(0.05)
            await crashed.wait()
        crashed_at = time.monotonic()
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            async with http.post("/api/v2/requests", json=RECEIPT) as resp:
                assert resp.status == 201, await resp.text()
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    async with http.get("/api/v2/requests/after-crash-1") as resp:
                        body = await resp.json()
                    if body["results"][0]["status"] not in ("wait", "inProgress"):
                        break
                    await asyncio.sleep(0.1)
            assert body["results"][0]["status"] == "ready", body
            async with http.get("/health") as resp:
                health = await resp.json()
        assert health["tasks"]["restarts"] == {"health-monitor": 1}
        journal = gw.journal
        assert journal is not None
        async with asyncio.timeout(START_TIMEOUT_S):
            while not (events := await journal.outbox_pending(kinds=["event"])):
                await asyncio.sleep(0.05)
        restarts = [json.loads(e.payload_json) for e in events]
        assert any(
            e["event"] == "task_restarted" and e["task"] == "health-monitor" for e in restarts
        ), restarts
        await pump
    finally:
        gw.request_stop()
        async with asyncio.timeout(START_TIMEOUT_S):
            await run
        pump.cancel()
    assert run.result() is None
    assert "Task health-monitor crashed (RuntimeError: injected fault); restart 1" in caplog.text
    # Fed at its 0.2 s beat before and after the crash: a side task's restart is not a hang.
    after = [t for t in dgrams.times("WATCHDOG=1") if t > crashed_at]
    assert len(after) >= 5, dgrams.got
