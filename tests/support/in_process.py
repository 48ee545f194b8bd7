"""The whole daemon in-process: `Gateway` from config text, on its built-in emulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from gateway.app.gateway import Gateway
from gateway.config.reader import parse_config
from tests.support.tape import read_tape

WAIT_S = 30.0
TAPE = "emulator.state.journal.jsonl"  # the built-in emulator's tape, in state_dir


def register_connected(gw: Gateway) -> bool:
    return gw.supervisor is not None and gw.supervisor.connected_event.is_set()


def mqtt_connected(gw: Gateway) -> bool:
    return gw.mqtt is not None and gw.mqtt.link.connected.is_set()


def gateway_tape(state_dir: Path) -> list[dict[str, Any]]:
    """What the built-in emulator of a daemon with this state_dir printed."""
    return read_tape(state_dir / TAPE)


@contextlib.asynccontextmanager
async def running_gateway(
    text: str, *, ready: Callable[[Gateway], bool] = register_connected, timeout_s: float = WAIT_S
) -> AsyncIterator[Gateway]:
    """Run the daemon configured by `text` until the test is done; `ready` says when to yield."""
    gw = Gateway(parse_config(text))
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(gw.run(), name="test-gateway")
        try:
            async with asyncio.timeout(timeout_s):
                while not ready(gw):
                    if task.done():
                        task.result()  # it stopped on its own: show why
                    await asyncio.sleep(0.02)
            yield gw
        finally:
            gw.request_stop()
            async with asyncio.timeout(timeout_s):
                await asyncio.wait([task])
