"""Frozen records the journal returns."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any


class JobState(enum.Enum):
    """Where a job is; `blocked` = outcome unknown, a person must decide."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"
    BLOCKED = "blocked"


FINISHED = (JobState.DONE, JobState.FAILED, JobState.CANCELED)


@dataclass(frozen=True, slots=True)
class TaskResult:
    """One task's status in ATOL terms: wait|inProgress|ready|error|interrupted|canceled|blocked."""

    status: str
    result: dict[str, Any] | None = None
    error_code: int | None = None
    error_description: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As stored."""
        return {
            "status": self.status,
            "result": self.result,
            "error": None
            if self.error_code is None
            else {"code": self.error_code, "description": self.error_description or ""},
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TaskResult:
        """From the stored shape."""
        err = obj.get("error")
        return cls(
            status=obj["status"],
            result=obj.get("result"),
            error_code=err["code"] if err else None,
            error_description=err["description"] if err else None,
        )


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as committed."""

    seq: int
    uuid: str
    source: str
    tasks_json: str
    state: JobState
    task_results: tuple[TaskResult, ...]
    current_task: int
    attempts: int
    n0: int | None
    fiscal_step: str | None
    error_code: int | None
    error_text: str | None
    reply_to: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    def atol_results(self) -> dict[str, Any]:
        """The ATOL GET body: both error forms for every task."""
        out = []
        for t in self.task_results:
            out.append(
                {
                    "status": t.status,
                    "error": None
                    if t.error_code is None
                    else {"code": t.error_code, "description": t.error_description or ""},
                    "errorCode": t.error_code or 0,
                    "errorDescription": t.error_description or "",
                    "result": t.result,
                }
            )
        return {"uuid": self.uuid, "results": out}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One state change of a job."""

    at: dt.datetime
    state: str
    task_index: int | None
    note: str | None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A result or event waiting to be delivered."""

    id: int
    kind: str
    key: str | None
    payload: str
    created_at: dt.datetime
    attempts: int
