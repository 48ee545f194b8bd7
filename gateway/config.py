"""YAML config -> frozen dataclasses; every error names its dotted key path and its line."""

# How it works: the YAML is composed into a node tree (every node keeps its line) and a generic
# reader walks it against the dataclasses below. Each field's type says how its value is read
# (bool, int, float, str, Path, enum, Listen, Secret, a nested section, a list); `_rule(...)` in
# the field metadata adds ranges, allowed values, text parsers and checks; `_validator`
# functions check combinations inside one section. Every problem is collected, so one run
# reports them all. Scalars are read from their source text where YAML 1.1 would mangle it
# (`close_at: 23:55` is not 1435, `vatin: 0274062111` is not octal, `mode: off` is not false).
# Pure: stdlib and PyYAML only.

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import difflib
import enum
import ipaddress
import os
import re
import types
import typing
import urllib.parse
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml

from gateway.atol.tasks import NameMapping
from gateway.domain.errors import ConfigError, ConfigIssue
from gateway.domain.fiscal import Vat

__all__ = [
    "ClockConfig",
    "ClockTrust",
    "CommandSigning",
    "Config",
    "EmulatorConfig",
    "HealthConfig",
    "HttpConfig",
    "JournalConfig",
    "Listen",
    "LogLevel",
    "MqttConfig",
    "MqttProtocol",
    "MqttTls",
    "OpenShiftClockPolicy",
    "OperatorConfig",
    "RegisterConfig",
    "RegisterDriver",
    "Secret",
    "ShiftConfig",
    "SigningMode",
    "TaxGroupsConfig",
    "TaxationName",
    "TlsFiles",
    "TokenConfig",
    "UsbConfig",
    "WebConfig",
    "WebLanguage",
    "check_config",
    "default_config",
    "load_config",
    "parse_config",
    "redacted",
]

DEFAULT_STATE_DIR: Final = "var"  # under the working directory when no config names one
SHTRIH_BAUDRATES: Final = (2400, 4800, 9600, 19200, 38400, 57600, 115200)
MIN_TOKEN_CHARS: Final = 16
MAX_SECRET_FILE_BYTES: Final = 64 * 1024
MAX_SCRYPT_MEMORY: Final = 256 * 1024 * 1024  # 128 * r * N bytes; more would starve the box

PAYMENT_TYPE_NAMES: Final = ("cash", "electronically", "prepaid", "credit", "other")
VAT_NAMES: Final = (
    "none",
    "vat0",
    "vat5",
    "vat7",
    "vat10",
    "vat20",
    "vat22",
    "vat105",
    "vat107",
    "vat110",
    "vat120",
    "vat122",
)
UNIT_NAMES: Final = (
    "piece",
    "gram",
    "kilogram",
    "ton",
    "centimeter",
    "decimeter",
    "meter",
    "squareCentimeter",
    "squareDecimeter",
    "squareMeter",
    "milliliter",
    "liter",
    "cubicMeter",
    "kilowattHour",
    "gkal",
    "day",
    "hour",
    "minute",
    "second",
    "kilobyte",
    "megabyte",
    "gigabyte",
    "terabyte",
    "otherUnits",
)
_MAPPING_TARGETS: Final[Mapping[str, tuple[str, ...]]] = {
    "payment_types": PAYMENT_TYPE_NAMES,
    "vat": VAT_NAMES,
    "units": UNIT_NAMES,
    "text": (),  # free text: a character (or string) -> what the register prints instead
}

_BOX_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHA256_HEX = re.compile(r"[0-9A-Fa-f]{64}")
_VATIN = re.compile(r"\d{10}|\d{12}")
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_B64 = r"[A-Za-z0-9+/.]+={0,2}"
_SCRYPT_PHC = re.compile(rf"\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\${_B64}\${_B64}")
_PEM_BLOCK = re.compile(
    r"-----BEGIN PUBLIC KEY-----(?P<body>[A-Za-z0-9+/=\s]*?)-----END PUBLIC KEY-----"
)
_ED25519_SPKI_PREFIX: Final = bytes.fromhex("302a300506032b6570032100")
_ED25519_KEY_BYTES: Final = 32
_CREDENTIAL_PREFIX: Final = "credential:"
_YAML_TAG: Final = "tag:yaml.org,2002:"
_NULL_TAG: Final = "tag:yaml.org,2002:null"
# Keys people reach for to switch TLS verification off; refused with a reason, not a shrug.
_NO_VERIFY_KEYS: Final = frozenset(
    {"insecure", "tls_insecure", "verify", "check_hostname", "cert_reqs", "skip_verify"}
)


# --- value types -----------------------------------------------------------------------------


class Secret:
    """A secret string that shows as '***' in repr/str, so it cannot reach a log by accident."""

    # A plain class on purpose: dataclasses.asdict() would copy a dataclass's value out.
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself; call it only where the value is used."""
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Listen:
    """A host and port to bind (`host:port`, IPv6 as `[::1]:port`)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """True when only this box can connect."""
        return _is_loopback(self.host)


class LogLevel(enum.StrEnum):
    """`log_level`."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class RegisterDriver(enum.StrEnum):
    """`register.driver`: a Shtrih-M register on a serial line, or a Ukrainian cloud РРО."""

    SHTRIH = "shtrih"
    CHECKBOX = "checkbox"
    VCHASNO = "vchasno"


class TaxationName(enum.StrEnum):
    """`register.taxation_type`: the tax system of receipts whose task names none."""

    OSN = "osn"
    USN_INCOME = "usnIncome"
    USN_INCOME_OUTCOME = "usnIncomeOutcome"
    ESN = "esn"
    PATENT = "patent"


class WebLanguage(enum.StrEnum):
    """`web.language`."""

    RU = "ru"
    UK = "uk"
    EN = "en"


class MqttProtocol(enum.StrEnum):
    """`mqtt.protocol`."""

    V5 = "5"
    V311 = "3.1.1"


class SigningMode(enum.StrEnum):
    """`mqtt.command_signing.mode`."""

    OFF = "off"
    REQUIRED = "required"


class ClockTrust(enum.StrEnum):
    """`clock.trust`: when the box's own clock counts as the truth."""

    AUTO = "auto"  # when the system says it is NTP-synchronised
    ALWAYS = "always"
    NEVER = "never"


class OpenShiftClockPolicy(enum.StrEnum):
    """`clock.correct_in_open_shift`: what to do about drift while a shift is open."""

    ALERT = "alert"
    CLOSE_SHIFT = "close_shift"


# --- field rules -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    """How one field is checked beyond its type."""

    lo: float | None = None
    hi: float | None = None
    choices: tuple[int, ...] = ()
    parse: Callable[[str], object] | None = None  # source text -> value; ValueError = message
    check: Callable[[Any], str | None] | None = None  # converted value -> problem or None
    must_exist: bool = False  # a Path that must name a readable file
    from_file: Callable[[str], object] | None = None  # `<key>_file` contents -> value


_NO_RULE: Final = _Rule()


def _rule(
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[int, ...] = (),
    parse: Callable[[str], object] | None = None,
    check: Callable[[Any], str | None] | None = None,
    must_exist: bool = False,
    from_file: Callable[[str], object] | None = None,
) -> dict[str, _Rule]:
    """Field metadata carrying a `_Rule`."""
    return {"rule": _Rule(lo, hi, choices, parse, check, must_exist, from_file)}


def _is_loopback(host: str) -> bool:
    """Whether a host name or address is this box only."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        name = host.lower().rstrip(".")
        return name == "localhost" or name.endswith(".localhost")


def _host_problem(host: str) -> str | None:
    """Why `host` is not an IP address or a DNS name, or None."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host) or len(host) > 253:
            return f"{host!r} is not an IP address or a host name"
    return None


def _parse_listen(text: str) -> Listen:
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
        problem = _host_problem(host)
        if problem is not None:
            raise ValueError(problem)
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be 1..65535; got {port}")
    return Listen(host, port)


def _parse_hhmm(text: str) -> dt.time:
    """`HH:MM` (24-hour) -> time."""
    m = _HHMM.fullmatch(text.strip())
    if m is None:
        raise ValueError(f'must be a time of day as "HH:MM", like "23:50"; got {text!r}')
    return dt.time(int(m[1]), int(m[2]))


def _parse_usb_id(text: str) -> str:
    """A USB vendor/product id as lsusb shows it (`1fc9`, `0x1FC9`) -> 4 lowercase hex digits."""
    digits = text.strip().lower().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{1,4}", digits):
        raise ValueError(
            f'must be a 4-digit hex USB id as lsusb shows it, like "1fc9"; got {text!r}'
        )
    return digits.zfill(4)


def _parse_register_port(text: str) -> str:
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
        problem = _host_problem(url.hostname)
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


def _check_url(url: str) -> str | None:
    """A cloud API root: https, or http only to this box (credentials never go out in clear)."""
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return f"is not a URL; got {url!r}"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"must be an https:// URL like https://api.checkbox.ua/api/v1; got {url!r}"
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        return "must use https:// (http:// only to this box); credentials go over it"
    if parts.query or parts.fragment:
        return "must be the API root, without ?query or #fragment"
    return None


def _check_box_id(value: str) -> str | None:
    """`box_id` goes into MQTT topics and file names."""
    if not _BOX_ID.fullmatch(value):
        return "must be 1..64 letters, digits, '_', '.' or '-' (it goes into MQTT topics)"
    return None


def _check_timezone(value: str) -> str | None:
    """An IANA zone name the box knows, or `local`."""
    if value == "local":
        return None
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {value!r}; use an IANA name like Europe/Moscow, or local"
    return None


def _check_text(limit: int) -> Callable[[Any], str | None]:
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


def _check_vatin(value: str) -> str | None:
    """ИНН: 10 digits (organisation) or 12 (person)."""
    return None if _VATIN.fullmatch(value) else "must be an ИНН of 10 or 12 digits"


def _check_topic_prefix(value: str) -> str | None:
    """MQTT topic levels without wildcards or empty levels."""
    if not value or any(level == "" for level in value.split("/")):
        return "must be topic levels like fiscal/v1 (no leading, trailing or double '/')"
    if set(value) & {"+", "#", "\x00"}:
        return "must not contain the MQTT wildcards + or #"
    return None


def _check_by_id(value: str) -> str | None:
    """A device path (glob allowed) under /dev."""
    if not value.startswith("/dev/"):
        return "must be a path under /dev, like /dev/serial/by-id/usb-SHTRIH*"
    return None


def _check_scrypt(value: Secret) -> str | None:
    """A PHC scrypt string: $scrypt$ln=15,r=8,p=1$<salt>$<hash>."""
    m = _SCRYPT_PHC.fullmatch(value.reveal())
    if m is None:
        return "must be an scrypt hash like $scrypt$ln=15,r=8,p=1$<salt>$<hash> (see the example)"
    ln, r, p = int(m[1]), int(m[2]), int(m[3])
    if ln < 14 or r < 1 or p < 1:
        return "scrypt cost too low (needs ln >= 14, r >= 1, p >= 1)"
    if ln > 30 or 128 * r * (1 << ln) > MAX_SCRYPT_MEMORY:
        return "scrypt cost needs more memory than the box can spare (128·r·2^ln <= 256 MiB)"
    return None


def _secret_from_file(text: str) -> Secret:
    """A secret file's contents, surrounding whitespace (the final newline) removed."""
    value = text.strip()
    if not value:
        raise ValueError("the file is empty")
    return Secret(value)


def _b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    body = "".join(text.split()).replace("-", "+").replace("_", "/")
    body += "=" * (-len(body) % 4)
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        raise ValueError("is not base64") from None


def _parse_ed25519_key(text: str) -> bytes:
    """An Ed25519 public key (raw 32 bytes or SPKI, as base64 or PEM) -> its 32 raw bytes."""
    body = text.strip()
    if body.startswith("-----BEGIN"):
        m = _PEM_BLOCK.fullmatch(body)
        if m is None:
            raise ValueError("is not a PEM PUBLIC KEY block")
        body = m["body"]
    raw = _b64decode(body)
    if len(raw) == len(_ED25519_SPKI_PREFIX) + _ED25519_KEY_BYTES and raw.startswith(
        _ED25519_SPKI_PREFIX
    ):
        return raw[len(_ED25519_SPKI_PREFIX) :]
    if len(raw) == _ED25519_KEY_BYTES:
        return raw
    raise ValueError("is not an Ed25519 public key (32 bytes raw, or a PEM/SPKI public key)")


def _parse_ed25519_key_file(text: str) -> tuple[bytes, ...]:
    """PEM blocks and/or one base64 key per line; `#` starts a comment."""
    keys: list[bytes] = []
    for m in _PEM_BLOCK.finditer(text):
        keys.append(_parse_ed25519_key(m[0]))
    rest = _PEM_BLOCK.sub("", text)
    for number, line in enumerate(rest.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            try:
                keys.append(_parse_ed25519_key(entry))
            except ValueError as err:
                raise ValueError(f"line {number} of the file {err}") from None
    if not keys:
        raise ValueError("the file holds no public key")
    return tuple(keys)


# --- the schema ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    """The cashier printed on documents when a task names none (ФФД tags 1021 and 1203)."""

    name: str = field(metadata=_rule(check=_check_text(64)))
    vatin: str | None = field(default=None, metadata=_rule(check=_check_vatin))


@dataclass(frozen=True, slots=True)
class UsbConfig:
    """How hotplug recognises the register's USB device."""

    vendor_id: str | None = field(default=None, metadata=_rule(parse=_parse_usb_id))
    product_id: str | None = field(default=None, metadata=_rule(parse=_parse_usb_id))
    by_id: str | None = field(default=None, metadata=_rule(check=_check_by_id))


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """The built-in emulator (`register.port: emulator`); its state is <state_dir>/emulator.state."""

    clock_offset_s: float | None = field(default=None, metadata=_rule(lo=-3.2e8, hi=3.2e8))
    ofd_interval_s: float | None = field(default=None, metadata=_rule(lo=0.01, hi=86400))


_TAX_GROUP: Final = _rule(lo=1, hi=99)


@dataclass(frozen=True, slots=True)
class TaxGroupsConfig:
    """`register.tax_groups`: the Вчасно.Каса tax group (`taxgrp`, 1..99) of each VAT rate.

    Absent, the driver uses the vendor's table (vat20 1, none 2, vat7 4, vat0 5); given, it
    replaces that table whole, and a rate left out is refused naming it.
    """

    none: int | None = field(default=None, metadata=_TAX_GROUP)
    vat0: int | None = field(default=None, metadata=_TAX_GROUP)
    vat5: int | None = field(default=None, metadata=_TAX_GROUP)
    vat7: int | None = field(default=None, metadata=_TAX_GROUP)
    vat10: int | None = field(default=None, metadata=_TAX_GROUP)
    vat20: int | None = field(default=None, metadata=_TAX_GROUP)
    vat22: int | None = field(default=None, metadata=_TAX_GROUP)
    vat105: int | None = field(default=None, metadata=_TAX_GROUP)
    vat107: int | None = field(default=None, metadata=_TAX_GROUP)
    vat110: int | None = field(default=None, metadata=_TAX_GROUP)
    vat120: int | None = field(default=None, metadata=_TAX_GROUP)
    vat122: int | None = field(default=None, metadata=_TAX_GROUP)

    def table(self) -> dict[Vat, int]:
        """VAT rate -> tax group, for the rates given."""
        return {vat: g for vat in Vat if (g := getattr(self, vat.value)) is not None}


@dataclass(frozen=True, slots=True)
class RegisterConfig:
    """The fiscal register and how to reach it."""

    driver: RegisterDriver = RegisterDriver.SHTRIH
    port: str = field(default="emulator", metadata=_rule(parse=_parse_register_port))
    baudrate: int = field(default=115200, metadata=_rule(choices=SHTRIH_BAUDRATES))
    device_password: int = field(default=30, metadata=_rule(lo=1, hi=30))
    operator: OperatorConfig | None = None
    taxation_type: TaxationName = TaxationName.OSN
    answer_timeout_s: float = field(default=5.0, metadata=_rule(lo=0.5, hi=120))
    print_timeout_s: float = field(default=30.0, metadata=_rule(lo=1, hi=600))
    report_timeout_s: float = field(default=90.0, metadata=_rule(lo=5, hi=900))
    heartbeat_interval_s: float = field(default=15.0, metadata=_rule(lo=1, hi=3600))
    heartbeat_failures: int = field(default=3, metadata=_rule(lo=1, hi=100))
    usb: UsbConfig = UsbConfig()
    emulator: EmulatorConfig = EmulatorConfig()
    url: str | None = field(default=None, metadata=_rule(check=_check_url))
    client_name: str = field(default="fiscal-gateway", metadata=_rule(check=_check_text(64)))
    license_key: Secret | None = field(default=None, metadata=_rule(check=_check_text(256)))
    login: Secret | None = field(default=None, metadata=_rule(check=_check_text(256)))
    password: Secret | None = field(default=None, metadata=_rule(check=_check_text(256)))
    pin_code: Secret | None = field(default=None, metadata=_rule(check=_check_text(64)))
    token: Secret | None = field(default=None, metadata=_rule(check=_check_text(1024)))
    tax_groups: TaxGroupsConfig | None = None  # driver vchasno only


@dataclass(frozen=True, slots=True)
class ShiftConfig:
    """When the worker opens and closes shifts by itself."""

    auto_open: bool = True
    close_before_limit_min: int = field(default=30, metadata=_rule(lo=1, hi=720))
    close_at: dt.time | None = None


@dataclass(frozen=True, slots=True)
class JournalConfig:
    """The durable SQLite journal."""

    retention_days: int = field(default=30, metadata=_rule(lo=1, hi=3650))
    recreate_if_corrupt: bool = False


@dataclass(frozen=True, slots=True)
class TokenConfig:
    """One API client: its name and its bearer token, or only the token's SHA-256."""

    name: str = field(metadata=_rule(check=_check_text(64)))
    token: Secret | None = None
    token_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A certificate chain and its private key (PEM files)."""

    cert_file: Path = field(metadata=_rule(must_exist=True))
    key_file: Path = field(metadata=_rule(must_exist=True))


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The ATOL-compatible HTTP API."""

    listen: Listen = Listen("127.0.0.1", 16732)
    tokens: tuple[TokenConfig, ...] = ()
    allow_loopback_without_token: bool = True
    tls: TlsFiles | None = None
    max_body_bytes: int = field(default=32768, metadata=_rule(lo=1024, hi=1_048_576))


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The technician's status page."""

    enabled: bool = True
    listen: Listen = Listen("127.0.0.1", 8080)
    password_hash: Secret | None = field(default=None, metadata=_rule(check=_check_scrypt))
    language: WebLanguage = WebLanguage.RU
    public_overview: bool = False


@dataclass(frozen=True, slots=True)
class MqttTls:
    """TLS to the broker; the broker's certificate is always verified."""

    ca_file: Path | None = field(default=None, metadata=_rule(must_exist=True))
    cert_file: Path | None = field(default=None, metadata=_rule(must_exist=True))
    key_file: Path | None = field(default=None, metadata=_rule(must_exist=True))


@dataclass(frozen=True, slots=True)
class CommandSigning:
    """End-to-end Ed25519 signatures on the office's commands."""

    mode: SigningMode = SigningMode.OFF
    public_keys: tuple[bytes, ...] = field(
        default=(), metadata=_rule(parse=_parse_ed25519_key, from_file=_parse_ed25519_key_file)
    )
    max_age_s: int = field(default=86400, metadata=_rule(lo=60, hi=7 * 86400))


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """The link to the central office's broker."""

    enabled: bool = False
    host: str | None = field(default=None, metadata=_rule(check=_host_problem))
    port: int = field(default=1883, metadata=_rule(lo=1, hi=65535))  # 8883 with tls
    protocol: MqttProtocol = MqttProtocol.V5
    client_id: str = field(default="", metadata=_rule(check=_check_text(128)))  # "" = box_id
    username: str | None = field(default=None, metadata=_rule(check=_check_text(256)))
    password: Secret | None = field(default=None, metadata=_rule(check=_check_text(1024)))
    keepalive_s: int = field(default=60, metadata=_rule(lo=5, hi=65535))
    session_expiry_s: int = field(default=7 * 86400, metadata=_rule(lo=0, hi=2**32 - 1))
    tls: MqttTls | None = None
    topic_prefix: str = field(default="fiscal/v1", metadata=_rule(check=_check_topic_prefix))
    telemetry_interval_s: int = field(default=60, metadata=_rule(lo=5, hi=86400))
    command_signing: CommandSigning = CommandSigning()


@dataclass(frozen=True, slots=True)
class ClockConfig:
    """How the register's clock is watched and corrected."""

    trust: ClockTrust = ClockTrust.AUTO
    check_interval_s: int = field(default=300, metadata=_rule(lo=10, hi=86400))
    drift_threshold_s: int = field(default=30, metadata=_rule(lo=1, hi=299))
    correct_in_open_shift: OpenShiftClockPolicy = OpenShiftClockPolicy.ALERT
    set_box_clock_from_register: bool = False


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """How often the register is polled and when its state becomes a warning."""

    poll_interval_s: int = field(default=60, metadata=_rule(lo=5, hi=86400))
    fn_expiry_warn_days: int = field(default=30, metadata=_rule(lo=1, hi=400))
    ofd_backlog_warn_days: int = field(default=3, metadata=_rule(lo=1, hi=29))
    min_firmware: str | None = field(default=None, metadata=_rule(check=_check_text(64)))


@dataclass(frozen=True, slots=True)
class UpdatesConfig:
    """Releases side by side with rollback (docs/box.md)."""

    root: Path = Path("/opt/fiscal-gateway")
    public_keys: tuple[bytes, ...] = field(
        default=(), metadata=_rule(parse=_parse_ed25519_key, from_file=_parse_ed25519_key_file)
    )
    confirm_after_min: int = field(default=10, metadata=_rule(lo=1, hi=1440))
    max_artifact_mb: int = field(default=200, metadata=_rule(lo=1, hi=4096))


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration."""

    box_id: str = field(default="box-local", metadata=_rule(check=_check_box_id))
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    log_level: LogLevel = LogLevel.INFO
    timezone: str = field(default="local", metadata=_rule(check=_check_timezone))
    register: RegisterConfig = RegisterConfig()
    shift: ShiftConfig = ShiftConfig()
    journal: JournalConfig = JournalConfig()
    http: HttpConfig = HttpConfig()
    web: WebConfig = WebConfig()
    mqtt: MqttConfig = MqttConfig()
    clock: ClockConfig = ClockConfig()
    health: HealthConfig = HealthConfig()
    updates: UpdatesConfig = UpdatesConfig()
    mapping: NameMapping = field(default_factory=NameMapping)


# --- section checks --------------------------------------------------------------------------

_D = TypeVar("_D")
_Validator = Callable[[Any, "_Scope"], Any]
_VALIDATORS: dict[type, _Validator] = {}


def _validator(cls: type[_D]) -> Callable[[Callable[[_D, _Scope], _D]], Callable[[_D, _Scope], _D]]:
    """Register the combination check of one section; it returns the (possibly completed) value."""

    def register(fn: Callable[[_D, _Scope], _D]) -> Callable[[_D, _Scope], _D]:
        _VALIDATORS[cls] = fn
        return fn

    return register


_CLOUD_ONLY: Final = (
    "url",
    "client_name",
    "license_key",
    "login",
    "password",
    "pin_code",
    "token",
    "tax_groups",
)
_SERIAL_ONLY: Final = ("port", "baudrate", "device_password", "usb", "emulator")


@_validator(RegisterConfig)
def _check_register(reg: RegisterConfig, s: _Scope) -> RegisterConfig:
    """Each driver's required settings; settings another driver would use are refused."""
    driver = reg.driver
    if driver is RegisterDriver.SHTRIH:
        for name in _CLOUD_ONLY:
            if s.given(name):
                s.issue(
                    name,
                    "is only for the cloud РРО drivers (register.driver checkbox/vchasno)",
                    needs=("driver",),
                )
        if s.given("emulator") and reg.port != "emulator":
            s.issue("emulator", "is only used with register.port: emulator", needs=("port",))
        return reg
    serial_defaults = RegisterConfig()
    for name in _SERIAL_ONLY:
        if getattr(reg, name) != getattr(serial_defaults, name):
            s.issue(
                name,
                f"is only for serial registers; the {driver} driver uses register.url",
                needs=("driver",),
            )
    if reg.url is None:
        s.issue("url", f"is required with driver {driver}", at="driver")
    if driver is RegisterDriver.CHECKBOX:
        if reg.license_key is None:
            s.issue("license_key", "is required with driver checkbox", at="driver")
        if reg.pin_code is None and (reg.login is None or reg.password is None):
            if reg.login is not None:
                s.issue("password", "is required with login (or give pin_code instead)", at="login")
            elif reg.password is not None:
                s.issue(
                    "login", "is required with password (or give pin_code instead)", at="password"
                )
            else:
                s.issue(
                    "pin_code",
                    "checkbox needs the cashier's pin_code, or login and password",
                    at="driver",
                )
        if s.given("token"):
            s.issue(
                "token",
                "is for driver vchasno; checkbox signs in with the keys above",
                needs=("driver",),
            )
        if s.given("tax_groups"):
            s.issue(
                "tax_groups",
                "is for driver vchasno; checkbox reads its tax codes from the register",
                needs=("driver",),
            )
    else:
        if reg.token is None:
            s.issue("token", "is required with driver vchasno", at="driver")
        for name in ("license_key", "login", "password", "pin_code"):
            if s.given(name):
                s.issue(
                    name, "is for driver checkbox; vchasno uses register.token", needs=("driver",)
                )
    return reg


@_validator(UsbConfig)
def _check_usb(usb: UsbConfig, s: _Scope) -> UsbConfig:
    """A product id means nothing without its vendor id."""
    if usb.product_id is not None and usb.vendor_id is None:
        s.issue("vendor_id", "is required with product_id", at="product_id")
    return usb


@_validator(TokenConfig)
def _check_token(entry: TokenConfig, s: _Scope) -> TokenConfig:
    """Exactly one of token / token_file / token_sha256; tokens long enough to resist guessing."""
    if entry.token is None and entry.token_sha256 is None:
        s.issue("token", "give one of token, token_file or token_sha256", at="name")
        return entry
    if entry.token is not None and entry.token_sha256 is not None:
        s.issue("token_sha256", "give either the token or its SHA-256, not both")
        return entry
    if entry.token is not None and len(entry.token.reveal()) < MIN_TOKEN_CHARS:
        s.issue("token", f"too short; use at least {MIN_TOKEN_CHARS} random characters")
    if entry.token_sha256 is not None:
        if not _SHA256_HEX.fullmatch(entry.token_sha256):
            s.issue("token_sha256", "must be 64 hex digits (the SHA-256 of the token)")
        else:
            return dataclasses.replace(entry, token_sha256=entry.token_sha256.lower())
    return entry


@_validator(HttpConfig)
def _check_http(http: HttpConfig, s: _Scope) -> HttpConfig:
    """API client names are unique (they name the caller in logs and the journal)."""
    seen: set[str] = set()
    for i, entry in enumerate(http.tokens):
        if entry.name in seen:
            s.issue(f"tokens[{i}].name", f"{entry.name!r} is already used by another client")
        seen.add(entry.name)
    return http


@_validator(WebConfig)
def _check_web(web: WebConfig, s: _Scope) -> WebConfig:
    """The page has actions, so beyond this box it needs a password."""
    if web.enabled and web.password_hash is None and not web.listen.is_loopback:
        s.issue(
            "password_hash",
            "is required when the status page listens beyond this box (web.listen)",
            at="listen",
            needs=("enabled",),
        )
    return web


@_validator(MqttTls)
def _check_mqtt_tls(tls: MqttTls, s: _Scope) -> MqttTls:
    """A client certificate comes with its key."""
    if (tls.cert_file is None) != (tls.key_file is None):
        missing = "key_file" if tls.key_file is None else "cert_file"
        s.issue(missing, "give cert_file and key_file together (the box's client certificate)")
    return tls


@_validator(CommandSigning)
def _check_signing(signing: CommandSigning, s: _Scope) -> CommandSigning:
    """Required signatures need at least one office key."""
    if signing.mode is SigningMode.REQUIRED and not signing.public_keys:
        s.issue("public_keys", "is required when mode is required", at="mode")
    return signing


@_validator(MqttConfig)
def _check_mqtt(mqtt: MqttConfig, s: _Scope) -> MqttConfig:
    """A broker host when enabled; the port follows TLS; no password in clear over a network."""
    if not s.given("port") and mqtt.tls is not None:
        mqtt = dataclasses.replace(mqtt, port=8883)
    if mqtt.enabled and mqtt.host is None:
        s.issue("host", "is required when mqtt.enabled is true", at="enabled")
    if (
        mqtt.password is not None
        and mqtt.tls is None
        and mqtt.host is not None
        and not _is_loopback(mqtt.host)
    ):
        s.issue(
            "password",
            "would cross the network in clear text; configure mqtt.tls",
            needs=("tls", "host"),
        )
    if mqtt.password is not None and mqtt.username is None and mqtt.protocol is MqttProtocol.V311:
        s.issue(
            "username",
            "MQTT 3.1.1 needs a username with a password",
            at="password",
            needs=("protocol",),
        )
    return mqtt


@_validator(Config)
def _check_config(cfg: Config, s: _Scope) -> Config:
    """Cross-section defaults and conflicts."""
    changes: dict[str, Any] = {}
    if not cfg.mqtt.client_id:
        changes["mqtt"] = dataclasses.replace(cfg.mqtt, client_id=cfg.box_id)
    if not s.given("state_dir"):
        changes["state_dir"] = Path.cwd() / DEFAULT_STATE_DIR
    if cfg.web.enabled and cfg.web.listen == cfg.http.listen:
        s.issue(
            "web.listen",
            f"is the same address as http.listen ({cfg.http.listen})",
            needs=("http",),
        )
    return dataclasses.replace(cfg, **changes) if changes else cfg


# --- the reader ------------------------------------------------------------------------------


class _Bad:
    """Marks a value that failed; its issue is already recorded."""

    def __repr__(self) -> str:
        return "<invalid>"


_BAD: Final[Any] = _Bad()


@dataclass(frozen=True, slots=True)
class _Field:
    """One schema field: its type, rule and whether it may be left out."""

    hint: Any
    rule: _Rule
    required: bool
    file_ok: bool


_FIELDS: dict[type, dict[str, _Field]] = {}


def _fields(cls: type) -> dict[str, _Field]:
    """The schema fields of a dataclass, cached."""
    cached = _FIELDS.get(cls)
    if cached is None:
        hints = typing.get_type_hints(cls)
        cached = {}
        for f in dataclasses.fields(cls):
            rule = f.metadata.get("rule", _NO_RULE)
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            hint = hints[f.name]
            file_ok = _unwrap(hint) is Secret or rule.from_file is not None
            cached[f.name] = _Field(hint, rule, required, file_ok)
        _FIELDS[cls] = cached
    return cached


def _unwrap(hint: Any) -> Any:
    """`X | None` -> X."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _is_optional(hint: Any) -> bool:
    """Whether None is allowed."""
    return typing.get_origin(hint) in (types.UnionType, typing.Union) and type(
        None
    ) in typing.get_args(hint)


def _is_null(node: yaml.Node | None) -> bool:
    """An absent value or YAML null (`key:`, `~`, `null`)."""
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG)


def _line(node: yaml.Node) -> int:
    """1-based line where a node starts."""
    return int(node.start_mark.line) + 1


def _join(path: str, key: str) -> str:
    """Dotted path of a member."""
    return f"{path}.{key}" if path else key


def _field_of(name: str) -> str:
    """The field a relative key path starts with (`tokens[1].name` -> `tokens`)."""
    return re.split(r"[.\[]", name, maxsplit=1)[0]


def _kind(node: yaml.Node) -> str:
    """What a node is, for messages."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a single value"


def _plain_text(node: yaml.ScalarNode) -> str:
    """The scalar as written (quoted or not)."""
    return str(node.value)


@dataclass(frozen=True, slots=True)
class _Scope:
    """A section being checked: issues land on its keys, with their lines."""

    reader: _Reader
    path: str
    line: int | None
    written: Mapping[str, str]  # field name -> key as written (`password` or `password_file`)
    present: frozenset[str]  # fields the file gives a value (a key left empty does not count)
    failed: frozenset[str]  # fields whose own value was refused; checked here as their default

    def given(self, name: str) -> bool:
        """Whether the file sets this field to something."""
        return name in self.present

    def issue(
        self, name: str, message: str, *, at: str | None = None, needs: tuple[str, ...] = ()
    ) -> None:
        """An issue on field `name`; its line is that key's, else `at`'s, else the section's."""
        # A conclusion drawn from a refused field's stand-in default would only mislead.
        if any(_field_of(n) in self.failed for n in (name, at, *needs) if n is not None):
            return
        path = _join(self.path, self.written.get(name, name))
        lines = self.reader.lines
        line = lines.get(path)
        if line is None and at is not None:
            line = lines.get(_join(self.path, self.written.get(at, at)))
        self.reader.issue(path, line if line is not None else self.line, message)


class _Reader:
    """Walks the YAML node tree against the schema, collecting every issue."""

    def __init__(
        self,
        loader: yaml.SafeLoader,
        base_dir: Path,
        credentials_dir: Path | None = None,
        read_instead: Mapping[Path, Path] | None = None,
    ) -> None:
        self.loader = loader
        self.base_dir = base_dir
        self.credentials_dir = credentials_dir
        self.read_instead: Mapping[Path, Path] = read_instead or {}
        self.issues: list[ConfigIssue] = []
        self.lines: dict[str, int] = {}  # dotted path -> line of its key (or list item)

    def issue(self, path: str, line: int | None, message: str) -> None:
        """Record one problem."""
        self.issues.append(ConfigIssue(path, line, message))

    def section(self, cls: type, node: yaml.Node | None, path: str, line: int | None) -> Any:
        """A dataclass from a mapping node; absent or null means all defaults."""
        if node is not None and _is_null(node):
            node = None
        if node is not None and not isinstance(node, yaml.MappingNode):
            where = path or "(document)"
            self.issue(where, _line(node), f"must be a mapping of keys, not {_kind(node)}")
            return _BAD
        fields = _fields(cls)
        pairs = self._pairs(node, path)
        kwargs: dict[str, Any] = {}
        written: dict[str, str] = {}
        present: set[str] = set()
        failed: set[str] = set()
        for key, (key_node, value_node) in pairs.items():
            key_path = _join(path, key)
            key_line = _line(key_node)
            name = key
            via_file = False
            if key.endswith("_file") and key[: -len("_file")] in fields:
                name, via_file = key[: -len("_file")], True
                if not fields[name].file_ok:
                    name, via_file = key, False
            if name not in fields:
                self._unknown(cls, fields, key, key_path, key_line)
                continue
            if via_file and name in pairs:
                self.issue(key_path, key_line, f"give either {name} or {key}, not both")
                failed.add(name)
                continue
            written[name] = key
            if not _is_null(value_node):
                present.add(name)
            self.lines.setdefault(_join(path, name), key_line)
            f = fields[name]
            if via_file:
                value = self._from_file(f, value_node, key_path)
            else:
                value = self.value(f.hint, value_node, key_path, f.rule, key_line)
            if value is not _BAD and value is not None:
                value = self._check(f.rule, value, key_path, _line(value_node))
            if value is _BAD:
                failed.add(name)
            else:
                kwargs[name] = value
        missing = [n for n, f in fields.items() if f.required and n not in kwargs]
        for name in missing:
            if name not in failed:
                self.issue(_join(path, name), line, "is required")
        if missing:
            return _BAD
        obj = cls(**kwargs)  # refused fields stand in as their defaults, for the checks below
        check = _VALIDATORS.get(cls)
        if check is not None:
            before = len(self.issues)
            scope = _Scope(self, path, line, written, frozenset(present), frozenset(failed))
            obj = check(obj, scope)
            if len(self.issues) > before:
                return _BAD
        return _BAD if failed else obj

    def _pairs(
        self, node: yaml.MappingNode | None, path: str
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The keys of a mapping node; duplicates and non-text keys are issues."""
        pairs: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        if node is None:
            return pairs
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or _is_null(key_node):
                self.issue(path or "(document)", _line(key_node), "keys must be plain names")
                continue
            key = _plain_text(key_node)
            if key in pairs:
                first = _line(pairs[key][0])
                self.issue(
                    _join(path, key), _line(key_node), f"given twice (first on line {first})"
                )
                continue
            pairs[key] = (key_node, value_node)
            self.lines[_join(path, key)] = _line(key_node)
        return pairs

    def _unknown(
        self, cls: type, fields: Mapping[str, _Field], key: str, path: str, line: int
    ) -> None:
        """An unknown key, with the closest known one as a hint."""
        if cls is MqttTls and key in _NO_VERIFY_KEYS:
            self.issue(path, line, "unknown key; the broker's certificate is always verified")
            return
        known = [*fields, *(f"{n}_file" for n, f in fields.items() if f.file_ok)]
        close = difflib.get_close_matches(key, known, n=1)
        self.issue(path, line, "unknown key" + (f"; did you mean {close[0]!r}?" if close else ""))

    def value(self, hint: Any, node: yaml.Node, path: str, rule: _Rule, line: int) -> Any:
        """One value of type `hint` from its node; `line` is that of its key or list item."""
        if _is_null(node):
            if _is_optional(hint):
                return None
            base = _unwrap(hint)
            if dataclasses.is_dataclass(base) and base is not Listen:
                return self.section(typing.cast(type, base), None, path, line)
            if typing.get_origin(base) is tuple:
                return ()
            if base is NameMapping:
                return NameMapping()
            self.issue(path, _line(node), "has no value; leave the key out to get the default")
            return _BAD
        hint = _unwrap(hint)
        if hint is NameMapping:
            return self.mapping(node, path)
        if dataclasses.is_dataclass(hint) and hint is not Listen:
            return self.section(typing.cast(type, hint), node, path, line)
        if typing.get_origin(hint) is tuple:
            if not isinstance(node, yaml.SequenceNode):
                self.issue(path, _line(node), f"must be a list, not {_kind(node)}")
                return _BAD
            items: list[Any] = []
            for i, item in enumerate(node.value):
                item_path = f"{path}[{i}]"
                item_line = _line(item)
                self.lines[item_path] = item_line
                items.append(self.value(typing.get_args(hint)[0], item, item_path, rule, item_line))
            return _BAD if any(v is _BAD for v in items) else tuple(items)
        if not isinstance(node, yaml.ScalarNode):
            self.issue(path, _line(node), f"must be a single value, not {_kind(node)}")
            return _BAD
        if not str(node.tag).startswith(_YAML_TAG):
            self.issue(path, _line(node), f"YAML tags such as {node.tag} are not supported")
            return _BAD
        return self.scalar(hint, node, path, rule)

    def scalar(self, hint: Any, node: yaml.ScalarNode, path: str, rule: _Rule) -> Any:
        """A scalar value; text types read the source text, numbers and booleans the YAML value."""
        line = _line(node)
        text = _plain_text(node)
        try:
            if rule.parse is not None:
                return rule.parse(text)
            if hint is Listen:
                return _parse_listen(text)
            if hint is dt.time:
                return _parse_hhmm(text)
        except ValueError as err:
            self.issue(path, line, str(err))
            return _BAD
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            allowed = [str(m.value) for m in hint]
            if text not in allowed:
                close = difflib.get_close_matches(text, allowed, n=1)
                hint_text = f"; did you mean {close[0]!r}?" if close else ""
                self.issue(
                    path, line, f"must be one of {', '.join(allowed)}; got {text!r}{hint_text}"
                )
                return _BAD
            return hint(text)
        if hint is str:
            return text
        if hint is Secret:
            if not text:
                self.issue(path, line, "must not be empty")
                return _BAD
            return Secret(text)
        if hint is Path:
            if not text.strip():
                self.issue(path, line, "must be a path")
                return _BAD
            return self.path(text)
        if hint in (bool, int, float):
            return self._typed(hint, node, path, line)
        raise TypeError(f"the config schema uses an unsupported type {hint!r}")

    def _typed(self, hint: type, node: yaml.ScalarNode, path: str, line: int) -> Any:
        """bool, int or float as YAML reads it; bool is never a number, an int is a fine float."""
        try:
            raw = self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raw = _plain_text(node)
        if hint is float and isinstance(raw, str) and node.style is None:
            with contextlib.suppress(ValueError):
                raw = float(raw)  # YAML 1.1 wants a dot; accept 1e3 as well
        if hint is bool:
            if isinstance(raw, bool):
                return raw
            self.issue(path, line, f"must be true or false; got {raw!r}")
            return _BAD
        ok = isinstance(raw, int) and not isinstance(raw, bool)
        if hint is float:
            ok = ok or (isinstance(raw, float) and raw == raw and abs(raw) != float("inf"))
        if not ok:
            what = "a whole number" if hint is int else "a number"
            self.issue(path, line, f"must be {what}; got {raw!r}")
            return _BAD
        return float(raw) if hint is float else raw

    def _check(self, rule: _Rule, value: Any, path: str, line: int) -> Any:
        """Range, allowed values, the field's own check, file existence."""
        if rule.lo is not None and rule.hi is not None and not rule.lo <= value <= rule.hi:
            self.issue(path, line, f"must be between {rule.lo:g} and {rule.hi:g}; got {value:g}")
            return _BAD
        if rule.choices and value not in rule.choices:
            choices = ", ".join(map(str, rule.choices))
            self.issue(path, line, f"must be one of {choices}; got {value}")
            return _BAD
        if rule.check is not None:
            problem = rule.check(value)
            if problem is not None:
                self.issue(path, line, problem)
                return _BAD
        if rule.must_exist and isinstance(value, Path):
            problem = _file_problem(self.read_instead.get(value, value))
            if problem is not None:
                self.issue(path, line, problem)
                return _BAD
        return value

    def path(self, text: str) -> Path:
        """A path; relative ones resolve against the config file's folder."""
        p = Path(text).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def _from_file(self, f: _Field, node: yaml.Node, path: str) -> Any:
        """A `<key>_file` value: a path, or credential:NAME in $CREDENTIALS_DIRECTORY."""
        if not isinstance(node, yaml.ScalarNode) or _is_null(node) or not str(node.value).strip():
            self.issue(path, _line(node), "must be a file path or credential:NAME")
            return _BAD
        line = _line(node)
        raw = _plain_text(node).strip()
        if raw.startswith(_CREDENTIAL_PREFIX):
            name = raw[len(_CREDENTIAL_PREFIX) :]
            folder = self.credentials_dir or os.environ.get("CREDENTIALS_DIRECTORY")
            if not name or "/" in name or name in (".", ".."):
                self.issue(path, line, f"bad credential name {name!r}")
                return _BAD
            if not folder:
                self.issue(
                    path,
                    line,
                    "credential:NAME needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)",
                )
                return _BAD
            file = Path(folder) / name
        else:
            file = self.path(raw)
        file = self.read_instead.get(file, file)
        problem = _file_problem(file, max_bytes=MAX_SECRET_FILE_BYTES)
        if problem is not None:
            self.issue(path, line, problem)
            return _BAD
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as err:
            self.issue(path, line, f"cannot read {file}: {err.strerror or err}")
            return _BAD
        except UnicodeDecodeError:
            self.issue(path, line, f"{file} is not UTF-8 text")
            return _BAD
        convert = f.rule.from_file or _secret_from_file
        try:
            return convert(text)
        except ValueError as err:
            self.issue(path, line, f"{file}: {err}")
            return _BAD

    def mapping(self, node: yaml.Node, path: str) -> Any:
        """The `mapping:` section: CRM names -> ATOL names, each checked."""
        if not isinstance(node, yaml.MappingNode):
            self.issue(path, _line(node), f"must be a mapping of keys, not {_kind(node)}")
            return _BAD
        out: dict[str, Mapping[str, str]] = {}
        ok = True
        for key, (key_node, value_node) in self._pairs(node, path).items():
            key_path = _join(path, key)
            targets = _MAPPING_TARGETS.get(key)
            if targets is None:
                close = difflib.get_close_matches(key, list(_MAPPING_TARGETS), n=1)
                self.issue(
                    key_path,
                    _line(key_node),
                    "unknown key" + (f"; did you mean {close[0]!r}?" if close else ""),
                )
                ok = False
                continue
            if _is_null(value_node):
                out[key] = types.MappingProxyType({})
                continue
            if not isinstance(value_node, yaml.MappingNode):
                self.issue(key_path, _line(value_node), "must map CRM names to ATOL names")
                ok = False
                continue
            section: dict[str, str] = {}
            for name_node, target_node in value_node.value:
                if not isinstance(name_node, yaml.ScalarNode) or _is_null(name_node):
                    self.issue(key_path, _line(name_node), "CRM names must be plain text")
                    ok = False
                    continue
                name = _plain_text(name_node)
                item_path = f"{key_path}[{name!r}]"
                if name in section:
                    self.issue(item_path, _line(name_node), "given twice")
                    ok = False
                    continue
                self.lines[item_path] = _line(name_node)
                problem = self._mapping_problem(name, target_node, targets)
                if problem is not None:
                    self.issue(item_path, _line(target_node), problem)
                    ok = False
                    continue
                section[name] = _plain_text(typing.cast(yaml.ScalarNode, target_node))
            out[key] = types.MappingProxyType(section)
        if not ok:
            return _BAD
        empty: Mapping[str, str] = types.MappingProxyType({})
        default = NameMapping()
        return NameMapping(
            payment_types=out.get("payment_types", empty),
            vat=out.get("vat", empty),
            units=out.get("units", empty),
            text=out.get("text", default.text),
        )

    @staticmethod
    def _mapping_problem(name: str, target: yaml.Node, targets: tuple[str, ...]) -> str | None:
        """Why one CRM name -> ATOL name entry is wrong, or None."""
        if not name.strip():
            return "the CRM name must not be empty"
        if not targets:  # mapping.text
            if not isinstance(target, yaml.ScalarNode) or _is_null(target):
                return "must be the text printed instead"
            try:
                _plain_text(target).encode("cp1251")
            except UnicodeEncodeError:
                return "the replacement must itself be printable (cp1251)"
            return None
        if not isinstance(target, yaml.ScalarNode) or _is_null(target):
            return f"must be one of {', '.join(targets)}"
        value = _plain_text(target)
        if value not in targets:
            close = difflib.get_close_matches(value, targets, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return f"{value!r} is not one of {', '.join(targets)}{hint}"
        if name in targets and name != value:
            return f"{name!r} is itself an ATOL name and cannot be mapped to another"
        return None


def _file_problem(file: Path, *, max_bytes: int | None = None) -> str | None:
    """Why `file` is not a readable regular file (of at most `max_bytes`), or None."""
    try:
        st = file.stat()
    except FileNotFoundError:
        return f"file not found: {file}"
    except OSError as err:
        return f"cannot read {file}: {err.strerror or err}"
    if file.is_dir():
        return f"{file} is a folder, not a file"
    if not os.access(file, os.R_OK):
        return f"cannot read {file}: permission denied"
    if max_bytes is not None and st.st_size > max_bytes:
        return f"{file} is larger than {max_bytes} bytes; is it the right file?"
    return None


def _syntax_issue(err: yaml.YAMLError, text: str) -> ConfigIssue:
    """A YAML syntax error as one issue with its line."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    line = int(mark.line) + 1 if mark is not None else None
    problem = getattr(err, "problem", None) or str(err)
    message = f"not valid YAML ({problem})"
    if line is not None:
        lines = text.splitlines()
        source_line = lines[line - 1] if 0 < line <= len(lines) else ""
        if re.search(r":\s*\[[0-9A-Fa-f:.]*\]:\d+", source_line):
            message += '; quote IPv6 addresses: listen: "[::1]:8080"'
        if "\t" in source_line[: len(source_line) - len(source_line.lstrip())]:
            message += "; indent with spaces, not tabs"
    return ConfigIssue("(syntax)", line, message)


def _sorted(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    """Issues in file order (stable, so one line's issues keep their order)."""
    return sorted(issues, key=lambda i: (i.line is None, i.line or 0))


# --- public API ------------------------------------------------------------------------------


def parse_config(
    text: str,
    *,
    source: str = "<string>",
    base_dir: Path | None = None,
    credentials_dir: Path | None = None,
    read_instead: Mapping[Path, Path] | None = None,
) -> Config:
    """Parse YAML text into a Config; ConfigError lists every issue found.

    `credentials_dir` is where credential:NAME points (default $CREDENTIALS_DIRECTORY).
    `read_instead` maps files the config names to the files checked and read in their place,
    for a config checked before its files are where it names them (`fiscal-gateway
    provision`); the Config keeps the names as written.
    """
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as err:
            raise ConfigError([_syntax_issue(err, text)]) from None
        base = base_dir if base_dir is not None else Path.cwd()
        reader = _Reader(loader, base, credentials_dir, read_instead)
        cfg = reader.section(Config, root, "", 1)
    finally:
        loader.dispose()
    if reader.issues or cfg is _BAD:
        raise ConfigError(_sorted(reader.issues))
    assert isinstance(cfg, Config)
    return cfg


def load_config(path: Path) -> Config:
    """Read and parse a config file; relative paths in it resolve against its folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            [ConfigIssue("(file)", None, f"cannot read {path}: {err.strerror or err}")]
        ) from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            [ConfigIssue("(file)", None, f"{path} is not UTF-8 text ({err.reason})")]
        ) from None
    return parse_config(text, source=str(path), base_dir=path.absolute().parent)


def check_config(path: Path) -> list[ConfigIssue]:
    """Every issue in a config file; empty when it is valid."""
    try:
        load_config(path)
    except ConfigError as err:
        return list(err.issues)
    return []


def default_config() -> Config:
    """The embedded defaults (`fiscal-gateway run` without --config): state in ./var."""
    return parse_config("", source="<defaults>", base_dir=Path.cwd())


def redacted(cfg: Config) -> dict[str, object]:
    """The config as plain data (for diagnostics and logs) with every secret shown as '***'."""
    plain = _plain(cfg)
    assert isinstance(plain, dict)
    return plain


def _plain(value: object) -> object:
    """One value as JSON-like data."""
    if isinstance(value, Secret):
        return "***"
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Listen):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
