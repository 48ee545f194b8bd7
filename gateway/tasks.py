"""Pure: ATOL-style task JSON -> validated domain objects; CRM name mapping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class NameMapping:
    """A CRM's own names -> ATOL names: payment types, VAT groups, measurement units.

    e.g. payment_types {"Готівка": "cash"}, vat {"НДС 20%": "vat20"}, units {"шт": "piece"}.
    """

    payment_types: Mapping[str, str] = field(default_factory=dict)
    vat: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)
