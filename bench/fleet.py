"""Fleet benchmark: one Mosquitto (mutual TLS, the ACL), N gateways each with its emulator.

The office sends receipts at a set total rate, round-robin over the boxes, and times each
from publish to its result. Prints round-trip p50/p95/p99 and every gateway's RSS.

    python -m bench.fleet --boxes 50 --rate 10 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gateway.ingress.mqtt import LinkSettings
from gateway.office.client import Office
from tests.integration.test_mqtt import sell
from tests.support.broker import Broker, Pki, free_port


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_box(root: Path, broker: Broker, pki: Pki, box: str) -> subprocess.Popen[bytes]:
    cert, key = pki.issue(box)
    cfg = root / f"{box}.yaml"
    cfg.write_text(
        f"""box_id: {box}
state_dir: {root / box}
log_level: warning
http:
  listen: 127.0.0.1:{free_port()}
web:
  enabled: false
mqtt:
  enabled: true
  host: 127.0.0.1
  port: {broker.port}
  telemetry_interval_s: 60
  tls:
    ca_file: {pki.ca_file}
    cert_file: {cert}
    key_file: {key}
""",
        encoding="utf-8",
    )
    log = open(root / f"{box}.log", "wb")  # noqa: SIM115 - handed to the process
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(cfg)], stdout=log, stderr=log
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(args: argparse.Namespace, root: Path) -> None:
    pki = Pki(root / "pki")
    (root / "broker").mkdir()
    broker = Broker(root / "broker", pki)
    broker.start()
    boxes = [f"bench-{i:03d}" for i in range(args.boxes)]
    procs: list[subprocess.Popen[bytes]] = []
    cert, key = pki.issue("office")
    office = Office(
        LinkSettings(host="127.0.0.1", port=broker.port, client_id="office", tls=True,
                     ca_file=pki.ca_file, cert_file=cert, key_file=key, clean_start=True)
    )  # fmt: skip
    office_task = asyncio.create_task(office.run())
    try:
        t0 = time.monotonic()
        for box in boxes:
            procs.append(start_box(root, broker, pki, box))
        async with asyncio.timeout(300):
            while sum(office.status.get(b, {}).get("state") == "online" for b in boxes) < len(
                boxes
            ):
                await asyncio.sleep(0.2)
        print(f"{len(boxes)} gateways online in {time.monotonic() - t0:.1f} s")

        latencies: list[float] = []
        failures = 0

        async def one(box: str, uuid: str) -> None:
            nonlocal failures
            start = time.monotonic()
            out = await office.send(box, sell(uuid), timeout_s=120)
            if out.result and out.result["results"][0]["status"] == "ready":
                latencies.append((time.monotonic() - start) * 1000)
            else:
                failures += 1

        sends: list[asyncio.Task[None]] = []
        total = int(args.rate * args.seconds)
        t1 = time.monotonic()
        for n in range(total):
            await asyncio.sleep(max(0.0, t1 + n / args.rate - time.monotonic()))
            sends.append(asyncio.create_task(one(boxes[n % len(boxes)], f"f-{n:06d}")))
        await asyncio.gather(*sends)
        wall = time.monotonic() - t1
        rss = [rss_mb(p.pid) for p in procs]
        assert broker.proc is not None
        print(f"commands {total} at {args.rate:g}/s over {wall:.1f} s; failed {failures}")
        print(
            f"round trip publish -> result: p50 {pct(latencies, 0.5):.1f} ms, "
            f"p95 {pct(latencies, 0.95):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms, "
            f"max {max(latencies):.1f} ms"
        )
        print(
            f"gateway RSS: min {min(rss):.1f} MB, median {statistics.median(rss):.1f} MB, "
            f"max {max(rss):.1f} MB; broker RSS {rss_mb(broker.proc.pid):.1f} MB"
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(20)
        office_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await office_task
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--boxes", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0, help="commands per second, in all")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleet-") as tmp:
        asyncio.run(bench(args, Path(tmp)))


if __name__ == "__main__":
    main()
