"""Pure: ATOL-style request JSON -> validated tasks; the one gate every task passes.

The HTTP and MQTT ingresses get `{"uuid": ..., "request": [task, ...]}` and call
`parse_request`; the worker re-parses the stored `tasks_json` with `parse_tasks_json`.

Rules worth knowing:
- Anything wrong with the input is a `ValidationError` naming the path of the value
  (`request[0].items[1].price`), never another exception: a client must be able to tell
  its own mistake (400) from the box's fault (5xx), and never retry a bad task forever.
- Numbers are parsed as exact decimals. NaN/Infinity tokens, numbers out of range, booleans,
  strings, more than 2 decimals for money (6 for quantities), negative and out-of-range
  values are rejected.
- Text that cannot be kept as UTF-8 (a lone surrogate, in a value or in a key) is refused
  anywhere in a task, before any other check: the journal could not store it.
- The first error found is raised, in a fixed order: the envelope, then each task in turn
  (see `receipts.py` for the order inside a receipt).
- Every field is carried into the fiscal document or refused by name: a field this format
  does not have, a known ATOL field that cannot be carried yet (agent data, operational
  requisites…), optional data the configured register cannot carry (`carries`), and
  `text`/`barcode` items (nothing non-fiscal is printed) are all errors, never dropped.
- Marked goods (`imcParams`, `industryInfo`, the marking tasks) are read in `imc.py`.
- Text must fit the register's character set after the configured replacements ("₽" ->
  "руб."); a character outside it is refused naming the field and the character.
"""

from __future__ import annotations

import re

from gateway.atol import names
from gateway.atol import values as v
from gateway.atol.decimal_json import NotANumber, dumps, loads
from gateway.atol.imc import MARKING_TASK_TYPES, canonical_industry, marking_task
from gateway.atol.limits import MAX_BODY_BYTES, MAX_DEPTH
from gateway.atol.names import NameMapping
from gateway.atol.receipts import parse_operator, receipt_task
from gateway.atol.tasks import (
    CashTask,
    CloseShiftTask,
    ContinuePrintTask,
    FiscalTask,
    OpenShiftTask,
    ParsedRequest,
    QueryKind,
    QueryTask,
    ReceiptTask,
    ReportXTask,
)
from gateway.domain import fiscal
from gateway.domain.errors import ValidationError

_UUID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_QUERIES = {k.value: k for k in QueryKind}
_SIMPLE: dict[str, FiscalTask] = {
    "reportX": ReportXTask(),
    "continuePrint": ContinuePrintTask(),
    "getFnInfo": QueryTask(QueryKind.FN_STATUS, info=True),
    **{name: QueryTask(query) for name, query in _QUERIES.items()},
}


class RequestTooLarge(ValidationError):
    """The request body is over the size limit (HTTP 413)."""

    code = "too_large"


def parse_request(
    body: bytes | str, mapping: NameMapping, *, max_bytes: int = MAX_BODY_BYTES
) -> ParsedRequest:
    """Validate a POST body `{"uuid", "request": [task, ...] | task}`; raise the first error."""
    size = len(body) if isinstance(body, bytes) else len(body.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise RequestTooLarge("", f"request body is larger than {max_bytes} bytes")
    doc = loads(body)
    if not isinstance(doc, dict):
        raise ValidationError("", "the body must be a JSON object")
    uuid = doc.get("uuid")
    if uuid is None:
        raise ValidationError("uuid", "required")
    if not isinstance(uuid, str) or not _UUID.fullmatch(uuid):
        raise ValidationError("uuid", "must be 1 to 64 characters: A-Z a-z 0-9 - _ . :")
    raw = doc.get("request")
    if raw is None:
        raise ValidationError("request", "required")
    if isinstance(raw, dict):
        raw = [raw]  # ATOL also takes a single task
    if not isinstance(raw, list):
        raise ValidationError("request", "must be a list of tasks")
    if not raw:
        raise ValidationError("request", "must not be empty")
    tasks = tuple(
        parse_task(obj, v.idx("request", i), mapping, job_id=uuid) for i, obj in enumerate(raw)
    )
    canonical = [_canonical(obj, task, mapping) for obj, task in zip(raw, tasks, strict=True)]
    return ParsedRequest(uuid, tasks, dumps(canonical))


def parse_tasks_json(
    text: str, mapping: NameMapping, *, job_id: str | None = None
) -> tuple[FiscalTask, ...]:
    """Parse a stored `ParsedRequest.tasks_json` again (the worker, after a restart)."""
    raw = loads(text)
    if not isinstance(raw, list):
        raise ValidationError("request", "must be a list of tasks")
    return tuple(
        parse_task(obj, v.idx("request", i), mapping, job_id=job_id) for i, obj in enumerate(raw)
    )


def parse_task(
    obj: object, path: str, mapping: NameMapping, *, job_id: str | None = None
) -> FiscalTask:
    """Validate one ATOL task; `path` prefixes every error's field, e.g. "request[0]"."""
    task = v.obj(obj, path)
    _check_tree(task, path)
    kind = task.get("type")
    type_path = v.key(path, "type")
    if kind is None:
        raise ValidationError(type_path, "required")
    if not isinstance(kind, str):
        raise ValidationError(type_path, "must be a string")
    if kind in names.RECEIPT_TYPES:
        return receipt_task(task, path, names.RECEIPT_TYPES[kind], mapping, job_id)
    if kind in ("openShift", "closeShift"):
        v.check_members(task, path, frozenset({"type", "operator", "electronically"}), {})
        if v.flag(task, "electronically", path):
            raise ValidationError(
                v.key(path, "electronically"), "shift reports are always printed; remove it"
            )
        operator = parse_operator(task.get("operator"), v.key(path, "operator"), mapping)
        return OpenShiftTask(operator) if kind == "openShift" else CloseShiftTask(operator)
    if kind in ("cashIn", "cashOut"):
        v.check_members(task, path, frozenset({"type", "cashSum", "operator"}), {})
        amount = v.money(v.required(task, "cashSum", path), v.key(path, "cashSum"), positive=True)
        operator = parse_operator(task.get("operator"), v.key(path, "operator"), mapping)
        return CashTask(fiscal.CashDirection(kind), amount, operator)
    if kind in _SIMPLE:
        v.check_members(task, path, frozenset({"type"}), {})
        return _SIMPLE[kind]
    if kind in MARKING_TASK_TYPES:
        return marking_task(task, path, mapping)
    if kind in names.CORRECTIONS:
        raise ValidationError(type_path, f"receipt type {kind!r} is not supported yet")
    if kind in names.UNSUPPORTED_TASKS:
        raise ValidationError(type_path, f"task type {kind!r} is not supported yet")
    raise ValidationError(type_path, f"unknown task type {kind!r}")


# Where a value sits, built into text only for an error: (parent, member name or index).
_Where = tuple["_Where", str | int] | str


def _where(at: _Where) -> str:
    segments: list[str | int] = []
    while isinstance(at, tuple):
        at, segment = at
        segments.append(segment)
    path = at
    for segment in reversed(segments):
        path = v.idx(path, segment) if isinstance(segment, int) else v.key(path, segment)
    return path


def _check_tree(obj: object, path: str) -> None:
    """Refuse, in document order: numbers without a value (NaN, Infinity, out of range), text
    that cannot be stored (in values and keys) and nesting deeper than MAX_DEPTH."""
    stack: list[tuple[object, _Where, int]] = [(obj, path, 0)]
    while stack:
        value, at, depth = stack.pop()
        if isinstance(value, NotANumber):
            raise ValidationError(_where(at), value.reason)
        if isinstance(value, str):
            problem = names.unstorable(value)
            if problem is not None:
                raise ValidationError(_where(at), problem)
        elif isinstance(value, dict):
            if depth >= MAX_DEPTH:
                raise ValidationError(_where(at), f"nested more than {MAX_DEPTH} levels deep")
            for name in value:
                problem = names.unstorable(name)
                if problem is not None:
                    raise ValidationError(v.key(_where(at), name), f"the key {problem}")
            stack.extend((value[name], (at, name), depth + 1) for name in reversed(value))
        elif isinstance(value, list):
            if depth >= MAX_DEPTH:
                raise ValidationError(_where(at), f"nested more than {MAX_DEPTH} levels deep")
            stack.extend((value[i], (at, i), depth + 1) for i in range(len(value) - 1, -1, -1))


def _canonical(raw: object, task: FiscalTask, mapping: NameMapping) -> object:
    """`raw` with mapped names (payment types, VAT rates, units) replaced by ATOL names and
    text replacements applied, so that a later change of the config cannot change the job."""
    if not isinstance(task, ReceiptTask) or not isinstance(raw, dict):
        return raw
    out = _replaced(raw, mapping)
    assert isinstance(out, dict)
    positions = iter(task.receipt.items)
    items: list[object] = []
    for entry in out["items"]:
        if isinstance(entry, dict) and entry.get("type") == "position":
            item = next(positions)
            entry = {**entry, "tax": {**entry["tax"], "type": item.vat.value}}
            if isinstance(entry.get("measurementUnit"), str):
                entry["measurementUnit"] = names.UNIT_NAMES[item.measurement_unit]
            if item.industry:
                entry["industryInfo"] = canonical_industry(item.industry)
        items.append(entry)
    out["items"] = items
    if mapping.marking_strict and task.receipt.marked:
        # Kept with the job: a later change of `marking.strict` does not change it.
        out["validateMarkingCodes"] = True
    if task.receipt.industry:
        out["industryInfo"] = canonical_industry(task.receipt.industry)
    out["payments"] = [
        {**entry, "type": payment.type.value}
        for entry, payment in zip(out["payments"], task.receipt.payments, strict=True)
    ]
    if v.given(out.get("taxes")):
        out["taxes"] = [
            {
                **entry,
                "type": v.lookup(
                    entry["type"], "", names.VATS_AND_BARE_RATES, mapping.vat, ""
                ).value,
            }
            for entry in out["taxes"]
        ]
    return out


def _replaced(value: object, mapping: NameMapping) -> object:
    """`value` with the text replacements applied to every string in it (keys untouched)."""
    if isinstance(value, str):
        return names.replace_text(value, mapping)
    if isinstance(value, list):
        return [_replaced(item, mapping) for item in value]
    if isinstance(value, dict):
        return {k: _replaced(member, mapping) for k, member in value.items()}
    return value
