"""Pure job state changes: the committed record in, the record to commit out.

Each function checks the job may make the move (InvalidJobState if not) and says what the
history row should read; the store writes the new record, that row, and the outbox rows in
one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from gateway.atol.results import ATOL_BLOCKED, ATOL_CANCELED, ATOL_INTERRUPTED
from gateway.domain.errors import InvalidJobState
from gateway.journal.records import (
    TASK_FINAL,
    JobRecord,
    JobState,
    Resolution,
    TaskResult,
    TaskStatus,
)

INTERRUPTED_TEXT = "not run: an earlier task failed"
CANCELED_TEXT = "canceled before it started"


@dataclass(frozen=True, slots=True)
class Transition:
    """The record to commit, its history line, and an event to publish, if any."""

    job: JobRecord
    note: str
    task_index: int | None = None
    event: tuple[str, dict[str, Any]] | None = None


def _expect(job: JobRecord, action: str, *states: JobState) -> None:
    if job.state not in states:
        raise InvalidJobState(f"job {job.uuid} is {job.state.value}; it cannot {action}")


def _task(job: JobRecord, index: int) -> TaskResult:
    if not 0 <= index < len(job.task_results):
        raise ValueError(f"job {job.uuid} has {len(job.task_results)} tasks, not #{index}")
    return job.task_results[index]


def _open_task(job: JobRecord, index: int, action: str) -> None:
    """The task must not have its final word already: a ready task never runs again."""
    status = _task(job, index).status
    if status in TASK_FINAL:
        raise InvalidJobState(f"job {job.uuid} task {index} is {status}; it cannot {action}")


def _with(
    results: tuple[TaskResult, ...], changes: Iterable[tuple[int, TaskResult]]
) -> tuple[TaskResult, ...]:
    out = list(results)
    for index, result in changes:
        out[index] = result
    return tuple(out)


def _interrupt_rest(job: JobRecord, failed: int) -> list[tuple[int, TaskResult]]:
    """Every other task that has not run to its end becomes `interrupted`."""
    stop = TaskResult(TaskStatus.INTERRUPTED, None, ATOL_INTERRUPTED, INTERRUPTED_TEXT)
    return [
        (i, stop)
        for i, t in enumerate(job.task_results)
        if i != failed and t.status not in TASK_FINAL
    ]


def start(job: JobRecord, now: dt.datetime) -> Transition:
    """queued -> in_progress; on a job left in progress by a crash, record the resumption."""
    _expect(job, "start", JobState.QUEUED, JobState.IN_PROGRESS)
    if job.state is JobState.IN_PROGRESS:
        resumed = replace(job, attempts=job.attempts + 1, updated_at=now)
        return Transition(resumed, "resumed after a restart", job.current_task)
    started = replace(
        job, state=JobState.IN_PROGRESS, attempts=job.attempts + 1, started_at=now, updated_at=now
    )
    return Transition(started, "started")


def start_if_queued(job: JobRecord, now: dt.datetime) -> Transition | None:
    """A queued job is started by the first change the worker journals; else no change."""
    return start(job, now) if job.state is JobState.QUEUED else None


Step = Callable[[JobRecord, dt.datetime], Transition | None]


def chain(job: JobRecord, now: dt.datetime, *steps: Step) -> list[Transition]:
    """Apply `steps` in order, each to the job the one before made; the changes made.

    They are committed together: one write of the job, one history line per change.
    """
    changes: list[Transition] = []
    for step in steps:
        change = step(job, now)
        if change is not None:
            changes.append(change)
            job = change.job
    if not changes:
        raise ValueError(f"no change to job {job.uuid}")
    return changes


def begin_fiscal_step(
    job: JobRecord, index: int, step: str, n0: int, now: dt.datetime
) -> Transition:
    """Record what is about to be fiscalised and the last document number before it."""
    _expect(job, "begin a fiscal step", JobState.IN_PROGRESS)
    _open_task(job, index, "begin a fiscal step")
    if not step:
        raise ValueError("a fiscal step needs a name")
    if n0 < 0:
        raise ValueError(f"N0 must not be negative, got {n0}")
    results = _with(job.task_results, [(index, TaskResult(TaskStatus.IN_PROGRESS))])
    new = replace(
        job, task_results=results, current_task=index, fiscal_step=step, n0=n0, updated_at=now
    )
    return Transition(new, f"{step}: N0={n0}", index)


def finish_task(job: JobRecord, index: int, result: dict[str, Any], now: dt.datetime) -> Transition:
    """The task is ready; the next one becomes current."""
    _expect(job, "finish a task", JobState.IN_PROGRESS)
    _open_task(job, index, "finish")
    results = _with(job.task_results, [(index, TaskResult(TaskStatus.READY, result))])
    new = replace(
        job,
        task_results=results,
        current_task=index + 1,
        fiscal_step=None,
        n0=None,
        updated_at=now,
    )
    return Transition(new, "task ready", index)


def fail_task(
    job: JobRecord, index: int, code: int, description: str, now: dt.datetime
) -> Transition:
    """The task failed: the rest are interrupted and the job failed."""
    _expect(job, "fail", JobState.IN_PROGRESS)
    _open_task(job, index, "fail")
    error = TaskResult(TaskStatus.ERROR, None, code, description)
    results = _with(job.task_results, [(index, error), *_interrupt_rest(job, index)])
    new = replace(
        job,
        state=JobState.FAILED,
        task_results=results,
        fiscal_step=None,
        n0=None,
        error_code=code,
        error_text=description,
        updated_at=now,
        finished_at=now,
    )
    return Transition(new, f"failed: {description}", index)


def complete(job: JobRecord, now: dt.datetime) -> Transition:
    """All tasks ready: done."""
    _expect(job, "complete", JobState.IN_PROGRESS)
    waiting = [i for i, t in enumerate(job.task_results) if t.status is not TaskStatus.READY]
    if waiting:
        raise InvalidJobState(f"job {job.uuid} cannot complete: tasks {waiting} are not ready")
    new = replace(
        job, state=JobState.DONE, fiscal_step=None, n0=None, updated_at=now, finished_at=now
    )
    return Transition(new, "done")


def complete_if_all_ready(job: JobRecord, now: dt.datetime) -> Transition | None:
    """Done when every task is ready; else no change (more tasks to run)."""
    if job.state is not JobState.IN_PROGRESS:
        return None
    if any(t.status is not TaskStatus.READY for t in job.task_results):
        return None
    return complete(job, now)


def block(job: JobRecord, index: int, code: int, description: str, now: dt.datetime) -> Transition:
    """The outcome is unknown: the task and job are blocked; N0 and the step are kept."""
    _expect(job, "block", JobState.IN_PROGRESS)
    _open_task(job, index, "block")
    results = _with(
        job.task_results, [(index, TaskResult(TaskStatus.BLOCKED, None, code, description))]
    )
    new = replace(
        job,
        state=JobState.BLOCKED,
        task_results=results,
        current_task=index,
        error_code=code,
        error_text=description,
        updated_at=now,
    )
    event = {"uuid": job.uuid, "task": index, "code": code, "description": description}
    return Transition(new, f"blocked: {description}", index, ("job_blocked", event))


def unblock(
    job: JobRecord,
    resolution: Resolution,
    result: dict[str, Any] | None,
    note: str,
    now: dt.datetime,
) -> Transition:
    """A person (or a rule) settles a blocked job: retry recovery, accept as done, or fail."""
    _expect(job, "be unblocked", JobState.BLOCKED)
    if not note.strip():
        raise ValueError("unblocking needs a note: who decided, and why")
    if result is not None and resolution is not Resolution.DONE:
        raise ValueError("a result is only given when the job is settled as done")
    index = next(
        (i for i, t in enumerate(job.task_results) if t.status is TaskStatus.BLOCKED),
        job.current_task,
    )
    cleared = replace(job, error_code=None, error_text=None, updated_at=now)
    event = ("job_unblocked", {"uuid": job.uuid, "resolution": resolution.value, "note": note})
    if resolution is Resolution.RETRY:
        # With a fiscal step pending, recovery compares the last document with N0 again.
        status = TaskStatus.IN_PROGRESS if job.fiscal_step is not None else TaskStatus.WAIT
        results = _with(job.task_results, [(index, TaskResult(status))])
        new = replace(cleared, state=JobState.IN_PROGRESS, task_results=results)
        return Transition(new, f"retry: {note}", index, event)
    if resolution is Resolution.DONE:
        results = _with(job.task_results, [(index, TaskResult(TaskStatus.READY, result or {}))])
        all_ready = all(t.status is TaskStatus.READY for t in results)
        new = replace(
            cleared,
            # More tasks to run: the worker carries on with the next one.
            state=JobState.DONE if all_ready else JobState.IN_PROGRESS,
            task_results=results,
            current_task=index + 1,
            fiscal_step=None,
            n0=None,
            finished_at=now if all_ready else None,
        )
        return Transition(new, f"settled as printed: {note}", index, event)
    code = job.error_code if job.error_code is not None else ATOL_BLOCKED
    description = f"settled as not printed: {note}"
    error = TaskResult(TaskStatus.ERROR, None, code, description)
    new = replace(
        cleared,
        state=JobState.FAILED,
        task_results=_with(job.task_results, [(index, error), *_interrupt_rest(job, index)]),
        fiscal_step=None,
        n0=None,
        error_code=code,
        error_text=description,
        finished_at=now,
    )
    return Transition(new, description, index, event)


def cancel(job: JobRecord, now: dt.datetime) -> Transition:
    """Cancel a job that has not started: every task is canceled."""
    _expect(job, "be canceled (only a queued job can)", JobState.QUEUED)
    canceled = TaskResult(TaskStatus.CANCELED, None, ATOL_CANCELED, CANCELED_TEXT)
    new = replace(
        job,
        state=JobState.CANCELED,
        task_results=tuple(canceled for _ in job.task_results),
        updated_at=now,
        finished_at=now,
    )
    return Transition(new, "canceled")


def requeue(job: JobRecord, note: str, now: dt.datetime) -> Transition:
    """in_progress -> queued, only while no fiscal step is pending (recovery must settle one)."""
    _expect(job, "be requeued", JobState.IN_PROGRESS)
    if job.fiscal_step is not None:
        raise InvalidJobState(
            f"job {job.uuid} has a {job.fiscal_step} step pending (N0={job.n0}); "
            "recovery must settle it first"
        )
    wait = TaskResult(TaskStatus.WAIT)
    results = _with(
        job.task_results,
        [(i, wait) for i, t in enumerate(job.task_results) if t.status is TaskStatus.IN_PROGRESS],
    )
    new = replace(job, state=JobState.QUEUED, task_results=results, updated_at=now)
    return Transition(new, f"requeued: {note}")
