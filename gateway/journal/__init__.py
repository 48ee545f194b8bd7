"""The durable journal: the only module that imports aiosqlite."""

from gateway.journal.jobs import SOURCES
from gateway.journal.outbox import EVENTS_KEPT
from gateway.journal.records import (
    FINISHED,
    REPORTED,
    TASK_FINAL,
    HistoryEntry,
    JobRecord,
    JobState,
    OutboxItem,
    OutboxKind,
    Resolution,
    ShiftTask,
    TaskResult,
    TaskStatus,
)
from gateway.journal.store import Journal

__all__ = [
    "EVENTS_KEPT",
    "FINISHED",
    "REPORTED",
    "SOURCES",
    "TASK_FINAL",
    "HistoryEntry",
    "JobRecord",
    "JobState",
    "Journal",
    "OutboxItem",
    "OutboxKind",
    "Resolution",
    "ShiftTask",
    "TaskResult",
    "TaskStatus",
]
