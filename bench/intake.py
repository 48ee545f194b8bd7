"""Durable jobs/s accepted over HTTP, next to a raw sqlite3 insert+commit loop on the same disk.

Starts the real daemon as a process with its register port pointing nowhere, so the
worker only waits and every figure is acceptance alone: parse, validate, commit
(WAL, synchronous=FULL), answer 201. Concurrent submissions share a commit (group commit),
so the daemon can beat a loop that commits every row alone. The raw loop runs before and
after the HTTP run (the disk's speed drifts when others use it); their mean is the reference.

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

from gateway.journal import Journal

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


def raw_sqlite(path: Path, count: int, tag: str) -> float:
    """Inserts/s of one-row transactions with the journal's durability settings."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE IF NOT EXISTS jobs (uuid TEXT UNIQUE, body TEXT)")
    body = json.dumps([RECEIPT])
    start = time.perf_counter()
    for i in range(count):
        con.execute("BEGIN")
        con.execute("INSERT INTO jobs VALUES (?, ?)", (f"{tag}-{i}", body))
        con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    return count / elapsed


REQUEST_TIMEOUT_S = 30.0


def post_bytes(port: int, uuid: str) -> bytes:
    """One POST on the wire, built in advance: the client spends no time serialising."""
    body = json.dumps({"uuid": uuid, "request": [RECEIPT]}, ensure_ascii=False).encode()
    head = (
        f"POST /api/v2/requests HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def post_all(port: int, count: int, concurrency: int) -> tuple[float, list[float]]:
    """POST `count` jobs over `concurrency` keep-alive connections; jobs/s and latencies.

    A bare HTTP/1.1 client (the requests built in advance, the answers read by length): on
    a small machine the client shares the CPU with the daemon, and a full client library
    would set the pace instead of the daemon.
    """
    requests = [post_bytes(port, f"bench-{i}") for i in range(count)]
    latencies: list[float] = []
    todo = list(reversed(range(count)))

    async def client() -> None:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while todo:
                i = todo.pop()
                t0 = time.perf_counter()
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    writer.write(requests[i])
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = next(
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    )
                    answer = await reader.readexactly(length)
                if not head.startswith(b"HTTP/1.1 201"):
                    raise RuntimeError(f"POST {i}: {head.splitlines()[0]!r}: {answer!r}")
                latencies.append(time.perf_counter() - t0)
        finally:
            writer.close()

    start = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for n in range(concurrency):
            tg.create_task(client(), name=f"client-{n}")
    elapsed = time.perf_counter() - start
    return count / elapsed, latencies


async def journal_only(path: Path, count: int, concurrency: int) -> float:
    """Jobs/s of `Journal.submit` called in-process by `concurrency` tasks: no HTTP."""
    journal = await Journal.open(path)
    body = json.dumps([RECEIPT])
    todo = list(range(count))

    async def submitter() -> None:
        while todo:
            await journal.submit(f"direct-{todo.pop()}", body, 1, source="http")

    start = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as tg:
            for i in range(concurrency):
                tg.create_task(submitter(), name=f"submitter-{i}")
    finally:
        await journal.close()
    return count / (time.perf_counter() - start)


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

    raw_before = raw_sqlite(base / "raw.sqlite3", args.jobs, "before")

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
    direct = asyncio.run(journal_only(base / "direct.sqlite3", args.jobs, args.concurrency))
    raw_after = raw_sqlite(base / "raw.sqlite3", args.jobs, "after")
    raw = (raw_before + raw_after) / 2
    lat_ms = sorted(x * 1000 for x in lat)
    print(f"jobs: {args.jobs}, concurrency: {args.concurrency}, disk: {base}")
    print(
        f"raw sqlite3 insert+commit (WAL, synchronous=FULL): {raw:8.0f} rows/s"
        f" (before {raw_before:.0f}, after {raw_after:.0f})"
    )
    print(
        f"HTTP POST -> committed -> 201:                      {rate:8.0f} jobs/s ({rate / raw:.2f}x raw)"
    )
    print(
        f"Journal.submit in-process, same concurrency:         {direct:8.0f} jobs/s"
        f" ({direct / raw:.2f}x raw)"
    )
    print(
        f"POST latency ms: p50 {statistics.median(lat_ms):.1f}  p95 {lat_ms[int(len(lat_ms) * 0.95)]:.1f}"
        f"  max {lat_ms[-1]:.1f}"
    )


if __name__ == "__main__":
    main()
