"""Chaos: the MQTT broker is killed and restarted during a flow of receipts.

A real Mosquitto (mutual TLS, the ACL; sessions kept on disk), the daemon as a process with
its built-in emulator, and the project's office client sending receipts as commands, each
re-sent until its result comes (as `fiscal-gateway send --wait` does). Meanwhile the broker
is SIGKILLed at random moments and started again on the same port and store. At the end
every command must be printed exactly once and the office must hold every result.

    .venv/bin/python -m bench.chaos.broker_restarts [--receipts 60] [--restarts 10] [--seed 1]

No root needed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.chaos.common import Figures, receipt
from gateway.domain.errors import GatewayError
from gateway.ingress.mqtt import LinkSettings
from gateway.office.client import Office
from tests.support.broker import Broker, Pki
from tests.support.daemon import DaemonProcess

PREFIX = "fiscal/v1"
BOX = "shop-1"


async def restarter(broker: Broker, restarts: int, rng: random.Random, figures: Figures) -> None:
    for _ in range(restarts):
        await asyncio.sleep(rng.uniform(1.0, 4.0))
        broker.kill(signal.SIGKILL)
        figures.inputs["broker killed"] += 1
        await asyncio.sleep(rng.uniform(0.2, 2.0))
        await asyncio.to_thread(broker.start)


async def flow(
    office: Office, receipts: int, rng: random.Random, figures: Figures
) -> dict[str, str]:
    """Send every receipt, a few at a time; the result status by uuid (or why none came)."""
    outcome: dict[str, str] = {}
    gate = asyncio.Semaphore(4)

    async def one(uuid: str) -> None:
        async with gate:
            try:
                out = await office.send(BOX, receipt(uuid, 2), timeout_s=300, resend_s=2.0)
            except (TimeoutError, GatewayError) as err:
                outcome[uuid] = f"no result: {err!r}"
                return
            figures.inputs["command sends"] += out.sends
            results = (out.result or {}).get("results") or [{}]
            outcome[uuid] = str(results[0].get("status"))

    async with asyncio.TaskGroup() as tg:
        for i in range(receipts):
            tg.create_task(one(f"mq-{i:03d}"), name=f"send-{i}")
            figures.inputs["receipts"] += 1
            await asyncio.sleep(rng.uniform(0.0, 0.3))
    return outcome


async def chaos(
    home: Path, receipts: int, restarts: int, seed: int
) -> tuple[Figures, DaemonProcess]:
    rng = random.Random(seed)
    figures = Figures(f"broker restarts (seed {seed})")
    pki = Pki(home / "pki")
    (home / "broker").mkdir()
    broker = Broker(home / "broker", pki)
    broker.start()
    daemon = DaemonProcess(home).with_mqtt(broker, pki, keepalive_s=5)
    cert, key = pki.issue("office")
    settings = LinkSettings(
        host="127.0.0.1", port=broker.port, client_id="office", tls=True,
        ca_file=pki.ca_file, cert_file=cert, key_file=key, keepalive_s=5,
    )  # fmt: skip
    office = Office(settings, PREFIX)
    try:
        daemon.start()
        async with asyncio.TaskGroup() as tg:
            link = tg.create_task(office.run(), name="office")
            async with asyncio.timeout(30):
                await office.link.connected.wait()
            kills = tg.create_task(restarter(broker, restarts, rng, figures), name="restarter")
            outcome = await flow(office, receipts, rng, figures)
            await kills
            link.cancel()
        figures.notes.append(f"results at the office: {dict(Counter(outcome.values()))}")
        figures.notes += [f"  {u}: {o}" for u, o in outcome.items() if o != "ready"][:10]
        if not daemon.alive():
            figures.crashes.append("the daemon died")
    except Exception as err:  # a chaos run reports what broke instead of stopping silent
        figures.crashes.append(f"run aborted: {err!r}")
    finally:
        daemon.stop()
        broker.stop()
    printed = Counter(i["name"].split(" #")[0] for d in daemon.tape() for i in d.get("items", []))
    twice = {u: n // 2 for u, n in printed.items() if n > 2}  # two lines a receipt
    figures.notes.append(f"uuids printed more than once: {twice}")
    if twice:
        figures.crashes.append("printed twice")
    return figures, daemon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receipts", type=int, default=60)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="chaos-broker-"))
    figures, daemon = asyncio.run(chaos(home, args.receipts, args.restarts, args.seed))
    found = figures.report(daemon, daemon.tape())
    with contextlib.suppress(OSError):
        shutil.rmtree(home)
    sys.exit(1 if found.wrong or figures.crashes else 0)


if __name__ == "__main__":
    main()
