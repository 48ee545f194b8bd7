"""The office's update commands, applied one at a time, and the trial release's confirmation.

`gateway.updates` (with its download client and signature checks) is imported only when an
update command arrives or the box runs as installed releases, never on a plain start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.config.schema import UpdatesConfig
from gateway.journal import Journal

if TYPE_CHECKING:
    from gateway.updates import UpdateSettings

_LOGGER = logging.getLogger(__name__)

EVENT_TIMEOUT_S = 30.0


def installed_as_releases(root: Path) -> bool:
    """Whether this box runs from `root/current` (the release layout of docs/box.md)."""
    return (root / "current").exists()


def _maybe_on_trial(root: Path) -> bool:
    """False when `current` and `confirmed` are the same release: nothing to confirm, so the
    updater need not even be loaded. Anything else is for the updater to judge."""
    try:
        return (root / "current").resolve(strict=True) != (root / "confirmed").resolve(strict=True)
    except OSError:
        return True


def _settings(cfg: UpdatesConfig) -> UpdateSettings:
    from gateway.updates import UpdateSettings
    from gateway.updates.service import python_for_venvs

    return UpdateSettings(
        root=cfg.root,
        public_keys=cfg.public_keys,
        python=python_for_venvs(),
        confirm_after_s=60.0 * cfg.confirm_after_min,
        max_artifact_bytes=cfg.max_artifact_mb * 2**20,
    )


class Updates:
    """Holds at most one waiting update command; `run` applies them in turn."""

    def __init__(
        self, cfg: UpdatesConfig, journal: Journal, *, restart: Callable[[int], None]
    ) -> None:
        self._cfg = cfg
        self._journal = journal
        self._restart = restart
        self._requests: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1)

    def request(self, command: dict[str, Any]) -> bool:
        """An update command from the office; False when one is already waiting."""
        try:
            self._requests.put_nowait(command)
        except asyncio.QueueFull:
            return False
        return True

    async def _event(self, kind: str, data: dict[str, Any]) -> None:
        async with asyncio.timeout(EVENT_TIMEOUT_S):
            await self._journal.add_event(kind, data)

    async def run(self) -> None:
        """Apply commands as they come; stop the daemon for a restart into a new release."""
        while True:
            command = await self._requests.get()
            from gateway import updates

            await self._event("update_started", {"version": command.get("version")})
            # apply_signed_update bounds its own download and install steps by time.
            outcome = await updates.apply_signed_update(command, _settings(self._cfg))
            await self._event("update_outcome", outcome.as_json())
            _LOGGER.info("Update: %s (%s)", outcome.result, outcome.message)
            if outcome.restart_required:
                self._restart(updates.RESTART_EXIT_CODE)

    async def confirm(self, healthy: Callable[[], Awaitable[bool]]) -> None:
        """Confirm a release on trial after READY plus a healthy while (docs/box.md)."""
        if not await asyncio.to_thread(_maybe_on_trial, self._cfg.root):
            return
        from gateway import updates

        await updates.confirm_when_healthy(_settings(self._cfg), healthy)
