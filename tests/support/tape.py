"""The emulator's paper tape: one JSON line per document it printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def tape_of(state: Path) -> Path:
    """The tape file next to an emulator state file."""
    return state.with_name(state.name + ".journal.jsonl")


def read_tape(path: Path) -> list[dict[str, Any]]:
    """Every document on a tape file (none when nothing was printed yet)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def item_names(tape: list[dict[str, Any]]) -> list[str]:
    """The name of every receipt line on the tape, in print order."""
    return [item["name"] for doc in tape for item in doc.get("items", [])]
