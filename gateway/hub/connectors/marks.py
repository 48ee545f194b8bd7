"""Pure: marking-code rules every connector applies to the ATOL items it built."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def repeated_code(items: Sequence[dict[str, Any]]) -> tuple[int, int] | None:
    """(item, first item) of the first marking code given twice, else None: one code is one
    pack, so the same code on two items of one receipt is refused."""
    seen: dict[object, int] = {}
    for i, item in enumerate(items):
        imc = item.get("imcParams")
        if imc is None:
            continue
        first = seen.setdefault(imc["imc"], i)
        if first != i:
            return i, first
    return None
