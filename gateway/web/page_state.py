"""What every handler of the status page shares, stored on the aiohttp application."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any, Final

import jinja2
from aiohttp import web

from gateway.config.schema import WebConfig
from gateway.journal import Journal
from gateway.web import pages
from gateway.web.controls import BoxControls
from gateway.web.diagnostics import RecentLogs
from gateway.web.login_limit import LoginLimiter
from gateway.web.password_store import PasswordStore
from gateway.web.sessions import Sessions

OnSubmitted = Callable[[str], None]
Clock = Callable[[], dt.datetime]


class PageState:
    """The page's parts: config, journal, status source, login state, templates."""

    def __init__(
        self,
        *,
        config: WebConfig,
        journal: Journal,
        status: pages.StatusSource,
        controls: BoxControls | None,
        on_submitted: OnSubmitted,
        config_dump: Mapping[str, Any],
        logs: RecentLogs | None,
        tz: dt.tzinfo | None,
        now: Clock,
        monotonic: Callable[[], float],
        limiter: LoginLimiter | None = None,
    ) -> None:
        self.config = config
        self.journal = journal
        self.status = status
        self.controls = controls
        self.on_submitted = on_submitted
        self.config_dump = config_dump
        self.logs = logs
        self.tz = tz
        self.now = now
        hash_text = config.password_hash.reveal() if config.password_hash is not None else None
        self.passwords = PasswordStore(journal, hash_text)
        self.sessions = Sessions(clock=monotonic)
        self.limiter = limiter if limiter is not None else LoginLimiter(clock=monotonic)
        self.actions_total: dict[str, int] = {}
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("gateway.web", "templates"),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["when"] = self.format_time
        self.env.filters["pretty"] = lambda v: json.dumps(v, ensure_ascii=False, default=str)

    def format_time(self, value: dt.datetime | dt.date | None) -> str:
        """Local time of the box, to the second; a naive time (register wall time) as it is."""
        if value is None:
            return "—"
        if isinstance(value, dt.datetime):
            local = value.astimezone(self.tz) if value.tzinfo is not None else value
            return local.strftime("%Y-%m-%d %H:%M:%S")
        return value.isoformat()

    def count_action(self, name: str) -> None:
        """One more run of `name` for /metrics."""
        self.actions_total[name] = self.actions_total.get(name, 0) + 1


PAGE: Final = web.AppKey("fiscal_gateway_web", PageState)
