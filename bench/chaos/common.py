"""Shared parts of the chaos runs: an emulator process on a pty, receipts, the final report.

Each run prints the same figures at the end: inputs tried, crashes (the daemon died, or
logged a traceback), wrong prints (the emulator's tape against the jobs and what the box
acknowledged; tests/support/reconcile.py), and 5xx answers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.daemon import DaemonProcess
from tests.support.reconcile import Reconciliation, load_jobs, reconcile
from tests.support.tape import read_tape, tape_of


def receipt(uuid: str, lines: int = 1) -> dict[str, Any]:
    """A sell of `lines` lines of 1.00, each named after the request (to find it on the tape)."""
    items = [
        {
            "type": "position",
            "name": f"{uuid} #{i}",
            "price": 1,
            "quantity": 1,
            "amount": 1,
            "tax": {"type": "vat20"},
        }
        for i in range(lines)
    ]
    return {
        "uuid": uuid,
        "request": [{"type": "sell", "items": items, "payments": [{"type": "cash", "sum": lines}]}],
    }


@dataclass
class EmulatorProcess:
    """`fiscal-gateway emulator --pty` as its own process: killing it takes the pty away."""

    state: Path
    link: Path
    args: tuple[str, ...] = ()
    proc: subprocess.Popen[str] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "emulator", "--pty", "--link", str(self.link),
             "--state", str(self.state), "--no-control", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )  # fmt: skip
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY"):
                return
            if not line and self.proc.poll() is not None:
                raise RuntimeError("the emulator exited before READY")
        raise TimeoutError("the emulator did not print READY")

    def tape(self) -> list[dict[str, Any]]:
        return read_tape(tape_of(self.state))

    def kill(self) -> None:
        """SIGKILL: the pty disappears with the process, as when a cable is pulled."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        self.proc = None
        # udev drops a device's by-id link when it goes; a dangling link would point at a
        # pty number the next process to open a pty (any test's emulator) is given.
        self.link.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.proc = None


@dataclass
class Figures:
    """What a run tried and what went wrong."""

    name: str
    inputs: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def answer(self, uuid: str, status: int) -> None:
        self.statuses[status] += 1
        if status == 201:
            self.acknowledged.append(uuid)

    def report(self, daemon: DaemonProcess, tape: list[dict[str, Any]]) -> Reconciliation:
        """Reconcile (the daemon must be stopped) and print every figure; the reconciliation."""
        jobs = asyncio.run(load_jobs(daemon.state_dir / "journal.sqlite3"))
        found = reconcile(tape, jobs, self.acknowledged)
        crashes = self.crashes + [f"traceback: {t}" for t in daemon.tracebacks()]
        five = {s: n for s, n in self.statuses.items() if s >= 500}
        print(f"== chaos: {self.name}")
        print(f"inputs tried: {dict(self.inputs)}")
        print(f"answers by status: {dict(sorted(self.statuses.items()))}")
        print(f"5xx answers: {sum(five.values())} {five}")
        print(f"crashes: {len(crashes)}")
        for c in crashes[:20]:
            print(f"  {c}")
        for line in found.lines():
            print(line)
        for note in self.notes:
            print(note)
        return found


def wait_final(daemon: DaemonProcess, uuids: list[str], timeout_s: float) -> Counter[str]:
    """Poll until every request is no longer waiting (or time is up); count final statuses."""
    left = list(uuids)
    done: Counter[str] = Counter()
    deadline = time.monotonic() + timeout_s
    while left and time.monotonic() < deadline:
        uuid = left[0]
        status, body = daemon.get(f"/api/v2/requests/{uuid}")
        if status == 200 and body["results"][0]["status"] not in ("wait", "inProgress"):
            done[body["results"][0]["status"]] += 1
            left.pop(0)
        else:
            time.sleep(0.1)
    done["still waiting"] = len(left)
    return done
