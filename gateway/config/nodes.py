"""Pure: small helpers over PyYAML's node tree (each node keeps its line) and the marker
of a value that failed."""

from __future__ import annotations

import re
from typing import Any, Final

import yaml

YAML_TAG: Final = "tag:yaml.org,2002:"
NULL_TAG: Final = "tag:yaml.org,2002:null"


class _Bad:
    """Marks a value that failed; its issue is already recorded."""

    def __repr__(self) -> str:
        return "<invalid>"


BAD: Final[Any] = _Bad()


def is_null(node: yaml.Node | None) -> bool:
    """An absent value or YAML null (`key:`, `~`, `null`)."""
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG)


def line_of(node: yaml.Node) -> int:
    """1-based line where a node starts."""
    return int(node.start_mark.line) + 1


def join(path: str, key: str) -> str:
    """Dotted path of a member."""
    return f"{path}.{key}" if path else key


def field_of(name: str) -> str:
    """The field a relative key path starts with (`tokens[1].name` -> `tokens`)."""
    return re.split(r"[.\[]", name, maxsplit=1)[0]


def kind(node: yaml.Node) -> str:
    """What a node is, for messages."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a single value"


def plain_text(node: yaml.ScalarNode) -> str:
    """The scalar as written (quoted or not)."""
    return str(node.value)
