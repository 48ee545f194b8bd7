"""Pure: the config's sections as frozen dataclasses, with their defaults and field rules.

A field's type says how the reader reads it; `rule(...)` in its metadata adds ranges, allowed
values, text parsers and checks. Combinations inside one section are checked in
`section_checks.py`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from gateway.atol.names import NameMapping
from gateway.config.choices import (
    ClockTrust,
    LogLevel,
    MarkingOrder,
    MqttProtocol,
    OpenShiftClockPolicy,
    RegisterDriver,
    SigningMode,
    TaxationName,
    WebLanguage,
)
from gateway.config.parsers import (
    host_problem,
    parse_ed25519_key,
    parse_ed25519_key_file,
    parse_register_port,
    parse_usb_id,
)
from gateway.config.rules import (
    SHTRIH_BAUDRATES,
    check_basic_name,
    check_box_id,
    check_by_id,
    check_fois,
    check_kkm_users,
    check_permit_date,
    check_permit_number,
    check_scrypt,
    check_text,
    check_timezone,
    check_topic_prefix,
    check_url,
    check_vatin,
    rule,
)
from gateway.config.values import Listen, Secret
from gateway.domain.fiscal import Vat

DEFAULT_STATE_DIR: Final = "var"  # under the working directory when no config names one
_API_LISTEN: Final = Listen("127.0.0.1", 16732)  # ATOL's port, this box only
_WEB_LISTEN: Final = Listen("127.0.0.1", 8080)
_KKM_LISTEN: Final = Listen("127.0.0.1", 5893)  # KKMServer's own port, this box only


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    """The cashier printed on documents when a task names none (ФФД tags 1021 and 1203)."""

    name: str = field(metadata=rule(check=check_text(64)))
    vatin: str | None = field(default=None, metadata=rule(check=check_vatin))


@dataclass(frozen=True, slots=True)
class UsbConfig:
    """How hotplug recognises the register's USB device."""

    vendor_id: str | None = field(default=None, metadata=rule(parse=parse_usb_id))
    product_id: str | None = field(default=None, metadata=rule(parse=parse_usb_id))
    by_id: str | None = field(default=None, metadata=rule(check=check_by_id))


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """The built-in emulator (`register.port: emulator`); its state is <state_dir>/emulator.state."""

    clock_offset_s: float | None = field(default=None, metadata=rule(lo=-3.2e8, hi=3.2e8))
    ofd_interval_s: float | None = field(default=None, metadata=rule(lo=0.01, hi=86400))


_TAX_GROUP: Final = rule(lo=1, hi=99)


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
    port: str = field(default="emulator", metadata=rule(parse=parse_register_port))
    baudrate: int = field(default=115200, metadata=rule(choices=SHTRIH_BAUDRATES))
    device_password: int = field(default=30, metadata=rule(lo=1, hi=30))
    operator: OperatorConfig | None = None
    taxation_type: TaxationName = TaxationName.OSN
    answer_timeout_s: float = field(default=5.0, metadata=rule(lo=0.5, hi=120))
    print_timeout_s: float = field(default=30.0, metadata=rule(lo=1, hi=600))
    report_timeout_s: float = field(default=90.0, metadata=rule(lo=5, hi=900))
    heartbeat_interval_s: float = field(default=15.0, metadata=rule(lo=1, hi=3600))
    heartbeat_failures: int = field(default=3, metadata=rule(lo=1, hi=100))
    usb: UsbConfig = UsbConfig()
    emulator: EmulatorConfig = EmulatorConfig()
    url: str | None = field(default=None, metadata=rule(check=check_url))
    client_name: str = field(default="fiscal-gateway", metadata=rule(check=check_text(64)))
    license_key: Secret | None = field(default=None, metadata=rule(check=check_text(256)))
    login: Secret | None = field(default=None, metadata=rule(check=check_text(256)))
    password: Secret | None = field(default=None, metadata=rule(check=check_text(256)))
    pin_code: Secret | None = field(default=None, metadata=rule(check=check_text(64)))
    token: Secret | None = field(default=None, metadata=rule(check=check_text(1024)))
    tax_groups: TaxGroupsConfig | None = None  # driver vchasno only
    marking_order: MarkingOrder = MarkingOrder.AUTO  # driver shtrih only


@dataclass(frozen=True, slots=True)
class MarkingConfig:
    """Marked goods: the permissive-mode document an `industryInfo` entry cites when it
    leaves out its own (ФФД tags 1262, 1263, 1264 of STLV 1260/1261), and whether every
    marked item needs the marking system's confirmation (`strict`).

    The default is Government decree 21.11.2023 № 1944; which document is current is not
    settled (some integrations cite 26.03.2022 № 477), so each value can be changed here.
    """

    permit_fois: str = field(default="030", metadata=rule(check=check_fois))
    permit_date: str = field(default="21.11.2023", metadata=rule(check=check_permit_date))
    permit_number: str = field(default="1944", metadata=rule(check=check_permit_number))
    # Every marked item needs the marking system's confirmation, as `validateMarkingCodes:
    # true` asks (a pharmacy's or a cautious shop's choice), whatever the client sends.
    strict: bool = False


@dataclass(frozen=True, slots=True)
class ShiftConfig:
    """When the worker opens and closes shifts by itself."""

    auto_open: bool = True
    close_before_limit_min: int = field(default=30, metadata=rule(lo=1, hi=720))
    close_at: dt.time | None = None


@dataclass(frozen=True, slots=True)
class JournalConfig:
    """The durable SQLite journal."""

    retention_days: int = field(default=30, metadata=rule(lo=1, hi=3650))
    recreate_if_corrupt: bool = False


@dataclass(frozen=True, slots=True)
class TokenConfig:
    """One API client: its name and its bearer token, or only the token's SHA-256."""

    name: str = field(metadata=rule(check=check_text(64)))
    token: Secret | None = None
    token_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A certificate chain and its private key (PEM files)."""

    cert_file: Path = field(metadata=rule(must_exist=True))
    key_file: Path = field(metadata=rule(must_exist=True))


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The ATOL-compatible HTTP API."""

    listen: Listen = _API_LISTEN
    tokens: tuple[TokenConfig, ...] = ()
    allow_loopback_without_token: bool = True
    tls: TlsFiles | None = None
    max_body_bytes: int = field(default=32768, metadata=rule(lo=1024, hi=1_048_576))


@dataclass(frozen=True, slots=True)
class KkmUserConfig:
    """One client of the KKMServer-compatible API: its HTTP Basic name and password."""

    name: str = field(metadata=rule(check=check_basic_name))
    password: Secret = field(metadata=rule(check=check_text(256)))


@dataclass(frozen=True, slots=True)
class KkmServerConfig:
    """The KKMServer-compatible API (docs/kkmserver.md); off while the section is absent."""

    users: tuple[KkmUserConfig, ...] = field(metadata=rule(check=check_kkm_users))
    listen: Listen = _KKM_LISTEN


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The technician's status page."""

    enabled: bool = True
    listen: Listen = _WEB_LISTEN
    password_hash: Secret | None = field(default=None, metadata=rule(check=check_scrypt))
    language: WebLanguage = WebLanguage.RU
    public_overview: bool = False


@dataclass(frozen=True, slots=True)
class MqttTls:
    """TLS to the broker; the broker's certificate is always verified."""

    ca_file: Path | None = field(default=None, metadata=rule(must_exist=True))
    cert_file: Path | None = field(default=None, metadata=rule(must_exist=True))
    key_file: Path | None = field(default=None, metadata=rule(must_exist=True))


@dataclass(frozen=True, slots=True)
class CommandSigning:
    """End-to-end Ed25519 signatures on the office's commands."""

    mode: SigningMode = SigningMode.OFF
    public_keys: tuple[bytes, ...] = field(
        default=(), metadata=rule(parse=parse_ed25519_key, from_file=parse_ed25519_key_file)
    )
    max_age_s: int = field(default=86400, metadata=rule(lo=60, hi=7 * 86400))


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """The link to the central office's broker."""

    enabled: bool = False
    host: str | None = field(default=None, metadata=rule(check=host_problem))
    port: int = field(default=1883, metadata=rule(lo=1, hi=65535))  # 8883 with tls
    protocol: MqttProtocol = MqttProtocol.V5
    client_id: str = field(default="", metadata=rule(check=check_text(128)))  # "" = box_id
    username: str | None = field(default=None, metadata=rule(check=check_text(256)))
    password: Secret | None = field(default=None, metadata=rule(check=check_text(1024)))
    keepalive_s: int = field(default=60, metadata=rule(lo=5, hi=65535))
    session_expiry_s: int = field(default=7 * 86400, metadata=rule(lo=0, hi=2**32 - 1))
    tls: MqttTls | None = None
    topic_prefix: str = field(default="fiscal/v1", metadata=rule(check=check_topic_prefix))
    telemetry_interval_s: int = field(default=60, metadata=rule(lo=5, hi=86400))
    command_signing: CommandSigning = CommandSigning()


@dataclass(frozen=True, slots=True)
class ClockConfig:
    """How the register's clock is watched and corrected."""

    trust: ClockTrust = ClockTrust.AUTO
    check_interval_s: int = field(default=300, metadata=rule(lo=10, hi=86400))
    drift_threshold_s: int = field(default=30, metadata=rule(lo=1, hi=299))
    correct_in_open_shift: OpenShiftClockPolicy = OpenShiftClockPolicy.ALERT
    set_box_clock_from_register: bool = False


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """How often the register is polled and when its state becomes a warning."""

    poll_interval_s: int = field(default=60, metadata=rule(lo=5, hi=86400))
    fn_expiry_warn_days: int = field(default=30, metadata=rule(lo=1, hi=400))
    ofd_backlog_warn_days: int = field(default=3, metadata=rule(lo=1, hi=29))
    min_firmware: str | None = field(default=None, metadata=rule(check=check_text(64)))


@dataclass(frozen=True, slots=True)
class UpdatesConfig:
    """Releases side by side with rollback (docs/box.md)."""

    root: Path = Path("/opt/fiscal-gateway")
    public_keys: tuple[bytes, ...] = field(
        default=(), metadata=rule(parse=parse_ed25519_key, from_file=parse_ed25519_key_file)
    )
    confirm_after_min: int = field(default=10, metadata=rule(lo=1, hi=1440))
    max_artifact_mb: int = field(default=200, metadata=rule(lo=1, hi=4096))


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration."""

    box_id: str = field(default="box-local", metadata=rule(check=check_box_id))
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    log_level: LogLevel = LogLevel.INFO
    timezone: str = field(default="local", metadata=rule(check=check_timezone))
    register: RegisterConfig = RegisterConfig()
    shift: ShiftConfig = ShiftConfig()
    journal: JournalConfig = JournalConfig()
    http: HttpConfig = HttpConfig()
    kkmserver: KkmServerConfig | None = None
    web: WebConfig = WebConfig()
    mqtt: MqttConfig = MqttConfig()
    clock: ClockConfig = ClockConfig()
    health: HealthConfig = HealthConfig()
    updates: UpdatesConfig = UpdatesConfig()
    marking: MarkingConfig = MarkingConfig()
    mapping: NameMapping = field(default_factory=NameMapping)
