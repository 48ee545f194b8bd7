"""Hostile input to the task parser: every bad value is a ValidationError naming its path.

A 5xx from the API must mean the box is at fault; so nothing a client sends may make the
parser raise anything but a ValidationError, and the error must say which value is wrong.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.atol.decimal_json import dumps, loads
from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request, parse_tasks_json
from gateway.domain.errors import ValidationError

CP1251 = NameMapping()  # a Shtrih register
ANY_TEXT = NameMapping(charset=None)  # a cloud register: any character prints
MAPPINGS = pytest.mark.parametrize("mapping", [CP1251, ANY_TEXT], ids=["cp1251", "any-charset"])

Json = dict[str, Any]


def full_sell() -> Json:
    """A sell task using every field the parser carries."""
    return {
        "type": "sell",
        "taxationType": "osn",
        "electronically": False,
        "operator": {"name": "Иванова А.", "vatin": "123456789047"},
        "clientInfo": {"emailOrPhone": "buyer@example.com", "name": "ООО Ромашка"},
        "paymentsPlace": "Магазин 1",
        "paymentsAddress": "Москва, ул. Ленина, 1",
        "additionalAttribute": "доп",
        "userAttribute": {"name": "Карта", "value": "12345"},
        "items": [
            {
                "type": "position",
                "name": "Сыр",
                "price": 89.90,
                "quantity": 0.357,
                "amount": 32.09,
                "tax": {"type": "vat10", "sum": 2.92},
                "paymentMethod": "fullPayment",
                "paymentObject": "commodity",
                "measurementUnit": "kilogram",
                "department": 1,
                "countryCode": "643",
                "customsDeclaration": "10702070/010120/0000001",
                "additionalAttribute": "партия 7",
            }
        ],
        "payments": [{"type": "cash", "sum": 50}],
        "taxes": [{"type": "vat10", "sum": 2.92}],
        "total": 32.09,
    }


def body(task: object, uuid: str = "hostile-1") -> str:
    """A request body; `json.dumps` keeps lone surrogates as escapes, as a client sends them."""
    return json.dumps({"uuid": uuid, "request": [task]})


def error_of(text: str, mapping: NameMapping = CP1251) -> ValidationError:
    """The one ValidationError parsing `text` raises (anything else fails the test)."""
    with pytest.raises(ValidationError) as err:
        parse_request(text, mapping)
    return err.value


def paths(value: object, path: str) -> Iterator[tuple[str, tuple[str | int, ...]]]:
    """Every value's (ATOL path, key sequence) inside a task, the task itself included."""
    stack: list[tuple[object, str, tuple[str | int, ...]]] = [(value, path, ())]
    while stack:
        node, where, keys = stack.pop()
        yield where, keys
        if isinstance(node, dict):
            stack.extend((v, f"{where}.{k}", (*keys, k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]", (*keys, i)) for i, v in enumerate(node))


def replaced(task: Json, keys: tuple[str | int, ...], value: object) -> Any:
    """A copy of `task` with the value at `keys` replaced."""
    if not keys:
        return value
    out = copy.deepcopy(task)
    node: Any = out
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    return out


def test_the_full_task_is_accepted() -> None:
    # The base of every case below: a change to it is what makes each one fail.
    parsed = parse_request(body(full_sell()), CP1251)
    parsed.tasks_json.encode("utf-8")
    assert parse_request(body(full_sell()), ANY_TEXT).tasks == parsed.tasks


# --- text ----------------------------------------------------------------------------------

TEXT_FIELDS = [
    ("type",),
    ("taxationType",),
    ("operator", "name"),
    ("operator", "vatin"),
    ("clientInfo", "emailOrPhone"),
    ("clientInfo", "name"),
    ("paymentsPlace",),
    ("paymentsAddress",),
    ("additionalAttribute",),
    ("userAttribute", "name"),
    ("userAttribute", "value"),
    ("items", 0, "name"),
    ("items", 0, "type"),
    ("items", 0, "tax", "type"),
    ("items", 0, "paymentMethod"),
    ("items", 0, "paymentObject"),
    ("items", 0, "measurementUnit"),
    ("items", 0, "countryCode"),
    ("items", 0, "customsDeclaration"),
    ("items", 0, "additionalAttribute"),
    ("payments", 0, "type"),
    ("taxes", 0, "type"),
]


def dotted(keys: tuple[str | int, ...]) -> str:
    """`("items", 0, "name")` -> `request[0].items[0].name`."""
    out = "request[0]"
    for k in keys:
        out += f"[{k}]" if isinstance(k, int) else f".{k}"
    return out


@MAPPINGS
@pytest.mark.parametrize("keys", TEXT_FIELDS, ids=dotted)
def test_lone_surrogate_in_any_string_is_refused_by_path(
    keys: tuple[str | int, ...], mapping: NameMapping
) -> None:
    task = full_sell()
    original = _get(task, keys)
    err = error_of(body(replaced(task, keys, f"{original}\ud800")), mapping)
    assert (err.field, err.code) == (dotted(keys), "invalid_request")
    assert "surrogate" in err.reason
    # The answer and the log line must be able to carry the error.
    str(err).encode("utf-8")


def _get(task: Json, keys: tuple[str | int, ...]) -> Any:
    node: Any = task
    for k in keys:
        node = node[k]
    return node


@MAPPINGS
@pytest.mark.parametrize(
    "keys",
    [
        ("operator", "name"),
        ("clientInfo", "emailOrPhone"),
        ("clientInfo", "name"),
        ("paymentsPlace",),
        ("paymentsAddress",),
        ("additionalAttribute",),
        ("userAttribute", "name"),
        ("userAttribute", "value"),
        ("items", 0, "name"),
        ("items", 0, "customsDeclaration"),
        ("items", 0, "additionalAttribute"),
    ],
    ids=dotted,
)
@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f"], ids=repr)
def test_control_characters_in_printed_text_are_refused_by_path(
    keys: tuple[str | int, ...], char: str, mapping: NameMapping
) -> None:
    task = full_sell()
    original = str(_get(task, keys))
    value = original.replace("@", f"{char}@") if "@" in original else f"{original}{char}x"
    err = error_of(body(replaced(task, keys, value)), mapping)
    assert err.field == dotted(keys)
    assert "control characters" in err.reason


@pytest.mark.parametrize(
    ("keys", "where"),
    [
        ((), "request[0]"),
        (("clientInfo",), "request[0].clientInfo"),
        (("items", 0), "request[0].items[0]"),
        (("items", 0, "tax"), "request[0].items[0].tax"),
    ],
)
def test_lone_surrogate_in_a_key_is_refused_by_path(
    keys: tuple[str | int, ...], where: str
) -> None:
    task = full_sell()
    _get(task, keys)["bad\udc80key"] = 1
    err = error_of(body(task))
    assert err.field == f"{where}.bad\\udc80key"  # shown escaped, so it can be sent back
    assert "the key" in err.reason
    assert "surrogate" in err.reason


@pytest.mark.parametrize(
    ("keys", "name", "value", "field"),
    [
        ((), "\x1f", 1, "request[0].\\x1f"),
        (("items", 0), "a\nb\x00c\x85", 1, "request[0].items[0].a\\x0ab\\x00c\\x85"),
        ((), "type", "se\x07ll\r\n", "request[0].type"),
        (("payments", 0), "type", "cash\x1b[31m", "request[0].payments[0].type"),
        (("items", 0, "tax"), "type", "vat\t20", "request[0].items[0].tax.type"),
    ],
    ids=[
        "unit-separator-key",
        "newline-nul-c1-key",
        "bell-in-type",
        "escape-in-payment",
        "tab-in-vat",
    ],
)
def test_control_characters_in_a_refusal_are_escaped(
    keys: tuple[str | int, ...], name: str, value: object, field: str
) -> None:
    task = full_sell()
    _get(task, keys)[name] = value
    err = error_of(body(task))
    assert err.field == field
    for said in (err.field, err.reason, str(err)):
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in said), repr(said)


def test_surrogate_in_a_stored_task_list_is_refused_too() -> None:
    # The worker re-reads the journal's tasks_json with the same gate.
    with pytest.raises(ValidationError) as err:
        parse_tasks_json('[{"type": "reportX", "x\\ud800": 1}]', CP1251)
    assert err.value.field == "request[0].x\\ud800"


def test_surrogate_pair_is_one_character_and_fine_where_it_prints() -> None:
    # "\ud83d\ude00" is 😀 as JSON escapes; a cloud register takes it, a Shtrih one cannot.
    task = replaced(full_sell(), ("items", 0, "name"), "Торт \ud83d\ude00")
    (parsed,) = parse_request(body(task), ANY_TEXT).tasks
    err = error_of(body(task), CP1251)
    assert err.field == "request[0].items[0].name"
    assert "cannot be printed by the register (cp1251)" in err.reason
    assert parsed.type_name == "sell"


# --- numbers -------------------------------------------------------------------------------

NUMBER_FIELDS = [
    ("items", 0, "price"),
    ("items", 0, "quantity"),
    ("items", 0, "amount"),
    ("items", 0, "tax", "sum"),
    ("items", 0, "department"),
    ("payments", 0, "sum"),
    ("taxes", 0, "sum"),
    ("total",),
]
HOSTILE_NUMBERS = [
    "1e400",
    "-1e400",
    "1e9999999999999999999",
    "-1e9999999999999999999",
    "1e-9999999999999999999",
    "NaN",
    "Infinity",
    "-Infinity",
    "12345678901234567890",
    "-12345678901234567890",
    "1" * 5000,
    "0.000000000000000000001",
    "1e-400",
    "-0.01",
]


@pytest.mark.parametrize("keys", NUMBER_FIELDS, ids=dotted)
@pytest.mark.parametrize("token", HOSTILE_NUMBERS, ids=lambda t: t[:24])
def test_hostile_numbers_are_refused_by_path(keys: tuple[str | int, ...], token: str) -> None:
    text = body(replaced(full_sell(), keys, "@@")).replace('"@@"', token)
    err = error_of(text)
    assert err.field == dotted(keys), err
    str(err).encode("utf-8")


@pytest.mark.parametrize("token", HOSTILE_NUMBERS, ids=lambda t: t[:24])
def test_hostile_cash_sum_is_refused_by_path(token: str) -> None:
    err = error_of(body({"type": "cashIn", "cashSum": "@@"}).replace('"@@"', token))
    assert err.field == "request[0].cashSum"


@pytest.mark.parametrize("token", ["NaN", "1e9999999999999999999", "Infinity"])
def test_hostile_number_anywhere_is_refused_even_where_unknown(token: str) -> None:
    # A member the task does not have still gets its number checked first, by path.
    text = body(replaced(full_sell(), ("items", 0, "x"), "@@")).replace('"@@"', token)
    assert error_of(text).field == "request[0].items[0].x"


def test_a_number_out_of_range_is_not_a_crash_in_the_codec() -> None:
    value = loads('{"a": [1e9999999999999999999]}')
    assert isinstance(value, dict)
    with pytest.raises(ValueError, match="no JSON form"):
        dumps(value)


# --- wrong types everywhere ----------------------------------------------------------------

WRONG = [[], {}, "x", True, 7, None, [1, "a"], {"a": {}}]


def _cases() -> Iterator[tuple[str, tuple[str | int, ...], object]]:
    for where, keys in paths(full_sell(), "request[0]"):
        for value in WRONG:
            yield where, keys, value


@pytest.mark.parametrize(
    ("where", "keys", "value"), list(_cases()), ids=lambda x: str(x)[:40] if x else repr(x)
)
def test_wrong_type_anywhere_is_accepted_or_refused_by_its_own_path(
    where: str, keys: tuple[str | int, ...], value: object
) -> None:
    err = _refusal(body(replaced(full_sell(), keys, value)))
    if err is not None:
        # Changing one value may only make that value (or what it holds) wrong — or, for a
        # sum, the figures that must agree with it.
        assert err.field.startswith(where) or _is_a_sum(keys), (where, err)
        assert err.field, err


def _refusal(text: str) -> ValidationError | None:
    """The ValidationError parsing `text` raises, or None; any other exception escapes."""
    try:
        parse_request(text, CP1251)
    except ValidationError as err:
        return err
    return None


def _is_a_sum(keys: tuple[str | int, ...]) -> bool:
    """Values that other figures are checked against (a changed price moves the amount)."""
    return bool(keys) and keys[-1] in {"price", "quantity", "amount", "sum", "type", "total"}


# --- nesting -------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [40, 900, 5000])
def test_deep_nesting_is_refused_naming_where(depth: int) -> None:
    text = body(replaced(full_sell(), ("items", 0, "name"), "@@")).replace(
        '"@@"', "[" * depth + "]" * depth
    )
    err = error_of(text)
    assert err.field.startswith("request[0].items[0].name[0][0]"), err.field
    assert "levels deep" in err.reason


def test_deep_nesting_in_a_key_is_named_with_its_key() -> None:
    text = '{"uuid": "a", "request": [{"type": "sell", "odd \\"key\\"": ' + "[" * 5000
    text += "]" * 5000 + "}]}"
    err = error_of(text)
    assert err.field.startswith('request[0].odd "key"[0]'), err.field


def test_bare_brackets_are_refused_not_crashed() -> None:
    for text in ("[" * 20000, "{" * 20000, '{"a":' * 6000):
        err = error_of(text)
        assert "deep" in err.reason or "not valid JSON" in err.reason
