"""The daemon as a process against a real Mosquitto: kills, restarts, Last Will, office CLI.

Exactly-once is read off the built-in emulator's paper tape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.office.client import Office
from tests.integration.test_mqtt import PREFIX, office_for, sell, wait_until
from tests.support.broker import Broker, Pki
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(240)


class Daemon(DaemonProcess):
    """`python -m gateway run` with MQTT on; its emulator's tape in state_dir."""

    def __init__(self, tmp_path: Path, broker: Broker, pki: Pki, box: str = "shop-1") -> None:
        super().__init__(tmp_path, box)
        self.with_mqtt(broker, pki, keepalive_s=5)

    def start(self, *, wait: bool = False) -> None:
        super().start(wait=wait)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.stop(sig)

    def printed(self) -> Counter[str]:
        return Counter(
            item["name"].split(" ", 1)[1] for doc in self.tape() for item in doc.get("items", [])
        )


@contextlib.asynccontextmanager
async def daemon(tmp_path: Path, broker: Broker, pki: Pki) -> AsyncIterator[Daemon]:
    d = Daemon(tmp_path, broker, pki)
    try:
        yield d
    finally:
        d.kill(signal.SIGTERM)


async def wait_online(office: Office, box: str, not_boot: str | None = None) -> str:
    def online() -> bool:
        st = office.status.get(box, {})
        return st.get("state") == "online" and st.get("boot_id") != not_boot

    await wait_until(online, 60)
    return str(office.status[box]["boot_id"])


async def test_daemon_killed_holding_unacknowledged_commands_prints_each_once(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    async with daemon(tmp_path, broker, pki) as d, office_for(broker, pki) as office:
        d.start()  # first run: the broker learns the session and its subscription
        first_boot = await wait_online(office, "shop-1")
        d.kill(signal.SIGTERM)
        await wait_until(lambda: office.status["shop-1"].get("reason") == "stopped", 30)

        # Commands queued at the broker while the box is away.
        uuids = [f"k-{i:02d}" for i in range(20)]
        for uuid in uuids:
            await office.link.publish(f"{PREFIX}/shop-1/cmd", json.dumps(sell(uuid)).encode())
        d.start()
        second_boot = await wait_online(office, "shop-1", not_boot=first_boot)
        await wait_until(lambda: sum(d.printed().values()) >= 3, 60)
        d.kill()  # SIGKILL mid-stream, with commands delivered but not yet acknowledged

        # The Last Will: "offline" carrying the killed run's boot id.
        await wait_until(lambda: office.status["shop-1"].get("state") == "offline", 30)
        assert office.status["shop-1"]["boot_id"] == second_boot
        assert office.status["shop-1"].get("reason") == "connection lost"

        d.start()
        third_boot = await wait_online(office, "shop-1", not_boot=second_boot)
        sends = [office.send("shop-1", sell(u), timeout_s=120, reask_s=5) for u in uuids]
        outcomes = await asyncio.gather(*sends)
        printed = d.printed()
        assert {u: printed[u] for u in uuids} == dict.fromkeys(uuids, 1)
        for out in outcomes:
            assert out.result is not None
            assert out.result["results"][0]["status"] == "ready"
        # The retained status is the live run's, not a stale will.
        assert office.status["shop-1"]["state"] == "online"
        assert office.status["shop-1"]["boot_id"] == third_boot


async def test_broker_killed_and_restarted_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    rng = random.Random(4)
    async with daemon(tmp_path, broker, pki) as d, office_for(broker, pki) as office:
        d.start()
        await wait_online(office, "shop-1")
        uuids = [f"b-{i:02d}" for i in range(30)]

        async def one(uuid: str) -> None:
            await asyncio.sleep(rng.uniform(0, 4))
            await office.send("shop-1", sell(uuid), timeout_s=180, resend_s=2, reask_s=5)

        sends = asyncio.gather(*(one(u) for u in uuids))
        await wait_until(lambda: sum(d.printed().values()) >= 5, 60)
        broker.kill()  # SIGKILL: whatever it had not saved is gone
        await asyncio.sleep(1.5)
        broker.start()
        await sends
        printed = d.printed()
        assert {u: printed[u] for u in uuids} == dict.fromkeys(uuids, 1)  # 0 lost, 0 doubled
        for u in uuids:
            result = office.outcomes[("shop-1", u)].result
            assert result is not None
            assert result["results"][0]["status"] == "ready"
        await wait_until(lambda: d.proc is not None and d.proc.poll() is None)


async def test_office_cli_send_prints_the_fiscal_result(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    command = tmp_path / "cmd.json"
    command.write_text(json.dumps(sell("cli-1")), encoding="utf-8")
    async with daemon(tmp_path, broker, pki) as d, office_for(broker, pki) as office:
        d.start()
        await wait_online(office, "shop-1")
        cert, key = pki.root / "office.crt", pki.root / "office.key"  # CN "office" in the ACL
        argv = [
            sys.executable, "-m", "gateway", "send", "--box", "shop-1", str(command), "--wait",
            "--broker", f"127.0.0.1:{broker.port}", "--ca", str(pki.ca_file),
            "--cert", str(cert), "--key", str(key), "--client-id", "office-cli",
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
        result = json.loads(out)
        assert result["results"][0]["result"]["fiscalParams"]["fiscalDocumentNumber"] > 0
        assert "accepted by shop-1" in err.decode()
        assert d.printed()["cli-1"] == 1
        # The same command again: "duplicate", the same result, no second receipt.
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out2, err2 = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err2.decode()
        assert "duplicate by shop-1" in err2.decode()
        assert json.loads(out2) == result
        assert d.printed()["cli-1"] == 1
        # watch --once lists the box as online.
        watch = await asyncio.create_subprocess_exec(
            *argv[:3], "watch", "--once", "2", *argv[8:],
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        table, werr = await asyncio.wait_for(watch.communicate(), 60)
        assert watch.returncode == 0, werr.decode()
        line = next(x for x in table.decode().splitlines() if x.startswith("shop-1"))
        assert " online " in line
        assert " connected " in line
        # A client the ACL does not allow to command boxes is told so, not left retrying.
        other_cert, other_key = pki.issue("shop-9")
        refused = await asyncio.create_subprocess_exec(
            *argv[:13], str(other_cert), "--key", str(other_key), "--client-id", "x",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, rerr = await asyncio.wait_for(refused.communicate(), 60)
        assert refused.returncode == 1
        assert "does not let this client publish" in rerr.decode()


async def test_hostile_commands_neither_kill_the_daemon_nor_come_back_at_restart(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    deep = b'{"uuid": "x-deep", "request": [' + b"[" * 1000 + b"]" * 1000 + b"]}"
    nameless = b"[" * 20_000  # nests past the parser's limit, names no uuid
    surrogate = b'{"uuid": "x-sur", "request": [{"\\ud800": 1, "type": "reportX"}]}'
    async with daemon(tmp_path, broker, pki) as d, office_for(broker, pki) as office:
        d.start()
        first_boot = await wait_online(office, "shop-1")
        for payload in (deep, nameless, surrogate):
            await office.link.publish(f"{PREFIX}/shop-1/cmd", payload)

        def refused() -> list[dict[str, Any]]:
            return [e for _, e in office.events if e.get("event") == "command_refused"]

        await wait_until(lambda: len(refused()) == 3, 60)
        assert [e["uuid"] for e in refused()] == ["x-deep", None, "x-sur"]
        out = await office.send("shop-1", sell("x-after"), timeout_s=120)
        assert out.result is not None
        assert d.proc is not None
        assert d.proc.poll() is None  # still the first process
        # A restart is handed none of them again: no new refusals, and it keeps printing.
        d.kill(signal.SIGTERM)
        d.start()
        await wait_online(office, "shop-1", not_boot=first_boot)
        out = await office.send("shop-1", sell("x-restarted"), timeout_s=120)
        assert out.result is not None
        assert len(refused()) == 3
        assert d.proc.poll() is None
        assert d.printed()["x-after"] == d.printed()["x-restarted"] == 1
