"""POST -> ready latency through the whole daemon, next to the wire-time floor of the same frames.

The emulator runs as its own process on a real pty, paced at the line speed (default 115200
baud, 8N1); the daemon runs as another process, pointed at the pty, exactly as on the box.
Receipts are posted one at a time (a shop's till waits for each) and the result is polled
until `ready`. The floor is the same receipt printed by the driver alone against a paced
emulator: the bytes both ways of the commands that print it, × 10 bits / baud. The daemon adds
its journal commits (fsync), the exactly-once bookkeeping (reading the last document number
before and the document after) and the poll interval.

    .venv/bin/python bench/e2e.py [--count 30] [--baudrate 115200] [--poll-ms 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from gateway.atol.tasks import NameMapping, ReceiptTask, parse_request
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.shtrih.driver import ShtrihRegister

BITS_PER_BYTE = 10  # 8N1
START_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 120.0


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


async def wire_floor(lines: int, baud: int, base: Path) -> float:
    """Seconds the line needs for the frames that print this receipt, both ways."""
    parsed = parse_request(json.dumps(request("floor", lines)), NameMapping())
    task = parsed.tasks[0]
    assert isinstance(task, ReceiptTask)
    server = EmulatorServer(base / f"floor-{lines}.state", baudrate=baud, pace=True)
    reg = ShtrihRegister(await server.start_pty(), baudrate=baud)
    try:
        await reg.connect()
        await reg.open_shift()
        link = reg.link
        assert link is not None
        before = link.stats.bytes_in + link.stats.bytes_out
        await reg.print_receipt(task.receipt)
        wire = link.stats.bytes_in + link.stats.bytes_out - before
    finally:
        await reg.close()
        await server.close()
    return wire * BITS_PER_BYTE / baud


async def wait_for(predicate_url: str, session: aiohttp.ClientSession) -> None:
    """Until the URL answers (the daemon is up)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            async with session.get(predicate_url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the daemon did not start; run it by hand with the same config to see why")


async def one_receipt(
    session: aiohttp.ClientSession, api: str, uuid: str, lines: int, poll_s: float
) -> float:
    """Seconds from POST to the GET that first shows `ready`."""
    start = time.perf_counter()
    async with session.post(f"{api}/requests", json=request(uuid, lines)) as resp:
        if resp.status != 201:
            raise RuntimeError(f"POST {uuid}: HTTP {resp.status}: {await resp.text()}")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        async with session.get(f"{api}/requests/{uuid}") as resp:
            body = await resp.json()
        status = body["results"][0]["status"]
        if status == "ready":
            return time.perf_counter() - start
        if status not in ("wait", "inProgress"):
            raise RuntimeError(f"{uuid} ended {status}: {body}")
        await asyncio.sleep(poll_s)
    raise RuntimeError(f"{uuid} not ready after {READY_TIMEOUT_S} s")


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * share))]


async def run_daemon_side(port: int, count: int, poll_s: float) -> dict[int, list[float]]:
    """Warm up (opens the shift), then `count` receipts of each size, one at a time."""
    api = f"http://127.0.0.1:{port}/api/v2"
    out: dict[int, list[float]] = {}
    async with aiohttp.ClientSession() as session:
        await wait_for(f"http://127.0.0.1:{port}/health", session)
        await one_receipt(session, api, "warm-up", 1, poll_s)
        for lines in (1, 20):
            out[lines] = [
                await one_receipt(session, api, f"e2e-{lines}-{i}", lines, poll_s)
                for i in range(count)
            ]
    return out


def main() -> None:
    """Emulator and daemon as processes; print p50/p95 next to the floors."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=30, help="receipts of each size")
    parser.add_argument("--baudrate", type=int, default=115200)
    parser.add_argument("--poll-ms", type=float, default=5.0, help="GET poll interval")
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
    daemon = None
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not tty.exists():
            if time.monotonic() > deadline or emulator.poll() is not None:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.05)
        daemon = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(config)])
        results = asyncio.run(run_daemon_side(port, args.count, args.poll_ms / 1000))
    finally:
        for proc in (daemon, emulator):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    floors = {lines: asyncio.run(wire_floor(lines, args.baudrate, base)) for lines in results}
    print(
        f"emulator on a pty at {args.baudrate} baud (8N1), daemon as a process, {args.count} "
        f"receipts of each size one at a time, GET polled every {args.poll_ms:g} ms; "
        f"{os.cpu_count()} CPUs"
    )
    for lines, lat in results.items():
        ms = sorted(x * 1000 for x in lat)
        floor_ms = floors[lines] * 1000
        p50 = statistics.median(ms)
        print(
            f"{lines:>2}-item receipt: POST->ready p50 {p50:7.1f} ms  p95 {percentile(ms, 0.95):7.1f} ms"
            f"  max {ms[-1]:7.1f} ms | wire floor {floor_ms:6.1f} ms (p50 {p50 / floor_ms:4.2f}x)"
        )


if __name__ == "__main__":
    main()
