"""Pure: ATOL-style task JSON -> validated domain objects; CRM name mapping.

The HTTP and MQTT ingresses get `{"uuid": ..., "request": [task, ...]}` (DESIGN §3) and call
`parse_request`; the worker re-parses the stored `tasks_json` with `parse_tasks_json`.

Rules worth knowing:
- Numbers are parsed as exact decimals. NaN/Infinity tokens, booleans, strings, more than 2
  decimals for money (6 for quantities), negative and out-of-range values are rejected.
- The first error found is raised, in a fixed order: the envelope, then each task in turn;
  inside a receipt its fields in the order `type, taxationType, electronically, operator,
  clientInfo, agentInfo/supplierInfo, items, payments, total`, then the checks that span
  fields (total, payments against the total, change). `field` is the path of the value.
- Unknown fields are ignored (ATOL clients send many); an unknown task, item or payment type
  is an error. Known ATOL fields that would change the fiscal document and that this gateway
  cannot carry yet (marking codes, agent and supplier data) are rejected, never dropped.
- `text` and `barcode` items are non-fiscal decoration: accepted and not printed.
- A CRM's own names for payment types, VAT rates and units go through `NameMapping`; an
  unmapped name is an error listing the accepted names, never a guess.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, TypeVar

from gateway import fiscal
from gateway.errors import ValidationError


@dataclass(frozen=True, slots=True)
class NameMapping:
    """A CRM's own names -> ATOL names: payment types, VAT groups, measurement units.

    e.g. payment_types {"Готівка": "cash"}, vat {"НДС 20%": "vat20"}, units {"шт": "piece"}.
    """

    payment_types: Mapping[str, str] = field(default_factory=dict)
    vat: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)


# --- limits ------------------------------------------------------------------------------

MAX_BODY_BYTES: Final = 32768  # ATOL's own limit for one request
# Positions per receipt. A 32 KB body holds roughly this many real lines; a discounted line may
# print as two, and the ФН caps the size of one fiscal document, so longer orders are split.
MAX_ITEMS: Final = 100
MAX_PAYMENTS: Final = 10  # five payment types; more entries than this is a client bug
MAX_DEPTH: Final = 32  # nesting of one task; real tasks are 4-5 levels deep
# 9 999 999 999.99: fits the 5-byte sums of Shtrih-M commands with room to spare.
MAX_MONEY: Final = 999_999_999_999  # kopecks
MAX_QUANTITY: Final = 100_000_000 * fiscal.QTY_SCALE  # ×10⁶; the 6-byte quantity field holds more
MAX_NAME_CHARS: Final = 128  # ФФД tag 1030
MAX_OPERATOR_CHARS: Final = 64  # ФФД tag 1021
MAX_CONTACT_CHARS: Final = 64  # ФФД tag 1008
MAX_DEPARTMENT: Final = 16

_UUID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_VATIN = re.compile(r"[0-9]{10}|[0-9]{12}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+[0-9]{10,15}")
_PHONE_PUNCTUATION = re.compile(r"[\s()-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RequestTooLarge(ValidationError):
    """The request body is over the size limit (HTTP 413)."""

    code = "too_large"


# --- tasks -------------------------------------------------------------------------------


class QueryKind(enum.Enum):
    """What a query task asks for, by its ATOL task type."""

    DEVICE_STATUS = "getDeviceStatus"
    SHIFT_STATUS = "getShiftStatus"
    FN_STATUS = "getFnStatus"
    OFD_EXCHANGE_STATUS = "ofdExchangeStatus"


_RECEIPT_TYPES: Final[dict[str, fiscal.ReceiptType]] = {
    "sell": fiscal.ReceiptType.SELL,
    "sellReturn": fiscal.ReceiptType.SELL_RETURN,
    "buy": fiscal.ReceiptType.BUY,
    "buyReturn": fiscal.ReceiptType.BUY_RETURN,
}
_RECEIPT_TYPE_NAMES: Final = {v: k for k, v in _RECEIPT_TYPES.items()}


@dataclass(frozen=True, slots=True)
class ReceiptTask:
    """sell, sellReturn, buy, buyReturn. `electronically`: sent to the buyer, not printed."""

    receipt: fiscal.Receipt
    electronically: bool = False

    @property
    def is_fiscal(self) -> bool:
        """Makes a fiscal document."""
        return True

    @property
    def type_name(self) -> str:
        """The ATOL task type."""
        return _RECEIPT_TYPE_NAMES[self.receipt.type]


@dataclass(frozen=True, slots=True)
class OpenShiftTask:
    """openShift; without an operator the configured default is used."""

    operator: fiscal.Operator | None = None

    @property
    def is_fiscal(self) -> bool:
        """Makes a fiscal document."""
        return True

    @property
    def type_name(self) -> str:
        """The ATOL task type."""
        return "openShift"


@dataclass(frozen=True, slots=True)
class CloseShiftTask:
    """closeShift (Z report)."""

    operator: fiscal.Operator | None = None

    @property
    def is_fiscal(self) -> bool:
        """Makes a fiscal document."""
        return True

    @property
    def type_name(self) -> str:
        """The ATOL task type."""
        return "closeShift"


@dataclass(frozen=True, slots=True)
class ReportXTask:
    """reportX: prints an X report, no fiscal document."""

    @property
    def is_fiscal(self) -> bool:
        """Makes a fiscal document."""
        return False

    @property
    def type_name(self) -> str:
        """The ATOL task type."""
        return "reportX"


@dataclass(frozen=True, slots=True)
class QueryTask:
    """A status query. `info` marks getFnInfo, answered like getFnStatus."""

    kind: QueryKind
    info: bool = False

    @property
    def is_fiscal(self) -> bool:
        """Makes a fiscal document."""
        return False

    @property
    def type_name(self) -> str:
        """The ATOL task type."""
        return "getFnInfo" if self.info else self.kind.value


@dataclass(frozen=True, slots=True)
class ContinuePrintTask:
    """continuePrint: finish a document whose printing stopped (paper out)."""

    @property
    def is_fiscal(self) -> bool:
        """Makes a fiscal document."""
        return False

    @property
    def type_name(self) -> str:
        """The ATOL task type."""
        return "continuePrint"


Task = ReceiptTask | OpenShiftTask | CloseShiftTask | ReportXTask | QueryTask | ContinuePrintTask


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A validated request and its task list as exact JSON, to be stored in the journal.

    In `tasks_json` CRM names are replaced by the ATOL names they map to, so a later change
    of the mapping cannot change a queued receipt.
    """

    uuid: str
    tasks: tuple[Task, ...]
    tasks_json: str


# --- name tables -------------------------------------------------------------------------

_CORRECTIONS: Final = frozenset(
    {"sellCorrection", "sellReturnCorrection", "buyCorrection", "buyReturnCorrection"}
)
# ATOL task types this gateway does not run (yet).
_UNSUPPORTED_TASKS: Final = frozenset(
    {
        "reportOfdExchangeStatus",
        "cashIn",
        "cashOut",
        "printLastReceiptCopy",
        "nonFiscal",
        "getShiftTotals",
    }
)
_QUERIES: Final = {k.value: k for k in QueryKind}

_TAXATION: Final = {
    "osn": fiscal.TaxationType.OSN,
    "usnIncome": fiscal.TaxationType.USN_INCOME,
    "usnIncomeOutcome": fiscal.TaxationType.USN_INCOME_OUTCOME,
    "esn": fiscal.TaxationType.ESN,
    "patent": fiscal.TaxationType.PATENT,
}
_PAYMENT_METHODS: Final = {
    "fullPrepayment": fiscal.PaymentMethod.FULL_PREPAYMENT,
    "prepayment": fiscal.PaymentMethod.PREPAYMENT,
    "advance": fiscal.PaymentMethod.ADVANCE,
    "fullPayment": fiscal.PaymentMethod.FULL_PAYMENT,
    "partialPayment": fiscal.PaymentMethod.PARTIAL_PAYMENT,
    "credit": fiscal.PaymentMethod.CREDIT,
    "creditPayment": fiscal.PaymentMethod.CREDIT_PAYMENT,
}
# ФФД tag 1212 by ATOL name. 12 and 16 have an old (ФФД 1.05) and a new name.
_PAYMENT_OBJECTS: Final = {
    "commodity": 1,
    "excise": 2,
    "job": 3,
    "service": 4,
    "gamblingBet": 5,
    "gamblingPrize": 6,
    "lottery": 7,
    "lotteryPrize": 8,
    "intellectualActivity": 9,
    "payment": 10,
    "agentCommission": 11,
    "pay": 12,
    "composite": 12,
    "another": 13,
    "proprietaryLaw": 14,
    "nonOperatingIncome": 15,
    "otherContributions": 16,
    "insuranceContributions": 16,
    "merchantTax": 17,
    "resortFee": 18,
    "deposit": 19,
    "consumption": 20,
    "soleProprietorCPIContributions": 21,
    "cpiContributions": 22,
    "soleProprietorCMIContributions": 23,
    "cmiContributions": 24,
    "csiContributions": 25,
    "casinoPayment": 26,
    "fundsIssuance": 27,
    "exciseWithoutMarking": 30,
    "exciseWithMarking": 31,
    "commodityWithoutMarking": 32,
    "commodityWithMarking": 33,
}
MAX_PAYMENT_OBJECT: Final = 33
# ФФД tag 2108 by ATOL name.
_UNITS: Final = {
    "piece": 0,
    "gram": 10,
    "kilogram": 11,
    "ton": 12,
    "centimeter": 20,
    "decimeter": 21,
    "meter": 22,
    "squareCentimeter": 30,
    "squareDecimeter": 31,
    "squareMeter": 32,
    "milliliter": 40,
    "liter": 41,
    "cubicMeter": 42,
    "kilowattHour": 50,
    "gkal": 51,
    "day": 70,
    "hour": 71,
    "minute": 72,
    "second": 73,
    "kilobyte": 80,
    "megabyte": 81,
    "gigabyte": 82,
    "terabyte": 83,
    "otherUnits": 255,
}
_UNIT_CODES: Final = frozenset(_UNITS.values())
_UNIT_NAMES: Final = {code: name for name, code in _UNITS.items()}
_VATS: Final = {v.value: v for v in fiscal.Vat}
# ATOL also takes the bare rate: "20" for vat20, "120" for vat120.
_VAT_NAMES: Final = {
    **_VATS,
    **{v.value.removeprefix("vat"): v for v in fiscal.Vat if v.value.startswith("vat")},
}
_PAYMENT_TYPES: Final = {p.value: p for p in fiscal.PaymentType}
_NON_FISCAL_ITEMS: Final = frozenset({"text", "barcode"})
# Known ATOL fields that change the fiscal document: refused rather than silently dropped.
_UNSUPPORTED_ITEM_FIELDS: Final = (
    ("imcParams", "marking codes are not supported yet"),
    ("markingCode", "marking codes are not supported yet"),
    ("agentInfo", "agent data is not supported yet"),
    ("supplierInfo", "supplier data is not supported yet"),
)
_UNSUPPORTED_RECEIPT_FIELDS: Final = (
    ("agentInfo", "agent data is not supported yet"),
    ("supplierInfo", "supplier data is not supported yet"),
)


# --- JSON --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Constant:
    """A NaN/Infinity token, kept so that the error can name its path."""

    token: str


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
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=_Constant,
            object_pairs_hook=_pairs,
        )
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno} (char {err.pos})"
        raise ValidationError("", f"not valid JSON: {err.msg} at {where}") from None
    except _DuplicateKey as err:
        raise ValidationError("", f"not valid JSON: duplicate key {err.args[0]!r}") from None
    except RecursionError:
        raise ValidationError("", "not valid JSON: nested too deeply") from None


def dumps(obj: object) -> str:
    """JSON text of parsed JSON, decimals written exactly."""
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, str):
        return json.dumps(obj, ensure_ascii=False)
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
            parts.append(json.dumps(key, ensure_ascii=False) + ":" + dumps(value))
        return "{" + ",".join(parts) + "}"
    raise ValueError(f"{type(obj).__name__} has no JSON form")


def _check_tree(obj: object, path: str) -> None:
    """Refuse NaN/Infinity anywhere and nesting deeper than MAX_DEPTH, in document order."""
    stack: list[tuple[object, str, int]] = [(obj, path, 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, _Constant):
            raise ValidationError(where, f"{value.token} is not a number")
        if isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise ValidationError(where, f"nested more than {MAX_DEPTH} levels deep")
            children = (
                [(v, _key(where, k), depth + 1) for k, v in value.items()]
                if isinstance(value, dict)
                else [(v, _idx(where, i), depth + 1) for i, v in enumerate(value)]
            )
            stack.extend(reversed(children))


# --- entry points ------------------------------------------------------------------------


def parse_request(
    body: bytes | str, mapping: NameMapping, *, max_bytes: int = MAX_BODY_BYTES
) -> ParsedRequest:
    """Validate a POST body `{"uuid", "request": [task, ...] | task}`; raise the first error."""
    size = len(body) if isinstance(body, bytes) else len(body.encode("utf-8"))
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
        parse_task(obj, _idx("request", i), mapping, job_id=uuid) for i, obj in enumerate(raw)
    )
    canonical = [_canonical(obj, task) for obj, task in zip(raw, tasks, strict=True)]
    return ParsedRequest(uuid, tasks, dumps(canonical))


def parse_tasks_json(
    text: str, mapping: NameMapping, *, job_id: str | None = None
) -> tuple[Task, ...]:
    """Parse a stored `ParsedRequest.tasks_json` again (the worker, after a restart)."""
    raw = loads(text)
    if not isinstance(raw, list):
        raise ValidationError("request", "must be a list of tasks")
    return tuple(
        parse_task(obj, _idx("request", i), mapping, job_id=job_id) for i, obj in enumerate(raw)
    )


def parse_task(obj: object, path: str, mapping: NameMapping, *, job_id: str | None = None) -> Task:
    """Validate one ATOL task; `path` prefixes every error's field, e.g. "request[0]"."""
    task = _obj(obj, path)
    _check_tree(task, path)
    kind = task.get("type")
    type_path = _key(path, "type")
    if kind is None:
        raise ValidationError(type_path, "required")
    if not isinstance(kind, str):
        raise ValidationError(type_path, "must be a string")
    if kind in _RECEIPT_TYPES:
        return _receipt_task(task, path, _RECEIPT_TYPES[kind], mapping, job_id)
    if kind == "openShift":
        return OpenShiftTask(_operator(task.get("operator"), _key(path, "operator")))
    if kind == "closeShift":
        return CloseShiftTask(_operator(task.get("operator"), _key(path, "operator")))
    if kind == "reportX":
        return ReportXTask()
    if kind == "continuePrint":
        return ContinuePrintTask()
    if kind in _QUERIES:
        return QueryTask(_QUERIES[kind])
    if kind == "getFnInfo":
        return QueryTask(QueryKind.FN_STATUS, info=True)
    if kind in _CORRECTIONS:
        raise ValidationError(type_path, f"receipt type {kind!r} is not supported yet")
    if kind in _UNSUPPORTED_TASKS:
        raise ValidationError(type_path, f"task type {kind!r} is not supported yet")
    raise ValidationError(type_path, f"unknown task type {kind!r}")


def _canonical(raw: object, task: Task) -> object:
    """`raw` with mapped names (payment types, VAT rates, units) replaced by ATOL names."""
    if not isinstance(task, ReceiptTask) or not isinstance(raw, dict):
        return raw
    out = dict(raw)
    positions = iter(task.receipt.items)
    items: list[object] = []
    for entry in raw["items"]:
        if isinstance(entry, dict) and entry.get("type") == "position":
            item = next(positions)
            entry = {**entry, "tax": {**entry["tax"], "type": item.vat.value}}
            if isinstance(entry.get("measurementUnit"), str):
                entry["measurementUnit"] = _UNIT_NAMES[item.measurement_unit]
        items.append(entry)
    out["items"] = items
    out["payments"] = [
        {**entry, "type": payment.type.value}
        for entry, payment in zip(raw["payments"], task.receipt.payments, strict=True)
    ]
    return out


def describe(task: Task) -> str:
    """A one-line summary for logs, without personal data (no names, e-mails or phones)."""
    if not isinstance(task, ReceiptTask):
        return task.type_name
    r = task.receipt
    paid = ", ".join(f"{p.type.value} {format_money(p.sum)}" for p in r.payments) or "nothing"
    lines = len(r.items)
    text = (
        f"{task.type_name}: {lines} line{'' if lines == 1 else 's'}, "
        f"total {format_money(r.total)}, paid {paid}"
    )
    if r.change:
        text += f", change {format_money(r.change)}"
    if task.electronically:
        text += ", electronic only"
    return text


def format_money(kopecks: int) -> str:
    """Kopecks as rubles with two decimals: 3209 -> "32.09"."""
    sign = "-" if kopecks < 0 else ""
    whole, part = divmod(abs(kopecks), 100)
    return f"{sign}{whole}.{part:02d}"


# --- receipts ----------------------------------------------------------------------------


def _receipt_task(
    task: dict[str, object],
    path: str,
    kind: fiscal.ReceiptType,
    mapping: NameMapping,
    job_id: str | None,
) -> ReceiptTask:
    """A receipt task: fields in a fixed order, then the checks spanning fields."""
    taxation: fiscal.TaxationType | None = None
    raw_taxation = task.get("taxationType")
    if raw_taxation is not None:
        taxation = _lookup(raw_taxation, _key(path, "taxationType"), _TAXATION, {}, "taxation type")
    electronically = task.get("electronically", False)
    if electronically is None:
        electronically = False
    if not isinstance(electronically, bool):
        raise ValidationError(_key(path, "electronically"), "must be true or false")
    operator = _operator(task.get("operator"), _key(path, "operator"))
    contact = _client_contact(task.get("clientInfo"), _key(path, "clientInfo"))
    if electronically and contact is None:
        raise ValidationError(
            _key(path, "clientInfo.emailOrPhone"), "required when electronically is true"
        )
    for name, message in _UNSUPPORTED_RECEIPT_FIELDS:
        if task.get(name):
            raise ValidationError(_key(path, name), message)
    items = _items(task.get("items"), _key(path, "items"), mapping)
    payments = _payments(task.get("payments"), _key(path, "payments"), mapping)
    receipt = fiscal.Receipt(
        type=kind,
        taxation=taxation,
        items=items,
        payments=payments,
        operator=operator,
        client_contact=contact,
        job_id=job_id,
    )
    _check_sums(task, path, receipt)
    return ReceiptTask(receipt, electronically)


def _check_sums(task: dict[str, object], path: str, receipt: fiscal.Receipt) -> None:
    """Receipt total, payments against the total, change only from cash."""
    total = receipt.total
    if total > MAX_MONEY:
        raise ValidationError(
            _key(path, "items"),
            f"the receipt total is too large (at most {format_money(MAX_MONEY)})",
        )
    if task.get("total") is not None:
        given = _money(task.get("total"), _key(path, "total"))
        if given != total:
            raise ValidationError(
                _key(path, "total"), f"does not match the sum of the items ({format_money(total)})"
            )
    payments_path = _key(path, "payments")
    paid = receipt.paid
    if paid > MAX_MONEY:
        raise ValidationError(
            payments_path, f"too large in sum (at most {format_money(MAX_MONEY)})"
        )
    if paid < total:
        raise ValidationError(
            payments_path,
            f"{format_money(paid)} paid is less than the total {format_money(total)}",
        )
    non_cash = sum(p.sum for p in receipt.payments if p.type is not fiscal.PaymentType.CASH)
    if non_cash > total:
        raise ValidationError(
            payments_path,
            f"non-cash payments {format_money(non_cash)} exceed the total {format_money(total)}; "
            "change can only be given from cash",
        )


def _items(value: object, path: str, mapping: NameMapping) -> tuple[fiscal.Item, ...]:
    """The fiscal lines of `items`; text and barcode items are dropped."""
    raw = _list(value, path)
    if len(raw) > MAX_ITEMS:
        raise ValidationError(path, f"more than {MAX_ITEMS} items")
    items: list[fiscal.Item] = []
    for i, entry in enumerate(raw):
        where = _idx(path, i)
        obj = _obj(entry, where)
        kind = _required(obj, "type", where)
        if not isinstance(kind, str):
            raise ValidationError(_key(where, "type"), "must be a string")
        if kind == "position":
            items.append(_position(obj, where, mapping))
        elif kind not in _NON_FISCAL_ITEMS:
            raise ValidationError(_key(where, "type"), f"item type {kind!r} is not supported")
    if not items:
        raise ValidationError(path, "must contain at least one position")
    return tuple(items)


def _position(obj: dict[str, object], path: str, mapping: NameMapping) -> fiscal.Item:
    """One `{"type": "position"}` item."""
    name = _text(_required(obj, "name", path), _key(path, "name"), MAX_NAME_CHARS)
    price = _money(_required(obj, "price", path), _key(path, "price"))
    quantity = _quantity(_required(obj, "quantity", path), _key(path, "quantity"))
    amount_path = _key(path, "amount")
    amount = _money(_required(obj, "amount", path), amount_path)
    full = fiscal.round_qty(price * quantity)
    if amount > full + 1:
        raise ValidationError(amount_path, f"more than price × quantity ({format_money(full)})")
    tax = _obj(_required(obj, "tax", path), _key(path, "tax"))
    tax_path = _key(path, "tax.type")
    raw_vat = _required(tax, "type", _key(path, "tax"))
    vat = _lookup(raw_vat, tax_path, _VAT_NAMES, mapping.vat, "VAT rate", _VATS)
    method = fiscal.PaymentMethod.FULL_PAYMENT
    if obj.get("paymentMethod") is not None:
        method_path = _key(path, "paymentMethod")
        raw_method = obj["paymentMethod"]
        if isinstance(raw_method, str):
            method = _lookup(raw_method, method_path, _PAYMENT_METHODS, {}, "payment method")
        else:
            method = fiscal.PaymentMethod(_code(raw_method, method_path, range(1, 8)))
    payment_object = 1
    if obj.get("paymentObject") is not None:
        object_path = _key(path, "paymentObject")
        raw_object = obj["paymentObject"]
        if isinstance(raw_object, str):
            payment_object = _lookup(
                raw_object, object_path, _PAYMENT_OBJECTS, {}, "payment object"
            )
        else:
            payment_object = _code(raw_object, object_path, range(1, MAX_PAYMENT_OBJECT + 1))
    unit = 0
    if obj.get("measurementUnit") is not None:
        unit_path = _key(path, "measurementUnit")
        raw_unit = obj["measurementUnit"]
        if isinstance(raw_unit, str):
            unit = _lookup(raw_unit, unit_path, _UNITS, mapping.units, "measurement unit")
        else:
            unit = _code(raw_unit, unit_path, _UNIT_CODES)
    department = 1
    if obj.get("department") is not None:
        department = _code(
            obj["department"], _key(path, "department"), range(1, MAX_DEPARTMENT + 1)
        )
    for field_name, message in _UNSUPPORTED_ITEM_FIELDS:
        if obj.get(field_name):
            raise ValidationError(_key(path, field_name), message)
    item = fiscal.Item(
        name=name,
        price=price,
        quantity=quantity,
        amount=amount,
        vat=vat,
        payment_method=method,
        payment_object=payment_object,
        measurement_unit=unit,
        department=department,
    )
    try:
        fiscal.print_lines(item)
    except ValueError as err:
        raise ValidationError(amount_path, f"cannot be printed: {err}") from None
    return item


def _payments(value: object, path: str, mapping: NameMapping) -> tuple[fiscal.Payment, ...]:
    """`payments[{type, sum}]`; may be empty only when the total is zero (checked later)."""
    raw = _list(value, path)
    if len(raw) > MAX_PAYMENTS:
        raise ValidationError(path, f"more than {MAX_PAYMENTS} payments")
    payments: list[fiscal.Payment] = []
    for i, entry in enumerate(raw):
        where = _idx(path, i)
        obj = _obj(entry, where)
        kind = _lookup(
            _required(obj, "type", where),
            _key(where, "type"),
            _PAYMENT_TYPES,
            mapping.payment_types,
            "payment type",
        )
        amount = _money(_required(obj, "sum", where), _key(where, "sum"), positive=True)
        payments.append(fiscal.Payment(kind, amount))
    return tuple(payments)


def _operator(value: object, path: str) -> fiscal.Operator | None:
    """`operator{name, vatin}`: the cashier, ФФД tags 1021 and 1203."""
    if value is None:
        return None
    obj = _obj(value, path)
    name = _text(_required(obj, "name", path), _key(path, "name"), MAX_OPERATOR_CHARS)
    vatin = obj.get("vatin")
    if vatin is None or vatin == "":
        return fiscal.Operator(name)
    if not isinstance(vatin, str) or not _VATIN.fullmatch(vatin):
        raise ValidationError(_key(path, "vatin"), "must be 10 or 12 digits")
    return fiscal.Operator(name, vatin)


def _client_contact(value: object, path: str) -> str | None:
    """`clientInfo.emailOrPhone`, ФФД tag 1008: an e-mail, or a phone as +digits."""
    if value is None:
        return None
    obj = _obj(value, path)
    raw = obj.get("emailOrPhone")
    where = _key(path, "emailOrPhone")
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationError(where, "must be a string")
    contact = raw.strip()
    if not contact:
        return None
    if "@" in contact:
        if len(contact) > MAX_CONTACT_CHARS or not _EMAIL.fullmatch(contact):
            raise ValidationError(where, "not an e-mail address like name@example.com")
        return contact
    phone = _PHONE_PUNCTUATION.sub("", contact)
    if not _PHONE.fullmatch(phone):
        raise ValidationError(where, "not an e-mail address or a phone number like +79991234567")
    return phone


# --- values ------------------------------------------------------------------------------

_T = TypeVar("_T")


def _key(path: str, key: str) -> str:
    """The path of a member."""
    return f"{path}.{key}" if path else key


def _idx(path: str, index: int) -> str:
    """The path of a list element."""
    return f"{path}[{index}]"


def _obj(value: object, path: str) -> dict[str, object]:
    """A JSON object."""
    if not isinstance(value, dict):
        raise ValidationError(path, "must be an object")
    return value


def _list(value: object, path: str) -> list[object]:
    """A JSON array (required)."""
    if value is None:
        raise ValidationError(path, "required")
    if not isinstance(value, list):
        raise ValidationError(path, "must be a list")
    return value


def _required(obj: dict[str, object], key: str, path: str) -> object:
    """A member that must be present and not null."""
    value = obj.get(key)
    if value is None:
        raise ValidationError(_key(path, key), "required")
    return value


def _text(value: object, path: str, max_chars: int) -> str:
    """A printable, non-blank string of at most `max_chars` characters."""
    if not isinstance(value, str):
        raise ValidationError(path, "must be a string")
    if not value.strip():
        raise ValidationError(path, "must not be empty")
    if len(value) > max_chars:
        raise ValidationError(path, f"longer than {max_chars} characters")
    if _CONTROL.search(value):
        raise ValidationError(path, "contains control characters")
    return value


def _lookup(
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


def _number(value: object, path: str) -> Decimal:
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
    number = _number(value, path)
    if number < 0:
        raise ValidationError(path, "must not be negative")
    if positive and number == 0:
        raise ValidationError(path, "must be greater than 0")
    if number > Decimal(limit).scaleb(-places):
        raise ValidationError(path, f"too large (at most {show})")
    scaled = _scaled(number, places)
    if scaled is None:
        raise ValidationError(path, f"more than {places} decimals")
    return scaled


def _money(value: object, path: str, *, positive: bool = False) -> int:
    """Rubles -> kopecks: exact, at most 2 decimals."""
    return _decimal_field(
        value, path, 2, MAX_MONEY, positive=positive, show=format_money(MAX_MONEY)
    )


def _quantity(value: object, path: str) -> int:
    """A quantity > 0 -> ×10⁶: exact, at most 6 decimals."""
    show = str(MAX_QUANTITY // fiscal.QTY_SCALE)
    return _decimal_field(value, path, 6, MAX_QUANTITY, positive=True, show=show)


def _code(value: object, path: str, allowed: range | frozenset[int]) -> int:
    """A whole-number code from `allowed`."""
    number = _number(value, path)
    if not min(allowed) <= number <= max(allowed) or number not in allowed:
        if isinstance(allowed, range):
            raise ValidationError(path, f"must be from {allowed.start} to {allowed.stop - 1}")
        raise ValidationError(path, f"must be one of {', '.join(map(str, sorted(allowed)))}")
    return int(number)
