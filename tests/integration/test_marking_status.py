"""The marking monitor and the status page's marking panel, against the Shtrih driver and the
emulator on a real pty (its fake ОИСМ answers as each test sets it)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.app.telemetry import telemetry
from gateway.atol import marking_results
from gateway.config.choices import WebLanguage
from gateway.config.schema import HealthConfig, WebConfig
from gateway.config.values import Listen, Secret
from gateway.domain import marking
from gateway.engine import worker as worker_mod
from gateway.engine.worker import ShiftPolicy
from gateway.journal import JobState
from gateway.monitors.marking import MarkingMonitor
from gateway.registers.shtrih import driver as driver_mod
from gateway.web.action_routes import sample_code
from gateway.web.diagnostics import RecentLogs
from gateway.web.server import StatusPage
from tests.integration.test_checkbox import cloud_box
from tests.integration.test_web_box import (
    PASSWORD_HASH,
    Controls,
    ManualClock,
    WebBox,
    hidden_fields,
    login,
    new_client,
)
from tests.integration.test_worker_marking import b64, code, code_table, marked, receipt, set_ism
from tests.support import box as support_box
from tests.support.box import ShtrihBox
from tests.support.broker import free_port
from tests.support.in_process import running_gateway

WAIT_S = 30.0


@pytest.fixture(autouse=True)
def fast_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_mod, "PRINT_TIMEOUT_S", 1.5)
    monkeypatch.setattr(driver_mod, "QUERY_TIMEOUT_S", 1.5)
    monkeypatch.setattr(worker_mod, "PAUSE_POLL_INTERVAL_S", 0.1)
    monkeypatch.setattr(worker_mod, "CONNECT_WAIT_S", 0.2)


class Clock:
    """The monitor's clock (UTC), moved by hand to age the unsent notifications."""

    def __init__(self) -> None:
        self.shift = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.shift


@dataclass(kw_only=True)
class MarkingBox(ShtrihBox):
    monitor: MarkingMonitor = field(init=False)
    clock: Clock = field(default_factory=Clock)


def _monitor(box: ShtrihBox, now: Clock, *, warn_days: int = 3) -> MarkingMonitor:
    """The monitor as the daemon wires it: the worker's lock, the worker's check hook."""
    monitor = MarkingMonitor(
        box.journal,
        box.register,
        box.supervisor.connected_event,
        box.worker.register_lock,
        config=HealthConfig(poll_interval_s=5, ofd_backlog_warn_days=warn_days),
        now=now,
    )
    box.worker.on_code_check = monitor.note_check
    return monitor


@contextlib.asynccontextmanager
async def marking_box(tmp_path: Path, *, warn_days: int = 3) -> AsyncIterator[MarkingBox]:
    async with support_box.running_box(
        tmp_path, box_type=MarkingBox, policy=ShiftPolicy(), supervisor_journal=False
    ) as box:
        box.monitor = _monitor(box, box.clock, warn_days=warn_days)
        yield box


async def test_the_monitor_shows_notifications_and_whether_the_ism_answers(
    tmp_path: Path,
) -> None:
    async with marking_box(tmp_path, warn_days=1) as box:
        monitor = box.monitor
        snap = await monitor.poll_once()
        assert snap is not None
        assert snap.enabled is True
        shown = snap.as_dict()
        assert shown["notifications"]["unsent"] == 0
        assert shown["check"] == {"state": "idle", "waiting_decision": False}
        assert shown["ism"]["reachable"] is None  # no code checked yet
        assert snap.conditions == ()

        # The ОИСМ goes silent: the sale is made autonomously and owes a notification.
        await set_ism(box, "autonomous")
        await box.submit("s1", receipt("sell", marked("Табак", code("Auto0001"))))
        await box.wait_state("s1", JobState.DONE)
        after = monitor.snapshot()
        assert after.ism_reachable is False
        assert after.unanswered_since is not None
        silent_since = after.unanswered_since
        snap = await monitor.poll_once()
        assert snap is not None
        assert snap.reading is not None
        assert snap.reading.unsent == 1
        assert snap.reading.oldest_unsent is not None
        assert snap.conditions == ()  # not old yet

        # Two days on, nothing sent: an event, raised once however often the monitor polls.
        box.clock.shift = dt.timedelta(days=2)
        snap = await monitor.poll_once()
        assert snap is not None
        assert [c.kind for c in snap.conditions] == ["marking_notifications_old"]
        await monitor.poll_once()
        assert (await box.kinds()).count("marking_notifications_old") == 1
        (event,) = [
            e for e in await box.event_payloads() if e["event"] == "marking_notifications_old"
        ]
        assert "1 marking notifications not sent" in str(event)

        # The ОИСМ answers again: the page says so, the silence is over.
        box.clock.shift = dt.timedelta()
        await set_ism(box, "positive")
        await box.submit("s2", receipt("sell", marked("Табак", code("Live0001"))))
        await box.wait_state("s2", JobState.DONE)
        back = monitor.snapshot()
        assert back.ism_reachable is True
        assert back.unanswered_since is None
        assert back.last_answered_at is not None
        assert back.last_answered_at > silent_since


async def test_an_autonomous_fn_is_shown_and_still_polled(tmp_path: Path) -> None:
    async with marking_box(tmp_path, warn_days=1) as box:
        monitor = box.monitor
        await set_ism(box, "autonomous")  # the ФН works autonomously: FF68h answers ФН 02h
        await box.submit("s1", receipt("sell", marked("Табак", code("Auto0002"))))
        await box.wait_state("s1", JobState.DONE)
        running = asyncio.create_task(monitor.run())
        try:
            await support_box.wait_until(lambda: monitor.polls >= 1)
            monitor.poll_now()
            await support_box.wait_until(lambda: monitor.polls >= 2)
            assert not running.done()  # autonomous is not "marking off": polling goes on
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        snap = monitor.snapshot()
        assert snap.enabled is True
        assert snap.autonomous is True
        shown = snap.as_dict()
        assert shown["ism"]["mode"] == "autonomous"
        assert shown["ism"]["autonomous"] is True
        assert shown["notifications"]["unsent"] == 1  # FF70h's count
        assert shown["notifications"]["oldest_seen_by_poll"] is True
        first_seen = snap.autonomous_unsent_since
        assert first_seen is not None
        # Its age counts from the first poll that saw it, and raises the event when old.
        box.clock.shift = dt.timedelta(days=2)
        snap = await monitor.poll_once()
        assert snap is not None
        assert snap.autonomous_unsent_since == first_seen
        assert [c.kind for c in snap.conditions] == ["marking_notifications_old"]
        # ATOL's ismExchangeStatus says so instead of failing.
        status = marking_results.exchange_status(
            await box.register.marking_state(), await box.register.ism_exchange()
        )
        assert status["status"]["autonomous"] is True
        assert status["status"]["notSentCount"] == 1
        assert "autonomous" in status["status"]["description"]
        # Back online: the exchange is read again.
        box.clock.shift = dt.timedelta()
        await set_ism(box, "positive")
        snap = await monitor.poll_once()
        assert snap is not None
        assert snap.autonomous is False
        assert snap.autonomous_unsent_since is None
        assert snap.as_dict()["ism"]["mode"] == "online"


async def test_a_monitor_poll_gives_way_to_a_waiting_job(tmp_path: Path) -> None:
    async with marking_box(tmp_path) as box:
        monitor = box.monitor
        await box.worker.register_lock.acquire()
        poll = asyncio.create_task(monitor.poll_once())
        await asyncio.sleep(0.05)
        assert not poll.done()  # the monitor waits for the job holding the register
        box.worker.register_lock.release()
        assert await asyncio.wait_for(poll, WAIT_S) is not None


async def test_marking_off_in_the_fn_is_shown_once_and_not_polled_again(tmp_path: Path) -> None:
    async with marking_box(tmp_path) as box:
        await box.emulator.apply_fault("fn_marking", False)
        async with asyncio.timeout(WAIT_S):
            await box.monitor.run()  # ends by itself
        snap = box.monitor.snapshot()
        assert snap.enabled is False
        assert snap.reason
        assert box.monitor.polls == 1
        assert snap.as_dict()["enabled"] is False


async def test_a_register_without_marking_is_not_polled(tmp_path: Path) -> None:
    async with cloud_box(tmp_path) as box:
        monitor = MarkingMonitor(
            box.journal,
            box.register,
            box.supervisor.connected_event,
            box.worker.register_lock,
            config=HealthConfig(),
        )
        async with asyncio.timeout(WAIT_S):
            await monitor.run()
        assert monitor.polls == 0
        assert monitor.snapshot().as_dict()["reason"] == (
            "this register does not check marking codes"
        )


# --- the status page -------------------------------------------------------------------------


@dataclass(kw_only=True)
class MarkingWebBox(WebBox):
    """The web tests' box, its status carrying the marking monitor's snapshot as /health does."""

    monitor: MarkingMonitor = field(init=False)

    async def status(self) -> dict[str, object]:
        body = await super().status()
        body["marking"] = self.monitor.snapshot().as_dict()
        return body


@contextlib.asynccontextmanager
async def marking_web_box(tmp_path: Path) -> AsyncIterator[MarkingWebBox]:
    logs = RecentLogs()
    logging.getLogger().addHandler(logs)
    config = WebConfig(
        listen=Listen("127.0.0.1", 0),
        password_hash=Secret(PASSWORD_HASH),
        language=WebLanguage.EN,
    )

    def with_page(box: MarkingWebBox) -> dict[str, Coroutine[Any, Any, None]]:
        box.monitor = _monitor(box, Clock())
        box.page = StatusPage(
            config=config,
            journal=box.journal,
            status=box.status,
            controls=box.controls,
            on_submitted=box.worker.wake,
            config_dump={"web": {"password_hash": "***"}},
            logs=logs,
            monotonic=box.clock,
        )
        return {}

    def make_box(**parts: Any) -> MarkingWebBox:
        controls = Controls(parts["supervisor"], parts["register"])
        return MarkingWebBox(controls=controls, logs=logs, clock=ManualClock(), **parts)

    try:
        async with support_box.running_box(
            tmp_path,
            box_type=make_box,
            policy=ShiftPolicy(),
            supervisor_journal=False,
            also=with_page,
        ) as box:
            await box.page.start()
            try:
                yield box
            finally:
                await box.page.stop()
    finally:
        logging.getLogger().removeHandler(logs)


async def _overview(client: aiohttp.ClientSession, url: str) -> str:
    async with client.get(f"{url}/") as resp:
        assert resp.status == 200
        return await resp.text()


async def _check(
    client: aiohttp.ClientSession, url: str, text: str
) -> tuple[aiohttp.ClientResponse, str]:
    fields = hidden_fields(await _overview(client, url))
    data = {"csrf": fields["csrf"], "action_id": fields["action_id"], "code": text}
    async with client.post(f"{url}/actions/marking-check", data=data) as resp:
        return resp, await resp.text()


async def test_the_panel_and_a_sample_code_check(tmp_path: Path) -> None:
    async with marking_web_box(tmp_path) as box, new_client() as client:
        await box.monitor.poll_once()
        await login(client, box.url)
        html = await _overview(client, box.url)
        assert "Marking (Chestny ZNAK)" in html
        assert 'id="marking-enabled">enabled<' in html
        assert 'id="ism-mode">online<' in html
        assert 'id="marking-unsent">0<' in html
        assert 'id="marking-check-state">nothing in progress<' in html
        assert 'id="ism-reachable">no code checked since the start<' in html
        assert 'id="act-marking-check"' in html

        # Typed as scanned, the group separators written as <GS>.
        typed = code("Sample01").decode("ascii").replace("\x1d", "<GS>")
        resp, text = await _check(client, box.url, typed)
        assert resp.status == 200
        assert "/jobs/web-marking-check-" in str(resp.url)
        uuid = str(resp.url).rsplit("/", 1)[1]
        job = await box.wait_state(uuid, JobState.DONE, JobState.FAILED)
        assert job.state is JobState.DONE, job.error_text
        assert job.source == "web"
        async with client.get(f"{box.url}/jobs/{uuid}") as page:
            shown = await page.text()
        assert 'id="marking-fn">the code is valid<' in shown
        assert 'id="marking-ism">the code and its status are confirmed<' in shown
        assert code_table(box) == ()  # declined: nothing waits, nothing is kept for a sale
        assert [d["type"] for d in box.tape()] == []  # no document
        html = await _overview(client, box.url)
        assert 'id="ism-reachable">yes<' in html

        # The same code in base64 (as ATOL's imc), answered "sold" by the ОИСМ.
        await set_ism(box, "sold", code("Sample02"))
        resp, text = await _check(client, box.url, b64(code("Sample02")))
        uuid = str(resp.url).rsplit("/", 1)[1]
        await box.wait_state(uuid, JobState.DONE, JobState.FAILED)
        async with client.get(f"{box.url}/jobs/{uuid}") as page:
            shown = await page.text()
        assert 'id="marking-ism">refused (unknown, sold already or withdrawn)<' in shown

        # A code no scanner gives is refused on the page, nothing queued.
        before = len(await box.web_jobs())
        resp, text = await _check(client, box.url, "0104600653105990 21Молоко")
        assert "Not checked: a marking code holds only ASCII characters" in text
        assert len(await box.web_jobs()) == before


async def test_the_panel_shows_an_autonomous_fn(tmp_path: Path) -> None:
    async with marking_web_box(tmp_path) as box, new_client() as client:
        await set_ism(box, "autonomous")  # FF68h answers ФН 02h
        await box.monitor.poll_once()
        await login(client, box.url)
        html = await _overview(client, box.url)
        assert 'id="ism-mode">autonomous mode: no exchange; notifications are uploaded' in html
        assert 'id="marking-enabled">enabled<' in html


async def test_the_sample_check_needs_the_sessions_token(tmp_path: Path) -> None:
    async with marking_web_box(tmp_path) as box, new_client() as client:
        await login(client, box.url)
        fields = hidden_fields(await _overview(client, box.url))
        data = {"csrf": "wrong", "action_id": fields["action_id"], "code": "0104600653105990"}
        async with client.post(
            f"{box.url}/actions/marking-check", data=data, allow_redirects=False
        ) as resp:
            assert resp.status == 403
        assert await box.web_jobs() == []


def test_sample_codes_as_a_person_types_them() -> None:
    raw = code("Typed001")
    assert sample_code(raw.decode("ascii").replace("\x1d", "<GS>")) == raw
    assert sample_code(raw.decode("ascii").replace("\x1d", "\\u001d")) == raw
    assert sample_code("  " + base64.b64encode(raw).decode("ascii") + "\n") == raw
    # Digits that also read as base64 stay the digits: their decoding is not a code.
    assert sample_code("0104600653105990") == b"0104600653105990"
    with pytest.raises(ValueError, match="empty"):
        sample_code("   ")
    with pytest.raises(ValueError, match="at most 255"):
        sample_code("A" * 256 + "!")


async def test_the_daemon_reports_marking_in_health_and_telemetry(tmp_path: Path) -> None:
    text = f"""
state_dir: {tmp_path / "state"}
http:
  listen: 127.0.0.1:{free_port()}
web:
  enabled: false
"""
    async with running_gateway(text) as gw:
        parts = gw.parts
        assert parts is not None
        await support_box.wait_until(lambda: parts.marking.snapshot().enabled is True)
        health = await gw.health()
        shown = health["marking"]
        assert isinstance(shown, dict)
        assert shown["enabled"] is True
        assert shown["notifications"]["unsent"] == 0
        sent = await telemetry(parts.report, parts.journal, tmp_path / "state")
        carried = sent["marking"]
        assert isinstance(carried, dict)
        assert carried["enabled"] is True
        assert carried["notifications"] == shown["notifications"]
        assert carried["ism"] == shown["ism"]


def test_the_ism_answer_tags_in_atol_words() -> None:
    """The chosen numbering of 2105 and 2109 (UNSURE in the sources), and 2005's two bits."""
    check = marking.CodeCheck(
        local=marking.LOCAL_CHECKED | marking.LOCAL_POSITIVE,
        reason=marking.NotCheckedReason.CHECKED,
        code_type=marking.CodeType.VERIFY88,
        answered=True,
        result=marking.FULLY_POSITIVE,
        server_code=0,
        server_tags=((2005, b"\x0a"), (2109, b"\x03"), (2105, b"\x02"), (2101, b"4606203103348")),
    )
    online = marking_results.online_validation(check)
    assert online["markOperatorResponse"] == {"responseStatus": True, "itemStatusCheck": True}
    assert online["markOperatorItemStatus"] == "itemSaleStopped"
    assert online["markOperatorResponseResult"] == "unrecognized"
    assert base64.b64decode(online["imcBarcode"]) == b"4606203103348"
    assert online["imcType"] == "imcFmVerifyCode88"
    silent = marking.CodeCheck(0, 1, 5, answered=False, result=0x10, server_code=0xFF)
    status = marking_results.status_result(silent)
    assert status["sentImcRequest"] is True
    assert status["driverError"]["code"] == 402
    assert status["onlineValidation"]["itemInfoCheckResult"]["ecrStandAloneFlag"] is True
    assert "markOperatorResponse" not in status["onlineValidation"]  # nothing it did not say
