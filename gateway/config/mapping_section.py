"""Pure: the `mapping:` section, a CRM's own names -> ATOL names, each checked by name.

The ATOL names come from the task parser's own tables (`gateway.atol.names`), so the config
accepts exactly the names a task may use.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Final, Protocol

import yaml

from gateway.atol import names
from gateway.atol.names import NameMapping
from gateway.config.nodes import BAD, is_null, join, kind, line_of, plain_text

MAPPING_TARGETS: Final[Mapping[str, tuple[str, ...]]] = {
    "payment_types": tuple(names.PAYMENT_TYPES),
    "vat": tuple(names.VATS),
    "units": tuple(names.UNITS),
    "text": (),  # free text: a character (or string) -> what the register prints instead
}


class MappingReader(Protocol):
    """What reading the section needs from the config reader."""

    lines: dict[str, int]

    def issue(self, path: str, line: int | None, message: str) -> None:
        """Record one problem."""
        ...

    def pairs(
        self, node: yaml.MappingNode | None, path: str
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The keys of a mapping node; duplicates and non-text keys are issues."""
        ...


def read_mapping(reader: MappingReader, node: yaml.Node, path: str) -> Any:
    """The `mapping:` section: CRM names -> ATOL names, each checked."""
    if not isinstance(node, yaml.MappingNode):
        reader.issue(path, line_of(node), f"must be a mapping of keys, not {kind(node)}")
        return BAD
    out: dict[str, Mapping[str, str]] = {}
    ok = True
    for key, (key_node, value_node) in reader.pairs(node, path).items():
        key_path = join(path, key)
        targets = MAPPING_TARGETS.get(key)
        if targets is None:
            close = difflib.get_close_matches(key, list(MAPPING_TARGETS), n=1)
            reader.issue(
                key_path,
                line_of(key_node),
                "unknown key" + (f"; did you mean {close[0]!r}?" if close else ""),
            )
            ok = False
            continue
        if is_null(value_node):
            out[key] = types.MappingProxyType({})
            continue
        if not isinstance(value_node, yaml.MappingNode):
            reader.issue(key_path, line_of(value_node), "must map CRM names to ATOL names")
            ok = False
            continue
        section: dict[str, str] = {}
        for name_node, target_node in value_node.value:
            if not isinstance(name_node, yaml.ScalarNode) or is_null(name_node):
                reader.issue(key_path, line_of(name_node), "CRM names must be plain text")
                ok = False
                continue
            name = plain_text(name_node)
            item_path = f"{key_path}[{name!r}]"
            if name in section:
                reader.issue(item_path, line_of(name_node), "given twice")
                ok = False
                continue
            reader.lines[item_path] = line_of(name_node)
            problem = _mapping_problem(name, target_node, targets)
            if problem is not None:
                reader.issue(item_path, line_of(target_node), problem)
                ok = False
                continue
            section[name] = plain_text(typing.cast(yaml.ScalarNode, target_node))
        out[key] = types.MappingProxyType(section)
    if not ok:
        return BAD
    empty: Mapping[str, str] = types.MappingProxyType({})
    default = NameMapping()
    return NameMapping(
        payment_types=out.get("payment_types", empty),
        vat=out.get("vat", empty),
        units=out.get("units", empty),
        text=out.get("text", default.text),
    )


def _mapping_problem(name: str, target: yaml.Node, targets: tuple[str, ...]) -> str | None:
    """Why one CRM name -> ATOL name entry is wrong, or None."""
    if not name.strip():
        return "the CRM name must not be empty"
    if not targets:  # mapping.text
        if not isinstance(target, yaml.ScalarNode) or is_null(target):
            return "must be the text printed instead"
        try:
            plain_text(target).encode("cp1251")
        except UnicodeEncodeError:
            return "the replacement must itself be printable (cp1251)"
        return None
    if not isinstance(target, yaml.ScalarNode) or is_null(target):
        return f"must be one of {', '.join(targets)}"
    value = plain_text(target)
    if value not in targets:
        close = difflib.get_close_matches(value, targets, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{value!r} is not one of {', '.join(targets)}{hint}"
    if name in targets and name != value:
        return f"{name!r} is itself an ATOL name and cannot be mapped to another"
    return None
