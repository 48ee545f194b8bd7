"""The Вчасно.Каса driver behind the real worker and journal, against the fake API.

That API has no idempotency key: these tests prove the N0 rule (docs/ukraine.md) never
sells twice — the fake's list of documents is the paper tape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.atol.names import NameMapping
from gateway.domain import fiscal
from gateway.domain.errors import OutcomeUnproven, RegisterRefused
from gateway.engine import supervisor as supervisor_mod
from gateway.engine import worker as worker_mod
from gateway.journal import JobState
from gateway.registers.cloud.http import CredentialsRejected
from gateway.registers.vchasno.driver import VchasnoRegister
from tests.fakes import vchasno as fake_mod
from tests.fakes.vchasno import FakeVchasno, serve
from tests.support import box as support_box

WAIT_S = 30.0
MAPPING = NameMapping(
    payment_types={"Готівка": "cash", "Картка": "electronically"},
    vat={"ПДВ 20 %": "vat20", "ПДВ 7 %": "vat7", "без ПДВ": "none"},
)


@dataclass(kw_only=True)
class Box(support_box.Box[VchasnoRegister]):
    fake: FakeVchasno
    events: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    def sold(self, name: str) -> int:
        return sum(1 for d in self.fake.receipts() for r in d["rows"] if r["name"] == name)


def sale(name: str, kopecks: int, *, kind: str = "sell", pay: str = "Готівка") -> dict[str, Any]:
    price = kopecks / 100
    return {
        "type": kind,
        "items": [
            {
                "type": "position",
                "name": name,
                "price": price,
                "quantity": 0.5,
                "amount": round(price * 0.5 - 0.1, 2),
                "tax": {"type": "ПДВ 7 %"},
            }
        ],
        "payments": [
            {"type": pay, "sum": round(price * 0.5 - 0.1, 2) + (5 if pay == "Готівка" else 0)}
        ],
    }


@pytest.fixture(autouse=True)
def fast_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_mod, "PAUSE_POLL_INTERVAL_S", 0.05)
    monkeypatch.setattr(worker_mod, "CONNECT_WAIT_S", 0.1)
    monkeypatch.setattr(supervisor_mod, "BACKOFF_MIN_S", 0.01)
    monkeypatch.setattr(supervisor_mod, "BACKOFF_MAX_S", 0.05)
    monkeypatch.setattr(supervisor_mod, "WATCH_INTERVAL_S", 0.05)


@contextlib.asynccontextmanager
async def vchasno_box(tmp_path: Path, fake: FakeVchasno | None = None) -> AsyncIterator[Box]:
    fake = fake or FakeVchasno()
    async with serve(fake) as url:
        events: list[tuple[str, dict[str, object]]] = []
        register = VchasnoRegister(
            url,
            token=fake_mod.TOKEN,
            request_timeout_s=0.5,
            on_event=lambda name, data: events.append((name, data)),
        )
        async with support_box.running_box(
            tmp_path,
            box_type=Box,
            register=register,
            mapping=MAPPING,
            supervisor_journal=False,
            wait_connected=False,
            fake=fake,
            events=events,
        ) as box:
            yield box


async def test_full_shift_sale_return_and_z_report(tmp_path: Path) -> None:
    async with vchasno_box(tmp_path) as box:
        await box.submit("s1", {"type": "openShift"})
        await box.submit("s2", sale("Яблука", 4000))
        await box.submit("s3", sale("Яблука", 4000, kind="sellReturn", pay="Картка"))
        await box.submit("s4", {"type": "closeShift"})
        jobs = [await box.wait_state(f"s{i}", JobState.DONE, JobState.FAILED) for i in range(1, 5)]
        assert [j.state for j in jobs] == [JobState.DONE] * 4, [j.task_results for j in jobs]
        assert [d["doctype"] for d in box.fake.docs] == [0, 1, 2, 11]
        sold = box.fake.docs[1]
        assert sold["sum"] == 19.9  # 40.00 × 0.5 − 0.10 discount
        assert sold["rows"][0] == {
            "code": "Яблука",
            "name": "Яблука",
            "cnt": 0.5,
            "price": 40.0,
            "disc": 0.1,
            "taxgrp": 4,  # [VCHASNO] 4 = ПДВ 7 %
        }
        assert sold["tag"] == "s2"
        params = jobs[1].task_results[0].result["fiscalParams"]
        assert params["fiscalDocumentSign"] == sold["doccode"]
        assert params["fiscalDocumentNumber"] == sold["docno"]
        assert params["receiptUrl"] == sold["qr"]
        assert not box.fake.shift_open
        assert box.fake.last_z_no == 1


async def test_answer_lost_after_the_sale_was_made_recovers_without_a_second_sale(
    tmp_path: Path,
) -> None:
    async with vchasno_box(tmp_path) as box:
        await box.submit("open", {"type": "openShift"})
        await box.wait_state("open", JobState.DONE)
        box.fake.faults.hang_answers = 1
        await box.submit("lost", sale("Груші", 5000))
        job = await box.wait_state("lost", JobState.DONE, JobState.FAILED, JobState.BLOCKED)
        assert job.state is JobState.DONE, job.task_results
        assert box.sold("Груші") == 1
        result = job.task_results[0].result
        assert result["warnings"] == {"recovered": True}
        assert result["fiscalParams"]["fiscalDocumentNumber"] == box.fake.docs[-1]["docno"]


async def test_a_failure_before_the_sale_was_made_sends_it_again_once(tmp_path: Path) -> None:
    async with vchasno_box(tmp_path) as box:
        await box.submit("open", {"type": "openShift"})
        await box.wait_state("open", JobState.DONE)
        box.fake.faults.fail_before = 1  # a 502: the outcome is unknown to the box
        await box.submit("again", sale("Сливи", 2000))
        job = await box.wait_state("again", JobState.DONE, JobState.FAILED, JobState.BLOCKED)
        assert job.state is JobState.DONE, job.task_results
        assert box.sold("Сливи") == 1
        assert box.fake.calls.count(1) == 2  # sent again only after N == N0 proved nothing was made


async def test_another_document_in_between_blocks_instead_of_guessing(tmp_path: Path) -> None:
    async with vchasno_box(tmp_path) as box:
        await box.submit("open", {"type": "openShift"})
        await box.wait_state("open", JobState.DONE)
        box.fake.faults.hang_answers = 1
        box.fake.faults.last_doc_has_kind = False  # the answer cannot prove what was made
        await box.submit("unsure", sale("Кава", 8000))
        job = await box.wait_state("unsure", JobState.BLOCKED, JobState.DONE, JobState.FAILED)
        assert job.state is JobState.BLOCKED
        assert box.sold("Кава") == 1  # made once; a person confirms it on the status page


async def test_offline_documents_and_return_online(tmp_path: Path) -> None:
    async with vchasno_box(tmp_path) as box:
        box.fake.faults.online = False
        await box.submit("off", sale("Вода", 1000))
        job = await box.wait_state("off", JobState.DONE, JobState.FAILED)
        assert job.state is JobState.DONE
        assert job.task_results[0].result["fiscalParams"]["offline"] == "true"
        assert "register_offline" in [n for n, _ in box.events]
        fn = await box.register.fn_status()
        assert fiscal.FnWarning.OFD_TIMEOUT in fn.warnings
        box.fake.faults.online = True
        assert (await box.register.ofd_status()).unsent_count == 0
        online = [d for n, d in box.events if n == "register_online"]
        assert online
        assert online[0]["backlog"] == 1


async def test_invalid_key_and_token_are_clear_errors(tmp_path: Path) -> None:
    fake = FakeVchasno()
    fake.faults.key_ok = False
    async with serve(fake) as url:
        events: list[tuple[str, dict[str, object]]] = []
        reg = VchasnoRegister(
            url, token=fake_mod.TOKEN, on_event=lambda n, d: events.append((n, d))
        )
        with pytest.raises(CredentialsRejected) as err:
            await reg.connect()
        assert err.value.which == "cashier_key"
        assert "ЕЦП" in err.value.message
        await reg.close()
        bad = VchasnoRegister(url, token="wrong", on_event=lambda n, d: events.append((n, d)))
        with pytest.raises(CredentialsRejected) as err:
            await bad.connect()
        assert err.value.which == "token"
        assert [n for n, _ in events] == ["register_credentials_rejected"] * 2
        assert "wrong" not in json.dumps([d for _, d in events], ensure_ascii=False)
        await bad.close()


# --- fiscal truth: only a definite answer is "no documents" ---------------------------------


async def test_a_rate_limited_last_document_is_never_read_as_none(tmp_path: Path) -> None:
    async with vchasno_box(tmp_path) as box:
        await box.submit("open", {"type": "openShift"})
        await box.wait_state("open", JobState.DONE)
        # The N0 read before the sale is refused with a 429 ...
        box.fake.faults.busy_last_doc = 1
        box.fake.faults.hang_answers = 1
        await box.submit("busy", sale("Інжир", 6000))
        async with asyncio.timeout(WAIT_S):
            while len(box.fake.docs) < 2:
                await asyncio.sleep(0.01)
        # ... and so is the first read after the sale's answer was lost.
        box.fake.faults.busy_last_doc = 1
        job = await box.wait_state("busy", JobState.DONE, JobState.FAILED, JobState.BLOCKED)
        assert job.state is JobState.DONE, job.task_results
        assert box.sold("Інжир") == 1
        assert job.task_results[0].result["warnings"] == {"recovered": True}


async def test_last_document_refusals_are_transient_and_a_fresh_device_has_none(
    tmp_path: Path,
) -> None:
    fake = FakeVchasno()
    async with serve(fake) as url:
        reg = VchasnoRegister(url, token=fake_mod.TOKEN, request_timeout_s=0.5)
        await reg.connect()
        # No documents yet: the status proves it, whatever task 22 answers.
        assert (await reg.fn_status()).last_document_number == 0
        await reg.open_shift()
        fake.faults.busy_last_doc = 1
        with pytest.raises(RegisterRefused) as err:
            await reg.fn_status()
        assert err.value.transient
        assert (await reg.fn_status()).last_document_number == 1
        fake.docs.clear()  # the device forgot its documents but the shift is open: not "none"
        with pytest.raises(RegisterRefused) as err:
            await reg.fn_status()
        assert err.value.transient
        await reg.close()


async def test_cash_in_out_and_shift_totals(tmp_path: Path) -> None:
    fake = FakeVchasno()
    async with serve(fake) as url:
        reg = VchasnoRegister(url, token=fake_mod.TOKEN, request_timeout_s=0.5)
        await reg.connect()
        await reg.open_shift()
        put = await reg.cash_operation(fiscal.CashDirection.IN, 50_000)
        took = await reg.cash_operation(
            fiscal.CashDirection.OUT, 12_345, fiscal.Operator("Ґалина Їжакевич")
        )
        assert [(d["doctype"], d["cash"], d["cashier"]) for d in fake.docs[1:]] == [
            (3, {"type": 0, "sum": 500.0}, None),
            (4, {"type": 0, "sum": 123.45}, "Ґалина Їжакевич"),
        ]
        assert put.document_number == 2
        assert took.extra["fiscalCode"] == fake.docs[2]["doccode"]
        r = fiscal.Receipt(
            fiscal.ReceiptType.SELL,
            None,
            (fiscal.Item("Мед", 10_000, 1_000_000, 10_000, fiscal.Vat.VAT20),),
            (
                fiscal.Payment(fiscal.PaymentType.CASH, 3_000),
                fiscal.Payment(fiscal.PaymentType.ELECTRONICALLY, 7_000),
            ),
        )
        await reg.print_receipt(r)
        totals = await reg.shift_totals()
        assert set(totals.receipts) == set(fiscal.ReceiptType)
        sell = totals.receipts[fiscal.ReceiptType.SELL]
        assert (sell.count, sell.sum) == (1, 10_000)
        assert sell.payments == {
            fiscal.PaymentType.CASH: 3_000,
            fiscal.PaymentType.ELECTRONICALLY: 7_000,
        }
        assert (totals.cash_in.sum, totals.cash_out.sum) == (50_000, 12_345)
        assert totals.cash_drawer == 50_000 - 12_345 + 3_000
        await reg.close()


async def test_a_lost_cash_in_answer_is_proven_by_the_last_document(tmp_path: Path) -> None:
    fake = FakeVchasno()
    async with serve(fake) as url:
        reg = VchasnoRegister(url, token=fake_mod.TOKEN, request_timeout_s=0.3)
        await reg.connect()
        await reg.open_shift()
        fake.faults.hang_answers = 1
        res = await reg.cash_operation(fiscal.CashDirection.IN, 10_000)
        assert res.extra["recovered"] == "true"
        assert [d["doctype"] for d in fake.docs].count(3) == 1
        fake.faults.hang_answers = 1
        fake.faults.last_doc_has_kind = False
        with pytest.raises(OutcomeUnproven):
            await reg.cash_operation(fiscal.CashDirection.IN, 10_000)
        assert [d["doctype"] for d in fake.docs].count(3) == 2  # made once, never resent
        await reg.close()


async def test_contact_and_cashier_reach_the_device_unchanged(tmp_path: Path) -> None:
    carries = VchasnoRegister.CARRIES
    assert carries == {"clientInfo.emailOrPhone", "operator"}
    fake = FakeVchasno()
    async with serve(fake) as url:
        reg = VchasnoRegister(url, token=fake_mod.TOKEN, request_timeout_s=0.5)
        await reg.connect()
        await reg.open_shift()
        name = "Кава «Ранок» 250 г — зерно, 100% арабіка ₴"
        for contact in ("buyer@example.com", "+380501234567"):
            await reg.print_receipt(
                fiscal.Receipt(
                    fiscal.ReceiptType.SELL,
                    None,
                    (fiscal.Item(name, 3000, 1_000_000, 3000, fiscal.Vat.VAT20),),
                    (fiscal.Payment(fiscal.PaymentType.CASH, 3000),),
                    operator=fiscal.Operator("Ґалина Їжакевич"),
                    client_contact=contact,
                )
            )
        first, second = fake.receipts()
        assert first["userinfo"] == {"email": "buyer@example.com"}
        assert second["userinfo"] == {"phone": "+380501234567"}
        assert first["rows"][0]["name"] == name
        assert first["cashier"] == "Ґалина Їжакевич"
        await reg.close()


async def test_configured_tax_groups_reach_the_rows(tmp_path: Path) -> None:
    fake = FakeVchasno()
    async with serve(fake) as url:
        reg = VchasnoRegister(
            url,
            token=fake_mod.TOKEN,
            tax_groups={fiscal.Vat.VAT20: 3, fiscal.Vat.NONE: 7},
        )
        await reg.connect()
        await reg.open_shift()
        items = (
            fiscal.Item("Пиво", 5000, 1_000_000, 5000, fiscal.Vat.VAT20),
            fiscal.Item("Хліб", 2000, 1_000_000, 2000, fiscal.Vat.NONE),
        )
        await reg.print_receipt(
            fiscal.Receipt(
                fiscal.ReceiptType.SELL,
                None,
                items,
                (fiscal.Payment(fiscal.PaymentType.CASH, 7000),),
            )
        )
        assert [row["taxgrp"] for row in fake.receipts()[0]["rows"]] == [3, 7]
        await reg.close()
