"""The box's system, built by `image/build.sh vm`, booted with systemd-nspawn.

The same recipe as the Raspberry Pi image (amd64, no kernel): read-only root file system, the
data partition bound at /data, the boot partition's settings folder at /boot/firmware. Checks
what a box in a shop relies on: the settings a technician put on the card are imported, the
gateway reaches READY and answers /health, prints a receipt on its register (the built-in
emulator), a hung gateway is restarted by the watchdog, and the journal survives a power cut.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.updates.manifest import UpdateCommand, command_json
from gateway.updates.verify import file_sha256, sign_manifest
from tests.support.broker import free_port

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
        """The container's init: the nspawn child in a PID namespace of its own. nspawn's
        short-lived setup child is in ours; taking it would leave a dead target behind."""
        assert self.proc.poll() is None, f"systemd-nspawn exited {self.proc.returncode}"
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False
        )
        ours = os.readlink("/proc/self/ns/pid")
        for pid in out.stdout.split():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/ns/pid") != ours:
                    return int(pid)
        return None

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command inside the box (its mounts, PIDs, hostname)."""
        enter = ["nsenter", f"--target={self.leader}", "--mount", "--pid", "--uts", "--ipc"]
        done = subprocess.run(
            [*enter, "--", *argv], capture_output=True, text=True, timeout=120, check=False
        )
        if check and done.returncode != 0:
            pytest.fail(f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

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
    api, web = free_port(), free_port()
    release_key = Ed25519PrivateKey.generate()
    public = release_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    (boot / "fiscal-gateway" / "config.yaml").write_text(
        "box_id: shop-0042\n"
        "state_dir: /var/lib/fiscal-gateway\n"
        "register:\n  port: emulator\n"
        f"http:\n  listen: 127.0.0.1:{api}\n"
        f"web:\n  listen: 127.0.0.1:{web}\n"
        f"updates:\n  public_keys: [{base64.b64encode(public).decode()}]\n"
        "  confirm_after_min: 1\n",
        encoding="utf-8",
    )
    return {
        "rootfs": rootfs,
        "data": data,
        "boot": boot,
        "api": api,
        "console": base / "console",
        "release_key": release_key,
    }


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


def _release_artifact(card: dict[str, Any], version: str) -> tuple[Path, Path]:
    """The image's release repacked as `version` (same code), with its signed update command."""
    built = next(card["rootfs"].parent.glob("fiscal-gateway-*-amd64.tar.gz"))
    incoming = card["data"] / "incoming"
    incoming.mkdir(mode=0o755, exist_ok=True)
    artifact = incoming / f"fiscal-gateway-{version}.tar.gz"
    with tarfile.open(built) as src, tarfile.open(artifact, "w:gz") as dst:
        for member in src.getmembers():
            if member.name.lstrip("./") == "release.json":
                info = json.dumps({"version": version}).encode()
                member.size = len(info)
                dst.addfile(member, io.BytesIO(info))
            else:
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    artifact.chmod(0o644)
    sha, size = file_sha256(artifact), artifact.stat().st_size
    signature = sign_manifest(card["release_key"], version, sha, size)
    command = UpdateCommand(
        version, f"https://releases.invalid/{artifact.name}", sha, size, signature
    )
    cmd_file = incoming / f"update-{version}.json"
    cmd_file.write_text(json.dumps({"op": "update", **command_json(command)}), encoding="utf-8")
    cmd_file.chmod(0o644)
    return cmd_file, artifact


def _running_release(box: Box) -> str | None:
    pid = box.run("systemctl", "show", "--property=MainPID", "--value", "fiscal-gateway").stdout
    if pid.strip() in ("", "0"):
        return None
    cmdline = box.run("cat", f"/proc/{pid.strip()}/cmdline", check=False).stdout
    found = re.search(r"releases/([^/]+)/venv", cmdline)
    return found.group(1) if found else None


def _update(box: Box, *argv: str) -> subprocess.CompletedProcess[str]:
    """`fiscal-gateway update` as an operator runs it: as the service's user."""
    gateway = "/opt/fiscal-gateway/current/venv/bin/fiscal-gateway"
    return box.run("runuser", "-u", "fiscalgw", "--", gateway, "update", *argv)


def test_update_is_confirmed_and_a_broken_release_rolled_back(
    box: Box, card: dict[str, Any]
) -> None:
    """Real systemd: the trial start, the daemon's confirmation, the pre-start revert."""
    _wait("READY", lambda: _ready(box))
    assert _running_release(box) == "0.1.0"
    keys = card["data"] / "incoming" / "release-keys"
    for version in ("0.1.1", "0.1.2"):
        _release_artifact(card, version)
    keys.write_text(
        base64.b64encode(
            card["release_key"].public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        ).decode()
        + "\n"
    )
    keys.chmod(0o644)

    def apply(version: str) -> None:
        out = _update(
            box,
            "apply",
            f"/data/incoming/update-{version}.json",
            "--artifact",
            f"/data/incoming/fiscal-gateway-{version}.tar.gz",
            "--keys",
            "/data/incoming/release-keys",
        )
        assert json.loads(out.stdout)["result"] == "switched", out

    def status() -> dict[str, Any]:
        return dict(json.loads(_update(box, "status").stdout))

    apply("0.1.1")
    box.run("systemctl", "restart", "fiscal-gateway")
    _wait("READY on 0.1.1", lambda: _ready(box) and _running_release(box) == "0.1.1")
    # updates.confirm_after_min: 1 of health, then the daemon moves `confirmed`.
    _wait("confirmation", lambda: status()["confirmed"] == "0.1.1", timeout_s=180)

    # A release that cannot start: a module lost after installing (a defect in the release).
    apply("0.1.2")
    site = "/opt/fiscal-gateway/releases/0.1.2/venv/lib/python3.11/site-packages"
    box.run("rm", f"{site}/gateway/app/gateway.py")
    box.run("systemctl", "restart", "fiscal-gateway", check=False)
    # It fails, Restart=on-failure starts the unit again, and ExecStartPre= (running the
    # confirmed release's code) finds the trial already used its one start: back to 0.1.1.
    _wait("READY on 0.1.1 again", lambda: _ready(box) and _running_release(box) == "0.1.1")
    after = status()
    assert (after["current"], after["confirmed"]) == ("0.1.1", "0.1.1"), after
    log = box.run("journalctl", "-u", "fiscal-gateway.service", "--no-pager").stdout
    assert "0.1.2" in log
    assert _wait("/health", lambda: _http(card["api"], "/health")[0] == 200)


def test_hung_gateway_is_restarted_by_the_watchdog(box: Box, card: dict[str, Any]) -> None:
    _wait("READY", lambda: _ready(box))
    # The updates above restarted the unit several times: let its start limit count afresh.
    box.run("systemctl", "reset-failed", "fiscal-gateway")
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
