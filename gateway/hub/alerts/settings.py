"""The `alerts:` section of the hub config: thresholds, SMTP and recipients per box group."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Problem = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    sender: str = "fiscal-hub@localhost"
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class RecipientGroup:
    """Boxes matched by id patterns (`shop-*`), and who hears about them."""

    name: str
    boxes: tuple[str, ...]
    email: tuple[str, ...] = ()
    webhook: tuple[str, ...] = ()

    def covers(self, box_id: str) -> bool:
        return any(fnmatch.fnmatchcase(box_id, pattern) for pattern in self.boxes)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    evaluate_every_s: float = 15.0
    offline_after_s: float = 300.0  # a box offline this long is an incident
    # An online box whose telemetry stopped this long ago: ten of the box's default 60 s periods.
    silent_after_s: float = 600.0
    fn_days: int = 30  # ФН expiring within this many days
    ofd_days: float = 3.0  # oldest document unsent to the OFD for this long
    drift_s: float = 120.0  # register clock this far from the box's
    mismatch_hold_s: float = 86400.0  # a shift mismatch stays an incident this long
    retry_min_s: float = 5.0
    retry_max_s: float = 1800.0
    lease_s: float = 60.0
    webhook_timeout_s: float = 10.0
    keep_days: int = 90  # cleared incidents and their sent messages are kept this long
    smtp: SmtpSettings = SmtpSettings()
    groups: tuple[RecipientGroup, ...] = ()
    page_url: str | None = None  # linked from every message

    def recipients(self, box_id: str) -> list[tuple[str, str]]:
        """(channel, target) of every group covering the box, each once."""
        out: list[tuple[str, str]] = []
        for group in self.groups:
            if group.covers(box_id):
                out += [("email", a) for a in group.email] + [("webhook", u) for u in group.webhook]
        return list(dict.fromkeys(out))


def parse_alerts(raw: object, problem: Problem) -> AlertSettings:
    """Read `alerts:`; every problem is reported through `problem(key path, text)`."""
    d = AlertSettings()
    if raw is None:
        return d
    if not isinstance(raw, dict):
        problem("alerts", "must be a mapping")
        return d
    known = {f for f in AlertSettings.__dataclass_fields__}
    for key in raw:
        if key not in known:
            problem(f"alerts.{key}", "unknown key")

    def number(key: str, lo: float, hi: float) -> Any:
        value = raw.get(key, getattr(d, key))
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            problem(f"alerts.{key}", f"must be a number from {lo:g} to {hi:g}")
            return getattr(d, key)
        return value

    page_url = raw.get("page_url")
    if page_url is not None and not isinstance(page_url, str):
        problem("alerts.page_url", "must be a URL")
        page_url = None
    return AlertSettings(
        evaluate_every_s=float(number("evaluate_every_s", 1, 3600)),
        offline_after_s=float(number("offline_after_s", 1, 7 * 86400)),
        silent_after_s=float(number("silent_after_s", 10, 7 * 86400)),
        fn_days=int(number("fn_days", 1, 400)),
        ofd_days=float(number("ofd_days", 0.1, 30)),
        drift_s=float(number("drift_s", 1, 86400)),
        mismatch_hold_s=float(number("mismatch_hold_s", 60, 30 * 86400)),
        retry_min_s=float(number("retry_min_s", 0.1, 3600)),
        retry_max_s=float(number("retry_max_s", 1, 86400)),
        lease_s=float(number("lease_s", 5, 3600)),
        webhook_timeout_s=float(number("webhook_timeout_s", 1, 300)),
        keep_days=int(number("keep_days", 1, 3650)),
        smtp=_smtp(raw.get("smtp"), problem),
        groups=_groups(raw.get("groups"), problem),
        page_url=page_url,
    )


def _smtp(raw: object, problem: Problem) -> SmtpSettings:
    d = SmtpSettings()
    if raw is None:
        return d
    if not isinstance(raw, dict):
        problem("alerts.smtp", "must be a mapping")
        return d
    known = {"host", "port", "starttls", "username", "password", "sender", "timeout_s"}
    for key in raw:
        if key not in known:
            problem(f"alerts.smtp.{key}", "unknown key")
    port = raw.get("port", d.port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        problem("alerts.smtp.port", "must be a port number")
        port = d.port
    texts = {k: raw.get(k) for k in ("host", "username", "password", "sender")}
    for key, value in texts.items():
        if value is not None and (not isinstance(value, str) or not value):
            problem(f"alerts.smtp.{key}", "must be a non-empty string")
            texts[key] = None
    timeout = raw.get("timeout_s", d.timeout_s)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 1 <= timeout <= 300:
        problem("alerts.smtp.timeout_s", "must be a number from 1 to 300")
        timeout = d.timeout_s
    return SmtpSettings(
        host=texts["host"] or d.host,
        port=port,
        starttls=bool(raw.get("starttls", d.starttls)),
        username=texts["username"],
        password=texts["password"],
        sender=texts["sender"] or d.sender,
        timeout_s=float(timeout),
    )


def _strings(raw: object, path: str, problem: Problem) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        problem(path, "must be a list of strings")
        return ()
    return tuple(raw)


def _groups(raw: object, problem: Problem) -> tuple[RecipientGroup, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problem("alerts.groups", "must be a list of {name, boxes, email, webhook}")
        return ()
    out: list[RecipientGroup] = []
    for i, item in enumerate(raw):
        path = f"alerts.groups[{i}]"
        if not isinstance(item, dict):
            problem(path, "must be a mapping")
            continue
        for key in item:
            if key not in {"name", "boxes", "email", "webhook"}:
                problem(f"{path}.{key}", "unknown key")
        boxes = _strings(item.get("boxes"), f"{path}.boxes", problem)
        if not boxes:
            problem(f"{path}.boxes", "required: box ids or patterns such as shop-*")
        webhooks = _strings(item.get("webhook"), f"{path}.webhook", problem)
        for url in webhooks:
            if not url.startswith(("http://", "https://")):
                problem(f"{path}.webhook", f"{url!r} is not an http(s) URL")
        out.append(
            RecipientGroup(
                name=str(item.get("name") or f"group-{i}"),
                boxes=boxes,
                email=_strings(item.get("email"), f"{path}.email", problem),
                webhook=webhooks,
            )
        )
    return tuple(out)
