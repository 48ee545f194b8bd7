"""The only paho-mqtt import: one MQTT client driven by the asyncio loop.

paho's own thread is never started. As aiomqtt and Home Assistant do, the blocking connect
(DNS, TCP, TLS handshake, certificate loading) runs in the executor; after that the socket is
watched with `add_reader`/`add_writer` and `loop_misc` runs once a second for keep-alives, so
every callback below runs on the event loop thread.

A new paho client is made for every connection attempt: no half-torn-down state is reused.
The session lives at the broker (clean start off, session expiry), so QoS 1 messages not yet
acknowledged by us are delivered again after a reconnect; outgoing durability is the caller's
(the journal's outbox), never paho's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.domain.errors import GatewayError
from gateway.runtime.aio import wait_set

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 20.0
ACK_TIMEOUT_S = 15.0
MISC_INTERVAL_S = 1.0
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0
AUTH_BACKOFF_S = 300.0  # refused credentials are retried rarely, not hammered
RECEIVE_MAXIMUM = 20  # unacknowledged QoS 1 messages the broker may send us at once
MAX_QUEUED_OUT = 200

# CONNACK reasons that a retry cannot fix without a person (MQTT 5 §3.2.2.2; 3.1.1 rc 4, 5).
_AUTH_REFUSALS = {
    "Bad user name or password",
    "Not authorized",
    "Banned",
    "Bad authentication method",
}
_PROTOCOL_REFUSED = "Unsupported protocol version"


class MqttError(GatewayError):
    """The broker is unreachable, refused us, or did not acknowledge in time."""

    code = "mqtt_error"


class MqttState(enum.Enum):
    """Where the link is; shown in /health and on the status page."""

    OFF = "off"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    REFUSED = "refused"  # credentials or certificate refused: a person must fix the config


@dataclass(frozen=True, slots=True)
class Will:
    """The Last Will: published by the broker if we vanish without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Everything needed to reach one broker."""

    host: str
    port: int
    client_id: str
    protocol: str = "5"  # "5" (falls back to 3.1.1 when the broker refuses 5) or "3.1.1"
    keepalive_s: int = 60
    session_expiry_s: int = 7 * 86400
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    will: Will | None = None
    subscriptions: tuple[tuple[str, int], ...] = ()
    clean_start: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """An incoming message; QoS 1 ones must be `ack`ed once handled (after the commit)."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool
    response_topic: str | None = None
    correlation_data: bytes | None = None
    generation: int = 0  # which connection delivered it; an ack on a later one is void


@dataclass(slots=True)
class _Conn:
    """One connection attempt's paho client and its futures."""

    client: paho.Client
    generation: int
    connack: asyncio.Future[ReasonCode]
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    pending: dict[int, asyncio.Future[None]] = field(default_factory=dict)
    fd: int | None = None
    overflowed: bool = False  # closed by us: the incoming queue was full while connecting
    established: bool = False  # connected and subscribed: a full queue pauses reading
    held: list[Message] = field(default_factory=list)  # received while the queue was full
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # something held, or closed
    reader: Callable[[], None] | None = None  # reads the socket; removed while messages are held


class _Inbox(asyncio.Queue[Message]):
    """The incoming messages; `emptied` is set while the queue is empty."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.emptied = asyncio.Event()
        self.emptied.set()

    def put_nowait(self, item: Message) -> None:
        super().put_nowait(item)
        self.emptied.clear()

    def get_nowait(self) -> Message:
        item = super().get_nowait()
        if self.empty():
            self.emptied.set()
        return item


class MqttLink:
    """Connects, keeps connected with jittered backoff, resubscribes; publish and receive."""

    def __init__(
        self,
        settings: LinkSettings,
        *,
        on_connected: Callable[[], Awaitable[None]] | None = None,
        queue_size: int = 100,
    ) -> None:
        self.settings = settings
        self.state = MqttState.DISCONNECTED
        self.last_error: str | None = None
        self.connected = asyncio.Event()
        self.messages = _Inbox(queue_size)
        self.protocol_in_use: str | None = None
        self._on_connected = on_connected
        self._conn: _Conn | None = None
        self._generation = 0
        self._downgraded = False
        self._stopping = False

    # --- public -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected until cancelled; every failure is logged and retried with backoff."""
        failures = 0
        try:
            while True:
                self._set_state(MqttState.CONNECTING)
                delay: float
                try:
                    await self._connect_once()
                    failures = 0
                    assert self._conn is not None
                    await self._keep_alive(self._conn)
                    delay = BACKOFF_MIN_S
                except _Refused as err:
                    self.last_error = str(err)
                    self._set_state(MqttState.REFUSED)
                    _LOGGER.error(
                        "Broker %s:%d refused this box: %s. Check mqtt.username/password or the "
                        "box certificate; retrying in %.0f s",
                        self.settings.host,
                        self.settings.port,
                        err,
                        AUTH_BACKOFF_S,
                    )
                    delay = AUTH_BACKOFF_S
                except (OSError, MqttError, TimeoutError, ssl.SSLError) as err:
                    if self._conn is not None and self._conn.overflowed:
                        delay = 0.0  # our own flow control, not a failure: see below
                    else:
                        failures += 1
                        self.last_error = f"{type(err).__name__}: {err}"
                        delay = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** min(failures, 10))
                        delay *= random.uniform(0.5, 1.0)  # a fleet must not reconnect in step
                        _LOGGER.warning(
                            "MQTT broker %s:%d: %s; retrying in %.1f s",
                            self.settings.host,
                            self.settings.port,
                            self.last_error,
                            delay,
                        )
                overflowed = self._conn is not None and self._conn.overflowed
                self._teardown()
                if self.state is not MqttState.REFUSED:
                    self._set_state(MqttState.DISCONNECTED)
                if overflowed:
                    # We hung up because the incoming queue was full: the broker keeps the
                    # rest, so come back once the queue is worked off, with no growing backoff.
                    failures = 0
                    await self._drained()
                else:
                    await asyncio.sleep(delay)
        finally:
            self._teardown()
            self._set_state(MqttState.OFF)

    def publish_nowait(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
    ) -> asyncio.Future[None]:
        """Hand a message to the socket now (so calls keep their order on the wire); the
        future resolves on the broker's PUBACK (QoS 1) or at once (QoS 0)."""
        conn = self._conn
        if conn is None or not self.connected.is_set():
            raise MqttError("not connected to the broker")
        props = None
        if self.protocol_in_use == "5" and (response_topic or correlation_data):
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if response_topic:
                props.ResponseTopic = response_topic
            if correlation_data:
                props.CorrelationData = correlation_data
        info = conn.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if qos == 0 or info.is_published():
            fut.set_result(None)
        else:
            conn.pending[info.mid] = fut
        return fut

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        timeout_s: float = ACK_TIMEOUT_S,
    ) -> None:
        """Publish; for QoS 1 return only once the broker's PUBACK arrived, else MqttError."""
        fut = self.publish_nowait(
            topic,
            payload,
            qos=qos,
            retain=retain,
            response_topic=response_topic,
            correlation_data=correlation_data,
        )
        await wait_acked([fut], timeout_s)

    def ack(self, message: Message) -> bool:
        """Send the PUBACK for a QoS 1 message; False if its connection is gone (it comes again)."""
        conn = self._conn
        if message.qos == 0:
            return True
        if conn is None or conn.generation != message.generation or conn.closed.is_set():
            return False
        return conn.client.ack(message.mid, message.qos) == MQTTErrorCode.MQTT_ERR_SUCCESS

    async def disconnect(self, final: tuple[str, bytes] | None = None) -> None:
        """A clean goodbye: publish `final` (topic, payload; retained) then DISCONNECT (no will)."""
        self._stopping = True
        conn = self._conn
        if conn is None or not self.connected.is_set():
            return
        if final is not None:
            with contextlib.suppress(MqttError):
                await self.publish(final[0], final[1], retain=True, timeout_s=3.0)
        conn.client.disconnect()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3.0):
                await conn.closed.wait()

    # --- connection -----------------------------------------------------------------------------

    def _set_state(self, state: MqttState) -> None:
        if state is not self.state:
            _LOGGER.info("MQTT link %s", state.value)
        self.state = state
        if state is MqttState.CONNECTED:
            self.connected.set()
        else:
            self.connected.clear()

    def _protocol(self) -> str:
        if self.settings.protocol == "5" and not self._downgraded:
            return "5"
        return "3.1.1"

    def _new_client(self, protocol: str) -> paho.Client:
        s = self.settings
        v5 = protocol == "5"
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=None if v5 else s.clean_start,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        client.max_queued_messages_set(MAX_QUEUED_OUT)
        client.max_inflight_messages_set(RECEIVE_MAXIMUM)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            ctx = ssl.create_default_context(
                cafile=str(s.ca_file) if s.ca_file is not None else None
            )
            if s.cert_file is not None and s.key_file is not None:
                ctx.load_cert_chain(str(s.cert_file), str(s.key_file))
            client.tls_set_context(ctx)
        if s.will is not None:
            client.will_set(s.will.topic, s.will.payload, qos=s.will.qos, retain=s.will.retain)
        return client

    async def _connect_once(self) -> None:
        loop = asyncio.get_running_loop()
        protocol = self._protocol()
        s = self.settings
        self._generation += 1
        # Certificates are read in the executor as well (a slow SD card must not stall the loop).
        client = await loop.run_in_executor(None, self._new_client, protocol)
        conn = _Conn(client, self._generation, loop.create_future())
        self._conn = conn
        self._hook(conn, loop)
        props = None
        if protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry_s
            # Never more unacknowledged messages in flight than the queue holds: then a QoS 1
            # burst cannot overflow it (only QoS 0 or an MQTT 3.1.1 broker can).
            props.ReceiveMaximum = min(RECEIVE_MAXIMUM, self.messages.maxsize)
        _LOGGER.debug("MQTT connecting to %s:%d (MQTT %s)", s.host, s.port, protocol)
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            if protocol == "5":
                rc = await loop.run_in_executor(
                    None,
                    lambda: client.connect(
                        s.host, s.port, s.keepalive_s, clean_start=s.clean_start, properties=props
                    ),
                )
            else:
                rc = await loop.run_in_executor(
                    None, lambda: client.connect(s.host, s.port, s.keepalive_s)
                )
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise MqttError(f"connect failed: {paho.error_string(rc)}")
            reason = await asyncio.shield(conn.connack)
        if reason.is_failure:
            text = reason.getName()
            if text == _PROTOCOL_REFUSED and protocol == "5":
                _LOGGER.warning("Broker does not speak MQTT 5; falling back to MQTT 3.1.1")
                self._downgraded = True
                raise MqttError("broker refused MQTT 5")
            if text in _AUTH_REFUSALS:
                raise _Refused(text)
            raise MqttError(f"broker refused the connection: {text}")
        self.protocol_in_use = protocol
        await self._subscribe(conn)
        self.last_error = None
        self._set_state(MqttState.CONNECTED)
        _LOGGER.info(
            "MQTT connected to %s:%d as %s (MQTT %s)", s.host, s.port, s.client_id, protocol
        )
        if self._on_connected is not None:
            await self._on_connected()

    async def _drained(self) -> None:
        """Until the incoming queue is empty (or BACKOFF_MAX_S passed). What is left of the
        closed connection cannot be acknowledged any more and the broker sends it again, so
        reconnecting earlier would only fill the queue with copies."""
        await wait_set(self.messages.emptied, BACKOFF_MAX_S)

    async def _keep_alive(self, conn: _Conn) -> None:
        """Until the connection closes: paho's keep-alive and timeout checks once a second, and
        the messages held back while the queue was full handed over as it empties."""
        conn.established = True
        loop = asyncio.get_running_loop()
        misc_at = loop.time() + MISC_INTERVAL_S
        while not conn.closed.is_set():
            if conn.held:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, misc_at - loop.time())):
                        while conn.held and not conn.closed.is_set():
                            await self.messages.put(conn.held[0])
                            del conn.held[0]
                if not conn.held and not conn.closed.is_set() and conn.fd is not None:
                    assert conn.reader is not None
                    loop.add_reader(conn.fd, conn.reader)
                    loop.call_soon(conn.reader)  # TLS may hold bytes select() never reports
            else:
                await wait_set(conn.wake, max(0.0, misc_at - loop.time()))
                conn.wake.clear()
            if loop.time() >= misc_at and not conn.closed.is_set():
                conn.client.loop_misc()
                misc_at = loop.time() + MISC_INTERVAL_S

    async def _subscribe(self, conn: _Conn) -> None:
        subs = list(self.settings.subscriptions)
        if not subs:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        rc, mid = conn.client.subscribe(subs)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MqttError(f"subscribe failed: {paho.error_string(rc)}")
        conn.pending[mid] = fut
        async with asyncio.timeout(ACK_TIMEOUT_S):
            await fut

    def _teardown(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        self._unwatch(conn)
        client = conn.client
        # Detach first: paho closes its sockets again when the client is collected, maybe
        # after the loop is gone.
        client.on_socket_open = client.on_socket_close = None
        client.on_socket_register_write = client.on_socket_unregister_write = None
        with contextlib.suppress(OSError):
            sock = client.socket()
            if sock is not None:
                sock.close()
        self._fail_pending(conn, "connection closed")
        conn.closed.set()
        conn.wake.set()
        self.connected.clear()

    @staticmethod
    def _fail_pending(conn: _Conn, why: str) -> None:
        futures: list[asyncio.Future[Any]] = [*conn.pending.values(), conn.connack]
        for fut in futures:
            if not fut.done():
                fut.set_exception(MqttError(why))
                # Whoever awaits it still gets the error; one nobody awaits (the CONNACK of
                # a connect refused before it was sent) must not log "never retrieved".
                fut.exception()
        conn.pending.clear()

    # --- paho callbacks (all on the loop thread, except the socket hooks during connect) --------

    def _hook(self, conn: _Conn, loop: asyncio.AbstractEventLoop) -> None:
        client = conn.client

        def on_socket_open(_c: Any, _u: Any, sock: Any) -> None:
            loop.call_soon_threadsafe(watch, sock.fileno())

        def watch(fd: int) -> None:
            if conn.closed.is_set():
                return
            conn.fd = fd
            loop.add_reader(fd, on_readable)

        def on_readable() -> None:
            if conn.held or conn.closed.is_set():
                return  # paused until the queue has room again
            client.loop_read()
            sock = client.socket()
            # TLS may hold decrypted bytes that select() never reports.
            while (
                isinstance(sock, ssl.SSLSocket)
                and sock.pending()
                and not conn.closed.is_set()
                and not conn.held
            ):
                client.loop_read()

        conn.reader = on_readable

        def on_socket_register_write(_c: Any, _u: Any, sock: Any) -> None:
            fd = sock.fileno()
            loop.call_soon_threadsafe(
                lambda: None if conn.closed.is_set() else loop.add_writer(fd, client.loop_write)
            )

        def on_socket_unregister_write(_c: Any, _u: Any, sock: Any) -> None:
            fd = sock.fileno()
            loop.call_soon_threadsafe(loop.remove_writer, fd)

        def on_socket_close(_c: Any, _u: Any, _sock: Any) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(closed)

        def closed() -> None:
            self._unwatch(conn)
            self._fail_pending(conn, "connection lost")
            conn.closed.set()
            conn.wake.set()
            if self._conn is conn:
                self.connected.clear()

        def on_connect(_c: Any, _u: Any, _flags: Any, reason: ReasonCode, _p: Any) -> None:
            if not conn.connack.done():
                conn.connack.set_result(reason)

        def on_disconnect(_c: Any, _u: Any, _flags: Any, reason: ReasonCode, _p: Any) -> None:
            if not self._stopping:
                _LOGGER.warning("MQTT disconnected: %s", reason.getName())
            closed()

        def on_publish(_c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
            fut = conn.pending.pop(mid, None)
            if fut is not None and not fut.done():
                if reason.is_failure:
                    fut.set_exception(
                        MqttError(
                            f"broker refused the message: {reason.getName()}", code="mqtt_refused"
                        )
                    )
                else:
                    fut.set_result(None)

        def on_subscribe(_c: Any, _u: Any, mid: int, reasons: list[ReasonCode], _p: Any) -> None:
            fut = conn.pending.pop(mid, None)
            refused = [r.getName() for r in reasons if r.is_failure]
            if fut is not None and not fut.done():
                if refused:
                    fut.set_exception(MqttError(f"subscription refused: {', '.join(refused)}"))
                else:
                    fut.set_result(None)

        def on_message(_c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
            props = getattr(msg, "properties", None)
            message = Message(
                topic=msg.topic,
                payload=bytes(msg.payload),
                qos=msg.qos,
                mid=msg.mid,
                retain=bool(msg.retain),
                response_topic=getattr(props, "ResponseTopic", None),
                correlation_data=getattr(props, "CorrelationData", None),
                generation=conn.generation,
            )
            if conn.held:
                conn.held.append(message)  # behind the ones already waiting, in order
                return
            try:
                self.messages.put_nowait(message)
            except asyncio.QueueFull:
                if conn.established:
                    # Not acknowledged yet, so the broker waits for us: stop reading the
                    # socket (TCP holds the rest) until the queue has room.
                    _LOGGER.debug("Incoming MQTT queue full; reading paused")
                    conn.held.append(message)
                    if conn.fd is not None:
                        loop.remove_reader(conn.fd)
                    conn.wake.set()
                    return
                # While connecting (CONNACK, SUBACK still to read) reading cannot pause: hang
                # up; not acknowledged, so not lost: the broker sends it again.
                if not conn.overflowed:
                    _LOGGER.warning(
                        "Incoming MQTT queue full; reconnecting to get %s later", msg.topic
                    )
                conn.overflowed = True
                client.disconnect()

        client.on_socket_open = on_socket_open
        client.on_socket_close = on_socket_close
        client.on_socket_register_write = on_socket_register_write
        client.on_socket_unregister_write = on_socket_unregister_write
        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.on_subscribe = on_subscribe
        client.on_message = on_message

    @staticmethod
    def _unwatch(conn: _Conn) -> None:
        if conn.fd is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(conn.fd)
        loop.remove_writer(conn.fd)
        conn.fd = None


async def wait_acked(futures: list[asyncio.Future[None]], timeout_s: float) -> None:
    """Wait for every PUBACK; MqttError on the first failure or at the timeout."""
    try:
        async with asyncio.timeout(timeout_s):
            # shield: a cancelled waiter must not cancel a future paho still resolves
            await asyncio.gather(*(asyncio.shield(f) for f in futures))
    except TimeoutError as err:
        raise MqttError(f"no PUBACK within {timeout_s:g} s") from err


class _Refused(Exception):
    """The broker refused our credentials: retried rarely."""


def free_port() -> int:
    """A free TCP port on loopback (tests and benchmarks start brokers on it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
