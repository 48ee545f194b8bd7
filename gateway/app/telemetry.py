"""The periodic telemetry message sent to the office over MQTT: health, jobs, the box."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gateway.app.status import StatusReport
from gateway.journal import JobState, Journal
from gateway.monitors import system


async def telemetry(report: StatusReport, journal: Journal, state_dir: Path) -> dict[str, object]:
    """`/health` plus job counts, the oldest queued job's age, the outbox and the box."""
    body = await report.health()
    counts = await journal.counts()
    oldest = await journal.oldest_queued()
    body["jobs"] = {
        "done": counts.get(JobState.DONE, 0),
        "failed": counts.get(JobState.FAILED, 0),
        "blocked": counts.get(JobState.BLOCKED, 0),
        "oldest_queued_age_s": (
            int((dt.datetime.now(dt.UTC) - oldest.created_at).total_seconds())
            if oldest is not None
            else None
        ),
        "outbox": await journal.outbox_depth(),
    }
    body["system"] = system.snapshot(state_dir)
    return body
