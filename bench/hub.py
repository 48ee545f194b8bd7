"""Hub benchmark: ATOL Online orders through one or two hub processes to real or simulated boxes.

Real parts: Mosquitto under the TLS ACL, the hub as `fiscal-gateway hub run` processes
(SQLite for one, a throw-away PostgreSQL for two), the CRM's callback endpoint on aiohttp.
Boxes are either real (the daemon on its emulator, signed commands required) or a
SIMULATION: one light MQTT client per box that checks the signature, acks and answers as a
box does, without a journal or a register (`--simulated N`, run in a child process).

Prints orders/s accepted, p50/p95/p99 of order -> result (committed at the hub) and order ->
callback (arrived at the CRM), and each hub process's RSS.

    python -m bench.hub --boxes 20 --hubs 1 --orders 400
    python -m bench.hub --simulated 1000 --hubs 2 --orders 3000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from gateway.hub.store import Store
from gateway.ingress.mqtt import LinkSettings, Message, MqttLink, Will
from gateway.ingress.signing import CommandVerifier
from gateway.ingress.topics import Topics
from tests.hub.support import (
    AtolClient,
    CallbackReceiver,
    HubProcess,
    OfficeKey,
    Postgres,
    atol_sell,
    signed_box,
)
from tests.support.broker import Broker, Pki
from tests.support.daemon import DaemonProcess

CONCURRENCY = 32  # CRM calls in flight at once


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the simulation ------------------------------------------------------------------------


class SimulatedBox:
    """NOT a box: an MQTT client that answers commands as a box does (ack, then result).

    It verifies the office's signature like a box and keeps the uuids it has seen, so a
    resend is answered `duplicate` with the same result; nothing is journalled or printed.
    """

    def __init__(self, box_id: str, settings: LinkSettings, public_key: bytes) -> None:
        self.box_id = box_id
        self.topics = Topics("fiscal/v1", box_id)
        online = json.dumps({"state": "online", "boot_id": "sim"}).encode()
        self.online = online
        will = Will(self.topics.status, json.dumps({"state": "offline", "boot_id": "sim"}).encode())
        self.link = MqttLink(
            dataclasses.replace(
                settings, client_id=box_id, will=will, subscriptions=((self.topics.cmd, 1),)
            ),
            on_connected=self._announce,
        )
        self.verifier = CommandVerifier(box_id, [public_key], max_age_s=86400)
        self.results: dict[str, dict[str, Any]] = {}
        self.number = 0

    async def _announce(self) -> None:
        self.link.publish_nowait(self.topics.status, self.online, retain=True)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.link.run(), name=f"sim-{self.box_id}-link")
            tg.create_task(self._serve(), name=f"sim-{self.box_id}-serve")

    async def _serve(self) -> None:
        while True:
            message = await self.link.messages.get()
            with contextlib.suppress(Exception):
                await self._answer(message)
            self.link.ack(message)

    async def _answer(self, message: Message) -> None:
        doc = json.loads(message.payload)
        self.verifier.verify(doc, now=dt.datetime.now(dt.UTC), clock_trusted=True)
        uuid = doc["uuid"]
        known = uuid in self.results
        if not known:
            self.number += 1
            self.results[uuid] = {
                "uuid": uuid,
                "results": [
                    {
                        "status": "ready",
                        "result": {
                            "fiscalParams": {
                                "fiscalDocumentNumber": self.number,
                                "fiscalDocumentSign": str(random.randrange(10**9)),
                                "fiscalDocumentDateTime": dt.datetime.now().isoformat(
                                    timespec="seconds"
                                ),
                                "fiscalReceiptNumber": self.number,
                                "shiftNumber": 1,
                                "fnNumber": "9999078900000000",
                                "registrationNumber": "0000000001000000",
                                "total": 45.5,
                                "fnsUrl": "www.nalog.gov.ru",
                            }
                        },
                        "error": None,
                    }
                ],
            }
        ack = {"uuid": uuid, "status": "duplicate" if known else "accepted", "number": self.number}
        futures = [
            self.link.publish_nowait(self.topics.ack(uuid), json.dumps(ack).encode()),
            self.link.publish_nowait(
                self.topics.result(uuid), json.dumps(self.results[uuid]).encode()
            ),
        ]
        async with asyncio.timeout(30):
            await asyncio.gather(*futures)


async def simulate(args: argparse.Namespace) -> None:
    """The child process: `--simulate-from DIR` runs N simulated boxes until killed."""
    root = Path(args.simulate_from)
    spec = json.loads((root / "sim.json").read_text())
    public = base64.b64decode(spec["public_key"])
    sims = []
    for box_id in spec["boxes"]:
        settings = LinkSettings(
            host="127.0.0.1",
            port=spec["port"],
            client_id=box_id,
            tls=True,
            ca_file=Path(spec["ca"]),
            cert_file=Path(spec["certs"]) / f"{box_id}.crt",
            key_file=Path(spec["certs"]) / f"{box_id}.key",
            session_expiry_s=3600,
        )
        sims.append(SimulatedBox(box_id, settings, public))
    async with asyncio.TaskGroup() as tg:
        for sim in sims:
            tg.create_task(sim.run(), name=f"sim-{sim.box_id}")
            await asyncio.sleep(0.002)  # a fleet does not connect in one instant


# --- the bench -----------------------------------------------------------------------------


async def bench(args: argparse.Namespace, root: Path) -> None:
    pki = Pki(root / "pki")
    (root / "broker").mkdir()
    broker = Broker(root / "broker", pki)
    broker.start()
    key = OfficeKey.make(root / "office-ed25519.pem")
    pg: Postgres | None = None
    procs: list[DaemonProcess] = []
    sim: subprocess.Popen[bytes] | None = None
    hubs: list[HubProcess] = []
    simulated = args.simulated > 0
    count = args.simulated if simulated else args.boxes
    box_ids = [f"{'sim' if simulated else 'box'}-{i:04d}" for i in range(count)]
    groups = {f"shop-{i:04d}": b for i, b in enumerate(box_ids)}
    try:
        t0 = time.monotonic()
        if simulated:
            for box_id in box_ids:
                pki.issue(box_id)
            spec = {
                "boxes": box_ids,
                "port": broker.port,
                "ca": str(pki.ca_file),
                "certs": str(pki.root),
                "public_key": key.public_b64,
            }
            (root / "sim.json").write_text(json.dumps(spec))
            log = open(root / "sim.log", "wb")  # noqa: SIM115 - handed to the process
            sim = subprocess.Popen(
                [sys.executable, "-m", "bench.hub", "--simulate-from", str(root)],
                stdout=log,
                stderr=log,
            )
        else:
            procs = [signed_box(root / "boxes", b, broker, pki, key) for b in box_ids]
            for box in procs:
                box.start(wait=False)
            for box in procs:
                await asyncio.to_thread(box.wait_ready)
        if args.hubs > 1:
            pg = Postgres()
            pg.start()
            database = pg.url
        else:
            database = f"sqlite:///{root / 'hub' / 'hub.sqlite3'}"
        for n in range(args.hubs):
            hub = HubProcess(root / "hub", f"hub-{n + 1}", database, broker, pki, key, groups)
            hub.log_level = "warning"
            hub.writeback = "{retry_min_s: 0.5, retry_max_s: 5, lease_s: 30}"
            hubs.append(hub)
            await asyncio.to_thread(hub.start)
        store = await Store.open(database)
        async with asyncio.timeout(600):
            while len(await store.fleet.online()) < count:
                await asyncio.sleep(0.5)
        print(
            f"{count} {'SIMULATED' if simulated else 'real'} boxes online, {args.hubs} hub "
            f"process(es) on {'PostgreSQL' if pg else 'SQLite'}, in {time.monotonic() - t0:.1f} s"
        )

        async with aiohttp.ClientSession() as session, CallbackReceiver() as callbacks:
            clients = [AtolClient(session, h.url) for h in hubs]
            await clients[0].login()
            for c in clients[1:]:
                c.token = clients[0].token
            started: dict[str, float] = {}
            accept_ms: list[float] = []
            queue: asyncio.Queue[int] = asyncio.Queue()
            for n in range(args.orders):
                queue.put_nowait(n)

            async def worker(w: int) -> None:
                client = clients[w % len(clients)]
                while not queue.empty():
                    n = queue.get_nowait()
                    group = f"shop-{n % count:04d}"
                    doc = atol_sell(f"b-{n:06d}", f"Товар {n}", callback=callbacks.url)
                    t = time.monotonic()
                    status, body = await client.sell(group, doc)
                    if status != 200:
                        raise RuntimeError(f"{status} {body}")
                    accept_ms.append((time.monotonic() - t) * 1000)
                    started[body["uuid"]] = time.time()

            t1 = time.monotonic()
            await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
            intake_s = time.monotonic() - t1
            async with asyncio.timeout(900):
                while len(callbacks.counts) < args.orders:
                    await asyncio.sleep(0.2)
            wall = time.monotonic() - t1
            arrived = {u: t for t, u in _wall_arrivals(callbacks, t1)}
            rss = [(rss_mb(h.proc.pid), rss_mb(h.proc.pid, "VmHWM")) for h in hubs if h.proc]

        result_ms: list[float] = []
        callback_ms: list[float] = []
        for uuid, start in started.items():
            order = await store.orders.get(uuid)
            if order.finished_ms is not None:
                result_ms.append(order.finished_ms - start * 1000)
            callback_ms.append((arrived[uuid] - start) * 1000)
        await store.close()
        repeats = sum(n - 1 for n in callbacks.counts.values())
        print(
            f"orders {args.orders}: accepted at {args.orders / intake_s:.0f}/s "
            f"(POST -> 200 p50 {pct(accept_ms, 0.5):.1f} ms, p99 {pct(accept_ms, 0.99):.1f} ms); "
            f"all called back in {wall:.1f} s ({args.orders / wall:.0f}/s); repeated callbacks {repeats}"
        )
        for name, values in (("order -> result", result_ms), ("order -> callback", callback_ms)):
            print(
                f"{name}: p50 {pct(values, 0.5):.0f} ms, p95 {pct(values, 0.95):.0f} ms, "
                f"p99 {pct(values, 0.99):.0f} ms, max {max(values):.0f} ms"
            )
        for hub, (now_mb, peak_mb) in zip(hubs, rss, strict=False):
            print(f"{hub.name} RSS {now_mb:.0f} MB (peak {peak_mb:.0f} MB)")
        if sim is not None:
            print(f"simulation process RSS {rss_mb(sim.pid):.0f} MB")
    finally:
        for hub in hubs:
            hub.stop()
        if sim is not None:
            sim.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                sim.wait(20)
        for box in procs:
            box.stop()
        if pg is not None:
            pg.stop()
        broker.stop()


def _wall_arrivals(callbacks: CallbackReceiver, t1: float) -> list[tuple[float, str]]:
    """Callback arrivals in wall-clock time (the receiver keeps monotonic times)."""
    offset = time.time() - time.monotonic()
    return [(t + offset, u) for t, u in callbacks.arrivals if t >= t1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--boxes", type=int, default=20, help="real boxes (daemon + emulator)")
    parser.add_argument("--simulated", type=int, default=0, help="SIMULATED boxes instead")
    parser.add_argument("--hubs", type=int, default=1, choices=(1, 2))
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--dir", type=Path, help="keep logs and state here (an empty folder)")
    parser.add_argument("--simulate-from", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.simulate_from:
        asyncio.run(simulate(args))
        return
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(bench(args, args.dir))
        return
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        asyncio.run(bench(args, Path(tmp)))


if __name__ == "__main__":
    main()
