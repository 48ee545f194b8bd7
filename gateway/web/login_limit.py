"""The login rate limit. Pure: the clock is passed in.

An attempt is reserved before its password is checked and counts against the limits while
the check runs, so a burst of parallel guesses cannot all pass the limit before the first
one is counted. The limits: wrong passwords per client address, and from all addresses
together. Attempts from the box's own loopback count only against their own address: guesses
from the LAN fill the shared limit but never lock out someone working at the box itself.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from gateway.web.errors import LoginRateLimited

LOGIN_WINDOW_S: Final = 300.0
LOGIN_FAILURES_PER_PEER: Final = 5
LOGIN_FAILURES_TOTAL: Final = 20  # every non-loopback address together: a LAN of guessers
MIN_RETRY_AFTER_S: Final = 1.0
_KEPT_MAX: Final = 1024  # failures remembered at most, whatever the window holds

Clock = Callable[[], float]


def is_loopback(address: str) -> bool:
    """True for an address of this box's loopback (127.0.0.0/8, ::1, with or without zone)."""
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True, eq=False)
class Attempt:
    """A reserved login attempt: `shared` when it counts against the limit for all addresses."""

    peer: str
    shared: bool


@dataclass(frozen=True, slots=True)
class _Failure:
    at: float
    peer: str
    shared: bool


class LoginLimiter:
    """Wrong passwords per client address and in total over a sliding window."""

    def __init__(
        self,
        *,
        window_s: float = LOGIN_WINDOW_S,
        per_peer: int = LOGIN_FAILURES_PER_PEER,
        total: int = LOGIN_FAILURES_TOTAL,
        clock: Clock = time.monotonic,
    ) -> None:
        self._window_s = window_s
        self._per_peer = per_peer
        self._total = total
        self._clock = clock
        self._failures: collections.deque[_Failure] = collections.deque()
        self._pending: set[Attempt] = set()
        self.failures_total = 0  # since start, for /metrics
        self.refused_total = 0

    def reserve(self, peer: str) -> Attempt:
        """Reserve one attempt for `peer` now, or LoginRateLimited with the wait.

        Synchronous on purpose: nothing can slip in between the check and the reservation."""
        now = self._clock()
        self._forget(now)
        shared = not is_loopback(peer)
        # An attempt in flight counts as a failure at this instant until it is settled.
        mine = [f.at for f in self._failures if f.peer == peer]
        mine += [now for a in self._pending if a.peer == peer]
        waits = [self._wait(mine, self._per_peer, now)]
        if shared:
            everyone = [f.at for f in self._failures if f.shared]
            everyone += [now for a in self._pending if a.shared]
            waits.append(self._wait(everyone, self._total, now))
        longest = max((w for w in waits if w is not None), default=None)
        if longest is not None:
            self.refused_total += 1
            raise LoginRateLimited(max(MIN_RETRY_AFTER_S, longest))
        attempt = Attempt(peer, shared)
        self._pending.add(attempt)
        return attempt

    @contextlib.contextmanager
    def attempt(self, peer: str) -> Iterator[Attempt]:
        """`reserve`, and release the attempt on the way out unless it was settled."""
        attempt = self.reserve(peer)
        try:
            yield attempt
        finally:
            self.release(attempt)

    def failed(self, attempt: Attempt) -> None:
        """The attempt's password was wrong: it counts for the whole window."""
        if attempt not in self._pending:
            return
        self._pending.discard(attempt)
        self.failures_total += 1
        self._failures.append(_Failure(self._clock(), attempt.peer, attempt.shared))
        while len(self._failures) > _KEPT_MAX:
            self._failures.popleft()

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: this address's failures are forgiven."""
        self._pending.discard(attempt)
        self._failures = collections.deque(f for f in self._failures if f.peer != attempt.peer)

    def release(self, attempt: Attempt) -> None:
        """The check did not finish (timeout, cancelled): nothing was learnt, nothing counts."""
        self._pending.discard(attempt)

    def _wait(self, times: list[float], limit: int, now: float) -> float | None:
        if len(times) < limit:
            return None
        times.sort()
        return times[-limit] + self._window_s - now

    def _forget(self, now: float) -> None:
        while self._failures and self._failures[0].at <= now - self._window_s:
            self._failures.popleft()
