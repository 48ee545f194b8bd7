"""What each import of the daemon costs: RSS, Python heap and time, in the order it loads.

Each row is a fresh interpreter importing everything of the rows above it plus its own
modules, so a row's increase is what its part adds on top of what the daemon has already
loaded. RSS is VmRSS after the imports and a garbage collection (shared libraries counted,
as in `compare.py`); the Python heap is what `tracemalloc` traced during the imports (a second
fresh interpreter, as tracing slows and enlarges the process); time is the imports' wall
time, best of `--repeat`. The optional parts below the line are each measured on top of the
whole daemon, as the config turns them on.

    .venv/bin/python bench/imports.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (label, modules) in the daemon's load order; each row includes every row above it.
CORE = [
    ("asyncio (with ssl)", ["asyncio"]),
    ("config reader (PyYAML, schema)", ["gateway.config"]),
    ("journal (aiosqlite)", ["gateway.journal"]),
    ("ATOL API parser", ["gateway.atol.parser"]),
    ("worker and supervisor", ["gateway.engine.worker", "gateway.engine.supervisor"]),
    ("Shtrih driver (codec, link, serial)", ["gateway.registers.shtrih.driver"]),
    ("the box's HTTP server (h11)", ["gateway.runtime.http_server"]),
    ("the rest of the wiring (HTTP API, monitors, status)", ["gateway.app.gateway"]),
]
# Each on top of the whole daemon, only when the config (or a visit) asks for it.
OPTIONAL = [
    ("status page, on its first visit (aiohttp, jinja2)", ["gateway.web.server"]),
    ("KKMServer API (aiohttp)", ["gateway.ingress.kkmserver.server"]),
    ("MQTT link (paho)", ["gateway.ingress.box_mqtt"]),
    ("command signatures (cryptography)", ["cryptography.hazmat.primitives.asymmetric.ed25519"]),
    ("USB hotplug (pyudev)", ["gateway.monitors.hotplug"]),
    ("a cloud register (Checkbox; aiohttp's client)", ["gateway.registers.checkbox.driver"]),
    ("the register emulator (a child process of its own)", ["gateway.registers.emulator.cli"]),
]

PROBE = """
import gc, importlib, json, re, sys, time
trace = sys.argv[1] == "trace"
if trace:
    import tracemalloc
    tracemalloc.start()
start = time.perf_counter()
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
took = time.perf_counter() - start
gc.collect()
status = open("/proc/self/status", encoding="ascii").read()
rss = int(re.search(r"^VmRSS:\\s+(\\d+) kB", status, re.M).group(1)) / 1024
heap = tracemalloc.get_traced_memory()[0] / 2**20 if trace else 0.0
print(json.dumps({"rss": rss, "ms": took * 1000, "heap": heap}))
"""


def probe(modules: list[str], *, trace: bool) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "trace" if trace else "plain", json.dumps(modules)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def measure(modules: list[str], repeat: int) -> tuple[float, float, float]:
    """(RSS MB, traced heap MB, import ms best of `repeat`)."""
    runs = [probe(modules, trace=False) for _ in range(repeat)]
    heap = probe(modules, trace=True)["heap"]
    return min(r["rss"] for r in runs), heap, min(r["ms"] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("| part | RSS, MB | + RSS, MB | + Python heap, MB | + import, ms |")
    print("|---|---|---|---|---|")
    rss0, heap0, ms0 = measure([], args.repeat)
    print(f"| bare interpreter | {rss0:.1f} | | | |")
    loaded: list[str] = []
    rss_prev, heap_prev, ms_prev = rss0, heap0, ms0
    for label, modules in CORE:
        loaded += modules
        rss, heap, ms = measure(loaded, args.repeat)
        print(
            f"| + {label} | {rss:.1f} | {rss - rss_prev:+.1f} | {heap - heap_prev:+.1f} "
            f"| {ms - ms_prev:+.0f} |"
        )
        rss_prev, heap_prev, ms_prev = rss, heap, ms
    print("| *optional, each on top of the whole daemon* | | | | |")
    for label, modules in OPTIONAL:
        rss, heap, ms = measure(loaded + modules, args.repeat)
        print(
            f"| + {label} | {rss:.1f} | {rss - rss_prev:+.1f} | {heap - heap_prev:+.1f} "
            f"| {ms - ms_prev:+.0f} |"
        )
    print(f"\npython {sys.version.split()[0]} on {os.uname().machine}, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
