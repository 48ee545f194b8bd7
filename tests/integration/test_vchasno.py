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

from gateway import fiscal
from gateway import supervisor as supervisor_mod
from gateway import worker as worker_mod
from gateway.journal import JobRecord, JobState, Journal
from gateway.registers.cloud_http import CredentialsRejected
from gateway.registers.vchasno.driver import VchasnoRegister
from gateway.supervisor import RegisterSupervisor
from gateway.tasks import NameMapping, parse_request
from gateway.worker import ShiftPolicy, Worker
from tests.fakes import vchasno as fake_mod
from tests.fakes.vchasno import FakeVchasno, serve

WAIT_S = 30.0
MAPPING = NameMapping(
    payment_types={"Готівка": "cash", "Картка": "electronically"},
    vat={"ПДВ 20 %": "vat20", "ПДВ 7 %": "vat7", "без ПДВ": "none"},
)


@dataclass
class Box:
    fake: FakeVchasno
    journal: Journal
    register: VchasnoRegister
    supervisor: RegisterSupervisor
    worker: Worker
    events: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    async def submit(self, uuid: str, *tasks: dict[str, Any]) -> JobRecord:
        parsed = parse_request(json.dumps({"uuid": uuid, "request": list(tasks)}), MAPPING)
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
        journal = await Journal.open(tmp_path / "journal.sqlite3")
        events: list[tuple[str, dict[str, object]]] = []
        register = VchasnoRegister(
            url,
            token=fake_mod.TOKEN,
            request_timeout_s=0.5,
            on_event=lambda name, data: events.append((name, data)),
        )
        supervisor = RegisterSupervisor(register)
        worker = Worker(
            journal, register, supervisor.connected_event, mapping=MAPPING, policy=ShiftPolicy()
        )
        box = Box(fake, journal, register, supervisor, worker, events)
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
            "taxgrp": 2,
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
