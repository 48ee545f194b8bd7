"""The status page in a real headless Chromium (Debian's package) driven by Playwright,
against a real box: emulator on a pty, driver, supervisor, worker, journal on disk.

Screenshots land in test-artifacts/status-page/ (kept after the run for a person to look at).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.config.choices import WebLanguage
from gateway.engine import worker as worker_mod
from gateway.journal import JobState
from gateway.registers.shtrih import driver as driver_mod
from tests.integration.test_web_box import PASSWORD, web_box

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "status-page"
UI_TIMEOUT_MS = 20_000

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)"
)

# Every visible control must have a name a screen reader (and a test) can use.
UNLABELLED_CONTROLS_JS = """
() => Array.from(document.querySelectorAll('button, input, select, textarea, a[href]'))
  .filter(el => el.type !== 'hidden')
  .filter(el => {
    const labelled = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby') || (el.textContent || '').trim();
    return !labelled;
  })
  .map(el => el.outerHTML)
"""


@pytest.fixture(autouse=True)
def fast_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_mod, "PRINT_TIMEOUT_S", 1.5)
    monkeypatch.setattr(driver_mod, "QUERY_TIMEOUT_S", 1.5)
    monkeypatch.setattr(worker_mod, "PAUSE_POLL_INTERVAL_S", 0.1)
    monkeypatch.setattr(worker_mod, "CONNECT_WAIT_S", 0.2)


async def _no_unlabelled_controls(page: object) -> None:
    unlabelled = await page.evaluate(UNLABELLED_CONTROLS_JS)  # type: ignore[attr-defined]
    assert unlabelled == []


async def test_technician_logs_in_prints_and_switches_language(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expect = playwright_api.expect
    async with (
        web_box(tmp_path, language=WebLanguage.RU) as box,
        playwright_api.async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            # A phone-sized screen: what the technician holds.
            context = await browser.new_context(
                viewport={"width": 390, "height": 844}, locale="ru-RU", device_scale_factor=2
            )
            context.set_default_timeout(UI_TIMEOUT_MS)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "console",
                lambda msg: errors.append(msg.text) if msg.type == "error" else None,
            )

            await page.goto(box.url + "/")
            await expect(page).to_have_url(re.compile(r"/login\?next=/$"))
            await _no_unlabelled_controls(page)
            await page.screenshot(path=ARTIFACTS / "01-login.png", full_page=True)
            await page.get_by_label("Пароль").fill(PASSWORD)
            await page.get_by_role("button", name="Войти").click()

            # The overview: one big state, the register, what to do.
            await expect(page.locator("#state")).to_have_text("Всё работает")
            device = box.supervisor.device
            assert device is not None
            await expect(page.locator("#register-serial")).to_have_text(device.serial)
            await expect(page.locator("#register-state")).to_have_text("подключена")
            await _no_unlabelled_controls(page)
            await page.screenshot(path=ARTIFACTS / "02-overview-ru.png", full_page=True)
            await page.screenshot(path=ARTIFACTS / "02-overview-ru-first-screen.png")

            # Open the shift, then the test print (an X report needs an open shift).
            await page.get_by_role("button", name="Открыть смену").click()
            await expect(page.locator(".notice.ok")).to_contain_text("web-open-shift-")
            (opened,) = await box.web_jobs()
            await box.wait_state(opened.uuid, JobState.DONE)
            await page.get_by_role("button", name="Пробная печать (X-отчёт)").click()
            notice = page.locator(".notice.ok")
            await expect(notice).to_contain_text("web-x-report-")
            await page.screenshot(path=ARTIFACTS / "03-test-print-queued.png", full_page=True)
            text = await notice.inner_text()
            uuid = re.search(r"web-x-report-[0-9a-f]{32}", text)
            assert uuid is not None
            job = await box.wait_state(uuid[0], JobState.DONE, JobState.FAILED)
            assert job.state is JobState.DONE, job.error_text

            # The job appears in the list, done.
            await page.get_by_role("link", name="Задания").click()
            row = page.locator("tr", has=page.get_by_role("link", name=uuid[0]))
            await expect(row).to_contain_text("выполнено")
            await _no_unlabelled_controls(page)
            await page.screenshot(path=ARTIFACTS / "04-jobs.png", full_page=True)
            await page.get_by_role("link", name=uuid[0]).click()
            await expect(page.locator("#job-state")).to_have_text("выполнено")
            await expect(page.locator("#job-request")).to_contain_text('"reportX"')
            await page.screenshot(path=ARTIFACTS / "05-job.png", full_page=True)

            # Switch language.
            await page.get_by_role("link", name="English").click()
            await expect(page.locator("#job-state")).to_have_text("done")
            await page.get_by_role("link", name="Overview").click()
            await expect(page.locator("#state")).to_have_text("Everything works")
            await page.screenshot(path=ARTIFACTS / "06-overview-en.png", full_page=True)

            # Live refresh: a job blocked behind the page's back shows up without a reload.
            parsed = parse_request(
                json.dumps({"uuid": "stuck-1", "request": [{"type": "closeShift"}]}),
                NameMapping(),
            )
            await box.journal.submit("stuck-1", parsed.tasks_json, 1, source="http")
            await box.journal.start("stuck-1")
            await box.journal.block("stuck-1", 0, 1, "the answer to the Z report was lost")
            navigations: list[str] = []
            page.on("framenavigated", lambda frame: navigations.append(frame.url))
            await expect(page.locator("#state")).to_have_text("Not working")
            await expect(page.locator("#reason")).to_contain_text("stuck-1")
            assert navigations == []  # swapped in by the script, not a page load
            await page.screenshot(path=ARTIFACTS / "07-live-blocked.png")
            await page.get_by_role("link", name="Open job stuck-1").click()
            await expect(page.locator("#job-error")).to_have_text(
                "the answer to the Z report was lost"
            )
            await expect(
                page.get_by_role("button", name="Check again and continue")
            ).to_be_visible()
            assert errors == []
        finally:
            await browser.close()
