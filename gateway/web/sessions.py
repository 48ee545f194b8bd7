"""Login sessions and CSRF tokens. Pure: the clock is passed in.

Sessions live in memory: a restart logs everyone out, which is fine for a technician's
page and means no session secret sits on the SD card.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

SESSION_TTL_S: Final = 8 * 3600.0  # one working day in a shop
MAX_SESSIONS: Final = 32  # oldest dropped beyond this: a loop of logins cannot fill memory

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser: the cookie value and the CSRF token its forms carry."""

    token: str
    csrf: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Notice:
    """A message shown once: kind is ok | bad | info; `href` links to what it is about."""

    kind: str
    text: str
    href: str | None = None


class Sessions:
    """The logged-in browsers."""

    def __init__(self, *, ttl_s: float = SESSION_TTL_S, clock: Clock = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._by_token: dict[str, Session] = {}
        self._notices: dict[str, list[Notice]] = {}

    def create(self) -> Session:
        """A new session; the oldest goes when there are too many."""
        self._expire()
        while len(self._by_token) >= MAX_SESSIONS:
            oldest = min(self._by_token.values(), key=lambda s: s.expires_at)
            self.drop(oldest.token)
        session = Session(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), self._clock() + self._ttl_s
        )
        self._by_token[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session for a cookie value, or None."""
        if not token:
            return None
        session = self._by_token.get(token)
        if session is None:
            return None
        if session.expires_at <= self._clock():
            self.drop(token)
            return None
        return session

    def drop(self, token: str) -> None:
        """Log out."""
        self._by_token.pop(token, None)
        self._notices.pop(token, None)

    def drop_all(self) -> None:
        """Log everyone out (the password changed)."""
        self._by_token.clear()
        self._notices.clear()

    def __len__(self) -> int:
        self._expire()
        return len(self._by_token)

    def notify(self, session: Session, notice: Notice) -> None:
        """Keep a message for the next page this session sees (post/redirect/get)."""
        kept = self._notices.setdefault(session.token, [])
        kept.append(notice)
        del kept[:-5]

    def take_notices(self, session: Session | None) -> list[Notice]:
        """The messages kept for this session, forgotten once read."""
        if session is None:
            return []
        return self._notices.pop(session.token, [])

    def _expire(self) -> None:
        now = self._clock()
        for token in [t for t, s in self._by_token.items() if s.expires_at <= now]:
            self.drop(token)


def csrf_ok(session: Session | None, sent: str | None) -> bool:
    """True when the form's token is the session's (constant time)."""
    if session is None or not sent:
        return False
    return tokens_match(session.csrf, sent)


def tokens_match(kept: str, sent: str) -> bool:
    """Constant-time equality of two tokens; any text compares, even undecodable cookie bytes."""
    # Header bytes that are not UTF-8 arrive as lone surrogates, which plain encode() refuses.
    return hmac.compare_digest(
        kept.encode("utf-8", "surrogatepass"), sent.encode("utf-8", "surrogatepass")
    )
