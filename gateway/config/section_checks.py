"""Pure: checks of combinations inside one config section, run after its fields are read.

Each check gets the section as read and a `Scope` to report issues on its keys; it returns
the section, possibly completed (a default that depends on another field).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from gateway.config.choices import MqttProtocol, RegisterDriver, SigningMode
from gateway.config.rules import MIN_TOKEN_CHARS, SHA256_HEX
from gateway.config.schema import (
    DEFAULT_STATE_DIR,
    CommandSigning,
    Config,
    HttpConfig,
    MqttConfig,
    MqttTls,
    RegisterConfig,
    TokenConfig,
    UsbConfig,
    WebConfig,
)
from gateway.config.values import is_loopback

_D = TypeVar("_D")
Validator = Callable[[Any, "Scope"], Any]
VALIDATORS: dict[type, Validator] = {}


class Scope(Protocol):
    """A section being checked: issues land on its keys, with their lines."""

    def given(self, name: str) -> bool:
        """Whether the file sets this field to something."""
        ...

    def issue(
        self, name: str, message: str, *, at: str | None = None, needs: tuple[str, ...] = ()
    ) -> None:
        """An issue on field `name`; its line is that key's, else `at`'s, else the section's.

        `needs` names the fields the conclusion rests on: when one of them was refused, the
        issue is dropped, since it would rest on a stand-in default.
        """
        ...


def _validator(cls: type[_D]) -> Callable[[Callable[[_D, Scope], _D]], Callable[[_D, Scope], _D]]:
    """Register the combination check of one section; it returns the (possibly completed) value."""

    def register(fn: Callable[[_D, Scope], _D]) -> Callable[[_D, Scope], _D]:
        VALIDATORS[cls] = fn
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
_SERIAL_ONLY: Final = ("port", "baudrate", "device_password", "usb", "emulator", "marking_order")


@_validator(RegisterConfig)
def _check_register(reg: RegisterConfig, s: Scope) -> RegisterConfig:
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
def _check_usb(usb: UsbConfig, s: Scope) -> UsbConfig:
    """A product id means nothing without its vendor id."""
    if usb.product_id is not None and usb.vendor_id is None:
        s.issue("vendor_id", "is required with product_id", at="product_id")
    return usb


@_validator(TokenConfig)
def _check_token(entry: TokenConfig, s: Scope) -> TokenConfig:
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
        if not SHA256_HEX.fullmatch(entry.token_sha256):
            s.issue("token_sha256", "must be 64 hex digits (the SHA-256 of the token)")
        else:
            return dataclasses.replace(entry, token_sha256=entry.token_sha256.lower())
    return entry


@_validator(HttpConfig)
def _check_http(http: HttpConfig, s: Scope) -> HttpConfig:
    """API client names are unique (they name the caller in logs and the journal)."""
    seen: set[str] = set()
    for i, entry in enumerate(http.tokens):
        if entry.name in seen:
            s.issue(f"tokens[{i}].name", f"{entry.name!r} is already used by another client")
        seen.add(entry.name)
    return http


@_validator(WebConfig)
def _check_web(web: WebConfig, s: Scope) -> WebConfig:
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
def _check_mqtt_tls(tls: MqttTls, s: Scope) -> MqttTls:
    """A client certificate comes with its key."""
    if (tls.cert_file is None) != (tls.key_file is None):
        missing = "key_file" if tls.key_file is None else "cert_file"
        s.issue(missing, "give cert_file and key_file together (the box's client certificate)")
    return tls


@_validator(CommandSigning)
def _check_signing(signing: CommandSigning, s: Scope) -> CommandSigning:
    """Required signatures need at least one office key."""
    if signing.mode is SigningMode.REQUIRED and not signing.public_keys:
        s.issue("public_keys", "is required when mode is required", at="mode")
    return signing


@_validator(MqttConfig)
def _check_mqtt(mqtt: MqttConfig, s: Scope) -> MqttConfig:
    """A broker host when enabled; the port follows TLS; no password in clear over a network."""
    if not s.given("port") and mqtt.tls is not None:
        mqtt = dataclasses.replace(mqtt, port=8883)
    if mqtt.enabled and mqtt.host is None:
        s.issue("host", "is required when mqtt.enabled is true", at="enabled")
    if (
        mqtt.password is not None
        and mqtt.tls is None
        and mqtt.host is not None
        and not is_loopback(mqtt.host)
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
def _check_config(cfg: Config, s: Scope) -> Config:
    """Cross-section defaults and conflicts."""
    changes: dict[str, Any] = {}
    if not cfg.mqtt.client_id:
        changes["mqtt"] = dataclasses.replace(cfg.mqtt, client_id=cfg.box_id)
    if not s.given("state_dir"):
        changes["state_dir"] = Path.cwd() / DEFAULT_STATE_DIR
    listeners = [("http.listen", cfg.http.listen)]
    if cfg.web.enabled:
        listeners.append(("web.listen", cfg.web.listen))
    if cfg.kkmserver is not None:
        listeners.append(("kkmserver.listen", cfg.kkmserver.listen))
    for i, (name, listen) in enumerate(listeners):
        for other, taken in listeners[:i]:
            if listen.clashes(taken):
                s.issue(
                    name,
                    f"{listen} takes the same port as {other} ({taken}); give each its own port",
                    needs=(other.split(".")[0],),
                )
    return dataclasses.replace(cfg, **changes) if changes else cfg
