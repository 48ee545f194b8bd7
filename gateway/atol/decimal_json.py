"""Pure: JSON with exact decimal numbers, both ways.

Numbers are read as `Decimal`, never as floats, so 0.1 stays 0.1 and a 20-digit integer stays
exact. A token with no exact decimal value (NaN, Infinity, an exponent beyond what `Decimal`
holds) is read as a `NotANumber` placeholder instead of failing the whole parse: the task
parser then names its path. A repeated key is an error, since parsers disagree on which wins.
"""

from __future__ import annotations

import json
import json.encoder
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from gateway.domain.errors import ValidationError

_SHOWN_CHARS = 24  # of a bad number token quoted back in an error
# Nesting named in an error when the parser runs out of stack; a task nests far less (4-5).
MAX_NESTING: Final = 64


@dataclass(frozen=True, slots=True)
class NotANumber:
    """A number token without an exact decimal value, kept so that the error can name its path."""

    token: str
    reason: str


class _DuplicateKey(Exception):
    """An object repeats a key."""


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object; a repeated key is refused (which one counts differs between parsers)."""
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _number(token: str) -> Decimal | NotANumber:
    """A JSON number token as an exact decimal."""
    try:
        return Decimal(token)
    except (InvalidOperation, ValueError):
        # e.g. 1e9999999999999999999: the exponent is beyond what Decimal can hold.
        shown = token if len(token) <= _SHOWN_CHARS else token[:_SHOWN_CHARS] + "…"
        return NotANumber(shown, f"{shown} is out of range")


def _constant(token: str) -> NotANumber:
    """NaN, Infinity, -Infinity: JSON has no such numbers."""
    return NotANumber(token, f"{token} is not a number")


def loads(body: bytes | str) -> object:
    """Parse JSON with exact decimal numbers; errors name the position."""
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValidationError("", f"not UTF-8: invalid byte at position {err.start}") from None
    else:
        text = body
    text = text.removeprefix("\ufeff")  # some Windows clients send a byte order mark
    try:
        return json.loads(
            text,
            parse_float=_number,
            parse_int=_number,
            parse_constant=_constant,
            object_pairs_hook=_pairs,
        )
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno} (char {err.pos})"
        raise ValidationError("", f"not valid JSON: {err.msg} at {where}") from None
    except _DuplicateKey as err:
        raise ValidationError("", f"not valid JSON: duplicate key {err.args[0]!r}") from None
    except RecursionError:
        where = _deep_path(text, MAX_NESTING)
        raise ValidationError(where, f"nested more than {MAX_NESTING} levels deep") from None


def _deep_path(text: str, limit: int) -> str:
    """The path of the first array or object opened `limit` levels deep (e.g. `a[0].b[3]`).

    Called only when the parser ran out of stack, so the text is known to nest that deep; it
    scans the text without recursion, reading keys and counting elements as it goes.
    """
    frames: list[_Frame] = []
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char == '"':
            j = i + 1
            while j < end and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            top = frames[-1] if frames else None
            if top is not None and top.expect_key:
                try:
                    name = str(json.loads(text[i : j + 1]))
                except ValueError:
                    name = text[i + 1 : j]
                top.label = "." + name.encode("utf-8", "backslashreplace").decode("utf-8")
                top.expect_key = False
            i = j + 1
            continue
        if char in "[{":
            if len(frames) >= limit:
                return "".join(frame.label for frame in frames).removeprefix(".")
            frames.append(_Frame(char == "{"))
        elif char in "]}" and frames:
            frames.pop()
        elif char == "," and frames:
            frames[-1].next_member()
        i += 1
    return ""


class _Frame:
    """An open array or object while scanning: how to name the value being read in it."""

    __slots__ = ("expect_key", "index", "is_object", "label")

    def __init__(self, is_object: bool) -> None:
        self.is_object = is_object
        self.expect_key = is_object
        self.index = 0
        self.label = "" if is_object else "[0]"

    def next_member(self) -> None:
        """After a comma: the next key, or the next element."""
        if self.is_object:
            self.expect_key = True
        else:
            self.index += 1
            self.label = f"[{self.index}]"


# The C string encoder `json.dumps(..., ensure_ascii=False)` uses, without building a new
# encoder object for every string.
_string = json.encoder.encode_basestring


def dumps(obj: object) -> str:
    """JSON text of parsed JSON, decimals written exactly."""
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, str):
        return _string(obj)
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"{obj} has no JSON form")
        return str(obj)
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"{obj} has no JSON form")
        return repr(obj)
    if isinstance(obj, list | tuple):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    if isinstance(obj, dict):
        parts = []
        for key, value in obj.items():
            if not isinstance(key, str):
                raise ValueError(f"object key {key!r} is not a string")
            parts.append(_string(key) + ":" + dumps(value))
        return "{" + ",".join(parts) + "}"
    raise ValueError(f"{type(obj).__name__} has no JSON form")
