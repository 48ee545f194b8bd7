"""The ATOL task parser against hostile requests: it parses, or refuses by field name.

Anything else escaping `parse_request` (a TypeError, a RecursionError, a UnicodeError) is a
request that takes down whatever called it, so it fails here. A request that parses must
also survive what the box does next with it: its stored JSON is UTF-8 for SQLite, parses
again to the same tasks (the worker reads it back after a restart) and can be described.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given

from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request, parse_tasks_json
from gateway.atol.tasks import ParsedRequest, describe
from gateway.domain.errors import ValidationError
from tests.fuzz import strategies as st
from tests.fuzz.budget import fuzz, timeout_s

pytestmark = pytest.mark.timeout(timeout_s(120))

# A CRM's own names, so the canonical rewrite of names is fuzzed too.
CRM = NameMapping(
    payment_types={"Готівка": "cash", "Картка": "electronically"},
    vat={"ПДВ 20 %": "vat20", "без ПДВ": "none"},
    units={"шт": "piece"},
)
# Errors about the body as a whole (it is no JSON object); any other must name a field.
BODY_LEVEL = ("not UTF-8", "not valid JSON", "the body must be a JSON object", "request body")
TOP_FIELDS = ("uuid", "request")


def check_refusal(err: ValidationError) -> None:
    """A refusal says what is wrong and, unless the body is no JSON object, where."""
    assert err.reason, "an error without a message"
    if err.field == "":
        assert err.reason.startswith(BODY_LEVEL), f"no field named: {err.reason!r}"
    else:
        assert err.field.startswith(TOP_FIELDS), f"odd field {err.field!r}: {err.reason}"


def check(body: bytes, mapping: NameMapping) -> ParsedRequest | None:
    """Parse `body` as the HTTP API and the MQTT link do; assert the contract either way."""
    try:
        parsed = parse_request(body, mapping)
    except ValidationError as err:
        check_refusal(err)
        return None
    stored = parsed.tasks_json.encode("utf-8")  # what the journal writes; raises if it cannot
    assert parse_tasks_json(stored.decode("utf-8"), mapping, job_id=parsed.uuid) == parsed.tasks
    for task in parsed.tasks:
        assert describe(task)
    return parsed


@fuzz(ci_examples=60)
@given(st.valid_bodies())
def test_well_formed_requests_parse(body: bytes) -> None:
    # The generator is meant to be valid: if most of these fail, it is the generator's bug.
    check(body, NameMapping())


@fuzz(ci_examples=400)
@given(st.hostile_bodies())
@example(b'{"uuid":"s1","request":[{"type":"sell","items":[{"type":"position","name":"\\ud800",'
         b'"price":1,"quantity":1,"amount":1,"tax":{"type":"vat20"}}],'
         b'"payments":[{"type":"cash","sum":1}]}]}')  # fmt: skip
@example(b'{"uuid":"d","request":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
@example(b'{"uuid":"n","request":[{"type":"cashIn","cashSum":1e999999}]}')
def test_hostile_requests_parse_or_name_the_field(body: bytes) -> None:
    check(body, NameMapping())


@fuzz(ci_examples=200)
@given(st.hostile_bodies())
def test_hostile_requests_with_a_crm_mapping(body: bytes) -> None:
    check(body, CRM)
