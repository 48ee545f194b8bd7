"""Exactly once through the KKMServer-compatible API while the daemon is SIGKILLed amid sales.

Each round starts `fiscal-gateway run` on its built-in emulator with a `kkmserver` section,
sends RegisterCheck commands on `/Execute` from concurrent clients and kills the daemon while
they are in flight. Clients then do what the API asks of them: send the same command with the
same IdCommand until it is done. The emulator's paper tape must hold every command once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.broker import free_port
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(600)

USER, PASSWORD = "kassa", "kassa-secret-1"
ROUNDS = 3
PER_ROUND = 10
FINAL_S = 120.0


def check(id_command: str) -> dict[str, Any]:
    """A one-line sale whose line name is its IdCommand, so the tape tells commands apart."""
    return {
        "Command": "RegisterCheck",
        "IdCommand": id_command,
        "TypeCheck": 0,
        "CheckStrings": [
            {
                "Register": {
                    "Name": f"Товар {id_command}",
                    "Quantity": 1,
                    "Price": 10.5,
                    "Amount": 10.5,
                    "Tax": 20,
                    "SignMethodCalculation": 4,
                    "SignCalculationObject": 1,
                }
            }
        ],
        "Cash": 11,
    }


async def send(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> dict[str, Any] | None:
    """The answer, or None when the daemon died before answering."""
    try:
        async with asyncio.timeout(30), session.post(url, json=body) as resp:
            if resp.status != 200:
                return None
            answer: dict[str, Any] = await resp.json()
            return answer
    except (aiohttp.ClientError, TimeoutError):
        return None


async def test_each_acknowledged_id_command_printed_exactly_once(tmp_path: Path) -> None:
    rng = random.Random(20261204)
    port = free_port()
    daemon = DaemonProcess(
        tmp_path,
        extra=(
            f"kkmserver:\n  listen: 127.0.0.1:{port}\n"
            f"  users:\n    - name: {USER}\n      password: {PASSWORD}\n"
        ),
    )
    url = f"http://127.0.0.1:{port}/Execute"
    auth = {"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)}
    sent: list[str] = []
    acknowledged: set[str] = set()
    try:
        async with aiohttp.ClientSession(headers=auth) as session:
            for round_no in range(ROUNDS):
                await asyncio.to_thread(daemon.start)
                ids = [f"kill-{round_no}-{i}" for i in range(PER_ROUND)]
                sent += ids

                async def one(id_command: str, delay: float) -> None:
                    await asyncio.sleep(delay)
                    answer = await send(session, url, check(id_command))
                    if answer is not None and answer["Status"] in (0, 1, 4):
                        acknowledged.add(id_command)

                tasks = [
                    asyncio.create_task(one(i, rng.uniform(0, 0.4)), name=f"client-{i}")
                    for i in ids
                ]
                await asyncio.sleep(rng.uniform(0.1, 0.4))
                daemon.stop(signal.SIGKILL)
                await asyncio.gather(*tasks)
            assert acknowledged, "some commands must be acknowledged before a kill"
            assert len(acknowledged) < len(sent), "the kills must land while commands are sent"
            # Every client retries its command with the same IdCommand until it is done.
            await asyncio.to_thread(daemon.start)
            async with asyncio.timeout(FINAL_S):
                for id_command in sent:
                    while True:
                        answer = await send(session, f"{url}/sync", check(id_command))
                        if answer is not None and answer["Status"] == 0:
                            break
                        assert answer is None or answer["Status"] != 2, answer
                        await asyncio.sleep(0.1)
    finally:
        with contextlib.suppress(Exception):
            daemon.stop()
    printed = Counter(item["name"] for doc in daemon.tape() for item in doc.get("items", []))
    assert {name: n for name, n in printed.items() if n != 1} == {}
    assert set(printed) == {f"Товар {i}" for i in sent}
    assert {f"Товар {i}" for i in acknowledged} <= set(printed)
