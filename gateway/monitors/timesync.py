"""Is the box's own clock trustworthy? And setting it, when the clock policy says so.

A Raspberry Pi has no RTC: after a power cut it boots with the time systemd-timesyncd last
saved, which can be days behind, until NTP answers. Sources, in order:

1. `clock.trust: always | never` from the config wins.
2. `/run/systemd/timesync/synchronized`: timesyncd touches it on each successful sync; /run is
   cleared at boot, so its presence means "synchronised since this boot". Readable inside the
   hardened unit.
3. timedated (`timedatectl show -p NTPSynchronized --value`): works with chrony too.
4. `adjtimex()` read-only: only where the sandbox allows it — systemd's `ProtectClock=` and the
   `@system-service` filter make even a read fail with EPERM; that is logged once and skipped.

No source answering means "not synchronised": an unknown clock is never the truth.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import datetime as dt
import errno
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.config.choices import ClockTrust
from gateway.domain.errors import GatewayError

_LOGGER = logging.getLogger(__name__)

TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
TIMEDATECTL_TIMEOUT_S = 5.0
# timedated counts the clock synchronised while the kernel's maximum error is below 16 s.
ADJTIMEX_MAX_ERROR_US = 16_000_000
_STA_UNSYNC = 0x0040
_TIME_ERROR = 5


class ClockError(GatewayError):
    """Reading or setting a clock failed."""

    code = "clock_error"


@dataclass(frozen=True, slots=True)
class SyncVerdict:
    """Whether the box's clock counts as the truth, according to which source."""

    synced: bool
    source: str  # config | timesyncd | timedated | adjtimex | none
    detail: str


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _Timex(ctypes.Structure):
    """struct timex of <sys/timex.h> (Linux)."""

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    )


class BoxClockProbe:
    """Answers "is the box's clock synchronised?" from the sources of the module docstring."""

    def __init__(
        self,
        trust: ClockTrust = ClockTrust.AUTO,
        *,
        flag_path: Path | None = TIMESYNCD_FLAG,
        timedatectl: str | None = "timedatectl",
        use_adjtimex: bool = True,
    ) -> None:
        self._trust = trust
        self._flag_path = flag_path
        self._timedatectl = shutil.which(timedatectl) if timedatectl else None
        self._use_adjtimex = use_adjtimex
        self._adjtimex_blocked_logged = False

    def __repr__(self) -> str:
        return f"BoxClockProbe(trust={self._trust.value!r}, flag={self._flag_path})"

    async def check(self) -> SyncVerdict:
        """The verdict right now."""
        if self._trust is ClockTrust.ALWAYS:
            return SyncVerdict(True, "config", "clock.trust is always")
        if self._trust is ClockTrust.NEVER:
            return SyncVerdict(False, "config", "clock.trust is never")
        if self._flag_path is not None and self._flag_path.exists():
            return SyncVerdict(True, "timesyncd", f"{self._flag_path} exists")
        verdict = await self._timedated()
        if verdict is None:
            verdict = self._adjtimex()
        if verdict is None:
            return SyncVerdict(False, "none", "no time source reports synchronisation")
        return verdict

    async def _timedated(self) -> SyncVerdict | None:
        """Ask timedated over D-Bus via timedatectl; None when it cannot answer."""
        if self._timedatectl is None:
            return None
        try:
            proc = await asyncio.create_subprocess_exec(
                self._timedatectl,
                "show",
                "-p",
                "NTPSynchronized",
                "--value",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as err:
            _LOGGER.debug("timedatectl cannot run: %s", err)
            return None
        try:
            async with asyncio.timeout(TIMEDATECTL_TIMEOUT_S):
                out, _ = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            _LOGGER.debug("timedatectl did not answer in %.0f s", TIMEDATECTL_TIMEOUT_S)
            return None
        answer = out.decode(errors="replace").strip()
        if proc.returncode != 0 or answer not in ("yes", "no"):
            return None
        return SyncVerdict(answer == "yes", "timedated", f"NTPSynchronized={answer}")

    def _adjtimex(self) -> SyncVerdict | None:
        """Read the kernel's NTP state without changing it; None when not allowed."""
        if not self._use_adjtimex:
            return None
        libc_name = ctypes.util.find_library("c")
        if libc_name is None:
            return None
        libc = ctypes.CDLL(libc_name, use_errno=True)
        tx = _Timex()  # modes = 0: read only
        state = libc.adjtimex(ctypes.byref(tx))
        if state == -1:
            err = ctypes.get_errno()
            if err == errno.EPERM and not self._adjtimex_blocked_logged:
                self._adjtimex_blocked_logged = True
                _LOGGER.info("adjtimex() is blocked here (ProtectClock=); not using it")
            return None
        synced = state != _TIME_ERROR and not (tx.status & _STA_UNSYNC)
        synced = synced and tx.maxerror < ADJTIMEX_MAX_ERROR_US
        return SyncVerdict(synced, "adjtimex", f"state {state}, maxerror {tx.maxerror} us")


def set_system_clock(offset: dt.timedelta) -> None:
    """Move the box's clock by `offset` (needs CAP_SYS_TIME; refused in the hardened unit)."""
    target = time.clock_gettime(time.CLOCK_REALTIME) + offset.total_seconds()
    try:
        time.clock_settime(time.CLOCK_REALTIME, target)
    except OSError as err:
        raise ClockError(
            f"cannot set the box's clock: {err}",
            hint="the service needs CAP_SYS_TIME and no ProtectClock= to set the clock",
        ) from err
