"""The jobs list's query parameters, read strictly: a value the page cannot use is refused
with the field's name (400), never guessed at and never passed on to the journal."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from gateway.journal import JobState
from gateway.web.errors import BadInput

SEQ_MAX: Final = 2**63 - 1  # the journal's job numbers are SQLite integers
_DIGITS: Final = re.compile(r"[0-9]{1,19}")


def parse_states(query: Mapping[str, str]) -> list[JobState] | None:
    """`?state=`: one job state; None (every state) when absent or empty."""
    raw = query.get("state", "")
    if not raw:
        return None
    try:
        return [JobState(raw)]
    except ValueError:
        known = ", ".join(s.value for s in JobState)
        raise BadInput("state", f"not a job state (one of {known})") from None


def parse_before(query: Mapping[str, str]) -> int | None:
    """`?before=`: list the jobs numbered below this one; None (the newest) when absent."""
    raw = query.get("before", "")
    if not raw:
        return None
    if not _DIGITS.fullmatch(raw) or not 0 < int(raw) <= SEQ_MAX:
        raise BadInput("before", f"not a job number (1 to {SEQ_MAX})")
    return int(raw)
