"""The daemon's footprint, one table for one or more source trees, next to an anchor.

For each tree (a checkout of this repository; `--tree` may be given several times, e.g. the
previous commit in a `git worktree` and the working tree) it measures, with this interpreter:

- import: `-X importtime` cumulative time of `gateway.app.gateway`, best of `--repeat`;
- start -> READY: from spawning `python -m gateway run` to its READY=1 on a notify socket
  (the interpreter's own start included), best of `--repeat`;

Times are the best of several runs: on a shared machine the other runs measure the neighbours.
- idle RSS: VmRSS of the daemon process alone `--settle-s` after READY, with the register
  emulator in a process of its own (as the USB cable's register would be) and idle CPU over
  `--idle-s`; with the status page on (the defaults) and off. The page's code loads on its
  first visit, so "page on" is also measured again `--settle-s` after one visit.

The anchor is the ThingsBoard IoT Gateway's idle RSS: measured side by side when
`--tb-venv` names a venv with `thingsboard-gateway` installed (no connectors, its broker a
local Mosquitto), else its published figure, marked as not measured.

    .venv/bin/python bench/compare.py --tree ../before --tree . [--idle-s 30] [--tb-venv DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TB_ANCHOR_MB = 63.6  # the ThingsBoard IoT Gateway's idle RSS as published, when not measured
READY_TIMEOUT_S = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    import_ms: float
    ready_ms: float
    rss_page_mb: float
    rss_visited_mb: float
    rss_nopage_mb: float
    cpu_page_pct: float
    cpu_nopage_pct: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tree: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env["PYTHONPATH"] = str(tree)
    env.update(extra)
    return env


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert match is not None
    return int(match.group(1)) / 1024


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (proc(5), counted after the name)


def import_ms(tree: Path, repeat: int) -> float:
    """Cumulative import time of the daemon's wiring, in a fresh interpreter each time."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import gateway.app.gateway"],
            env=_env(tree),
            cwd=tree,
            capture_output=True,
            text=True,
            check=True,
        )
        line = next(
            x for x in out.stderr.splitlines() if x.rstrip().endswith("| gateway.app.gateway")
        )
        runs.append(int(line.split("|")[1]) / 1000)
    return min(runs)


@contextlib.contextmanager
def emulator(tree: Path, work: Path) -> Iterator[Path]:
    """The register emulator in its own process on a pty; yields the link path."""
    link = work / "register.tty"
    command = ["-m", "gateway.registers.emulator", "--pty", "--link", str(link)]
    command += ["--state", str(work / "emulator.state"), "--no-control"]
    proc = subprocess.Popen(
        [sys.executable, *command],
        env=_env(tree),
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        if not ready.startswith("READY "):
            raise RuntimeError(f"the emulator did not start: {ready!r}")
        yield link
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@contextlib.contextmanager
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    name = f"fg-bench-{secrets.token_hex(6)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        yield "@" + name, sock
    finally:
        sock.close()


@contextlib.contextmanager
def daemon(
    tree: Path, work: Path, link: Path, *, page: bool
) -> Iterator[tuple[subprocess.Popen[bytes], float, int]]:
    """The daemon on `link`; yields the process, seconds from spawn to READY=1 and the
    status page's port."""
    state = work / f"state-{secrets.token_hex(3)}"
    cfg = work / "gw.yaml"
    web_port = _free_port()
    cfg.write_text(
        f"state_dir: {state}\nregister:\n  port: {link}\n"
        f"http:\n  listen: 127.0.0.1:{_free_port()}\n"
        f"web:\n  enabled: {str(page).lower()}\n  listen: 127.0.0.1:{web_port}\n",
        encoding="utf-8",
    )
    with notify_socket() as (address, sock):
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(cfg)],
            env=_env(tree, NOTIFY_SOCKET=address),
            cwd=work,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            sock.settimeout(READY_TIMEOUT_S)
            while "READY=1" not in sock.recv(4096).decode().split("\n"):
                pass
            yield proc, time.monotonic() - started, web_port
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def idle(pid: int, settle_s: float, idle_s: float) -> tuple[float, float]:
    """(RSS in MB after settling, CPU % over idle_s)."""
    time.sleep(settle_s)
    rss = _rss_mb(pid)
    before = _cpu_ticks(pid)
    time.sleep(idle_s)
    cpu = (_cpu_ticks(pid) - before) / CLK_TCK / idle_s * 100
    return max(rss, _rss_mb(pid)), cpu


def measure(tree: Path, args: argparse.Namespace) -> Figures:
    imports = import_ms(tree, args.repeat)
    with tempfile.TemporaryDirectory(prefix="fg-compare-") as tmp:
        work = Path(tmp)
        with emulator(tree, work) as link:
            readies = []
            for _ in range(args.repeat):
                with daemon(tree, work, link, page=True) as (_proc, ready_s, _port):
                    readies.append(ready_s * 1000)
            with daemon(tree, work, link, page=True) as (proc, _, web_port):
                rss_page, cpu_page = idle(proc.pid, args.settle_s, args.idle_s)
                with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=30):
                    pass
                time.sleep(args.settle_s)
                rss_visited = _rss_mb(proc.pid)
            with daemon(tree, work, link, page=False) as (proc, _, _port):
                rss_nopage, cpu_nopage = idle(proc.pid, args.settle_s, args.idle_s)
    return Figures(imports, min(readies), rss_page, rss_visited, rss_nopage, cpu_page, cpu_nopage)


def thingsboard_rss(venv: Path, settle_s: float) -> float:
    """Idle RSS of the ThingsBoard IoT Gateway: no connectors, a local broker."""
    site = next(venv.glob("lib/python3*/site-packages/thingsboard_gateway/config"))
    with tempfile.TemporaryDirectory(prefix="fg-compare-tb-") as tmp:
        work = Path(tmp)
        config = work / "config"
        shutil.copytree(site, config)
        port = _free_port()
        broker = subprocess.Popen(
            ["mosquitto", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            main = json.loads((config / "tb_gateway.json").read_text(encoding="utf-8"))
            main["thingsboard"].update(host="127.0.0.1", port=port, remoteConfiguration=False)
            main["connectors"] = []
            (config / "tb_gateway.json").write_text(json.dumps(main), encoding="utf-8")
            proc = subprocess.Popen(
                [str(venv / "bin" / "thingsboard-gateway")],
                env=dict(os.environ, TB_GW_CONFIG_DIR=str(config)),
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(settle_s)
                if proc.poll() is not None:
                    raise RuntimeError(f"thingsboard-gateway exited with {proc.returncode}")
                return _rss_mb(proc.pid)
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        finally:
            broker.terminate()
            broker.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, action="append", help="a source tree (repeatable)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--settle-s", type=float, default=5.0)
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--tb-venv", type=Path, help="a venv with thingsboard-gateway installed")
    args = parser.parse_args()
    trees = [t.resolve() for t in args.tree or [Path(__file__).resolve().parent.parent]]
    results = {tree: measure(tree, args) for tree in trees}
    if args.tb_venv is not None:
        anchor = f"{thingsboard_rss(args.tb_venv, max(args.settle_s, 20.0)):.1f} (measured)"
    else:
        anchor = f"{TB_ANCHOR_MB:.1f} (published, not measured)"
    names = [str(t) for t in trees]
    print(f"| figure | {' | '.join(names)} |")
    print(f"|---|{'---|' * len(names)}")
    rows = [
        (f"import gateway.app.gateway, ms (best of {args.repeat})", "import_ms", "{:.0f}"),
        (f"spawn -> READY=1, ms (best of {args.repeat})", "ready_ms", "{:.0f}"),
        ("idle RSS, status page on, MB", "rss_page_mb", "{:.1f}"),
        ("idle RSS, status page on, after one visit, MB", "rss_visited_mb", "{:.1f}"),
        ("idle RSS, status page off, MB", "rss_nopage_mb", "{:.1f}"),
        (f"idle CPU over {args.idle_s:.0f} s, page on, %", "cpu_page_pct", "{:.2f}"),
        (f"idle CPU over {args.idle_s:.0f} s, page off, %", "cpu_nopage_pct", "{:.2f}"),
    ]
    for label, attr, fmt in rows:
        cells = [fmt.format(getattr(results[t], attr)) for t in trees]
        print(f"| {label} | {' | '.join(cells)} |")
    print(f"| ThingsBoard IoT Gateway idle RSS, MB | {anchor} |{' |' * (len(names) - 1)}")
    print(f"\npython {sys.version.split()[0]} on {os.uname().machine}, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
