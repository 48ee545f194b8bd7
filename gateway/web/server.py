"""The status page's server: builds the application, listens on `web.listen`, stops."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from aiohttp import web

from gateway.config.schema import WebConfig
from gateway.journal import Journal
from gateway.runtime import serving
from gateway.web import pages
from gateway.web.app import build_app
from gateway.web.controls import BoxControls
from gateway.web.diagnostics import RecentLogs
from gateway.web.login_limit import LoginLimiter
from gateway.web.page_state import Clock, OnSubmitted, PageState

_LOGGER = logging.getLogger(__name__)

STOP_TIMEOUT_S: Final = 10.0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StatusPage:
    """The page's server: `start`/`stop` around its life (the page spawns no task of its own);
    or `build_app` for a server that runs it (the box builds it on the first visit)."""

    def __init__(
        self,
        *,
        config: WebConfig,
        journal: Journal,
        status: pages.StatusSource,
        controls: BoxControls | None = None,
        on_submitted: OnSubmitted = lambda _uuid: None,
        config_dump: Mapping[str, Any] | None = None,
        logs: RecentLogs | None = None,
        tz: dt.tzinfo | None = None,
        now: Clock = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        limiter: LoginLimiter | None = None,
    ) -> None:
        self.config = config
        self._state = PageState(
            config=config,
            journal=journal,
            status=status,
            controls=controls,
            on_submitted=on_submitted,
            config_dump=config_dump or {},
            logs=logs,
            tz=tz,
            now=now,
            monotonic=monotonic,
            limiter=limiter,
        )
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def build_app(self) -> web.Application:
        """The aiohttp application (tests may serve it themselves)."""
        return build_app(self._state)

    async def start(self) -> None:
        """Listen; returns once the socket is bound."""
        if self._runner is not None:
            raise RuntimeError("the status page is started already")
        listen = self.config.listen
        runner, port = await serving.listen(
            self.build_app(),
            listen,
            key="web.listen",
            code="web_listen",
            stop_timeout_s=STOP_TIMEOUT_S,
        )
        self._runner = runner
        self.port = port
        _LOGGER.info("Status page on http://%s:%d/", listen.host, self.port)

    async def stop(self) -> None:
        """Stop listening."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await serving.stop(runner, "The status page", STOP_TIMEOUT_S)
        self.port = None
