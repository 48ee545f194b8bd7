"""The box's own figures for telemetry: load, temperature, memory, disk, uptime.

Read from /proc and /sys (Linux; a Raspberry Pi reports its SoC temperature in
thermal_zone0). Each reader returns None where the file is missing, so the same code runs in
a container or on a laptop.
"""

from __future__ import annotations

import os
import resource
import shutil
import time
from pathlib import Path
from typing import Any

THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")
MEMINFO = Path("/proc/meminfo")
UPTIME = Path("/proc/uptime")
STATM = Path("/proc/self/statm")

_STARTED = time.monotonic()
_CPU_START = time.process_time()


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii")
    except OSError:
        return None


def temperature_c() -> float | None:
    text = _read(THERMAL)
    try:
        return round(int(text) / 1000, 1) if text else None
    except ValueError:
        return None


def memory_available_mb() -> float | None:
    text = _read(MEMINFO)
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def rss_mb() -> float:
    """This process's resident memory now (peak where /proc is missing)."""
    text = _read(STATM)
    if text:
        pages = int(text.split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def box_uptime_s() -> int | None:
    text = _read(UPTIME)
    return int(float(text.split()[0])) if text else None


def snapshot(data_dir: Path) -> dict[str, Any]:
    """Everything at once, JSON-ready."""
    load1, load5, _ = os.getloadavg()
    disk = shutil.disk_usage(data_dir)
    wall = time.monotonic() - _STARTED
    cpu = time.process_time() - _CPU_START
    return {
        "load": [round(load1, 2), round(load5, 2)],
        "cpu_percent_avg": round(100 * cpu / wall, 2) if wall > 0 else None,
        "temperature_c": temperature_c(),
        "rss_mb": rss_mb(),
        "memory_available_mb": memory_available_mb(),
        "disk_free_mb": round(disk.free / 2**20, 1),
        "uptime_s": box_uptime_s(),
        "process_uptime_s": int(wall),
    }
