"""YAML config -> frozen dataclasses; every error names its key path and line.

The schema is the dataclasses below: a generic walker reads the YAML node tree (so each
value keeps its line), checks types, enums (Literal), ranges, unknown keys (with a "did you
mean"), and secrets given inline or as `<key>_file` (a path, or `credential:NAME` for
systemd's LoadCredential directory). Pure: stdlib and PyYAML only.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from gateway.errors import ConfigError, ConfigIssue
from gateway.tasks import NameMapping

_BOX_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_BAUDRATES = (2400, 4800, 9600, 19200, 38400, 57600, 115200)
_PAYMENT_NAMES = ("cash", "electronically", "prepaid", "credit", "other")
_VAT_NAMES = tuple(
    [
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
    ]
)
_UNIT_NAMES = tuple(
    [
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
    ]
)


class Secret:
    """A secret value; never shown by repr/str, so it cannot reach a log by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Listen:
    """host:port to bind."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _range(lo: float, hi: float) -> dict[str, Any]:
    return {"range": (lo, hi)}


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    """Cashier printed on documents (ФФД 1021/1203)."""

    name: str
    vatin: str | None = None


@dataclass(frozen=True, slots=True)
class UsbConfig:
    """How hotplug recognises the register's USB device."""

    vendor_id: str | None = None
    product_id: str | None = None
    by_id: str | None = None


@dataclass(frozen=True, slots=True)
class RegisterConfig:
    """The fiscal register and how to reach it."""

    driver: Literal["shtrih", "checkbox", "vchasno"] = "shtrih"
    port: str = "emulator"
    baudrate: int = 115200
    device_password: int = field(default=30, metadata=_range(1, 30))
    operator: OperatorConfig | None = None
    answer_timeout_s: float = field(default=5.0, metadata=_range(0.1, 600))
    report_timeout_s: float = field(default=90.0, metadata=_range(1, 900))
    usb: UsbConfig = UsbConfig()
    url: str | None = None
    client_name: str = "fiscal-gateway"
    license_key: Secret | None = None
    login: Secret | None = None
    password: Secret | None = None
    pin_code: Secret | None = None
    token: Secret | None = None


@dataclass(frozen=True, slots=True)
class ShiftConfig:
    """When the worker opens and closes shifts by itself."""

    auto_open: bool = True
    close_before_limit_min: int = field(default=30, metadata=_range(1, 600))
    close_at: str | None = None


@dataclass(frozen=True, slots=True)
class JournalConfig:
    """The durable journal."""

    retention_days: int = field(default=30, metadata=_range(1, 3650))
    recreate_if_corrupt: bool = False


@dataclass(frozen=True, slots=True)
class TokenConfig:
    """One API client's bearer token (inline, from a file, or only its SHA-256)."""

    name: str
    token: Secret | None = None
    token_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A certificate and its key."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The ATOL-compatible HTTP API."""

    listen: Listen = Listen("127.0.0.1", 16732)
    tokens: tuple[TokenConfig, ...] = ()
    allow_loopback_without_token: bool = True
    tls: TlsFiles | None = None
    max_body_bytes: int = field(default=32768, metadata=_range(1024, 1_048_576))


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The technician's status page."""

    enabled: bool = True
    listen: Listen = Listen("127.0.0.1", 8080)
    password_hash: Secret | None = None
    language: Literal["ru", "uk", "en"] = "ru"
    public_overview: bool = False


@dataclass(frozen=True, slots=True)
class MqttTls:
    """TLS to the broker; verification of the broker is never switched off."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class CommandSigning:
    """End-to-end Ed25519 signatures on office commands."""

    mode: Literal["off", "required"] = "off"
    public_keys: Secret | None = None
    max_age_s: int = field(default=900, metadata=_range(10, 86400 * 7))


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """The link to the central office's broker."""

    enabled: bool = False
    host: str | None = None
    port: int | None = field(default=None, metadata=_range(1, 65535))
    protocol: Literal["5", "3.1.1"] = "5"
    client_id: str | None = None
    username: str | None = None
    password: Secret | None = None
    keepalive_s: int = field(default=60, metadata=_range(5, 3600))
    session_expiry_s: int = field(default=7 * 86400, metadata=_range(0, 2**32 - 1))
    tls: MqttTls | None = None
    topic_prefix: str = "fiscal/v1"
    telemetry_interval_s: int = field(default=60, metadata=_range(5, 86400))
    command_signing: CommandSigning = CommandSigning()


@dataclass(frozen=True, slots=True)
class ClockConfig:
    """Register clock policy."""

    trust: Literal["auto", "always", "never"] = "auto"
    check_interval_s: int = field(default=300, metadata=_range(10, 86400))
    drift_threshold_s: int = field(default=30, metadata=_range(1, 3600))
    correct_in_open_shift: Literal["alert", "close_shift"] = "alert"
    set_box_clock_from_register: bool = False


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """Health thresholds."""

    poll_interval_s: int = field(default=60, metadata=_range(5, 86400))
    fn_expiry_warn_days: int = field(default=30, metadata=_range(1, 400))
    ofd_backlog_warn_days: int = field(default=3, metadata=_range(1, 30))
    min_firmware: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration."""

    box_id: str = "box-local"
    state_dir: Path = Path("var")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    timezone: str = "local"
    register: RegisterConfig = RegisterConfig()
    shift: ShiftConfig = ShiftConfig()
    journal: JournalConfig = JournalConfig()
    http: HttpConfig = HttpConfig()
    web: WebConfig = WebConfig()
    mqtt: MqttConfig = MqttConfig()
    clock: ClockConfig = ClockConfig()
    health: HealthConfig = HealthConfig()
    mapping: NameMapping = field(default_factory=NameMapping)


# --- the walker ------------------------------------------------------------------------------


class _Reader:
    """Walks YAML nodes against the dataclasses, collecting issues."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.issues: list[ConfigIssue] = []

    def issue(self, path: str, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else None
        self.issues.append(ConfigIssue(path, line, message))

    def dataclass_(self, cls: type[Any], node: yaml.Node | None, path: str) -> Any:
        if node is None or (
            isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"
        ):
            node = yaml.MappingNode("tag:yaml.org,2002:map", [])
        if not isinstance(node, yaml.MappingNode):
            self.issue(path or "(top)", node, "must be a mapping of keys")
            return None
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        given: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in given:
                self.issue(_join(path, key), key_node, "given twice")
            given[key] = (key_node, value_node)
        kwargs: dict[str, Any] = {}
        for key, (key_node, value_node) in given.items():
            name = key[: -len("_file")] if key.endswith("_file") and key[:-5] in fields else key
            if name not in fields:
                hint = difflib.get_close_matches(key, list(fields), n=1)
                self.issue(
                    _join(path, key),
                    key_node,
                    "unknown key" + (f"; did you mean {hint[0]!r}?" if hint else ""),
                )
                continue
            if name != key:
                if _unwrap(hints[name]) is not Secret:
                    self.issue(_join(path, key), key_node, "unknown key")
                    continue
                if name in given:
                    self.issue(_join(path, key), key_node, f"give either {name} or {key}, not both")
                    continue
                kwargs[name] = self.secret_file(value_node, _join(path, key))
                continue
            kwargs[name] = self.value(hints[name], value_node, _join(path, key), fields[name])
        missing = [
            n
            for n, f in fields.items()
            if n not in kwargs
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        for name in missing:
            self.issue(_join(path, name), node, "is required")
        if missing or any(v is _BAD for v in kwargs.values()):
            return _BAD
        return cls(**kwargs)

    def value(
        self, hint: Any, node: yaml.Node, path: str, fld: dataclasses.Field[Any] | None = None
    ) -> Any:
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        is_null = isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"
        if origin in (types.UnionType, typing.Union):
            if is_null and type(None) in args:
                return None
            hint = next(a for a in args if a is not type(None))
            return self.value(hint, node, path, fld)
        if hint is NameMapping:
            return self.mapping(node, path)
        if dataclasses.is_dataclass(hint) and hint is not Listen:
            return self.dataclass_(hint, node, path)  # type: ignore[arg-type]
        if origin is tuple:
            if not isinstance(node, yaml.SequenceNode):
                self.issue(path, node, "must be a list")
                return _BAD
            return tuple(
                self.value(args[0], item, f"{path}[{i}]") for i, item in enumerate(node.value)
            )
        if not isinstance(node, yaml.ScalarNode) or is_null:
            self.issue(path, node, "must be a single value" if not is_null else "must not be empty")
            return _BAD
        raw = (
            yaml.safe_load(yaml.serialize(node))
            if node.tag != "tag:yaml.org,2002:str"
            else node.value
        )
        if origin is Literal:
            if str(raw) not in [str(a) for a in args]:
                self.issue(path, node, f"must be one of {', '.join(map(str, args))}; got {raw!r}")
                return _BAD
            return str(raw)
        if hint is bool:
            if not isinstance(raw, bool):
                self.issue(path, node, f"must be true or false; got {raw!r}")
                return _BAD
            return raw
        if hint in (int, float):
            if (
                isinstance(raw, bool)
                or not isinstance(raw, int | float)
                or (hint is int and not isinstance(raw, int))
            ):
                self.issue(
                    path,
                    node,
                    f"must be {'a whole number' if hint is int else 'a number'}; got {raw!r}",
                )
                return _BAD
            lo, hi = (fld.metadata.get("range") if fld is not None else None) or (None, None)
            if lo is not None and hi is not None and not lo <= raw <= hi:
                self.issue(path, node, f"must be between {lo:g} and {hi:g}; got {raw}")
                return _BAD
            return hint(raw)
        if hint is str:
            return str(raw)
        if hint is Path:
            return self.path(str(raw))
        if hint is Listen:
            return self.listen(str(raw), node, path)
        if hint is Secret:
            return Secret(str(raw))
        raise TypeError(f"config schema uses an unsupported type {hint!r}")  # pragma: no cover

    def path(self, raw: str) -> Path:
        p = Path(raw).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def listen(self, raw: str, node: yaml.Node, path: str) -> Any:
        m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\s]+):(\d+)", raw)
        if m is None:
            self.issue(path, node, f"must be host:port (or [ipv6]:port); got {raw!r}")
            return _BAD
        host = m.group(1) or m.group(3)
        port = int(m.group(2) or m.group(4))
        if not 0 <= port <= 65535:
            self.issue(path, node, f"port must be 0..65535; got {port}")
            return _BAD
        return Listen(host, port)

    def secret_file(self, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.issue(path, node, "must be a file path")
            return _BAD
        raw = str(node.value)
        if raw.startswith("credential:"):
            creds = os.environ.get("CREDENTIALS_DIRECTORY")
            if not creds:
                self.issue(
                    path, node, "credential: needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)"
                )
                return _BAD
            file = Path(creds) / raw[len("credential:") :]
        else:
            file = self.path(raw)
        try:
            return Secret(file.read_text(encoding="utf-8").strip())
        except OSError as err:
            self.issue(path, node, f"cannot read {file}: {err.strerror or err}")
            return _BAD

    def mapping(self, node: yaml.Node, path: str) -> Any:
        allowed = {"payment_types": _PAYMENT_NAMES, "vat": _VAT_NAMES, "units": _UNIT_NAMES}
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return NameMapping()
        if not isinstance(node, yaml.MappingNode):
            self.issue(path, node, "must be a mapping")
            return _BAD
        out: dict[str, dict[str, str]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key not in allowed:
                self.issue(
                    _join(path, key), key_node, f"unknown key; expected one of {', '.join(allowed)}"
                )
                continue
            if not isinstance(value_node, yaml.MappingNode):
                self.issue(_join(path, key), value_node, "must map CRM names to ATOL names")
                continue
            section: dict[str, str] = {}
            for name_node, target_node in value_node.value:
                target = str(target_node.value)
                if target not in allowed[key]:
                    self.issue(
                        f"{path}.{key}[{name_node.value!r}]",
                        target_node,
                        f"{target!r} is not one of {', '.join(allowed[key])}",
                    )
                section[str(name_node.value)] = target
            out[key] = section
        return NameMapping(**out)


class _Bad:
    def __repr__(self) -> str:
        return "<invalid>"


_BAD: Any = _Bad()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _unwrap(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return (
        args[0]
        if typing.get_origin(hint) in (types.UnionType, typing.Union) and len(args) == 1
        else hint
    )


def _line_of(root: yaml.Node | None, dotted: str) -> int | None:
    node = root
    for part in dotted.split("."):
        if not isinstance(node, yaml.MappingNode):
            return None
        found = next((v for k, v in node.value if k.value == part), None)
        if found is None:
            return node.start_mark.line + 1
        node = found
    return node.start_mark.line + 1 if node is not None else None


def _cross_checks(cfg: Config, root: yaml.Node | None) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []

    def bad(path: str, message: str) -> None:
        out.append(ConfigIssue(path, _line_of(root, path), message))

    if not _BOX_ID.match(cfg.box_id):
        bad("box_id", "must be 1..64 of letters, digits, '_', '.', '-' (it goes into MQTT topics)")
    reg = cfg.register
    if reg.baudrate not in _BAUDRATES:
        bad("register.baudrate", f"must be one of {', '.join(map(str, _BAUDRATES))}")
    if reg.driver == "checkbox":
        if not reg.url or reg.license_key is None:
            bad("register", "checkbox needs register.url and register.license_key")
        if reg.pin_code is None and (reg.login is None or reg.password is None):
            bad(
                "register",
                "checkbox needs register.pin_code, or register.login and register.password",
            )
    if reg.driver == "vchasno" and (not reg.url or reg.token is None):
        bad("register", "vchasno needs register.url and register.token")
    if reg.driver != "shtrih" and reg.port != "emulator":
        bad("register.port", f"is for serial registers; the {reg.driver} driver uses register.url")
    if cfg.mqtt.enabled and not cfg.mqtt.host:
        bad("mqtt.host", "is required when mqtt.enabled is true")
    if cfg.mqtt.command_signing.mode == "required" and cfg.mqtt.command_signing.public_keys is None:
        bad("mqtt.command_signing.public_keys", "is required when command signing is required")
    if cfg.shift.close_at is not None and not re.fullmatch(
        r"([01]\d|2[0-3]):[0-5]\d", cfg.shift.close_at
    ):
        bad("shift.close_at", "must be HH:MM")
    for i, tok in enumerate(cfg.http.tokens):
        if (tok.token is None) == (tok.token_sha256 is None):
            bad(f"http.tokens[{i}]", "give exactly one of token, token_file, token_sha256")
        if tok.token_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", tok.token_sha256):
            bad(f"http.tokens[{i}].token_sha256", "must be 64 lowercase hex digits")
    tls_files = [cfg.http.tls.cert_file, cfg.http.tls.key_file] if cfg.http.tls else []
    if cfg.mqtt.tls:
        tls_files += [
            p for p in (cfg.mqtt.tls.ca_file, cfg.mqtt.tls.cert_file, cfg.mqtt.tls.key_file) if p
        ]
    for p in tls_files:
        if not p.is_file():
            bad(
                "http.tls"
                if cfg.http.tls and p in (cfg.http.tls.cert_file, cfg.http.tls.key_file)
                else "mqtt.tls",
                f"file {p} does not exist",
            )
    return out


def parse_config(text: str, *, source: str = "<string>", base_dir: Path | None = None) -> Config:
    """Parse YAML text; raises ConfigError listing every issue."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(
            [
                ConfigIssue(
                    "(syntax)", line, f"{source}: not valid YAML: {getattr(err, 'problem', err)}"
                )
            ]
        ) from err
    reader = _Reader(base_dir or Path.cwd())
    cfg = reader.dataclass_(Config, root, "")
    if reader.issues or cfg is _BAD:
        raise ConfigError(sorted(reader.issues, key=lambda i: (i.line or 0, i.path)))
    issues = _cross_checks(cfg, root)
    if issues:
        raise ConfigError(issues)
    assert isinstance(cfg, Config)
    return cfg


def load_config(path: Path) -> Config:
    """Read and parse a config file; relative paths resolve against its folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            [ConfigIssue("(file)", None, f"cannot read {path}: {err.strerror or err}")]
        ) from err
    return parse_config(text, source=str(path), base_dir=path.resolve().parent)


def check_config(path: Path) -> list[ConfigIssue]:
    """Every issue in a config file (empty when valid)."""
    try:
        load_config(path)
    except ConfigError as err:
        return err.issues
    return []


def default_config() -> Config:
    """The embedded defaults (`fiscal-gateway run` without --config); paths relative to the CWD."""
    return parse_config("", base_dir=Path.cwd())


def redacted(cfg: Any) -> Any:
    """The config as plain data with every secret replaced by '***'."""
    if isinstance(cfg, Secret):
        return "***"
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: redacted(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, tuple | list):
        return [redacted(v) for v in cfg]
    if isinstance(cfg, dict | typing.Mapping):
        return {str(k): redacted(v) for k, v in cfg.items()}
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg
