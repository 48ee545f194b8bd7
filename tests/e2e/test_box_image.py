"""The box's system, built by `image/build.sh vm`, booted with systemd-nspawn.

The same recipe as the Raspberry Pi image (amd64, no kernel): read-only root file system, the
data partition bound at /data, the boot partition's settings folder at /boot/firmware. Checks
what a box in a shop relies on: the settings a technician put on the card are imported, the
gateway reaches READY and answers /health, prints a receipt on its register (the built-in
emulator), a hung gateway is restarted by the watchdog, and the journal survives a power cut.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 1200
BOOT_TIMEOUT_S = 120

pytestmark = [
    pytest.mark.slow,
    # The first test also builds the tree (about 2 minutes) and boots it.
    pytest.mark.timeout(BUILD_TIMEOUT_S + 300),
    pytest.mark.skipif(os.geteuid() != 0, reason="building and booting the image needs root"),
    pytest.mark.skipif(
        shutil.which("mmdebstrap") is None or shutil.which("systemd-nspawn") is None,
        reason="mmdebstrap / systemd-nspawn not installed (scripts/apt-test.txt)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait(what: str, check: Callable[[], Any], timeout_s: float = BOOT_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})")


class Box:
    """One boot of the tree: `systemd-nspawn --boot` with a read-only root."""

    def __init__(self, rootfs: Path, data: Path, boot: Path, console: Path) -> None:
        self._console = console.open("ab")
        # --register=no --keep-unit: no machined here (and systemd is not PID 1 on CI).
        # The host's network: the gateway's ports are reached from the test directly.
        self.proc = subprocess.Popen(
            [
                "systemd-nspawn",
                "--quiet",
                "--register=no",
                "--keep-unit",
                "--read-only",
                f"--directory={rootfs}",
                f"--bind={data}:/data",
                f"--bind={boot}:/boot/firmware",
                "--console=pipe",
                "--boot",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._console,
            stderr=subprocess.STDOUT,
        )
        self.leader = _wait("the container's init", self._find_leader)

    def _find_leader(self) -> int | None:
        assert self.proc.poll() is None, f"systemd-nspawn exited {self.proc.returncode}"
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False
        )
        pids = out.stdout.split()
        return int(pids[0]) if pids else None

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command inside the box (its mounts, PIDs, hostname)."""
        return subprocess.run(
            [
                "nsenter",
                f"--target={self.leader}",
                "--mount",
                "--pid",
                "--uts",
                "--ipc",
                "--",
                *argv,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    def unit(self, name: str) -> dict[str, str]:
        props = "ActiveState,SubState,StatusText,NRestarts,Result"
        out = self.run("systemctl", "show", name, f"--property={props}", check=False).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def booted(self) -> str | None:
        state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
        return state if state in ("running", "degraded") else None

    def power_off(self) -> None:
        """A clean shutdown: nspawn turns SIGTERM into a halt of the container."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.power_cut()
                return
        self._console.close()

    def power_cut(self) -> None:
        """SIGKILL to the container's init ends every process in its PID namespace at once."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.leader, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self._console.close()


def _http(port: int, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")
    except (urllib.error.URLError, ConnectionError):
        return 0, None


RECEIPT = {
    "uuid": "image-0001",
    "request": [
        {
            "type": "sell",
            "taxationType": "osn",
            "operator": {"name": "Иванова А."},
            "items": [
                {
                    "type": "position",
                    "name": "Молоко 3,2% 1 л",
                    "price": 89.90,
                    "quantity": 2,
                    "amount": 179.80,
                    "tax": {"type": "vat10"},
                }
            ],
            "payments": [{"type": "cash", "sum": 200}],
            "total": 179.80,
        }
    ],
}


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("image-vm")
    log = out / "build.log"
    with log.open("wb") as f:
        done = subprocess.run(
            [str(REPO / "image" / "build.sh"), "vm", "--out", str(out)],
            stdout=f,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    assert done.returncode == 0, log.read_text(errors="replace")[-4000:]
    return out / "rootfs"


@pytest.fixture(scope="module")
def card(rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A flashed card: the data partition as built, settings in the boot partition's folder."""
    base = tmp_path_factory.mktemp("card")
    data, boot = base / "data", base / "boot"
    # As the card would hold it: owners kept (cp -a), unlike shutil.copytree.
    subprocess.run(["cp", "-a", str(rootfs / "data"), str(data)], check=True, timeout=120)
    (boot / "fiscal-gateway").mkdir(parents=True)
    api, web = _free_port(), _free_port()
    (boot / "fiscal-gateway" / "config.yaml").write_text(
        "box_id: shop-0042\n"
        "state_dir: /var/lib/fiscal-gateway\n"
        "register:\n  port: emulator\n"
        f"http:\n  listen: 127.0.0.1:{api}\n"
        f"web:\n  listen: 127.0.0.1:{web}\n",
        encoding="utf-8",
    )
    return {"rootfs": rootfs, "data": data, "boot": boot, "api": api, "console": base / "console"}


@pytest.fixture(scope="module")
def box(card: dict[str, Any]) -> Iterator[Box]:
    b = Box(card["rootfs"], card["data"], card["boot"], card["console"])
    try:
        _wait("boot", b.booted)
        yield b
    finally:
        b.power_off()


def _ready(box: Box) -> dict[str, str] | None:
    unit = box.unit("fiscal-gateway.service")
    # Type=notify: "active" only after READY=1.
    return unit if unit.get("ActiveState") == "active" else None


def test_boots_with_nothing_failed(box: Box) -> None:
    assert box.booted() == "running", box.run("systemctl", "--failed", "--no-pager").stdout


def test_settings_from_the_card_are_imported(box: Box, card: dict[str, Any]) -> None:
    folder = card["boot"] / "fiscal-gateway"
    assert (folder / "IMPORTED.txt").is_file()
    assert not (folder / "config.yaml").exists()  # taken off the card
    installed = card["data"] / "fiscal-gateway" / "etc" / "config.yaml"
    assert "box_id: shop-0042" in installed.read_text(encoding="utf-8")


def test_gateway_ready_and_healthy(box: Box, card: dict[str, Any]) -> None:
    unit = _wait("READY", lambda: _ready(box))
    assert unit["StatusText"], unit  # the STATUS= line systemctl status shows
    status, health = _wait(
        "/health", lambda: _http(card["api"], "/health")[0] == 200 and _http(card["api"], "/health")
    )
    assert status == 200
    assert health["box_id"] == "shop-0042"
    assert health["register"]["state"] == "connected"
    assert health["journal"]["state"] == "ok"


def test_root_is_read_only_and_state_is_on_data(box: Box, card: dict[str, Any]) -> None:
    assert box.run("touch", "/probe", check=False).returncode != 0
    assert box.run("touch", "/var/lib/fiscal-gateway/.probe").returncode == 0  # bound from /data
    assert (card["data"] / "fiscal-gateway" / "state" / ".probe").exists()
    assert (card["data"] / "fiscal-gateway" / "state" / "journal.sqlite3").exists()
    journals = list((card["data"] / "log" / "journal").iterdir())
    assert journals, "the system journal is not on the data partition"


def test_receipt_is_printed(box: Box, card: dict[str, Any]) -> None:
    _wait("READY", lambda: _ready(box))
    status, _ = _http(card["api"], "/api/v2/requests", RECEIPT)
    assert status == 201

    def fiscal() -> dict[str, Any] | None:
        _, body = _http(card["api"], f"/api/v2/requests/{RECEIPT['uuid']}")
        result = (body or {}).get("results", [{}])[0]
        return result if result.get("status") == "ready" else None

    result = _wait("the receipt", fiscal)
    assert result["result"]["fiscalParams"]["fiscalDocumentNumber"] >= 2
    tape = card["data"] / "fiscal-gateway" / "state" / "emulator.state.journal.jsonl"
    assert "Молоко" in tape.read_text(encoding="utf-8")


def test_hung_gateway_is_restarted_by_the_watchdog(box: Box, card: dict[str, Any]) -> None:
    _wait("READY", lambda: _ready(box))
    before = int(box.unit("fiscal-gateway.service")["NRestarts"])
    # A frozen process pings no more: WatchdogSec=30s, then SIGABRT and Restart=on-failure.
    box.run("systemctl", "kill", "--kill-who=main", "--signal=SIGSTOP", "fiscal-gateway.service")
    _wait(
        "a restart",
        lambda: int(box.unit("fiscal-gateway.service")["NRestarts"]) > before,
        timeout_s=120,
    )
    log = box.run("journalctl", "-u", "fiscal-gateway.service", "--no-pager").stdout
    assert "Watchdog timeout" in log
    _wait("READY again", lambda: _ready(box))
    assert _wait("/health", lambda: _http(card["api"], "/health")[0] == 200)


def test_journal_survives_a_power_cut(box: Box, card: dict[str, Any]) -> None:
    """Last: cuts the power of the module's box, boots the same card again."""
    _wait(
        "the receipt", lambda: _http(card["api"], f"/api/v2/requests/{RECEIPT['uuid']}")[0] == 200
    )
    box.power_cut()
    again = Box(card["rootfs"], card["data"], card["boot"], card["console"])
    try:
        _wait("READY after the power cut", lambda: _ready(again))
        _, body = _wait(
            "the old receipt",
            lambda: (
                (r := _http(card["api"], f"/api/v2/requests/{RECEIPT['uuid']}"))[0] == 200 and r
            ),
        )
        assert body["results"][0]["status"] == "ready"
        # The same uuid again is refused, not printed twice.
        assert _http(card["api"], "/api/v2/requests", RECEIPT)[0] == 409
    finally:
        again.power_off()
