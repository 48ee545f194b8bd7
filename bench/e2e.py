"""POST -> ready latency through the whole daemon, next to the wire-time floor of the same frames.

The emulator runs as its own process on a real pty, paced at the line speed (default 115200
baud, 8N1); the daemon runs as another process, pointed at the pty, exactly as on the box.
Receipts are posted one at a time (a shop's till waits for each). The wire floor is the
bytes both ways of the commands that print the same receipt, × 10 bits / baud. Next to it,
"driver alone": the time the driver takes to print the same receipt on the same emulator
once the daemon has stopped, the register's own work included (the emulator logs what each
command changed and syncs it with the tape when a document closes), no daemon.

The daemon writes a trace (the link's frames, the journal's commits, the worker taking a job)
with each record's own time to a file; the bench reads it instead of polling the API, so no
poll interval is in the figures and no poll load is on the daemon. "ready" is the moment the
commit that makes the job done returned; one GET afterwards checks the API says `ready`.
Per receipt the trace gives the steps: POST sent -> job committed (journaled) -> the worker
took it -> first byte on the wire -> N0 committed -> last answer -> ready; and "daemon's wire",
the line time of every byte the daemon's link sent and got for it — the floor plus the
worker's own reads (state and N0 before the document), without any latency.

    .venv/bin/python bench/e2e.py [--count 30] [--baudrate 115200]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiohttp

from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.atol.tasks import ReceiptTask
from gateway.domain import fiscal
from gateway.registers.shtrih.driver import ShtrihRegister

BITS_PER_BYTE = 10  # 8N1
START_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 120.0
TRACE_POLL_S = 0.005  # a local file; the figures come from the times written in it

# The daemon as a process, with a trace handler on the loggers the steps come from. Their own
# level is DEBUG and they do not propagate, so the daemon's log stays at its configured level.
DAEMON = """
import logging, runpy, sys
out = open(sys.argv[1], "a", buffering=1, encoding="utf-8")
class Trace(logging.Handler):
    def emit(self, record):
        out.write(f"{record.created:.6f}\\t{record.name}\\t{record.getMessage()}\\n")
for name in ("gateway.registers.shtrih.link", "gateway.engine.worker", "gateway.journal.store"):
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Trace())
    logger.propagate = False
sys.argv = ["gateway", "run", "--config", sys.argv[2]]
runpy.run_module("gateway", run_name="__main__")
"""

STEPS = ("journaled", "taken", "first byte", "N0 committed", "last answer", "ready")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(uuid: str, lines: int) -> dict[str, object]:
    """An ATOL sell request with `lines` positions at 10.00 + i kopecks each."""
    items = [
        {
            "type": "position",
            "name": f"Товар {i}",
            "price": round(10 + i / 100, 2),
            "quantity": 1,
            "amount": round(10 + i / 100, 2),
            "tax": {"type": "vat20"},
        }
        for i in range(lines)
    ]
    total = round(sum(float(str(i["amount"])) for i in items), 2)
    return {
        "uuid": uuid,
        "request": [{"type": "sell", "items": items, "payments": [{"type": "cash", "sum": total}]}],
    }


async def floors(lines: int, baud: int, tty: Path, runs: int = 5) -> tuple[float, float]:
    """(wire, driver) seconds for this receipt: the line time of the frames that print it,
    both ways; and the median time the driver alone takes to print it on the bench's own
    emulator once the daemon has stopped (same state, so the same work for the register)."""
    parsed = parse_request(json.dumps(request("floor", lines)), NameMapping())
    task = parsed.tasks[0]
    assert isinstance(task, ReceiptTask)
    # The daemon prints with its configured tax system (OSN by default); so does the floor.
    receipt = dataclasses.replace(task.receipt, taxation=fiscal.TaxationType.OSN)
    reg = ShtrihRegister(str(tty), baudrate=baud)
    took: list[float] = []
    wire = 0
    try:
        await reg.connect()
        link = reg.link
        assert link is not None
        for _ in range(runs):
            before = link.stats.bytes_in + link.stats.bytes_out
            start = time.perf_counter()
            await reg.print_receipt(receipt)
            took.append(time.perf_counter() - start)
            wire = link.stats.bytes_in + link.stats.bytes_out - before
    finally:
        await reg.close()
    return wire * BITS_PER_BYTE / baud, statistics.median(took)


@dataclass
class TraceLine:
    """One record of the daemon's trace."""

    at: float
    logger: str
    message: str


class TraceFile:
    """The daemon's trace, read as it grows."""

    def __init__(self, path: Path) -> None:
        path.touch()
        self._file: TextIO = path.open(encoding="utf-8")
        self._partial = ""
        self.lines: list[TraceLine] = []

    def read_new(self) -> None:
        """Take in the complete lines written since the last call."""
        self._partial += self._file.read()
        *complete, self._partial = self._partial.split("\n")
        for raw in complete:
            at, logger, message = raw.split("\t", 2)
            self.lines.append(TraceLine(float(at), logger, message))

    async def wait_for(self, text: str, since: int) -> int:
        """Index of the first line from `since` on containing `text`."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            for i in range(since, len(self.lines)):
                if text in self.lines[i].message:
                    return i
            since = len(self.lines)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the trace never showed {text!r}")
            await asyncio.sleep(TRACE_POLL_S)
            self.read_new()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def steps(lines: list[TraceLine], uuid: str, posted: float) -> dict[str, float]:
    """Seconds from the POST to each step of one receipt, from its stretch of the trace."""
    out: dict[str, float] = {}
    taken_at: float | None = None
    last_answer = 0.0
    wire_bytes = 0
    for line in lines:
        msg = line.message
        if line.logger.endswith("store") and msg.startswith(f"Job {uuid} queued"):
            out["journaled"] = line.at - posted
        elif line.logger.endswith("worker") and msg == f"Job {uuid} taken":
            out["taken"] = line.at - posted
            taken_at = line.at
        elif line.logger.endswith("link") and taken_at is not None and "ready" not in out:
            if msg.startswith(("-> ", "<- ")):
                wire_bytes += len(msg) // 2 - 1  # "-> " and the bytes in hex
            if msg.startswith("-> ") and "first byte" not in out:
                out["first byte"] = line.at - posted
            elif msg.startswith("<- "):
                last_answer = line.at - posted
        elif line.logger.endswith("store") and msg.startswith(f"Job {uuid}: queued -> in_progress"):
            out["N0 committed"] = line.at - posted
        elif line.logger.endswith("store") and msg.startswith(f"Job {uuid}: in_progress -> done"):
            out["ready"] = line.at - posted
            out["last answer"] = last_answer
    if "ready" not in out:
        raise RuntimeError(f"{uuid}: the trace does not show it done")
    out["wire bytes"] = wire_bytes
    return out  # a daemon that logs less (an older one) leaves steps out


async def one_receipt(
    session: aiohttp.ClientSession, api: str, trace: TraceFile, uuid: str, lines: int
) -> dict[str, float]:
    """The steps of one receipt; checks the API reports it `ready`."""
    trace.read_new()
    first = len(trace.lines)
    posted = time.time()
    async with session.post(f"{api}/requests", json=request(uuid, lines)) as resp:
        if resp.status != 201:
            raise RuntimeError(f"POST {uuid}: HTTP {resp.status}: {await resp.text()}")
    done = await trace.wait_for(f"Job {uuid}: in_progress -> done", first)
    async with session.get(f"{api}/requests/{uuid}") as resp:
        body = await resp.json()
    status = body["results"][0]["status"]
    if status != "ready":
        raise RuntimeError(f"{uuid} ended {status}: {body}")
    return steps(trace.lines[first : done + 1], uuid, posted)


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * share))]


async def wait_up(url: str, session: aiohttp.ClientSession) -> None:
    """Until the URL answers (the daemon is up)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the daemon did not start; run it by hand with the same config to see why")


async def run_daemon_side(
    port: int, trace_path: Path, count: int, pause_s: float
) -> dict[int, list[dict[str, float]]]:
    """Warm up (opens the shift), then `count` receipts of each size, one at a time."""
    api = f"http://127.0.0.1:{port}/api/v2"
    out: dict[int, list[dict[str, float]]] = {}
    trace = TraceFile(trace_path)
    try:
        async with aiohttp.ClientSession() as session:
            await wait_up(f"http://127.0.0.1:{port}/health", session)
            await one_receipt(session, api, trace, "warm-up", 1)
            for lines in (1, 20):
                out[lines] = []
                for i in range(count):
                    # The status page reads the register after each job; a till's next
                    # customer comes later than that.
                    await asyncio.sleep(pause_s)
                    out[lines].append(
                        await one_receipt(session, api, trace, f"e2e-{lines}-{i}", lines)
                    )
    finally:
        trace.close()
    return out


def main() -> None:
    """Emulator and daemon as processes; print p50/p95 next to the floors, and the steps."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=30, help="receipts of each size")
    parser.add_argument("--baudrate", type=int, default=115200)
    parser.add_argument(
        "--pause-ms", type=float, default=100.0, help="between one receipt's ready and the next"
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="e2e-bench-"))
    tty = base / "register.tty"
    emulator_cmd = [sys.executable, "-m", "gateway", "emulator", "--pty", "--link", str(tty)]
    emulator_cmd += ["--state", str(base / "emulator.state"), "--baudrate", str(args.baudrate)]
    emulator = subprocess.Popen([*emulator_cmd, "--pace"])
    port = free_port()
    config = base / "gateway.yaml"
    config.write_text(
        f"state_dir: {base / 'state'}\nlog_level: warning\n"
        f"register:\n  port: {tty}\n  baudrate: {args.baudrate}\n"
        f"http:\n  listen: 127.0.0.1:{port}\nweb:\n  enabled: false\n",
        encoding="utf-8",
    )
    trace_path = base / "trace.tsv"
    daemon = None
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not tty.exists():
            if time.monotonic() > deadline or emulator.poll() is not None:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.05)
        daemon = subprocess.Popen([sys.executable, "-c", DAEMON, str(trace_path), str(config)])
        try:
            pause_s = args.pause_ms / 1000
            results = asyncio.run(run_daemon_side(port, trace_path, args.count, pause_s))
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
        floor = {lines: asyncio.run(floors(lines, args.baudrate, tty)) for lines in results}
    finally:
        for proc in (daemon, emulator):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    print(
        f"emulator on a pty at {args.baudrate} baud (8N1), daemon as a process, {args.count} "
        f"receipts of each size one at a time; {os.cpu_count()} CPUs; trace {trace_path}"
    )
    for lines, runs in results.items():
        ms = sorted(r["ready"] * 1000 for r in runs)
        wire_ms, driver_ms = (x * 1000 for x in floor[lines])
        p50, p95 = statistics.median(ms), percentile(ms, 0.95)
        print(
            f"{lines:>2}-item receipt: POST->ready p50 {p50:7.1f} ms  p95 {p95:7.1f} ms"
            f"  max {ms[-1]:7.1f} ms | wire floor {wire_ms:6.1f} ms"
            f" (p50 {p50 / wire_ms:4.2f}x, p95 {p95 / wire_ms:4.2f}x)"
            f" | driver alone {driver_ms:6.1f} ms (p50 {p50 / driver_ms:4.2f}x)"
        )
        own_ms = (
            statistics.median(r["wire bytes"] for r in runs) * BITS_PER_BYTE / args.baudrate * 1000
        )
        print(f"    daemon's wire {own_ms:.1f} ms (p50 {p50 / own_ms:4.2f}x)")
        parts, before = [], 0.0
        for s in STEPS:
            seen = [r[s] * 1000 for r in runs if s in r]
            if seen:
                median = statistics.median(seen)
                parts.append(f"{s} {median:.1f} (+{median - before:.1f})")
                before = median
        print("    median ms from POST: " + " | ".join(parts))


if __name__ == "__main__":
    main()
