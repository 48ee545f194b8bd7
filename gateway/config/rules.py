"""Pure: how one config field is checked beyond its type: ranges, choices, parsers, checks.

A field carries its rule in its metadata (`rule(...)`); the reader applies it. A check gets the
converted value and returns a problem or None.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from gateway.config.values import Secret, is_loopback

SHTRIH_BAUDRATES: Final = (2400, 4800, 9600, 19200, 38400, 57600, 115200)
MIN_TOKEN_CHARS: Final = 16
MAX_SECRET_FILE_BYTES: Final = 64 * 1024
MAX_SCRYPT_MEMORY: Final = 256 * 1024 * 1024  # 128 * r * N bytes; more would starve the box

_BOX_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SHA256_HEX = re.compile(r"[0-9A-Fa-f]{64}")
_VATIN = re.compile(r"\d{10}|\d{12}")
_B64 = r"[A-Za-z0-9+/.]+={0,2}"
SCRYPT_PHC = re.compile(rf"\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\${_B64}\${_B64}")


@dataclass(frozen=True, slots=True)
class Rule:
    """How one field is checked beyond its type."""

    lo: float | None = None
    hi: float | None = None
    choices: tuple[int, ...] = ()
    parse: Callable[[str], object] | None = None  # source text -> value; ValueError = message
    check: Callable[[Any], str | None] | None = None  # converted value -> problem or None
    must_exist: bool = False  # a Path that must name a readable file
    from_file: Callable[[str], object] | None = None  # `<key>_file` contents -> value


NO_RULE: Final = Rule()


def rule(
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[int, ...] = (),
    parse: Callable[[str], object] | None = None,
    check: Callable[[Any], str | None] | None = None,
    must_exist: bool = False,
    from_file: Callable[[str], object] | None = None,
) -> dict[str, Rule]:
    """Field metadata carrying a `Rule`."""
    return {"rule": Rule(lo, hi, choices, parse, check, must_exist, from_file)}


def check_url(url: str) -> str | None:
    """A cloud API root: https, or http only to this box (credentials never go out in clear)."""
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return f"is not a URL; got {url!r}"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"must be an https:// URL like https://api.checkbox.ua/api/v1; got {url!r}"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return "must use https:// (http:// only to this box); credentials go over it"
    if parts.query or parts.fragment:
        return "must be the API root, without ?query or #fragment"
    return None


def check_box_id(value: str) -> str | None:
    """`box_id` goes into MQTT topics and file names."""
    if not _BOX_ID.fullmatch(value):
        return "must be 1..64 letters, digits, '_', '.' or '-' (it goes into MQTT topics)"
    return None


def check_timezone(value: str) -> str | None:
    """An IANA zone name the box knows, or `local`."""
    if value == "local":
        return None
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {value!r}; use an IANA name like Europe/Moscow, or local"
    return None


def check_text(limit: int) -> Callable[[Any], str | None]:
    """A non-blank single-line text of at most `limit` characters."""

    def check(value: Any) -> str | None:
        text = value.reveal() if isinstance(value, Secret) else str(value)
        if not text.strip():
            return "must not be empty"
        if _CONTROL.search(text):
            return "must be one line without control characters"
        if len(text) > limit:
            return f"longer than {limit} characters"
        return None

    return check


def check_vatin(value: str) -> str | None:
    """ИНН: 10 digits (organisation) or 12 (person)."""
    return None if _VATIN.fullmatch(value) else "must be an ИНН of 10 or 12 digits"


def check_topic_prefix(value: str) -> str | None:
    """MQTT topic levels without wildcards or empty levels."""
    if not value or any(level == "" for level in value.split("/")):
        return "must be topic levels like fiscal/v1 (no leading, trailing or double '/')"
    if set(value) & {"+", "#", "\x00"}:
        return "must not contain the MQTT wildcards + or #"
    return None


def check_by_id(value: str) -> str | None:
    """A device path (glob allowed) under /dev."""
    if not value.startswith("/dev/"):
        return "must be a path under /dev, like /dev/serial/by-id/usb-SHTRIH*"
    return None


def check_scrypt(value: Secret) -> str | None:
    """A PHC scrypt string: $scrypt$ln=15,r=8,p=1$<salt>$<hash>."""
    m = SCRYPT_PHC.fullmatch(value.reveal())
    if m is None:
        return "must be an scrypt hash like $scrypt$ln=15,r=8,p=1$<salt>$<hash> (see the example)"
    ln, r, p = int(m[1]), int(m[2]), int(m[3])
    if ln < 14 or r < 1 or p < 1:
        return "scrypt cost too low (needs ln >= 14, r >= 1, p >= 1)"
    if ln > 30 or 128 * r * (1 << ln) > MAX_SCRYPT_MEMORY:
        return "scrypt cost needs more memory than the box can spare (128·r·2^ln <= 256 MiB)"
    return None


_FOIS = re.compile(r"[0-9]{3}")
_PERMIT_DATE = re.compile(r"([0-9]{2})\.([0-9]{2})\.([0-9]{4})")


def check_fois(value: str) -> str | None:
    """ФФД tag 1262: a federal body's 3-digit id, "030" for the marking system."""
    return None if _FOIS.fullmatch(value) else 'must be 3 digits, like "030" (quote it)'


def check_permit_date(value: str) -> str | None:
    """ФФД tag 1263: the regulation's date as dd.mm.yyyy."""
    m = _PERMIT_DATE.fullmatch(value)
    if m is not None:
        try:
            dt.date(int(m[3]), int(m[2]), int(m[1]))
        except ValueError:
            pass
        else:
            return None
    return 'must be a date as dd.mm.yyyy, like "21.11.2023" (quote it)'


def check_permit_number(value: str) -> str | None:
    """ФФД tag 1264: the regulation's number, at most 32 characters the register prints."""
    problem = check_text(32)(value)
    if problem is None:
        try:
            value.encode("cp1251")
        except UnicodeEncodeError:
            return "must be printable by the register (cp1251)"
    return problem


MIN_KKM_PASSWORD_CHARS: Final = 8


def check_basic_name(value: str) -> str | None:
    """An HTTP Basic user name: one line, no ':' (the header splits name and password there)."""
    if ":" in value:
        return "must not contain ':' (HTTP Basic auth splits the name from the password there)"
    return check_text(64)(value)


def check_kkm_users(users: tuple[Any, ...]) -> str | None:
    """`kkmserver.users`: at least one, names unique, passwords long enough to resist guessing."""
    if not users:
        return "list at least one user: {name: ..., password: ...}"
    names = [user.name for user in users]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        return f"user {twice[0]!r} is listed twice"
    for user in users:
        if len(user.password.reveal()) < MIN_KKM_PASSWORD_CHARS:
            return (
                f"the password of {user.name!r} is too short; use at least "
                f"{MIN_KKM_PASSWORD_CHARS} characters"
            )
    return None
