"""The `moysklad:` config section (pure: read by the hub's config loader).

One account per МойСклад shop. `mode: webhook` (the default) takes orders from JSON API
webhooks; `mode: pos` makes the hub a master of the POS API's cloud-cheque queue.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

API_URL: Final = "https://api.moysklad.ru/api/remap/1.2"  # [MOYSKLAD] general
POS_URL: Final = "https://online.moysklad.ru/api/posap/1.0"  # [MOYSKLAD-POS] HOST
ENTITIES: Final = ("customerorder", "retaildemand")
TAXATIONS: Final = ("osn", "usnIncome", "usnIncomeOutcome", "esn", "patent")
PAYMENTS: Final = ("cash", "electronically", "prepaid", "credit", "other")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,128}")

Problem = Callable[[str, str], None]


class Token:
    """A secret shown as '***', so it cannot reach a log by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Token) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class MoyskladAccount:
    name: str  # the route key: `hub route add moysklad <name> <box>`
    token: Token
    mode: str = "webhook"  # webhook | pos
    entity: str = "customerorder"
    state: str | None = None  # the id of the state that means "fiscalise"
    webhook_secret: Token | None = None  # the last part of the webhook URL
    receipt_attr: str | None = None  # attribute id for the receipt link
    fiscal_attr: str | None = None  # attribute id for "ФН … ФД … ФП …" or the refusal
    receipt_url: str | None = None  # template: {fn} {fd} {fp} {t} {s}
    taxation: str | None = None  # when the order says none (or "as the group")
    payment: str = "electronically"  # customer orders carry no payment type
    pos_uid: str | None = None
    retail_store: str | None = None
    organization: str | None = None
    # [MOYSKLAD-POS] 100 requests per 5 s per token: one poll a second leaves room for the rest.
    poll_s: float = 1.0
    sweep_s: float = 60.0  # how often orders in the state are listed, for lost webhooks


@dataclass(frozen=True, slots=True)
class MoyskladSettings:
    api_url: str = API_URL
    pos_url: str = POS_URL
    accounts: tuple[MoyskladAccount, ...] = ()


def parse_moysklad(raw: object, problem: Problem, base: Path) -> MoyskladSettings:
    """The section, or the defaults; each problem is reported with its key path."""
    d = MoyskladSettings()
    if raw is None:
        return d
    obj = _section(raw, "moysklad", {"api_url", "pos_url", "accounts"}, problem)
    accounts: list[MoyskladAccount] = []
    raw_accounts = obj.get("accounts") or []
    if not isinstance(raw_accounts, list):
        problem("moysklad.accounts", "must be a list")
        raw_accounts = []
    for i, item in enumerate(raw_accounts):
        account = _account(item, f"moysklad.accounts[{i}]", problem, base)
        if account is not None:
            accounts.append(account)
    names = [a.name for a in accounts]
    if len(set(names)) != len(names):
        problem("moysklad.accounts", "a name is given twice")
    return MoyskladSettings(
        api_url=_url(obj, "api_url", d.api_url, problem),
        pos_url=_url(obj, "pos_url", d.pos_url, problem),
        accounts=tuple(accounts),
    )


_ACCOUNT_KEYS: Final = {
    "name",
    "token",
    "token_file",
    "mode",
    "entity",
    "state",
    "webhook_secret",
    "webhook_secret_file",
    "attributes",
    "receipt_url",
    "taxation",
    "payment",
    "pos_uid",
    "retail_store",
    "organization",
    "poll_s",
    "sweep_s",
}


def _account(raw: object, path: str, problem: Problem, base: Path) -> MoyskladAccount | None:
    obj = _section(raw, path, _ACCOUNT_KEYS, problem)
    name = obj.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problem(f"{path}.name", "required: 1 to 64 of A-Z a-z 0-9 _ . -")
        return None
    token = _secret(obj, "token", path, problem, base)
    if token is None:
        problem(f"{path}.token", "required (or token_file)")
        return None
    mode = _choice(obj, "mode", path, ("webhook", "pos"), "webhook", problem)
    attrs = _section(
        obj.get("attributes"), f"{path}.attributes", {"receipt_url", "fiscal"}, problem
    )
    taxation = obj.get("taxation")
    if taxation is not None and taxation not in TAXATIONS:
        problem(f"{path}.taxation", f"must be one of {', '.join(TAXATIONS)}")
        taxation = None
    secret = _secret(obj, "webhook_secret", path, problem, base)
    if secret is not None and not _SECRET.fullmatch(secret.reveal()):
        problem(f"{path}.webhook_secret", "must be 16 to 128 of A-Z a-z 0-9 _ -")
    account = MoyskladAccount(
        name=name,
        token=token,
        mode=mode,
        entity=_choice(obj, "entity", path, ENTITIES, "customerorder", problem),
        state=_text(obj, "state", path, problem),
        webhook_secret=secret,
        receipt_attr=_text(attrs, "receipt_url", f"{path}.attributes", problem),
        fiscal_attr=_text(attrs, "fiscal", f"{path}.attributes", problem),
        receipt_url=_text(obj, "receipt_url", path, problem),
        taxation=taxation,
        payment=_choice(obj, "payment", path, PAYMENTS, "electronically", problem),
        pos_uid=_text(obj, "pos_uid", path, problem),
        retail_store=_text(obj, "retail_store", path, problem),
        organization=_text(obj, "organization", path, problem),
        poll_s=_number(obj, "poll_s", path, 1.0, 0.05, 60, problem),
        sweep_s=_number(obj, "sweep_s", path, 60.0, 0.5, 3600, problem),
    )
    needed = (
        ("webhook_secret", "state", "fiscal_attr")
        if mode == "webhook"
        else ("pos_uid", "organization")
    )
    for key in needed:
        if getattr(account, key) is None:
            shown = "attributes.fiscal" if key == "fiscal_attr" else key
            problem(
                f"{path}.{shown}", f"required with mode {mode} (`hub moysklad install` prints it)"
            )
    return account


def _section(raw: object, path: str, known: set[str], problem: Problem) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problem(path, "must be a mapping")
        return {}
    for key in raw:
        if key not in known:
            problem(f"{path}.{key}", "unknown key")
    return raw


def _text(obj: dict[str, Any], key: str, path: str, problem: Problem) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problem(f"{path}.{key}", "must be a non-empty string")
        return None
    return value


def _choice(
    obj: dict[str, Any],
    key: str,
    path: str,
    allowed: tuple[str, ...],
    default: str,
    problem: Problem,
) -> str:
    value = obj.get(key, default)
    if value not in allowed:
        problem(f"{path}.{key}", f"must be one of {', '.join(allowed)}")
        return default
    return str(value)


def _url(obj: dict[str, Any], key: str, default: str, problem: Problem) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        problem(f"moysklad.{key}", "must be an http(s) URL")
        return default
    return value.rstrip("/")


def _number(
    obj: dict[str, Any], key: str, path: str, default: float, lo: float, hi: float, problem: Problem
) -> float:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        problem(f"{path}.{key}", f"must be a number from {lo:g} to {hi:g}")
        return default
    return float(value)


def _secret(obj: dict[str, Any], key: str, path: str, problem: Problem, base: Path) -> Token | None:
    inline, file = obj.get(key), obj.get(f"{key}_file")
    if inline is not None and file is not None:
        problem(f"{path}.{key}", f"give {key} or {key}_file, not both")
        return None
    if file is not None:
        target = Path(str(file))
        target = target if target.is_absolute() else base / target
        try:
            return Token(target.read_text(encoding="utf-8").strip())
        except OSError as err:
            problem(f"{path}.{key}_file", f"cannot read: {err}")
            return None
    if inline is None:
        return None
    if not isinstance(inline, str) or not inline:
        problem(f"{path}.{key}", "must be a non-empty string")
        return None
    return Token(inline)
