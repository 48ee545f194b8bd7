"""The hub's YAML config: embedded defaults for one machine, every key checked by name.

Unknown keys are refused, as on the box; a secret is given inline or as `<key>_file`.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.hub.alerts.settings import AlertSettings, parse_alerts
from gateway.hub.connectors.moysklad.settings import MoyskladSettings, parse_moysklad
from gateway.hub.connectors.uspacy.settings import UspacySettings, parse_uspacy
from gateway.hub.errors import HubConfigError
from gateway.hub.fleet_page.settings import LANGUAGES as WEB_LANGUAGES
from gateway.hub.fleet_page.settings import password_hash_problem
from gateway.hub.model import Route

DEFAULT_DATABASE = "sqlite:///var/hub/hub.sqlite3"


class Secret:
    """A secret string shown as '***' in repr/str, so it cannot reach a log by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = ""  # "" = "<hub_id>-<host>-<pid>": every process has its own session
    username: str | None = None
    password: Secret | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    topic_prefix: str = "fiscal/v1"
    share_group: str = "hub"


@dataclass(frozen=True, slots=True)
class SigningSettings:
    private_key_file: Path | None = None  # absent: commands go unsigned
    kid: str | None = None
    valid_for_s: int = 3600  # at most the boxes' command_signing.max_age_s


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    resend_s: float = 10.0  # no ack yet: send again (with a fresh signature)
    reask_s: float = 60.0  # acked, no result yet: send again; the box answers from its journal
    window: int = 20  # orders published to one box before waiting for acks
    lease_s: float = 15.0


@dataclass(frozen=True, slots=True)
class WritebackSettings:
    timeout_s: float = 10.0
    retry_min_s: float = 2.0
    retry_max_s: float = 600.0
    alert_after_s: float = 3600.0  # still undelivered then: an alert, and still retried
    lease_s: float = 60.0


@dataclass(frozen=True, slots=True)
class AtolAccount:
    login: str
    password: Secret
    group_codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AtolOnlineSettings:
    accounts: tuple[AtolAccount, ...] = ()
    token_ttl_s: int = 86400
    report_days: int = 32
    max_token_attempts: int = 10  # per login and client address per minute


@dataclass(frozen=True, slots=True)
class HubConfig:
    hub_id: str = "office-1"
    database: str = DEFAULT_DATABASE
    log_level: str = "info"
    api_listen: tuple[str, int] = ("127.0.0.1", 8700)
    public_url: str = "http://127.0.0.1:8700"
    web_listen: tuple[str, int] = ("127.0.0.1", 8701)
    # Fleet page and alerts (gateway/hub/fleet_page, gateway/hub/alerts).
    web_password_hash: str | None = None
    web_language: str = "ru"
    alerts: AlertSettings = field(default_factory=AlertSettings)
    mqtt: MqttSettings = MqttSettings()
    signing: SigningSettings = SigningSettings()
    dispatch: DispatchSettings = DispatchSettings()
    writeback: WritebackSettings = WritebackSettings()
    routes: tuple[Route, ...] = ()
    atol_online: AtolOnlineSettings = AtolOnlineSettings()
    moysklad: MoyskladSettings = field(default_factory=MoyskladSettings)  # docs/moysklad.md
    uspacy: UspacySettings = field(default_factory=UspacySettings)  # docs/uspacy.md
    process_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"{self.hub_id}-{self.process_id}"


def default_config() -> HubConfig:
    return HubConfig()


def load_config(path: Path) -> HubConfig:
    """Parse and check `path`; HubConfigError lists every problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise HubConfigError([f"cannot read: {err}"]) from None
    return parse_config(raw if raw is not None else {}, base=path.parent)


def check_config(path: Path) -> list[str]:
    try:
        load_config(path)
    except HubConfigError as err:
        return err.issues
    return []


def parse_config(raw: object, *, base: Path = Path()) -> HubConfig:
    reader = _Reader(base)
    cfg = reader.config(raw)
    if reader.issues:
        raise HubConfigError(reader.issues)
    return cfg


class _Reader:
    """Reads one section at a time and collects every problem, naming its key path."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.issues: list[str] = []

    def problem(self, path: str, text: str) -> None:
        self.issues.append(f"{path}: {text}")

    def section(self, raw: object, path: str, known: set[str]) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.problem(path or "(top)", "must be a mapping")
            return {}
        for key in raw:
            if key not in known:
                self.problem(f"{path}.{key}" if path else str(key), "unknown key")
        return raw

    def text(self, obj: dict[str, Any], key: str, path: str, default: str | None) -> str | None:
        value = obj.get(key, default)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            self.problem(_join(path, key), "must be a non-empty string")
            return default
        return value

    def number(
        self, obj: dict[str, Any], key: str, path: str, default: float, lo: float, hi: float
    ) -> float:
        value = obj.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            self.problem(_join(path, key), f"must be a number from {lo:g} to {hi:g}")
            return default
        return float(value)

    def integer(
        self, obj: dict[str, Any], key: str, path: str, default: int, lo: int, hi: int
    ) -> int:
        value = obj.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.problem(_join(path, key), f"must be an integer from {lo} to {hi}")
            return default
        return value

    def secret(self, obj: dict[str, Any], key: str, path: str) -> Secret | None:
        inline, file = obj.get(key), obj.get(f"{key}_file")
        if inline is not None and file is not None:
            self.problem(_join(path, key), f"give {key} or {key}_file, not both")
            return None
        if file is not None:
            target = self.path(obj, f"{key}_file", path, must_exist=True)
            if target is None:
                return None
            return Secret(target.read_text(encoding="utf-8").strip())
        if inline is None:
            return None
        if not isinstance(inline, str) or not inline:
            self.problem(_join(path, key), "must be a non-empty string")
            return None
        return Secret(inline)

    def path(self, obj: dict[str, Any], key: str, path: str, *, must_exist: bool) -> Path | None:
        value = obj.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.problem(_join(path, key), "must be a file path")
            return None
        target = Path(value) if Path(value).is_absolute() else self.base / value
        if must_exist and not target.is_file():
            self.problem(_join(path, key), f"no such file: {target}")
            return None
        return target

    def listen(self, obj: dict[str, Any], path: str, default: tuple[str, int]) -> tuple[str, int]:
        value = obj.get("listen")
        if value is None:
            return default
        host, _, port = str(value).rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            self.problem(_join(path, "listen"), "must be HOST:PORT, e.g. 127.0.0.1:8700")
            return default
        return host, int(port)

    def config(self, raw: object) -> HubConfig:
        top = self.section(
            raw,
            "",
            {"hub_id", "database", "database_file", "log_level", "mqtt", "signing", "api", "web"}
            | {"dispatch", "writeback", "routes", "atol_online", "alerts"}
            | {"moysklad"}
            | {"uspacy"},
        )
        d = HubConfig()
        database = self.secret(top, "database", "")
        db_url = database.reveal() if database is not None else d.database
        if not db_url.startswith(("sqlite://", "postgresql://", "postgres://")):
            self.problem("database", "must start with sqlite:// or postgresql://")
        log_level = self.text(top, "log_level", "", d.log_level) or d.log_level
        if log_level not in ("debug", "info", "warning", "error"):
            self.problem("log_level", "must be debug, info, warning or error")
        api = self.section(top.get("api"), "api", {"listen", "public_url"})
        web = self.section(top.get("web"), "web", {"listen", "password_hash", "language"})
        web_hash = self.text(web, "password_hash", "web", None)
        if web_hash is not None and (why := password_hash_problem(web_hash)) is not None:
            self.problem("web.password_hash", why)
        web_language = self.text(web, "language", "web", d.web_language) or d.web_language
        if web_language not in WEB_LANGUAGES:
            self.problem("web.language", "must be ru, uk or en")
        api_listen = self.listen(api, "api", d.api_listen)
        public = self.text(api, "public_url", "api", None)
        return HubConfig(
            hub_id=self.text(top, "hub_id", "", d.hub_id) or d.hub_id,
            database=db_url,
            log_level=log_level,
            api_listen=api_listen,
            public_url=public or f"http://{api_listen[0]}:{api_listen[1]}",
            web_listen=self.listen(web, "web", d.web_listen),
            web_password_hash=web_hash,
            web_language=web_language,
            alerts=parse_alerts(top.get("alerts"), self.problem),
            mqtt=self.mqtt(top.get("mqtt")),
            signing=self.signing(top.get("signing")),
            dispatch=self.dispatch(top.get("dispatch")),
            writeback=self.writeback(top.get("writeback")),
            routes=self.routes(top.get("routes")),
            atol_online=self.atol(top.get("atol_online")),
            moysklad=parse_moysklad(top.get("moysklad"), self.problem, self.base),
            uspacy=parse_uspacy(top.get("uspacy"), self.problem, self.base),
        )

    def mqtt(self, raw: object) -> MqttSettings:
        d = MqttSettings()
        keys = {"host", "port", "client_id", "username", "password", "password_file", "tls"}
        obj = self.section(raw, "mqtt", keys | {"topic_prefix", "share_group"})
        tls = self.section(obj.get("tls"), "mqtt.tls", {"ca_file", "cert_file", "key_file"})
        group = self.text(obj, "share_group", "mqtt", d.share_group) or d.share_group
        if any(c in group for c in "/+#"):
            self.problem("mqtt.share_group", "must not contain / + #")
        return MqttSettings(
            host=self.text(obj, "host", "mqtt", d.host) or d.host,
            port=self.integer(obj, "port", "mqtt", d.port, 1, 65535),
            client_id=self.text(obj, "client_id", "mqtt", None) or "",
            username=self.text(obj, "username", "mqtt", None),
            password=self.secret(obj, "password", "mqtt"),
            ca_file=self.path(tls, "ca_file", "mqtt.tls", must_exist=True),
            cert_file=self.path(tls, "cert_file", "mqtt.tls", must_exist=True),
            key_file=self.path(tls, "key_file", "mqtt.tls", must_exist=True),
            topic_prefix=self.text(obj, "topic_prefix", "mqtt", d.topic_prefix) or d.topic_prefix,
            share_group=group,
        )

    def signing(self, raw: object) -> SigningSettings:
        d = SigningSettings()
        obj = self.section(raw, "signing", {"private_key_file", "kid", "valid_for_s"})
        return SigningSettings(
            private_key_file=self.path(obj, "private_key_file", "signing", must_exist=True),
            kid=self.text(obj, "kid", "signing", None),
            valid_for_s=self.integer(obj, "valid_for_s", "signing", d.valid_for_s, 60, 7 * 86400),
        )

    def dispatch(self, raw: object) -> DispatchSettings:
        d = DispatchSettings()
        obj = self.section(raw, "dispatch", {"resend_s", "reask_s", "window", "lease_s"})
        return DispatchSettings(
            resend_s=self.number(obj, "resend_s", "dispatch", d.resend_s, 0.5, 3600),
            reask_s=self.number(obj, "reask_s", "dispatch", d.reask_s, 1, 86400),
            window=self.integer(obj, "window", "dispatch", d.window, 1, 1000),
            lease_s=self.number(obj, "lease_s", "dispatch", d.lease_s, 1, 3600),
        )

    def writeback(self, raw: object) -> WritebackSettings:
        d = WritebackSettings()
        keys = {"timeout_s", "retry_min_s", "retry_max_s", "alert_after_s", "lease_s"}
        obj = self.section(raw, "writeback", keys)
        return WritebackSettings(
            timeout_s=self.number(obj, "timeout_s", "writeback", d.timeout_s, 1, 300),
            retry_min_s=self.number(obj, "retry_min_s", "writeback", d.retry_min_s, 0.1, 3600),
            retry_max_s=self.number(obj, "retry_max_s", "writeback", d.retry_max_s, 1, 86400),
            alert_after_s=self.number(
                obj, "alert_after_s", "writeback", d.alert_after_s, 1, 30 * 86400
            ),
            lease_s=self.number(obj, "lease_s", "writeback", d.lease_s, 5, 3600),
        )

    def routes(self, raw: object) -> tuple[Route, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.problem("routes", "must be a list of {connector, key, box}")
            return ()
        out: list[Route] = []
        for i, item in enumerate(raw):
            path = f"routes[{i}]"
            obj = self.section(item, path, {"connector", "key", "box"})
            values = [self.text(obj, k, path, None) for k in ("connector", "key", "box")]
            missing = [
                k for k, v in zip(("connector", "key", "box"), values, strict=True) if v is None
            ]
            for key in missing:
                self.problem(_join(path, key), "required")
            if not missing:
                connector, key, box = (str(v) for v in values)
                out.append(Route(connector, key, box))
        return tuple(out)

    def atol(self, raw: object) -> AtolOnlineSettings:
        d = AtolOnlineSettings()
        obj = self.section(
            raw, "atol_online", {"accounts", "token_ttl_s", "report_days", "max_token_attempts"}
        )
        accounts: list[AtolAccount] = []
        raw_accounts = obj.get("accounts") or []
        if not isinstance(raw_accounts, list):
            self.problem("atol_online.accounts", "must be a list")
            raw_accounts = []
        for i, item in enumerate(raw_accounts):
            path = f"atol_online.accounts[{i}]"
            acc = self.section(item, path, {"login", "password", "password_file", "group_codes"})
            login = self.text(acc, "login", path, None)
            password = self.secret(acc, "password", path)
            codes = acc.get("group_codes")
            if login is None:
                self.problem(_join(path, "login"), "required")
            if password is None:
                self.problem(_join(path, "password"), "required (or password_file)")
            if (
                not isinstance(codes, list)
                or not codes
                or not all(isinstance(c, str) for c in codes)
            ):
                self.problem(_join(path, "group_codes"), "must be a non-empty list of strings")
                codes = []
            if login is not None and password is not None:
                accounts.append(AtolAccount(login, password, tuple(codes)))
        logins = [a.login for a in accounts]
        if len(set(logins)) != len(logins):
            self.problem("atol_online.accounts", "a login is given twice")
        return AtolOnlineSettings(
            accounts=tuple(accounts),
            token_ttl_s=self.integer(
                obj, "token_ttl_s", "atol_online", d.token_ttl_s, 60, 7 * 86400
            ),
            report_days=self.integer(obj, "report_days", "atol_online", d.report_days, 1, 3650),
            max_token_attempts=self.integer(
                obj, "max_token_attempts", "atol_online", d.max_token_attempts, 1, 10000
            ),
        )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
