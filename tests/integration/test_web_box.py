"""A real box for the status page tests: emulator on a pty, Shtrih driver, supervisor, worker,
journal on disk, and the page served on a real socket. No tests here; the web tests use it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from gateway.config.choices import WebLanguage
from gateway.config.schema import WebConfig
from gateway.config.values import Listen, Secret
from gateway.domain import fiscal
from gateway.domain.errors import GatewayError
from gateway.engine.supervisor import LinkState, RegisterSupervisor
from gateway.engine.worker import ShiftPolicy
from gateway.journal import JobRecord
from gateway.registers.shtrih.driver import ShtrihRegister
from gateway.web.controls import Outcome
from gateway.web.diagnostics import RecentLogs
from gateway.web.login_limit import LoginLimiter
from gateway.web.passwords import hash_password
from gateway.web.server import StatusPage
from tests.support.box import ShtrihBox, running_box

WAIT_S = 30.0
PASSWORD = "korova-42-moloko"
# ln=14 is the lowest cost the config accepts; it keeps the tests quick on a loaded machine.
PASSWORD_HASH = hash_password(PASSWORD, ln=14)


class ManualClock:
    """A monotonic clock the test moves by hand (for the login rate limit window)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Controls:
    """BoxControls over the real supervisor and register; counts its calls."""

    supervisor: RegisterSupervisor
    register: ShtrihRegister
    calls: list[str] = field(default_factory=list)

    async def sync_clock(self) -> Outcome:
        self.calls.append("sync_clock")
        try:
            shift = await self.register.shift_info()
            if shift.state is not fiscal.ShiftState.CLOSED:
                return Outcome(False, "the shift is open; close it first")
            now = dt.datetime.now().replace(microsecond=0)
            await self.register.set_clock(now)
            after = await self.register.read_clock()
        except GatewayError as err:
            return Outcome(False, str(err))
        drift = (after - now).total_seconds()
        return Outcome(True, f"register clock set to {after:%Y-%m-%d %H:%M:%S} ({drift:+.0f} s)")

    async def _relink(self, kick: Callable[[], None]) -> bool:
        """Run `kick` on the supervisor, wait for the link to drop and come back."""
        dropped = asyncio.Event()
        unsubscribe = self.supervisor.add_listener(
            lambda state: dropped.set() if state is not LinkState.CONNECTED else None
        )
        try:
            kick()
            async with asyncio.timeout(WAIT_S):
                await dropped.wait()
        finally:
            unsubscribe()
        return await self.supervisor.wait_connected(WAIT_S)

    async def reconnect_register(self) -> Outcome:
        self.calls.append("reconnect_register")
        if not await self._relink(self.supervisor.reconnect_now):
            return Outcome(False, f"the register did not come back: {self.supervisor.last_error}")
        device = self.supervisor.device
        assert device is not None
        return Outcome(True, f"reconnected to {device.model} serial {device.serial}")

    async def accept_register(self) -> Outcome:
        self.calls.append("accept_register")
        if not await self._relink(self.supervisor.accept_register):
            return Outcome(False, f"the register did not come back: {self.supervisor.last_error}")
        device = self.supervisor.device
        assert device is not None
        return Outcome(True, f"{device.model} serial {device.serial} is now this box's register")


@dataclass(kw_only=True)
class WebBox(ShtrihBox):
    controls: Controls
    logs: RecentLogs
    clock: ManualClock
    page: StatusPage = field(init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.page.port}"

    async def web_jobs(self) -> list[JobRecord]:
        return [j for j in await self.journal.list_jobs(limit=500) if j.source == "web"]

    async def status(self) -> dict[str, object]:
        """What the app's status callable gives: /health's keys plus register health read live."""
        sup = self.supervisor
        body: dict[str, Any] = {"version": "test", "box_id": "box-test"}
        device = sup.device
        body["register"] = {
            "state": sup.state.value,
            "error": sup.last_error,
            "model": device.model if device else None,
            "serial": device.serial if device else None,
            "firmware": f"{device.firmware_version} build {device.firmware_build}"
            if device
            else None,
        }
        if sup.state is LinkState.CONNECTED:
            try:
                status = await self.register.status()
                fn = await self.register.fn_status()
                expiry = await self.register.fn_expiry()
                ofd = await self.register.ofd_status()
                shift = await self.register.shift_info()
            except GatewayError:
                pass
            else:
                body["health"] = {
                    "mode": f"{status.mode}.{status.submode}",
                    "paper": status.paper_present,
                    "cover": "open" if status.cover_open else "closed",
                    "shift": {"state": shift.state.value, "number": shift.number},
                    "fn": {
                        "number": fn.number,
                        "expiry": expiry.isoformat() if expiry else None,
                        "warnings": sorted(w.value for w in fn.warnings),
                    },
                    "ofd": {
                        "unsent": ofd.unsent_count,
                        "oldest": ofd.first_unsent_datetime.isoformat()
                        if ofd.first_unsent_datetime
                        else None,
                    },
                }
        blocked = await self.journal.is_blocked()
        body["queue"] = {
            "depth": await self.journal.queue_depth(),
            "blocked": blocked.uuid if blocked else None,
            "paused": self.worker.paused_reason,
        }
        body["journal"] = {"state": "ok"}
        body["mqtt"] = {"state": "off"}
        body["status"] = "ok" if sup.state is LinkState.CONNECTED and not blocked else "degraded"
        return body


@contextlib.asynccontextmanager
async def web_box(
    tmp_path: Path,
    *,
    password_hash: str | None = PASSWORD_HASH,
    public_overview: bool = False,
    language: WebLanguage = WebLanguage.EN,
    start_worker: bool = True,
    policy: ShiftPolicy | None = None,
    config_dump: dict[str, Any] | None = None,
    listen_host: str = "127.0.0.1",
    login_limits: tuple[int, int] | None = None,
) -> AsyncIterator[WebBox]:
    """A box with its status page; `login_limits` (per address, in total) replace the
    documented ones where a test needs the shared limit reached from one LAN address."""
    logs = RecentLogs()
    logging.getLogger().addHandler(logs)
    config = WebConfig(
        listen=Listen(listen_host, 0),
        password_hash=Secret(password_hash) if password_hash else None,
        language=language,
        public_overview=public_overview,
    )

    def with_page(box: WebBox) -> dict[str, Coroutine[Any, Any, None]]:
        limiter = None
        if login_limits is not None:
            per_peer, total = login_limits
            limiter = LoginLimiter(per_peer=per_peer, total=total, clock=box.clock)
        box.page = StatusPage(
            config=config,
            journal=box.journal,
            status=box.status,
            controls=box.controls,
            on_submitted=box.worker.wake,
            config_dump=config_dump or {"web": {"password_hash": "***"}},
            logs=logs,
            monotonic=box.clock,
            limiter=limiter,
        )
        return {}

    def make_box(**parts: Any) -> WebBox:
        controls = Controls(parts["supervisor"], parts["register"])
        return WebBox(controls=controls, logs=logs, clock=ManualClock(), **parts)

    try:
        async with running_box(
            tmp_path,
            box_type=make_box,
            policy=policy or ShiftPolicy(auto_open=False),
            supervisor_journal=False,
            start_worker=start_worker,
            also=with_page,
        ) as box:
            await box.page.start()
            try:
                yield box
            finally:
                await box.page.stop()
    finally:
        logging.getLogger().removeHandler(logs)


_HIDDEN = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a page (the last value of each name)."""
    return {m["name"]: m["value"] for m in _HIDDEN.finditer(html)}


async def login(
    session: aiohttp.ClientSession, url: str, password: str = PASSWORD
) -> aiohttp.ClientResponse:
    """Log in as a browser does: GET the form (token cookie), POST it."""
    async with session.get(f"{url}/login") as resp:
        fields = hidden_fields(await resp.text())
    return await session.post(
        f"{url}/login",
        data={"login_token": fields["login_token"], "next": "/", "password": password},
        allow_redirects=False,
    )


def new_client() -> aiohttp.ClientSession:
    # The cookie jar must accept cookies from an IP address host (127.0.0.1).
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
