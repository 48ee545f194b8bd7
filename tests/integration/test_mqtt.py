"""The office link against a real Mosquitto (TLS, client certificates, the recommended ACL).

The daemon runs in-process on its built-in emulator (a real pty); the office side is the
project's own office client. Exactly-once is checked on the emulator's paper tape.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import gc
import json
import logging
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.app.gateway import Gateway
from gateway.ingress.mqtt import LinkSettings, MqttError, MqttLink, MqttState
from gateway.ingress.signing import sign_command
from gateway.ingress.topics import Topics
from gateway.office.client import Office, Outcome, Signer
from tests.integration.test_intake import cap_journal
from tests.support.box import wait_until
from tests.support.broker import Broker, Pki, free_port
from tests.support.in_process import gateway_tape, mqtt_connected, running_gateway

pytestmark = pytest.mark.timeout(120)

PREFIX = "fiscal/v1"


def sell(uuid: str, name: str = "Хлеб", *, box: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "uuid": uuid,
        "request": [
            {
                "type": "sell",
                "taxationType": "osn",
                "items": [
                    {
                        "type": "position",
                        "name": f"{name} {uuid}",
                        "price": 45.5,
                        "quantity": 1,
                        "amount": 45.5,
                        "tax": {"type": "vat10"},
                    }
                ],
                "payments": [{"type": "cash", "sum": 50}],
                "total": 45.5,
            }
        ],
    }
    if box is not None:
        doc["box"] = box
    return doc


def settings_for(broker: Broker, pki: Pki, cn: str, **extra: Any) -> LinkSettings:
    cert, key = (pki.root / f"{cn}.crt", pki.root / f"{cn}.key")
    if not cert.exists():
        cert, key = pki.issue(cn)
    return LinkSettings(
        host="127.0.0.1",
        port=broker.port,
        client_id=cn,
        tls=True,
        ca_file=pki.ca_file,
        cert_file=cert,
        key_file=key,
        **extra,
    )


@dataclass
class Box:
    gateway: Gateway
    state_dir: Path

    def tape(self) -> list[dict[str, Any]]:
        return gateway_tape(self.state_dir)

    def printed(self, uuid: str) -> int:
        return sum(
            1 for doc in self.tape() for item in doc.get("items", []) if uuid in item["name"]
        )


def box_config(tmp_path: Path, broker: Broker, pki: Pki, box_id: str, extra: str = "") -> str:
    cert, key = pki.issue(box_id)
    return f"""
box_id: {box_id}
state_dir: {tmp_path / box_id}
http:
  listen: 127.0.0.1:{free_port()}
web:
  enabled: false
mqtt:
  enabled: true
  host: 127.0.0.1
  port: {broker.port}
  telemetry_interval_s: 5
  tls:
    ca_file: {pki.ca_file}
    cert_file: {cert}
    key_file: {key}
{extra}
"""


@contextlib.asynccontextmanager
async def running_box(text: str, state_dir: Path) -> AsyncIterator[Box]:
    async with running_gateway(text, ready=mqtt_connected) as gw:
        yield Box(gw, state_dir)


@contextlib.asynccontextmanager
async def office_for(broker: Broker, pki: Pki, name: str = "office") -> AsyncIterator[Office]:
    office = Office(settings_for(broker, pki, name), PREFIX)
    task = asyncio.create_task(office.run())
    try:
        async with asyncio.timeout(20):
            await office.link.connected.wait()
        yield office
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_command_is_printed_once_and_its_result_comes_back(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    async with (
        running_box(box_config(tmp_path, broker, pki, "shop-1"), tmp_path / "shop-1") as box,
        office_for(broker, pki) as office,
    ):
        out = await office.send("shop-1", sell("m-1"), timeout_s=60)
        assert out.ack is not None
        assert out.ack["status"] == "accepted"
        assert out.result is not None
        result = out.result["results"][0]
        assert result["status"] == "ready"
        params = result["result"]["fiscalParams"]
        assert params["fiscalDocumentNumber"] == box.tape()[-1]["number"]
        assert box.printed("m-1") == 1
        # The same command again (a redelivery, or the office retrying): the stored result,
        # "duplicate", and no second receipt.
        office.outcomes.clear()
        again = await office.send("shop-1", sell("m-1"), timeout_s=60)
        assert again.ack is not None
        assert again.ack["status"] == "duplicate"
        assert again.ack["state"] == "done"
        assert again.result is not None
        assert again.result["results"][0]["result"]["fiscalParams"] == params
        assert box.printed("m-1") == 1
        # Status is retained "online" with this run's boot id; telemetry flows.
        await wait_until(lambda: "shop-1" in office.status and "shop-1" in office.telemetry)
        status = office.status["shop-1"]
        assert status["state"] == "online"
        assert status["boot_id"] == box.gateway.mqtt.boot_id  # type: ignore[union-attr]
        assert status["device"]["model"]
        tele = office.telemetry["shop-1"]
        assert tele["queue"]["depth"] == 0
        assert tele["jobs"]["done"] >= 1
        assert tele["system"]["rss_mb"] > 0
        health = await box.gateway.health()
        assert health["mqtt"]["state"] == "connected"  # type: ignore[index]


async def test_response_topic_and_correlation_data_are_honoured(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    async with running_box(box_config(tmp_path, broker, pki, "shop-1"), tmp_path / "shop-1"):
        replies = f"{PREFIX}/shop-1/reply/crm-7"
        office = MqttLink(settings_for(broker, pki, "office", subscriptions=((replies, 1),)))
        task = asyncio.create_task(office.run())
        try:
            async with asyncio.timeout(20):
                await office.connected.wait()
            await office.publish(
                f"{PREFIX}/shop-1/cmd",
                json.dumps(sell("m-rt")).encode(),
                response_topic=replies,
                correlation_data=b"\x01corr",
            )
            async with asyncio.timeout(60):
                msg = await office.messages.get()
            office.ack(msg)
            assert msg.topic == replies
            assert msg.correlation_data == b"\x01corr"
            assert json.loads(msg.payload)["results"][0]["status"] == "ready"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        (b"{not json", "not_json", ""),
        (b"[1, 2]", "invalid_request", ""),
        (
            json.dumps({"uuid": "bad-1", "request": [{"type": "sell"}]}).encode(),
            "invalid_request",
            "request[0].items",
        ),
        (
            json.dumps({"uuid": "bad-2", "request": [], "pad": "x" * 40000}).encode(),
            "too_large",
            "",
        ),
        (json.dumps(sell("bad-3", box="shop-2")).encode(), "wrong_box", "box"),
    ],
    ids=["not-json", "not-an-object", "wrong-schema", "oversize", "wrong-box"],
)
async def test_bad_commands_are_refused_with_an_event_and_nothing_printed(
    tmp_path: Path, broker: Broker, pki: Pki, payload: bytes, code: str, field: str
) -> None:
    async with (
        running_box(box_config(tmp_path, broker, pki, "shop-1"), tmp_path / "shop-1") as box,
        office_for(broker, pki) as office,
    ):
        await office.link.publish(f"{PREFIX}/shop-1/cmd", payload)
        await wait_until(lambda: any(e.get("event") == "command_refused" for _, e in office.events))
        event = next(e for _, e in office.events if e.get("event") == "command_refused")
        assert event["code"] == code
        if field:
            assert event["field"].startswith(field)
        assert box.tape() == []
        # The daemon keeps running: the next good command prints.
        out = await office.send("shop-1", sell("good-1"), timeout_s=60)
        assert out.result is not None
        assert box.printed("good-1") == 1
        assert box.gateway.mqtt is not None
        assert box.gateway.mqtt.commands_refused == 1


def _keypair(tmp_path: Path) -> tuple[Ed25519PrivateKey, Path, str]:
    key = Ed25519PrivateKey.generate()
    pem = tmp_path / "office-ed25519.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, pem, base64.b64encode(raw).decode()


async def test_signed_commands_forged_replayed_expired_and_unsigned_are_refused(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    key, pem, public = _keypair(tmp_path)
    extra = f"""  command_signing:
    mode: required
    public_keys: ["{public}"]
clock:
  trust: always
"""
    cfg = box_config(tmp_path, broker, pki, "shop-1", extra)
    async with running_box(cfg, tmp_path / "shop-1") as box, office_for(broker, pki) as office:
        signer = Signer.from_file(pem)
        ok = await office.send("shop-1", sell("s-1"), signer=signer, timeout_s=60)
        assert ok.result is not None
        assert box.printed("s-1") == 1

        now = dt.datetime.now(dt.UTC)
        later = now + dt.timedelta(minutes=5)
        good = sign_command(sell("s-2"), key, box="shop-1", seq=10**15, expires=later)
        forged = {**good, "request": sell("s-2", "Икра")["request"]}  # body changed after signing
        replay = sign_command(sell("s-3"), key, box="shop-1", seq=5, expires=later)
        expired = sign_command(
            sell("s-4"), key, box="shop-1", seq=10**15 + 1, expires=now - dt.timedelta(seconds=1)
        )
        other = Ed25519PrivateKey.generate()
        stranger = sign_command(sell("s-5"), other, box="shop-1", seq=10**15 + 2, expires=later)
        unsigned = sell("s-6")
        for doc in (forged, replay, expired, stranger, unsigned):
            await office.link.publish(f"{PREFIX}/shop-1/cmd", json.dumps(doc).encode())
        await wait_until(
            lambda: sum(e.get("event") == "command_refused" for _, e in office.events) == 5
        )
        codes = [e["code"] for _, e in office.events if e.get("event") == "command_refused"]
        assert codes == ["bad_signature", "replay", "expired", "bad_signature", "unsigned"]
        for uuid in ("s-2", "s-3", "s-4", "s-5", "s-6"):
            assert box.printed(uuid) == 0
        # The genuine s-2 still goes through (the forgery did not burn its sequence number).
        await office.link.publish(f"{PREFIX}/shop-1/cmd", json.dumps(good).encode())
        await wait_until(lambda: box.printed("s-2") == 1)


async def test_acl_keeps_a_box_out_of_another_box_topics(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    async with (
        running_box(box_config(tmp_path, broker, pki, "shop-1"), tmp_path / "shop-1") as box,
        office_for(broker, pki) as office,
    ):
        # shop-2's certificate: it tries to read shop-1's commands and to fake shop-1's results.
        spy = MqttLink(
            settings_for(broker, pki, "shop-2", subscriptions=((f"{PREFIX}/shop-1/cmd", 1),))
        )
        task = asyncio.create_task(spy.run())
        try:
            async with asyncio.timeout(20):
                await spy.connected.wait()
            fake = {"uuid": "x-1", "results": [{"status": "ready"}]}
            # MQTT 5: the broker answers an ACL-denied publish with PUBACK "Not authorized".
            with pytest.raises(MqttError, match="Not authorized"):
                await spy.publish(f"{PREFIX}/shop-1/result/x-1", json.dumps(fake).encode())
            with pytest.raises(MqttError, match="Not authorized"):
                await spy.publish(f"{PREFIX}/shop-1/cmd", json.dumps(sell("x-2")).encode())
            out = await office.send("shop-1", sell("x-3"), timeout_s=60)
            assert out.result is not None
            assert spy.messages.empty()  # never saw shop-1's command
            assert ("shop-1", "x-1") not in office.outcomes
            assert box.printed("x-2") == 0
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_client_without_a_certificate_is_refused(broker: Broker, pki: Pki) -> None:
    link = MqttLink(
        LinkSettings(
            host="127.0.0.1", port=broker.port, client_id="anon", tls=True, ca_file=pki.ca_file
        )
    )
    task = asyncio.create_task(link.run())
    try:
        await wait_until(lambda: link.last_error is not None, 20)
        assert link.state is not MqttState.CONNECTED
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_mqtt_3_1_1_works_too(tmp_path: Path, broker: Broker, pki: Pki) -> None:
    cfg = box_config(tmp_path, broker, pki, "shop-1").replace(
        "  telemetry_interval_s: 5", '  telemetry_interval_s: 5\n  protocol: "3.1.1"'
    )
    async with running_box(cfg, tmp_path / "shop-1") as box, office_for(broker, pki) as office:
        assert box.gateway.mqtt is not None
        assert box.gateway.mqtt.link.protocol_in_use == "3.1.1"
        out = await office.send("shop-1", sell("v3-1"), timeout_s=60)
        assert out.result is not None
        assert box.printed("v3-1") == 1


class ScriptPki:
    """The same certificate roles made by scripts/pki.sh (openssl), as an operator would."""

    SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pki.sh"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._run("ca", str(root / "ca"))
        self.ca_file = root / "ca" / "ca.crt"

    def _run(self, *args: str) -> None:
        subprocess.run([str(self.SCRIPT), *args], check=True, capture_output=True, timeout=60)

    def issue(self, cn: str, *, server: bool = False) -> tuple[Path, Path]:
        if server:
            self._run("server", str(self.root / "ca"), "127.0.0.1", str(self.root / "srv"))
            return self.root / "srv" / "server.crt", self.root / "srv" / "server.key"
        # The box makes its key and CSR; the office signs the CSR.
        self._run("box-key", cn, str(self.root / "box"))
        self._run("sign", str(self.root / "ca"), str(self.root / "box" / f"{cn}.csr"))
        return self.root / "box" / f"{cn}.crt", self.root / "box" / f"{cn}.key"


async def test_certificates_from_the_pki_script_work_under_the_acl(tmp_path: Path) -> None:
    pki = ScriptPki(tmp_path / "pki")
    (tmp_path / "broker").mkdir()
    broker = Broker(tmp_path / "broker", pki)  # type: ignore[arg-type]
    broker.start()
    try:
        async with running_box(
            box_config(tmp_path, broker, pki, "shop-1"),  # type: ignore[arg-type]
            tmp_path / "shop-1",
        ) as box:
            cert, key = pki.issue("office")
            office = Office(
                LinkSettings(
                    host="127.0.0.1",
                    port=broker.port,
                    client_id="office",
                    tls=True,
                    ca_file=pki.ca_file,
                    cert_file=cert,
                    key_file=key,
                ),
                PREFIX,
            )
            task = asyncio.create_task(office.run())
            try:
                out = await office.send("shop-1", sell("pki-1"), timeout_s=60)
                assert out.result is not None
                assert box.printed("pki-1") == 1
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        broker.stop()


async def test_a_late_will_from_an_earlier_boot_does_not_stand(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    async with (
        running_box(box_config(tmp_path, broker, pki, "shop-1"), tmp_path / "shop-1") as box,
        office_for(broker, pki) as office,
    ):
        assert box.gateway.mqtt is not None
        boot = box.gateway.mqtt.boot_id
        await wait_until(lambda: office.status.get("shop-1", {}).get("boot_id") == boot)
        seen: list[str] = []
        office.on_update = lambda: seen.append(str(office.status["shop-1"].get("state")))
        # The broker publishes an old connection's will after the new one announced itself.
        stale = {"state": "offline", "boot_id": "an-earlier-boot", "reason": "connection lost"}
        await office.link.publish(
            f"{PREFIX}/shop-1/status", json.dumps(stale).encode(), retain=True
        )
        await wait_until(lambda: "offline" in seen and "online" in seen[seen.index("offline") :])
        assert office.status["shop-1"]["boot_id"] == boot


class Mqtt311OnlyBroker:
    """A broker that speaks only MQTT 3.1.1: it refuses a version-5 CONNECT the way such
    brokers do (CONNACK return code 1, MQTT 3.1.1 §3.2.2.3), accepts 3.1.1 and grants
    subscriptions. Plain TCP; enough protocol to prove the client's fallback."""

    def __init__(self) -> None:
        self.versions: list[int] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _packet(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = (await reader.readexactly(1))[0]
        length, shift = 0, 0
        while True:
            byte = (await reader.readexactly(1))[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return head, await reader.readexactly(length)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head, body = await self._packet(reader)
            assert head == 0x10  # CONNECT
            level = body[6]  # after the 2-byte length and "MQTT"
            self.versions.append(level)
            if level != 4:
                writer.write(bytes([0x20, 2, 0, 1]))  # unacceptable protocol version
                await writer.drain()
                return
            writer.write(bytes([0x20, 2, 0, 0]))
            await writer.drain()
            while True:
                head, body = await self._packet(reader)
                if head & 0xF0 == 0x80:  # SUBSCRIBE: grant QoS 1 to every filter
                    pos, grants = 2, b""
                    while pos < len(body):
                        size = int.from_bytes(body[pos : pos + 2], "big")
                        pos += 2 + size + 1
                        grants += b"\x01"
                    writer.write(bytes([0x90, 2 + len(grants)]) + body[:2] + grants)
                elif head & 0xF0 == 0xC0:  # PINGREQ
                    writer.write(bytes([0xD0, 0]))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_mqtt_5_falls_back_to_3_1_1_when_the_broker_refuses_5() -> None:
    old = Mqtt311OnlyBroker()
    await old.start()
    link = MqttLink(
        LinkSettings(host="127.0.0.1", port=old.port, client_id="shop-1",
                     subscriptions=((f"{PREFIX}/shop-1/cmd", 1),))
    )  # fmt: skip
    task = asyncio.create_task(link.run())
    try:
        async with asyncio.timeout(30):
            await link.connected.wait()
        assert link.protocol_in_use == "3.1.1"
        assert old.versions[:2] == [5, 4]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await old.close()


async def test_an_update_command_with_a_forged_release_signature_changes_nothing(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    release_key = Ed25519PrivateKey.generate()
    public = base64.b64encode(
        release_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    ).decode()
    extra = f"""updates:
  root: {tmp_path / "releases"}
  public_keys: ["{public}"]
"""
    cfg = box_config(tmp_path, broker, pki, "shop-1") + extra
    async with running_box(cfg, tmp_path / "shop-1") as box, office_for(broker, pki) as office:
        forger = Ed25519PrivateKey.generate()
        command = {
            "op": "update",
            "version": "9.9.9",
            "url": "http://127.0.0.1:9/never-fetched.tar.gz",
            "sha256": "ab" * 32,
            "size": 1000,
            "signature": base64.b64encode(forger.sign(b"anything")).decode(),
        }
        await office.link.publish(f"{PREFIX}/shop-1/cmd", json.dumps(command).encode())
        await wait_until(lambda: any(e.get("event") == "update_outcome" for _, e in office.events))
        outcome = next(e for _, e in office.events if e.get("event") == "update_outcome")
        assert outcome["result"] == "rejected"
        assert outcome["version"] == "9.9.9"
        assert not (tmp_path / "releases" / "current").exists()
        assert box.gateway.exit_code == 0
        # The daemon carries on printing.
        out = await office.send("shop-1", sell("after-update"), timeout_s=60)
        assert out.result is not None


# --- hostile input, retained junk, a refused outbox row, disk full, replayed updates --------

HOSTILE_COMMANDS: dict[str, tuple[bytes, str]] = {
    # uuid: (payload, refusal code). Each once crashed the daemon or came back at every start.
    "h-deep": (
        b'{"uuid": "h-deep", "request": [' + b"[" * 1000 + b"]" * 1000 + b"]}",
        "not_json",
    ),
    "h-surrogate": (
        b'{"uuid": "h-surrogate", "request": [{"type": "reportX", "\\ud800": 1}]}',
        "invalid_request",
    ),
    "h-number": (
        b'{"uuid": "h-number", "request": [{"type": "cashIn", "cashSum": ' + b"9" * 5000 + b"}]}",
        "not_json",
    ),
    "h-binary": (b'{"uuid": "h-binary", "request": [{"type": "\xff\xfe"}]}', "not_json"),
    "h-big": (b'{"uuid": "h-big", "request": [], "pad": "' + b"x" * 40_000 + b'"}', "too_large"),
}
NAMELESS = b"[" * 1000 + b"]" * 1000  # names no uuid: an event only
# A uuid that would make the ack topic a wildcard: not a uuid, so no ack, and nothing breaks.
WILDCARD = json.dumps({"uuid": "a/#", "request": [{"type": "reportX"}]}).encode()


@pytest.mark.parametrize(
    ("topic", "problem"),
    [
        (f"{PREFIX}/shop-1/reply/crm-7", None),
        (f"{PREFIX}/shop-1/replies/x", None),  # the box's own subtree; the ACL may still say no
        ("crm/replies", "must lie under fiscal/v1/shop-1/"),
        (f"{PREFIX}/shop-2/reply/x", "must lie under fiscal/v1/shop-1/"),
        (f"{PREFIX}/shop-1", "must lie under fiscal/v1/shop-1/"),
        (f"{PREFIX}/shop-1/cmd", "own cmd topic"),
        (f"{PREFIX}/shop-1/status", "own status topic"),
        (f"{PREFIX}/shop-1/result/x", "own result topic"),
        (f"{PREFIX}/shop-1//x", "own empty topic"),
        (f"{PREFIX}/shop-1/reply/#", "wildcards"),
        (f"{PREFIX}/shop-1/reply/+/x", "wildcards"),
        (f"{PREFIX}/shop-1/reply/\x00", "control characters"),
        (f"{PREFIX}/shop-1/reply/\ud800", "control characters"),
        (f"{PREFIX}/shop-1/reply/" + "x" * 300, "longer than 256 bytes"),
    ],
)
def test_the_response_topic_rule(topic: str, problem: str | None) -> None:
    found = Topics(PREFIX, "shop-1").reply_problem(topic)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def refusals(office: Office) -> list[dict[str, Any]]:
    return [e for _, e in office.events if e.get("event") == "command_refused"]


async def test_hostile_commands_are_refused_acknowledged_and_never_come_back(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    cfg = box_config(tmp_path, broker, pki, "shop-1")
    async with running_box(cfg, tmp_path / "shop-1") as box, office_for(broker, pki) as office:
        outs = {uuid: office.outcomes.setdefault(("shop-1", uuid), Outcome(uuid))
                for uuid in HOSTILE_COMMANDS}  # fmt: skip
        for payload, _ in HOSTILE_COMMANDS.values():
            await office.link.publish(f"{PREFIX}/shop-1/cmd", payload)
        await office.link.publish(f"{PREFIX}/shop-1/cmd", NAMELESS)
        await office.link.publish(f"{PREFIX}/shop-1/cmd", WILDCARD)
        await wait_until(lambda: len(refusals(office)) == len(HOSTILE_COMMANDS) + 2)
        for uuid, (_, code) in HOSTILE_COMMANDS.items():
            await wait_until(lambda u=uuid: outs[u].ack is not None)
            ack = outs[uuid].ack
            assert ack is not None
            assert (ack["status"], ack["error"]["code"]) == ("rejected", code), ack
        codes = [(e["uuid"], e["code"]) for e in refusals(office)]
        expected = [(u, c) for u, (_, c) in HOSTILE_COMMANDS.items()]
        assert codes == [*expected, (None, "not_json"), (None, "invalid_request")]
        assert refusals(office)[-1]["field"] == "uuid"
        out = await office.send("shop-1", sell("after-hostile"), timeout_s=60)
        assert out.result is not None
        assert box.printed("after-hostile") == 1
        assert all(box.printed(uuid) == 0 for uuid in HOSTILE_COMMANDS)
    # Every one was acknowledged: a new start of the daemon is not sent any of them again.
    async with running_box(cfg, tmp_path / "shop-1") as box, office_for(broker, pki) as office:
        out = await office.send("shop-1", sell("after-restart"), timeout_s=60)
        assert out.result is not None
        assert box.gateway.mqtt is not None
        assert box.gateway.mqtt.commands_refused == 0
        assert box.printed("after-restart") == 1


@contextlib.asynccontextmanager
async def raw_link(broker: Broker, pki: Pki, name: str, *subs: str) -> AsyncIterator[MqttLink]:
    """A bare office client named `name` (the office client would read the junk too)."""
    settings = settings_for(broker, pki, "office", subscriptions=tuple((s, 1) for s in subs))
    link = MqttLink(dataclasses.replace(settings, client_id=name))
    task = asyncio.create_task(link.run())
    try:
        async with asyncio.timeout(20):
            await link.connected.wait()
        yield link
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def last_status(link: MqttLink, boot: str) -> dict[str, Any]:
    """Read status messages until one of boot `boot` comes."""
    async with asyncio.timeout(30):
        while True:
            msg = await link.messages.get()
            link.ack(msg)
            try:
                body = json.loads(msg.payload)
            except (ValueError, RecursionError):
                continue
            if isinstance(body, dict) and body.get("boot_id") == boot:
                return body


async def test_retained_junk_is_ignored_and_the_status_topic_put_right(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    cfg = box_config(tmp_path, broker, pki, "shop-1")
    async with raw_link(broker, pki, "office") as office:
        # Left on the broker before the box starts: delivered at every subscription.
        await office.publish(f"{PREFIX}/shop-1/status", NAMELESS, retain=True)
        junk_cmd = HOSTILE_COMMANDS["h-deep"][0]
        await office.publish(f"{PREFIX}/shop-1/cmd", junk_cmd, retain=True)
    for run in range(2):  # and again on the next start
        async with running_box(cfg, tmp_path / "shop-1") as box:
            assert box.gateway.mqtt is not None
            boot = box.gateway.mqtt.boot_id
            # A new subscriber is handed the box's own retained status, not the junk.
            async with raw_link(broker, pki, f"watcher-{run}", f"{PREFIX}/shop-1/status") as w:
                assert (await last_status(w, boot))["state"] == "online"
            async with office_for(broker, pki) as office_client:
                out = await office_client.send("shop-1", sell(f"r-{run}"), timeout_s=60)
                assert out.result is not None
                assert refusals(office_client) == []
            assert box.gateway.mqtt.commands_refused == 0  # a retained command is not one
            assert box.printed("h-deep") == 0


def outbox_row(path: Path, uuid: str) -> tuple[int, str | None]:
    """(attempts, delivered_at) of a job's result row, read as another process would."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute(
            "SELECT attempts, delivered_at FROM outbox WHERE kind = 'result' AND key = ?", (uuid,)
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0]), row[1]


async def test_a_reply_topic_the_broker_refuses_does_not_jam_the_outbox(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    cfg = box_config(tmp_path, broker, pki, "shop-1")
    async with running_box(cfg, tmp_path / "shop-1") as box, office_for(broker, pki) as office:
        assert box.gateway.mqtt is not None
        journal_file = box.gateway.mqtt.journal.path
        # Outside the box's subtree: refused at intake, naming the field.
        outside = office.outcomes.setdefault(("shop-1", "t-out"), Outcome("t-out"))
        await office.link.publish(
            f"{PREFIX}/shop-1/cmd", json.dumps(sell("t-out")).encode(), response_topic="crm/replies"
        )
        await wait_until(lambda: outside.ack is not None)
        assert outside.ack is not None
        assert outside.ack["error"]["code"] == "bad_response_topic"
        assert outside.ack["error"]["field"] == "response_topic"
        assert box.printed("t-out") == 0
        # Inside the subtree, but the ACL lets a box write only below reply/: the broker says no.
        denied = office.outcomes.setdefault(("shop-1", "t-acl"), Outcome("t-acl"))
        await office.link.publish(
            f"{PREFIX}/shop-1/cmd",
            json.dumps(sell("t-acl")).encode(),
            response_topic=f"{PREFIX}/shop-1/replies/crm",
        )
        await wait_until(lambda: denied.result is not None)  # its own result topic got it
        await wait_until(lambda: any(e.get("event") == "outbox_refused" for _, e in office.events))
        event = next(e for _, e in office.events if e.get("event") == "outbox_refused")
        assert (event["uuid"], event["kind"], event["retry_in_s"]) == ("t-acl", "result", 5)
        assert "Not authorized" in event["reason"]
        assert f"{PREFIX}/shop-1/replies/crm" in event["topics"]
        # The rest flow while it waits; it is not sent again every second.
        started = asyncio.get_running_loop().time()
        for n in range(3):
            out = await office.send("shop-1", sell(f"t-next-{n}"), timeout_s=30)
            assert out.result is not None
        if asyncio.get_running_loop().time() - started < 4:
            assert outbox_row(journal_file, "t-acl") == (1, None)
        await wait_until(lambda: outbox_row(journal_file, "t-acl")[0] == 2, 20)  # after 5 s
        assert outbox_row(journal_file, "t-acl")[1] is None
        assert box.printed("t-acl") == 1


async def test_disk_full_rejects_a_command_with_disk_full_and_queues_nothing(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    # No register answers, so accepted jobs stay queued: only intake writes to the journal.
    absent = f"register:\n  port: tcp://127.0.0.1:{free_port()}\n"
    cfg = box_config(tmp_path, broker, pki, "shop-1", absent)
    async with running_box(cfg, tmp_path / "shop-1") as box, office_for(broker, pki) as office:
        assert box.gateway.mqtt is not None
        journal = box.gateway.mqtt.journal
        out = await office.send("shop-1", sell("d-0"), wait=False, timeout_s=60)
        assert out.ack is not None
        assert out.ack["status"] == "accepted"
        await cap_journal(journal, full=True)
        full: str | None = None
        for n in range(1, 60):
            out = await office.send("shop-1", sell(f"d-{n}"), wait=False, timeout_s=30)
            assert out.ack is not None
            if out.ack["status"] == "rejected":
                assert out.ack["error"] == {
                    "code": "disk_full",
                    "field": "",
                    "description": "disk full: free space or replace the card",
                }
                full = f"d-{n}"
                break
            assert out.ack["status"] == "accepted"
        assert full is not None, "the journal never filled up"
        await wait_until(lambda: any(e.get("code") == "disk_full" for e in refusals(office)))
        await cap_journal(journal, full=False)
        assert await journal.find(full) is None
        office.outcomes.pop(("shop-1", full))
        out = await office.send("shop-1", sell(full), wait=False, timeout_s=60)
        assert out.ack is not None
        assert out.ack["status"] == "accepted"
        stored = await journal.find(full)
        assert stored is not None
        assert stored.state.value == "queued"


async def test_a_signed_update_command_cannot_be_replayed(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    key, _pem, public = _keypair(tmp_path)
    release_key = Ed25519PrivateKey.generate()
    release_public = base64.b64encode(
        release_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    ).decode()
    extra = f"""  command_signing:
    mode: required
    public_keys: ["{public}"]
clock:
  trust: always
updates:
  root: {tmp_path / "releases"}
  public_keys: ["{release_public}"]
"""
    cfg = box_config(tmp_path, broker, pki, "shop-1", extra)
    async with running_box(cfg, tmp_path / "shop-1") as box, office_for(broker, pki) as office:
        update = {
            "op": "update",
            "uuid": "upd-1",
            "version": "9.9.9",
            "url": "http://127.0.0.1:9/never-fetched.tar.gz",
            "sha256": "ab" * 32,
            "size": 1000,
            "signature": base64.b64encode(release_key.sign(b"not the manifest")).decode(),
        }
        later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
        command = json.dumps(sign_command(update, key, box="shop-1", seq=100, expires=later))

        def outcomes() -> int:
            return sum(e.get("event") == "update_outcome" for _, e in office.events)

        await office.link.publish(f"{PREFIX}/shop-1/cmd", command.encode())
        await wait_until(lambda: outcomes() == 1)
        # The same signed message again (captured and replayed): refused, the updater not run.
        await office.link.publish(f"{PREFIX}/shop-1/cmd", command.encode())
        await wait_until(lambda: len(refusals(office)) == 1)
        assert (refusals(office)[0]["code"], refusals(office)[0]["field"]) == ("replay", "seq")
        # Nor an older sequence number, even for a receipt.
        stale = sign_command(sell("u-2"), key, box="shop-1", seq=99, expires=later)
        await office.link.publish(f"{PREFIX}/shop-1/cmd", json.dumps(stale).encode())
        await wait_until(lambda: len(refusals(office)) == 2)
        assert refusals(office)[1]["code"] == "replay"
        await asyncio.sleep(0.5)
        assert outcomes() == 1
        assert box.printed("u-2") == 0
        # Expired: refused like any command.
        gone = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        expired = sign_command(update, key, box="shop-1", seq=101, expires=gone)
        await office.link.publish(f"{PREFIX}/shop-1/cmd", json.dumps(expired).encode())
        await wait_until(lambda: len(refusals(office)) == 3)
        assert refusals(office)[2]["code"] == "expired"
        assert outcomes() == 1


async def test_the_office_client_skips_junk_on_a_box_topic(broker: Broker, pki: Pki) -> None:
    deep = b"[" * 1000 + b"]" * 1000
    async with office_for(broker, pki) as office, raw_link(broker, pki, "prankster") as link:
        await link.publish(f"{PREFIX}/shop-9/event", deep)
        await link.publish(f"{PREFIX}/shop-9/event", b"\xff\xfe not utf-8")
        await link.publish(f"{PREFIX}/shop-9/event", b'{"kind": "after-the-junk"}')
        await wait_until(lambda: office.events == [("shop-9", {"kind": "after-the-junk"})])


async def test_a_dead_broker_leaves_no_unretrieved_future(
    broker: Broker, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    async with office_for(broker, pki) as office:
        broker.kill()
        # A reconnect refused by the closed port leaves a CONNACK future nobody awaits.
        await wait_until(lambda: "ConnectionRefused" in (office.link.last_error or ""))
        gc.collect()  # an unretrieved exception is logged when its future goes
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


async def test_a_full_incoming_queue_pauses_reading_instead_of_reconnecting(
    broker: Broker, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """A slow consumer with a small queue: when the queue is full the link stops reading the
    socket (nothing is acknowledged, so the broker waits) and reads on as it empties, so a
    burst larger than the queue arrives whole, in seconds, without reconnects."""
    cmd = f"{PREFIX}/shop-1/cmd"
    box = MqttLink(settings_for(broker, pki, "shop-1", subscriptions=((cmd, 1),)), queue_size=30)
    office = MqttLink(settings_for(broker, pki, "office"))
    tasks = [asyncio.create_task(box.run()), asyncio.create_task(office.run())]
    seen: set[bytes] = set()
    peak = 0

    async def consume() -> None:
        nonlocal peak
        while True:
            peak = max(peak, box.messages.qsize())
            message = await box.messages.get()
            await asyncio.sleep(0.005)  # a commit's worth of work
            if box.ack(message):
                seen.add(message.payload)

    tasks.append(asyncio.create_task(consume()))
    try:
        await wait_until(lambda: box.connected.is_set() and office.connected.is_set(), 20)
        burst = [f"command {i}".encode() for i in range(200)]
        for payload in burst:
            await office.publish(cmd, payload)
        started = asyncio.get_running_loop().time()
        await wait_until(lambda: seen == set(burst), 30)
        took = asyncio.get_running_loop().time() - started
        assert took < 15, f"the burst took {took:.1f} s"
        assert peak == 30  # the queue did fill up
        assert box.connected.is_set()
        assert not [r for r in caplog.records if "link disconnected" in r.getMessage()]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
