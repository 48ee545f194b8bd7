"""Purging finished jobs past `journal.retention_days`, a few times a day."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from gateway.journal import Journal

_LOGGER = logging.getLogger(__name__)

RETENTION_INTERVAL_S = 6 * 3600.0
PURGE_TIMEOUT_S = 600.0  # a first purge after months offline deletes many rows on an SD card


async def keep_purging(journal: Journal, retention_days: int) -> None:
    """Purge now, then every RETENTION_INTERVAL_S; runs until cancelled."""
    while True:
        async with asyncio.timeout(PURGE_TIMEOUT_S):
            removed = await journal.purge(retention_days, now=dt.datetime.now(dt.UTC))
        if removed:
            _LOGGER.info("Purged %d finished jobs older than %d days", removed, retention_days)
        await asyncio.sleep(RETENTION_INTERVAL_S)
