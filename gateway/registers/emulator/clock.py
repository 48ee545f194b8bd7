"""The emulator's real-time clock: the host clock plus an offset and an optional drift.

The RTC keeps running while the emulator is stopped, as a real register's battery clock does:
only the offset from the host clock (and the drift rate with the host moment it counts from)
is persisted. Times are naive local time, like the register's own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

PPM = 1_000_000


@dataclass(frozen=True, slots=True)
class ClockState:
    """RTC = host + offset_s + (host − anchor) × drift_ppm / 10⁶."""

    offset_s: float = 0.0
    drift_ppm: float = 0.0
    anchor: dt.datetime | None = None

    def rtc(self, host: dt.datetime) -> dt.datetime:
        """The register's time when the host clock reads `host`."""
        drift_s = 0.0
        if self.drift_ppm and self.anchor is not None:
            drift_s = (host - self.anchor).total_seconds() * self.drift_ppm / PPM
        return host + dt.timedelta(seconds=self.offset_s + drift_s)

    def set_rtc(self, host: dt.datetime, rtc: dt.datetime) -> ClockState:
        """The clock after setting the RTC to `rtc` at host time `host` (the drift restarts)."""
        return replace(self, offset_s=(rtc - host).total_seconds(), anchor=host)

    def with_offset(self, host: dt.datetime, offset_s: float) -> ClockState:
        """The clock with the RTC `offset_s` seconds from the host clock now."""
        return replace(self, offset_s=offset_s, anchor=host)

    def with_drift(self, host: dt.datetime, drift_ppm: float) -> ClockState:
        """The clock drifting at `drift_ppm` from now on (time so far is kept)."""
        now = self.rtc(host)
        return replace(
            self, offset_s=(now - host).total_seconds(), anchor=host, drift_ppm=drift_ppm
        )
