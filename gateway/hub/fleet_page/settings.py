"""The fleet page's settings (the hub config's `web:` section)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.web.errors import PasswordHashInvalid
from gateway.web.passwords import ScryptHash

LANGUAGES = ("ru", "uk", "en")


@dataclass(frozen=True, slots=True)
class PageSettings:
    listen: tuple[str, int] = ("127.0.0.1", 8701)
    password_hash: str | None = None  # scrypt PHC, as the box's `web.password_hash`
    language: str = "ru"
    stale_after_s: float = 180.0  # online, but no telemetry this long: shown as silent
    refresh_s: int = 5


def password_hash_problem(text: str) -> str | None:
    """Why `web.password_hash` cannot be used, or None."""
    try:
        ScryptHash.parse(text)
    except PasswordHashInvalid as err:
        return str(err)
    return None
