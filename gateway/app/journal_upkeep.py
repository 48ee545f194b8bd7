"""The journal's upkeep: purging finished jobs past `journal.retention_days` a few times a
day, and the queue-depth samples behind the status page's 24 h chart (taken whether or not
anyone opens the page)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from gateway.journal import Journal

_LOGGER = logging.getLogger(__name__)

RETENTION_INTERVAL_S = 6 * 3600.0
PURGE_TIMEOUT_S = 600.0  # a first purge after months offline deletes many rows on an SD card
QUEUE_SAMPLE_INTERVAL_S = 300.0
SAMPLE_TIMEOUT_S = 15.0


async def keep_purging(journal: Journal, retention_days: int) -> None:
    """Purge now, then every RETENTION_INTERVAL_S; runs until cancelled."""
    while True:
        async with asyncio.timeout(PURGE_TIMEOUT_S):
            removed = await journal.purge(retention_days, now=dt.datetime.now(dt.UTC))
        if removed:
            _LOGGER.info("Purged %d finished jobs older than %d days", removed, retention_days)
        await asyncio.sleep(RETENTION_INTERVAL_S)


async def sample_queue_depth(journal: Journal, interval_s: float = QUEUE_SAMPLE_INTERVAL_S) -> None:
    """Record the queue depth every `interval_s`, until cancelled."""
    while True:
        try:
            async with asyncio.timeout(SAMPLE_TIMEOUT_S):
                await journal.record_queue_depth(now=dt.datetime.now(dt.UTC))
        except Exception as err:  # a chart sample is not worth stopping the box for
            _LOGGER.warning("Could not sample the queue depth: %s", err)
        await asyncio.sleep(interval_s)
