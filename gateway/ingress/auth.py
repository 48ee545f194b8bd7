"""Bearer tokens for the HTTP API: kept and compared as SHA-256 digests; loopback may go without.

Tokens come from config as the token itself or only its SHA-256 hex, so a config file need not
hold a usable secret. The peer address is the transport's, never a header such as
X-Forwarded-For, which any client can write.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.config.schema import TokenConfig

LOOPBACK_CLIENT = "loopback"


def sha256_hex(token: str) -> str:
    """The stored form of a token: SHA-256 of its UTF-8 bytes, lowercase hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Refusal(enum.Enum):
    """Why a request was refused (for the log; the client only sees 401)."""

    MISSING = "no Authorization header"
    NOT_BEARER = "Authorization is not a Bearer token"
    MALFORMED = "Authorization is not valid UTF-8 text"
    UNKNOWN = "unknown token"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The caller's client name, or why it was refused."""

    client: str | None
    refusal: Refusal | None = None

    @property
    def allowed(self) -> bool:
        """The request may proceed."""
        return self.client is not None


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """Who may call the API: (client name, SHA-256 digest) pairs, and the loopback rule."""

    digests: tuple[tuple[str, bytes], ...]
    allow_loopback: bool = True

    @classmethod
    def from_config(cls, tokens: Iterable[TokenConfig], *, allow_loopback: bool) -> TokenCheck:
        """From `http.tokens`; an entry without a usable token is a ValueError naming it."""
        digests: list[tuple[str, bytes]] = []
        for entry in tokens:
            if entry.token is not None and entry.token.reveal():
                hex_digest = sha256_hex(entry.token.reveal())
            elif entry.token_sha256:
                hex_digest = entry.token_sha256.strip().lower()
            else:
                raise ValueError(f"API client {entry.name!r} has neither token nor token_sha256")
            try:
                digest = bytes.fromhex(hex_digest)
            except ValueError:
                digest = b""
            if len(digest) != hashlib.sha256().digest_size:
                raise ValueError(f"API client {entry.name!r}: token_sha256 is not 64 hex digits")
            digests.append((entry.name, digest))
        return cls(tuple(digests), allow_loopback)

    def check(self, authorization: str | None, peer: str | None) -> Verdict:
        """Identify the caller from its Authorization header and peer address."""
        token, refusal = _bearer(authorization)
        if token is not None:
            client = self._match(token)
            if client is not None:
                return Verdict(client)
            refusal = Refusal.UNKNOWN
        if self.allow_loopback and is_loopback(peer):
            return Verdict(LOOPBACK_CLIENT)
        return Verdict(None, refusal)

    def _match(self, token: str) -> str | None:
        given = hashlib.sha256(token.encode("utf-8")).digest()
        found: str | None = None
        for name, expected in self.digests:
            # Constant time, and every entry is compared so timing does not tell which matched.
            if hmac.compare_digest(given, expected) and found is None:
                found = name
        return found


def _bearer(authorization: str | None) -> tuple[str | None, Refusal]:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if authorization is None or not authorization.strip():
        return None, Refusal.MISSING
    if not _is_text(authorization):
        return None, Refusal.MALFORMED
    scheme, _, value = authorization.strip().partition(" ")
    token = value.strip()
    if scheme.lower() != "bearer" or not token:
        return None, Refusal.NOT_BEARER
    return token, Refusal.UNKNOWN


def _is_text(value: str) -> bool:
    """Header bytes that were not UTF-8 reach us as lone surrogates; such a value has no
    token in it (and would fail to encode when hashed)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_loopback(peer: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.0.0.1)."""
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
