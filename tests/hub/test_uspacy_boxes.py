"""Uspacy end to end: a real hub process (SQLite), real Mosquitto under the ACL, two real
boxes (the daemon on its emulator), two fake portals, each routed to its own box."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.hub.connectors.uspacy.client import UspacyClient
from gateway.hub.connectors.uspacy.install import install
from gateway.hub.store import Store
from tests.fakes.uspacy import FakeUspacy
from tests.hub.support import HubProcess, OfficeKey, printed_names, signed_box
from tests.support.broker import Broker, Pki
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(300)

SECRET = "end-to-end-hook-secret"


@dataclass
class Rig:
    hub: HubProcess
    boxes: dict[str, DaemonProcess]
    portals: dict[str, FakeUspacy]


def portal_yaml(key: str, fake: FakeUspacy) -> str:
    return (
        f"    - {{key: {key}, url: '{fake.url}', client_id: {fake.client_id},\n"
        f"       client_secret: {fake.client_secret}, webhook_secret: {SECRET},\n"
        "       trigger_stage: 12, done_stage: 13, receipt_field: fiscal_receipt_url,\n"
        "       taxes: {'20': vat20, none: none}}\n"
    )


async def until(check: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


@pytest.fixture
async def rig(tmp_path: Path, broker: Broker, pki: Pki) -> AsyncIterator[Rig]:
    key = OfficeKey.make(tmp_path / "office-ed25519.pem")
    boxes = {b: signed_box(tmp_path / "boxes", b, broker, pki, key) for b in ("box-a", "box-b")}
    await asyncio.gather(*(asyncio.to_thread(b.start) for b in boxes.values()))
    database = f"sqlite:///{tmp_path / 'hub' / 'hub.sqlite3'}"
    async with FakeUspacy() as acme, FakeUspacy() as beta:
        portals = {"acme": acme, "beta": beta}
        extra = "uspacy:\n  hint_lease_s: 2\n  portals:\n" + "".join(
            portal_yaml(k, f) for k, f in portals.items()
        )
        atol = {"unused-atol-group": "box-a"}  # HubProcess needs one ATOL Online route
        hub = HubProcess(tmp_path / "hub", "hub-1", database, broker, pki, key, atol, extra=extra)
        await asyncio.to_thread(hub.start)
        try:
            # acme through the command a shop owner runs, beta through the same code in-process.
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "hub", "uspacy", "install",
                "--config", str(hub.home / "hub-1.yaml"), "acme", "box-a",
                "--trigger", "Оплачено", "--done", "13",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            async with asyncio.timeout(90):
                out, _ = await proc.communicate()
            assert proc.returncode == 0, out.decode()
            assert "trigger_stage: 12\ndone_stage: 13\n" in out.decode()
            store = await Store.open(database)
            try:
                for name, box_id in (("beta", "box-b"),):
                    fake = portals[name]
                    client = UspacyClient(fake.url, fake.client_id, fake.client_secret)
                    try:
                        done = await install(
                            client, store, key=name, box=box_id,
                            webhook_url=f"{hub.url}/uspacy/{name}/{SECRET}",
                            trigger="paid", done="receipt", receipt_field="fiscal_receipt_url",
                        )  # fmt: skip
                    finally:
                        await client.close()
                    assert done.confirmed
            finally:
                await store.close()
            yield Rig(hub, boxes, portals)
        finally:
            hub.stop()
            for box in boxes.values():
                box.stop()
            assert hub.tracebacks() == []


def tea(name: str, price: float, **extra: Any) -> dict[str, Any]:
    return {"id": 1, "title": name, "price": price, "quantity": 1, "tax_rate": 20,
            "is_tax_included": 1, **extra}  # fmt: skip


async def test_each_portal_prints_on_its_box_once_and_gets_its_link(rig: Rig) -> None:
    acme, beta = rig.portals["acme"], rig.portals["beta"]
    acme.add_deal(701, 11, [tea("Чай acme-701", 45.5), tea("Доставка", 30, id=2, tax_rate=None)])
    beta.add_deal(702, 11, [tea("Кава beta-702", 120, discount_type="relative", discount_value=10)])
    await acme.move(701, 12)
    await acme.move(701, 12)  # a repeated event
    await beta.move(702, 12)
    await until(lambda: acme.comments_on(701) != [] and beta.comments_on(702) != [], "comments")

    assert printed_names(rig.boxes["box-a"]) == ["Чай acme-701", "Доставка"]
    assert printed_names(rig.boxes["box-b"]) == ["Кава beta-702"]
    (receipt,) = [d for d in rig.boxes["box-b"].tape() if d["type"] == "sell"]
    # 120.00 less 10 %: the discount and the tax group reached the register (in kopiyky).
    assert [(i["name"], i["sum"], i["vat"]) for i in receipt["items"]] == [
        ("Кава beta-702", 10800, "vat20")
    ]
    assert receipt["payments"] == [{"type": "electronically", "sum": 10800}]
    for fake, deal_id in ((acme, 701), (beta, 702)):
        deal = fake.deals[deal_id]
        assert deal["kanban_stage_id"] == 13
        assert deal["fiscal_receipt_url"]
        (comment,) = fake.comments_on(deal_id)
        assert comment.startswith("Фіскальний чек № ")
        assert deal["fiscal_receipt_url"] in comment
    # The move to "receipt done" and the repeat printed nothing more.
    await asyncio.sleep(2)
    assert len([d for d in rig.boxes["box-a"].tape() if d["type"] == "sell"]) == 1


async def test_a_refused_deal_prints_nothing_on_any_box(rig: Rig) -> None:
    acme = rig.portals["acme"]
    acme.add_deal(703, 11, [tea("Вино", 300, tax_rate=7)])  # this shop maps no 7 %
    await acme.move(703, 12)
    await until(lambda: acme.comments_on(703) != [], "the refusal")
    assert "tax rate 7 % is not mapped" in acme.comments_on(703)[0]
    await asyncio.sleep(1)
    assert all(printed_names(b) == [] for b in rig.boxes.values())


async def test_a_hub_killed_between_the_200_and_the_read_prints_the_deal_once_after(
    rig: Rig,
) -> None:
    acme = rig.portals["acme"]
    acme.add_deal(704, 11, [tea("Чай acme-704", 45.5)])
    acme.fail("/crm/v1/entities/deals/704", 503, times=100000)  # the re-read cannot succeed
    await acme.move(704, 12)  # answered 200: the hint is stored
    await until(lambda: ("GET", "/crm/v1/entities/deals/704", 503) in acme.calls, "a re-read")
    await asyncio.to_thread(rig.hub.kill)  # SIGKILL before the deal could be read
    acme.faults.clear()
    await asyncio.to_thread(rig.hub.start)  # the stored hint, after its lease, brings it back
    await until(lambda: acme.comments_on(704) != [], "the receipt after the restart")
    await asyncio.sleep(2)
    assert printed_names(rig.boxes["box-a"]) == ["Чай acme-704"]
    assert len(acme.comments_on(704)) == 1
    assert acme.deals[704]["kanban_stage_id"] == 13
