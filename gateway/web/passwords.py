"""Page passwords as scrypt PHC strings, the format `web.password_hash` takes.

`$scrypt$ln=15,r=8,p=1$<salt>$<hash>`, base64 without padding ('.' accepted for '+', as
passlib writes it). Hashing costs about 32 MiB and a fraction of a second on a Pi, so callers
run it in a thread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from typing import Final

from gateway.web.errors import PasswordHashInvalid, PasswordTooWeak

DEFAULT_LN: Final = 15
DEFAULT_R: Final = 8
DEFAULT_P: Final = 1
SALT_BYTES: Final = 16
KEY_BYTES: Final = 32
MIN_LN: Final = 14
MAX_MEMORY: Final = 256 * 1024 * 1024  # the same ceiling the config enforces
MIN_PASSWORD_CHARS: Final = 8
MAX_PASSWORD_CHARS: Final = 256

_PHC: Final = re.compile(
    r"\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/.]+={0,2})\$([A-Za-z0-9+/.]+={0,2})"
)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    body = text.replace(".", "+").rstrip("=")
    body += "=" * (-len(body) % 4)
    return base64.b64decode(body, validate=True)


@dataclass(frozen=True, slots=True)
class ScryptHash:
    """A parsed scrypt hash."""

    ln: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> ScryptHash:
        """Read a PHC string; PasswordHashInvalid names what is wrong."""
        m = _PHC.fullmatch(text.strip())
        if m is None:
            raise PasswordHashInvalid("not an scrypt hash like $scrypt$ln=15,r=8,p=1$<salt>$<hash>")
        ln, r, p = int(m[1]), int(m[2]), int(m[3])
        if ln < MIN_LN or r < 1 or p < 1:
            raise PasswordHashInvalid("scrypt cost too low (needs ln >= 14, r >= 1, p >= 1)")
        if _memory(ln, r) > MAX_MEMORY:
            raise PasswordHashInvalid("scrypt cost needs more than 256 MiB")
        try:
            salt, digest = _unb64(m[4]), _unb64(m[5])
        except (binascii.Error, ValueError) as err:
            raise PasswordHashInvalid(f"salt or hash is not base64: {err}") from None
        if not salt or len(digest) < 16:
            raise PasswordHashInvalid("salt is empty or hash shorter than 16 bytes")
        return cls(ln, r, p, salt, digest)

    def to_text(self) -> str:
        """The PHC string."""
        return f"$scrypt$ln={self.ln},r={self.r},p={self.p}${_b64(self.salt)}${_b64(self.digest)}"

    def derive(self, password: str) -> bytes:
        """scrypt of `password` with this hash's salt and cost."""
        return _scrypt(password, self.salt, self.ln, self.r, self.p, len(self.digest))


def _memory(ln: int, r: int) -> int:
    return 128 * r * (1 << ln)


def _scrypt(password: str, salt: bytes, ln: int, r: int, p: int, length: int) -> bytes:
    # maxmem must cover 128·r·N plus OpenSSL's own overhead, or hashlib refuses.
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=1 << ln,
        r=r,
        p=p,
        maxmem=_memory(ln, r) + 1024 * 1024,
        dklen=length,
    )


def check_new_password(password: str) -> None:
    """PasswordTooWeak with a message key when a new password is not acceptable."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordTooWeak("password_too_short")
    if len(password) > MAX_PASSWORD_CHARS:
        raise PasswordTooWeak("password_too_long")
    if password.strip() != password:
        raise PasswordTooWeak("password_spaces")


def hash_password(password: str, *, ln: int = DEFAULT_LN, salt: bytes | None = None) -> str:
    """A new PHC string for `password` (blocking: call it in a thread)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = _scrypt(password, salt, ln, DEFAULT_R, DEFAULT_P, KEY_BYTES)
    return ScryptHash(ln, DEFAULT_R, DEFAULT_P, salt, digest).to_text()


def verify_password(password: str, stored: ScryptHash) -> bool:
    """True when `password` matches; constant-time compare (blocking: call it in a thread)."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    return hmac.compare_digest(stored.derive(password), stored.digest)
