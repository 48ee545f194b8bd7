"""Pure: Prometheus text exposition format (version 0.0.4) from plain numbers.

Families are written in a fixed order with HELP and TYPE lines; label values are escaped
(backslash, double quote, newline) as the format requires.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
PREFIX: Final = "fiscal_gateway_"


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: name (without prefix), help, type and its samples."""

    name: str
    help: str
    type: str  # gauge | counter
    samples: Sequence[tuple[Mapping[str, str], float]] = field(default_factory=tuple)


def escape_label(value: str) -> str:
    """A label value as the text format wants it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(value: str) -> str:
    """HELP text: backslash and newline escaped."""
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """Go-style floats: NaN, +Inf, -Inf; whole numbers without a decimal point."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def render(families: Sequence[Family]) -> str:
    """The whole exposition; families without samples are left out."""
    lines: list[str] = []
    for fam in families:
        if not fam.samples:
            continue
        name = PREFIX + fam.name
        lines.append(f"# HELP {name} {escape_help(fam.help)}")
        lines.append(f"# TYPE {name} {fam.type}")
        for labels, value in fam.samples:
            if labels:
                body = ",".join(f'{k}="{escape_label(v)}"' for k, v in sorted(labels.items()))
                lines.append(f"{name}{{{body}}} {format_value(value)}")
            else:
                lines.append(f"{name} {format_value(value)}")
    return "\n".join(lines) + "\n"


def gauge(name: str, help_text: str, value: float | None) -> Family:
    """A single unlabelled gauge; no sample when the value is unknown."""
    return Family(name, help_text, "gauge", () if value is None else (({}, float(value)),))


def quantiles(values: Sequence[float], qs: Sequence[float]) -> list[tuple[float, float]]:
    """(q, value) by the nearest-rank method; [] when there are no values."""
    if not values:
        return []
    ordered = sorted(values)
    out = []
    for q in qs:
        rank = max(1, math.ceil(q * len(ordered)))
        out.append((q, ordered[rank - 1]))
    return out
