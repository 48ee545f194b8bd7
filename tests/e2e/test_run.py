"""`fiscal-gateway run` as a real process: starts the built-in emulator, talks to it, stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

START_TIMEOUT_S = 30.0


def _wait_for(proc: subprocess.Popen[str], needle: str, lines: list[str]) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return
    raise AssertionError(f"{needle!r} never logged:\n{''.join(lines)}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_on_embedded_defaults(tmp_path: Path, sig: signal.Signals) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        _wait_for(proc, "Register mode 4", lines)
        log = "".join(lines)
        assert "register connected: ШТРИХ-М-01Ф" in log
        assert "firmware" in log
        assert (tmp_path / "var" / "emulator.state").is_file()
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == 0
        rest = proc.stderr.read() if proc.stderr else ""
        assert "Stopped" in rest
        assert "Traceback" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_with_a_bad_config_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text("register:\n  port: 42\n  baudrat: 9600\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 2
    assert "line 3: register.baudrat: unknown key" in out.stderr


def test_run_against_an_external_emulator_process(tmp_path: Path) -> None:
    tty = tmp_path / "register.tty"
    emu = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "emulator",
            "--pty",
            "--link",
            str(tty),
            "--state",
            str(tmp_path / "e.state"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    proc = None
    try:
        assert emu.stdout is not None
        ready = emu.stdout.readline()
        assert ready.startswith("READY ")
        cfg = tmp_path / "gw.yaml"
        cfg.write_text(f"state_dir: state\nregister:\n  port: {tty}\n", encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(cfg)],
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        lines: list[str] = []
        _wait_for(proc, "Register mode 4", lines)
        # Unplug: the emulator process dies; the gateway says so and keeps running.
        emu.kill()
        emu.wait()
        _wait_for(proc, "link lost", lines)
        assert proc.poll() is None
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    finally:
        for p in (proc, emu):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


def _run_until_exit(tmp_path: Path, config: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(config, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(cfg)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quiet_ports() -> str:
    return f"http:\n  listen: 127.0.0.1:{_free_port()}\nweb:\n  listen: 127.0.0.1:{_free_port()}\n"


def _assert_explained(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    last = out.stderr.strip().split("\n\n")[-1]
    assert last.startswith("fiscal-gateway cannot run: "), out.stderr
    for needle in needles:
        assert needle in " ".join(last.split()), last


def test_an_unwritable_state_folder_is_explained(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the folder should be", encoding="utf-8")
    out = _run_until_exit(tmp_path, f"state_dir: {tmp_path / 'taken' / 'state'}\n" + _quiet_ports())
    _assert_explained(
        out,
        "is not a writable folder",
        "What to do: create",
        "(error state_dir_unwritable)",
    )


def test_a_damaged_journal_is_explained_and_kept(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    damaged = b"this is not an SQLite database" * 100
    (state / "journal.sqlite3").write_bytes(damaged)
    out = _run_until_exit(tmp_path, f"state_dir: {state}\n" + _quiet_ports())
    _assert_explained(
        out, "is damaged", "journal.recreate_if_corrupt: true", "(error journal_corrupt)"
    )
    assert (state / "journal.sqlite3").read_bytes() == damaged  # nothing lost


def test_a_taken_port_is_explained(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _run_until_exit(
            tmp_path,
            f"state_dir: {tmp_path / 'state'}\nhttp:\n  listen: 127.0.0.1:{port}\n"
            f"web:\n  listen: 127.0.0.1:{_free_port()}\n",
        )
    _assert_explained(out, f"http.listen: cannot listen on 127.0.0.1:{port}", "What to do:")


def test_a_killed_emulator_process_is_restarted_and_the_register_comes_back(
    tmp_path: Path,
) -> None:
    port = _free_port()
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        f"state_dir: {tmp_path / 'state'}\nhttp:\n  listen: 127.0.0.1:{port}\n"
        "web:\n  enabled: false\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(cfg)],
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        _wait_for(proc, "Register mode 4", lines)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        emulators = [
            pid
            for pid in children
            if b"emulator" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        ]
        assert len(emulators) == 1, children  # the emulator, in a process of its own
        os.kill(int(emulators[0]), signal.SIGKILL)
        _wait_for(proc, "Task register-emulator crashed", lines)
        _wait_for(proc, "register connected", lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
            health = json.load(resp)
        assert health["tasks"]["restarts"] == {"register-emulator": 1}
        assert health["register"]["state"] == "connected"
        assert proc.poll() is None
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
