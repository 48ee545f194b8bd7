"""`python -m gateway run` as a process (for fuzzing and chaos): its config, log and tape."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.broker import Broker, Pki, free_port
from tests.support.tape import read_tape

START_S = 60.0


@dataclass
class DaemonProcess:
    """One daemon on its built-in emulator; HTTP on a free loopback port, the page off."""

    home: Path
    box_id: str = "shop-1"
    extra: str = ""  # more config (YAML, top level)
    token: str | None = None  # when set: the only way in, loopback included
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def state_dir(self) -> Path:
        return self.home / self.box_id

    @property
    def config(self) -> Path:
        return self.home / f"{self.box_id}.yaml"

    @property
    def log(self) -> Path:
        return self.home / f"{self.box_id}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def with_mqtt(self, broker: Broker, pki: Pki, **settings: object) -> DaemonProcess:
        """Add the box's MQTT link to `broker` (a client certificate for `box_id`)."""
        cert, key = pki.issue(self.box_id)
        lines = "".join(f"  {k}: {v}\n" for k, v in settings.items())
        self.extra += (
            f"mqtt:\n  enabled: true\n  host: 127.0.0.1\n  port: {broker.port}\n{lines}"
            f"  tls:\n    ca_file: {pki.ca_file}\n    cert_file: {cert}\n    key_file: {key}\n"
        )
        return self

    def write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"box_id: {self.box_id}\nstate_dir: {self.state_dir}\n"
            f"http:\n  listen: 127.0.0.1:{self.port}\n{self._http_auth()}"
            f"web:\n  enabled: false\n{self.extra}",
            encoding="utf-8",
        )

    def _http_auth(self) -> str:
        if self.token is None:
            return ""
        digest = hashlib.sha256(self.token.encode()).hexdigest()
        return (
            "  allow_loopback_without_token: false\n"
            f"  tokens:\n    - name: test\n      token_sha256: {digest}\n"
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def start(self, *, wait: bool = True) -> None:
        self.write_config()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(self.config)],
                stdout=log,
                stderr=log,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
        if wait:
            self.wait_ready()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout_s: float = START_S) -> dict[str, Any]:
        """Until /health answers with the register connected; its body."""
        deadline = time.monotonic() + timeout_s
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"the daemon exited: {self.log.read_text(errors='replace')}")
            status, body = self.get("/health")
            register = body.get("register") if isinstance(body, dict) else None
            if (
                status == 200
                and isinstance(register, dict)
                and register.get("state") == "connected"
            ):
                return body
            time.sleep(0.1)
        raise TimeoutError(f"not ready in {timeout_s} s: {body}")

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        """Status and JSON body (None when not JSON); status 0 when the connection failed."""
        req = urllib.request.Request(
            self.url + path,
            data=body,
            method=method,
            headers={"Content-Type": "application/json", **self.headers},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        except (OSError, urllib.error.URLError):
            return 0, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def post(self, doc: object) -> tuple[int, Any]:
        return self.request("POST", "/api/v2/requests", json.dumps(doc).encode())

    def result(self, uuid: str, timeout_s: float = 30.0) -> dict[str, Any]:
        """The request's first task once it is no longer waiting."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status, body = self.get(f"/api/v2/requests/{uuid}")
            if status == 200 and body["results"][0]["status"] not in ("wait", "inProgress"):
                return dict(body["results"][0])
            time.sleep(0.05)
        raise TimeoutError(f"{uuid} not finished in {timeout_s} s")

    def tracebacks(self) -> list[str]:
        """The exception line of each traceback in the daemon's log (nothing planned for it)."""
        if not self.log.exists():
            return []
        found: list[str] = []
        inside = False
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("Traceback (most recent call last)"):
                inside = True
            elif inside and line and not line[0].isspace():
                found.append(line[:300])
                inside = False
        return found

    def tape(self) -> list[dict[str, Any]]:
        return read_tape(self.state_dir / "emulator.state.journal.jsonl")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int | None:
        """Signal the daemon and reap it (SIGKILL when it outstays `timeout_s`); its exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                return proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout_s)
        return proc.returncode
