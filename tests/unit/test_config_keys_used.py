"""Every key config.example.yaml documents must have an effect: something outside the config
package reads its field.

The example documents every key, commented-out examples too. Each documented leaf key is
resolved to its schema field (a dataclass of the gateway.config package); then the gateway's source is
scanned for reads of that field *on a value of that section's type*. Types are followed
through annotations (`config: ClockConfig`), assignments (`reg = self.cfg.register`,
`self._config = config`), attribute chains (`cfg.register.emulator.clock_offset_s`) and
`for` loops over list sections; so a common field name such as `port` or `enabled` counts
only where it is read from the config, not from any object with that attribute.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gateway.config
from gateway.atol.names import VATS
from gateway.config import Config
from gateway.config.values import Listen

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.yaml"
SOURCE = ROOT / "gateway"
CONFIG_PACKAGE = SOURCE / "config"
CONFIG_MODULES = [
    importlib.import_module(f"gateway.config.{m.name}")
    for m in pkgutil.iter_modules(gateway.config.__path__)
]

# Documented keys read through generic code, which no attribute scan can see. Keep it short:
# every entry here is a key this test cannot vouch for.
READ_GENERICALLY: frozenset[str] = frozenset(
    {
        # The `mapping:` section becomes a NameMapping (gateway.atol.names); its sections are
        # looked up by name when a CRM's name is translated.
        "mapping.payment_types",
        "mapping.vat",
        "mapping.units",
        "mapping.text",
        # `register.tax_groups` is read whole by TaxGroupsConfig.table(), one rate per field.
        *(f"register.tax_groups.{rate}" for rate in VATS),
    }
)

# Comment lines of the example that look like a key but are prose about a value.
PROSE: frozenset[str] = frozenset(
    {
        "mqtt.command_signing.off",  # "# off: accept commands from the broker as they are"
    }
)

# A key line, written or commented out: `  key: value`, `  # key:`, `  #   - key: value`.
_KEY_LINE = re.compile(
    r"^(?P<lead> *)(?:#(?P<gap> +))?(?P<dash>- +)?(?P<key>[a-z_][a-z0-9_]*):(?: |$)"
)


def documented_paths(text: str) -> set[str]:
    """Dotted paths of every key in the example, commented-out ones included.

    A commented key sits where its `#` is (`  # key:` is at indent 2); text after `#` is
    indented from there (`  #   key:` is at indent 4), as the example writes nested examples.
    """
    paths: set[str] = set()
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        m = _KEY_LINE.match(line)
        if m is None:
            continue
        indent = len(m["lead"])
        if m["gap"] is not None:
            indent += len(m["gap"]) - 1
        if m["dash"] is not None:
            indent += len(m["dash"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m["key"]))
        paths.add(".".join(key for _, key in stack))
    return paths


def leaves(paths: set[str]) -> set[str]:
    """The paths no other path extends."""
    return {p for p in paths if not any(q.startswith(p + ".") for q in paths)}


# --- the schema ------------------------------------------------------------------------------

Section = type  # a dataclass of gateway.config
FieldType = tuple[str, Section] | None  # ("one", S) / ("list", S) / a plain value


def _field_type(hint: Any) -> FieldType:
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        present = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(present) == 1:
            hint = present[0]
    if typing.get_origin(hint) is tuple:
        items = typing.get_args(hint)
        if len(items) == 2 and items[1] is Ellipsis and _is_section(items[0]):
            return ("list", items[0])
        return None
    return ("one", hint) if _is_section(hint) else None


def _is_section(hint: Any) -> bool:
    # Listen is a dataclass too, but a single value in the file ("127.0.0.1:8080").
    return (
        isinstance(hint, type)
        and dataclasses.is_dataclass(hint)
        and hint.__module__.startswith("gateway.config.")
        and hint is not Listen
    )


def schema() -> dict[Section, dict[str, FieldType]]:
    """Every section reachable from Config: field name -> where it leads."""
    out: dict[Section, dict[str, FieldType]] = {}
    todo: list[Section] = [Config]
    while todo:
        cls = todo.pop()
        if cls in out:
            continue
        hints = typing.get_type_hints(cls)
        fields = {f.name: _field_type(hints[f.name]) for f in dataclasses.fields(cls)}
        out[cls] = fields
        todo.extend(ft[1] for ft in fields.values() if ft is not None)
    return out


def resolve(path: str, sections: dict[Section, dict[str, FieldType]]) -> tuple[Section, str]:
    """The section class and field a documented dotted path names (`x_file` names `x`)."""
    cls: Section = Config
    parts = path.split(".")
    for i, part in enumerate(parts):
        fields = sections[cls]
        name = part
        if name not in fields and name.endswith("_file") and name[: -len("_file")] in fields:
            name = name[: -len("_file")]
        assert name in fields, f"{path}: {cls.__name__} has no field {part!r}"
        if i == len(parts) - 1:
            return cls, name
        target = fields[name]
        assert target is not None, f"{path}: {cls.__name__}.{name} is a single value"
        cls = target[1]
    raise AssertionError(f"{path}: empty path")


def _returns_section() -> dict[str, Section]:
    """The config package's functions that return a section (`load_config`, `default_config`)."""
    out: dict[str, Section] = {}
    for module in CONFIG_MODULES:
        for name, value in vars(module).items():
            if not isinstance(value, types.FunctionType) or value.__module__ != module.__name__:
                continue
            returned = typing.get_type_hints(value).get("return")
            if isinstance(returned, type) and _is_section(returned):
                out[name] = returned
    return out


RETURNS_SECTION = _returns_section()


# --- the scan --------------------------------------------------------------------------------


class _Types:
    """What section type each name and `self.attr` of one module holds (flow-insensitive)."""

    def __init__(
        self,
        sections: dict[Section, dict[str, FieldType]],
        stored: dict[str, set[tuple[str, Section]]] | None = None,
    ) -> None:
        self.sections = sections
        self.by_name = {cls.__name__: cls for cls in sections}
        self.env: dict[str, set[tuple[str, Section]]] = {}
        # `self.attr` bindings learnt in the other modules (a page's state object is built in
        # one module and read as `page.config` in another).
        self.stored = stored or {}

    @staticmethod
    def key(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            return f"self.{node.attr}"
        return None

    def of_annotation(self, node: ast.expr | None) -> set[tuple[str, Section]]:
        if node is None:
            return set()
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return self.of_annotation(ast.parse(node.value, mode="eval").body)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self.of_annotation(node.left) | self.of_annotation(node.right)
        if isinstance(node, ast.Subscript):  # Iterable[TokenConfig], tuple[TokenConfig, ...]
            inner = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) else node.slice
            return {("list", cls) for _, cls in self.of_annotation(inner)}
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
        cls = self.by_name.get(name) if isinstance(name, str) else None
        return {("one", cls)} if cls is not None else set()

    def of(self, node: ast.expr) -> set[tuple[str, Section]]:
        key = self.key(node)
        if key is not None and key in self.env:
            return self.env[key]
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            cls = RETURNS_SECTION.get(name) if isinstance(name, str) else None
            return {("one", cls)} if cls is not None else set()
        if isinstance(node, ast.Attribute):
            # `page.config`, where this module stores a section as `self.config`: the
            # receiver's own type is unknown (an aiohttp app key), the attribute's is not.
            out: set[tuple[str, Section]] = set(self.env.get(f"self.{node.attr}", set()))
            out |= self.stored.get(f"self.{node.attr}", set())
            for kind, cls in self.of(node.value):
                target = self.sections[cls].get(node.attr) if kind == "one" else None
                if target is not None:
                    out.add(target)
            return out
        if isinstance(node, ast.IfExp):
            return self.of(node.body) | self.of(node.orelse)
        if isinstance(node, ast.BoolOp):
            return set().union(*(self.of(v) for v in node.values))
        return set()

    def bind(self, target: ast.expr, found: set[tuple[str, Section]]) -> bool:
        key = self.key(target)
        if key is None or not found:
            return False
        known = self.env.setdefault(key, set())
        if found <= known:
            return False
        known |= found
        return True

    def learn(self, tree: ast.Module) -> None:
        """Bind names until nothing new is learnt."""
        changed = True
        while changed:
            changed = False
            for node in ast.walk(tree):
                if isinstance(node, ast.arg):
                    changed |= self.bind(
                        ast.Name(node.arg, ast.Load()), self.of_annotation(node.annotation)
                    )
                elif isinstance(node, ast.AnnAssign):
                    found = self.of_annotation(node.annotation)
                    if node.value is not None:
                        found |= self.of(node.value)
                    changed |= self.bind(node.target, found)
                elif isinstance(node, ast.Assign):
                    found = self.of(node.value)
                    for target in node.targets:
                        changed |= self.bind(target, found)
                elif isinstance(node, ast.NamedExpr):
                    changed |= self.bind(node.target, self.of(node.value))
                elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
                    items = {("one", cls) for kind, cls in self.of(node.iter) if kind == "list"}
                    changed |= self.bind(node.target, items)

    def reads(self, tree: ast.Module) -> Iterator[tuple[Section, str]]:
        """Every (section, field) read as `<value of that section>.field`."""
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                for kind, cls in self.of(node.value):
                    if kind == "one" and node.attr in self.sections[cls]:
                        yield cls, node.attr


def fields_read(sections: dict[Section, dict[str, FieldType]]) -> set[tuple[Section, str]]:
    """Config fields read anywhere in the gateway's source outside the config package."""
    trees = [
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for path in sorted(SOURCE.rglob("*.py"))
        if not path.is_relative_to(CONFIG_PACKAGE)
    ]
    stored: dict[str, set[tuple[str, Section]]] = {}
    for tree in trees:
        scan = _Types(sections)
        scan.learn(tree)
        for key, found in scan.env.items():
            if key.startswith("self."):
                stored.setdefault(key, set()).update(found)
    found_reads: set[tuple[Section, str]] = set()
    for tree in trees:
        scan = _Types(sections, stored)
        scan.learn(tree)
        found_reads.update(scan.reads(tree))
    return found_reads


# --- the tests -------------------------------------------------------------------------------


def test_every_documented_key_is_read_outside_config() -> None:
    sections = schema()
    documented = leaves(documented_paths(EXAMPLE.read_text(encoding="utf-8"))) - PROSE
    read = fields_read(sections)
    unread = sorted(
        path for path in documented - READ_GENERICALLY if resolve(path, sections) not in read
    )
    assert unread == [], (
        f"documented in {EXAMPLE.name} but nothing in gateway/ reads them: {unread}; "
        "wire each one or remove it from the schema and the example"
    )


def test_allow_lists_name_documented_keys_only() -> None:
    documented = documented_paths(EXAMPLE.read_text(encoding="utf-8"))
    # A stale entry would hide nothing today and anything tomorrow.
    assert documented >= READ_GENERICALLY
    assert documented >= PROSE


def test_the_scan_sees_reads_through_aliases_and_not_lookalikes() -> None:
    sections = schema()
    source = """
from gateway.config.schema import ClockConfig, Config

class Monitor:
    def __init__(self, config: ClockConfig, cfg: Config, other: object) -> None:
        self._config = config
        reg = cfg.register
        self.port = other.port                      # not the config's port
        for entry in cfg.http.tokens:
            print(entry.token_sha256)
        print(self._config.drift_threshold_s, reg.emulator.ofd_interval_s)
"""
    tree = ast.parse(source)
    scan = _Types(sections)
    scan.learn(tree)
    read = {(cls.__name__, name) for cls, name in scan.reads(tree)}
    assert ("ClockConfig", "drift_threshold_s") in read
    assert ("EmulatorConfig", "ofd_interval_s") in read
    assert ("TokenConfig", "token_sha256") in read
    assert ("RegisterConfig", "port") not in read


def test_documented_paths_follow_commented_nesting() -> None:
    text = """
register:
  port: emulator
  # operator:
  #   name: "A"
  emulator:
    # clock_offset_s: -120
http:
  tokens: []
  #   - name: crm
  #     token_file: credential:crm-token
  # Default: none; off: is prose only after a capital letter
"""
    assert leaves(documented_paths(text)) == {
        "register.port",
        "register.operator.name",
        "register.emulator.clock_offset_s",
        "http.tokens.name",
        "http.tokens.token_file",
    }
