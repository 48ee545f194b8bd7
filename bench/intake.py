"""Durable jobs/s accepted over HTTP, next to a raw sqlite3 insert+commit loop on the same disk.

Starts the real daemon as a process with its register port pointing nowhere, so the
worker only waits and every figure is acceptance alone: parse, validate, commit
(WAL, synchronous=FULL), answer 201.

    .venv/bin/python bench/intake.py [--jobs 2000] [--concurrency 8] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

RECEIPT = {
    "type": "sell",
    "items": [
        {
            "type": "position",
            "name": "Хлеб",
            "price": 45.5,
            "quantity": 1,
            "amount": 45.5,
            "tax": {"type": "vat10"},
        }
    ],
    "payments": [{"type": "cash", "sum": 50}],
}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raw_sqlite(path: Path, count: int) -> float:
    """Inserts/s of one-row transactions with the journal's durability settings."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE IF NOT EXISTS jobs (uuid TEXT UNIQUE, body TEXT)")
    body = json.dumps([RECEIPT])
    start = time.perf_counter()
    for i in range(count):
        con.execute("BEGIN")
        con.execute("INSERT INTO jobs VALUES (?, ?)", (f"raw-{i}", body))
        con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    return count / elapsed


async def post_all(port: int, count: int, concurrency: int) -> tuple[float, list[float]]:
    """POST `count` jobs with `concurrency` clients; returns jobs/s and latencies."""
    url = f"http://127.0.0.1:{port}/api/v2/requests"
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            t0 = time.perf_counter()
            async with session.post(url, json={"uuid": f"bench-{i}", "request": [RECEIPT]}) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"POST {i}: HTTP {resp.status}: {await resp.text()}")
            latencies.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return count / elapsed, latencies


async def wait_http(port: int, timeout_s: float = 30.0) -> None:
    """Until /health answers."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{port}/health"):
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the daemon did not start")


def main() -> None:
    """Run both measurements and print them side by side."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the files go (default: a temp dir)"
    )
    args = parser.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="intake-"))
    base.mkdir(parents=True, exist_ok=True)

    raw = raw_sqlite(base / "raw.sqlite3", args.jobs)

    port = free_port()
    config = base / "gateway.yaml"
    config.write_text(
        f"state_dir: {base / 'state'}\n"
        f"log_level: warning\n"
        f"register:\n  port: tcp://127.0.0.1:{free_port()}\n"
        f"http:\n  listen: 127.0.0.1:{port}\n"
        f"web:\n  enabled: false\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(config)])
    try:
        asyncio.run(wait_http(port))
        rate, lat = asyncio.run(post_all(port, args.jobs, args.concurrency))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lat_ms = sorted(x * 1000 for x in lat)
    print(f"jobs: {args.jobs}, concurrency: {args.concurrency}, disk: {base}")
    print(f"raw sqlite3 insert+commit (WAL, synchronous=FULL): {raw:8.0f} rows/s")
    print(f"HTTP POST -> committed -> 201:                      {rate:8.0f} jobs/s")
    print(
        f"POST latency ms: p50 {statistics.median(lat_ms):.1f}  p95 {lat_ms[int(len(lat_ms) * 0.95)]:.1f}"
        f"  max {lat_ms[-1]:.1f}"
    )


if __name__ == "__main__":
    main()
