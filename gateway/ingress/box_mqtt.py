"""The box's side of the office link: commands in, acks / results / events / status out.

Commands: validated at the edge (size, JSON, signature, box id, ATOL schema), committed to
the journal, and only then PUBACKed — a crash before the commit leaves the message
unacknowledged in the broker's session, so it comes again; a known uuid prints nothing and
gets its ack ("duplicate") and, once finished, its stored result again. A refused command is
acknowledged too (it would only come back refused) after its event is committed.

Everything outgoing except telemetry and status comes from the journal's outbox: a row is
marked delivered only on the broker's PUBACK, so nothing is lost while the broker is away or
the daemon restarts (the office sees a result at least once and keys it by uuid).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import logging
import uuid as uuid_mod
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import __version__
from gateway.atol.tasks import NameMapping, parse_request
from gateway.config import Config, SigningMode
from gateway.domain.errors import (
    CommandRefused,
    DuplicateJob,
    GatewayError,
    StaleCommand,
    ValidationError,
)
from gateway.ingress.mqtt import (
    LinkSettings,
    Message,
    MqttError,
    MqttLink,
    MqttState,
    Will,
    wait_acked,
)
from gateway.ingress.signing import CommandVerifier, check_box
from gateway.ingress.topics import Topics
from gateway.journal import Journal, OutboxItem, OutboxKind
from gateway.runtime.aio import wait_set

_LOGGER = logging.getLogger(__name__)

PUMP_BATCH = 50
PUMP_IDLE_S = 30.0  # look at the outbox at least this often even without a wake-up
SEQUENCE_KEY = "mqtt.command_seq"

StatusSource = Callable[[], Awaitable[dict[str, Any]]]


def link_settings(cfg: Config, topics: Topics, will: bytes) -> LinkSettings:
    """The broker connection from `mqtt:` config."""
    m = cfg.mqtt
    assert m.host is not None  # config refuses mqtt.enabled without a host
    return LinkSettings(
        host=m.host,
        port=m.port,
        client_id=m.client_id or cfg.box_id,
        protocol=m.protocol.value,
        keepalive_s=m.keepalive_s,
        session_expiry_s=m.session_expiry_s,
        username=m.username,
        password=m.password.reveal() if m.password is not None else None,
        tls=m.tls is not None,
        ca_file=m.tls.ca_file if m.tls else None,
        cert_file=m.tls.cert_file if m.tls else None,
        key_file=m.tls.key_file if m.tls else None,
        will=Will(topics.status, will),
        subscriptions=((topics.cmd, 1), (topics.status, 1)),
    )


class BoxMqtt:
    """Owns the MQTT link of one box; `run()` is a long-lived task of the app."""

    def __init__(
        self,
        cfg: Config,
        journal: Journal,
        *,
        mapping: NameMapping,
        on_submitted: Callable[[str], None],
        status: StatusSource,
        telemetry: StatusSource,
        clock_trusted: Callable[[], bool],
        on_update: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.cfg = cfg
        self.journal = journal
        self.topics = Topics(cfg.mqtt.topic_prefix, cfg.box_id)
        self.boot_id = uuid_mod.uuid4().hex[:16]
        self._mapping = mapping
        self._on_submitted = on_submitted
        self._status = status
        self._telemetry = telemetry
        self._clock_trusted = clock_trusted
        self._on_update = on_update
        self._max_bytes = cfg.http.max_body_bytes
        signing = cfg.mqtt.command_signing
        self._verifier = (
            CommandVerifier(cfg.box_id, signing.public_keys, max_age_s=signing.max_age_s)
            if signing.mode is SigningMode.REQUIRED
            else None
        )
        self.link = MqttLink(
            link_settings(cfg, self.topics, self._status_body("offline", "connection lost")),
            on_connected=self._announce,
        )
        self.last_command_at: dt.datetime | None = None
        self.commands_refused = 0
        self.published = 0
        self._stopping = False

    @property
    def state(self) -> MqttState:
        return self.link.state

    def health(self) -> dict[str, Any]:
        """The `mqtt` section of /health and telemetry."""
        return {
            "state": self.link.state.value,
            "error": self.link.last_error,
            "protocol": self.link.protocol_in_use,
            "last_command_at": self.last_command_at.isoformat() if self.last_command_at else None,
            "commands_refused": self.commands_refused,
        }

    async def run(self) -> None:
        """The link, the command handler, the outbox pump and telemetry, together."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.link.run(), name="mqtt-link")
            tg.create_task(self._handle_commands(), name="mqtt-commands")
            tg.create_task(self._pump(), name="mqtt-outbox")
            tg.create_task(self._send_telemetry(), name="mqtt-telemetry")

    async def stop(self) -> None:
        """Say goodbye: a retained `offline` status, then DISCONNECT (so no Last Will)."""
        self._stopping = True
        await self.link.disconnect((self.topics.status, self._status_body("offline", "stopped")))

    # --- status -------------------------------------------------------------------------------

    def _status_body(self, state: str, reason: str | None = None) -> bytes:
        body: dict[str, Any] = {
            "state": state,
            "boot_id": self.boot_id,
            "box": self.cfg.box_id,
            "at": _now_text(),
        }
        if reason:
            body["reason"] = reason
        return _dumps(body)

    async def _announce(self) -> None:
        """After every CONNACK: the retained `online` status with versions and a summary."""
        try:
            summary = await self._status()
        except GatewayError as err:
            summary = {"error": str(err)}
        body = json.loads(self._status_body("online"))
        body.update(version=__version__, protocol=self.link.protocol_in_use, device=summary)
        await self.link.publish(self.topics.status, _dumps(body), retain=True)

    # --- commands -----------------------------------------------------------------------------

    async def _handle_commands(self) -> None:
        while True:
            message = await self.link.messages.get()
            if message.topic == self.topics.status:
                await self._on_status(message)
                continue
            try:
                await self.handle_command(message)
            except GatewayError:
                # Journal trouble: not acknowledged, so the broker delivers it again.
                _LOGGER.exception("Command on %s not taken; it will come again", message.topic)
                continue
            self.link.ack(message)

    async def _on_status(self, message: Message) -> None:
        """A stale `offline` (an old will, a retained leftover) must not stand while we live."""
        self.link.ack(message)
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        stale = (
            isinstance(body, dict)
            and body.get("state") == "offline"
            and body.get("boot_id") != self.boot_id  # ours is only ever our own goodbye
        )
        if stale and self.link.connected.is_set() and not self._stopping:
            _LOGGER.info(
                "Stale offline status (boot %s) on the broker; repeating online",
                body.get("boot_id"),
            )
            with contextlib.suppress(MqttError):
                await self._announce()

    async def handle_command(self, message: Message) -> None:
        """Validate and commit one command; refusals are committed as events (never raised)."""
        self.last_command_at = dt.datetime.now(dt.UTC)
        reply_to = _reply_to(message)
        uuid: str | None = None
        try:
            doc = self._decode(message.payload)
            raw_uuid = doc.get("uuid")
            uuid = raw_uuid if isinstance(raw_uuid, str) and 0 < len(raw_uuid) <= 64 else None
            sequence = None
            if self._verifier is not None:
                signed = self._verifier.verify(
                    doc, now=dt.datetime.now(dt.UTC), clock_trusted=self._clock_trusted()
                )
                sequence = (SEQUENCE_KEY, signed.seq)
            else:
                check_box(doc, self.cfg.box_id)
            if doc.get("op") == "update":
                self._take_update(doc)
                return
            try:
                parsed = parse_request(message.payload, self._mapping, max_bytes=self._max_bytes)
            except ValidationError as err:
                raise CommandRefused("invalid_request", err.field, err.reason) from None
            try:
                job = await self.journal.submit(
                    parsed.uuid,
                    parsed.tasks_json,
                    len(parsed.tasks),
                    source="mqtt",
                    reply_to=reply_to,
                    ack=True,
                    sequence=sequence,
                )
            except DuplicateJob as dup:
                _LOGGER.info(
                    "Command %s is known already (%s); nothing queued",
                    dup.uuid,
                    getattr(dup.record, "state", "?"),
                )
                return
            except StaleCommand as err:
                raise CommandRefused("replay", "seq", str(err)) from None
        except CommandRefused as err:
            await self._refuse(uuid, err, reply_to)
            return
        _LOGGER.info("Command %s queued as job %d", job.uuid, job.seq)
        self._on_submitted(job.uuid)

    def _take_update(self, doc: dict[str, Any]) -> None:
        """`{"op": "update", ...}`: handed to the app's updater (the artifact carries its own
        release signature, checked there); one at a time."""
        if self._on_update is None:
            raise CommandRefused("unsupported", "op", "this box takes no updates over MQTT")
        if not self._on_update(doc):
            raise CommandRefused("busy", "op", "an update is already in progress")
        _LOGGER.info("Update command taken: version %s", doc.get("version"))

    def _decode(self, payload: bytes) -> dict[str, Any]:
        if len(payload) > self._max_bytes:
            raise CommandRefused("too_large", "", f"larger than {self._max_bytes} bytes")
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as err:
            raise CommandRefused("not_json", "", f"not JSON: {err}") from None
        if not isinstance(doc, dict):
            raise CommandRefused("invalid_request", "", "the command must be a JSON object")
        return doc

    async def _refuse(self, uuid: str | None, err: CommandRefused, reply_to: str | None) -> None:
        self.commands_refused += 1
        _LOGGER.warning("Command %s refused: %s (%s)", uuid or "(no uuid)", err, err.code)
        error = {"code": err.code, "field": err.field, "description": err.reason}
        await self.journal.refuse_command(uuid, error, reply_to=reply_to)

    # --- outgoing -----------------------------------------------------------------------------

    async def _pump(self) -> None:
        """Deliver the outbox in order; a row is done only on its PUBACK."""
        while True:
            await self.link.connected.wait()
            self.journal.outbox_added.clear()  # before reading: a row added meanwhile re-wakes us
            rows = await self.journal.outbox_pending(limit=PUMP_BATCH)
            if not rows:
                await wait_set(self.journal.outbox_added, PUMP_IDLE_S)
                continue
            await self._deliver(rows)

    async def _deliver(self, rows: list[OutboxItem]) -> None:
        sent: list[tuple[OutboxItem, list[asyncio.Future[None]]]] = []
        try:
            for row in rows:
                sent.append((row, self._publish_row(row)))
        except MqttError as err:
            _LOGGER.debug("Outbox delivery paused: %s", err)
        done: list[int] = []
        for row, futures in sent:
            try:
                await wait_acked(futures, timeout_s=30.0)
            except MqttError:
                break  # keep order: later rows wait for the next round
            done.append(row.id)
        if done:
            await self.journal.outbox_done(done)
            self.published += len(done)
        delivered = set(done)
        failed = [row.id for row, _ in sent if row.id not in delivered]
        if failed:
            await self.journal.outbox_attempted(failed)
            await asyncio.sleep(1.0)  # the link is dropping; do not spin on it

    def _publish_row(self, row: OutboxItem) -> list[asyncio.Future[None]]:
        payload = row.payload_json.encode("utf-8")
        key = row.key or ""
        if row.kind is OutboxKind.EVENT:
            return [self.link.publish_nowait(self.topics.event, payload)]
        if row.kind is OutboxKind.ACK:
            return [self.link.publish_nowait(self.topics.ack(key), payload)]
        body = _dumps({"uuid": key, **json.loads(row.payload_json)})
        futures = [self.link.publish_nowait(self.topics.result(key), body)]
        reply = json.loads(row.reply_to) if row.reply_to else None
        if isinstance(reply, dict) and reply.get("topic"):
            corr = reply.get("correlation")
            futures.append(
                self.link.publish_nowait(
                    str(reply["topic"]),
                    body,
                    correlation_data=base64.b64decode(corr) if corr else None,
                )
            )
        return futures

    async def _send_telemetry(self) -> None:
        interval = self.cfg.mqtt.telemetry_interval_s
        while True:
            await self.link.connected.wait()
            try:
                body = await self._telemetry()
                body.update(box=self.cfg.box_id, boot_id=self.boot_id, at=_now_text())
                await self.link.publish(self.topics.telemetry, _dumps(body), qos=0)
            except (GatewayError, OSError) as err:
                _LOGGER.debug("Telemetry not sent: %s", err)
            await asyncio.sleep(interval)


def _reply_to(message: Message) -> str | None:
    """MQTT 5 response topic and correlation data, kept with the job for its result."""
    if not message.response_topic:
        return None
    corr = message.correlation_data
    return json.dumps(
        {
            "topic": message.response_topic,
            "correlation": base64.b64encode(corr).decode("ascii") if corr else None,
        }
    )


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
