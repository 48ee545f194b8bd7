"""The durable journal: the only module that imports aiosqlite."""

from gateway.journal.records import (
    FINISHED,
    HistoryEntry,
    JobRecord,
    JobState,
    OutboxItem,
    TaskResult,
)
from gateway.journal.store import Journal

__all__ = [
    "FINISHED",
    "HistoryEntry",
    "JobRecord",
    "JobState",
    "Journal",
    "OutboxItem",
    "TaskResult",
]
