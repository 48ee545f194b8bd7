"""The emulator's control socket: set faults at run time from another process.

A Unix stream socket (default `<state>.control`) taking JSON lines:

    -> {"fault": "paper_out", "value": true}
    <- {"ok": true}
    -> {"fault": "nonsense", "value": 1}
    <- {"ok": false, "error": "unknown fault 'nonsense'; known: ..."}

One answer line per request line; any number of requests per connection. Fault names and
values are those of `faults.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.domain.errors import GatewayError

_LOGGER = logging.getLogger(__name__)

# A control client gets this long to send each line and to read each answer.
CONTROL_IO_TIMEOUT_S = 60.0
CONTROL_LINE_LIMIT_BYTES = 64 * 1024

ApplyFault = Callable[[str, object], Awaitable[None]]


class ControlServer:
    """Serves fault requests on a Unix socket."""

    def __init__(self, path: Path, apply_fault: ApplyFault) -> None:
        self.path = path
        self._apply_fault = apply_fault
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"ControlServer(path={str(self.path)!r})"

    async def start(self) -> None:
        """Bind the socket (replacing a stale one)."""
        self.path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(
            self._client, self.path, limit=CONTROL_LINE_LIMIT_BYTES
        )
        _LOGGER.info("Emulator control socket %s", self.path)

    async def close(self) -> None:
        """Stop listening, drop clients, remove the socket file."""
        if self._server is not None:
            self._server.close()
            for task in list(self._clients):
                task.cancel()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CONTROL_IO_TIMEOUT_S):
                    await self._server.wait_closed()
            self._server = None
        self.path.unlink(missing_ok=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one control connection, a request per line."""
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            while True:
                try:
                    async with asyncio.timeout(CONTROL_IO_TIMEOUT_S):
                        line = await reader.readline()
                except (TimeoutError, ValueError, ConnectionError):
                    return
                if not line:
                    return
                answer = await self.request(line)
                writer.write(json.dumps(answer).encode() + b"\n")
                async with asyncio.timeout(CONTROL_IO_TIMEOUT_S):
                    await writer.drain()
        except (ConnectionError, TimeoutError):
            return
        finally:
            self._clients.discard(task)
            writer.close()

    async def request(self, line: bytes) -> dict[str, Any]:
        """Execute one JSON request line; returns the answer object."""
        try:
            message = json.loads(line)
            if not isinstance(message, dict) or not isinstance(message.get("fault"), str):
                raise ValueError('expected {"fault": NAME, "value": VALUE}')
            await self._apply_fault(message["fault"], message.get("value"))
        except (ValueError, GatewayError) as err:
            return {"ok": False, "error": str(err)}
        return {"ok": True}
