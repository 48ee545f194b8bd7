"""The HTTP API on aiohttp's real server with a real journal on a SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import ipaddress
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from openapi_schema_validator import OAS31Validator
from openapi_schema_validator import validate as validate_schema
from openapi_spec_validator import validate as validate_spec

from gateway.atol.names import NameMapping
from gateway.config.schema import HttpConfig, TlsFiles, TokenConfig
from gateway.config.values import Listen, Secret
from gateway.domain.errors import GatewayError
from gateway.ingress import http_api
from gateway.ingress.auth import sha256_hex
from gateway.ingress.http_api import HttpApi
from gateway.journal import JobState, Journal
from tests.integration.test_intake import cap_journal

SPEC: dict[str, Any] = json.loads(
    resources.files("gateway.ingress").joinpath("openapi.json").read_text(encoding="utf-8")
)
TOKEN = "crm-token-3f9a"
OTHER_TOKEN = "office-token-77c1"


def check_schema(name: str, instance: object) -> None:
    """The instance fits components.schemas[name] of the served spec."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]}
    validate_schema(instance, schema, cls=OAS31Validator)


def position(price: object = 45.5, quantity: object = 2, amount: object = 91.0) -> dict[str, Any]:
    """One receipt line."""
    return {
        "type": "position",
        "name": "Хлеб бородинский",
        "price": price,
        "quantity": quantity,
        "amount": amount,
        "tax": {"type": "vat10"},
    }


def sell(uuid: str, *items: dict[str, Any]) -> dict[str, Any]:
    """A one-task sell request paid in cash."""
    lines = list(items) or [position()]
    total = sum(float(i["amount"]) for i in lines)
    return {
        "uuid": uuid,
        "request": [
            {
                "type": "sell",
                "items": lines,
                "payments": [{"type": "cash", "sum": round(total + 10, 2)}],
            }
        ],
    }


def two_tasks() -> str:
    """tasks_json of a sell and an X report, for jobs made straight in the journal."""
    return json.dumps(sell("x")["request"] + [{"type": "reportX"}], ensure_ascii=False)


@dataclass
class Health:
    """A health callable whose answer the test sets."""

    body: dict[str, object] = field(default_factory=lambda: {"status": "ok"})
    fail: bool = False

    async def __call__(self) -> dict[str, object]:
        if self.fail:
            raise RuntimeError("register supervisor gone")
        return dict(self.body)


@dataclass
class Box:
    """A started HttpApi, its journal and a client session."""

    api: HttpApi
    journal: Journal
    session: aiohttp.ClientSession
    woken: list[str]
    health: Health

    async def call(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, Any, Mapping[str, str]]:
        """Status, JSON body and headers of one request."""
        async with self.session.request(method, path, **kwargs) as resp:
            assert resp.content_type == "application/json"
            assert resp.charset == "utf-8"
            return resp.status, await resp.json(), resp.headers

    async def post(self, body: object, **kwargs: Any) -> tuple[int, Any]:
        """POST a JSON body to /api/v2/requests."""
        status, data, _ = await self.call("POST", "/api/v2/requests", json=body, **kwargs)
        return status, data


@contextlib.asynccontextmanager
async def serving(
    journal: Journal,
    config: HttpConfig | None = None,
    *,
    ssl_ctx: ssl.SSLContext | None = None,
    host: str = "127.0.0.1",
) -> AsyncIterator[Box]:
    """Start the API on a free port; stop it afterwards."""
    woken: list[str] = []
    health = Health()
    api = HttpApi(
        config=config or HttpConfig(listen=Listen("127.0.0.1", 0)),
        journal=journal,
        mapping=NameMapping(),
        health=health,
        on_submitted=woken.append,
    )
    await api.start()
    try:
        assert api.port
        url = f"{api.scheme}://{host}:{api.port}"
        connector = aiohttp.TCPConnector(ssl=ssl_ctx) if ssl_ctx else None
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:
            yield Box(api, journal, session, woken, health)
    finally:
        await api.stop()


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = await Journal.open(tmp_path / "journal.sqlite3")
    yield j
    await j.close()


@pytest.fixture
async def box(journal: Journal) -> AsyncIterator[Box]:
    async with serving(journal) as b:
        yield b


# --- POST --------------------------------------------------------------------------------


async def test_post_answers_201_after_the_row_is_committed(box: Box, tmp_path: Path) -> None:
    status, body = await box.post(sell("sale-1"))
    assert status == 201
    check_schema("Accepted", body)
    assert body == {
        "uuid": "sale-1",
        "number": body["number"],
        "isBlocked": False,
        "blockedUUID": None,
        "blockReason": None,
    }
    assert isinstance(body["number"], int)
    assert box.woken == ["sale-1"]
    # A second connection to the same file sees the committed row.
    other = await Journal.open(tmp_path / "journal.sqlite3")
    try:
        job = await other.get("sale-1")
    finally:
        await other.close()
    assert (job.seq, job.state, job.source) == (body["number"], JobState.QUEUED, "http")
    assert json.loads(job.tasks_json) == sell("sale-1")["request"]
    assert [t.status for t in job.task_results] == ["wait"]


async def test_same_uuid_again_is_409_and_queues_nothing(box: Box) -> None:
    _, first = await box.post(sell("sale-2"))
    status, body = await box.post(sell("sale-2", position(10, 1, 10)))
    assert status == 409
    check_schema("DuplicateError", body)
    assert body == {
        "error": {"code": 409, "description": "request with this uuid already exists"},
        "uuid": "sale-2",
        "number": first["number"],
    }
    assert len(await box.journal.list_jobs()) == 1
    assert box.woken == ["sale-2"]


async def test_twenty_concurrent_posts_of_one_uuid_queue_it_once(box: Box) -> None:
    answers = await asyncio.gather(*(box.post(sell("rush")) for _ in range(20)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [409] * 19
    assert len({body["number"] for _, body in answers}) == 1
    assert len(await box.journal.list_jobs()) == 1
    assert box.woken == ["rush"]


async def test_invalid_field_is_400_naming_its_path(box: Box) -> None:
    bad = sell("bad-1", position(), position(10, 1, 10), position(1.234, 1, 1.23))
    status, body = await box.post(bad)
    assert status == 400
    check_schema("Error", body)
    assert body["error"]["code"] == 400
    assert body["error"]["field"] == "request[0].items[2].price"
    assert body["error"]["description"] == "request[0].items[2].price: more than 2 decimals"
    assert await box.journal.find("bad-1") is None


async def test_missing_uuid_and_not_json_are_400(box: Box) -> None:
    status, body = await box.post({"request": [{"type": "reportX"}]})
    assert (status, body["error"]["field"]) == (400, "uuid")
    status, body, _ = await box.call(
        "POST",
        "/api/v2/requests",
        data=b'{"uuid": "x", "request": [',
        headers={"Content-Type": "application/json"},
    )
    assert status == 400
    assert "field" not in body["error"]
    assert body["error"]["description"].startswith("not valid JSON")
    assert await box.journal.list_jobs() == []


async def test_body_over_the_limit_is_413(box: Box) -> None:
    big = sell("big", position()) | {"padding": "x" * 33_000}
    status, body = await box.post(big)
    assert status == 413
    assert body["error"] == {"code": 413, "description": "request body is larger than 32768 bytes"}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: aiohttp counts as it reads
        payload = json.dumps(big).encode()
        for start in range(0, len(payload), 4096):
            yield payload[start : start + 4096]

    status, body, _ = await box.call(
        "POST", "/api/v2/requests", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert (status, body["error"]["code"]) == (413, 413)
    assert await box.journal.list_jobs() == []


# Bodies that once could end a request in a 500 (or worse); each must be a 400.
HOSTILE_BODIES: dict[str, bytes] = {
    "nested-1000": b'{"uuid": "d-1", "request": [' + b"[" * 1000 + b"]" * 1000 + b"]}",
    "nested-15000": b'{"uuid": "d-2", "request": [' + b"[" * 15000 + b"]" * 15000 + b"]}",
    "surrogate-key": b'{"uuid": "s-1", "request": [{"type": "reportX", "\\ud800": 1}]}',
    "surrogate-value": b'{"uuid": "s-2", "request": [{"type": "\\udfff"}]}',
    "not-utf8": b'{"uuid": "u-1", "request": [{"type": "\xff\xfe"}]}',
    "huge-integer": b'{"uuid": "n-1", "request": [{"type": "cashIn", "cashSum": '
    + b"9" * 5000
    + b"}]}",
    "huge-exponent": b'{"uuid": "n-2", "request": [{"type": "cashIn", "cashSum": 1e999999}]}',
}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
async def test_hostile_bodies_are_400_and_the_next_receipt_is_queued(box: Box, body: bytes) -> None:
    status, answer, _ = await box.call(
        "POST", "/api/v2/requests", data=body, headers={"Content-Type": "application/json"}
    )
    assert status == 400, answer
    check_schema("Error", answer)
    assert answer["error"]["code"] == 400
    assert answer["error"]["description"]
    assert await box.journal.list_jobs() == []
    status, _ = await box.post(sell("after-hostile"))
    assert status == 201


async def test_disk_full_is_507_and_nothing_is_queued(box: Box) -> None:
    await cap_journal(box.journal, full=True)
    full: str | None = None
    for n in range(200):
        status, body = await box.post(sell(f"fill-{n}"))
        if status == 507:
            check_schema("Error", body)
            assert body["error"] == {
                "code": 507,
                "description": "disk full: free space or replace the card",
            }
            full = f"fill-{n}"
            break
        assert status == 201, body
    assert full is not None, "the journal never filled up"
    assert await box.journal.find(full) is None
    assert full not in box.woken
    await cap_journal(box.journal, full=False)
    status, _ = await box.post(sell(full))
    assert status == 201


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=windows-1251"],
)
async def test_body_not_json_typed_is_415(box: Box, content_type: str) -> None:
    data = json.dumps(sell("typed")).encode()
    status, body, _ = await box.call(
        "POST", "/api/v2/requests", data=data, headers={"Content-Type": content_type}
    )
    assert (status, body["error"]["code"]) == (415, 415)
    assert await box.journal.list_jobs() == []


async def test_query_tasks_are_queued_not_answered_here(box: Box) -> None:
    body = {"uuid": "ask", "request": [{"type": "getShiftStatus"}, {"type": "getFnStatus"}]}
    status, _ = await box.post(body)
    assert status == 201
    status, results, _ = await box.call("GET", "/api/v2/requests/ask")
    assert status == 200
    assert [r["status"] for r in results["results"]] == ["wait", "wait"]
    assert box.woken == ["ask"]


async def test_journal_failure_is_503_and_the_server_keeps_answering(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "closed.sqlite3")
    async with serving(journal) as b:
        await journal.close()
        status, body = await b.post(sell("later"))
        assert status == 503
        assert "retry" in body["error"]["description"]
        assert "same uuid" in body["error"]["description"]
        assert b.woken == []
        status, _, _ = await b.call("GET", "/health")
        assert status == 200


# --- GET -----------------------------------------------------------------------------------


async def get_results(box: Box, uuid: str) -> list[dict[str, Any]]:
    """GET one request, checked against the spec."""
    status, body, _ = await box.call("GET", f"/api/v2/requests/{uuid}")
    assert status == 200
    check_schema("Results", body)
    assert set(body) == {"results"}
    results: list[dict[str, Any]] = body["results"]
    return results


def no_error(result: Mapping[str, Any]) -> bool:
    """Both error forms say: none."""
    return result["error"] is None and result["errorCode"] == 0 and result["errorDescription"] == ""


async def test_get_shows_each_task_status_with_both_error_forms(box: Box) -> None:
    j = box.journal
    fiscal = {"fiscalParams": {"fiscalDocumentNumber": 6, "fiscalDocumentSign": "3284217011"}}
    for uuid in ("queued", "started", "printing", "ready", "failed", "blocked", "canceled"):
        await j.submit(uuid, two_tasks(), 2, source="http")

    queued = await get_results(box, "queued")
    assert [r["status"] for r in queued] == ["wait", "wait"]
    assert all(no_error(r) and r["result"] is None for r in queued)

    await j.start("started")  # claimed by the worker, before any fiscal step
    assert [r["status"] for r in await get_results(box, "started")] == ["inProgress", "wait"]

    await j.start("printing")
    await j.begin_fiscal_step("printing", 0, "sell", n0=5)
    assert [r["status"] for r in await get_results(box, "printing")] == ["inProgress", "wait"]

    await j.start("ready")
    await j.begin_fiscal_step("ready", 0, "sell", n0=5)
    await j.finish_task("ready", 0, fiscal)
    first, second = await get_results(box, "ready")
    assert (first["status"], first["result"]) == ("ready", fiscal)
    assert no_error(first)
    assert second["status"] == "inProgress"  # the next one is current now
    await j.finish_task("ready", 1, {})
    await j.complete("ready")
    assert [r["status"] for r in await get_results(box, "ready")] == ["ready", "ready"]

    await j.start("failed")
    await j.fail_task("failed", 0, 44, "no paper")
    error, interrupted = await get_results(box, "failed")
    assert error == {
        "status": "error",
        "error": {"code": 44, "description": "no paper"},
        "errorCode": 44,
        "errorDescription": "no paper",
        "result": None,
    }
    assert interrupted["status"] == "interrupted"
    assert interrupted["error"]["code"] == interrupted["errorCode"] == 502

    await j.start("blocked")
    await j.begin_fiscal_step("blocked", 0, "sell", n0=7)
    await j.block("blocked", 0, 501, "outcome unknown: the register did not answer")
    blocked, waiting = await get_results(box, "blocked")
    assert blocked["status"] == "blocked"
    assert blocked["error"] == {"code": 501, "description": blocked["errorDescription"]}
    assert blocked["errorCode"] == 501
    assert waiting["status"] == "wait"

    await j.cancel("canceled")
    canceled = await get_results(box, "canceled")
    assert [(r["status"], r["errorCode"], r["error"]["code"]) for r in canceled] == [
        ("canceled", 503, 503)
    ] * 2


async def test_post_reports_a_blocked_queue(box: Box) -> None:
    await box.journal.submit("stuck", two_tasks(), 2, source="mqtt")
    await box.journal.start("stuck")
    await box.journal.block("stuck", 0, 501, "outcome unknown")
    status, body = await box.post(sell("behind"))
    assert status == 201
    assert (body["isBlocked"], body["blockedUUID"], body["blockReason"]) == (
        True,
        "stuck",
        "outcome unknown",
    )


async def test_get_unknown_uuid_is_404(box: Box) -> None:
    status, body, _ = await box.call("GET", "/api/v2/requests/nobody")
    assert status == 404
    check_schema("Error", body)
    assert body["error"]["code"] == 404


async def test_list_is_newest_first(box: Box) -> None:
    for n in range(3):
        await box.post(sell(f"list-{n}"))
    status, body, _ = await box.call("GET", "/api/v2/requests", params={"limit": "2"})
    assert status == 200
    check_schema("RequestList", body)
    assert [r["uuid"] for r in body["requests"]] == ["list-2", "list-1"]
    before = body["requests"][-1]["number"]
    _, rest, _ = await box.call("GET", "/api/v2/requests", params={"before": str(before)})
    assert [r["uuid"] for r in rest["requests"]] == ["list-0"]
    status, body, _ = await box.call("GET", "/api/v2/requests", params={"limit": "0"})
    assert (status, body["error"]["field"]) == (400, "limit")


# --- DELETE --------------------------------------------------------------------------------


async def test_delete_cancels_only_a_queued_request(box: Box) -> None:
    await box.post(sell("drop"))
    status, body, _ = await box.call("DELETE", "/api/v2/requests/drop")
    assert status == 200
    check_schema("Canceled", body)
    assert [r["status"] for r in body["results"]] == ["canceled"]
    assert (await box.journal.get("drop")).state is JobState.CANCELED

    status, body, _ = await box.call("DELETE", "/api/v2/requests/drop")
    assert (status, body["error"]["code"]) == (409, 409)

    await box.post(sell("running"))
    await box.journal.start("running")
    status, body, _ = await box.call("DELETE", "/api/v2/requests/running")
    assert (status, body["error"]["code"]) == (409, 409)
    assert (await box.journal.get("running")).state is JobState.IN_PROGRESS

    status, body, _ = await box.call("DELETE", "/api/v2/requests/nobody")
    assert (status, body["error"]["code"]) == (404, 404)


# --- auth ----------------------------------------------------------------------------------


def token_config(**changes: Any) -> HttpConfig:
    """Two clients: one token inline, one kept only as its SHA-256."""
    tokens = (
        TokenConfig("crm", token=Secret(TOKEN)),
        TokenConfig("office", token_sha256=sha256_hex(OTHER_TOKEN)),
    )
    return dataclasses.replace(HttpConfig(listen=Listen("127.0.0.1", 0), tokens=tokens), **changes)


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


async def test_loopback_needs_no_token_by_default(journal: Journal) -> None:
    async with serving(journal, token_config()) as b:
        status, _, _ = await b.call("GET", "/api/v2/requests")
        assert status == 200


async def test_token_required_when_loopback_is_not_trusted(
    journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.ingress")
    async with serving(journal, token_config(allow_loopback_without_token=False)) as b:
        status, body, headers = await b.call("GET", "/api/v2/requests")
        assert status == 401
        check_schema("Error", body)
        assert headers["WWW-Authenticate"].startswith("Bearer")

        status, _, headers = await b.call("GET", "/api/v2/requests", headers=bearer("wrong-tok"))
        assert status == 401
        assert 'error="invalid_token"' in headers["WWW-Authenticate"]

        basic = {"Authorization": "Basic Y3JtOnNlY3JldA=="}
        status, _, _ = await b.call("GET", "/api/v2/requests", headers=basic)
        assert status == 401

        status, body = await b.post(sell("no-token"))
        assert status == 401
        assert await journal.find("no-token") is None

        status, _ = await b.post(sell("with-token"), headers=bearer(TOKEN))
        assert status == 201
        status, _, _ = await b.call("GET", "/api/v2/requests", headers=bearer(OTHER_TOKEN))
        assert status == 200  # the client whose config holds only the SHA-256
        lower = {"Authorization": f"bearer {TOKEN}"}
        status, _, _ = await b.call("GET", "/api/v2/requests/with-token", headers=lower)
        assert status == 200

        for public in ("/health", "/api/openapi.json"):
            async with b.session.get(public) as resp:
                assert resp.status == 200
    refusals = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(refusals) == 4
    assert all("127.0.0.1" in r.getMessage() for r in refusals)
    assert not any("wrong-tok" in r.getMessage() or TOKEN in r.getMessage() for r in refusals)


async def raw_get(port: int, authorization: bytes) -> tuple[int, bytes]:
    """GET /api/v2/requests with an Authorization header of arbitrary bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"GET /api/v2/requests HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: " + authorization + b"\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        async with asyncio.timeout(10):
            answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize(
    "header",
    [b"Bearer \xff\xfe\xfd", b"Bearer " + "токен".encode("cp1251"), b"\xc3\x28 abc"],
    ids=["invalid-utf8", "cp1251", "broken-scheme"],
)
async def test_a_non_utf8_authorization_header_is_refused_not_an_error(
    journal: Journal, header: bytes
) -> None:
    async with serving(journal, token_config(allow_loopback_without_token=False)) as b:
        assert b.api.port is not None
        status, body = await raw_get(b.api.port, header)
        assert status in (400, 401), body
        assert json.loads(body)["error"]["code"] == status
        status, _, _ = await b.call("GET", "/api/v2/requests", headers=bearer(TOKEN))
        assert status == 200


def _lan_address() -> str | None:
    """This machine's address on a non-loopback interface, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if ipaddress.ip_address(address).is_loopback else address


async def test_lan_callers_need_a_token_whatever_their_headers_say(journal: Journal) -> None:
    address = _lan_address()
    if address is None:
        pytest.skip("no non-loopback address on this machine")
    config = token_config(listen=Listen(address, 0))
    async with serving(journal, config, host=address) as b:
        status, _, _ = await b.call("GET", "/api/v2/requests")
        assert status == 401
        spoofed = {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"}
        status, _, _ = await b.call("GET", "/api/v2/requests", headers=spoofed)
        assert status == 401
        status, _, _ = await b.call("GET", "/api/v2/requests", headers=bearer(TOKEN))
        assert status == 200


# --- HTTPS ---------------------------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fiscal-gateway test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "api.crt", directory / "api.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_https_with_the_configured_cert_and_key(journal: Journal, tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    config = HttpConfig(listen=Listen("127.0.0.1", 0), tls=TlsFiles(cert_file, key_file))
    trust = ssl.create_default_context(cafile=str(cert_file))
    async with serving(journal, config, ssl_ctx=trust) as b:
        assert b.api.scheme == "https"
        status, _, _ = await b.call("GET", "/health")
        assert status == 200
        status, _ = await b.post(sell("over-tls"))
        assert status == 201
        plain = f"http://127.0.0.1:{b.api.port}/health"
        with pytest.raises(aiohttp.ClientError):
            async with b.session.get(plain, ssl=False) as resp:
                await resp.read()


async def test_unreadable_tls_files_fail_start_with_a_clear_error(
    journal: Journal, tmp_path: Path
) -> None:
    missing = TlsFiles(tmp_path / "none.crt", tmp_path / "none.key")
    api = HttpApi(
        config=HttpConfig(listen=Listen("127.0.0.1", 0), tls=missing),
        journal=journal,
        mapping=NameMapping(),
        health=Health(),
        on_submitted=lambda _uuid: None,
    )
    with pytest.raises(GatewayError) as err:
        await api.start()
    assert err.value.code == "http_tls"
    assert "none.crt" in err.value.message


async def test_a_taken_port_fails_start_with_a_clear_error(box: Box) -> None:
    assert box.api.port is not None
    second = HttpApi(
        config=HttpConfig(listen=Listen("127.0.0.1", box.api.port)),
        journal=box.journal,
        mapping=NameMapping(),
        health=Health(),
        on_submitted=lambda _uuid: None,
    )
    with pytest.raises(GatewayError) as err:
        await second.start()
    assert err.value.code == "http_listen"
    await second.stop()  # harmless when it never started


# --- health, spec, errors ------------------------------------------------------------------


async def test_health_status_maps_to_200_or_503(box: Box) -> None:
    for given, code in (("ok", 200), ("degraded", 200), ("down", 503)):
        box.health.body = {"status": given, "journal": {"state": "ok"}}
        status, body, _ = await box.call("GET", "/health")
        assert (status, body["status"]) == (code, given)
        check_schema("Health", body)
    box.health.body = {"status": "fine"}
    status, body, _ = await box.call("GET", "/health")
    assert (status, body["status"]) == (503, "down")
    box.health.fail = True
    status, body, _ = await box.call("GET", "/health")
    assert (status, body["status"]) == (503, "down")
    assert "register supervisor gone" not in json.dumps(body)


async def test_openapi_is_served_valid_and_covers_every_route(box: Box) -> None:
    status, spec, _ = await box.call("GET", "/api/openapi.json")
    assert status == 200
    assert spec == SPEC
    validate_spec(spec)
    routes = {(path, m.lower()) for path, ops in http_api.ROUTES.items() for m in ops}
    routes |= {(http_api.ITEM_PATH, m.lower()) for m in http_api.ITEM_ROUTES}
    documented = {(p, m) for p, ops in spec["paths"].items() for m in ops if m != "parameters"}
    assert routes == documented


async def test_the_spec_examples_are_accepted(box: Box) -> None:
    post = SPEC["paths"]["/api/v2/requests"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    for example in examples.values():
        check_schema("NewRequest", example["value"])
        status, body = await box.post(example["value"])
        assert (status, body["uuid"]) == (201, example["value"]["uuid"])


async def test_unknown_path_and_method_answer_json(box: Box) -> None:
    status, body, _ = await box.call("GET", "/api/v1/nothing")
    assert (status, body["error"]["code"]) == (404, 404)
    status, body, headers = await box.call("PUT", "/api/v2/requests")
    assert (status, body["error"]["code"]) == (405, 405)
    assert "POST" in headers["Allow"]


async def test_unexpected_exception_is_500_json_and_the_server_lives_on(
    box: Box, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_job: object) -> None:
        raise KeyError("secret detail")

    status, _ = await box.post(sell("before-500"))
    assert status == 201
    with monkeypatch.context() as patch:
        patch.setattr(http_api, "_summary", broken)
        async with box.session.get("/api/v2/requests") as resp:
            assert resp.status == 500
            text = await resp.text()
    assert json.loads(text) == {
        "error": {"code": 500, "description": "internal error; see the box log"}
    }
    assert "secret detail" not in text
    assert "Traceback" not in text
    status, _ = await box.post(sell("after-500"))
    assert status == 201
    logged = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert logged


async def raw_request(port: int, request: bytes) -> tuple[int, str, bytes]:
    """Send raw bytes as one HTTP message; status, content type and body of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ", 2)[1]), headers.get("Content-Type", ""), body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /api/v2/requests HTTP/1.1\r\nHost: x\r\nCookie: a=\x00b\r\n\r\n",
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    ],
    ids=["nul-in-cookie", "request-line-too-long", "tls-hello"],
)
async def test_a_malformed_http_message_is_4xx_and_one_warning_line(
    box: Box, caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    assert box.api.port is not None
    status, _, _ = await raw_request(box.api.port, request_bytes)
    assert 400 <= status < 500
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    for record in caplog.records:
        assert not any(ord(c) < 0x20 for c in record.getMessage())
    status, _, _ = await box.call("GET", "/api/v2/requests")
    assert status == 200
