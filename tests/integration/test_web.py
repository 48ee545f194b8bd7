"""The status page against a real box: emulator on a pty, driver, supervisor, worker, journal
on disk, the page on a real socket, requests from a real HTTP client with a cookie jar."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from pathlib import Path

import aiohttp
import pytest

from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.config.choices import WebLanguage
from gateway.config.reader import parse_config
from gateway.engine import worker as worker_mod
from gateway.journal import JobState
from gateway.registers.shtrih import driver as driver_mod
from gateway.web.diagnostics import masked
from gateway.web.password_store import META_KEY
from tests.integration.test_web_box import (
    PASSWORD,
    WebBox,
    hidden_fields,
    login,
    new_client,
    web_box,
)

# Every route that must refuse a browser without a session.
PROTECTED_GETS = ["/", "/jobs", "/jobs/some-job", "/status.json"]
ACTION_POSTS = [
    "/actions/x-report",
    "/actions/open-shift",
    "/actions/close-shift",
    "/actions/sync-clock",
    "/actions/reconnect",
    "/actions/accept-register",
    "/actions/diagnostics",
    "/actions/selftest",
    "/jobs/some-job/retry",
    "/jobs/some-job/cancel",
    "/logout",
]


@pytest.fixture(autouse=True)
def fast_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_mod, "PRINT_TIMEOUT_S", 1.5)
    monkeypatch.setattr(driver_mod, "QUERY_TIMEOUT_S", 1.5)
    monkeypatch.setattr(worker_mod, "PAUSE_POLL_INTERVAL_S", 0.1)
    monkeypatch.setattr(worker_mod, "CONNECT_WAIT_S", 0.2)


async def overview_fields(client: aiohttp.ClientSession, url: str) -> dict[str, str]:
    async with client.get(f"{url}/") as resp:
        assert resp.status == 200
        return hidden_fields(await resp.text())


async def test_every_route_refused_without_login(tmp_path: Path) -> None:
    async with web_box(tmp_path) as box, new_client() as client:
        for path in PROTECTED_GETS:
            async with client.get(box.url + path, allow_redirects=False) as resp:
                assert resp.status == 303, path
                assert resp.headers["Location"].startswith("/login?next="), path
        for path in ACTION_POSTS:
            async with client.post(
                box.url + path, data={"csrf": "x"}, allow_redirects=False
            ) as resp:
                assert resp.status == 403, path
        assert await box.web_jobs() == []
        assert box.controls.calls == []
        assert box.tape() == []


async def test_every_action_refused_with_a_bad_csrf_token(tmp_path: Path) -> None:
    async with web_box(tmp_path) as box, new_client() as client:
        resp = await login(client, box.url)
        assert resp.status == 303
        fields = await overview_fields(client, box.url)
        assert len(fields["csrf"]) > 20
        other = await overview_fields(client, box.url)
        assert other["csrf"] == fields["csrf"]  # one token per session
        token = fields["csrf"]
        wrong = token[:-1] + ("B" if token.endswith("A") else "A")  # one character off
        async with new_client() as other_client:  # another browser's valid token
            await login(other_client, box.url)
            foreign = (await overview_fields(other_client, box.url))["csrf"]
        assert foreign != token
        for path in ACTION_POSTS:
            for bad in ({"csrf": wrong}, {"csrf": foreign}, {}, {"csrf": ""}):
                data = {**bad, "action_id": fields["action_id"]}
                async with client.post(box.url + path, data=data, allow_redirects=False) as resp:
                    assert resp.status == 403, (path, bad)
                    assert "expired" in await resp.text()
        assert await box.web_jobs() == []
        assert box.controls.calls == []
        # Still logged in: the refusals did not end the session.
        async with client.get(f"{box.url}/jobs", allow_redirects=False) as resp:
            assert resp.status == 200


async def test_login_cookie_flags_logout_and_rate_limit(tmp_path: Path) -> None:
    async with web_box(tmp_path) as box, new_client() as client:
        resp = await login(client, box.url, "wrong password")
        assert resp.status == 401
        assert "Wrong password" in await resp.text()
        for _ in range(4):
            assert (await login(client, box.url, "wrong again")).status == 401
        # Five wrong in the window: even the right password waits now.
        resp = await login(client, box.url)
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) > 0
        assert "Too many attempts" in await resp.text()
        box.clock.now += 301  # the window passes
        resp = await login(client, box.url)
        assert resp.status == 303
        cookie = resp.headers["Set-Cookie"]
        assert "fgw_session=" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Path=/" in cookie
        fields = await overview_fields(client, box.url)
        async with client.post(
            f"{box.url}/logout", data={"csrf": fields["csrf"]}, allow_redirects=False
        ) as resp:
            assert resp.status == 303
        async with client.get(f"{box.url}/", allow_redirects=False) as resp:
            assert resp.status == 303  # logged out: back to the login page
        async with client.get(f"{box.url}/metrics") as resp:
            text = await resp.text()
        assert "fiscal_gateway_web_login_failures_total 5" in text
        assert "fiscal_gateway_web_login_refused_total 1" in text


async def test_login_refused_without_its_form_token(tmp_path: Path) -> None:
    async with (
        web_box(tmp_path) as box,
        new_client() as client,
        client.post(f"{box.url}/login", data={"password": PASSWORD}, allow_redirects=False) as resp,
    ):
        assert resp.status == 403
        assert "Set-Cookie" not in resp.headers or "fgw_session" not in resp.headers["Set-Cookie"]


async def test_login_redirects_only_to_this_site(tmp_path: Path) -> None:
    async with web_box(tmp_path) as box, new_client() as client:
        for target, expected in (
            ("//evil.example/", "/"),
            ("https://evil.example", "/"),
            ("/jobs", "/jobs"),
        ):
            async with client.get(f"{box.url}/login") as resp:
                fields = hidden_fields(await resp.text())
            data = {"login_token": fields["login_token"], "next": target, "password": PASSWORD}
            async with client.post(f"{box.url}/login", data=data, allow_redirects=False) as resp:
                assert resp.status == 303
                assert resp.headers["Location"] == expected


async def test_first_run_password_is_set_once_and_survives_a_restart(tmp_path: Path) -> None:
    new_password = "perviy-zapusk-2024"
    async with web_box(tmp_path, password_hash=None) as box, new_client() as client:
        async with client.get(f"{box.url}/", allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == "/setup"
        async with client.post(f"{box.url}/actions/x-report", allow_redirects=False) as resp:
            assert resp.status in (303, 403)
        async with client.get(f"{box.url}/setup") as resp:
            token = hidden_fields(await resp.text())["login_token"]
        for password, again, error in (
            ("short", "short", "shorter than 8"),
            (new_password, new_password + "x", "differ"),
        ):
            data = {"login_token": token, "password": password, "password_repeat": again}
            async with client.post(f"{box.url}/setup", data=data) as resp:
                assert resp.status == 400
                assert error in await resp.text()
        data = {"login_token": token, "password": new_password, "password_repeat": new_password}
        async with client.post(f"{box.url}/setup", data=data, allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == "/login"
        stored = await box.journal.meta_get(META_KEY)
        assert stored is not None
        assert stored.startswith("$scrypt$ln=15,r=8,p=1$")
        assert new_password not in stored
        # A second first run is not offered any more.
        data = {
            "login_token": token,
            "password": "another-one-9",
            "password_repeat": "another-one-9",
        }
        async with client.post(f"{box.url}/setup", data=data, allow_redirects=False) as resp:
            assert resp.headers["Location"] == "/login"
        assert (await login(client, box.url, "another-one-9")).status == 401
        assert (await login(client, box.url, new_password)).status == 303
    # Same journal file, a new page: the password set at first run still holds.
    async with web_box(tmp_path, password_hash=None) as box, new_client() as client:
        assert (await login(client, box.url, new_password)).status == 303
        async with client.get(f"{box.url}/jobs", allow_redirects=False) as resp:
            assert resp.status == 200


async def test_public_overview_is_read_only(tmp_path: Path) -> None:
    async with web_box(tmp_path, public_overview=True) as box, new_client() as client:
        async with client.get(f"{box.url}/", allow_redirects=False) as resp:
            assert resp.status == 200
            html = await resp.text()
        assert "Everything works" in html or "Needs attention" in html
        assert 'action="/actions/' not in html
        assert "Read-only view" in html
        async with client.get(f"{box.url}/status.json") as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["status"]["register"]["state"] == "connected"
        async with client.get(f"{box.url}/jobs", allow_redirects=False) as resp:
            assert resp.status == 303
        async with client.post(f"{box.url}/actions/x-report", allow_redirects=False) as resp:
            assert resp.status == 403


async def test_overview_shows_the_register_and_security_headers(tmp_path: Path) -> None:
    async with web_box(tmp_path) as box, new_client() as client:
        await login(client, box.url)
        async with client.get(f"{box.url}/") as resp:
            html = await resp.text()
            headers = resp.headers
        device = box.supervisor.device
        assert device is not None
        assert f'id="register-serial">{device.serial}<' in html
        assert f'id="register-model">{device.model}<' in html
        assert 'id="register-state">connected<' in html
        assert 'id="queue-depth">0<' in html
        assert "Everything works" in html
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"
        assert html.count("<svg") == 2
        async with client.get(f"{box.url}/static/live.js") as resp:
            assert resp.status == 200
        async with client.get(f"{box.url}/static/style.css") as resp:
            assert resp.status == 200


async def test_page_actions_print_exactly_once(tmp_path: Path) -> None:
    async with web_box(tmp_path) as box, new_client() as client:
        await login(client, box.url)
        fields = await overview_fields(client, box.url)
        data = {"csrf": fields["csrf"], "action_id": fields["action_id"]}
        async with client.post(f"{box.url}/actions/open-shift", data=data) as resp:
            assert resp.status == 200
            assert "Queued as job web-open-shift-" in await resp.text()
        # The same form sent again (a double tap, a browser resend) queues nothing new.
        async with client.post(f"{box.url}/actions/open-shift", data=data) as resp:
            assert "nothing new was queued" in await resp.text()
        (opened,) = await box.web_jobs()
        assert opened.uuid == f"web-open-shift-{fields['action_id']}"
        await box.wait_state(opened.uuid, JobState.DONE)

        fields = await overview_fields(client, box.url)
        data = {"csrf": fields["csrf"], "action_id": fields["action_id"]}
        async with client.post(f"{box.url}/actions/x-report", data=data) as resp:
            assert "Queued as job web-x-report-" in await resp.text()
        report = await box.wait_state(
            f"web-x-report-{fields['action_id']}", JobState.DONE, JobState.FAILED
        )
        assert report.state is JobState.DONE, report.error_text
        assert report.source == "web"

        fields = await overview_fields(client, box.url)
        data = {"csrf": fields["csrf"], "action_id": fields["action_id"]}
        async with client.post(f"{box.url}/actions/close-shift", data=data) as resp:
            assert resp.status == 200
        await box.wait_state(f"web-close-shift-{fields['action_id']}", JobState.DONE)
        # The paper tape: one shift opened and closed, each exactly once.
        assert [doc["type"] for doc in box.tape()] == ["openShift", "closeShift"]
        assert len(await box.web_jobs()) == 3
        # The jobs list shows them; the filter narrows it.
        async with client.get(f"{box.url}/jobs") as resp:
            html = await resp.text()
        for job in await box.web_jobs():
            assert job.uuid in html
        async with client.get(f"{box.url}/jobs?state=failed") as resp:
            assert "No jobs." in await resp.text()
        async with client.get(f"{box.url}/jobs/{report.uuid}") as resp:
            html = await resp.text()
        assert "&#34;type&#34;: &#34;reportX&#34;" in html
        assert 'id="job-state" class="st-done">done<' in html


async def test_cancel_a_queued_job_from_the_page(tmp_path: Path) -> None:
    async with web_box(tmp_path, start_worker=False) as box, new_client() as client:
        await login(client, box.url)
        fields = await overview_fields(client, box.url)
        data = {"csrf": fields["csrf"], "action_id": fields["action_id"]}
        async with client.post(f"{box.url}/actions/x-report", data=data) as resp:
            assert resp.status == 200
        uuid = f"web-x-report-{fields['action_id']}"
        async with client.get(f"{box.url}/jobs/{uuid}") as resp:
            html = await resp.text()
        assert 'id="job-cancel"' in html
        async with client.post(
            f"{box.url}/jobs/{uuid}/cancel", data={"csrf": fields["csrf"]}
        ) as resp:
            assert "was canceled" in await resp.text()
        assert (await box.journal.get(uuid)).state is JobState.CANCELED
        async with client.post(
            f"{box.url}/jobs/{uuid}/cancel", data={"csrf": fields["csrf"]}
        ) as resp:
            assert "cannot be canceled" in await resp.text()
        async with client.post(
            f"{box.url}/jobs/{uuid}/retry", data={"csrf": fields["csrf"]}
        ) as resp:
            assert "is not blocked" in await resp.text()
        async with client.post(
            f"{box.url}/jobs/nope/cancel", data={"csrf": fields["csrf"]}
        ) as resp:
            assert resp.status == 404
        async with client.get(f"{box.url}/jobs/nope") as resp:
            assert resp.status == 404


def _sell(name: str, kopecks: int) -> dict[str, object]:
    price = kopecks / 100
    return {
        "type": "sell",
        "items": [
            {
                "type": "position",
                "name": name,
                "price": price,
                "quantity": 1,
                "amount": price,
                "tax": {"type": "vat20"},
            }
        ],
        "payments": [{"type": "cash", "sum": price}],
    }


async def test_retry_a_blocked_job_shows_what_recovery_found(tmp_path: Path) -> None:
    async with web_box(tmp_path) as box, new_client() as client:
        await login(client, box.url)
        fields = await overview_fields(client, box.url)
        data = {"csrf": fields["csrf"], "action_id": fields["action_id"]}
        async with client.post(f"{box.url}/actions/open-shift", data=data) as resp:
            assert resp.status == 200
        await box.wait_state(f"web-open-shift-{fields['action_id']}", JobState.DONE)
        # A receipt whose fiscal step was committed and then left in doubt: blocked.
        parsed = parse_request(
            json.dumps({"uuid": "b1", "request": [_sell("Кефир", 7990)]}), NameMapping()
        )
        await box.journal.submit("b1", parsed.tasks_json, 1, source="http")
        await box.journal.start("b1")
        n0 = (await box.register.fn_status()).last_document_number
        await box.journal.begin_fiscal_step("b1", 0, "sell", n0)
        await box.journal.block(
            "b1", 0, 1, "no answer from the register after the receipt was sent"
        )

        async with client.get(f"{box.url}/") as resp:
            html = await resp.text()
        assert "Not working" in html
        assert "Job b1 is stopped" in html
        assert '<a href="/jobs/b1">b1</a>' in html
        async with client.get(f"{box.url}/jobs?state=blocked") as resp:
            assert "b1" in await resp.text()
        async with client.get(f"{box.url}/jobs/b1") as resp:
            html = await resp.text()
        assert "no answer from the register after the receipt was sent" in html
        assert 'id="job-retry"' in html

        async with client.post(f"{box.url}/jobs/b1/retry", data={"csrf": fields["csrf"]}) as resp:
            assert resp.status == 200
            assert "is checked again now" in await resp.text()
        job = await box.wait_state("b1", JobState.DONE, JobState.BLOCKED, JobState.FAILED)
        assert job.state is JobState.DONE
        assert [d["type"] for d in box.tape()] == ["openShift", "sell"]  # printed once, now
        async with client.get(f"{box.url}/jobs/b1") as resp:
            html = await resp.text()
        # The history has the retry with who asked; the log says what recovery found.
        assert "retry: check again requested on the status page from 127.0.0.1" in html
        assert f"not fiscalised (last document still {n0}); running again" in html
        assert "fiscalDocumentNumber" in html


async def test_live_controls_use_the_real_supervisor(tmp_path: Path) -> None:
    async with web_box(tmp_path) as box, new_client() as client:
        await login(client, box.url)
        fields = await overview_fields(client, box.url)
        csrf = {"csrf": fields["csrf"]}
        first = box.supervisor.device
        async with client.post(f"{box.url}/actions/reconnect", data=csrf) as resp:
            html = await resp.text()
        assert "Done: reconnected to" in html
        assert box.supervisor.device is not None
        assert box.supervisor.device is not first
        async with client.post(f"{box.url}/actions/sync-clock", data=csrf) as resp:
            assert "Done: register clock set to" in await resp.text()
        async with client.post(f"{box.url}/actions/accept-register", data=csrf) as resp:
            assert "is now this box&#39;s register" in await resp.text()
        assert box.controls.calls == ["reconnect_register", "sync_clock", "accept_register"]
        # With the shift open the register refuses a clock change; the page says so plainly.
        data = {"csrf": fields["csrf"], "action_id": fields["action_id"]}
        async with client.post(f"{box.url}/actions/open-shift", data=data) as resp:
            assert resp.status == 200
        await box.wait_state(f"web-open-shift-{fields['action_id']}", JobState.DONE)
        async with client.post(f"{box.url}/actions/sync-clock", data=csrf) as resp:
            assert "Did not work: the shift is open; close it first" in await resp.text()
        async with client.get(f"{box.url}/metrics") as resp:
            text = await resp.text()
        assert 'fiscal_gateway_web_actions_total{action="sync-clock"} 2' in text


async def test_diagnostics_bundle_masks_secrets(tmp_path: Path) -> None:
    secret_token = "tok-very-secret-123"
    config = parse_config(
        "http:\n"
        "  tokens:\n"
        f"    - name: crm\n      token: {secret_token}\n"
        "mqtt:\n  enabled: true\n  host: 127.0.0.1\n  password: mqtt-pass-456\n"
    )
    async with web_box(tmp_path, config_dump=masked(config)) as box, new_client() as client:
        await login(client, box.url)
        fields = await overview_fields(client, box.url)
        async with client.post(
            f"{box.url}/actions/diagnostics", data={"csrf": fields["csrf"]}
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/zip"
            assert "attachment" in resp.headers["Content-Disposition"]
            body = await resp.read()
    zf = zipfile.ZipFile(io.BytesIO(body))
    assert set(zf.namelist()) >= {
        "config.json",
        "status.json",
        "log.txt",
        "journal-integrity.txt",
        "jobs.json",
    }
    everything = b"".join(zf.read(n) for n in zf.namelist())
    assert secret_token.encode() not in everything
    assert b"mqtt-pass-456" not in everything
    cfg = json.loads(zf.read("config.json"))
    assert cfg["mqtt"]["password"] == "***"
    assert cfg["mqtt"]["host"] == "127.0.0.1"
    assert json.loads(zf.read("status.json"))["register"]["state"] == "connected"
    assert zf.read("journal-integrity.txt").decode().startswith("integrity check at open: ok")
    assert "Status page login from 127.0.0.1" in zf.read("log.txt").decode()


_SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)+\})? '
    r"(-?[0-9.e+-]+|NaN|[+-]Inf)$"
)


async def test_metrics_in_text_exposition_format(tmp_path: Path) -> None:
    async with (
        web_box(tmp_path) as box,
        new_client() as client,
        client.get(f"{box.url}/metrics") as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await resp.text()
    assert text.endswith("\n")
    names_typed = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            names_typed.add(line.split()[2])
            continue
        if line.startswith("# HELP "):
            continue
        assert _SAMPLE.match(line), line
        assert line.split("{")[0].split(" ")[0] in names_typed, line
    assert "fiscal_gateway_register_connected 1" in text
    assert 'fiscal_gateway_jobs{state="queued"} 0' in text
    assert "fiscal_gateway_paper_present 1" in text
    assert "fiscal_gateway_queue_blocked 0" in text


async def test_language_from_config_browser_and_choice(tmp_path: Path) -> None:
    async with (
        web_box(tmp_path, language=WebLanguage.RU, public_overview=True) as box,
        new_client() as client,
    ):
        async with client.get(f"{box.url}/") as resp:
            assert "Всё работает" in await resp.text()  # the box's configured language
        headers = {"Accept-Language": "uk-UA,uk;q=0.9,en;q=0.5"}
        async with client.get(f"{box.url}/", headers=headers) as resp:
            html = await resp.text()
        assert "Усе працює" in html
        assert '<html lang="uk">' in html
        async with client.get(f"{box.url}/lang/en?next=/", headers=headers) as resp:
            html = await resp.text()  # the choice beats the browser's header
        assert "Everything works" in html
        async with client.get(f"{box.url}/", headers=headers) as resp:
            assert "Everything works" in await resp.text()


async def test_charts_draw_the_journal_samples(tmp_path: Path) -> None:
    async with web_box(tmp_path, start_worker=False) as box, new_client() as client:
        now = dt.datetime.now(dt.UTC)
        for minutes, _ in ((120, 0), (60, 0)):
            await box.journal.record_queue_depth(now=now - dt.timedelta(minutes=minutes))
        await login(client, box.url)
        async with client.get(f"{box.url}/") as resp:
            html = await resp.text()
        assert html.count('<polyline class="series"') == 1
        assert "No data yet" in html  # no job was done: the latency chart says so


async def finished_job(
    box: WebBox, uuid: str, steps: list[tuple[dict[str, object], dict[str, object]]]
) -> None:
    """A job run to its end in the journal: (task, result) pairs, as the worker stores them."""
    parsed = parse_request(
        json.dumps({"uuid": uuid, "request": [task for task, _ in steps]}), NameMapping()
    )
    await box.journal.submit(uuid, parsed.tasks_json, len(parsed.tasks), source="http")
    await box.journal.start(uuid)
    for index, (_, result) in enumerate(steps):
        await box.journal.finish_task(uuid, index, result)
    await box.journal.complete(uuid)


def fiscal_result(document: int, shift: int) -> dict[str, object]:
    return {"fiscalParams": {"fiscalDocumentNumber": document, "shiftNumber": shift}}


def job_row(html: str, seq: int) -> str:
    """The jobs list's row of job `seq`."""
    start = html.index(f'id="job-{seq}"')
    return html[start : html.index("</tr>", start)]


MISMATCH = {
    "shift": 7,
    "matches": False,
    "register": {},
    "journal": {},
    "differences": [
        {
            "operation": "sell",
            "payment": "cash",
            "measure": "sum",
            "register": 1234.5,
            "journal": 1200.0,
            "difference": 34.5,
        }
    ],
}


async def test_jobs_list_says_what_was_fiscalised_and_how_the_shift_reconciled(
    tmp_path: Path,
) -> None:
    async with web_box(tmp_path, start_worker=False) as box, new_client() as client:
        await login(client, box.url)
        card = dict(_sell("Сыр", 250_00), payments=[{"type": "electronically", "sum": 250}])
        await finished_job(
            box,
            "order-1",
            [(_sell("Хлеб", 45_50), fiscal_result(41, 7)), (card, fiscal_result(42, 7))],
        )
        await finished_job(
            box,
            "z-7",
            [({"type": "closeShift"}, {**fiscal_result(43, 7), "shiftReconciliation": MISMATCH})],
        )
        matched = {**MISMATCH, "shift": 8, "matches": True, "differences": []}
        await finished_job(
            box,
            "z-8",
            [({"type": "closeShift"}, {**fiscal_result(44, 8), "shiftReconciliation": matched})],
        )
        async with client.get(f"{box.url}/jobs") as resp:
            html = await resp.text()
        row = job_row(html, 1)
        assert "sell" in row
        assert ">295.50<" in row
        assert "cash, card" in row
        assert "41, 42" in row
        row = job_row(html, 2)
        assert "Z report" in row
        assert 'id="recon-2"' in row
        assert "Shift 7: the register&#39;s counters differ from the journal." in row
        assert "sell, cash: register 1234.5, journal 1200.0 (difference +34.50)" in row
        assert "Shift 8: the register&#39;s counters match the journal." in html
        async with client.get(f"{box.url}/jobs/z-7") as resp:
            html = await resp.text()
        assert 'id="job-reconciliation"' in html
        assert "difference +34.50" in html
        # In Russian too.
        async with client.get(f"{box.url}/lang/ru?next=/jobs") as resp:
            html = await resp.text()
        assert "касса 1234.5, журнал 1200.0" in html
        assert "Z-отчёт" in html


async def test_a_shift_mismatch_event_is_shown_on_the_overview(tmp_path: Path) -> None:
    async with web_box(tmp_path, start_worker=False) as box, new_client() as client:
        await login(client, box.url)
        async with client.get(f"{box.url}/") as resp:
            assert 'id="shift-mismatches"' not in await resp.text()
        await box.journal.add_event(
            "shift_mismatch", {"shift": 7, "differences": MISMATCH["differences"], "text": "x"}
        )
        async with client.get(f"{box.url}/") as resp:
            html = await resp.text()
        assert "Needs attention" in html
        assert (
            "At the Z report of shift 7 the register&#39;s counters differed from the journal."
            in html
        )
        section = html[html.index('id="shift-mismatches"') :]
        assert "punched by hand" in section
        assert "sell, cash: register 1234.5, journal 1200.0 (difference +34.50)" in section
        async with client.get(f"{box.url}/status.json") as resp:
            body = await resp.json()
        assert body["findings"][0]["reason"] == "reason_shift_mismatch"


async def test_selftest_from_the_page_refused_while_the_shift_holds_receipts(
    tmp_path: Path,
) -> None:
    async with web_box(tmp_path, start_worker=False) as box, new_client() as client:
        await login(client, box.url)
        opened = await box.register.open_shift(None)
        shift = opened.shift_number
        assert shift is not None
        await finished_job(box, "order-1", [(_sell("Хлеб", 45_50), fiscal_result(41, shift))])
        fields = await overview_fields(client, box.url)
        data = {"csrf": fields["csrf"], "action_id": fields["action_id"]}
        async with client.post(f"{box.url}/actions/selftest", data=data) as resp:
            html = await resp.text()
        assert "Self-test refused: the open shift holds 1 customer receipts." in html
        assert not [j for j in await box.journal.list_jobs() if j.uuid.startswith("selftest-")]

        async with client.post(f"{box.url}/actions/selftest", data={**data, "force": "on"}) as resp:
            html = await resp.text()
        uuid = f"selftest-{fields['action_id']}"
        assert resp.url.path == f"/jobs/{uuid}"
        assert f"Self-test queued as job {uuid}." in html
        assert "the self-test is running" in html.lower()
        job = await box.journal.get(uuid)
        assert job.source == "web"
        assert job.tasks_count == 12
        assert [t["type"] for t in json.loads(job.tasks_json)][:3] == [
            "getShiftTotals",
            "sell",
            "sellReturn",
        ]
        # The same form again queues nothing new.
        async with client.post(f"{box.url}/actions/selftest", data={**data, "force": "on"}) as resp:
            assert "nothing new was queued" in await resp.text()
