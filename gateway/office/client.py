"""The central office's client: send a command to a box and wait for its result; watch the fleet.

`send` publishes the command (QoS 1) and publishes it again every `resend_s` until the box's
ack arrives — the box keys jobs by uuid, so a repeat never prints twice, and a command lost
with a broker restart is simply sent again. It then waits for `result/<uuid>`.
`watch` keeps the latest retained status and telemetry of every box.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import time
import uuid as uuid_mod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.domain.errors import GatewayError
from gateway.ingress.mqtt import LinkSettings, MqttLink
from gateway.ingress.signing import sign_command
from gateway.ingress.topics import Topics, split
from gateway.runtime.aio import wait_set

_LOGGER = logging.getLogger(__name__)

RESEND_S = 5.0  # no ack yet: send again
REASK_S = 30.0  # acked, no result yet: ask again (the box answers with the stored result)


@dataclass(frozen=True, slots=True)
class Signer:
    """The office's Ed25519 key; sequence numbers are milliseconds since the epoch, so they
    keep increasing across office restarts without a counter on disk."""

    key: Ed25519PrivateKey
    kid: str | None = None
    valid_for: dt.timedelta = dt.timedelta(minutes=15)

    @classmethod
    def from_file(cls, path: Path, kid: str | None = None) -> Signer:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise GatewayError(f"{path} is not an Ed25519 private key", code="bad_key")
        return cls(key, kid)

    def sign(self, doc: dict[str, Any], box: str) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        return sign_command(
            doc,
            self.key,
            box=box,
            seq=time.time_ns() // 1_000_000,
            expires=now + self.valid_for,
            kid=self.kid,
        )


@dataclass
class Outcome:
    """What came back for one command."""

    uuid: str
    ack: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    sends: int = 0
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class Office:
    """One office connection (its own client id and certificate)."""

    def __init__(self, settings: LinkSettings, prefix: str = "fiscal/v1") -> None:
        self.prefix = prefix
        all_boxes = Topics(prefix, "+")
        subs = (
            (f"{prefix}/+/ack/+", 1),
            (f"{prefix}/+/result/+", 1),
            (all_boxes.status, 1),
            (all_boxes.telemetry, 0),
            (all_boxes.event, 1),
        )
        self.link = MqttLink(dataclasses.replace(settings, subscriptions=subs, will=None))
        self.outcomes: dict[tuple[str, str], Outcome] = {}
        self.status: dict[str, dict[str, Any]] = {}
        self.telemetry: dict[str, dict[str, Any]] = {}
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.on_update: Callable[[], None] | None = None

    async def run(self) -> None:
        """The link and the dispatcher; run it as a task."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.link.run(), name="office-link")
            tg.create_task(self._dispatch(), name="office-dispatch")

    async def _dispatch(self) -> None:
        while True:
            message = await self.link.messages.get()
            self.link.ack(message)
            where = split(message.topic, self.prefix)
            try:
                body = json.loads(message.payload) if message.payload else None
            except (ValueError, RecursionError):
                # A box's topic may carry anyone's junk (a retained message, a 1,000-deep
                # document): skip it, never end the office's dispatcher.
                _LOGGER.warning("Skipped an unreadable message on %s", message.topic)
                continue
            if where is None or not isinstance(body, dict):
                continue
            box, kind, uuid = where
            if kind == "status":
                self.status[box] = body
            elif kind == "telemetry":
                self.telemetry[box] = body
            elif kind == "event":
                self.events.append((box, body))
            elif kind in ("ack", "result"):
                out = self.outcomes.get((box, uuid))
                if out is None:
                    continue
                if kind == "ack":
                    if out.ack is None or body.get("status") == "rejected":
                        out.ack = body  # the first answer says whether it was new
                    out.acked.set()
                    if body.get("status") == "rejected":
                        out.finished.set()
                else:
                    out.result = body
                    out.acked.set()
                    out.finished.set()
            if self.on_update is not None:
                self.on_update()

    async def send(
        self,
        box: str,
        doc: dict[str, Any],
        *,
        signer: Signer | None = None,
        wait: bool = True,
        timeout_s: float = 300.0,
        resend_s: float = RESEND_S,
        reask_s: float = REASK_S,
        progress: Callable[[str], None] | None = None,
    ) -> Outcome:
        """Publish until acked; with `wait`, until the result (or a rejection) arrives.

        A result can be lost with a broker that dies before saving it; so while waiting, the
        command is sent again every `reask_s`: the box answers "duplicate" and, once the job
        has finished, its stored result — never a second print.
        """
        uuid = str(doc.get("uuid") or uuid_mod.uuid4())
        doc = {**doc, "uuid": uuid}
        out = self.outcomes.setdefault((box, uuid), Outcome(uuid))
        topic = Topics(self.prefix, box).cmd
        say = progress or (lambda _text: None)
        async with asyncio.timeout(timeout_s):
            while not (out.finished if wait else out.acked).is_set():
                await self.link.connected.wait()
                payload = json.dumps(signer.sign(doc, box) if signer else doc).encode("utf-8")
                try:
                    await self.link.publish(topic, payload)
                    out.sends += 1
                    say(f"sent {uuid} to {box}" + (" again" if out.sends > 1 else ""))
                except GatewayError as err:
                    if err.code == "mqtt_refused":  # the ACL says no: retrying cannot help
                        raise GatewayError(
                            f"the broker does not let this client publish to {topic} ({err}); "
                            "check the office certificate's name against the broker's ACL",
                            code="mqtt_refused",
                        ) from err
                    say(f"not sent yet: {err}")
                if not await wait_set(out.acked, resend_s) or not wait:
                    continue
                await wait_set(out.finished, reask_s)
        return out
