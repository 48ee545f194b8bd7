"""Hostile MQTT commands against the daemon (a process) through a real Mosquitto.

Retained junk waits on the box's own topics before it connects; then hand-made payloads
(deep nesting, invalid UTF-8, megabytes, wrong types, bad signatures and reply topics) and
the hostile requests of the parser fuzzer go to its command topic. Afterwards the box must
be running, online, print a valid receipt, and its paper tape must match its journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given

from gateway.domain.errors import GatewayError
from gateway.ingress.mqtt import LinkSettings
from gateway.office.client import Office, Outcome
from tests.fuzz import strategies as st
from tests.fuzz.budget import examples, fuzz, timeout_s
from tests.support.box import wait_until
from tests.support.broker import Broker, Pki
from tests.support.daemon import DaemonProcess
from tests.support.reconcile import load_jobs, reconcile

pytestmark = pytest.mark.timeout(timeout_s(600))

PREFIX = "fiscal/v1"
BOX = "shop-1"
CMD = f"{PREFIX}/{BOX}/cmd"


def sell(uuid: str, name: str) -> dict[str, object]:
    return {
        "uuid": uuid,
        "request": [
            {
                "type": "sell",
                "items": [
                    {
                        "type": "position",
                        "name": name,
                        "price": 12.5,
                        "quantity": 2,
                        "amount": 25,
                        "tax": {"type": "vat10"},
                    }
                ],
                "payments": [{"type": "cash", "sum": 30}],
            }
        ],
    }


def deep(n: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * n + b"1" + closer * n


def hand_made() -> list[tuple[str, bytes, str | None]]:
    """(what, payload, MQTT 5 response topic) the box must survive."""
    valid = json.dumps(sell("hm-valid", "ручной")).encode()
    return [
        ("empty", b"", None),
        ("null", b"null", None),
        ("a number", b"42", None),
        ("a list", b"[]", None),
        ("an empty object", b"{}", None),
        ("1,000-deep list", deep(1000), None),
        ("1,000-deep object", b'{"uuid":"d1","request":' + deep(1000, b'{"a":', b"}") + b"}", None),
        ("100,000-deep list", deep(100_000), None),
        ("invalid UTF-8", b'{"uuid":"u1","request":"\xff\xfe"}', None),
        ("a lone surrogate, raw", b'{"uuid":"u2","request":"\xed\xa0\x80"}', None),
        ("a lone surrogate, escaped", valid.replace("ручной".encode(), b"\\ud800"), None),
        ("NUL bytes", b"\x00" * 64, None),
        ("40 KB", b'{"uuid":"big1","request":"' + b"x" * 40_000 + b'"}', None),
        ("1 MB", b'{"uuid":"big2","request":[' + b"1," * 500_000 + b"1]}", None),
        ("8 MB", b"[" * 8_000_000, None),
        ("uuid a number", b'{"uuid":5,"request":[{"type":"reportX"}]}', None),
        ("uuid 200 chars", json.dumps({"uuid": "u" * 200, "request": []}).encode(), None),
        ("request a string", b'{"uuid":"t1","request":"sell"}', None),
        ("items a string", b'{"uuid":"t2","request":[{"type":"sell","items":"x"}]}', None),
        ("NaN sum", valid.replace(b'"sum": 30', b'"sum": NaN'), None),
        ("1e999999 price", valid.replace(b'"price": 12.5', b'"price": 1e999999'), None),
        ("duplicate uuid key", b'{"uuid":"a","uuid":"b","request":[{"type":"reportX"}]}', None),
        ("box a list", json.dumps({**sell("b1", "x"), "box": [BOX]}).encode(), None),
        ("another box", json.dumps({**sell("b2", "x"), "box": "shop-2"}).encode(), None),
        ("signature junk", json.dumps({**sell("s1", "x"), "signature": {"alg": 5}}).encode(), None),
        ("signature a list", json.dumps({**sell("s2", "x"), "signature": [1]}).encode(), None),
        ("reply to another box", json.dumps(sell("r1", "x")).encode(), f"{PREFIX}/shop-2/cmd"),
        ("reply to a wildcard", json.dumps(sell("r2", "x")).encode(), f"{PREFIX}/{BOX}/reply/#"),
        ("reply to our cmd", json.dumps(sell("r3", "x")).encode(), CMD),
    ]


RETAINED_JUNK = [
    (f"{PREFIX}/{BOX}/status", b"\xff not json"),
    (f"{PREFIX}/{BOX}/cmd", json.dumps(sell("retained-1", "RETAINED")).encode()),
    (f"{PREFIX}/{BOX}/ack/x", b"[[[["),
    (f"{PREFIX}/{BOX}/result/x", b'{"results": 5}'),
    (f"{PREFIX}/{BOX}/event", b"\x00"),
    (f"{PREFIX}/{BOX}/telemetry", b"{}"),
]


def collected_bodies(n: int) -> list[bytes]:
    """`n` bodies from the parser fuzzer's strategy (the same ones every run, FUZZ_SEED aside)."""
    out: list[bytes] = []

    @fuzz(ci_examples=n)
    @given(st.hostile_bodies())
    def grab(body: bytes) -> None:
        out.append(body)

    grab()
    return out


@dataclass
class Tally:
    sent: int = 0
    not_sendable: list[str] = field(default_factory=list)  # the client library refused them
    answers: Counter[str] = field(default_factory=Counter)


def settings_for(broker: Broker, pki: Pki, cn: str) -> LinkSettings:
    cert, key = pki.issue(cn)
    return LinkSettings(
        host="127.0.0.1",
        port=broker.port,
        client_id=cn,
        tls=True,
        ca_file=pki.ca_file,
        cert_file=cert,
        key_file=key,
    )


@contextlib.asynccontextmanager
async def office_on(broker: Broker, pki: Pki) -> AsyncIterator[Office]:
    office = Office(settings_for(broker, pki, "office"), PREFIX)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(office.run(), name="test-office")
        try:
            async with asyncio.timeout(20):
                await office.link.connected.wait()
            yield office
        finally:
            task.cancel()


@pytest.fixture
def daemon(tmp_path: Path, broker: Broker, pki: Pki) -> Iterator[DaemonProcess]:
    box = DaemonProcess(tmp_path, BOX).with_mqtt(broker, pki)
    try:
        yield box
    finally:
        box.stop()


async def publish(
    office: Office, tally: Tally, what: str, payload: bytes, reply: str | None
) -> None:
    try:
        await office.link.publish(CMD, payload, response_topic=reply)
        tally.sent += 1
    except (GatewayError, ValueError) as err:
        tally.not_sendable.append(f"{what}: {err}")


async def test_hostile_commands_leave_the_box_printing(
    daemon: DaemonProcess, broker: Broker, pki: Pki
) -> None:
    tally = Tally()
    bodies = collected_bodies(examples(120))
    async with office_on(broker, pki) as office:
        for topic, junk in RETAINED_JUNK:
            await office.link.publish(topic, junk, retain=True)
        daemon.start()
        await wait_until(lambda: office.status.get(BOX, {}).get("state") == "online", 60)

        for what, payload, reply in hand_made():
            await publish(office, tally, what, payload, reply)
        for i, body in enumerate(bodies):
            await publish(office, tally, f"parser body {i}", body, None)
        assert daemon.alive(), daemon.log.read_text(errors="replace")[-3000:]

        # The box still takes a command and prints it.
        out: Outcome = await office.send(BOX, sell("after-mqtt-fuzz", "После фаззинга"))
        assert out.result is not None, out
        (result,) = out.result["results"]
        assert result["status"] == "ready", result
        assert office.status[BOX]["state"] == "online"  # the junk status was replaced
        for topic, _ in RETAINED_JUNK:  # leave the broker clean for the next test
            await office.link.publish(topic, b"", retain=True)
        tally.answers.update(str(body.get("event")) for _, body in office.events)

    assert daemon.alive()
    daemon.stop()
    names = [i["name"] for d in daemon.tape() for i in d.get("items", [])]
    assert "RETAINED" not in names  # a retained command is never run
    found = reconcile(daemon.tape(), await load_jobs(daemon.state_dir / "journal.sqlite3"))
    print(
        "\n".join(
            [
                f"commands sent: {tally.sent} ({len(hand_made())} hand-made, {len(bodies)} "
                f"from the parser fuzzer); not sendable: {tally.not_sendable}",
                f"events the box published: {dict(tally.answers)}",
                f"tracebacks in the box's log: {daemon.tracebacks()}",
                *found.lines(),
            ]
        )
    )
    assert found.wrong == []
    assert daemon.tracebacks() == []
