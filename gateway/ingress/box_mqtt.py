"""The box's side of the office link: commands in, acks / results / events / status out.

Commands: validated at the edge (size, JSON, signature, box id, ATOL schema), committed to
the journal through the intake, and only then PUBACKed — a crash before the commit leaves the
message unacknowledged in the broker's session, so it comes again; a known uuid prints nothing
and gets its ack ("duplicate") and, once finished, its stored result again. A refused command
is acknowledged too (it would only come back refused) after its event is committed. Whatever a
payload holds, reading it ends in a refusal, never in an exception that stops this task: one
such message would otherwise stop the daemon at every start, since it is never acknowledged.

Everything outgoing except telemetry and status comes from the journal's outbox: a row is
marked delivered only on the broker's PUBACK, so nothing is lost while the broker is away or
the daemon restarts (the office sees a result at least once and keys it by uuid). A row the
broker refuses is set aside with a growing delay so that it never holds up the others.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import logging
import re
import uuid as uuid_mod
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import __version__
from gateway.atol.names import NameMapping
from gateway.config import Config
from gateway.config.choices import SigningMode
from gateway.domain.errors import (
    CommandRefused,
    GatewayError,
    JournalError,
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
from gateway.ingress.topics import UUID_RE, Topics
from gateway.journal import Journal, OutboxItem, OutboxKind, outbox
from gateway.journal.intake import (
    DISK_FULL_TEXT,
    JOURNAL_TIMEOUT_S,
    Answer,
    DiskFull,
    ErrorBody,
    Intake,
    JournalUnavailable,
    Outcome,
    answer_for,
    is_disk_full,
    printable,
)
from gateway.runtime.aio import wait_set

_LOGGER = logging.getLogger(__name__)

PUMP_BATCH = 50
PUMP_IDLE_S = 30.0  # look at the outbox at least this often even without a wake-up
ACK_WAIT_S = 30.0
JOURNAL_RETRY_S = 5.0
SEQUENCE_KEY = "mqtt.command_seq"
REFUSED_CODE = "mqtt_refused"  # MqttError code of a PUBACK with a failure reason
UUID_SCAN_BYTES = 4096
_UUID_FIELD = re.compile(rb'"uuid"\s*:\s*"([A-Za-z0-9_.:-]{1,64})"')

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
        self._intake = Intake(
            journal, wake=on_submitted, mapping=mapping, max_bytes=cfg.http.max_body_bytes
        )
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
        self._retry_at: float | None = None  # loop time the earliest refused row is due

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
        """Take messages one at a time; no message, however made, ends this task."""
        while True:
            message = await self.link.messages.get()
            try:
                settled = await self._take(message)
            except Exception:
                # A bug, not input: logged, and acknowledged so it does not come back forever.
                _LOGGER.exception("Message on %s could not be handled", message.topic)
                settled = True
            if settled:
                self.link.ack(message)
            else:
                _LOGGER.warning("Command on %s not taken; it will come again", message.topic)

    async def _take(self, message: Message) -> bool:
        """Handle one message; False leaves it unacknowledged (journal trouble: comes again)."""
        if message.topic == self.topics.status:
            await self._on_status(message)
            return True
        if message.topic != self.topics.cmd:
            await self._on_stray(message)
            return True
        if message.retain:
            # Delivered from the broker's retained store at subscribe time, i.e. again at every
            # reconnect: a command is live or not at all (the box may not clear `cmd`).
            size = len(message.payload)
            _LOGGER.warning("Ignoring a retained command on %s (%d bytes)", message.topic, size)
            return True
        return await self.handle_command(message)

    async def _on_status(self, message: Message) -> None:
        """A stale `offline` (an old will, a retained leftover) must not stand while we live;
        retained junk on our own status topic is replaced by our `online`."""
        if not message.payload:
            return  # a cleared topic
        body = _decode_guarded(message.payload, self._max_bytes)
        valid = isinstance(body, dict) and body.get("state") in ("online", "offline")
        stale = (
            valid
            and isinstance(body, dict)
            and body.get("state") == "offline"
            and body.get("boot_id") != self.boot_id  # ours is only ever our own goodbye
        )
        if not valid:
            _LOGGER.warning(
                "Junk on the status topic (%d bytes%s); replacing it",
                len(message.payload),
                ", retained" if message.retain else "",
            )
        elif stale and isinstance(body, dict):
            _LOGGER.info(
                "Stale offline status (boot %r) on the broker; repeating online",
                str(body.get("boot_id"))[:40],
            )
        if (stale or not valid) and self.link.connected.is_set() and not self._stopping:
            with contextlib.suppress(MqttError):
                await self._announce()

    async def _on_stray(self, message: Message) -> None:
        """A message on a topic we did not ask for: ignored; retained ones in our own subtree
        are cleared (an empty retained message), since they would come again at every connect."""
        _LOGGER.warning("Ignoring a message on %s (%d bytes)", message.topic, len(message.payload))
        if message.retain and message.payload and self.topics.owns(message.topic):
            with contextlib.suppress(MqttError):
                await self.link.publish(message.topic, b"", retain=True)

    async def handle_command(self, message: Message) -> bool:
        """Validate and commit one command; refusals are committed as events (never raised).

        True once settled (committed, or refused and that recorded): the caller acknowledges
        it. False: the journal could not decide; the broker is to deliver it again.
        """
        self.last_command_at = dt.datetime.now(dt.UTC)
        uuid = _uuid_hint(message.payload)
        reply_to: str | None = None
        try:
            doc = self._decode(message.payload)
            raw_uuid = doc.get("uuid")
            uuid = raw_uuid if isinstance(raw_uuid, str) and UUID_RE.fullmatch(raw_uuid) else None
            sequence = self._check_signature(doc)
            reply_to = self._reply_to(message)
            if doc.get("op") == "update":
                await self._take_update(doc, sequence)
                return True
            parsed = self._intake.parse(message.payload)
            submitted = await self._intake.submit(
                parsed, source="mqtt", reply_to=reply_to, ack=True, sequence=sequence
            )
        except (CommandRefused, ValidationError, StaleCommand, DiskFull) as err:
            return await self._refuse(uuid, answer_for(err), reply_to)
        except JournalUnavailable as err:
            _LOGGER.error("Command %s not taken: %s", uuid or "(no uuid)", err)
            return False
        if submitted.outcome is Outcome.DUPLICATE:
            state = submitted.job.state.value if submitted.job is not None else "?"
            _LOGGER.info("Command %s is known already (%s); nothing queued", uuid, state)
        elif submitted.job is not None:
            _LOGGER.info("Command %s queued as job %d", uuid, submitted.job.seq)
        return True

    def _check_signature(self, doc: dict[str, Any]) -> tuple[str, int] | None:
        """The signed sequence to advance with the commit, or None in unsigned mode."""
        if self._verifier is None:
            check_box(doc, self.cfg.box_id)
            return None
        try:
            signed = self._verifier.verify(
                doc, now=dt.datetime.now(dt.UTC), clock_trusted=self._clock_trusted()
            )
        except CommandRefused:
            raise
        except Exception as err:  # e.g. a document too deep to canonicalise
            raise CommandRefused("bad_signature", "", f"cannot be checked: {_brief(err)}") from None
        return (SEQUENCE_KEY, signed.seq)

    def _reply_to(self, message: Message) -> str | None:
        """MQTT 5 response topic and correlation data, kept with the job for its result."""
        topic = message.response_topic
        if not topic:
            return None
        problem = self.topics.reply_problem(topic)
        if problem is not None:
            raise CommandRefused("bad_response_topic", "response_topic", problem)
        corr = message.correlation_data
        return json.dumps(
            {
                "topic": topic,
                "correlation": base64.b64encode(corr).decode("ascii") if corr else None,
            }
        )

    async def _take_update(self, doc: dict[str, Any], sequence: tuple[str, int] | None) -> None:
        """`{"op": "update", ...}`: handed to the app's updater (the artifact carries its own
        release signature, checked there); one at a time. A signed one consumes its sequence
        number first, so it cannot be replayed."""
        if self._on_update is None:
            raise CommandRefused("unsupported", "op", "this box takes no updates over MQTT")
        if sequence is not None:
            await self._advance_sequence(*sequence)
        if not self._on_update(doc):
            raise CommandRefused("busy", "op", "an update is already in progress")
        _LOGGER.info("Update command taken: version %r", str(doc.get("version"))[:64])

    async def _advance_sequence(self, key: str, seq: int) -> None:
        """Store `seq` as the last accepted, or StaleCommand. Commands are taken one at a time
        by this task, so read-then-write cannot interleave with another command."""
        try:
            async with asyncio.timeout(JOURNAL_TIMEOUT_S):
                stored = await self.journal.meta_get(key)
                last = int(stored) if stored is not None else -1
                if seq <= last:
                    raise StaleCommand(seq, last)
                await self.journal.meta_set(key, str(seq))
        except StaleCommand:
            raise
        except Exception as err:
            if is_disk_full(err):
                raise DiskFull(DISK_FULL_TEXT) from err
            raise JournalUnavailable(f"{type(err).__name__}: {err}") from err

    def _decode(self, payload: bytes) -> dict[str, Any]:
        if len(payload) > self._max_bytes:
            raise CommandRefused("too_large", "", f"larger than {self._max_bytes} bytes")
        try:
            doc = json.loads(payload)
        except RecursionError:
            raise CommandRefused("not_json", "", "not JSON: nested too deeply") from None
        except Exception as err:  # ValueError, UnicodeError, huge numbers
            raise CommandRefused("not_json", "", f"not JSON: {_brief(err)}") from None
        if not isinstance(doc, dict):
            raise CommandRefused("invalid_request", "", "the command must be a JSON object")
        return doc

    async def _refuse(self, uuid: str | None, answer: Answer, reply_to: str | None) -> bool:
        """Record a refusal (event, and a `rejected` ack if a uuid is known); True once it is
        recorded or, when the disk is full, published straight to the broker."""
        self.commands_refused += 1
        error = answer.error()
        _LOGGER.warning(
            "Command %s refused: %s (%s)", uuid or "(no uuid)", error["description"], answer.code
        )
        if answer.code != "disk_full":
            try:
                async with asyncio.timeout(JOURNAL_TIMEOUT_S):
                    await self.journal.refuse_command(uuid, {**error}, reply_to=reply_to)
                return True
            except Exception as err:
                if not is_disk_full(err):
                    _LOGGER.error("Refusal of %s not recorded: %s", uuid or "(no uuid)", err)
                    return False
        return await self._refuse_directly(uuid, error)

    async def _refuse_directly(self, uuid: str | None, error: ErrorBody) -> bool:
        """The journal cannot commit (disk full): tell the office without the outbox; the
        command is acknowledged only once the broker has taken the answer."""
        event = {"event": "command_refused", "at": _now_text(), "uuid": uuid, **error}
        try:
            if uuid is not None:
                body = {"uuid": uuid, "status": "rejected", "error": error}
                await self.link.publish(self.topics.ack(uuid), _dumps(body))
            await self.link.publish(self.topics.event, _dumps(event))
        except MqttError as err:
            _LOGGER.error("Refusal of %s not delivered: %s", uuid or "(no uuid)", err)
            return False
        return True

    # --- outgoing -----------------------------------------------------------------------------

    async def _pump(self) -> None:
        """Deliver the outbox in order; a row is done only on its PUBACK."""
        while True:
            await self.link.connected.wait()
            self.journal.outbox_added.clear()  # before reading: a row added meanwhile re-wakes us
            try:
                rows = await self.journal.outbox_pending(limit=PUMP_BATCH)
                if not rows:
                    await wait_set(self.journal.outbox_added, self._idle_s())
                    continue
                await self._deliver(rows)
            except JournalError as err:  # rows stay pending; the daemon carries on
                _LOGGER.error("Outbox delivery paused: %s", err)
                await asyncio.sleep(JOURNAL_RETRY_S)
            except Exception:  # a bug must not stop every later message
                _LOGGER.exception("Outbox delivery failed; trying again")
                await asyncio.sleep(JOURNAL_RETRY_S)

    async def _deliver(self, rows: list[OutboxItem]) -> None:
        """Publish a batch; a row the broker refuses is set aside with backoff, the rest flow."""
        sent: list[tuple[OutboxItem, list[asyncio.Future[None]]]] = []
        refused: list[tuple[OutboxItem, str]] = []
        paused = False
        for row in rows:
            try:
                sent.append((row, self._publish_row(row)))
            except MqttError as err:
                _LOGGER.debug("Outbox delivery paused: %s", err)
                paused = True
                break
            except (ValueError, TypeError) as err:  # a topic or payload paho will not send
                refused.append((row, _brief(err)))
        done: list[int] = []
        for row, futures in sent:
            try:
                await wait_acked(futures, timeout_s=ACK_WAIT_S)
            except MqttError as err:
                if err.code == REFUSED_CODE:
                    refused.append((row, err.message))
                    continue
                paused = True
                break  # the link is dropping: the rest wait for the next round, in order
            done.append(row.id)
        if done:
            await self.journal.outbox_done(done)
            self.published += len(done)
        if refused:
            await self._set_aside(refused)
        if paused:
            await asyncio.sleep(1.0)  # the link is dropping; do not spin on it

    def _idle_s(self) -> float:
        """How long to wait for new rows: until a refused row is due again, at most idle."""
        if self._retry_at is None:
            return PUMP_IDLE_S
        left = self._retry_at - asyncio.get_running_loop().time()
        if left <= 0:
            self._retry_at = None
        return min(PUMP_IDLE_S, max(left, 0.0) + 0.1)

    async def _set_aside(self, refused: list[tuple[OutboxItem, str]]) -> None:
        """Count the refusal on each row (the outbox backs off from it) and say so once."""
        await self.journal.outbox_attempted([row.id for row, _ in refused])
        for row, reason in refused:
            wait_s = outbox.backoff_s(row.attempts + 1)
            due = asyncio.get_running_loop().time() + wait_s
            self._retry_at = due if self._retry_at is None else min(self._retry_at, due)
            _LOGGER.warning(
                "Outbox row %d (%s %s) refused by the broker: %s; retrying in %d s",
                row.id,
                row.kind.value,
                row.key or "",
                reason,
                wait_s,
            )
            if row.attempts == 0 and row.kind is not OutboxKind.EVENT:
                await self.journal.add_event(
                    "outbox_refused",
                    {
                        "uuid": row.key,
                        "kind": row.kind.value,
                        "topics": self._row_topics(row),
                        "reason": printable(reason),
                        "retry_in_s": wait_s,
                    },
                )

    def _row_topics(self, row: OutboxItem) -> list[str]:
        key = row.key or ""
        if row.kind is OutboxKind.EVENT:
            return [self.topics.event]
        if row.kind is OutboxKind.ACK:
            return [self.topics.ack(key)]
        topics = [self.topics.result(key)]
        reply = _stored_reply(row.reply_to)
        if reply is not None:
            topics.append(reply[0])
        return topics

    def _publish_row(self, row: OutboxItem) -> list[asyncio.Future[None]]:
        payload = row.payload_json.encode("utf-8")
        key = row.key or ""
        if row.kind is OutboxKind.EVENT:
            return [self.link.publish_nowait(self.topics.event, payload)]
        if row.kind is OutboxKind.ACK:
            return [self.link.publish_nowait(self.topics.ack(key), payload)]
        body = _dumps({"uuid": key, **json.loads(row.payload_json)})
        futures = [self.link.publish_nowait(self.topics.result(key), body)]
        reply = _stored_reply(row.reply_to)
        if reply is not None:
            topic, corr = reply
            problem = self.topics.reply_problem(topic)
            if problem is None:
                futures.append(self.link.publish_nowait(topic, body, correlation_data=corr))
            else:  # stored before intake checked it: the result topic has to do
                _LOGGER.warning("Result %s not sent to %r: the topic %s", key, topic, problem)
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


def _stored_reply(reply_to: str | None) -> tuple[str, bytes | None] | None:
    """The (topic, correlation data) kept with a job, or None."""
    reply = json.loads(reply_to) if reply_to else None
    if not isinstance(reply, dict) or not reply.get("topic"):
        return None
    corr = reply.get("correlation")
    return str(reply["topic"]), base64.b64decode(corr) if corr else None


def _uuid_hint(payload: bytes) -> str | None:
    """The uuid a command names, read without parsing it (an oversized or broken command
    still gets its `rejected` ack): the first `"uuid": "<id>"` in its first bytes."""
    found = _UUID_FIELD.search(payload[:UUID_SCAN_BYTES])
    return found.group(1).decode("ascii") if found else None


def _decode_guarded(payload: bytes, max_bytes: int) -> object:
    """JSON or None: whatever the bytes are, nothing is raised."""
    if len(payload) > max_bytes:
        return None
    try:
        return json.loads(payload)
    except (Exception, RecursionError):
        return None


def _brief(err: BaseException) -> str:
    text = str(err)[:200]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
