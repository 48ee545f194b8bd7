"""At start: does the journal know every fiscal document the register made?

A journal that lost its last commits (a damaged write-ahead log after a power cut, a restored
backup) no longer knows documents the register printed. Nothing else would ever say so: the
jobs it lost are simply gone. So, once per start and before the first job, the ФН's last
document number is compared with the highest one the journal recorded — in job results, in
the N0 of fiscal steps, in the shift events, and in the number noted at the previous start.
The register ahead means documents the journal does not know: an event and a health
condition give the numbers, so a person compares the register's tape with the jobs.

Documents made on the register's own keyboard look the same; the message says both.

The other way round — a ФН whose last document is lower than one the journal recorded for
that same ФН — cannot be the register the box printed on (another register answering on the
port, a ФН swapped or its state restored): at every connect it is refused until the right
one is back or a technician accepts it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass, replace
from typing import Any

from gateway.domain import fiscal
from gateway.journal import JobRecord, JobState, Journal

_LOGGER = logging.getLogger(__name__)

META_LAST_DOCUMENT = "register_last_document"  # {"fn": number, "last": N} noted at each start
META_GAP = "journal_gap"  # the gap found at the last start, for the health monitor
META_BEHIND_ACCEPTED = "register_behind_accepted"  # {"fn": number, "journal_last": N}
JOBS_SCANNED = 200  # newest jobs read for document numbers: far more than one power cut loses
_STARTED = (JobState.IN_PROGRESS, JobState.DONE, JobState.FAILED, JobState.BLOCKED)
_SHIFT_EVENTS = ("shift_opened", "shift_closed")


@dataclass(frozen=True, slots=True)
class JournalGap:
    """The register's ФН holds documents `journal_last + 1 .. register_last` the journal
    does not know."""

    fn_number: str
    journal_last: int
    register_last: int
    found_at: str  # ISO time

    @property
    def missing(self) -> int:
        """How many documents the journal does not know."""
        return self.register_last - self.journal_last

    @property
    def behind(self) -> bool:
        """The other way round: the ФН is behind what the journal recorded for it."""
        return self.register_last < self.journal_last

    @property
    def message(self) -> str:
        """For a person."""
        if self.behind:
            return (
                f"the register's ФН {self.fn_number} says its last document is "
                f"{self.register_last}, but the box's journal recorded document "
                f"{self.journal_last} on that ФН: this is not the register the box printed on "
                "(another register on the port, a swapped ФН, or a restored register state); "
                "nothing is printed until it is sorted out"
            )
        first = self.journal_last + 1
        span = f"{first}" if first == self.register_last else f"{first}–{self.register_last}"
        return (
            f"the register's ФН {self.fn_number} holds document(s) {span} that the box's "
            f"journal does not know (the journal's last is {self.journal_last}): either the "
            "journal lost its last entries (e.g. a power cut damaged it) or they were made on "
            "the register itself"
        )

    @property
    def action(self) -> str:
        """What a person does about it."""
        if self.behind:
            return (
                "check which register and ФН are on the box's port (serial number, ФН number, "
                "its last document on the tape) and plug the box's own register back in; if "
                "this one rightly replaced it, accept it on the status page"
            )
        return (
            "compare the register's tape (or the ФН archive) for those documents with the "
            "jobs on the status page; a sale printed for a lost job must not be sold again"
        )

    @property
    def condition(self) -> str:
        """The health condition and event kind."""
        return "register_behind_journal" if self.behind else "journal_behind_register"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the message."""
        return {**asdict(self), "message": self.message, "action": self.action}


def highest_known(
    jobs: list[JobRecord],
    events: list[dict[str, Any]],
    noted: dict[str, Any] | None,
    fn_number: str,
) -> int | None:
    """The highest document number the journal recorded for ФН `fn_number` (None: none).

    A fiscal step still open counts its N0 + 1: the worker's recovery proves that document.
    """
    numbers: list[int] = []
    if noted is not None and noted.get("fn") == fn_number:
        numbers.append(int(noted["last"]))
    for job in jobs:
        if job.n0 is not None and job.n0 >= 0:
            numbers.append(job.n0 + (1 if job.fiscal_step is not None else 0))
        for task in job.task_results:
            numbers.extend(_result_numbers(task.result, fn_number))
    for event in events:
        document = event.get("document")
        if isinstance(document, int):
            numbers.append(document)
    return max(numbers) if numbers else None


def _result_numbers(result: Any, fn_number: str) -> list[int]:
    if not isinstance(result, dict):
        return []
    params = result.get("fiscalParams")
    if isinstance(params, dict):
        fn = params.get("fnNumber")
        number = params.get("fiscalDocumentNumber")
        if isinstance(number, int) and fn in (None, fn_number):
            return [number]
        return []
    number = result.get("documentNumber")  # cash in / out
    return [number] if isinstance(number, int) else []


def highest_for_fn(
    jobs: list[JobRecord], noted: dict[str, Any] | None, fn_number: str
) -> int | None:
    """The highest document number the journal recorded as made on ФН `fn_number` itself:
    only what names that ФН (a step's N0 or a shift event may be an earlier ФН's)."""
    numbers: list[int] = []
    if noted is not None and noted.get("fn") == fn_number:
        numbers.append(int(noted["last"]))
    for job in jobs:
        for task in job.task_results:
            result = task.result
            params = result.get("fiscalParams") if isinstance(result, dict) else None
            if isinstance(params, dict) and params.get("fnNumber") == fn_number:
                number = params.get("fiscalDocumentNumber")
                if isinstance(number, int):
                    numbers.append(number)
    return max(numbers) if numbers else None


async def check_not_behind(
    journal: Journal, fn: fiscal.FnStatus, now: dt.datetime, *, accept: bool = False
) -> JournalGap | None:
    """At each connect: the gap when the ФН is behind what the journal recorded for it.

    Stored for the health monitor with one event per finding; cleared once the ФН is not
    behind. `accept` (a technician's) takes this ФН as it is from now on."""
    jobs = await journal.list_jobs(states=_STARTED, limit=JOBS_SCANNED)
    stored = await journal.meta_get(META_LAST_DOCUMENT)
    known = highest_for_fn(jobs, json.loads(stored) if stored else None, fn.number)
    accepted_raw = await journal.meta_get(META_BEHIND_ACCEPTED)
    accepted = json.loads(accepted_raw) if accepted_raw else None
    if (
        known is not None
        and isinstance(accepted, dict)
        and accepted.get("fn") == fn.number
        and known <= int(accepted["journal_last"])
    ):
        known = None  # accepted as it was; what it prints from now on counts again
    previous = await stored_gap(journal)
    if known is None or fn.last_document_number >= known:
        if previous is not None and previous.behind:
            await journal.meta_delete(META_GAP)
        return None
    gap = JournalGap(fn.number, known, fn.last_document_number, now.isoformat())
    if accept:
        _LOGGER.warning("Accepted by a technician although behind the journal: %s", gap.message)
        await journal.meta_set(
            META_BEHIND_ACCEPTED, json.dumps({"fn": fn.number, "journal_last": known})
        )
        await journal.meta_set(
            META_LAST_DOCUMENT, json.dumps({"fn": fn.number, "last": fn.last_document_number})
        )
        if previous is not None and previous.behind:
            await journal.meta_delete(META_GAP)
        return None
    same = previous is not None and replace(previous, found_at=gap.found_at) == gap
    if not same:  # refused again at every retry: one event per finding
        _LOGGER.error("Register behind the journal: %s", gap.message)
        await journal.add_event(gap.condition, gap.as_dict(), now=now)
        await journal.meta_set(META_GAP, json.dumps(asdict(gap)))
    return gap


async def check_journal(
    journal: Journal, fn: fiscal.FnStatus, now: dt.datetime
) -> JournalGap | None:
    """Compare; note the register's last number for the next start; store or clear the gap."""
    jobs = await journal.list_jobs(states=_STARTED, limit=JOBS_SCANNED)
    events: list[dict[str, Any]] = []
    for kind in _SHIFT_EVENTS:
        events += await journal.recent_events(kind, limit=1)
    stored = await journal.meta_get(META_LAST_DOCUMENT)
    noted = json.loads(stored) if stored else None
    known = highest_known(jobs, events, noted, fn.number)
    last = fn.last_document_number
    gap: JournalGap | None = None
    if known is not None and last > known:
        gap = JournalGap(fn.number, known, last, now.isoformat())
        _LOGGER.error("Journal behind the register: %s", gap.message)
        await journal.add_event("journal_behind_register", gap.as_dict(), now=now)
        await journal.meta_set(META_GAP, json.dumps(asdict(gap)))
    elif await journal.meta_get(META_GAP):
        await journal.meta_delete(META_GAP)
    else:
        _LOGGER.debug("Journal knows the register's documents up to %s (last %d)", known, last)
    await journal.meta_set(META_LAST_DOCUMENT, json.dumps({"fn": fn.number, "last": last}))
    return gap


async def stored_gap(journal: Journal) -> JournalGap | None:
    """The gap the last start found, if any."""
    stored = await journal.meta_get(META_GAP)
    return JournalGap(**json.loads(stored)) if stored else None
