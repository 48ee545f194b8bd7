"""Which tasks the journal ran to their end in one register shift (for the Z report's check).

A receipt's result names its shift (`fiscalParams.shiftNumber`, recovered results too). A
cash-in or cash-out result does not: it belongs to the shift it ran in, which is read from its
place in the journal. The worker runs jobs one at a time in `seq` order (a blocked job stops
the queue), so a shift is a stretch of the journal: it begins after the last fiscal document of
an earlier shift (a receipt, an openShift or a closeShift answer with a smaller number), or at
the openShift that opened it, and it ends at its own closeShift.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.journal.records import JobRecord, ShiftTask, TaskStatus

RECEIPT_TYPES = frozenset({"sell", "sellReturn", "buy", "buyReturn"})
CASH_TYPES = frozenset({"cashIn", "cashOut"})
# Jobs that may hold a task run to its end: the others never started.
STARTED_STATES = ("in_progress", "done", "failed", "blocked")


def _shift_of(result: dict[str, Any] | None) -> int | None:
    params = result.get("fiscalParams") if isinstance(result, dict) else None
    number = params.get("shiftNumber") if isinstance(params, dict) else None
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def _types(tasks_json: str) -> list[str]:
    try:
        raw = json.loads(tasks_json)
    except ValueError:
        return []
    if not isinstance(raw, list):
        return []
    return [str(t.get("type")) if isinstance(t, dict) else "" for t in raw]


@dataclass(slots=True)
class ShiftScan:
    """Walks jobs newest first and keeps the tasks of shift `number` until its start is found."""

    number: int
    found: list[ShiftTask] = field(default_factory=list)
    _cash: list[ShiftTask] = field(default_factory=list)
    done: bool = False

    def feed(self, jobs_newest_first: Iterable[JobRecord]) -> None:
        """Look at the next page of jobs; `done` once the shift's start was passed."""
        for job in jobs_newest_first:
            if self.done:
                return
            self._job(job)

    def _job(self, job: JobRecord) -> None:
        types = _types(job.tasks_json)
        for index in range(min(len(types), len(job.task_results)) - 1, -1, -1):
            outcome = job.task_results[index]
            if outcome.status is not TaskStatus.READY:
                continue
            kind, result = types[index], outcome.result or {}
            task = ShiftTask(job.uuid, job.seq, index, kind, job.tasks_json, result)
            shift = _shift_of(result)
            if kind in CASH_TYPES:
                self._cash.append(task)
            elif kind in RECEIPT_TYPES or kind in ("openShift", "closeShift"):
                if shift is None:
                    continue
                if shift > self.number or (kind == "closeShift" and shift == self.number):
                    self._cash.clear()  # those ran after shift `number` had ended
                elif shift < self.number or kind == "openShift":
                    self.done = True  # the shift began after this document (or with it)
                    return
                elif kind in RECEIPT_TYPES:
                    self.found.append(task)

    def tasks(self) -> list[ShiftTask]:
        """The shift's receipts and cash operations, oldest first."""
        out = self.found + self._cash
        out.sort(key=lambda t: (t.job_seq, t.index))
        return out
