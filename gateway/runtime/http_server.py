"""A small HTTP/1.1 server: asyncio streams for the I/O, h11 for the protocol.

The box's ATOL API answers a few JSON routes. aiohttp, which the status page and the
KKMServer API use, costs the box about 16 MB and 120 ms of start-up for its client, its TLS
contexts and its framework; this server holds what the API needs: one request at a time per
connection (keep-alive, pipelining in order), the body read whole within a size and a time
limit before the handler sees it, `Expect: 100-continue`, HEAD answered like GET without its
body, TLS from asyncio. A malformed message gets the refusal's 4xx and one warning line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

import h11

from gateway.config.values import Listen
from gateway.domain.errors import escape_controls
from gateway.runtime.sockets import BACKLOG, START_TIMEOUT_S, bind_failed

_LOGGER = logging.getLogger(__name__)

HEAD_TIMEOUT_S: Final = 75.0  # a whole request head, or the wait for the next one (keep-alive)
WRITE_TIMEOUT_S: Final = 30.0
LINGER_S: Final = 2.0  # reading what a refused client still sends, so it gets the answer
LINGER_BYTES: Final = 1 << 20
_REASONS: Final = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}
MAX_HEAD_BYTES: Final = 8 * 1024  # request line and headers together, as aiohttp's line limit
READ_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    """One request with its whole body. Header names are lower case; of a repeated header or
    query parameter the first counts."""

    method: str
    path: str  # percent-decoded
    raw_path: str  # as sent, for the log (still percent-encoded)
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    peer: str | None


@dataclass(frozen=True, slots=True)
class Response:
    """One answer; Content-Length is added."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]
# The server's own refusals (400, 408, 413, 431…): status and plain words -> the answer.
Refusal = Callable[[int, str], Response]


@dataclass(slots=True)
class _Connection:
    """One client's connection, as `stop` sees it."""

    writer: asyncio.StreamWriter
    busy: bool = False  # between a request's head and its answer
    closing: bool = False  # the server stops: answer with Connection: close


class _Refused(Exception):
    """The request cannot be served; answer `status` and close the connection."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class HttpServer:
    """`start` listens, `stop` closes; each connection is served by its own task."""

    def __init__(
        self,
        handler: Handler,
        refusal: Refusal,
        *,
        max_body_bytes: int,
        body_timeout_s: float,
        name: str,
    ) -> None:
        self._handler = handler
        self._refusal = refusal
        self._max_body = max_body_bytes
        self._body_timeout_s = body_timeout_s
        self._name = name
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], _Connection] = {}

    async def start(
        self, address: Listen, *, key: str, code: str, ssl_context: ssl.SSLContext | None = None
    ) -> int:
        """Listen on `address`; the bound port (port 0 allowed). A bind failure raises
        GatewayError(code) naming `key`."""
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                self._server = await asyncio.start_server(
                    self._serve, address.host, address.port, ssl=ssl_context, backlog=BACKLOG
                )
        except OSError as err:
            raise bind_failed(err, key, code, address) from err
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, timeout_s: float) -> None:
        """Stop listening; idle connections close now, requests in flight get `timeout_s`."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        # Closing the transport ends a connection's task at its next read (asyncio's stream
        # server reports a cancelled connection task as an error, so none is cancelled).
        for connection in self._connections.values():
            connection.closing = True
            if not connection.busy:
                connection.writer.close()
        pending = list(self._connections)
        if not pending:
            return
        _done, late = await asyncio.wait(pending, timeout=timeout_s)
        if late:
            _LOGGER.error(
                "%s: %d requests did not finish in %.0f s", self._name, len(late), timeout_s
            )
            for task in late:
                self._connections[task].writer.transport.abort()
            await asyncio.wait(late, timeout=timeout_s)

    # --- one connection -------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:  # accepted (or its TLS handshake done) after stop began
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        connection = self._connections[task] = _Connection(writer)
        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple | list) and peername else None
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        try:
            while await self._one_request(conn, reader, connection, peer):
                conn.start_next_cycle()
        except OSError:
            # The client went away, stalled, or does not read its answer: drop the socket
            # and whatever waits to be sent to it (a plain close would keep both for good).
            writer.transport.abort()
        except Exception:  # a bug here must not end the server, only this connection
            _LOGGER.exception("%s: connection from %s failed", self._name, peer or "?")
        finally:
            writer.close()
            try:
                async with asyncio.timeout(LINGER_S):
                    await writer.wait_closed()
            except Exception:  # unsent data the client does not take, or a reset
                writer.transport.abort()
            del self._connections[task]

    async def _one_request(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        connection: _Connection,
        peer: str | None,
    ) -> bool:
        """Serve one request; True when the connection may carry another."""
        writer = connection.writer
        head: object = None
        try:
            deadline = asyncio.get_running_loop().time() + HEAD_TIMEOUT_S
            head = await _next_event(conn, reader, deadline)
            if not isinstance(head, h11.Request):
                return False  # closed (an idle keep-alive connection times out above)
            connection.busy = True
            request = await self._read(conn, reader, writer, head, peer)
        except h11.RemoteProtocolError as err:
            refused = _Refused(err.error_status_hint, "bad HTTP message")
            detail = escape_controls(str(err))
            return await self._refuse(conn, reader, connection, refused, peer, detail, head)
        except _Refused as refused:
            return await self._refuse(conn, reader, connection, refused, peer, refused.text, head)
        try:
            response = await self._handler(request)
        except Exception:
            _LOGGER.exception(
                "%s: unexpected error on %s %s", self._name, request.method, request.raw_path
            )
            response = self._refusal(500, "internal error; see the box log")
        await _send(conn, writer, response, head_only=_is_head(head), close=connection.closing)
        connection.busy = False
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _read(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head: h11.Request,
        peer: str | None,
    ) -> Request:
        """The request with its whole body, within the size and time limits."""
        size = len(head.target) + sum(len(name) + len(value) for name, value in head.headers)
        if size > MAX_HEAD_BYTES:  # h11 bounds only a head still arriving
            raise _Refused(431, f"the request line and headers are over {MAX_HEAD_BYTES} bytes")
        headers: dict[str, str] = {}
        for name, value in head.headers:
            # as aiohttp did: UTF-8, and bytes that are not kept as surrogates (auth refuses them)
            headers.setdefault(name.decode("ascii"), value.decode("utf-8", "surrogateescape"))
        too_large = f"request body is larger than {self._max_body} bytes"
        length = headers.get("content-length")
        if length is not None and int(length) > self._max_body:
            raise _Refused(413, too_large)
        if conn.they_are_waiting_for_100_continue:
            interim = h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
            writer.write(conn.send(interim))
        body = bytearray()
        deadline = asyncio.get_running_loop().time() + self._body_timeout_s
        try:
            while not isinstance(
                event := await _next_event(conn, reader, deadline), h11.EndOfMessage
            ):
                if not isinstance(event, h11.Data):
                    raise _Refused(400, "the request body was cut off or malformed")
                body += event.data
                if len(body) > self._max_body:
                    raise _Refused(413, too_large)
        except TimeoutError:
            raise _Refused(
                408, f"the request body did not arrive within {self._body_timeout_s:g} s"
            ) from None
        target = head.target.decode("latin-1").partition("#")[0]  # a fragment is the client's
        if "://" in target.partition("?")[0]:  # absolute-form, which a server must take too
            parts = urlsplit(target)  # (RFC 9112 3.2.2): its path and query count
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        raw_path, _, query = target.partition("?")
        return Request(
            method="GET" if head.method == b"HEAD" else head.method.decode("ascii"),
            path=unquote(raw_path),
            raw_path=raw_path,
            query=dict(reversed(parse_qsl(query, keep_blank_values=True))),
            headers=headers,
            body=bytes(body),
            peer=peer,
        )

    async def _refuse(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        connection: _Connection,
        refused: _Refused,
        peer: str | None,
        detail: str,
        head: object,
    ) -> bool:
        """One warning line; the refusal's answer when the protocol still allows one; close."""
        _LOGGER.warning(
            "%s: request from %s refused (%d): %s",
            self._name,
            peer or "?",
            refused.status,
            detail[:200],
        )
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            response = self._refusal(refused.status, refused.text)
            with contextlib.suppress(h11.LocalProtocolError):
                await _send(conn, connection.writer, response, head_only=_is_head(head), close=True)
        connection.busy = False  # answered: a stopping server need not wait for the rest
        if not connection.closing:
            await _linger(reader, connection.writer)
        return False


def _is_head(head: object) -> bool:
    return isinstance(head, h11.Request) and head.method == b"HEAD"


async def _next_event(
    conn: h11.Connection, reader: asyncio.StreamReader, deadline: float
) -> object:
    """The next h11 event, reading as needed until the loop's `deadline` (TimeoutError).
    An event already buffered costs no timer: a request usually arrives in one read."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        async with asyncio.timeout_at(deadline):
            data = await reader.read(READ_BYTES)
        conn.receive_data(data)


async def _send(
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    response: Response,
    *,
    head_only: bool = False,
    close: bool = False,
) -> None:
    headers = [
        ("content-type", response.content_type),
        ("content-length", str(len(response.body))),
        *response.headers.items(),
    ]
    if close:
        headers.append(("connection", "close"))
    reason = _REASONS.get(response.status, b"")
    data = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
    if not head_only and response.body:
        data += conn.send(h11.Data(data=response.body))
    data += conn.send(h11.EndOfMessage())
    writer.write(data)
    if writer.transport.get_write_buffer_size():  # the socket did not take it all at once
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await writer.drain()


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Half-close, then read what the client still sends for a while: closing with unread
    data would reset the connection, and the client might lose the answer."""
    left = LINGER_BYTES
    with contextlib.suppress(OSError):  # the client closed first (ENOTCONN), or a timeout
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(LINGER_S):
            while left > 0 and (data := await reader.read(READ_BYTES)):
                left -= len(data)
