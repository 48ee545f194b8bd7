"""The `uspacy` config section: one entry per portal, every key checked by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from gateway.hub.connectors.uspacy.mapping import PAYMENT_TYPES, Rules

Problem = Callable[[str, str], None]
DEFAULT_TAXES: Final = {"20": "vat20", "7": "vat7", "0": "vat0", "none": "none"}
_VATS: Final = frozenset({"vat0", "vat5", "vat7", "vat10", "vat20", "vat110", "vat120", "none"})
_KEYS: Final = frozenset(
    {"key", "url", "client_id", "client_secret", "client_secret_file", "webhook_secret"}
    | {"webhook_secret_file", "trigger_stage", "done_stage", "receipt_field", "taxes"}
    | {"payment_field", "payments", "default_payment"}
)


@dataclass(frozen=True, slots=True)
class Portal:
    """One Uspacy portal: its credentials, its webhook secret and its rules."""

    key: str  # the route key and the orders' account
    url: str
    client_id: str
    client_secret: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    rules: Rules
    done_stage: int | None = None  # set: a fiscalised deal is moved there

    @property
    def marketplace(self) -> bool:
        """No External connector: tokens come from the portal's marketplace install."""
        return not self.client_id

    @property
    def domain(self) -> str:
        """The portal's host (and port), the key of its marketplace install."""
        return urlsplit(self.url).netloc


@dataclass(frozen=True, slots=True)
class MarketplaceApp:
    """The hub as a Uspacy marketplace app: portals that installed it send their tokens to
    `<public_url>/uspacy/app/<install_secret>/portals/install`."""

    client_id: str
    client_secret: str = field(repr=False)  # signs the install call's JWT
    install_secret: str = field(repr=False)  # the unguessable part of the callback URL


@dataclass(frozen=True, slots=True)
class UspacySettings:
    portals: tuple[Portal, ...] = ()
    app: MarketplaceApp | None = None
    hint_lease_s: float = 60.0  # a dead process's leased hints wait this long for another

    def portal(self, key: str) -> Portal | None:
        return next((p for p in self.portals if p.key == key), None)


def parse_uspacy(raw: object, problem: Problem, base: Path = Path()) -> UspacySettings:
    if raw is None:
        return UspacySettings()
    if not isinstance(raw, dict) or set(raw) - {"portals", "app", "hint_lease_s"}:
        problem("uspacy", "must be a mapping with `portals` (and `app`, `hint_lease_s`)")
        return UspacySettings()
    lease = raw.get("hint_lease_s", 60.0)
    if isinstance(lease, bool) or not isinstance(lease, int | float) or not 1 <= lease <= 3600:
        problem("uspacy.hint_lease_s", "must be seconds from 1 to 3600")
        lease = 60.0
    app = _app(raw.get("app"), problem, base)
    items = raw.get("portals") or []
    if not isinstance(items, list):
        problem("uspacy.portals", "must be a list")
        return UspacySettings()
    portals = [
        p
        for i, obj in enumerate(items)
        if (p := _portal(obj, f"uspacy.portals[{i}]", problem, base, app is not None))
    ]
    keys = [p.key for p in portals]
    if len(set(keys)) != len(keys):
        problem("uspacy.portals", "a key is given twice")
    return UspacySettings(tuple(portals), app, float(lease))


def _app(obj: object, problem: Problem, base: Path) -> MarketplaceApp | None:
    if obj is None:
        return None
    if not isinstance(obj, dict):
        problem("uspacy.app", "must be a mapping")
        return None
    allowed = {"client_id", "client_secret", "client_secret_file", "install_secret"}
    for key in set(obj) - allowed - {"install_secret_file"}:
        problem(f"uspacy.app.{key}", "unknown key")
    before = _Count(problem)
    client_id = _text(obj, "client_id", "uspacy.app", before.problem)
    secret = _secret(obj, "client_secret", "uspacy.app", before.problem, base)
    install = _secret(obj, "install_secret", "uspacy.app", before.problem, base)
    if install is not None and len(install) < 16:
        before.problem("uspacy.app.install_secret", "must be at least 16 characters")
    if before.n or client_id is None or secret is None or install is None:
        return None
    return MarketplaceApp(client_id, secret, install)


def _portal(
    obj: object, path: str, problem: Problem, base: Path, has_app: bool = False
) -> Portal | None:
    if not isinstance(obj, dict):
        problem(path, "must be a mapping")
        return None
    for key in set(obj) - _KEYS:
        problem(f"{path}.{key}", "unknown key")
    before = _Count(problem)
    say = before.problem
    text = {k: _text(obj, k, path, say) for k in ("key", "url", "receipt_field")}
    # No External connector: the portal's tokens come from its marketplace install.
    marketplace = has_app and not {"client_id", "client_secret", "client_secret_file"} & set(obj)
    text["client_id"] = "" if marketplace else _text(obj, "client_id", path, say)
    secret = "" if marketplace else _secret(obj, "client_secret", path, say, base)
    hook = _secret(obj, "webhook_secret", path, say, base)
    trigger = _stage(obj.get("trigger_stage"), f"{path}.trigger_stage", say, required=False)
    done = _stage(obj.get("done_stage"), f"{path}.done_stage", say, required=False)
    if hook is not None and len(hook) < 16:
        say(f"{path}.webhook_secret", "must be at least 16 characters")
    url = text["url"] or ""
    if not url.startswith(("https://", "http://")):
        say(f"{path}.url", "must be the portal's https:// address")
    taxes = _names(obj.get("taxes", DEFAULT_TAXES), f"{path}.taxes", _VATS, say)
    payments = _names(obj.get("payments", {}), f"{path}.payments", PAYMENT_TYPES, say)
    default = obj.get("default_payment", "electronically")
    if default not in PAYMENT_TYPES:
        say(f"{path}.default_payment", f"must be one of {', '.join(sorted(PAYMENT_TYPES))}")
    field_code = obj.get("payment_field")
    if field_code is not None and (not isinstance(field_code, str) or not field_code):
        say(f"{path}.payment_field", "must be a field code")
    if before.n or secret is None or hook is None:
        return None
    rules = Rules(
        trigger_stage=trigger,
        receipt_field=str(text["receipt_field"]),
        taxes={str(k).removesuffix("%").strip(): v for k, v in taxes.items()},
        default_payment=str(default),
        payment_field=field_code,
        payments=payments,
    )
    return Portal(
        key=str(text["key"]),
        url=url.rstrip("/"),
        client_id=str(text["client_id"]),
        client_secret=secret,
        webhook_secret=hook,
        rules=rules,
        done_stage=done,
    )


class _Count:
    def __init__(self, problem: Problem) -> None:
        self._problem = problem
        self.n = 0

    def problem(self, path: str, text: str) -> None:
        self.n += 1
        self._problem(path, text)


def _text(obj: dict[str, Any], key: str, path: str, say: Problem) -> str | None:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        say(f"{path}.{key}", "required: a non-empty string")
        return None
    return value.strip()


def _secret(obj: dict[str, Any], key: str, path: str, say: Problem, base: Path) -> str | None:
    inline, file = obj.get(key), obj.get(f"{key}_file")
    if (inline is None) == (file is None):
        say(f"{path}.{key}", f"give {key} or {key}_file (one of them)")
        return None
    if file is not None:
        target = Path(str(file)) if Path(str(file)).is_absolute() else base / str(file)
        try:
            return target.read_text(encoding="utf-8").strip()
        except OSError as err:
            say(f"{path}.{key}_file", f"cannot read: {err.strerror}")
            return None
    if not isinstance(inline, str) or not inline:
        say(f"{path}.{key}", "must be a non-empty string")
        return None
    return inline


def _stage(value: object, path: str, say: Problem, *, required: bool) -> int | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        say(path, "must be a stage id (a positive integer; `hub uspacy install` prints it)")
        return None
    return value


def _names(raw: object, path: str, allowed: frozenset[str], say: Problem) -> Mapping[str, str]:
    if not isinstance(raw, dict):
        say(path, "must be a mapping")
        return {}
    out: dict[str, str] = {}
    for key, value in raw.items():
        if value not in allowed:
            say(f"{path}.{key}", f"must be one of {', '.join(sorted(allowed))}")
        else:
            out[str(key)] = str(value)
    return out
