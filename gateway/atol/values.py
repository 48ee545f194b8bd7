"""Pure: reading one JSON value of a task, each error naming the value's path.

Paths look like `request[0].items[2].price`; a key that is not valid text is shown escaped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TypeVar

from gateway.atol.limits import MAX_MONEY, MAX_QUANTITY
from gateway.atol.names import NameMapping, replace_text, shown, text_problem
from gateway.atol.tasks import format_money
from gateway.domain import fiscal
from gateway.domain.errors import ValidationError

_T = TypeVar("_T")


def key(path: str, name: str) -> str:
    """The path of a member."""
    name = shown(name)
    return f"{path}.{name}" if path else name


def idx(path: str, index: int) -> str:
    """The path of a list element."""
    return f"{path}[{index}]"


def obj(value: object, path: str) -> dict[str, object]:
    """A JSON object."""
    if not isinstance(value, dict):
        raise ValidationError(path, "must be an object")
    return value


def array(value: object, path: str) -> list[object]:
    """A JSON array (required)."""
    if value is None:
        raise ValidationError(path, "required")
    if not isinstance(value, list):
        raise ValidationError(path, "must be a list")
    return value


def required(members: dict[str, object], name: str, path: str) -> object:
    """A member that must be present and not null."""
    value = members.get(name)
    if value is None:
        raise ValidationError(key(path, name), "required")
    return value


def given(value: object) -> bool:
    """A member counts as sent unless it is null or empty."""
    return value is not None and value != "" and value != {} and value != []


def flag(members: dict[str, object], name: str, path: str) -> bool:
    """An optional boolean member (null = false)."""
    value = members.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValidationError(key(path, name), "must be true or false")
    return value


def check_members(
    members: dict[str, object],
    path: str,
    known: frozenset[str],
    refused: Mapping[str, str],
) -> None:
    """Refuse known-but-unsupported members and members this format does not have."""
    for name, value in members.items():
        if name in known:
            continue
        if name in refused:
            if given(value):
                raise ValidationError(key(path, name), refused[name])
            continue
        raise ValidationError(
            key(path, name),
            "unknown field; every field is carried into the fiscal document or refused, "
            "so remove it or check its spelling",
        )


def carried(mapping: NameMapping, name: str, path: str) -> None:
    """Refuse optional data the configured register cannot carry."""
    if mapping.carries is not None and name not in mapping.carries:
        raise ValidationError(
            path, "this box's register cannot carry this field into the receipt; remove it"
        )


def text(value: object, path: str, max_chars: int, mapping: NameMapping) -> str:
    """A printable, non-blank string of at most `max_chars` characters in the register's charset.

    The configured replacements (`mapping.text`, e.g. "₽" -> "руб.") apply first; any other
    character the register cannot print is refused by name, never turned into "?".
    """
    if not isinstance(value, str):
        raise ValidationError(path, "must be a string")
    value = replace_text(value, mapping)
    if not value.strip():
        raise ValidationError(path, "must not be empty")
    if len(value) > max_chars:
        raise ValidationError(path, f"longer than {max_chars} characters")
    problem = text_problem(value, mapping.charset)
    if problem is not None:
        raise ValidationError(path, problem)
    return value


def optional_text(
    members: dict[str, object], name: str, path: str, max_chars: int, mapping: NameMapping
) -> str | None:
    """An optional text member the register carries; `name` is also its CARRIED_FIELDS name."""
    value = members.get(name)
    if not given(value):
        return None
    where = key(path, name)
    prefix = "items." if "items[" in path else ""
    carried(mapping, prefix + name, where)
    return text(value, where, max_chars, mapping)


def lookup(
    value: object,
    path: str,
    table: Mapping[str, _T],
    crm_names: Mapping[str, str],
    what: str,
    listed: Iterable[str] | None = None,
) -> _T:
    """An ATOL name from `table`, or a CRM name mapped to one; errors list `listed` names."""
    if not isinstance(value, str):
        raise ValidationError(path, "must be a string")
    if value in table:
        return table[value]
    target = crm_names.get(value)
    if target is None:
        accepted = ", ".join([*(table if listed is None else listed), *crm_names])
        raise ValidationError(path, f"unknown {what} {value!r}; accepted: {accepted}")
    if target not in table:
        raise ValidationError(path, f"{value!r} is mapped to {target!r}, which is not a {what}")
    return table[target]


def number(value: object, path: str) -> Decimal:
    """A finite JSON number as an exact decimal (floats from other parsers by their repr)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValidationError(path, "must be a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(path, "must be a finite number")
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if not value.is_finite():
        raise ValidationError(path, "must be a finite number")
    return value


def _scaled(value: Decimal, places: int) -> int | None:
    """`value` × 10**places as an int, or None if it has more decimals; |value| < 10**20."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # not finite
        return None
    end = len(digits)
    while end > 0 and digits[end - 1] == 0:
        end -= 1
        exponent += 1
    if end == 0:
        return 0
    shift = exponent + places
    if shift < 0:
        return None
    scale: int = 10**shift
    return int("".join(map(str, digits[:end]))) * scale


def _decimal_field(
    value: object, path: str, places: int, limit: int, *, positive: bool, show: str
) -> int:
    """A non-negative number with at most `places` decimals, scaled by 10**places."""
    exact = number(value, path)
    if exact < 0:
        raise ValidationError(path, "must not be negative")
    if positive and exact == 0:
        raise ValidationError(path, "must be greater than 0")
    if exact > Decimal(limit).scaleb(-places):
        raise ValidationError(path, f"too large (at most {show})")
    scaled = _scaled(exact, places)
    if scaled is None:
        raise ValidationError(path, f"more than {places} decimals")
    return scaled


def money(value: object, path: str, *, positive: bool = False) -> int:
    """Rubles -> kopecks: exact, at most 2 decimals."""
    return _decimal_field(
        value, path, 2, MAX_MONEY, positive=positive, show=format_money(MAX_MONEY)
    )


def quantity(value: object, path: str) -> int:
    """A quantity > 0 -> ×10⁶: exact, at most 6 decimals."""
    show = str(MAX_QUANTITY // fiscal.QTY_SCALE)
    return _decimal_field(value, path, 6, MAX_QUANTITY, positive=True, show=show)


def code(value: object, path: str, allowed: range | frozenset[int]) -> int:
    """A whole-number code from `allowed`."""
    exact = number(value, path)
    if not min(allowed) <= exact <= max(allowed) or exact not in allowed:
        if isinstance(allowed, range):
            raise ValidationError(path, f"must be from {allowed.start} to {allowed.stop - 1}")
        raise ValidationError(path, f"must be one of {', '.join(map(str, sorted(allowed)))}")
    return int(exact)
