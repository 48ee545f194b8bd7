"""Pure: config text -> values (addresses, times, USB ids, ports, keys); ValueError says why."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import re
import urllib.parse
from typing import Final

from gateway.config.values import Listen, Secret

_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_PEM_BLOCK = re.compile(
    r"-----BEGIN PUBLIC KEY-----(?P<body>[A-Za-z0-9+/=\s]*?)-----END PUBLIC KEY-----"
)
_ED25519_SPKI_PREFIX: Final = bytes.fromhex("302a300506032b6570032100")
_ED25519_KEY_BYTES: Final = 32


def host_problem(host: str) -> str | None:
    """Why `host` is not an IP address or a DNS name, or None."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host) or len(host) > 253:
            return f"{host!r} is not an IP address or a host name"
    return None


def parse_listen(text: str) -> Listen:
    """`host:port` or `[ipv6]:port` -> Listen."""
    example = "like 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080"
    m = re.fullmatch(r"\[(?P<v6>[^\]]+)\]:(?P<p6>\d+)|(?P<host>[^:\[\]\s]+):(?P<port>\d+)", text)
    if m is None:
        raise ValueError(f"must be host:port, {example}; got {text!r}")
    if m["v6"] is not None:
        host, port = m["v6"], int(m["p6"])
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address") from None
    else:
        host, port = m["host"], int(m["port"])
        problem = host_problem(host)
        if problem is not None:
            raise ValueError(problem)
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be 1..65535; got {port}")
    return Listen(host, port)


def parse_hhmm(text: str) -> dt.time:
    """`HH:MM` (24-hour) -> time."""
    m = _HHMM.fullmatch(text.strip())
    if m is None:
        raise ValueError(f'must be a time of day as "HH:MM", like "23:50"; got {text!r}')
    return dt.time(int(m[1]), int(m[2]))


def parse_usb_id(text: str) -> str:
    """A USB vendor/product id as lsusb shows it (`1fc9`, `0x1FC9`) -> 4 lowercase hex digits."""
    digits = text.strip().lower().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{1,4}", digits):
        raise ValueError(
            f'must be a 4-digit hex USB id as lsusb shows it, like "1fc9"; got {text!r}'
        )
    return digits.zfill(4)


def parse_register_port(text: str) -> str:
    """`emulator`, an absolute device path, or `tcp://host:port`."""
    if text == "emulator" or text.startswith("/"):
        return text
    if text.startswith("tcp://"):
        try:
            url = urllib.parse.urlsplit(text)
            port = url.port
        except ValueError:
            port = None
        if not url.hostname or port is None or url.path or url.query:
            raise ValueError(f"must be tcp://host:port; got {text!r}")
        problem = host_problem(url.hostname)
        if problem is not None:
            raise ValueError(problem)
        if not 1 <= port <= 65535:
            raise ValueError(f"port must be 1..65535; got {port}")
        return text
    hint = f"; did you mean /dev/{text}?" if re.fullmatch(r"tty\w+", text) else ""
    raise ValueError(
        f"must be emulator, a device path such as /dev/ttyACM0, or tcp://host:port; "
        f"got {text!r}{hint}"
    )


def secret_from_file(text: str) -> Secret:
    """A secret file's contents, surrounding whitespace (the final newline) removed."""
    value = text.strip()
    if not value:
        raise ValueError("the file is empty")
    return Secret(value)


def b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    body = "".join(text.split()).replace("-", "+").replace("_", "/")
    body += "=" * (-len(body) % 4)
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        raise ValueError("is not base64") from None


def parse_ed25519_key(text: str) -> bytes:
    """An Ed25519 public key (raw 32 bytes or SPKI, as base64 or PEM) -> its 32 raw bytes."""
    body = text.strip()
    if body.startswith("-----BEGIN"):
        m = _PEM_BLOCK.fullmatch(body)
        if m is None:
            raise ValueError("is not a PEM PUBLIC KEY block")
        body = m["body"]
    raw = b64decode(body)
    if len(raw) == len(_ED25519_SPKI_PREFIX) + _ED25519_KEY_BYTES and raw.startswith(
        _ED25519_SPKI_PREFIX
    ):
        return raw[len(_ED25519_SPKI_PREFIX) :]
    if len(raw) == _ED25519_KEY_BYTES:
        return raw
    raise ValueError("is not an Ed25519 public key (32 bytes raw, or a PEM/SPKI public key)")


def parse_ed25519_key_file(text: str) -> tuple[bytes, ...]:
    """PEM blocks and/or one base64 key per line; `#` starts a comment."""
    keys: list[bytes] = []
    for m in _PEM_BLOCK.finditer(text):
        keys.append(parse_ed25519_key(m[0]))
    rest = _PEM_BLOCK.sub("", text)
    for number, line in enumerate(rest.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            try:
                keys.append(parse_ed25519_key(entry))
            except ValueError as err:
                raise ValueError(f"line {number} of the file {err}") from None
    if not keys:
        raise ValueError("the file holds no public key")
    return tuple(keys)
