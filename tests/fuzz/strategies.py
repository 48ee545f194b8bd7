"""Hypothesis strategies for ATOL requests: well-formed ones, and the same made hostile.

A well-formed request is consistent (amount = price × quantity, paid at least the total), so
it should parse; `hostile_request` then breaks one thing at a place chosen by Hypothesis: a
value replaced by a wrong type, a huge or non-finite number, text with lone surrogates or
control characters, nesting far deeper than any task, an unknown or a missing field. The
`*_body` strategies give the bytes a client would send, with damage only text can carry
(NaN tokens, 400-digit literals, duplicate keys, invalid UTF-8, truncation).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

Json = Any

RECEIPT_TYPES = ("sell", "sellReturn", "buy", "buyReturn")
OTHER_TASKS = (
    {"type": "openShift"},
    {"type": "closeShift"},
    {"type": "reportX"},
    {"type": "continuePrint"},
    {"type": "getDeviceStatus"},
    {"type": "getShiftStatus"},
    {"type": "getFnStatus"},
    {"type": "getFnInfo"},
    {"type": "ofdExchangeStatus"},
    {"type": "getShiftTotals"},
)
TAXES = ("none", "vat0", "vat10", "vat20", "vat110", "vat120", "20", "10")
PAYMENTS = ("cash", "electronically", "prepaid", "credit", "other")
TAXATION = ("osn", "usnIncome", "usnIncomeOutcome", "esn", "patent")
# The keys a request may hold, so mutations also hit real ones, not only made-up ones.
KNOWN_KEYS = (
    "uuid", "request", "type", "items", "payments", "name", "price", "quantity", "amount",
    "tax", "sum", "operator", "taxationType", "total", "clientInfo", "emailOrPhone",
    "electronically", "paymentObject", "paymentMethod", "measurementUnit", "cashSum",
    "vatin", "department", "additionalAttribute", "userAttribute", "paymentsPlace",
)  # fmt: skip

uuids = st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True)
names = st.text(
    alphabet=st.characters(codec="cp1251", exclude_categories=("Cc", "Cs")),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() == s and s != "")
kopecks = st.integers(min_value=1, max_value=10_000_000)
milli_quantities = st.integers(min_value=1, max_value=100_000)  # thousandths


def rubles(k: int) -> Decimal:
    return Decimal(k) / 100


@st.composite
def positions(draw: st.DrawFn) -> dict[str, Json]:
    """One consistent line: amount = price × quantity rounded to the kopeck."""
    price = draw(kopecks)
    qty = Decimal(draw(milli_quantities)) / 1000
    amount = (rubles(price) * qty).quantize(Decimal("0.01"))
    if amount == 0:  # a line must cost something: sell the whole unit
        qty, amount = Decimal(1), rubles(price)
    line: dict[str, Json] = {
        "type": "position",
        "name": draw(names),
        "price": rubles(price),
        "quantity": qty,
        "amount": amount,
        "tax": {"type": draw(st.sampled_from(TAXES))},
    }
    if draw(st.booleans()):
        line["paymentObject"] = draw(st.sampled_from(("commodity", "service", "job")))
    return line


@st.composite
def receipt_tasks(draw: st.DrawFn) -> dict[str, Json]:
    """A receipt whose payments cover its total."""
    items = draw(st.lists(positions(), min_size=1, max_size=4))
    total = sum((Decimal(str(i["amount"])) for i in items), Decimal(0))
    pay = draw(st.sampled_from(PAYMENTS))
    # Only cash can be more than the total (the rest is change).
    extra = rubles(draw(st.integers(min_value=0, max_value=10_000))) if pay == "cash" else 0
    task: dict[str, Json] = {
        "type": draw(st.sampled_from(RECEIPT_TYPES)),
        "items": items,
        "payments": [{"type": pay, "sum": total + extra}],
    }
    if draw(st.booleans()):
        task["taxationType"] = draw(st.sampled_from(TAXATION))
    if draw(st.booleans()):
        task["operator"] = {"name": draw(names)}
    if draw(st.booleans()):
        task["total"] = total
    return task


tasks = st.one_of(receipt_tasks(), st.sampled_from(OTHER_TASKS).map(dict))


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Json]:
    """A well-formed request of one to three tasks (a single task sometimes not in a list)."""
    body = draw(st.lists(tasks, min_size=1, max_size=3))
    request: Json = body[0] if len(body) == 1 and draw(st.booleans()) else body
    return {"uuid": draw(uuids), "request": request}


# --- hostile values -----------------------------------------------------------------------

LONE_SURROGATES = st.sampled_from(["\ud800", "\udfff", "a\udc80b", "\ud83d"])
CONTROL_TEXT = st.text(
    alphabet=st.sampled_from([chr(c) for c in range(32)] + ["\x7f", "\u2028", "\ufeff", "a"]),
    min_size=1,
    max_size=8,
)
HUGE_NUMBERS = st.sampled_from(
    [
        10**400,
        -(10**400),
        Decimal("1e400"),
        Decimal("-1e-400"),
        Decimal("1E+999999"),
        1e308,
        -0.0,
        5e-324,
        2**63,
        -(2**63) - 1,
        Decimal("0.000000001"),
        Decimal("12345678901234567890.123"),
    ]
)
WRONG_TYPES: st.SearchStrategy[Json] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.just([]),
    st.just({}),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def deep(depth: int, leaf: Json = 1, *, objects: bool = False) -> Json:
    """`depth` levels of lists (or objects) around `leaf`, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = {"a": value} if objects else [value]
    return value


hostile_values: st.SearchStrategy[Json] = st.one_of(
    WRONG_TYPES,
    HUGE_NUMBERS,
    LONE_SURROGATES,
    CONTROL_TEXT,
    st.integers(min_value=1, max_value=80).map(deep),
    st.integers(min_value=1, max_value=80).map(lambda d: deep(d, objects=True)),
    st.sampled_from(["", " ", "x" * 200, "x" * 40_000, "Молоко" * 30, "€₽", "\x00"]),
)


def _paths(doc: Json, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in `doc` a value sits (the root is the empty path)."""
    out = [prefix]
    stack: list[tuple[Json, tuple[Any, ...]]] = [(doc, prefix)]
    while stack:
        value, where = stack.pop()
        keys: list[Any] = []
        if isinstance(value, dict):
            keys = list(value)
        elif isinstance(value, list):
            keys = list(range(len(value)))
        for k in keys:
            out.append((*where, k))
            stack.append((value[k], (*where, k)))
    return out


def _at(doc: Json, path: tuple[Any, ...]) -> Json:
    for k in path:
        doc = doc[k]
    return doc


def _copy(doc: Json) -> Json:
    """A deep copy of a JSON tree (no recursion: hostile trees are deep)."""
    if not isinstance(doc, dict | list):
        return doc
    root: Json = {} if isinstance(doc, dict) else []
    stack: list[tuple[Json, Json]] = [(doc, root)]
    while stack:
        src, dst = stack.pop()
        items = src.items() if isinstance(src, dict) else enumerate(src)
        for k, v in items:
            child = ({} if isinstance(v, dict) else []) if isinstance(v, dict | list) else v
            if isinstance(dst, dict):
                dst[k] = child
            else:
                dst.append(child)
            if isinstance(v, dict | list):
                stack.append((v, child))
    return root


@st.composite
def hostile_requests(draw: st.DrawFn, base: st.SearchStrategy[Json] | None = None) -> Json:
    """A well-formed request with one to three things broken."""
    doc = _copy(draw(base if base is not None else requests()))
    if draw(st.integers(min_value=0, max_value=19)) == 0:
        return draw(hostile_values)  # not an object at all, now and then
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(doc)[1:] or [()]))
        action = draw(st.sampled_from(("replace", "replace", "unknown", "drop", "rename")))
        if not path:
            doc = draw(hostile_values)
            continue
        parent, key = _at(doc, path[:-1]), path[-1]
        if action == "replace" or not isinstance(parent, dict):
            parent[key] = draw(hostile_values)
        elif action == "unknown":
            parent[draw(st.text(min_size=1, max_size=12))] = draw(hostile_values)
        elif action == "drop":
            del parent[key]
        else:
            parent[draw(st.sampled_from(KNOWN_KEYS))] = parent.pop(key)
    return doc


# --- bodies: what goes over the wire ------------------------------------------------------


def dumps(doc: Json, *, ascii_only: bool = False) -> str:
    """JSON text of a tree that may hold Decimals (written exactly), huge ints, surrogates."""
    marks: dict[str, str] = {}

    def swap(value: Json) -> Json:
        if isinstance(value, Decimal):
            mark = f"__num{len(marks)}__"
            marks[mark] = str(value)
            return mark
        return value

    tree = _copy(doc)
    stack: list[Json] = [tree] if isinstance(tree, dict | list) else []
    if not stack:
        tree = swap(tree)
    while stack:
        node = stack.pop()
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for k, v in items:
            if isinstance(v, dict | list):
                stack.append(v)
            else:
                node[k] = swap(v)
    text = json.dumps(tree, ensure_ascii=ascii_only)
    for mark, number in marks.items():
        text = text.replace(f'"{mark}"', number)
    return text


@st.composite
def text_damage(draw: st.DrawFn, text: str) -> str | bytes:
    """`text` with damage only a serialised body can carry."""
    kind = draw(
        st.sampled_from(
            (
                "none", "nan", "long_number", "duplicate", "deep_list", "deep_object",
                "truncate", "bom", "bad_utf8", "trailing", "escaped_surrogate",
            )
        )
    )  # fmt: skip
    if kind == "nan":
        token = draw(st.sampled_from(("NaN", "Infinity", "-Infinity")))
        return text.replace('"sum":', f'"sum":{token},"x":', 1) if '"sum":' in text else token
    if kind == "long_number":
        digits = "9" * draw(st.integers(min_value=20, max_value=5000))
        exp = draw(st.sampled_from(("", "e999999", "E-999999", ".5e400")))
        return text.replace('"price":', f'"price":{digits}{exp},"y":', 1)
    if kind == "duplicate":
        return text.replace('{"uuid":', '{"uuid":"dup","uuid":', 1)
    if kind == "deep_list":
        n = draw(st.sampled_from((33, 100, 1000, 100_000)))
        return text.replace('"request":', '"request":' + "[" * n + "1" + "]" * n + ',"z":', 1)
    if kind == "deep_object":
        n = draw(st.sampled_from((33, 1000, 5000)))
        return '{"uuid":"deep","request":' + '{"a":' * n + "1" + "}" * n + "}"
    if kind == "truncate":
        return text[: draw(st.integers(min_value=0, max_value=max(0, len(text) - 1)))]
    if kind == "bom":
        return "\ufeff" + text
    if kind == "bad_utf8":
        raw = text.encode("utf-8", "surrogatepass")
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        junk = draw(st.sampled_from((b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80")))
        return raw[:at] + junk + raw[at:]
    if kind == "trailing":
        return text + draw(st.sampled_from((" x", "}", ",", "\x00", "[]")))
    if kind == "escaped_surrogate":
        return text.replace('"name":"', '"name":"\\udc00', 1)
    return text


def to_bytes(body: str | bytes) -> bytes:
    """The body on the wire; a lone surrogate goes out as the bytes it would take (invalid)."""
    return body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    """A request body as sent: hostile tree, written plain or ASCII-escaped, maybe damaged."""
    doc = draw(st.one_of(requests(), hostile_requests()))
    return to_bytes(draw(text_damage(dumps(doc, ascii_only=draw(st.booleans())))))


@st.composite
def valid_bodies(draw: st.DrawFn) -> bytes:
    return dumps(draw(requests())).encode("utf-8")
