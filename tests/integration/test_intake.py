"""The one submission path on a real SQLite journal: outcomes, hostile bodies, disk full."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_tasks_json
from gateway.atol.tasks import (
    CashTask,
    CloseShiftTask,
    OpenShiftTask,
    QueryKind,
    QueryTask,
    ReportXTask,
)
from gateway.domain import fiscal
from gateway.domain.errors import StaleCommand, ValidationError
from gateway.journal import JobState, Journal
from gateway.journal.intake import (
    DISK_FULL_TEXT,
    DiskFull,
    Intake,
    JournalUnavailable,
    Outcome,
    answer_for,
)

SELL = {
    "uuid": "sale-1",
    "request": [
        {
            "type": "sell",
            "items": [
                {
                    "type": "position",
                    "name": "Хлеб",
                    "price": 45.5,
                    "quantity": 1,
                    "amount": 45.5,
                    "tax": {"type": "vat10"},
                }
            ],
            "payments": [{"type": "cash", "sum": 50}],
        }
    ],
}


def deep(levels: int) -> bytes:
    """A request whose first task is nested `levels` deep."""
    return b'{"uuid": "deep-1", "request": [' + b"[" * levels + b"]" * levels + b"]}"


# Each is refused by name; none may escape as another exception or store anything.
HOSTILE: dict[str, bytes] = {
    "nested-1000": deep(1000),
    "nested-15000": deep(15_000),
    "surrogate-key": b'{"uuid": "sur-1", "request": [{"type": "reportX", "\\ud800": 1}]}',
    "surrogate-value": b'{"uuid": "sur-2", "request": [{"type": "\\udfff"}]}',
    "not-utf8": b'{"uuid": "bin-1", "request": [{"type": "\xff\xfe"}]}',
    "huge-integer": b'{"uuid": "big-1", "request": [{"type": "cashIn", "cashSum": '
    + b"9" * 5000
    + b"}]}",
    "huge-exponent": b'{"uuid": "big-2", "request": [{"type": "cashIn", "cashSum": 1e999999}]}',
    "nan": b'{"uuid": "nan-1", "request": [{"type": "cashIn", "cashSum": NaN}]}',
    "not-an-object": b"[1, 2, 3]",
    "empty": b"",
}


async def cap_journal(journal: Journal, *, full: bool) -> None:
    """Simulate a full disk: with `full`, the database may not grow past the pages it has now
    (SQLite's max_page_count, set on the journal's own connection); else lift the cap."""
    async with journal._db.use() as conn:  # a pragma is per connection: the journal's own
        pages = 1_073_741_823
        if full:
            async with conn.execute("PRAGMA page_count") as cur:
                row = await cur.fetchone()
            assert row is not None
            pages = int(row[0])
        await conn.execute(f"PRAGMA max_page_count = {pages}")


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = await Journal.open(tmp_path / "journal.sqlite3")
    yield j
    await j.close()


@pytest.fixture
def woken() -> list[str]:
    return []


@pytest.fixture
def intake(journal: Journal, woken: list[str]) -> Intake:
    return Intake(journal, wake=woken.append, mapping=NameMapping())


async def test_a_body_is_committed_once_and_the_worker_woken(
    intake: Intake, journal: Journal, woken: list[str]
) -> None:
    first = await intake.submit_body(json.dumps(SELL).encode(), source="http")
    assert first.outcome is Outcome.ACCEPTED
    assert first.job is not None
    assert first.job.state is JobState.QUEUED
    assert woken == ["sale-1"]
    again = await intake.submit_body(json.dumps(SELL).encode(), source="mqtt")
    assert again.outcome is Outcome.DUPLICATE
    assert again.job is not None
    assert again.job.seq == first.job.seq
    assert woken == ["sale-1"]  # nothing new to run
    assert len(await journal.list_jobs()) == 1


async def test_typed_tasks_are_stored_as_the_worker_reads_them(
    intake: Intake, journal: Journal, woken: list[str]
) -> None:
    tasks = (
        CloseShiftTask(),
        OpenShiftTask(fiscal.Operator("Иванова А.", "7707083893")),
        ReportXTask(),
        QueryTask(QueryKind.SHIFT_STATUS),
        CashTask(fiscal.CashDirection.IN, 12_345, fiscal.Operator("Петров")),
    )
    out = await intake.submit_tasks("clock-close-shift-7", tasks, source="system")
    assert out.outcome is Outcome.ACCEPTED
    stored = await journal.get("clock-close-shift-7")
    assert parse_tasks_json(stored.tasks_json, NameMapping()) == tasks
    assert stored.source == "system"
    assert woken == ["clock-close-shift-7"]
    again = await intake.submit_tasks("clock-close-shift-7", tasks[:1], source="system")
    assert again.outcome is Outcome.DUPLICATE


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
async def test_hostile_bodies_are_refused_by_name_and_nothing_is_stored(
    intake: Intake, journal: Journal, woken: list[str], body: bytes
) -> None:
    with pytest.raises(ValidationError) as caught:
        await intake.submit_body(body, source="mqtt")
    answer = answer_for(caught.value)
    assert answer.status == 400
    assert answer.code == "invalid_request"
    assert answer.description
    answer.description.encode("utf-8")  # storable and sendable as it is
    assert await journal.list_jobs() == []
    assert woken == []


async def test_oversized_body_is_413(intake: Intake) -> None:
    body = json.dumps({**SELL, "pad": "x" * 40_000}).encode()
    with pytest.raises(ValidationError) as caught:
        intake.parse(body)
    assert (answer_for(caught.value).status, answer_for(caught.value).code) == (413, "too_large")


async def test_a_stale_sequence_is_a_replay_and_stores_nothing(
    intake: Intake, journal: Journal
) -> None:
    await intake.submit_body(json.dumps(SELL).encode(), source="mqtt", sequence=("k", 10))
    other = json.dumps({**SELL, "uuid": "sale-2"}).encode()
    with pytest.raises(StaleCommand) as caught:
        await intake.submit_body(other, source="mqtt", sequence=("k", 10))
    answer = answer_for(caught.value)
    assert (answer.code, answer.field, answer.retry) == ("replay", "seq", False)
    assert await journal.find("sale-2") is None


async def test_disk_full_is_507_with_the_message_and_nothing_is_acknowledged(
    intake: Intake, journal: Journal, woken: list[str]
) -> None:
    await cap_journal(journal, full=True)
    refused: str | None = None
    for n in range(200):
        body = json.dumps({**SELL, "uuid": f"fill-{n}"}).encode()
        try:
            await intake.submit_body(body, source="http")
        except DiskFull as err:
            answer = answer_for(err)
            assert (answer.status, answer.code, answer.retry) == (507, "disk_full", False)
            assert (
                answer.description == DISK_FULL_TEXT == "disk full: free space or replace the card"
            )
            refused = f"fill-{n}"
            break
    assert refused is not None, "the journal never filled up"
    assert await journal.find(refused) is None
    assert refused not in woken
    # Space again: the same request goes through.
    await cap_journal(journal, full=False)
    out = await intake.submit_body(json.dumps({**SELL, "uuid": refused}).encode(), source="http")
    assert out.outcome is Outcome.ACCEPTED


async def test_a_closed_journal_is_a_retry_not_a_refusal(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "closed.sqlite3")
    await journal.close()
    intake = Intake(journal, wake=lambda _uuid: None)
    with pytest.raises(JournalUnavailable) as caught:
        await intake.submit_body(json.dumps(SELL).encode(), source="http")
    answer = answer_for(caught.value)
    assert (answer.status, answer.retry) == (503, True)
    assert "same uuid" in answer.description
