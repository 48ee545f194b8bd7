"""Idle RSS of the daemon under qemu-aarch64 user emulation, split into the guest's and qemu's.

Under qemu user mode the daemon is one host process: qemu, with the arm64 program's memory
(the guest's) mapped into it. Its VmRSS, what `compare.py` measures, is both: the guest's pages
and qemu's own (its translation cache of the code run so far, its binary, its heap). This
splits it: the process dumps its own /proc/self/maps on SIGUSR1, which qemu answers with the
guest's mappings only; host mappings of /proc/<pid>/smaps that overlap them are the guest's,
the rest is qemu's. The guest's figure is the estimate of the same program on an arm64 CPU.

The same for a bare interpreter sleeping (`python3 -c`), and the daemon with the status page
on and off, each a fresh process on the register emulator (a process of its own, as in
`compare.py`). Run it with the arm64 interpreter (`bench/arm64/run.sh` does):

    build/arm64-sysroot/usr/bin/python3 bench/arm64/memory.py [--settle-s 10]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import compare  # bench/compare.py: the emulator and the notify socket

DUMP_TIMEOUT_S = 30.0

# The daemon (or a bare interpreter, when argv[2] is "-") with a SIGUSR1 handler that writes
# the guest's view of its mappings to argv[1]; the daemon's own handlers are SIGTERM/SIGINT.
PROGRAM = """
import os, runpy, signal, sys, time
target = sys.argv[1]
def dump(signum, frame):
    with open("/proc/self/maps", encoding="ascii") as maps, open(target + ".tmp", "w") as out:
        out.write(maps.read())
    os.replace(target + ".tmp", target)
signal.signal(signal.SIGUSR1, dump)
if sys.argv[2] == "-":
    print("READY", flush=True)
    while True:
        time.sleep(3600)
sys.argv = ["gateway", "run", "--config", sys.argv[2]]
runpy.run_module("gateway", run_name="__main__")
"""

MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ \d+\s*(.*)$")


@dataclass
class Mapping:
    start: int
    end: int
    perms: str
    offset: int
    path: str
    rss_kb: int = 0


@dataclass
class Split:
    total_mb: float
    guest_mb: float
    qemu_mb: float
    tb_cache_mb: float
    qemu_binary_mb: float
    qemu_heap_mb: float


def parse_maps(text: str) -> list[Mapping]:
    """The mappings of /proc/<pid>/maps or smaps (the Rss of each from smaps)."""
    out: list[Mapping] = []
    for line in text.splitlines():
        match = MAPPING.match(line)
        if match is not None:
            start, end, perms, offset, path = match.groups()
            out.append(Mapping(int(start, 16), int(end, 16), perms, int(offset, 16), path))
        elif line.startswith("Rss:") and out:
            out[-1].rss_kb = int(line.split()[1])
    return out


def split(pid: int, guest: list[Mapping]) -> Split:
    """The host process's RSS split into the guest's mappings and qemu's own."""
    host = parse_maps(Path(f"/proc/{pid}/smaps").read_text(encoding="utf-8"))
    qemu_binary = os.readlink(f"/proc/{pid}/exe")
    # guest address + base = host address: the same file mapped at offset 0 in both views.
    anchor = next(g for g in guest if g.path and g.offset == 0)
    base = next(h.start for h in host if h.path == anchor.path and h.offset == 0) - anchor.start
    ranges = [(g.start + base, g.end + base) for g in guest]

    def is_guest(m: Mapping) -> bool:
        return any(m.start < end and start < m.end for start, end in ranges)

    ours = [m for m in host if not is_guest(m)]
    mb = 1 / 1024
    return Split(
        total_mb=sum(m.rss_kb for m in host) * mb,
        guest_mb=sum(m.rss_kb for m in host if is_guest(m)) * mb,
        qemu_mb=sum(m.rss_kb for m in ours) * mb,
        tb_cache_mb=sum(m.rss_kb for m in ours if not m.path and "x" in m.perms) * mb,
        qemu_binary_mb=sum(m.rss_kb for m in ours if m.path == qemu_binary) * mb,
        qemu_heap_mb=sum(m.rss_kb for m in ours if m.path == "[heap]") * mb,
    )


@contextlib.contextmanager
def running(tree: Path, work: Path, link: Path | None, *, page: bool) -> Iterator[int]:
    """The daemon on `link` (a bare interpreter when None), up; yields its pid."""
    config = "-"
    if link is not None:
        cfg = work / "gw.yaml"
        cfg.write_text(
            f"state_dir: {work / f'state-{secrets.token_hex(3)}'}\nregister:\n  port: {link}\n"
            f"http:\n  listen: 127.0.0.1:{compare._free_port()}\n"
            f"web:\n  enabled: {str(page).lower()}\n  listen: 127.0.0.1:{compare._free_port()}\n",
            encoding="utf-8",
        )
        config = str(cfg)
    dump = work / "maps.txt"
    with compare.notify_socket() as (address, sock):
        proc = subprocess.Popen(
            [sys.executable, "-c", PROGRAM, str(dump), config],
            env=compare._env(tree, NOTIFY_SOCKET=address),
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if link is None else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            if link is None:
                assert proc.stdout is not None
                if proc.stdout.readline() != b"READY\n":
                    raise RuntimeError("the interpreter did not start")
            else:
                sock.settimeout(compare.READY_TIMEOUT_S)
                while "READY=1" not in sock.recv(4096).decode().split("\n"):
                    pass
            yield proc.pid
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def measure(tree: Path, work: Path, link: Path | None, settle_s: float, *, page: bool) -> Split:
    """The split of one fresh process, `settle_s` after it is up."""
    dump = work / "maps.txt"
    with running(tree, work, link, page=page) as pid:
        time.sleep(settle_s)
        return split_of(pid, dump)


def split_of(pid: int, dump: Path) -> Split:
    """Ask `pid` for its guest mappings, then split its host RSS."""
    dump.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + DUMP_TIMEOUT_S
    while not dump.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"process {pid} did not dump its mappings")
        time.sleep(0.1)
    return split(pid, parse_maps(dump.read_text(encoding="ascii")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--settle-s", type=float, default=10.0)
    args = parser.parse_args()
    tree = args.tree.resolve()
    rows: list[tuple[str, Split]] = []
    with tempfile.TemporaryDirectory(prefix="fg-arm64-memory-") as tmp:
        work = Path(tmp)
        rows.append(
            (
                "bare interpreter (python3 -c, idle)",
                measure(tree, work, None, args.settle_s, page=False),
            )
        )
        with compare.emulator(tree, work) as link:
            for page in (True, False):
                label = f"daemon, status page {'on' if page else 'off'}"
                rows.append((label, measure(tree, work, link, args.settle_s, page=page)))
    print(
        "| process | VmRSS of the qemu process, MB | guest, MB | qemu's own, MB | of which: translation cache | qemu binary | qemu heap |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, s in rows:
        print(
            f"| {label} | {s.total_mb:.1f} | {s.guest_mb:.1f} | {s.qemu_mb:.1f} | "
            f"{s.tb_cache_mb:.1f} | {s.qemu_binary_mb:.1f} | {s.qemu_heap_mb:.1f} |"
        )
    print(
        f"\n{args.settle_s:.0f} s after start; python {sys.version.split()[0]} on {os.uname().machine}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
