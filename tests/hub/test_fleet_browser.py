"""The fleet page in a real headless Chromium (Debian's package) driven by Playwright, on a
phone-sized screen: log in, two boxes online, one loses power and shows offline, its alert
is listed, an order is followed from the CRM key to the write-back.

Screenshots land in test-artifacts/hub-fleet/ for a person to look at.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.hub.fleet_support import (
    PASSWORD,
    FakeBoxLink,
    alert_settings,
    eventually,
    hub_fleet,
    open_store,
    printed_order,
    telemetry,
)
from tests.support.broker import Broker, Pki

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "hub-fleet"
UI_TIMEOUT_MS = 20_000

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)"
)


async def test_two_boxes_one_goes_offline_on_a_phone(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expect = playwright_api.expect
    store = await open_store(tmp_path)
    boxes = [FakeBoxLink(broker, pki, "shop-0001"), FakeBoxLink(broker, pki, "shop-0002")]
    try:
        async with (
            hub_fleet(store, broker, pki, "hub-a", alert_settings(None, None)) as hub,
            playwright_api.async_playwright() as pw,
        ):
            for n, box in enumerate(boxes):
                await box.connect()
                await box.telemetry(telemetry(depth=n))
            await printed_order(store, "shop-0001", "deal-42", "http://127.0.0.1:9/callback")

            async def both_stored() -> bool:
                return sum(b.telemetry is not None for b in await hub.service.fleet.boxes()) == 2

            await eventually(both_stored, what="both boxes' telemetry stored")

            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            try:
                context = await browser.new_context(
                    viewport={"width": 390, "height": 844}, locale="ru-RU", device_scale_factor=2
                )
                context.set_default_timeout(UI_TIMEOUT_MS)
                page = await context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

                await page.goto(hub.url + "/")
                await expect(page).to_have_url(re.compile(r"/login\?next=/$"))
                await page.get_by_label("Пароль").fill("wrong password")
                await page.get_by_role("button", name="Войти").click()
                await expect(page.locator("#login-error")).to_have_text("Неверный пароль.")
                await page.get_by_label("Пароль").fill(PASSWORD)
                await page.get_by_role("button", name="Войти").click()

                first, second = page.locator("#box-shop-0001"), page.locator("#box-shop-0002")
                await expect(first.locator(".pill")).to_have_text("в сети")
                await expect(second.locator(".pill")).to_have_text("в сети")
                await expect(first).to_contain_text("9999078900012345")
                await expect(first).to_contain_text("0.1.0")
                await expect(first.locator(".register")).to_have_text("подключена")
                await page.screenshot(path=ARTIFACTS / "01-two-online.png", full_page=True)

                await boxes[1].vanish()  # the broker publishes its Last Will
                # The page refreshes itself; the will comes at once on a dropped socket.
                await expect(second.locator(".pill")).to_have_text(
                    "не в сети", timeout=UI_TIMEOUT_MS
                )
                await expect(first.locator(".pill")).to_have_text("в сети")
                await page.screenshot(path=ARTIFACTS / "02-one-offline.png", full_page=True)

                await page.get_by_role("link", name="Оповещения").first.click()
                incident = page.locator("#alerts-open .incident[data-box='shop-0002']")
                await expect(incident).to_contain_text("устройство не в сети")
                await page.screenshot(path=ARTIFACTS / "03-alerts.png", full_page=True)

                await page.get_by_role("link", name="English").click()
                await page.get_by_role("link", name="Orders").click()
                await page.get_by_label("Box").select_option("shop-0001")
                await page.get_by_role("button", name="Show").click()
                await page.get_by_role("link", name="deal-42").click()
                await expect(page.locator("#order-state")).to_have_text("done")
                await expect(page.locator("#fiscal")).to_contain_text("1234567890")
                await expect(page.locator(".writeback")).to_contain_text(
                    "http://127.0.0.1:9/callback"
                )
                await page.screenshot(path=ARTIFACTS / "04-order.png", full_page=True)
                # The wrong password's 401 is the one failed load the page may show.
                assert [e for e in errors if "401" not in e] == []
            finally:
                await browser.close()
    finally:
        for box in boxes:
            await box.vanish()
        await store.close()
