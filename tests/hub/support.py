"""Real parts for the hub's tests: PostgreSQL in a temp dir, hub processes, boxes, a callback
receiver, and an ATOL Online client."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support.broker import Broker, Pki, free_port
from tests.support.daemon import DaemonProcess

PG_BIN = Path("/usr/lib/postgresql")
START_S = 60.0


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(PG_BIN.glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    for bin_dir in versions:
        if (bin_dir / name).exists():
            return str(bin_dir / name)
    raise RuntimeError(f"{name} not found: install the Debian postgresql package")


@dataclass
class Postgres:
    """A throw-away PostgreSQL cluster on a free port (run as `postgres` when we are root)."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hub-pg-")))
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql://hub@127.0.0.1:{self.port}/hub"

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        data = self.root / "data"
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.root.chmod(0o755)
        self._run(_pg_tool("initdb"), "-D", str(data), "-A", "trust", "-U", "hub", "--no-sync")
        self._run(
            _pg_tool("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.root / "pg.log"),
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on",
            "-w",
            "start",
        )
        self._run(_pg_tool("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "hub", "hub")

    def stop(self) -> None:
        data = self.root / "data"
        if data.exists():
            self._run(_pg_tool("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class OfficeKey:
    """The office's Ed25519 signing key as a PEM file, and its public key for the boxes."""

    pem: Path
    public_b64: str

    @classmethod
    def make(cls, where: Path) -> OfficeKey:
        key = Ed25519PrivateKey.generate()
        where.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cls(where, base64.b64encode(raw).decode())


def signed_box(home: Path, box_id: str, broker: Broker, pki: Pki, key: OfficeKey) -> DaemonProcess:
    """A real box (the daemon on its emulator) that accepts only the office's signed commands."""
    box = DaemonProcess(home, box_id=box_id).with_mqtt(broker, pki)
    box.extra += (
        f'  command_signing:\n    mode: required\n    public_keys: ["{key.public_b64}"]\n'
        "clock:\n  trust: always\n"
    )
    return box


@dataclass
class HubProcess:
    """`python -m gateway hub run` with its own config and log."""

    home: Path
    name: str
    database: str
    broker: Broker
    pki: Pki
    key: OfficeKey
    routes: dict[str, str]  # ATOL group code -> box id
    extra: str = ""
    log_level: str = "debug"
    writeback: str = "{retry_min_s: 0.5, retry_max_s: 5, lease_s: 10}"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.home / f"{self.name}.log"

    def write_config(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        cert, key = self.pki.root / "office.crt", self.pki.root / "office.key"
        if not cert.exists():
            cert, key = self.pki.issue("office")
        routes = "".join(
            f"  - {{connector: atol_online, key: {g}, box: {b}}}\n" for g, b in self.routes.items()
        )
        codes = ", ".join(self.routes)
        cfg = self.home / f"{self.name}.yaml"
        cfg.write_text(
            f"""hub_id: test-hub
database: {self.database}
log_level: {self.log_level}
api: {{listen: 127.0.0.1:{self.port}}}
mqtt:
  host: 127.0.0.1
  port: {self.broker.port}
  client_id: {self.name}
  tls: {{ca_file: {self.pki.ca_file}, cert_file: {cert}, key_file: {key}}}
signing: {{private_key_file: {self.key.pem}, kid: test}}
dispatch: {{resend_s: 2, reask_s: 5, lease_s: 3}}
writeback: {self.writeback}
routes:
{routes}atol_online:
  accounts:
    - {{login: shop, password: s3cret-pass, group_codes: [{codes}, unrouted]}}
{self.extra}""",
            encoding="utf-8",
        )
        return cfg

    def start(self) -> None:
        cfg = self.write_config()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "hub", "run", "--config", str(cfg)],
                stdout=log,
                stderr=log,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited: {self.log.read_text(errors='replace')}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:  # the API listens last
                    return
            time.sleep(0.05)
        raise TimeoutError("the hub did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(10)

    def tracebacks(self) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [c.strip().splitlines()[-1] for c in text.split("Traceback")[1:] if c.strip()]


class CallbackReceiver:
    """A CRM's callback endpoint (aiohttp's real server): counts every POST per uuid."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bodies: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.arrivals: list[tuple[float, str]] = []  # (monotonic time, uuid), in order
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        self.counts[body["uuid"]] += 1
        self.arrivals.append((time.monotonic(), body["uuid"]))
        return web.json_response({"ok": True})

    async def __aenter__(self) -> CallbackReceiver:
        app = web.Application()
        app.router.add_post("/callback", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class AtolClient:
    """An e-shop calling the hub as it would call ATOL Online v5."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = f"{base}/possystem/v5"
        self.token: str | None = None

    async def login(self, login: str = "shop", password: str = "s3cret-pass") -> tuple[int, Any]:
        status, body = await self._call("POST", "/getToken", {"login": login, "pass": password})
        if status == 200:
            self.token = body["token"]
        return status, body

    async def sell(self, group: str, doc: dict[str, Any], op: str = "sell") -> tuple[int, Any]:
        return await self._call("POST", f"/{group}/{op}", doc)

    async def report(self, group: str, uuid: str) -> tuple[int, Any]:
        return await self._call("GET", f"/{group}/report/{uuid}", None)

    async def _call(self, method: str, path: str, doc: object) -> tuple[int, Any]:
        headers = {"Token": self.token} if self.token else {}
        data = None if doc is None else json.dumps(doc, ensure_ascii=False).encode()
        async with (
            asyncio.timeout(30),
            self.session.request(
                method,
                self.base + path,
                data=data,
                headers={**headers, "Content-Type": "application/json"},
            ) as resp,
        ):
            return resp.status, await resp.json(content_type=None)

    async def wait_done(self, group: str, uuid: str, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        body: Any = None
        while time.monotonic() < deadline:
            status, body = await self.report(group, uuid)
            if status == 200 and body["status"] != "wait":
                return dict(body)
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{uuid} still {body}")


def atol_sell(
    external_id: str, name: str, *, callback: str | None = None, price: float = 45.5
) -> dict[str, Any]:
    """An ATOL Online v5 sell body, as an e-shop sends it."""
    doc: dict[str, Any] = {
        "timestamp": time.strftime("%d.%m.%Y %H:%M:%S"),
        "external_id": external_id,
        "receipt": {
            "client": {"email": "buyer@example.org"},
            "company": {
                "email": "shop@example.org",
                "sno": "osn",
                "inn": "7700000000",
                "payment_address": "shop.example.org",
            },
            "items": [
                {
                    "name": name,
                    "price": price,
                    "quantity": 1,
                    "sum": price,
                    "measure": 0,
                    "payment_method": "full_payment",
                    "payment_object": 1,
                    "vat": {"type": "vat10"},
                }
            ],
            "payments": [{"type": 1, "sum": price}],
            "total": price,
        },
    }
    if callback is not None:
        doc["service"] = {"callback_url": callback}
    return doc


def printed_names(box: DaemonProcess) -> list[str]:
    return [item["name"] for doc in box.tape() for item in doc.get("items", [])]
