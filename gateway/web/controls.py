"""What the page may ask of the live box beyond the journal.

Printing actions (X report, shifts) go through the journal as jobs; these three need the
running objects (clock monitor, register supervisor), so the app hands the page an object
with this shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an action did, in plain words for the technician."""

    ok: bool
    message: str


class BoxControls(Protocol):
    """Live actions on the box; each returns a plain-words outcome, never raises on purpose."""

    async def sync_clock(self) -> Outcome:
        """Set the register's clock from the box's clock now (shift closed only)."""

    async def reconnect_register(self) -> Outcome:
        """Drop the register link and connect again."""

    async def accept_register(self) -> Outcome:
        """Take the register now on the port as the box's register (after a swap)."""
