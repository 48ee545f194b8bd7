"""Alerts end to end: a real Mosquitto, the hub's store on SQLite, a local SMTP server and a
webhook receiver, two hub processes' fleet services racing for the same work."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from gateway.hub.alerts.evaluator import RuleEvaluator
from gateway.hub.alerts.model import BoxState, Rule
from gateway.hub.alerts.records import FleetRecords, IncidentRecords
from gateway.hub.alerts.rules import box_conditions
from gateway.hub.alerts.settings import parse_alerts
from gateway.hub.alerts.tables import ensure_tables
from gateway.hub.config import check_config
from gateway.hub.fleet_page.view import box_row
from gateway.hub.store import Store
from gateway.hub.store.database import now_ms
from tests.hub.fleet_support import (
    PASSWORD_HASH,
    FakeBoxLink,
    MailBox,
    Webhook,
    alert_settings,
    eventually,
    hub_fleet,
    open_store,
    printed_order,
    telemetry,
)
from tests.hub.support import HubProcess, OfficeKey, Postgres
from tests.support.broker import Broker, Pki, free_port
from tests.support.daemon import DaemonProcess


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_offline_box_gives_one_alert_and_one_cleared_per_recipient(
    tmp_path: Path, broker: Broker, pki: Pki, database: str, request: pytest.FixtureRequest
) -> None:
    if database == "sqlite":
        store = await open_store(tmp_path)
    else:  # this test alone uses the cluster: it starts empty
        store = await Store.open(request.getfixturevalue("postgres").url)
    try:
        async with (
            MailBox() as mail,
            Webhook() as hook,
            hub_fleet(store, broker, pki, "hub-a", alert_settings(mail, hook)) as hub_a,
            hub_fleet(store, broker, pki, "hub-b", alert_settings(mail, hook)) as hub_b,
        ):
            box = FakeBoxLink(broker, pki, "shop-0001")
            await box.connect()
            await box.telemetry(telemetry(depth=3))
            fleet = hub_a.service.fleet

            async def online() -> bool:
                states = {b.box_id: b for b in await fleet.boxes()}
                b = states.get("shop-0001")
                return b is not None and b.online is True and b.telemetry is not None

            await eventually(online, what="the box's status and telemetry stored")

            await box.vanish()  # the broker publishes its Last Will

            await eventually(lambda: len(mail.messages) >= 1, what="the alert e-mail")
            await eventually(lambda: len(hook.bodies) >= 1, what="the alert webhook")
            await asyncio.sleep(3)  # several rounds of both processes: nothing more is sent
            assert mail.subjects() == [mail.subjects()[0]]
            assert mail.subjects()[0].startswith("[fiscal hub] ALERT: box shop-0001 offline")
            assert mail.messages[0]["To"] == "duty@example.org"
            assert hook.phases() == ["opened"]
            assert hook.bodies[0]["rule"] == "box_offline"
            assert hook.bodies[0]["box_id"] == "shop-0001"

            box = FakeBoxLink(broker, pki, "shop-0001", boot_id="boot-2")
            await box.connect()
            await eventually(lambda: len(mail.messages) >= 2, what="the cleared e-mail")
            await eventually(lambda: len(hook.bodies) >= 2, what="the cleared webhook")
            await asyncio.sleep(3)
            assert len(mail.messages) == 2
            assert mail.subjects()[1].startswith("[fiscal hub] CLEARED: box shop-0001")
            assert mail.messages[1]["In-Reply-To"] == mail.messages[0]["Message-ID"]
            assert hook.phases() == ["opened", "cleared"]
            assert hook.bodies[0]["id"] == hook.bodies[1]["id"]
            (incident,) = await hub_b.service.incidents.recent()
            assert incident.cleared_ms is not None
            counts = await hub_b.service.incidents.delivery_counts()
            assert counts == {("sent", "email"): 2, ("sent", "webhook"): 2}
            # Retention: a cleared incident whose messages went out is deleted with them.
            assert await hub_b.service.incidents.expire(now_ms() + 1) == 1
            assert await hub_b.service.incidents.recent() == []
            assert await hub_b.service.incidents.delivery_counts() == {}
            await box.vanish()
    finally:
        await store.close()


async def test_a_refused_webhook_is_retried_until_it_answers(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    store = await open_store(tmp_path)
    try:
        async with (
            Webhook(refuse_first=2) as hook,
            hub_fleet(store, broker, pki, "hub-a", alert_settings(None, hook)) as hub,
        ):
            box = FakeBoxLink(broker, pki, "shop-0002")
            await box.connect()
            await box.telemetry(telemetry(blocked="job-17"))
            await eventually(lambda: len(hook.bodies) == 1, what="the webhook after two 503s")
            assert hook.refused == 2
            assert hook.bodies[0]["rule"] == "job_blocked"
            assert hook.bodies[0]["subject"] == "job-17"
            assert hook.bodies[0]["phase"] == "opened"
            (incident,) = await hub.service.incidents.open_incidents()
            assert incident.rule is Rule.JOB_BLOCKED
            assert await hub.service.incidents.delivery_counts() == {("sent", "webhook"): 1}
            assert await hub.service.incidents.failing_deliveries() == []

            await box.telemetry(telemetry(blocked=None))  # a person resolved the job
            await eventually(lambda: len(hook.bodies) == 2, what="the cleared webhook")
            assert hook.bodies[1]["phase"] == "cleared"
            assert await hub.service.incidents.open_incidents() == []
            await box.vanish()
    finally:
        await store.close()


def test_rules_read_the_box_telemetry() -> None:
    cfg = alert_settings(None, None)
    body = telemetry(blocked="job-1", drift=-400)
    body["health"]["reading"].update(fn_days_left=12, ofd_oldest_age_days=4.5, ofd_unsent=31)
    box = BoxState("shop-1", True, 0, None, body, 0, {"shift": 7, "text": "cash differs"}, 1000)
    found = {c.rule: c for c in box_conditions(box, 2000, cfg)}
    assert set(found) == {
        Rule.FN_EXPIRING,
        Rule.OFD_BACKLOG,
        Rule.CLOCK_DRIFT,
        Rule.JOB_BLOCKED,
        Rule.SHIFT_MISMATCH,
    }
    assert found[Rule.FN_EXPIRING].subject == "9999078900012345"
    assert found[Rule.SHIFT_MISMATCH].subject == "7"
    later = box_conditions(box, 1000 + int(cfg.mismatch_hold_s * 1000), cfg)
    assert Rule.SHIFT_MISMATCH not in {c.rule for c in later}


def test_each_marking_problem_the_box_reports_is_an_incident() -> None:
    cfg = alert_settings(None, None)
    body = telemetry()
    body["marking"] = {
        "conditions": [
            {
                "kind": "marking_notifications_old",
                "severity": "warning",
                "message": "12 marking notifications not sent to the ОИСМ",
                "action": "check the register's internet connection",
            },
            {"kind": "marking_blocked", "severity": "critical", "message": "m", "action": "a"},
        ]
    }
    box = BoxState("shop-1", True, 0, None, body, 0, None, None)
    found = [c for c in box_conditions(box, 1000, cfg) if c.rule is Rule.MARKING]
    assert [c.subject for c in found] == ["marking_notifications_old", "marking_blocked"]
    assert found[0].text == (
        "box shop-1: 12 marking notifications not sent to the ОИСМ — check the register's "
        "internet connection"
    )
    body["marking"] = {"conditions": []}
    assert [c for c in box_conditions(box, 1000, cfg) if c.rule is Rule.MARKING] == []


def test_an_online_box_whose_telemetry_stopped_is_silent() -> None:
    cfg = alert_settings(None, None)
    limit = int(cfg.silent_after_s * 1000)
    body = telemetry()
    box = BoxState("shop-1", True, 1_000, None, body, 5_000, None, None)
    assert box_conditions(box, 5_000 + limit - 1, cfg) == []
    (silent,) = box_conditions(box, 5_000 + limit, cfg)
    assert silent.rule is Rule.BOX_SILENT
    assert "no telemetry for 10 min" in silent.text
    # Never a word since it came online counts from then; an offline box is offline, not silent.
    quiet = BoxState("shop-2", True, 1_000, None, None, None, None, None)
    assert [c.rule for c in box_conditions(quiet, 1_000 + limit, cfg)] == [Rule.BOX_SILENT]
    gone = BoxState("shop-3", False, 1_000, None, body, 5_000, None, None)
    assert Rule.BOX_SILENT not in {c.rule for c in box_conditions(gone, 5_000 + limit, cfg)}
    # A box back online after a long absence is not silent before its first period has passed.
    back = BoxState("shop-4", True, 5_000 + limit, None, body, 5_000, None, None)
    assert box_conditions(back, 5_000 + limit + 1, cfg) == []


def test_the_alerts_section_names_every_problem() -> None:
    problems: list[str] = []
    parse_alerts(
        {
            "offline_after_s": 0,
            "colour": "red",
            "smtp": {"port": "x"},
            "groups": [{"name": "a", "webhook": ["ftp://x"]}],
        },
        lambda path, text: problems.append(f"{path}: {text}"),
    )
    assert problems == [
        "alerts.colour: unknown key",
        "alerts.offline_after_s: must be a number from 1 to 604800",
        "alerts.smtp.port: must be a port number",
        "alerts.groups[0].boxes: required: box ids or patterns such as shop-*",
        "alerts.groups[0].webhook: 'ftp://x' is not an http(s) URL",
    ]


async def test_the_hub_process_runs_the_fleet_page_and_alerts_from_its_config(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    """`fiscal-gateway hub run` with `web:` and `alerts:` in its config file."""
    page_port = free_port()
    async with MailBox() as mail, Webhook() as hook:
        hub = HubProcess(
            tmp_path / "hub",
            "hub-a",
            f"sqlite:///{tmp_path / 'hub.sqlite3'}",
            broker,
            pki,
            OfficeKey.make(tmp_path / "office.pem"),
            {"shop-1": "shop-0009"},
            extra=(
                f"web: {{listen: 127.0.0.1:{page_port}, password_hash: '{PASSWORD_HASH}',"
                " language: uk}\n"
                "alerts:\n"
                "  evaluate_every_s: 1\n"
                "  offline_after_s: 1\n"
                f"  smtp: {{host: 127.0.0.1, port: {mail.port}}}\n"
                "  groups:\n"
                f"    - {{name: all, boxes: ['*'], email: [duty@example.org], webhook: [{hook.url}]}}\n"
            ),
        )
        assert check_config(hub.write_config()) == []
        hub.start()
        try:
            box = FakeBoxLink(broker, pki, "shop-0009")
            await box.connect()
            await asyncio.sleep(1)
            await box.vanish()
            await eventually(lambda: bool(mail.messages), what="the alert e-mail")
            await eventually(lambda: bool(hook.bodies), what="the alert webhook")
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{page_port}/login") as resp,
            ):
                assert resp.status == 200
                assert "Пароль" in await resp.text()
        finally:
            assert hub.stop() == 0
        assert hub.tracebacks() == []
        assert mail.subjects()[0].startswith("[fiscal hub] ALERT: box shop-0009 offline")
        assert hook.bodies[0]["rule"] == "box_offline"


async def test_a_real_box_is_read_from_its_telemetry_and_its_power_cut_alerted(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    """The box daemon on its emulator: the fields the page reads are where the box puts them."""
    store = await open_store(tmp_path)
    box = DaemonProcess(tmp_path / "box", box_id="shop-0100").with_mqtt(
        broker, pki, telemetry_interval_s=5
    )
    try:
        async with (
            MailBox() as mail,
            hub_fleet(store, broker, pki, "hub-a", alert_settings(mail, None)) as hub,
        ):
            await asyncio.to_thread(box.start)

            async def read() -> bool:
                states = [s for s in await hub.service.fleet.boxes() if s.box_id == "shop-0100"]
                if not states:
                    return False
                row = box_row(states[0], None, now_ms(), 180_000)
                return row.fn_number is not None and row.queue_depth is not None

            await eventually(read, timeout_s=60, what="the box's telemetry with its ФН")
            (state,) = await hub.service.fleet.boxes()
            row = box_row(state, None, now_ms(), 180_000)
            assert (row.state, row.register, row.queue_depth, row.blocked) == (
                "online",
                "connected",
                0,
                None,
            )
            assert row.version is not None
            assert row.firmware is not None
            assert row.fn_days_left is not None
            assert row.fn_days_left > 30
            assert row.drift_s is not None
            assert mail.messages == []

            await asyncio.to_thread(box.stop, signal.SIGKILL)  # the power goes
            await eventually(lambda: bool(mail.messages), what="the alert e-mail")
            assert mail.subjects() == [m for m in mail.subjects() if "box shop-0100 offline" in m]
    finally:
        if box.alive():
            await asyncio.to_thread(box.stop, signal.SIGKILL)
        await store.close()


async def test_a_shift_mismatch_event_is_stored_and_alerted_once(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    store = await open_store(tmp_path)
    try:
        async with (
            Webhook() as hook,
            hub_fleet(
                store, broker, pki, "hub-a", alert_settings(None, hook), password_hash=None
            ) as hub,
        ):
            # No password: nobody could log in, so the page does not listen; alerts run.
            with socket.socket() as sock:
                assert sock.connect_ex(("127.0.0.1", hub.page_port)) != 0
            box = FakeBoxLink(broker, pki, "shop-0003")
            await box.connect()
            mismatch = {
                "event": "shift_mismatch",
                "at": "2026-12-04T10:00:00+00:00",
                "shift": 12,
                "differences": [{"counter": "cash_sales", "register": 10000, "journal": 9000}],
                "text": "shift 12: cash sales differ by 10.00",
            }
            await box.event(mismatch)
            await box.event(mismatch)  # a repeat (at least once delivery) opens nothing new
            await eventually(lambda: bool(hook.bodies), what="the mismatch webhook")
            await asyncio.sleep(2)
            assert [(b["rule"], b["subject"], b["phase"]) for b in hook.bodies] == [
                ("shift_mismatch", "12", "opened")
            ]
            events = await hub.service.fleet.events("shop-0003")
            assert [e["event"] for e in events] == ["shift_mismatch", "shift_mismatch"]
            (state,) = await hub.service.fleet.boxes()
            assert state.shift_mismatch is not None
            assert state.shift_mismatch["text"] == mismatch["text"]
            await box.vanish()
    finally:
        await store.close()


async def test_a_write_back_past_its_alert_limit_is_an_incident_of_its_box(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path)
    try:
        await ensure_tables(store.db)
        order = await printed_order(store, "shop-0004", "deal-9", "http://127.0.0.1:9/cb")
        (row,) = await store.outbox.claim("hub-a", lease_ms=10_000, limit=10)
        assert await store.outbox.failed(
            row, "hub-a", error="connection refused", retry_in_ms=60_000, alert_after_ms=0
        )
        incidents = IncidentRecords(store.db)
        evaluator = RuleEvaluator(
            FleetRecords(store.db),
            incidents,
            store.access,
            alert_settings(None, None),
            owner="hub-a",
        )
        assert await evaluator.evaluate() == (1, 0)
        assert await evaluator.evaluate() == (0, 0)  # still failing: nothing new
        (incident,) = await incidents.open_incidents()
        assert incident.rule is Rule.WRITEBACK_FAILING
        assert incident.box_id == "shop-0004"
        assert incident.details["job_uuid"] == order.job_uuid
        assert "connection refused" in incident.text
    finally:
        await store.close()
