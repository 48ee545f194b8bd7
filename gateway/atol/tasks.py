"""Pure: ATOL-style task JSON -> validated domain objects; CRM name mapping.

The HTTP and MQTT ingresses get `{"uuid": ..., "request": [task, ...]}` (DESIGN §3) and call
`parse_request`; the worker re-parses the stored `tasks_json` with `parse_tasks_json`.

Rules worth knowing:
- Numbers are parsed as exact decimals. NaN/Infinity tokens, booleans, strings, more than 2
  decimals for money (6 for quantities), negative and out-of-range values are rejected.
- The first error found is raised, in a fixed order: the envelope, then each task in turn;
  inside a receipt unknown and refused members first, then its fields in the order `type,
  taxationType, electronically, operator, clientInfo, paymentsPlace, paymentsAddress,
  additionalAttribute, userAttribute, items, payments`, then the checks that span fields
  (total, payments against the total, change, taxes). `field` is the path of the value.
- Every field is carried into the fiscal document or refused by name: a field this format
  does not have, a known ATOL field that cannot be carried yet (marking codes, agent data,
  industry requisites…), optional data the configured register cannot carry (`carries`), and
  `text`/`barcode` items (nothing non-fiscal is printed) are all errors, never dropped.
- Text must fit the register's character set after the configured replacements ("₽" ->
  "руб."); a character outside it is refused naming the field and the character.
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

from gateway.domain import fiscal
from gateway.domain.errors import ValidationError

NOT_CONFIGURED: Final[Mapping[str, bool]] = {"not_configured": True}


@dataclass(frozen=True, slots=True)
class NameMapping:
    """A CRM's own names -> ATOL names: payment types, VAT groups, measurement units.

    e.g. payment_types {"Готівка": "cash"}, vat {"НДС 20%": "vat20"}, units {"шт": "piece"}.
    """

    payment_types: Mapping[str, str] = field(default_factory=dict)
    vat: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)
    # Characters a register cannot print -> the text printed instead, e.g. {"₽": "руб."}.
    text: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TEXT_REPLACEMENTS))
    # Set by the box from its register, not from the config file (`NOT_CONFIGURED`):
    # the register's character set (text outside it is refused after `text`; None = any) and
    # the optional receipt data it can carry (names in CARRIED_FIELDS; None = all).
    charset: str | None = field(default="cp1251", metadata=NOT_CONFIGURED)
    carries: frozenset[str] | None = field(default=None, metadata=NOT_CONFIGURED)


# "₽" is not in cp1251, and CRMs put it in names; the tax office reads "руб." the same.
DEFAULT_TEXT_REPLACEMENTS: Final[Mapping[str, str]] = {"₽": "руб."}

# Optional receipt data a register driver may or may not carry (ATOL field paths). A driver
# that cannot carry one has it refused by name at the edge, before anything is queued.
CARRIED_FIELDS: Final = frozenset(
    {
        "clientInfo.emailOrPhone",
        "clientInfo.name",
        "clientInfo.vatin",
        "electronically",
        "paymentsPlace",
        "paymentsAddress",
        "additionalAttribute",
        "userAttribute",
        "operator",
        "items.measurementUnit",
        "items.exciseSum",
        "items.countryCode",
        "items.customsDeclaration",
        "items.additionalAttribute",
        "items.department",
    }
)


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
    SHIFT_TOTALS = "getShiftTotals"


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

    @property
    def electronically(self) -> bool:
        """Sent to the buyer's e-mail or phone instead of printed."""
        return self.receipt.electronically

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


@dataclass(frozen=True, slots=True)
class CashTask:
    """cashIn / cashOut: `amount` kopecks put into or taken out of the cash drawer."""

    direction: fiscal.CashDirection
    amount: int
    operator: fiscal.Operator | None = None

    @property
    def is_fiscal(self) -> bool:
        """Changes the register's counters, so it runs exactly once like a fiscal document."""
        return True

    @property
    def type_name(self) -> str:
        """The ATOL task type."""
        return self.direction.value


Task = (
    ReceiptTask
    | OpenShiftTask
    | CloseShiftTask
    | ReportXTask
    | QueryTask
    | ContinuePrintTask
    | CashTask
)


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
        "printLastReceiptCopy",
        "nonFiscal",
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
    canonical = [_canonical(obj, task, mapping) for obj, task in zip(raw, tasks, strict=True)]
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
    if kind in ("openShift", "closeShift"):
        _check_members(task, path, frozenset({"type", "operator", "electronically"}), {})
        if _flag(task, "electronically", path):
            raise ValidationError(
                _key(path, "electronically"), "shift reports are always printed; remove it"
            )
        operator = _operator(task.get("operator"), _key(path, "operator"), mapping)
        return OpenShiftTask(operator) if kind == "openShift" else CloseShiftTask(operator)
    if kind in ("cashIn", "cashOut"):
        _check_members(task, path, frozenset({"type", "cashSum", "operator"}), {})
        amount = _money(_required(task, "cashSum", path), _key(path, "cashSum"), positive=True)
        operator = _operator(task.get("operator"), _key(path, "operator"), mapping)
        return CashTask(fiscal.CashDirection(kind), amount, operator)
    simple: dict[str, Task] = {
        "reportX": ReportXTask(),
        "continuePrint": ContinuePrintTask(),
        "getFnInfo": QueryTask(QueryKind.FN_STATUS, info=True),
        **{name: QueryTask(query) for name, query in _QUERIES.items()},
    }
    if kind in simple:
        _check_members(task, path, frozenset({"type"}), {})
        return simple[kind]
    if kind in _CORRECTIONS:
        raise ValidationError(type_path, f"receipt type {kind!r} is not supported yet")
    if kind in _UNSUPPORTED_TASKS:
        raise ValidationError(type_path, f"task type {kind!r} is not supported yet")
    raise ValidationError(type_path, f"unknown task type {kind!r}")


def _canonical(raw: object, task: Task, mapping: NameMapping) -> object:
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
                entry["measurementUnit"] = _UNIT_NAMES[item.measurement_unit]
        items.append(entry)
    out["items"] = items
    out["payments"] = [
        {**entry, "type": payment.type.value}
        for entry, payment in zip(out["payments"], task.receipt.payments, strict=True)
    ]
    if _given(out.get("taxes")):
        out["taxes"] = [
            {**entry, "type": _lookup(entry["type"], "", _VAT_NAMES, mapping.vat, "").value}
            for entry in out["taxes"]
        ]
    return out


def _replaced(value: object, mapping: NameMapping) -> object:
    """`value` with the text replacements applied to every string in it (keys untouched)."""
    if isinstance(value, str):
        for char, replacement in mapping.text.items():
            value = value.replace(char, replacement)
        return value
    if isinstance(value, list):
        return [_replaced(v, mapping) for v in value]
    if isinstance(value, dict):
        return {k: _replaced(v, mapping) for k, v in value.items()}
    return value


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

# Every member a receipt task, a position, a payment may have. A member outside these lists is
# refused by name: nothing a client sends is dropped on the way to the fiscal document.
_RECEIPT_FIELDS: Final = frozenset(
    {
        "type",
        "taxationType",
        "electronically",
        "ignoreNonFiscalPrintErrors",
        "operator",
        "clientInfo",
        "paymentsPlace",
        "paymentsAddress",
        "additionalAttribute",
        "userAttribute",
        "items",
        "payments",
        "taxes",
        "total",
    }
)
_POSITION_FIELDS: Final = frozenset(
    {
        "type",
        "name",
        "price",
        "quantity",
        "amount",
        "tax",
        "paymentMethod",
        "paymentObject",
        "measurementUnit",
        "department",
        "exciseSum",
        "countryCode",
        "customsDeclaration",
        "additionalAttribute",
    }
)
_MARKING = "marking codes are not supported yet"
# Known ATOL members that change the fiscal document but cannot be carried yet.
_REFUSED_RECEIPT_FIELDS: Final = {
    "agentInfo": "agent data (tags 1057, 1223…) is not supported yet",
    "supplierInfo": "supplier data (tags 1224…) is not supported yet",
    "industryInfo": "industry requisites (tag 1261) are not supported yet",
    "operatingInfo": "operational requisites (tag 1270) are not supported yet",
    "companyInfo": "the register sends its own registration data; companyInfo is not supported",
    "preItems": "printing text before the receipt is not supported; remove preItems",
    "postItems": "printing text after the receipt is not supported; remove postItems",
}
_REFUSED_ITEM_FIELDS: Final = {
    "imcParams": _MARKING,
    "markingCode": _MARKING,
    "nomenclatureCode": "product codes (tags 1162/1163) come with marking; not supported yet",
    "productCodes": "product codes (tag 1163) come with marking; not supported yet",
    "agentInfo": "agent data (tags 1222, 1223…) is not supported yet",
    "supplierInfo": "supplier data (tag 1224) is not supported yet",
}
_REFUSED_ITEM_TYPES: Final = {
    "text": "text lines are not printed by this gateway; remove the item",
    "barcode": "barcodes are not printed by this gateway; remove the item",
    "pictureFromMemory": "pictures are not printed by this gateway; remove the item",
    "pixels": "pictures are not printed by this gateway; remove the item",
    "userAttribute": "give the user attribute as the receipt's userAttribute {name, value}",
}
_CLIENT_FIELDS: Final = frozenset({"emailOrPhone", "name", "vatin"})
_REFUSED_CLIENT_FIELDS: Final = {
    key: "buyer identity documents, birth date, citizenship and address are not supported yet"
    for key in (
        "birthDate",
        "citizenship",
        "identityDocumentCode",
        "identityDocumentData",
        "address",
    )
}
# ФФД 1.2 string limits ([FFD] tags 1187, 1009, 1192, 1085, 1086, 1227, 1191, 1231).
MAX_PLACE_CHARS: Final = 64
MAX_ADDRESS_CHARS: Final = 256
MAX_RECEIPT_ATTRIBUTE_CHARS: Final = 16
MAX_USER_ATTRIBUTE_NAME_CHARS: Final = 64
MAX_USER_ATTRIBUTE_VALUE_CHARS: Final = 175
MAX_BUYER_CHARS: Final = 256
MAX_ITEM_ATTRIBUTE_CHARS: Final = 64
MAX_CUSTOMS_CHARS: Final = 32
_COUNTRY_CODE = re.compile(r"[0-9]{3}")
# ФФД tag 1212 31 and 33 are marked goods: the ФН refuses them without a checked code.
_MARKED_OBJECTS: Final = frozenset({31, 33})
_PAYMENT_OBJECT_CODES: Final = frozenset({*range(1, 28), 30, 31, 32, 33})


def _given(value: object) -> bool:
    """A member counts as sent unless it is null or empty."""
    return value is not None and value != "" and value != {} and value != []


def _check_members(
    obj: dict[str, object],
    path: str,
    known: frozenset[str],
    refused: Mapping[str, str],
) -> None:
    """Refuse known-but-unsupported members and members this format does not have."""
    for key, value in obj.items():
        if key in known:
            continue
        if key in refused:
            if _given(value):
                raise ValidationError(_key(path, key), refused[key])
            continue
        raise ValidationError(
            _key(path, key),
            "unknown field; every field is carried into the fiscal document or refused, "
            "so remove it or check its spelling",
        )


def _carried(mapping: NameMapping, name: str, path: str) -> None:
    """Refuse optional data the configured register cannot carry."""
    if mapping.carries is not None and name not in mapping.carries:
        raise ValidationError(
            path, "this box's register cannot carry this field into the receipt; remove it"
        )


def _receipt_task(
    task: dict[str, object],
    path: str,
    kind: fiscal.ReceiptType,
    mapping: NameMapping,
    job_id: str | None,
) -> ReceiptTask:
    """A receipt task: fields in a fixed order, then the checks spanning fields."""
    _check_members(task, path, _RECEIPT_FIELDS, _REFUSED_RECEIPT_FIELDS)
    taxation: fiscal.TaxationType | None = None
    raw_taxation = task.get("taxationType")
    if raw_taxation is not None:
        taxation = _lookup(raw_taxation, _key(path, "taxationType"), _TAXATION, {}, "taxation type")
    electronically = _flag(task, "electronically", path)
    if electronically:
        _carried(mapping, "electronically", _key(path, "electronically"))
    _flag(task, "ignoreNonFiscalPrintErrors", path)  # nothing non-fiscal is printed
    operator = _operator(task.get("operator"), _key(path, "operator"), mapping)
    if operator is not None:
        _carried(mapping, "operator", _key(path, "operator"))
    contact, buyer = _client_info(task.get("clientInfo"), _key(path, "clientInfo"), mapping)
    if electronically and contact is None:
        raise ValidationError(
            _key(path, "clientInfo.emailOrPhone"), "required when electronically is true"
        )
    place = _optional_text(task, "paymentsPlace", path, MAX_PLACE_CHARS, mapping)
    address = _optional_text(task, "paymentsAddress", path, MAX_ADDRESS_CHARS, mapping)
    attribute = _optional_text(
        task, "additionalAttribute", path, MAX_RECEIPT_ATTRIBUTE_CHARS, mapping
    )
    user_attribute = _user_attribute(
        task.get("userAttribute"), _key(path, "userAttribute"), mapping
    )
    items = _items(task.get("items"), _key(path, "items"), mapping)
    payments = _payments(task.get("payments"), _key(path, "payments"), mapping)
    receipt = fiscal.Receipt(
        type=kind,
        taxation=taxation,
        items=items,
        payments=payments,
        operator=operator,
        client_contact=contact,
        buyer=buyer,
        electronically=electronically,
        payments_place=place,
        payments_address=address,
        additional_attribute=attribute,
        user_attribute=user_attribute,
        job_id=job_id,
    )
    _check_sums(task, path, receipt)
    _check_taxes(task.get("taxes"), _key(path, "taxes"), receipt, mapping)
    return ReceiptTask(receipt)


def _flag(obj: dict[str, object], key: str, path: str) -> bool:
    """An optional boolean member (null = false)."""
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValidationError(_key(path, key), "must be true or false")
    return value


def _optional_text(
    obj: dict[str, object], key: str, path: str, max_chars: int, mapping: NameMapping
) -> str | None:
    """An optional text member the register carries; `key` is also its CARRIED_FIELDS name."""
    value = obj.get(key)
    if not _given(value):
        return None
    where = _key(path, key)
    prefix = "items." if "items[" in path else ""
    _carried(mapping, prefix + key, where)
    return _text(value, where, max_chars, mapping)


def _user_attribute(value: object, path: str, mapping: NameMapping) -> fiscal.UserAttribute | None:
    """`userAttribute{name, value}`: ФФД STLV 1084 with 1085 and 1086."""
    if not _given(value):
        return None
    _carried(mapping, "userAttribute", path)
    obj = _obj(value, path)
    _check_members(obj, path, frozenset({"name", "value"}), {})
    name = _text(
        _required(obj, "name", path), _key(path, "name"), MAX_USER_ATTRIBUTE_NAME_CHARS, mapping
    )
    text = _text(
        _required(obj, "value", path), _key(path, "value"), MAX_USER_ATTRIBUTE_VALUE_CHARS, mapping
    )
    return fiscal.UserAttribute(name, text)


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


def _check_taxes(value: object, path: str, receipt: fiscal.Receipt, mapping: NameMapping) -> None:
    """`taxes[{type, sum}]`: each rate's sum must be the VAT the register computes (±1 kopeck).

    The register computes the receipt's VAT sums itself (tags 1102–1107); a client's own figure
    that differs would be silently replaced, so it is refused instead.
    """
    if not _given(value):
        return
    computed = receipt.vat_sums()
    seen: set[fiscal.Vat] = set()
    for i, entry in enumerate(_list(value, path)):
        where = _idx(path, i)
        obj = _obj(entry, where)
        _check_members(obj, where, frozenset({"type", "sum"}), {})
        vat = _lookup(
            _required(obj, "type", where),
            _key(where, "type"),
            _VAT_NAMES,
            mapping.vat,
            "VAT rate",
            _VATS,
        )
        if vat in seen:
            raise ValidationError(_key(where, "type"), f"{vat.value} is given twice")
        seen.add(vat)
        given = _money(_required(obj, "sum", where), _key(where, "sum"))
        if vat not in computed:
            raise ValidationError(_key(where, "type"), f"no position has VAT rate {vat.value}")
        if abs(given - computed[vat]) > 1:
            raise ValidationError(
                _key(where, "sum"),
                f"does not match the VAT the register computes for {vat.value} "
                f"({format_money(computed[vat])})",
            )


def _items(value: object, path: str, mapping: NameMapping) -> tuple[fiscal.Item, ...]:
    """The fiscal lines of `items`."""
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
        elif kind in _REFUSED_ITEM_TYPES:
            raise ValidationError(_key(where, "type"), _REFUSED_ITEM_TYPES[kind])
        else:
            raise ValidationError(_key(where, "type"), f"item type {kind!r} is not supported")
    if not items:
        raise ValidationError(path, "must contain at least one position")
    return tuple(items)


def _position(obj: dict[str, object], path: str, mapping: NameMapping) -> fiscal.Item:
    """One `{"type": "position"}` item."""
    _check_members(obj, path, _POSITION_FIELDS, _REFUSED_ITEM_FIELDS)
    name = _text(_required(obj, "name", path), _key(path, "name"), MAX_NAME_CHARS, mapping)
    price = _money(_required(obj, "price", path), _key(path, "price"))
    quantity = _quantity(_required(obj, "quantity", path), _key(path, "quantity"))
    amount_path = _key(path, "amount")
    amount = _money(_required(obj, "amount", path), amount_path)
    full = fiscal.round_qty(price * quantity)
    if amount > full + 1:
        raise ValidationError(amount_path, f"more than price × quantity ({format_money(full)})")
    tax = _obj(_required(obj, "tax", path), _key(path, "tax"))
    _check_members(tax, _key(path, "tax"), frozenset({"type", "sum"}), {})
    tax_path = _key(path, "tax.type")
    raw_vat = _required(tax, "type", _key(path, "tax"))
    vat = _lookup(raw_vat, tax_path, _VAT_NAMES, mapping.vat, "VAT rate", _VATS)
    tax_sum: int | None = None
    if tax.get("sum") is not None:
        tax_sum = _money(tax["sum"], _key(path, "tax.sum"))
        expected = vat.tax_of(amount)
        if abs(tax_sum - expected) > 1:
            raise ValidationError(
                _key(path, "tax.sum"),
                f"does not match the {vat.value} VAT of the amount ({format_money(expected)})",
            )
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
            if payment_object not in _PAYMENT_OBJECT_CODES:
                raise ValidationError(
                    object_path, f"payment object {payment_object} does not exist in ФФД 1.2"
                )
        if payment_object in _MARKED_OBJECTS:
            raise ValidationError(
                object_path, f"{_MARKING}: payment object {payment_object} needs a marking code"
            )
    unit = 0
    if obj.get("measurementUnit") is not None:
        unit_path = _key(path, "measurementUnit")
        _carried(mapping, "items.measurementUnit", unit_path)
        raw_unit = obj["measurementUnit"]
        if isinstance(raw_unit, str):
            unit = _lookup(raw_unit, unit_path, _UNITS, mapping.units, "measurement unit")
        else:
            unit = _code(raw_unit, unit_path, _UNIT_CODES)
    department = 1
    if obj.get("department") is not None:
        department_path = _key(path, "department")
        _carried(mapping, "items.department", department_path)
        department = _code(obj["department"], department_path, range(1, MAX_DEPARTMENT + 1))
    excise: int | None = None
    if obj.get("exciseSum") is not None:
        excise_path = _key(path, "exciseSum")
        _carried(mapping, "items.exciseSum", excise_path)
        excise = _money(obj["exciseSum"], excise_path)
    country = _optional_text(obj, "countryCode", path, 3, mapping)
    if country is not None and not _COUNTRY_CODE.fullmatch(country):
        raise ValidationError(
            _key(path, "countryCode"), 'must be the 3-digit ОКСМ country code, e.g. "643"'
        )
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
        tax_sum=tax_sum,
        excise=excise,
        country_code=country,
        customs_declaration=_optional_text(
            obj, "customsDeclaration", path, MAX_CUSTOMS_CHARS, mapping
        ),
        additional_attribute=_optional_text(
            obj, "additionalAttribute", path, MAX_ITEM_ATTRIBUTE_CHARS, mapping
        ),
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
        _check_members(obj, where, frozenset({"type", "sum"}), {})
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


def _operator(value: object, path: str, mapping: NameMapping) -> fiscal.Operator | None:
    """`operator{name, vatin}`: the cashier, ФФД tags 1021 and 1203."""
    if value is None:
        return None
    obj = _obj(value, path)
    _check_members(obj, path, frozenset({"name", "vatin"}), {})
    name = _text(_required(obj, "name", path), _key(path, "name"), MAX_OPERATOR_CHARS, mapping)
    vatin = obj.get("vatin")
    if vatin is None or vatin == "":
        return fiscal.Operator(name)
    if not isinstance(vatin, str) or not _VATIN.fullmatch(vatin):
        raise ValidationError(_key(path, "vatin"), "must be 10 or 12 digits")
    return fiscal.Operator(name, vatin)


def _client_info(
    value: object, path: str, mapping: NameMapping
) -> tuple[str | None, fiscal.Buyer | None]:
    """`clientInfo`: emailOrPhone (ФФД tag 1008), name and vatin (1227/1228 in STLV 1256)."""
    if value is None:
        return None, None
    obj = _obj(value, path)
    _check_members(obj, path, _CLIENT_FIELDS, _REFUSED_CLIENT_FIELDS)
    contact = _client_contact(obj.get("emailOrPhone"), _key(path, "emailOrPhone"))
    if contact is not None:
        _carried(mapping, "clientInfo.emailOrPhone", _key(path, "emailOrPhone"))
    name = _optional_text(obj, "name", path, MAX_BUYER_CHARS, mapping)
    if name is not None:
        _carried(mapping, "clientInfo.name", _key(path, "name"))
    vatin: str | None = None
    raw_vatin = obj.get("vatin")
    if _given(raw_vatin):
        where = _key(path, "vatin")
        _carried(mapping, "clientInfo.vatin", where)
        if not isinstance(raw_vatin, str) or not _VATIN.fullmatch(raw_vatin):
            raise ValidationError(where, "must be 10 or 12 digits")
        vatin = raw_vatin
    buyer = fiscal.Buyer(name, vatin) if name is not None or vatin is not None else None
    return contact, buyer


def _client_contact(raw: object, where: str) -> str | None:
    """An e-mail, or a phone as +digits (ФФД tag 1008)."""
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


def _text(value: object, path: str, max_chars: int, mapping: NameMapping) -> str:
    """A printable, non-blank string of at most `max_chars` characters in the register's charset.

    The configured replacements (`mapping.text`, e.g. "₽" -> "руб.") apply first; any other
    character the register cannot print is refused by name, never turned into "?".
    """
    if not isinstance(value, str):
        raise ValidationError(path, "must be a string")
    for char, replacement in mapping.text.items():
        value = value.replace(char, replacement)
    if not value.strip():
        raise ValidationError(path, "must not be empty")
    if len(value) > max_chars:
        raise ValidationError(path, f"longer than {max_chars} characters")
    if _CONTROL.search(value):
        raise ValidationError(path, "contains control characters")
    if mapping.charset is not None:
        try:
            value.encode(mapping.charset)
        except UnicodeEncodeError as err:
            char = value[err.start]
            raise ValidationError(
                path,
                f"character {char!r} (U+{ord(char):04X}) cannot be printed by the register "
                f"({mapping.charset}); remove it or add a replacement under mapping.text "
                "in the box config",
            ) from None
        except UnicodeError:
            raise ValidationError(path, "contains characters that are not valid text") from None
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
