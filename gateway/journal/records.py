"""Frozen records the journal returns, and the states they can be in."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any


class JobState(enum.Enum):
    """Where a job is; `blocked` = the outcome of a fiscal step is unknown, a person decides."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"
    BLOCKED = "blocked"


# Finished for good: never touched again, purged after the retention period.
FINISHED = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELED})
# Entering one of these enqueues the job's result in the outbox (same transaction).
REPORTED = FINISHED | {JobState.BLOCKED}


class TaskStatus(enum.StrEnum):
    """One task's status, spelled as the ATOL web server spells it."""

    WAIT = "wait"
    IN_PROGRESS = "inProgress"
    READY = "ready"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    CANCELED = "canceled"
    BLOCKED = "blocked"


# A task in one of these has its final word; it never runs (or prints) again.
TASK_FINAL = frozenset(
    {TaskStatus.READY, TaskStatus.ERROR, TaskStatus.INTERRUPTED, TaskStatus.CANCELED}
)


class Resolution(enum.StrEnum):
    """How a person (or a rule) settles a blocked job."""

    RETRY = "retry"  # run recovery again: compare the register's last document with N0
    DONE = "done"  # the document was printed; the given result stands
    FAILED = "failed"  # the document was not printed; give up on the job


class OutboxKind(enum.StrEnum):
    """What an outbox row carries."""

    RESULT = "result"
    EVENT = "event"
    ACK = "ack"  # "accepted" / "duplicate" for an MQTT command, right after the commit


@dataclass(frozen=True, slots=True)
class TaskResult:
    """One task's status, result and error, as ATOL reports them."""

    status: TaskStatus
    result: dict[str, Any] | None = None
    error_code: int | None = None
    error_description: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored shape: {"status", "result", "error": {"code", "description"} | null}."""
        return {
            "status": self.status.value,
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
            status=TaskStatus(obj["status"]),
            result=obj.get("result"),
            error_code=int(err["code"]) if err else None,
            error_description=str(err["description"]) if err else None,
        )


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as committed; `seq` is the ATOL `number`."""

    seq: int
    uuid: str
    source: str
    tasks_json: str
    tasks_count: int
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

    @property
    def finished(self) -> bool:
        """Done, failed or canceled."""
        return self.state in FINISHED

    def atol_results(self) -> dict[str, Any]:
        """The ATOL GET body with the uuid; both error forms (old servers) for every task."""
        out = []
        for t in self.task_results:
            out.append(
                {
                    "status": t.status.value,
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
    """One state change of a job: the state it went to, which task, and why."""

    job_seq: int
    at: dt.datetime
    state: JobState
    task_index: int | None
    note: str | None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A result or event waiting to be delivered; `key` is the job's uuid when there is one."""

    id: int
    kind: OutboxKind
    key: str | None
    payload_json: str
    created_at: dt.datetime
    attempts: int
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class ShiftTask:
    """A task of a job that ran to its end in a given shift: a receipt or a cash operation.

    `tasks_json` is the job's whole request (the task is its `index`-th entry); `result` the
    task's stored result.
    """

    job_uuid: str
    job_seq: int
    index: int
    type: str  # the ATOL task type: sell, sellReturn, buy, buyReturn, cashIn, cashOut
    tasks_json: str
    result: dict[str, Any]
