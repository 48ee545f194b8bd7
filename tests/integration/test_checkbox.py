"""The Checkbox driver behind the real worker and journal, against the fake Checkbox API.

The fake's list of accepted receipts is the proof: a receipt the worker recovered after a
lost answer must be on it exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway import fiscal
from gateway import supervisor as supervisor_mod
from gateway import worker as worker_mod
from gateway.journal import JobRecord, JobState, Journal
from gateway.registers.checkbox.driver import CheckboxRegister
from gateway.registers.cloud_http import CredentialsRejected
from gateway.supervisor import RegisterSupervisor
from gateway.tasks import NameMapping, parse_request
from gateway.worker import ShiftPolicy, Worker
from tests.fakes import checkbox as fake_mod
from tests.fakes.checkbox import FakeCheckbox, serve

WAIT_S = 30.0

UA_MAPPING = NameMapping(
    payment_types={"Готівка": "cash", "Картка": "electronically", "Передплата": "prepaid"},
    vat={"ПДВ 20 %": "vat20", "ПДВ 7 %": "vat7", "без ПДВ": "none"},
)


@dataclass
class CloudBox:
    fake: FakeCheckbox
    url: str
    journal: Journal
    register: CheckboxRegister
    supervisor: RegisterSupervisor
    worker: Worker
    events: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    async def submit(self, uuid: str, *tasks: dict[str, Any]) -> JobRecord:
        parsed = parse_request(json.dumps({"uuid": uuid, "request": list(tasks)}), UA_MAPPING)
        job = await self.journal.submit(uuid, parsed.tasks_json, len(parsed.tasks), source="http")
        self.worker.wake()
        return job

    async def wait_state(self, uuid: str, *states: JobState) -> JobRecord:
        async with asyncio.timeout(WAIT_S):
            while True:
                job = await self.journal.get(uuid)
                if job.state in states:
                    return job
                await asyncio.sleep(0.02)

    def sold(self, rid: str) -> int:
        return sum(1 for r in self.fake.tape() if r["id"] == rid)

    def event_names(self) -> list[str]:
        return [name for name, _ in self.events]


def sale(name: str, kopecks: int, *, kind: str = "sell", pay: str = "Готівка") -> dict[str, Any]:
    price = kopecks / 100
    return {
        "type": kind,
        "items": [
            {
                "type": "position",
                "name": name,
                "price": price,
                "quantity": 2,
                "amount": round(price * 2 - 0.5, 2),  # a 50 kopeck discount
                "tax": {"type": "ПДВ 20 %"},
            },
            {
                "type": "position",
                "name": "Пакет",
                "price": 2.0,
                "quantity": 1,
                "amount": 2.0,
                "tax": {"type": "без ПДВ"},
            },
        ],
        "payments": [{"type": pay, "sum": round(price * 2 - 0.5 + 2.0, 2)}],
    }


@pytest.fixture(autouse=True)
def fast_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_mod, "PAUSE_POLL_INTERVAL_S", 0.05)
    monkeypatch.setattr(worker_mod, "CONNECT_WAIT_S", 0.1)
    monkeypatch.setattr(supervisor_mod, "BACKOFF_MIN_S", 0.01)
    monkeypatch.setattr(supervisor_mod, "BACKOFF_MAX_S", 0.05)
    monkeypatch.setattr(supervisor_mod, "WATCH_INTERVAL_S", 0.05)


def make_register(
    url: str, events: list[tuple[str, dict[str, object]]], **kw: Any
) -> CheckboxRegister:
    args: dict[str, Any] = {
        "license_key": fake_mod.LICENSE_KEY,
        "pin_code": fake_mod.PIN_CODE,
        "on_event": lambda name, data: events.append((name, data)),
        "poll_interval_s": 0.01,
        "request_timeout_s": 2.0,
        "offline_check_interval_s": 0.0,
    }
    args.update(kw)
    return CheckboxRegister(url, **args)


@contextlib.asynccontextmanager
async def cloud_box(
    tmp_path: Path, fake: FakeCheckbox | None = None, **kw: Any
) -> AsyncIterator[CloudBox]:
    fake = fake or FakeCheckbox()
    async with serve(fake) as url:
        journal = await Journal.open(tmp_path / "journal.sqlite3")
        events: list[tuple[str, dict[str, object]]] = []
        register = make_register(url, events, **kw)
        supervisor = RegisterSupervisor(register)
        worker = Worker(
            journal, register, supervisor.connected_event, mapping=UA_MAPPING, policy=ShiftPolicy()
        )
        box = CloudBox(fake, url, journal, register, supervisor, worker, events)
        async with asyncio.TaskGroup() as tg:
            sup_task = tg.create_task(supervisor.run())
            work_task = tg.create_task(worker.run())
            try:
                yield box
            finally:
                work_task.cancel()
                sup_task.cancel()
        await register.close()
        await journal.close()


async def test_full_shift_sell_return_and_z_report(tmp_path: Path) -> None:
    async with cloud_box(tmp_path) as box:
        await box.submit("9b2f7c1e-0000-4000-8000-000000000001", {"type": "openShift"})
        await box.submit("9b2f7c1e-0000-4000-8000-000000000002", sale("Молоко", 4550))
        await box.submit(
            "9b2f7c1e-0000-4000-8000-000000000003",
            sale("Молоко", 4550, kind="sellReturn", pay="Картка"),
        )
        await box.submit("9b2f7c1e-0000-4000-8000-000000000004", {"type": "closeShift"})
        jobs = [
            await box.wait_state(
                f"9b2f7c1e-0000-4000-8000-00000000000{i}", JobState.DONE, JobState.FAILED
            )
            for i in range(1, 5)
        ]
        assert [j.state for j in jobs] == [JobState.DONE] * 4, [j.task_results for j in jobs]
        receipts = list(box.fake.receipts.values())
        # The client's uuid is the Checkbox receipt id: recovery can always ask for it.
        assert [r["id"] for r in receipts] == [jobs[1].uuid, jobs[2].uuid]
        assert [r["type"] for r in receipts] == ["SELL", "RETURN"]
        sell = receipts[0]
        assert sell["total_sum"] == 4550 * 2 - 50 + 200
        assert sell["goods"][0]["good"]["tax"] == [1]
        assert sell["goods"][1]["good"]["tax"] == [3]
        assert sell["goods"][0]["discounts"][0] == {
            "type": "DISCOUNT",
            "mode": "VALUE",
            "value": 50,
            "name": "Знижка",
        }
        assert receipts[1]["payments"] == [{"type": "CASHLESS", "value": sell["total_sum"]}]
        params = jobs[1].task_results[0].result["fiscalParams"]
        assert params["fiscalDocumentSign"] == sell["fiscal_code"]
        assert params["receiptUrl"] == sell["tax_url"]
        assert params["pdfUrl"] == f"{box.url}/receipts/{sell['id']}/pdf"
        assert params["total"] == sell["total_sum"] / 100
        shift = next(iter(box.fake.shifts.values()))
        assert shift["status"] == "CLOSED"
        assert box.fake.shift is None
        z = jobs[3].task_results[0].result["fiscalParams"]
        assert z["fiscalDocumentSign"] == shift["closing_transaction"]["fiscal_code"]


async def test_receipt_opens_the_shift_by_itself_and_text_link_works(tmp_path: Path) -> None:
    async with cloud_box(tmp_path) as box:
        await box.submit("job-1", sale("Хліб", 2500))
        job = await box.wait_state("job-1", JobState.DONE)
        assert box.fake.shift is not None
        assert box.fake.shift["status"] == "OPENED"
        (receipt,) = box.fake.receipts.values()
        # A non-UUID job id maps to a stable UUID5: the same job always gets the same id.
        from gateway.registers.checkbox.payload import receipt_id

        assert receipt["id"] == receipt_id("job-1")
        info = await box.register.shift_info()
        assert info.state is fiscal.ShiftState.OPENED
        assert info.opened_at is not None
        assert job.task_results[0].result["fiscalParams"]["textUrl"].endswith("/text")


async def test_duplicate_retry_is_a_lookup_not_a_second_sale(tmp_path: Path) -> None:
    fake = FakeCheckbox()
    async with serve(fake) as url:
        reg = make_register(url, [])
        await reg.connect()
        await reg.open_shift()
        receipt = fiscal.Receipt(
            fiscal.ReceiptType.SELL,
            None,
            (fiscal.Item("Кава", 3000, 1_000_000, 3000, fiscal.Vat.VAT20),),
            (fiscal.Payment(fiscal.PaymentType.CASH, 3000),),
            request_id="dup-1",
        )
        first = await reg.print_receipt(receipt)
        again = await reg.print_receipt(receipt)  # e.g. a retry after a crash
        assert fake.sell_posts == 2
        assert len(fake.receipts) == 1
        assert first.extra["fiscalCode"] == again.extra["fiscalCode"]
        assert await reg.find_receipt("dup-1") == first
        assert await reg.find_receipt("never-sent") is None
        await reg.close()


async def test_timeout_after_the_server_accepted_recovers_without_a_second_sale(
    tmp_path: Path,
) -> None:
    async with cloud_box(tmp_path, request_timeout_s=0.5) as box:
        await box.submit("warm-up", {"type": "openShift"})
        await box.wait_state("warm-up", JobState.DONE)
        box.fake.faults.hang_sell_answers = 1
        uuid = "5d0c9a7e-1111-4000-8000-00000000abcd"
        await box.submit(uuid, sale("Сир", 9900))
        job = await box.wait_state(uuid, JobState.DONE, JobState.FAILED, JobState.BLOCKED)
        assert job.state is JobState.DONE, job.task_results
        assert box.sold(uuid) == 1
        assert box.fake.sell_posts == 1  # recovered by GET receipts/{id}, never re-posted
        result = job.task_results[0].result
        assert result["warnings"] == {"recovered": True}
        assert (
            result["fiscalParams"]["fiscalDocumentSign"] == box.fake.receipts[uuid]["fiscal_code"]
        )


async def test_failure_before_accepting_sends_the_same_id_again_once(tmp_path: Path) -> None:
    async with cloud_box(tmp_path) as box:
        box.fake.faults.fail_sell_before = 1  # a 502: whether it was accepted is unknown
        uuid = "5d0c9a7e-2222-4000-8000-00000000abcd"
        await box.submit(uuid, sale("Мед", 12000))
        job = await box.wait_state(uuid, JobState.DONE, JobState.FAILED, JobState.BLOCKED)
        assert job.state is JobState.DONE, job.task_results
        assert box.fake.sell_posts == 2
        assert box.sold(uuid) == 1


async def test_expired_token_signs_in_again(tmp_path: Path) -> None:
    async with cloud_box(tmp_path) as box:
        await box.submit("a", {"type": "openShift"})
        await box.wait_state("a", JobState.DONE)
        box.fake.expire_tokens()
        await box.submit("b", sale("Чай", 1500))
        assert (await box.wait_state("b", JobState.DONE, JobState.FAILED)).state is JobState.DONE
        assert box.sold(fiscal_receipt_id("b")) == 1


def fiscal_receipt_id(job: str) -> str:
    from gateway.registers.checkbox.payload import receipt_id

    return receipt_id(job)


async def test_offline_switch_keeps_selling_and_reports_the_backlog(tmp_path: Path) -> None:
    async with cloud_box(tmp_path, tax_wait_s=0.0) as box:
        await box.submit("open", {"type": "openShift"})
        await box.wait_state("open", JobState.DONE)
        assert box.fake.offline_codes  # reserved while online, at connect
        box.fake.faults.tax_online = False
        await box.submit("off-1", sale("Вода", 1200))
        job = await box.wait_state("off-1", JobState.DONE, JobState.FAILED)
        assert job.state is JobState.DONE, job.task_results
        params = job.task_results[0].result["fiscalParams"]
        assert params["offline"] == "true"
        assert params["fiscalCode"].startswith("OFF-")
        assert box.fake.offline_mode
        assert "register_offline" in box.event_names()
        fn = await box.register.fn_status()
        assert fiscal.FnWarning.OFD_TIMEOUT in fn.warnings
        assert (await box.register.ofd_status()).unsent_count == 1
        box.fake.faults.tax_online = True
        ofd = await box.register.ofd_status()  # the next status refresh goes back online
        assert ofd.unsent_count == 0
        assert not box.fake.offline_mode
        online = [data for name, data in box.events if name == "register_online"]
        assert online
        assert online[0]["backlog"] == 1
        assert all(r["is_sent_dps"] for r in box.fake.receipts.values())


async def test_expired_license_is_a_clear_error_and_the_queue_waits(tmp_path: Path) -> None:
    fake = FakeCheckbox()
    fake.faults.license_expired = True
    async with cloud_box(tmp_path, fake) as box:
        await box.submit("lic", sale("Сік", 3300))
        async with asyncio.timeout(WAIT_S):
            while "register_credentials_rejected" not in box.event_names():
                await asyncio.sleep(0.02)
        data = dict(box.events)["register_credentials_rejected"]
        assert data["which"] == "license_key"
        assert "license.expired" in str(data["message"])
        assert "license" in (box.supervisor.last_error or "")
        assert (await box.journal.get("lic")).state is JobState.QUEUED
        assert fake.receipts == {}
        fake.faults.license_expired = False  # the key was renewed
        assert (await box.wait_state("lic", JobState.DONE)).state is JobState.DONE


async def test_expired_cashier_key_refuses_to_connect(tmp_path: Path) -> None:
    fake = FakeCheckbox()
    fake.faults.cashier_key_end = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    events: list[tuple[str, dict[str, object]]] = []
    async with serve(fake) as url:
        reg = make_register(url, events)
        with pytest.raises(CredentialsRejected) as err:
            await reg.connect()
        assert err.value.which == "cashier_key"
        assert "ЕЦП" in err.value.message
        assert events[-1][0] == "register_credentials_rejected"
        await reg.close()


async def test_cashier_key_near_expiry_warns(tmp_path: Path) -> None:
    fake = FakeCheckbox()
    fake.faults.cashier_key_end = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    events: list[tuple[str, dict[str, object]]] = []
    async with serve(fake) as url:
        reg = make_register(url, events)
        await reg.connect()
        assert "cashier_key_expiring" in [n for n, _ in events]
        fn = await reg.fn_status()
        assert fiscal.FnWarning.RESOURCE_EXHAUSTED in fn.warnings
        assert await reg.fn_expiry() == fake.faults.cashier_key_end.date()
        await reg.close()


async def test_unmapped_payment_fails_naming_it_and_sells_nothing(tmp_path: Path) -> None:
    async with cloud_box(tmp_path) as box:
        await box.submit("pre", sale("Торт", 50000, pay="Передплата"))
        job = await box.wait_state("pre", JobState.FAILED, JobState.DONE)
        assert job.state is JobState.FAILED
        assert "'prepaid'" in (job.task_results[0].error_description or "")
        assert box.fake.receipts == {}


async def test_login_and_password_sign_in(tmp_path: Path) -> None:
    fake = FakeCheckbox()
    async with serve(fake) as url:
        reg = make_register(url, [], pin_code=None, login=fake_mod.LOGIN, password="wrong")
        with pytest.raises(CredentialsRejected) as err:
            await reg.connect()
        assert err.value.which == "cashier"
        await reg.close()
        reg = make_register(
            url, [], pin_code=None, login=fake_mod.LOGIN, password=fake_mod.PASSWORD
        )
        await reg.connect()
        assert (await reg.device_info()).serial == fake_mod.FISCAL_NUMBER
        await reg.close()


async def test_shift_is_closed_before_24_hours_and_a_new_one_opened(tmp_path: Path) -> None:
    offset = [dt.timedelta()]
    clock = lambda: dt.datetime.now(dt.UTC) + offset[0]  # noqa: E731 - the register's "now"
    async with cloud_box(tmp_path, now=clock) as box:
        await box.submit("day-1", {"type": "openShift"})
        await box.wait_state("day-1", JobState.DONE)
        offset[0] = dt.timedelta(hours=23, minutes=45)  # within shift.close_before_limit
        await box.submit("late", sale("Кефір", 3000))
        job = await box.wait_state("late", JobState.DONE, JobState.FAILED)
        assert job.state is JobState.DONE, job.task_results
        first, second = box.fake.shifts.values()
        assert first["status"] == "CLOSED"
        assert second["status"] == "OPENED"
        assert box.fake.receipts[fiscal_receipt_id("late")]["shift"]["serial"] == second["serial"]
        events = await box.journal.outbox_pending(limit=100, kinds=["event"])
        names = [json.loads(r.payload_json)["event"] for r in events]
        assert "shift_closed" in names
