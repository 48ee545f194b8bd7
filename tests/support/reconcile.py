"""Wrong prints: the emulator's paper tape against the jobs the box acknowledged.

Every receipt on the tape must be claimed by exactly one task result, with the same total;
every receipt a result claims must be on the tape; every request the box acknowledged
(HTTP 201, MQTT ack) must be in its journal. Shift documents are left out: the worker opens
a shift on its own before a receipt, and that document belongs to no task.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.journal import JobRecord, JobState, Journal

RECEIPTS = frozenset({"sell", "sellReturn", "buy", "buyReturn"})
FINAL = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELED})


@dataclass
class Reconciliation:
    jobs: int = 0
    receipts_on_tape: int = 0
    receipts_claimed: int = 0
    unfinished: list[str] = field(default_factory=list)  # jobs not in a final state
    wrong: list[str] = field(default_factory=list)  # each a sentence: what is wrong where

    def lines(self) -> list[str]:
        return [
            f"jobs in the journal: {self.jobs}",
            f"receipts on the tape: {self.receipts_on_tape}, claimed by results: "
            f"{self.receipts_claimed}",
            f"unfinished jobs: {len(self.unfinished)} {self.unfinished[:5]}",
            f"wrong prints: {len(self.wrong)}",
            *(f"  {w}" for w in self.wrong[:20]),
        ]


def _claims(job: JobRecord) -> Iterable[tuple[int, Any, bool]]:
    """(document number, total, whether the task is a receipt) of each task's fiscal result."""
    tasks = json.loads(job.tasks_json)
    for i, result in enumerate(job.task_results):
        params = (result.result or {}).get("fiscalParams")
        if isinstance(params, dict) and isinstance(params.get("fiscalDocumentNumber"), int):
            kind = tasks[i].get("type") if i < len(tasks) and isinstance(tasks[i], dict) else None
            yield params["fiscalDocumentNumber"], params.get("total"), kind in RECEIPTS


def reconcile(
    tape: list[dict[str, Any]], jobs: list[JobRecord], acknowledged: Iterable[str] = ()
) -> Reconciliation:
    """Compare; a job still running may hold a receipt nobody claimed yet (not counted)."""
    out = Reconciliation(jobs=len(jobs))
    receipts = {
        doc["number"]: doc
        for doc in tape
        if doc.get("type") in RECEIPTS and doc.get("fiscal", True) and "number" in doc
    }
    out.receipts_on_tape = len(receipts)
    keys = Counter((d.get("fiscal", True), d.get("number")) for d in tape)
    out.wrong += [
        f"document number {n} is on the tape twice" for (_, n), c in keys.items() if c > 1
    ]
    claimed: Counter[int] = Counter()
    for job in jobs:
        if job.state not in FINAL:
            out.unfinished.append(job.uuid)
        for number, total, is_receipt in _claims(job):
            claimed[number] += 1
            doc = receipts.get(number)
            if doc is None:
                if is_receipt:
                    out.wrong.append(f"{job.uuid}: receipt {number} is not on the tape")
                continue  # a shift or report document: not reconciled here
            if total is not None and Decimal(str(total)) * 100 != doc["total"]:  # tape: kopecks
                out.wrong.append(
                    f"{job.uuid}: total {total} but document {number} has {doc['total']}"
                )
    out.receipts_claimed = sum(1 for n in receipts if claimed[n])
    out.wrong += [f"document {n} is claimed by {c} results" for n, c in claimed.items() if c > 1]
    if not out.unfinished:
        out.wrong += [
            f"receipt {n} ({receipts[n].get('type')}) is on the tape but no job claims it"
            for n in receipts
            if not claimed[n]
        ]
    known = {job.uuid for job in jobs}
    out.wrong += [
        f"{uuid}: acknowledged but not in the journal" for uuid in acknowledged if uuid not in known
    ]
    return out


async def load_jobs(journal_file: Path) -> list[JobRecord]:
    """Every job in a journal file, oldest first."""
    journal = await Journal.open(journal_file)
    try:
        jobs: list[JobRecord] = []
        before: int | None = None
        while True:
            page = await journal.list_jobs(limit=500, before_seq=before)
            jobs += page
            if len(page) < 500:
                break
            before = page[-1].seq
        return sorted(jobs, key=lambda j: j.seq)
    finally:
        await journal.close()
