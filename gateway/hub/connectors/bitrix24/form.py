"""Pure: a PHP-style form body (`items[0][name]=…`) or a JSON body -> one nested value.

The portal's core posts the check with PHP's form encoding; JSON is taken too. Keys are read
as PHP reads them: `a[b][]=x` appends, a later duplicate key replaces an earlier one. A PHP
array whose keys are exactly 0..n-1 becomes a list, as its JSON encoding would.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from gateway.hub.connectors.bitrix24.errors import CheckRefused

MAX_DEPTH = 8
MAX_FIELDS = 5000
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def decode_body(body: bytes, content_type: str) -> dict[str, Any]:
    """The request's fields; CheckRefused names what cannot be read."""
    if content_type == "application/json" or body.lstrip().startswith(b"{"):
        return _json(body)
    return decode_form(body)


def decode_form(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CheckRefused("", f"the body is not UTF-8 (byte {err.start})") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckRefused("", f"the form cannot be read: {err}") from None
    root: dict[str, Any] = {}
    for key, value in pairs:
        _put(root, _path(key), value, key)
    return _listify(root)


def _json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise CheckRefused("", f"the body is not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise CheckRefused("", "the body must be a JSON object")
    return doc


def _path(key: str) -> list[str]:
    """`items[0][name]` -> ["items", "0", "name"]; `a[]` -> ["a", ""] (append)."""
    head, bracket, rest = key.partition("[")
    if not head:
        raise CheckRefused(key, "a form key without a name")
    if not bracket:
        return [head]
    tail = "[" + rest
    segments = _SEGMENT.findall(tail)
    if "".join(f"[{s}]" for s in segments) != tail:
        raise CheckRefused(key, "a form key with unbalanced brackets")
    if len(segments) > MAX_DEPTH:
        raise CheckRefused(key, f"nested more than {MAX_DEPTH} levels")
    return [head, *segments]


def _put(node: dict[str, Any], path: list[str], value: str, key: str) -> None:
    for depth, name in enumerate(path):
        if name == "":
            name = str(sum(1 for k in node if k.isdigit()))
        if depth == len(path) - 1:
            if isinstance(node.get(name), dict):
                raise CheckRefused(key, "given both as a value and as a group")
            node[name] = value
            return
        child = node.setdefault(name, {})
        if not isinstance(child, dict):
            raise CheckRefused(key, "given both as a value and as a group")
        node = child


def _listify(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        out[key] = _as_list_or_dict(value) if isinstance(value, dict) else value
    return out


def _as_list_or_dict(node: dict[str, Any]) -> dict[str, Any] | list[Any]:
    inner = _listify(node)
    if inner and sorted(inner) == sorted(str(i) for i in range(len(inner))):
        return [inner[str(i)] for i in range(len(inner))]
    return inner
