"""Chaos: the box's disk fills up while receipts keep coming, then space comes back.

The daemon's state_dir (its journal) is on a small tmpfs; the register is the emulator as
its own process, with its state elsewhere (a real register does not share the box's disk).
A ballast file takes all but a few KB; receipts are posted through the full disk, the ballast
is removed, receipts are posted again, the daemon is restarted on the same journal.

    sudo .venv/bin/python -m bench.chaos.disk_full            # mounts a tmpfs (root)
    .venv/bin/python -m bench.chaos.disk_full --userns        # no root: own user+mount namespace

Expected: no 5xx other than 503/507 (a clear "disk full"), no crash, every 201 in the
journal, every receipt on the tape claimed by exactly one job.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.chaos.common import EmulatorProcess, Figures, receipt, wait_final
from tests.support.daemon import DaemonProcess

USERNS_FLAG = "FISCAL_CHAOS_IN_USERNS"


def fill(mount: Path, leave_kb: int) -> Path:
    """A ballast file that leaves about `leave_kb` KB free on `mount`."""
    ballast = mount / "ballast"
    free = shutil.disk_usage(mount).free - leave_kb * 1024
    with open(ballast, "wb") as f:
        chunk = b"\0" * (1 << 20)
        while free > 0:
            try:
                f.write(chunk[: min(len(chunk), free)])
                f.flush()
            except OSError:
                break
            free -= len(chunk)
    return ballast


def post_many(daemon: DaemonProcess, figures: Figures, prefix: str, count: int) -> None:
    for i in range(count):
        uuid = f"{prefix}-{i:03d}"
        status, _ = daemon.post(receipt(uuid))
        figures.inputs[prefix] += 1
        figures.answer(uuid, status)


def run(size_mb: int, leave_kb: int, count: int) -> int:
    home = Path(tempfile.mkdtemp(prefix="chaos-disk-"))
    small = home / "small"
    small.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(small)], check=True
    )
    emulator = EmulatorProcess(home / "emu.state", home / "emu.tty")
    daemon = DaemonProcess(small, extra=f"register:\n  port: {emulator.link}\n")
    figures = Figures(f"disk full ({size_mb} MB tmpfs, {leave_kb} KB left)")
    try:
        emulator.start()
        daemon.start()
        post_many(daemon, figures, "before", count // 4)
        ballast = fill(small, leave_kb)
        figures.notes.append(f"free after the ballast: {shutil.disk_usage(small).free // 1024} KB")
        post_many(daemon, figures, "full", count)
        status, health = daemon.get("/health")
        figures.notes.append(f"/health while full: {status} {health}")
        if not daemon.alive():
            figures.crashes.append("the daemon died while the disk was full")
        ballast.unlink()
        time.sleep(1.0)
        post_many(daemon, figures, "after", count // 4)
        final = wait_final(daemon, figures.acknowledged, 300)
        figures.notes.append(f"final task statuses of acknowledged requests: {dict(final)}")
        daemon.stop()
        daemon.start()  # the same journal opens again after the episode
        figures.notes.append("restart on the same journal: ok")
        daemon.stop()
    except Exception as err:  # a chaos run reports what broke instead of stopping silent
        figures.crashes.append(f"run aborted: {err!r}")
        daemon.stop()
    finally:
        emulator.stop()
    found = figures.report(daemon, emulator.tape())
    subprocess.run(["umount", str(small)], check=False)
    shutil.rmtree(home, ignore_errors=True)
    bad_5xx = sum(n for s, n in figures.statuses.items() if s >= 500 and s not in (503, 507))
    return 1 if found.wrong or figures.crashes or bad_5xx or daemon.tracebacks() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=8, help="the tmpfs for the journal")
    parser.add_argument("--leave-kb", type=int, default=48, help="free space the ballast leaves")
    parser.add_argument("--count", type=int, default=80, help="receipts posted on the full disk")
    parser.add_argument(
        "--userns", action="store_true", help="no root: run in a new user and mount namespace"
    )
    args = parser.parse_args()
    if args.userns and not os.environ.get(USERNS_FLAG):
        # unshare -r maps this user to root inside the namespace, where it may mount a tmpfs.
        cmd = ["unshare", "-r", "-m", sys.executable, "-m", "bench.chaos.disk_full", *sys.argv[1:]]
        sys.exit(subprocess.call(cmd, env=dict(os.environ, **{USERNS_FLAG: "1"})))
    sys.exit(run(args.size_mb, args.leave_kb, args.count))


if __name__ == "__main__":
    main()
