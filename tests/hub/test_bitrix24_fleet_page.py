"""A Bitrix24 check on the fleet page: the fake portal, a real hub process with its page on,
Mosquitto and a real box on its emulator; the page is read in a real headless Chromium
(Debian's package) driven by Playwright, at a desktop's and at a phone's width.

Screenshots land in test-artifacts/bitrix24/ (docs/bitrix24.md shows them).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.hub.fleet_support import PASSWORD, PASSWORD_HASH
from tests.hub.test_bitrix24_boxes import Rig, _until, bitrix24_rig, receipts
from tests.support.broker import Broker, Pki, free_port

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "bitrix24"
UI_TIMEOUT_MS = 20_000
SCREENS = {  # name -> (viewport, device scale factor)
    "desktop": ({"width": 1000, "height": 480}, 1),
    "phone": ({"width": 390, "height": 844}, 2),
}
DL_AS_DICT = (
    "dl => Object.fromEntries([...dl.querySelectorAll('dt')]"
    ".map(dt => [dt.textContent, dt.nextElementSibling.textContent]))"
)

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)"
    ),
]


async def _shot(page: Any, name: str) -> None:
    """The whole page down, as wide as the window (the boxes' table scrolls on a desktop)."""
    width = page.viewport_size["width"]
    height = await page.evaluate("document.documentElement.scrollHeight")
    clip = {"x": 0, "y": 0, "width": width, "height": height}
    await page.screenshot(path=ARTIFACTS / name, full_page=True, clip=clip)


async def _tour(pw_browser: Any, url: str, rig: Rig, screen: str, printed: dict[str, Any]) -> None:
    """Log in, see the box, find the check among the orders, follow it to its fiscal data."""
    expect = playwright_api.expect
    viewport, scale = SCREENS[screen]
    context = await pw_browser.new_context(
        viewport=viewport, locale="ru-RU", device_scale_factor=scale
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        await page.goto(url + "/")
        await expect(page).to_have_url(re.compile(r"/login\?next=/$"))
        await page.get_by_label("Пароль").fill(PASSWORD)
        await page.get_by_role("button", name="Войти").click()
        box = page.locator("#box-box-a")
        await expect(box.locator(".pill")).to_have_text("в сети")
        await expect(box.locator(".register")).to_have_text("подключена")
        [check] = rig.portal.checks.values()
        await expect(box).to_contain_text(check.link_params["FN_NUMBER"])  # its telemetry
        await _shot(page, f"{screen}-1-boxes.png")

        key = f"check|{rig.portal.domain}|{check.id}"
        await page.get_by_role("link", name="Заказы").first.click()
        await page.get_by_label("Коннектор").select_option("bitrix24")
        await page.get_by_role("button", name="Показать").click()
        await expect(page.locator("#orders tbody tr")).to_have_count(1)
        await _shot(page, f"{screen}-2-orders.png")

        await page.get_by_role("link", name=key).click()
        await expect(page.locator("#order-state")).to_have_text("done")
        details = await page.locator("#crm-details").evaluate(DL_AS_DICT)
        assert details["portal"] == rig.portal.url
        assert details["check_id"] == str(check.id)
        assert details["check_type"] == "sell"
        assert details["cashbox_id"] == str(rig.cashbox_id)
        await expect(page.locator("#job-uuid")).to_have_text(f"box-a · {check.external_uuid}")
        fiscal = await page.locator("#fiscal").evaluate(DL_AS_DICT)
        assert fiscal["fiscalDocumentNumber"] == str(printed["number"])
        assert fiscal["fiscalDocumentSign"] == str(printed["fiscal_sign"])
        # `check.apply` through the write-back outbox, under the install's name.
        await expect(page.locator(".writeback")).to_contain_text("delivered на shop, попыток: 1")
        await _shot(page, f"{screen}-3-order.png")
        assert errors == []
    finally:
        await context.close()


async def test_a_bitrix24_sell_is_followed_on_the_fleet_page(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page_port = free_port()
    web = f"web: {{listen: 127.0.0.1:{page_port}, password_hash: '{PASSWORD_HASH}'}}\n"
    async with bitrix24_rig(tmp_path, broker, pki, hub_extra=web) as rig:
        # The box started before the hub: started again, its first telemetry reaches the page.
        await asyncio.to_thread(rig.box.stop)
        await asyncio.to_thread(rig.box.start)
        check = rig.sell()
        await rig.portal.print_check(check)
        await _until(lambda: check.status == "Y")
        [printed] = receipts(rig.box)
        assert check.link_params["FISCAL_DOC_NUMBER"] == str(printed["number"])

        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            try:
                for screen in SCREENS:
                    await _tour(browser, f"http://127.0.0.1:{page_port}", rig, screen, printed)
            finally:
                await browser.close()
