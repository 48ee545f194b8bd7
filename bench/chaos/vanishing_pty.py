"""Chaos: the register's port vanishes mid-receipt, again and again.

The register is the emulator as its own process on a pty (sending at the line's real pace,
so receipts take time); a killer thread SIGKILLs it at random moments — the pty disappears
with it, as when the USB cable is pulled — and starts it again on the same state after a
random pause. Meanwhile receipts of several lines are posted; at the end every acknowledged
request must be printed exactly once.

    .venv/bin/python -m bench.chaos.vanishing_pty [--receipts 40] [--kills 15] [--seed 1]

No root needed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.chaos.common import EmulatorProcess, Figures, receipt, wait_final
from tests.support.daemon import DaemonProcess


def killer(emulator: EmulatorProcess, kills: int, rng: random.Random, figures: Figures) -> None:
    for _ in range(kills):
        time.sleep(rng.uniform(0.2, 2.0))
        emulator.kill()
        figures.inputs["pty vanished"] += 1
        time.sleep(rng.uniform(0.1, 3.0))
        try:
            emulator.start()
        except (RuntimeError, TimeoutError) as err:
            figures.crashes.append(f"the emulator did not come back: {err}")
            return


def run(receipts: int, kills: int, seed: int, lines: int, keep: bool, wait_s: float) -> int:
    rng = random.Random(seed)
    home = Path(tempfile.mkdtemp(prefix="chaos-pty-"))
    emulator = EmulatorProcess(home / "emu.state", home / "emu.tty", args=("--pace",))
    daemon = DaemonProcess(home, extra=f"register:\n  port: {emulator.link}\n")
    figures = Figures(f"vanishing pty (seed {seed}, {lines} lines a receipt)")
    try:
        emulator.start()
        daemon.start()
        chaos = threading.Thread(target=killer, args=(emulator, kills, rng, figures), daemon=True)
        chaos.start()
        for i in range(receipts):
            uuid = f"pty-{i:03d}"
            status, _ = daemon.post(receipt(uuid, lines))
            figures.inputs["receipts posted"] += 1
            figures.answer(uuid, status)
            time.sleep(rng.uniform(0.0, 0.5))
        chaos.join()
        if emulator.proc is None:
            emulator.start()
        final = wait_final(daemon, figures.acknowledged, wait_s)
        figures.notes.append(f"final task statuses of acknowledged requests: {dict(final)}")
        status, health = daemon.get("/health")
        queue = health.get("queue") if isinstance(health, dict) else None
        figures.notes.append(f"/health at the end: {status}, queue {queue}")
        if not daemon.alive():
            figures.crashes.append("the daemon died")
    except Exception as err:  # a chaos run reports what broke instead of stopping silent
        figures.crashes.append(f"run aborted: {err!r}")
    finally:
        daemon.stop()
        emulator.stop()
    log = daemon.log.read_text(errors="replace") if daemon.log.exists() else ""
    figures.notes.append(
        f"jobs interrupted by a vanished port: {log.count('register link failed')}, "
        f"open receipts cancelled and redone: {log.count('a receipt was left open')}"
    )
    found = figures.report(daemon, emulator.tape())
    if keep:
        print(f"kept: {home} (the daemon's log is {daemon.log.name})")
    else:
        shutil.rmtree(home, ignore_errors=True)
    return 1 if found.wrong or figures.crashes else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receipts", type=int, default=40)
    parser.add_argument("--kills", type=int, default=15)
    parser.add_argument("--lines", type=int, default=8, help="lines per receipt")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--wait-s", type=float, default=300, help="for the queue to drain")
    parser.add_argument("--keep", action="store_true", help="keep the run's files and log")
    args = parser.parse_args()
    sys.exit(run(args.receipts, args.kills, args.seed, args.lines, args.keep, args.wait_s))


if __name__ == "__main__":
    main()
