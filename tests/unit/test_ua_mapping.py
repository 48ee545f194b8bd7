"""Ukrainian names -> domain -> Checkbox / Вчасно.Каса codes, and the pure helpers behind them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from gateway.atol import results
from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.atol.tasks import ReceiptTask
from gateway.domain import fiscal
from gateway.domain.errors import ConfigError, Refusal, ValidationError
from gateway.registers.checkbox import payload as cb
from gateway.registers.cloud import offline
from gateway.registers.cloud.errors import CloudApiError, UnmappedName
from gateway.registers.cloud.events import CloudEvents
from gateway.registers.vchasno import payload as vc

UA = NameMapping(
    payment_types={
        "Готівка": "cash",
        "Картка": "electronically",
        "Безготівка": "electronically",
        "Передплата": "prepaid",
    },
    vat={
        "ПДВ 20 %": "vat20",
        "ПДВ 7 %": "vat7",
        "ПДВ 0 %": "vat0",
        "без ПДВ": "none",
        "ПДВ 10 %": "vat10",
    },
)
CHECKBOX_TAXES: list[dict[str, Any]] = [
    {"code": 8, "label": "Акциз", "rate": 5.0, "extra_rate": 5.0},
    {"code": 1, "label": "ПДВ", "rate": 20.0},
    {"code": 2, "label": "ПДВ", "rate": 7.0},
    {"code": 4, "label": "ПДВ", "rate": 0.0},
    {"code": 3, "label": "Без ПДВ", "rate": 0.0},
]


def receipt(pay: str, vat: str, kind: str = "sell") -> fiscal.Receipt:
    body = {
        "uuid": "u-1",
        "request": [
            {
                "type": kind,
                "items": [
                    {
                        "type": "position",
                        "name": "Товар",
                        "price": 10,
                        "quantity": 1,
                        "amount": 10,
                        "tax": {"type": vat},
                    }
                ],
                "payments": [{"type": pay, "sum": 10}],
            }
        ],
    }
    task = parse_request(json.dumps(body), UA).tasks[0]
    assert isinstance(task, ReceiptTask)
    return task.receipt


@pytest.mark.parametrize(
    ("crm_name", "checkbox", "vchasno"),
    [("Готівка", "CASH", 0), ("Картка", "CASHLESS", 2), ("Безготівка", "CASHLESS", 2)],
)
def test_payment_names(crm_name: str, checkbox: str, vchasno: int) -> None:
    r = receipt(crm_name, "ПДВ 20 %")
    codes = cb.tax_codes_from_list(CHECKBOX_TAXES)
    body = cb.sell_body(r, receipt_uuid=str(uuid.uuid4()), tax_codes=codes)
    assert body["payments"] == [{"type": checkbox, "value": 1000}]
    _task, vbody = vc.receipt_body(r, tax_groups=vc.DEFAULT_TAX_GROUPS)
    assert [p["type"] for p in vbody["pays"]] == [vchasno]


@pytest.mark.parametrize(
    ("crm_name", "checkbox_tax", "vchasno_group"),
    [("ПДВ 20 %", [1], 1), ("ПДВ 7 %", [2], 4), ("ПДВ 0 %", [4], 5), ("без ПДВ", [3], 2)],
)
def test_tax_names(crm_name: str, checkbox_tax: list[int], vchasno_group: int) -> None:
    r = receipt("Готівка", crm_name)
    codes = cb.tax_codes_from_list(CHECKBOX_TAXES)
    body = cb.sell_body(r, receipt_uuid=str(uuid.uuid4()), tax_codes=codes)
    assert body["goods"][0]["good"]["tax"] == checkbox_tax
    _task, vbody = vc.receipt_body(r, tax_groups=vc.DEFAULT_TAX_GROUPS)
    assert vbody["rows"][0]["taxgrp"] == vchasno_group


def test_unmapped_crm_name_is_an_error_naming_it() -> None:
    with pytest.raises(ValidationError) as err:
        receipt("Бонуси", "ПДВ 20 %")
    assert "'Бонуси'" in str(err.value)
    assert err.value.field == "request[0].payments[0].type"
    with pytest.raises(ValidationError) as err:
        receipt("Готівка", "ПДВ 14 %")
    assert "'ПДВ 14 %'" in str(err.value)


@pytest.mark.parametrize(
    ("pay", "vat", "named"),
    [("Передплата", "ПДВ 20 %", "'prepaid'"), ("Готівка", "ПДВ 10 %", "'vat10'")],
)
def test_a_name_the_backend_has_no_code_for_is_an_error_naming_it(
    pay: str, vat: str, named: str
) -> None:
    r = receipt(pay, vat)
    with pytest.raises(UnmappedName) as err:
        cb.sell_body(
            r, receipt_uuid=str(uuid.uuid4()), tax_codes=cb.tax_codes_from_list(CHECKBOX_TAXES)
        )
    assert named in err.value.message
    assert "Checkbox" in err.value.message
    with pytest.raises(UnmappedName) as verr:
        vc.receipt_body(r, tax_groups=vc.DEFAULT_TAX_GROUPS)
    assert named in verr.value.message
    assert "Вчасно.Каса" in verr.value.message
    # Driver-neutral for the worker: a clean refusal of the value, nothing sent.
    for refused in (err.value, verr.value):
        assert refused.reason is Refusal.UNMAPPED
        assert not refused.transient
        assert results.error_code(refused) == results.ATOL_INVALID_PARAM
    assert err.value.detail is not None
    assert verr.value.detail is not None
    assert (err.value.detail.source, verr.value.detail.source) == ("checkbox", "vchasno")


def test_checkbox_tax_list_skips_excise_and_leaves_unknown_rates_unmapped() -> None:
    codes = cb.tax_codes_from_list(CHECKBOX_TAXES)
    assert codes == {
        fiscal.Vat.VAT20: 1,
        fiscal.Vat.VAT7: 2,
        fiscal.Vat.VAT0: 4,
        fiscal.Vat.NONE: 3,
    }
    assert cb.tax_codes_from_list([]) == {fiscal.Vat.NONE: None}  # goods without a tax code


def test_receipt_ids() -> None:
    u = "9B2F7C1E-0000-4000-8000-000000000001"
    ours, theirs = cb.register_namespace("4000123456"), cb.register_namespace("4000123457")
    assert cb.receipt_id(u, ours) == u.lower()  # a CRM's uuid is used as-is
    assert cb.receipt_id("job-1", ours) == cb.receipt_id("job-1", ours)
    assert cb.receipt_id("job-1", ours) != cb.receipt_id("job-1/1", ours)
    assert cb.receipt_id("job-1", ours) != cb.receipt_id("job-1", theirs)  # per register
    assert cb.receipt_id("job-1", ours) != cb.legacy_receipt_id("job-1")
    assert cb.legacy_receipt_id(u) is None  # a uuid never had another id
    assert uuid.UUID(cb.receipt_id("job-1", ours)).version == 5


def test_vchasno_default_tax_groups_are_the_documented_table() -> None:
    # [VCHASNO] 1 ПДВ 20 %, 2 без ПДВ, 4 ПДВ 7 %, 5 ПДВ 0 % (9 ПДВ 14 % has no domain rate)
    assert vc.DEFAULT_TAX_GROUPS == {
        fiscal.Vat.VAT20: 1,
        fiscal.Vat.NONE: 2,
        fiscal.Vat.VAT7: 4,
        fiscal.Vat.VAT0: 5,
    }
    r = receipt("Готівка", "ПДВ 10 %")
    with pytest.raises(UnmappedName) as err:
        vc.receipt_body(r, tax_groups=vc.DEFAULT_TAX_GROUPS)
    assert "'vat10'" in err.value.message
    assert "register.tax_groups" in (err.value.hint or "")


def test_vchasno_tax_groups_config_key() -> None:
    from gateway.config.reader import parse_config

    head = "register:\n  driver: vchasno\n  url: https://kasa.vchasno.ua/api/v3\n  token: t0k3n\n"
    cfg = parse_config(head + "  tax_groups: {vat20: 3, none: 7, vat120: 3}\n")
    assert cfg.register.tax_groups is not None
    assert cfg.register.tax_groups.table() == {
        fiscal.Vat.VAT20: 3,
        fiscal.Vat.NONE: 7,
        fiscal.Vat.VAT120: 3,
    }
    assert parse_config(head).register.tax_groups is None  # the documented default
    for bad, named in (
        ("{vat14: 9}", "register.tax_groups.vat14"),
        ("{vat20: 100}", "register.tax_groups.vat20"),
        ("{vat20: 0}", "register.tax_groups.vat20"),
        ("{vat20: one}", "register.tax_groups.vat20"),
    ):
        with pytest.raises(ConfigError) as err:
            parse_config(head + f"  tax_groups: {bad}\n")
        assert [i.path for i in err.value.issues] == [named]
    checkbox = "register:\n  driver: checkbox\n  url: https://x/api/v1\n  license_key: k\n"
    with pytest.raises(ConfigError) as err:
        parse_config(checkbox + "  pin_code: '1'\n  tax_groups: {vat20: 1}\n")
    assert [i.path for i in err.value.issues] == ["register.tax_groups"]


def test_checkbox_compares_what_it_meant_with_what_it_found() -> None:
    meant = cb.expected_sell(receipt("Готівка", "ПДВ 20 %"))
    found = {
        "type": "SELL",
        "total_sum": 1000,
        "payments": [{"type": "CASH", "value": 1000, "label": "Готівка"}],
    }
    assert cb.mismatch(meant, found, register="4000") is None
    assert "RETURN" in (cb.mismatch(meant, {**found, "type": "RETURN"}, register="4000") or "")
    assert "total" in (cb.mismatch(meant, {**found, "total_sum": 999}, register="4000") or "")
    other_pay = {**found, "payments": [{"type": "CASHLESS", "value": 1000}]}
    assert "payments" in (cb.mismatch(meant, other_pay, register="4000") or "")
    elsewhere = {**found, "shift": {"cash_register": {"fiscal_number": "4001"}}}
    assert "4001" in (cb.mismatch(meant, elsewhere, register="4000") or "")


def test_returns_and_unsupported_kinds() -> None:
    r = receipt("Готівка", "ПДВ 20 %", kind="sellReturn")
    body = cb.sell_body(r, receipt_uuid=str(uuid.uuid4()), tax_codes={fiscal.Vat.VAT20: 1})
    assert body["goods"][0]["is_return"] is True
    assert vc.receipt_body(r, tax_groups=vc.DEFAULT_TAX_GROUPS)[0] == vc.TASK_RETURN
    buy = receipt("Готівка", "ПДВ 20 %", kind="buy")
    with pytest.raises(UnmappedName):
        cb.sell_body(buy, receipt_uuid=str(uuid.uuid4()), tax_codes={fiscal.Vat.VAT20: 1})
    with pytest.raises(UnmappedName):
        vc.receipt_body(buy, tax_groups=vc.DEFAULT_TAX_GROUPS)


def item(price: int, qty: int, amount: int) -> fiscal.Item:
    return fiscal.Item("Ваговий", price, qty, amount, fiscal.Vat.VAT20)


@pytest.mark.parametrize(
    ("price", "qty", "amount", "quantity", "discount"),
    [
        (8990, 2_000_000, 17980, 2000, None),
        (8990, 2_000_000, 17000, 2000, ("DISCOUNT", 980)),
        (1000, 357_000, 358, 357, ("EXTRA_CHARGE", 1)),  # 3.57 rounds to 357, amount 358
        (4550, 1_500_000, 6825, 1500, None),
    ],
)
def test_checkbox_quantities_and_discounts(
    price: int, qty: int, amount: int, quantity: int, discount: tuple[str, int] | None
) -> None:
    r = fiscal.Receipt(
        fiscal.ReceiptType.SELL,
        None,
        (item(price, qty, amount),),
        (fiscal.Payment(fiscal.PaymentType.CASH, amount),),
        request_id="x",
    )
    good = cb.sell_body(r, receipt_uuid="x", tax_codes={fiscal.Vat.VAT20: 1})["goods"][0]
    assert good["quantity"] == quantity
    got = good.get("discounts")
    assert (None if got is None else (got[0]["type"], got[0]["value"])) == discount


def test_more_than_three_decimals_is_refused() -> None:
    r = fiscal.Receipt(
        fiscal.ReceiptType.SELL,
        None,
        (item(1000, 1_234_500, 1235),),
        (fiscal.Payment(fiscal.PaymentType.CASH, 1235),),
    )
    with pytest.raises(UnmappedName):
        cb.sell_body(r, receipt_uuid="x", tax_codes={fiscal.Vat.VAT20: 1})
    with pytest.raises(UnmappedName):
        vc.receipt_body(r, tax_groups=vc.DEFAULT_TAX_GROUPS)


@pytest.mark.parametrize("kopecks", [0, 1, 10, 199, 4550, 17980, 999_999_999_999])
def test_vchasno_money_round_trip(kopecks: int) -> None:
    assert vc.kopecks(vc.uah(kopecks)) == kopecks
    assert vc.kopecks(json.loads(json.dumps(vc.uah(kopecks)))) == kopecks


def test_vchasno_cash_change_goes_on_the_cash_line() -> None:
    r = fiscal.Receipt(
        fiscal.ReceiptType.SELL,
        None,
        (item(1000, 1_000_000, 1000),),
        (
            fiscal.Payment(fiscal.PaymentType.ELECTRONICALLY, 400),
            fiscal.Payment(fiscal.PaymentType.CASH, 1000),
        ),
    )
    _task, body = vc.receipt_body(r, tax_groups=vc.DEFAULT_TAX_GROUPS)
    assert body["pays"] == [
        {"type": 2, "sum": 4.0, "change": 0.0},
        {"type": 0, "sum": 10.0, "change": 4.0},
    ]


def test_checkbox_receipt_result_carries_code_and_links() -> None:
    res = cb.receipt_result(
        {
            "id": "abc",
            "serial": 7,
            "fiscal_code": "OFF-000003",
            "total_sum": 1200,
            "fiscal_date": "2026-03-01T10:00:00+00:00",
            "tax_url": "https://t/x",
            "is_created_offline": True,
            "shift": {"serial": 4},
        },
        api_url="https://api/v1",
        fiscal_number="400",
        tz=dt.UTC,
    )
    assert (res.document_number, res.shift_number, res.total) == (7, 4, 1200)
    assert res.fiscal_sign == 0  # not numeric: the code travels in extra
    assert res.extra["fiscalDocumentSign"] == "OFF-000003"
    assert res.extra["offline"] == "true"
    assert res.extra["qrUrl"] == "https://api/v1/receipts/abc/qrcode"
    assert res.datetime == dt.datetime(2026, 3, 1, 10, 0)


@pytest.mark.parametrize(
    ("info", "doc_type", "receipt_type", "total"),
    [
        (
            {"docno": 5, "doctype": 1, "sum": 19.9, "doccode": "123"},
            3,
            fiscal.ReceiptType.SELL,
            1990,
        ),
        ({"docno": 5, "doctype": 2, "sum": "1.00"}, 3, fiscal.ReceiptType.SELL_RETURN, 100),
        ({"docno": 5, "doctype": 0}, 2, None, None),
        ({"docno": 5, "doctype": 11}, 5, None, None),
        ({"docno": 5}, 0, None, None),  # kind unknown: never matches a task, so it blocks
    ],
)
def test_vchasno_last_document(
    info: dict[str, Any], doc_type: int, receipt_type: fiscal.ReceiptType | None, total: int | None
) -> None:
    doc = vc.found_document(info)
    assert (doc.number, doc.document_type, doc.receipt_type, doc.total) == (
        5,
        doc_type,
        receipt_type,
        total,
    )


T0 = dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("periods", "now", "run_h", "month_h", "level"),
    [
        ((), T0, 0, 0, offline.Level.OK),
        (((T0, None),), T0 + 10 * H, 10, 10, offline.Level.OK),
        (((T0, None),), T0 + 30 * H, 30, 30, offline.Level.WARN),  # 6 h left of 36
        (((T0, None),), T0 + 36 * H, 36, 36, offline.Level.EXCEEDED),
        (((T0 - 150 * H, T0 - 10 * H), (T0, None)), T0 + 2 * H, 2, 142, offline.Level.OK),
        (((T0 - 200 * H, T0 - 50 * H), (T0, None)), T0 + 13 * H, 13, 163, offline.Level.WARN),
        (((T0 - 200 * H, T0 - 30 * H), (T0, None)), T0 + 1 * H, 1, 171, offline.Level.EXCEEDED),
        # Only the 8 h since 1 March 00:00 count; February's hours do not.
        (((T0 - 30 * 24 * H, T0 - 9 * 24 * H),), T0, 0, 8, offline.Level.OK),
    ],
)
def test_offline_budget(
    periods: tuple[tuple[dt.datetime, dt.datetime | None], ...],
    now: dt.datetime,
    run_h: int,
    month_h: int,
    level: offline.Level,
) -> None:
    budget = offline.Ledger(periods).budget(now)
    assert budget.run == run_h * H
    assert budget.month == month_h * H
    assert budget.level is level
    assert budget.run_left == max(dt.timedelta(), offline.RUN_LIMIT - run_h * H)


def test_offline_ledger_transitions() -> None:
    ledger = offline.Ledger().went_online(T0)
    assert ledger.periods == ()
    ledger = ledger.went_offline(T0).went_offline(T0 + H)
    assert ledger.offline_since == T0
    ledger = ledger.went_online(T0 + 2 * H)
    assert ledger.offline_since is None
    assert ledger.periods == ((T0, T0 + 2 * H),)
    assert ledger.forget_before(T0 + 3 * H).periods == ()


@pytest.mark.parametrize(
    ("status", "code", "reason", "transient", "atol"),
    [
        (400, "shift.already_opened", Refusal.WRONG_MODE, False, 1400),
        (422, "", Refusal.INVALID_DATA, False, 160),
        (404, "", Refusal.NOT_FOUND, False, 1404),
        (429, "rate_limited", Refusal.BUSY, True, 1429),
        (400, "receipt.error", Refusal.OTHER, False, 1400),
    ],
)
def test_checkbox_refusals_map_to_neutral_reasons(
    status: int, code: str, reason: Refusal, transient: bool, atol: int
) -> None:
    err = CloudApiError(
        status, code, "text", path="p", source="checkbox", reason=cb.refusal_reason(status, code)
    )
    assert err.reason is reason
    assert err.transient is transient
    assert err.detail is not None
    assert err.detail.number == status  # the backend's own number, for the technician
    assert err.detail.code == f"HTTP {status} {code}".strip()
    # What a client sees: an ATOL twin where there is one, else 1000 + the HTTP status.
    assert results.error_code(err) == atol


def test_offline_watch_reports_each_change_and_limit_once() -> None:
    seen: list[tuple[str, dict[str, object]]] = []
    events = CloudEvents(lambda name, data: seen.append((name, data)))
    events.register = "4000123456"
    now = [T0]
    watch = offline.OfflineWatch(events, label="Test register", now=lambda: now[0])
    watch.observe(offline=False)
    assert seen == []
    watch.made_offline()
    watch.observe(offline=True)
    assert [name for name, _ in seen] == ["register_offline"]
    assert seen[0][1]["register"] == "4000123456"
    assert watch.unsent == 1
    assert fiscal.FnWarning.OFD_TIMEOUT in watch.warnings()
    now[0] = T0 + 31 * H  # less than 6 h of the 36 h run left
    watch.observe(offline=True)
    watch.observe(offline=True)
    assert [name for name, _ in seen] == ["register_offline", "offline_limit_warn"]
    assert fiscal.FnWarning.RESOURCE_EXHAUSTED in watch.warnings()
    watch.observe(offline=False)
    name, data = seen[-1]
    assert name == "register_online"
    assert data["backlog"] == 1
    assert data["offline_seconds"] == 31 * 3600
    assert watch.unsent == 0
    assert watch.warnings() == set()
