"""The paper tape: one JSON object per line in `<state>.journal.jsonl`, one per printed document.

Shape of a line (docs/design.md §8, extended):

- `number`: the ФН's fiscal document number (FD); for a non-fiscal document (cash in or out)
  the register's through document number instead ([GUIDE] p.33), which is another counter;
- `type`: "sell" | "sellReturn" | "buy" | "buyReturn" | "openShift" | "closeShift" for fiscal
  documents, "cashIn" | "cashOut" for 50h/51h;
- `datetime` (ISO), `fiscal_sign` (0 for a non-fiscal document), `total` (kopecks),
  `items` [{`name`, `price`, `quantity`, `sum`, `vat`, `tags`}], `payments` [{`type`, `sum`}],
  `shift`;
- `fiscal`: false for cash in and out, whose lines a count of fiscal documents must skip;
- `printed`: false when table 17 field 7 («не печатать документ») suppressed the printout: the
  document exists (in the ФН, or as a register document) but no paper came out;
- `tags`: every tag of the document as the ФН archive holds it ([FFD] ФФД 1.2), items apart:
  tag number as a string -> value by the tag's type (strings as text, money and counts as
  integers in kopecks or units, FVLN quantities as numbers (0.455), UnixTime as ISO text, byte
  flags as integers, STLVs as nested objects, unknown tags as hex); each item's `tags` are the
  members of its STLV 1059, the FF4Dh tags of the item among them. A tag the host forgot to
  send is missing here: that is the point of keeping them.

Write order (with `state.save`): the state file is written first (the ФН has the document and
`last_tape` holds its tape record), then the tape line is appended, then the answer goes out.
A kill between the two leaves the tape one line short; `Tape.reconcile` appends the missing
record when the emulator starts again, the way a real register finishes printing after power
returns. A line cut off by a kill mid-write is dropped first. So, after start-up, the tape and
the state hold exactly the same documents.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
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
    tags: dict[str, Any] = field(default_factory=dict)  # members of the item's STLV 1059
    department: int = 1  # the register's department (section) of the line, FF46h


@dataclass(frozen=True, slots=True)
class TapePayment:
    """One printed payment of a receipt."""

    type: str  # cash | electronically | prepaid | credit | other
    sum: int  # kopecks


@dataclass(frozen=True, slots=True)
class TapeRecord:
    """What the register printed for one document."""

    number: int
    type: str
    datetime: dt.datetime
    fiscal_sign: int
    total: int
    items: tuple[TapeItem, ...]
    payments: tuple[TapePayment, ...]
    shift: int
    tags: dict[str, Any] = field(default_factory=dict)  # the document's tags, items apart
    fiscal: bool = True  # False: a register document (cash in/out), numbered by its own counter
    printed: bool = True  # False: table 17 field 7 suppressed the printout

    @property
    def key(self) -> tuple[bool, int]:
        """What identifies the document: fiscal numbers and through numbers are two counters."""
        return (self.fiscal, self.number)

    def to_json(self) -> dict[str, Any]:
        """The docs/design.md §8 JSON object."""
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
                    "department": i.department,
                    "tags": i.tags,
                }
                for i in self.items
            ],
            "payments": [{"type": p.type, "sum": p.sum} for p in self.payments],
            "shift": self.shift,
            "fiscal": self.fiscal,
            "printed": self.printed,
            "tags": self.tags,
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
                    dict(i.get("tags", {})),
                    int(i.get("department", 1)),
                )
                for i in data["items"]
            ),
            payments=tuple(TapePayment(str(p["type"]), int(p["sum"])) for p in data["payments"]),
            shift=int(data["shift"]),
            tags=dict(data.get("tags", {})),
            fiscal=bool(data.get("fiscal", True)),
            printed=bool(data.get("printed", True)),
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

    def append(self, record: TapeRecord, *, sync: bool = True) -> None:
        """Append one line, flushed; fsynced before returning unless `sync` is False."""
        line = json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            if sync:
                os.fsync(f.fileno())

    def sync(self) -> None:
        """Make the lines appended so far survive a power cut."""
        with open(self.path, "rb") as f:
            os.fsync(f.fileno())

    def last_key(self) -> tuple[bool, int] | None:
        """`TapeRecord.key` of the last complete line, None for an empty tape. Drops a torn
        last line."""
        if not self.path.exists():
            return None
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
            return None
        last = json.loads(lines[-1])
        return (bool(last.get("fiscal", True)), int(last["number"]))

    def reconcile(self, last: TapeRecord | None) -> bool:
        """Append `last` (the state's last printed document) if the tape stops short of it.

        Returns True when a record was appended.
        """
        key = self.last_key()
        if last is None or key == last.key:
            return False
        if key is not None and key[0] == last.fiscal and key[1] > last.number:
            _LOGGER.error(
                "Paper tape %s goes to document %d but the register only to %d: state replaced?",
                self.path,
                key[1],
                last.number,
            )
            return False
        _LOGGER.warning(
            "Paper tape stopped before document %d (power lost while printing); printing it now",
            last.number,
        )
        self.append(last)
        return True
