"""The paper tape: one JSON object per line in `<state>.journal.jsonl`, one per fiscal document.

DESIGN §8 fixes the shape: `number`, `type` ("sell" | "sellReturn" | "buy" | "buyReturn" |
"openShift" | "closeShift"), `datetime` (ISO), `fiscal_sign`, `total` (kopecks), `items`
[{`name`, `price`, `quantity`, `sum`, `vat`}], `payments` [{`type`, `sum`}], `shift`.

Write order (with `state.save`): the state file is written first (the ФН has the document and
`last_tape` holds its tape record), then the tape line is appended, then the answer goes out.
A kill between the two leaves the tape one line short; `Tape.reconcile` appends the missing
record when the emulator starts again, the way a real register finishes printing after power
returns. A line cut off by a kill mid-write is dropped first. So, after start-up, the tape and
the ФН hold exactly the same documents.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)

TAPE_SUFFIX = ".journal.jsonl"

# How much of the file end is read to find the last complete line.
_TAIL_READ_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class TapeItem:
    """One printed line of a receipt."""

    name: str
    price: int  # kopecks
    quantity: float
    sum: int  # kopecks
    vat: str  # ATOL tax name: vat20, vat10, vat0, none, vat120, vat110, ...


@dataclass(frozen=True, slots=True)
class TapePayment:
    """One printed payment of a receipt."""

    type: str  # cash | electronically | prepaid | credit | other
    sum: int  # kopecks


@dataclass(frozen=True, slots=True)
class TapeRecord:
    """What the register printed for one fiscal document."""

    number: int
    type: str
    datetime: dt.datetime
    fiscal_sign: int
    total: int
    items: tuple[TapeItem, ...]
    payments: tuple[TapePayment, ...]
    shift: int

    def to_json(self) -> dict[str, Any]:
        """The DESIGN §8 JSON object."""
        return {
            "number": self.number,
            "type": self.type,
            "datetime": self.datetime.isoformat(),
            "fiscal_sign": self.fiscal_sign,
            "total": self.total,
            "items": [
                {
                    "name": i.name,
                    "price": i.price,
                    "quantity": i.quantity,
                    "sum": i.sum,
                    "vat": i.vat,
                }
                for i in self.items
            ],
            "payments": [{"type": p.type, "sum": p.sum} for p in self.payments],
            "shift": self.shift,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TapeRecord:
        """Parse a tape line."""
        return cls(
            number=int(data["number"]),
            type=str(data["type"]),
            datetime=dt.datetime.fromisoformat(data["datetime"]),
            fiscal_sign=int(data["fiscal_sign"]),
            total=int(data["total"]),
            items=tuple(
                TapeItem(
                    str(i["name"]),
                    int(i["price"]),
                    float(i["quantity"]),
                    int(i["sum"]),
                    str(i["vat"]),
                )
                for i in data["items"]
            ),
            payments=tuple(TapePayment(str(p["type"]), int(p["sum"])) for p in data["payments"]),
            shift=int(data["shift"]),
        )


def tape_path(state_path: Path) -> Path:
    """`<state>.journal.jsonl` next to the state file."""
    return state_path.with_name(state_path.name + TAPE_SUFFIX)


def read_tape(path: Path) -> list[TapeRecord]:
    """Every complete record on a tape file (a torn last line is skipped)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.endswith("\n") and line.strip():
            records.append(TapeRecord.from_json(json.loads(line)))
    return records


class Tape:
    """Appends records durably; blocking calls, run them off the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: TapeRecord) -> None:
        """Append one line, flush and fsync before returning."""
        line = json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def last_number(self) -> int:
        """Number of the last complete record; 0 for an empty tape. Drops a torn last line."""
        if not self.path.exists():
            return 0
        with open(self.path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - _TAIL_READ_BYTES)
            f.seek(start)
            tail = f.read()
            if tail and not tail.endswith(b"\n"):
                cut = tail.rfind(b"\n") + 1
                _LOGGER.warning(
                    "Paper tape %s ends in a torn line; dropping %d bytes",
                    self.path,
                    len(tail) - cut,
                )
                f.truncate(start + cut)
                f.flush()
                os.fsync(f.fileno())
                tail = tail[:cut]
        lines = [ln for ln in tail.split(b"\n") if ln.strip()]
        if not lines:
            return 0
        return int(json.loads(lines[-1])["number"])

    def reconcile(self, last: TapeRecord | None) -> bool:
        """Append `last` (the state's last printed document) if the tape stops short of it.

        Returns True when a record was appended.
        """
        number = self.last_number()
        if last is None or last.number <= number:
            if last is not None and number > last.number:
                _LOGGER.error(
                    "Paper tape %s goes to document %d but the ФН only to %d: state file replaced?",
                    self.path,
                    number,
                    last.number,
                )
            return False
        _LOGGER.warning(
            "Paper tape stopped before document %d (power lost while printing); printing it now",
            last.number,
        )
        self.append(last)
        return True
