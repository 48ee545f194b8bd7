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

from gateway.atol.names import NameMapping
from gateway.domain import fiscal
from gateway.domain.errors import OutcomeUnproven
from gateway.engine import supervisor as supervisor_mod
from gateway.engine import worker as worker_mod
from gateway.journal import JobState
from gateway.registers.checkbox import payload as payload_mod
from gateway.registers.checkbox.driver import CheckboxRegister
from gateway.registers.cloud.http import CredentialsRejected
from tests.fakes import checkbox as fake_mod
from tests.fakes.checkbox import FakeCheckbox, serve
from tests.support.box import Box, running_box

WAIT_S = 30.0

UA_MAPPING = NameMapping(
    payment_types={"Готівка": "cash", "Картка": "electronically", "Передплата": "prepaid"},
    vat={"ПДВ 20 %": "vat20", "ПДВ 7 %": "vat7", "без ПДВ": "none"},
)


@dataclass(kw_only=True)
class CloudBox(Box[CheckboxRegister]):
    fake: FakeCheckbox
    url: str
    events: list[tuple[str, dict[str, object]]] = field(default_factory=list)

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
        events: list[tuple[str, dict[str, object]]] = []
        async with running_box(
            tmp_path,
            box_type=CloudBox,
            register=make_register(url, events, **kw),
            mapping=UA_MAPPING,
            supervisor_journal=False,
            wait_connected=False,
            fake=fake,
            url=url,
            events=events,
        ) as box:
            yield box


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
        # A non-UUID job id maps to a stable UUID5 in this register's namespace.
        assert receipt["id"] == fiscal_receipt_id("job-1")
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


def fiscal_receipt_id(job: str, fiscal_number: str = fake_mod.FISCAL_NUMBER) -> str:
    return payload_mod.receipt_id(job, payload_mod.register_namespace(fiscal_number))


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


# --- fiscal truth: ids per register, contents compared before adopting ---------------------


def cb_receipt(
    name: str,
    kopecks: int,
    request_id: str,
    *,
    kind: fiscal.ReceiptType = fiscal.ReceiptType.SELL,
    pay: fiscal.PaymentType = fiscal.PaymentType.CASH,
    **extra: Any,
) -> fiscal.Receipt:
    return fiscal.Receipt(
        kind,
        None,
        (fiscal.Item(name, kopecks, 1_000_000, kopecks, fiscal.Vat.VAT20),),
        (fiscal.Payment(pay, kopecks),),
        request_id=request_id,
        **extra,
    )


async def test_the_same_job_id_on_two_registers_makes_two_receipts(tmp_path: Path) -> None:
    fake = FakeCheckbox()
    async with serve(fake) as url:
        first = make_register(url, [])
        second = make_register(url, [], license_key=fake_mod.LICENSE_KEY_2)
        for reg in (first, second):
            await reg.connect()
            await reg.open_shift()
        milk = await first.print_receipt(cb_receipt("Молоко", 9250, "order-1"))
        laptop = await second.print_receipt(cb_receipt("Ноутбук", 1_999_900, "order-1"))
        assert milk.total == 9250
        assert laptop.total == 1_999_900  # its own receipt, not the other register's milk
        assert sorted(r["total_sum"] for r in fake.receipts.values()) == [9250, 1_999_900]
        assert laptop.registration_number == fake_mod.FISCAL_NUMBER_2
        # Each register finds its own receipt by the same job id.
        found = await second.find_receipt("order-1")
        assert found is not None
        assert found.total == 1_999_900
        await first.close()
        await second.close()


async def test_an_existing_id_with_other_contents_is_never_adopted(tmp_path: Path) -> None:
    fake = FakeCheckbox()
    async with serve(fake) as url:
        reg = make_register(url, [])
        await reg.connect()
        await reg.open_shift()
        uuid = "7a1e0b52-0000-4000-8000-0000000000aa"  # a CRM reused its uuid for another sale
        await reg.print_receipt(cb_receipt("Молоко", 9250, uuid))
        other = cb_receipt("Ноутбук", 1_999_900, uuid)
        with pytest.raises(OutcomeUnproven) as err:
            await reg.print_receipt(other)
        assert "19999.00" in err.value.message
        assert "92.50" in err.value.message
        with pytest.raises(OutcomeUnproven):
            await reg.find_receipt(uuid, expected=other)
        refund = cb_receipt("Молоко", 9250, uuid, kind=fiscal.ReceiptType.SELL_RETURN)
        with pytest.raises(OutcomeUnproven):
            await reg.print_receipt(refund)
        by_card = cb_receipt("Молоко", 9250, uuid, pay=fiscal.PaymentType.ELECTRONICALLY)
        with pytest.raises(OutcomeUnproven):
            await reg.print_receipt(by_card)
        same = await reg.print_receipt(cb_receipt("Молоко", 9250, uuid))
        assert same.total == 9250  # the same contents: it is ours, adopted
        assert len(fake.receipts) == 1
        await reg.close()


async def test_an_id_taken_on_another_register_is_never_adopted(tmp_path: Path) -> None:
    fake = FakeCheckbox()
    async with serve(fake) as url:
        other = make_register(url, [], license_key=fake_mod.LICENSE_KEY_2)
        reg = make_register(url, [])
        for r in (other, reg):
            await r.connect()
            await r.open_shift()
        uuid = "7a1e0b52-0000-4000-8000-0000000000bb"
        milk = cb_receipt("Молоко", 9250, uuid)
        await other.print_receipt(milk)
        # Same contents, but made by another register: not this register's receipt.
        with pytest.raises(OutcomeUnproven) as err:
            await reg.print_receipt(milk)
        assert fake_mod.FISCAL_NUMBER_2 in err.value.message
        with pytest.raises(OutcomeUnproven):
            await reg.find_receipt(uuid, expected=milk)
        assert len(fake.receipts) == 1
        await other.close()
        await reg.close()


async def test_recovery_finds_a_receipt_made_under_the_old_shared_namespace(
    tmp_path: Path,
) -> None:
    fake = FakeCheckbox()
    async with serve(fake) as url:
        reg = make_register(url, [])
        await reg.connect()
        await reg.open_shift()
        receipt = cb_receipt("Сир", 9900, "job-9/1")
        # A receipt sent by an older release, whose ids were not per register.
        old_id = payload_mod.legacy_receipt_id("job-9/1")
        body = payload_mod.sell_body(receipt, receipt_uuid=old_id, tax_codes={fiscal.Vat.VAT20: 1})
        await reg._call("POST", "receipts/sell", body=body)
        found = await reg.find_receipt("job-9/1", expected=receipt)
        assert found is not None
        assert found.extra["receiptId"] == old_id
        assert await reg.find_receipt("job-10/1", expected=receipt) is None
        await reg.close()


async def test_cash_in_and_out_are_service_receipts_made_once(tmp_path: Path) -> None:
    fake = FakeCheckbox()
    async with serve(fake) as url:
        reg = make_register(url, [])
        await reg.connect()
        await reg.open_shift()
        put = await reg.cash_operation(fiscal.CashDirection.IN, 50_000, request_id="cash-1")
        again = await reg.cash_operation(fiscal.CashDirection.IN, 50_000, request_id="cash-1")
        took = await reg.cash_operation(fiscal.CashDirection.OUT, 20_000, request_id="cash-2")
        assert fake.service_posts == 3
        service = [r for r in fake.receipts.values() if r["type"].startswith("SERVICE")]
        assert [(r["type"], r["payments"]) for r in service] == [
            ("SERVICE_IN", [{"type": "CASH", "value": 50_000, "label": "Готівка"}]),
            ("SERVICE_OUT", [{"type": "CASH", "value": -20_000, "label": "Готівка"}]),
        ]
        assert put.extra["fiscalCode"] == service[0]["fiscal_code"] == again.extra["fiscalCode"]
        assert took.extra["fiscalCode"] == service[1]["fiscal_code"]
        assert put.document_number == service[0]["serial"]
        # The same id asked to take cash out instead: another operation, never adopted.
        with pytest.raises(OutcomeUnproven):
            await reg.cash_operation(fiscal.CashDirection.OUT, 50_000, request_id="cash-1")
        totals = await reg.shift_totals()
        assert (totals.cash_in.sum, totals.cash_out.sum) == (50_000, 20_000)
        assert totals.cash_drawer == 30_000
        await reg.close()


async def test_shift_totals_from_the_x_report(tmp_path: Path) -> None:
    fake = FakeCheckbox()
    async with serve(fake) as url:
        reg = make_register(url, [])
        await reg.connect()
        closed = await reg.shift_totals()
        assert set(closed.receipts) == set(fiscal.ReceiptType)
        assert all(t.count == 0 for t in closed.receipts.values())
        await reg.open_shift()
        await reg.print_receipt(cb_receipt("Хліб", 2500, "t-1"))
        await reg.print_receipt(
            cb_receipt("Сир", 9900, "t-2", pay=fiscal.PaymentType.ELECTRONICALLY)
        )
        await reg.print_receipt(
            cb_receipt("Хліб", 2500, "t-3", kind=fiscal.ReceiptType.SELL_RETURN)
        )
        totals = await reg.shift_totals()
        assert set(totals.receipts) == set(fiscal.ReceiptType)
        sell = totals.receipts[fiscal.ReceiptType.SELL]
        assert (sell.count, sell.sum) == (2, 12_400)
        assert sell.payments == {
            fiscal.PaymentType.CASH: 2500,
            fiscal.PaymentType.ELECTRONICALLY: 9900,
        }
        back = totals.receipts[fiscal.ReceiptType.SELL_RETURN]
        assert (back.count, back.sum, back.payments) == (1, 2500, {fiscal.PaymentType.CASH: 2500})
        assert totals.receipts[fiscal.ReceiptType.BUY].count == 0
        assert totals.cash_drawer == 0
        assert totals.shift_number == fake.shift["serial"] if fake.shift else False
        await reg.close()


async def test_contact_and_cashier_reach_the_receipt_unchanged(tmp_path: Path) -> None:
    carries = CheckboxRegister.CARRIES
    assert carries == {"clientInfo.emailOrPhone", "electronically", "operator"}
    fake = FakeCheckbox()
    async with serve(fake) as url:
        reg = make_register(url, [])
        await reg.connect()
        await reg.open_shift()
        name = "Кава «Ранок» 250 г — зерно, 100% арабіка ₴"
        cashier = fiscal.Operator("Ґалина Їжакевич")
        await reg.print_receipt(
            cb_receipt(
                name,
                3000,
                "c-1",
                client_contact="buyer@example.com",
                electronically=True,
                operator=cashier,
            )
        )
        await reg.print_receipt(cb_receipt("Чай", 1500, "c-2", client_contact="+380501234567"))
        first, second = fake.receipts.values()
        assert first["delivery"] == {"emails": ["buyer@example.com"]}
        assert first["cashier_name"] == "Ґалина Їжакевич"
        assert first["goods"][0]["good"]["name"] == name
        assert second["delivery"] == {"phone": "380501234567"}  # [CHECKBOX] ^380\d{9}$
        with pytest.raises(payload_mod.UnmappedName) as err:
            await reg.print_receipt(cb_receipt("Чай", 1500, "c-3", client_contact="+79991234567"))
        assert "+79991234567" in err.value.message
        assert len(fake.receipts) == 2
        await reg.close()
