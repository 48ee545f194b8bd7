"""The daemon loads only what its config uses.

The real daemon (`python -X importtime -m gateway run`) starts on the embedded defaults, its
register connects, and it is stopped; the interpreter's own import log then lists every module
the daemon process loaded. The built-in emulator runs as a child process, so its code is not
among them; nor are the cloud drivers, MQTT, signatures, updates or udev, none of which the
defaults turn on. The status page is on by default, but its code loads when its first client
connects: a visit to the page is the control that the listing sees what was imported.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

START_TIMEOUT_S = 60.0

# Heavy or optional code the defaults do not need: module -> what would turn it on.
NOT_ON_DEFAULTS = {
    "gateway.registers.emulator": "register.port: emulator runs it in a child process",
    "gateway.registers.checkbox": "register.driver: checkbox",
    "gateway.registers.vchasno": "register.driver: vchasno",
    "gateway.registers.cloud": "a cloud register",
    "paho": "mqtt.enabled",
    "gateway.ingress.box_mqtt": "mqtt.enabled",
    "cryptography": "mqtt.command_signing or an update",
    "gateway.updates": "an update command, or a release on trial",
    "pyudev": "a Shtrih register on a USB port",
    "gateway.office": "the office's commands, never the box",
}
PAGE_ONLY = {"gateway.web": "web.enabled", "jinja2": "web.enabled"}
# What the page's first visit loads; the in-memory log behind its diagnostics runs from the start.
PAGE_VISIT = {
    "gateway.web.server": "a visit",
    "gateway.web.app": "a visit",
    "jinja2": "a visit",
    "aiohttp": "a visit (the page is an aiohttp application; the ATOL API is not)",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _loaded_by_daemon(
    tmp_path: Path, *, page: bool = True, visit: bool = False, extra: str = ""
) -> set[str]:
    """Every module the daemon process imported until its register answered (and, with
    `visit`, until the status page answered its first request)."""
    cfg = tmp_path / "gw.yaml"
    web_port = _free_port()
    cfg.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        f"http:\n  listen: 127.0.0.1:{_free_port()}\n"
        f"web:\n  enabled: {str(page).lower()}\n  listen: 127.0.0.1:{web_port}\n{extra}",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "gateway", "run", "--config", str(cfg)],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    connected = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "register connected" in line:
                connected.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert connected.wait(START_TIMEOUT_S), "".join(lines[-30:])
        time.sleep(0.5)  # whatever the first poll of each monitor loads
        if visit:
            url = f"http://127.0.0.1:{web_port}/"
            with urllib.request.urlopen(url, timeout=START_TIMEOUT_S) as answer:
                assert answer.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=START_TIMEOUT_S) == 0, "".join(lines[-30:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
    # "import time:   self |  cumulative | <indent>module"
    return {
        line.rsplit("|", 1)[1].strip()
        for line in lines
        if line.startswith("import time:") and line.count("|") == 2
    }


def _hits(loaded: set[str], roots: dict[str, str]) -> dict[str, str]:
    return {
        module: why
        for module in sorted(loaded)
        for root, why in roots.items()
        if module == root or module.startswith(root + ".")
    }


@pytest.mark.slow
def test_the_defaults_load_no_optional_part(tmp_path: Path) -> None:
    loaded = _loaded_by_daemon(tmp_path)
    assert "gateway.app.gateway" in loaded
    assert "gateway.registers.shtrih.driver" in loaded
    assert "gateway.web.diagnostics" in loaded  # the page is on by default: its log runs
    assert _hits(loaded, {**NOT_ON_DEFAULTS, **PAGE_VISIT}) == {}


@pytest.mark.slow
def test_the_status_page_loads_on_its_first_visit(tmp_path: Path) -> None:
    loaded = _loaded_by_daemon(tmp_path, visit=True)
    assert set(PAGE_VISIT) <= loaded  # the control: the listing sees what the visit loaded
    assert _hits(loaded, NOT_ON_DEFAULTS) == {}


@pytest.mark.slow
def test_without_the_status_page_neither_page_nor_templates_load(tmp_path: Path) -> None:
    loaded = _loaded_by_daemon(tmp_path, page=False)
    assert "gateway.ingress.http_api" in loaded
    assert _hits(loaded, {**NOT_ON_DEFAULTS, **PAGE_ONLY}) == {}


def _mqtt(signing: str = "") -> str:
    """MQTT on, towards a port where no broker answers: the link keeps retrying."""
    return f"mqtt:\n  enabled: true\n  host: 127.0.0.1\n  port: {_free_port()}\n{signing}"


@pytest.mark.slow
def test_mqtt_with_signing_off_loads_no_cryptography(tmp_path: Path) -> None:
    loaded = _loaded_by_daemon(tmp_path, page=False, extra=_mqtt())
    assert {"gateway.ingress.box_mqtt", "gateway.ingress.signing", "paho"} <= loaded
    assert _hits(loaded, {"cryptography": "mqtt.command_signing"}) == {}


@pytest.mark.slow
def test_mqtt_with_signing_required_loads_cryptography(tmp_path: Path) -> None:
    key = base64.b64encode(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode("ascii")
    signing = f"  command_signing:\n    mode: required\n    public_keys: [{key}]\n"
    loaded = _loaded_by_daemon(tmp_path, page=False, extra=_mqtt(signing))
    assert "cryptography" in loaded  # the control: the listing sees it when it is used


def _releases(root: Path, current: str, confirmed: str) -> None:
    """The release layout of docs/box.md, as far as the daemon looks at it."""
    for version in {current, confirmed}:
        (root / "releases" / version).mkdir(parents=True)
    (root / "current").symlink_to(root / "releases" / current)
    (root / "confirmed").symlink_to(root / "releases" / confirmed)


@pytest.mark.slow
@pytest.mark.parametrize(("current", "loads_updater"), [("1.4.0", False), ("1.5.0", True)])
def test_an_installed_box_loads_the_updater_only_for_a_release_on_trial(
    tmp_path: Path, current: str, loads_updater: bool
) -> None:
    root = tmp_path / "opt"
    _releases(root, current, "1.4.0")
    loaded = _loaded_by_daemon(tmp_path, page=False, extra=f"updates:\n  root: {root}\n")
    assert ("gateway.updates.service" in loaded) is loads_updater
    # Confirming a trial needs no signature check and no download: those load only when an
    # update command runs.
    assert "cryptography" not in loaded
    assert "gateway.updates.download" not in loaded
