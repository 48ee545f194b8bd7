"""Bearer tokens for the HTTP API: stored and compared as SHA-256, loopback may be free."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass


def sha256_hex(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """Who may call the API."""

    hashes: tuple[tuple[str, str], ...]  # (client name, sha256 hex)
    allow_loopback: bool = True

    @classmethod
    def build(
        cls, tokens: Iterable[tuple[str, str | None, str | None]], allow_loopback: bool
    ) -> TokenCheck:
        """From (name, token, token_sha256) triples."""
        hashes = tuple((name, sha or sha256_hex(token or "")) for name, token, sha in tokens)
        return cls(hashes, allow_loopback)

    def client(self, authorization: str | None, peer: str | None) -> str | None:
        """The client's name, 'loopback', or None when refused."""
        if self.allow_loopback and is_loopback(peer):
            return "loopback"
        if not authorization or not authorization.startswith("Bearer "):
            return None
        given = sha256_hex(authorization[len("Bearer ") :].strip())
        found = None
        for name, expected in self.hashes:
            if hmac.compare_digest(given, expected):  # constant time; check them all
                found = name
        return found


def is_loopback(peer: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1 (the transport's address, never a header)."""
    if not peer:
        return False
    try:
        return ipaddress.ip_address(peer.split("%")[0]).is_loopback
    except ValueError:
        return False
