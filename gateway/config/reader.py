"""YAML config -> frozen dataclasses; every error names its dotted key path and its line.

How it works: the YAML is composed into a node tree (every node keeps its line) and a generic
reader walks it against the dataclasses of `schema.py`. Each field's type says how its value
is read (bool, int, float, str, Path, enum, Listen, Secret, a nested section, a list); the
field's `rule(...)` adds ranges, allowed values, text parsers and checks; the checks of
`section_checks.py` look at combinations inside one section. Every problem is collected, so
one run reports them all. Scalars are read from their source text where YAML 1.1 would mangle
it (`close_at: 23:55` is not 1435, `vatin: 0274062111` is not octal, `mode: off` is not
false). A `<key>_file` names a file (or credential:NAME under $CREDENTIALS_DIRECTORY) holding
a secret or keys. Reads files, otherwise pure: stdlib and PyYAML only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import difflib
import enum
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from gateway.atol.names import NameMapping
from gateway.config.files import file_problem, read_small_file, secret_file
from gateway.config.mapping_section import read_mapping
from gateway.config.nodes import (
    BAD,
    YAML_TAG,
    field_of,
    is_null,
    join,
    kind,
    line_of,
    plain_text,
)
from gateway.config.parsers import parse_hhmm, parse_listen, secret_from_file
from gateway.config.rules import MAX_SECRET_FILE_BYTES, NO_RULE, Rule
from gateway.config.schema import Config, MqttTls
from gateway.config.section_checks import VALIDATORS
from gateway.config.values import Listen, Secret
from gateway.domain.errors import ConfigError, ConfigIssue

# Keys people reach for to switch TLS verification off; refused with a reason, not a shrug.
_NO_VERIFY_KEYS: Final = frozenset(
    {"insecure", "tls_insecure", "verify", "check_hostname", "cert_reqs", "skip_verify"}
)


@dataclass(frozen=True, slots=True)
class _Field:
    """One schema field: its type, rule and whether it may be left out."""

    hint: Any
    rule: Rule
    required: bool
    file_ok: bool


_FIELDS: dict[type, dict[str, _Field]] = {}


def _fields(cls: type) -> dict[str, _Field]:
    """The schema fields of a dataclass, cached."""
    cached = _FIELDS.get(cls)
    if cached is None:
        hints = typing.get_type_hints(cls)
        cached = {}
        for f in dataclasses.fields(cls):
            rule = f.metadata.get("rule", NO_RULE)
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            hint = hints[f.name]
            file_ok = _unwrap(hint) is Secret or rule.from_file is not None
            cached[f.name] = _Field(hint, rule, required, file_ok)
        _FIELDS[cls] = cached
    return cached


def _unwrap(hint: Any) -> Any:
    """`X | None` -> X."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _is_optional(hint: Any) -> bool:
    """Whether None is allowed."""
    return typing.get_origin(hint) in (types.UnionType, typing.Union) and type(
        None
    ) in typing.get_args(hint)


@dataclass(frozen=True, slots=True)
class _Scope:
    """A section being checked: issues land on its keys, with their lines."""

    reader: _Reader
    path: str
    line: int | None
    written: Mapping[str, str]  # field name -> key as written (`password` or `password_file`)
    present: frozenset[str]  # fields the file gives a value (a key left empty does not count)
    failed: frozenset[str]  # fields whose own value was refused; checked here as their default

    def given(self, name: str) -> bool:
        """Whether the file sets this field to something."""
        return name in self.present

    def issue(
        self, name: str, message: str, *, at: str | None = None, needs: tuple[str, ...] = ()
    ) -> None:
        """An issue on field `name`; its line is that key's, else `at`'s, else the section's."""
        # A conclusion drawn from a refused field's stand-in default would only mislead.
        if any(field_of(n) in self.failed for n in (name, at, *needs) if n is not None):
            return
        path = join(self.path, self.written.get(name, name))
        lines = self.reader.lines
        line = lines.get(path)
        if line is None and at is not None:
            line = lines.get(join(self.path, self.written.get(at, at)))
        self.reader.issue(path, line if line is not None else self.line, message)


class _Reader:
    """Walks the YAML node tree against the schema, collecting every issue."""

    def __init__(
        self,
        loader: yaml.SafeLoader,
        base_dir: Path,
        credentials_dir: Path | None = None,
        read_instead: Mapping[Path, Path] | None = None,
    ) -> None:
        self.loader = loader
        self.base_dir = base_dir
        self.credentials_dir = credentials_dir
        self.read_instead: Mapping[Path, Path] = read_instead or {}
        self.issues: list[ConfigIssue] = []
        self.lines: dict[str, int] = {}  # dotted path -> line of its key (or list item)

    def issue(self, path: str, line: int | None, message: str) -> None:
        """Record one problem."""
        self.issues.append(ConfigIssue(path, line, message))

    def section(self, cls: type, node: yaml.Node | None, path: str, line: int | None) -> Any:
        """A dataclass from a mapping node; absent or null means all defaults."""
        if node is not None and is_null(node):
            node = None
        if node is not None and not isinstance(node, yaml.MappingNode):
            where = path or "(document)"
            self.issue(where, line_of(node), f"must be a mapping of keys, not {kind(node)}")
            return BAD
        fields = _fields(cls)
        pairs = self.pairs(node, path)
        kwargs: dict[str, Any] = {}
        written: dict[str, str] = {}
        present: set[str] = set()
        failed: set[str] = set()
        for key, (key_node, value_node) in pairs.items():
            key_path = join(path, key)
            key_line = line_of(key_node)
            name = key
            via_file = False
            if key.endswith("_file") and key[: -len("_file")] in fields:
                name, via_file = key[: -len("_file")], True
                if not fields[name].file_ok:
                    name, via_file = key, False
            if name not in fields:
                self._unknown(cls, fields, key, key_path, key_line)
                continue
            if via_file and name in pairs:
                self.issue(key_path, key_line, f"give either {name} or {key}, not both")
                failed.add(name)
                continue
            written[name] = key
            if not is_null(value_node):
                present.add(name)
            self.lines.setdefault(join(path, name), key_line)
            f = fields[name]
            if via_file:
                value = self._from_file(f, value_node, key_path)
            else:
                value = self.value(f.hint, value_node, key_path, f.rule, key_line)
            if value is not BAD and value is not None:
                value = self._check(f.rule, value, key_path, line_of(value_node))
            if value is BAD:
                failed.add(name)
            else:
                kwargs[name] = value
        missing = [n for n, f in fields.items() if f.required and n not in kwargs]
        for name in missing:
            if name not in failed:
                self.issue(join(path, name), line, "is required")
        if missing:
            return BAD
        obj = cls(**kwargs)  # refused fields stand in as their defaults, for the checks below
        check = VALIDATORS.get(cls)
        if check is not None:
            before = len(self.issues)
            scope = _Scope(self, path, line, written, frozenset(present), frozenset(failed))
            obj = check(obj, scope)
            if len(self.issues) > before:
                return BAD
        return BAD if failed else obj

    def pairs(
        self, node: yaml.MappingNode | None, path: str
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The keys of a mapping node; duplicates and non-text keys are issues."""
        pairs: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        if node is None:
            return pairs
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or is_null(key_node):
                self.issue(path or "(document)", line_of(key_node), "keys must be plain names")
                continue
            key = plain_text(key_node)
            if key in pairs:
                first = line_of(pairs[key][0])
                self.issue(
                    join(path, key), line_of(key_node), f"given twice (first on line {first})"
                )
                continue
            pairs[key] = (key_node, value_node)
            self.lines[join(path, key)] = line_of(key_node)
        return pairs

    def _unknown(
        self, cls: type, fields: Mapping[str, _Field], key: str, path: str, line: int
    ) -> None:
        """An unknown key, with the closest known one as a hint."""
        if cls is MqttTls and key in _NO_VERIFY_KEYS:
            self.issue(path, line, "unknown key; the broker's certificate is always verified")
            return
        known = [*fields, *(f"{n}_file" for n, f in fields.items() if f.file_ok)]
        close = difflib.get_close_matches(key, known, n=1)
        self.issue(path, line, "unknown key" + (f"; did you mean {close[0]!r}?" if close else ""))

    def value(self, hint: Any, node: yaml.Node, path: str, rule: Rule, line: int) -> Any:
        """One value of type `hint` from its node; `line` is that of its key or list item."""
        if is_null(node):
            if _is_optional(hint):
                return None
            base = _unwrap(hint)
            if dataclasses.is_dataclass(base) and base is not Listen:
                return self.section(typing.cast(type, base), None, path, line)
            if typing.get_origin(base) is tuple:
                return ()
            if base is NameMapping:
                return NameMapping()
            self.issue(path, line_of(node), "has no value; leave the key out to get the default")
            return BAD
        hint = _unwrap(hint)
        if hint is NameMapping:
            return read_mapping(self, node, path)
        if dataclasses.is_dataclass(hint) and hint is not Listen:
            return self.section(typing.cast(type, hint), node, path, line)
        if typing.get_origin(hint) is tuple:
            if not isinstance(node, yaml.SequenceNode):
                self.issue(path, line_of(node), f"must be a list, not {kind(node)}")
                return BAD
            items: list[Any] = []
            for i, item in enumerate(node.value):
                item_path = f"{path}[{i}]"
                item_line = line_of(item)
                self.lines[item_path] = item_line
                items.append(self.value(typing.get_args(hint)[0], item, item_path, rule, item_line))
            return BAD if any(v is BAD for v in items) else tuple(items)
        if not isinstance(node, yaml.ScalarNode):
            self.issue(path, line_of(node), f"must be a single value, not {kind(node)}")
            return BAD
        if not str(node.tag).startswith(YAML_TAG):
            self.issue(path, line_of(node), f"YAML tags such as {node.tag} are not supported")
            return BAD
        return self.scalar(hint, node, path, rule)

    def scalar(self, hint: Any, node: yaml.ScalarNode, path: str, rule: Rule) -> Any:
        """A scalar value; text types read the source text, numbers and booleans the YAML value."""
        line = line_of(node)
        text = plain_text(node)
        try:
            if rule.parse is not None:
                return rule.parse(text)
            if hint is Listen:
                return parse_listen(text)
            if hint is dt.time:
                return parse_hhmm(text)
        except ValueError as err:
            self.issue(path, line, str(err))
            return BAD
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            allowed = [str(m.value) for m in hint]
            if text not in allowed:
                close = difflib.get_close_matches(text, allowed, n=1)
                hint_text = f"; did you mean {close[0]!r}?" if close else ""
                self.issue(
                    path, line, f"must be one of {', '.join(allowed)}; got {text!r}{hint_text}"
                )
                return BAD
            return hint(text)
        if hint is str:
            return text
        if hint is Secret:
            if not text:
                self.issue(path, line, "must not be empty")
                return BAD
            return Secret(text)
        if hint is Path:
            if not text.strip():
                self.issue(path, line, "must be a path")
                return BAD
            return self.path(text)
        if hint in (bool, int, float):
            return self._typed(hint, node, path, line)
        raise TypeError(f"the config schema uses an unsupported type {hint!r}")

    def _typed(self, hint: type, node: yaml.ScalarNode, path: str, line: int) -> Any:
        """bool, int or float as YAML reads it; bool is never a number, an int is a fine float."""
        try:
            raw = self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raw = plain_text(node)
        if hint is float and isinstance(raw, str) and node.style is None:
            with contextlib.suppress(ValueError):
                raw = float(raw)  # YAML 1.1 wants a dot; accept 1e3 as well
        if hint is bool:
            if isinstance(raw, bool):
                return raw
            self.issue(path, line, f"must be true or false; got {raw!r}")
            return BAD
        ok = isinstance(raw, int) and not isinstance(raw, bool)
        if hint is float:
            ok = ok or (isinstance(raw, float) and raw == raw and abs(raw) != float("inf"))
        if not ok:
            what = "a whole number" if hint is int else "a number"
            self.issue(path, line, f"must be {what}; got {raw!r}")
            return BAD
        return float(raw) if hint is float else raw

    def _check(self, rule: Rule, value: Any, path: str, line: int) -> Any:
        """Range, allowed values, the field's own check, file existence."""
        if rule.lo is not None and rule.hi is not None and not rule.lo <= value <= rule.hi:
            self.issue(path, line, f"must be between {rule.lo:g} and {rule.hi:g}; got {value:g}")
            return BAD
        if rule.choices and value not in rule.choices:
            choices = ", ".join(map(str, rule.choices))
            self.issue(path, line, f"must be one of {choices}; got {value}")
            return BAD
        if rule.check is not None:
            problem = rule.check(value)
            if problem is not None:
                self.issue(path, line, problem)
                return BAD
        if rule.must_exist and isinstance(value, Path):
            problem = file_problem(self.read_instead.get(value, value))
            if problem is not None:
                self.issue(path, line, problem)
                return BAD
        return value

    def path(self, text: str) -> Path:
        """A path; relative ones resolve against the config file's folder."""
        p = Path(text).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def _from_file(self, f: _Field, node: yaml.Node, path: str) -> Any:
        """A `<key>_file` value: a path, or credential:NAME in $CREDENTIALS_DIRECTORY."""
        if not isinstance(node, yaml.ScalarNode) or is_null(node) or not str(node.value).strip():
            self.issue(path, line_of(node), "must be a file path or credential:NAME")
            return BAD
        line = line_of(node)
        try:
            file = secret_file(plain_text(node).strip(), self.path, self.credentials_dir)
            file = self.read_instead.get(file, file)
            text = read_small_file(file, MAX_SECRET_FILE_BYTES)
        except ValueError as err:
            self.issue(path, line, str(err))
            return BAD
        convert = f.rule.from_file or secret_from_file
        try:
            return convert(text)
        except ValueError as err:
            self.issue(path, line, f"{file}: {err}")
            return BAD


def _syntax_issue(err: yaml.YAMLError, text: str) -> ConfigIssue:
    """A YAML syntax error as one issue with its line."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    line = int(mark.line) + 1 if mark is not None else None
    problem = getattr(err, "problem", None) or str(err)
    message = f"not valid YAML ({problem})"
    if line is not None:
        lines = text.splitlines()
        source_line = lines[line - 1] if 0 < line <= len(lines) else ""
        if re.search(r":\s*\[[0-9A-Fa-f:.]*\]:\d+", source_line):
            message += '; quote IPv6 addresses: listen: "[::1]:8080"'
        if "\t" in source_line[: len(source_line) - len(source_line.lstrip())]:
            message += "; indent with spaces, not tabs"
    return ConfigIssue("(syntax)", line, message)


def _sorted(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    """Issues in file order (stable, so one line's issues keep their order)."""
    return sorted(issues, key=lambda i: (i.line is None, i.line or 0))


# --- public API ---------------------------------------------------------------------------


def parse_config(
    text: str,
    *,
    source: str = "<string>",
    base_dir: Path | None = None,
    credentials_dir: Path | None = None,
    read_instead: Mapping[Path, Path] | None = None,
) -> Config:
    """Parse YAML text into a Config; ConfigError lists every issue found.

    `credentials_dir` is where credential:NAME points (default $CREDENTIALS_DIRECTORY).
    `read_instead` maps files the config names to the files checked and read in their place,
    for a config checked before its files are where it names them (`fiscal-gateway
    provision`); the Config keeps the names as written.
    """
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as err:
            raise ConfigError([_syntax_issue(err, text)]) from None
        base = base_dir if base_dir is not None else Path.cwd()
        reader = _Reader(loader, base, credentials_dir, read_instead)
        cfg = reader.section(Config, root, "", 1)
    finally:
        loader.dispose()
    if reader.issues or cfg is BAD:
        raise ConfigError(_sorted(reader.issues))
    assert isinstance(cfg, Config)
    return cfg


def load_config(path: Path) -> Config:
    """Read and parse a config file; relative paths in it resolve against its folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            [ConfigIssue("(file)", None, f"cannot read {path}: {err.strerror or err}")]
        ) from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            [ConfigIssue("(file)", None, f"{path} is not UTF-8 text ({err.reason})")]
        ) from None
    return parse_config(text, source=str(path), base_dir=path.absolute().parent)


def check_config(path: Path) -> list[ConfigIssue]:
    """Every issue in a config file; empty when it is valid."""
    try:
        load_config(path)
    except ConfigError as err:
        return list(err.issues)
    return []


def default_config() -> Config:
    """The embedded defaults (`fiscal-gateway run` without --config): state in ./var."""
    return parse_config("", source="<defaults>", base_dir=Path.cwd())
