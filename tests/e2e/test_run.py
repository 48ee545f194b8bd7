"""`fiscal-gateway run` as a real process: starts the built-in emulator, talks to it, stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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
