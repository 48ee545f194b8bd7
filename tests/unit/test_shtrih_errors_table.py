"""The Shtrih-M error table: complete against [PROTO] and the public drivers, actions, transients."""

from __future__ import annotations

import re

import pytest

from gateway.atol import results
from gateway.domain.errors import TRANSIENT_REFUSALS, Refusal, RegisterError, RegisterRefused
from gateway.registers.shtrih import errors_table
from gateway.registers.shtrih.errors_table import ERRORS, ErrorInfo, device_error, lookup

# Every code of [PROTO] v1.17 "Коды ошибок", pp.67–70.
PROTO_CODES = [
    *(0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x08, 0x09, 0x10, 0x11, 0x12, 0x14, 0x16, 0x17),
    *(0x20, 0x2F, 0x30, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3C, 0x3D, 0x3E, 0x3F),
    *range(0x40, 0x57),
    *(0x58, 0x59, 0x5B, 0x5C, 0x5D, 0x5E, 0x5F, 0x60, 0x61, 0x62, 0x63, 0x65, 0x66, 0x68, 0x69),
    *(0x6A, 0x6B, 0x6D, 0x6E, 0x6F, 0x71, 0x72, 0x73, 0x74, 0x75, 0x77, 0x78, 0x7A, 0x7B, 0x7C),
    *(0x7D, 0x7E, 0x7F, *range(0x84, 0x8F), 0x90, 0x91, 0x92, 0x93, 0x94),
    *range(0xA0, 0xA6),
    *(0xC0, 0xC2, 0xC4, 0xC7, 0xC8),
]

# Codes the older drivers document beyond [PROTO] v1.17 (pyshtrih excepts.py, both tables,
# and the vendor's JavaPOS message table).
DRIVER_CODES = [
    *(0x06, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x13, 0x15, 0x18, 0x19, *range(0x1A, 0x20)),
    *(0x21, 0x22, 0x23, 0x24, *range(0x25, 0x2F), 0x31, 0x32, 0x3B, 0x57, 0x5A, 0x64, 0x67),
    *(0x6C, 0x70, 0x76, 0x79, *range(0x80, 0x84), 0x8F, 0x95, 0x96, *range(0x9B, 0x9F)),
    *(*range(0xA6, 0xAB), 0xAC, 0xAF, 0xB0, 0xB1, 0xB2, *range(0xB4, 0xC0)),
    *(0xC1, 0xC3, 0xC5, 0xC6, *range(0xC9, 0xD6), *range(0xE0, 0xE5)),
]

TRANSIENT = {
    0x50,  # printing the previous command
    0x58,  # waiting for continue-print
    0x5C,  # 24 V low
    0x6A,  # power failure during I2C
    0x6B,  # no receipt paper
    0x6C,  # no journal paper
    0x72,  # wrong submode: paper out or printing
    0x75,  # power error
    0x77,  # no sensor signal: cover open
    0xC1,  # Z report cannot be interrupted
    0xC2,  # supply voltage too high
    0xC6,  # no slip document
    0xC9,  # print head too hot
    0xCA,  # temperature out of range
    0xE1,  # bill acceptor busy
}


def test_no_code_is_listed_twice() -> None:
    codes = [row[0] for row in errors_table._TABLE]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("code", sorted(ERRORS), ids=lambda c: f"{c:02X}")
def test_every_entry_is_complete(code: int) -> None:
    info = ERRORS[code]
    assert info.code == code
    assert re.search("[А-Яа-я]", info.ru), info
    assert info.en
    assert info.en.isascii(), info.en
    assert info.action.endswith("."), info.action


@pytest.mark.parametrize("code", PROTO_CODES, ids=lambda c: f"{c:02X}")
def test_every_proto_code_is_known(code: int) -> None:
    assert code in ERRORS


@pytest.mark.parametrize("code", DRIVER_CODES, ids=lambda c: f"{c:02X}")
def test_every_driver_code_is_known(code: int) -> None:
    assert code in ERRORS


@pytest.mark.parametrize(
    ("code", "ru"),
    [
        # Spot checks against [PROTO] v1.17's wording.
        (0x02, "неверное состояние ФН"),
        (0x11, "нет транспортного соединения"),
        (0x16, "более 24 часов"),
        (0x17, "5 минут"),
        (0x2F, "Таймаут обмена с ФН"),
        (0x37, "Команда не поддерживается"),
        (0x45, "меньше итога чека"),
        (0x4A, "Открыт чек"),
        (0x4E, "Смена превысила 24 часа"),
        (0x4F, "Неверный пароль"),
        (0x58, "продолжения печати"),
        (0x6B, "Нет чековой ленты"),
        (0x71, "отрезчика"),
        (0x72, "подрежиме"),
        (0x73, "данном режиме"),
        (0xA0, "маркированными товарами"),
        (0xA3, "кодов маркировки"),
        (0xA5, "2007"),
        (0xC0, "подтвердите дату"),
        (0xC8, "таходатчика"),
    ],
)
def test_wording_follows_proto(code: int, ru: str) -> None:
    assert ru in ERRORS[code].ru


def test_transient_codes_are_exactly_the_self_clearing_ones() -> None:
    assert {code for code, info in ERRORS.items() if info.transient} == TRANSIENT


@pytest.mark.parametrize("code", [0x6B, 0x58, 0x50, 0x77], ids=lambda c: f"{c:02X}")
def test_paper_and_printing_tell_the_shop_what_to_do(code: int) -> None:
    action = ERRORS[code].action.lower()
    assert "by itself" in action
    assert "paper" in action or "wait" in action or "cover" in action


@pytest.mark.parametrize("code", range(256), ids=lambda c: f"{c:02X}")
def test_lookup_answers_every_byte(code: int) -> None:
    info = lookup(code)
    assert isinstance(info, ErrorInfo)
    assert info.code == code
    assert info.action


def test_unknown_code_gets_a_generic_entry() -> None:
    info = lookup(0xEE)
    assert 0xEE not in ERRORS
    assert info.code == 0xEE
    assert "0xee" in info.en
    assert "0xee" in info.ru
    assert not info.transient


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        ERRORS[0x01] = ERRORS[0x02]  # type: ignore[index]


def test_device_error_carries_everything() -> None:
    err = device_error(0x4E, 0xFF46)
    assert isinstance(err, RegisterRefused)
    assert isinstance(err, RegisterError)
    assert err.error_code == 0x4E
    assert err.command == 0xFF46
    assert err.text == f"{ERRORS[0x4E].en} / {ERRORS[0x4E].ru}"
    assert "24" in err.message
    assert "0x4e" in err.message
    assert "0xff46" in err.message
    assert err.hint == ERRORS[0x4E].action
    assert not err.transient
    # What the rest of the gateway sees: a neutral reason, the register's words as detail.
    assert err.reason is Refusal.SHIFT_EXPIRED
    assert err.detail is not None
    assert (err.detail.source, err.detail.code, err.detail.number) == ("shtrih", "0x4e", 0x4E)
    assert (err.detail.text, err.detail.command) == (err.text, "0xff46")


def test_device_error_transient_for_paper_out() -> None:
    err = device_error(0x6B, 0x80)
    assert err.transient
    assert err.reason is Refusal.PAPER_OUT
    assert err.hint == ERRORS[0x6B].action


def test_reasons_name_only_codes_the_table_knows() -> None:
    assert set(errors_table.REASONS) <= set(ERRORS)


def test_a_code_is_transient_exactly_when_its_reason_is() -> None:
    """The worker pauses on `transient`; a client's code follows `reason`: they must agree."""
    for code, info in ERRORS.items():
        reason = errors_table.REASONS.get(code, Refusal.OTHER)
        assert info.transient == (reason in TRANSIENT_REFUSALS), f"{code:#04x} {reason}"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (0x73, Refusal.WRONG_MODE),
        (0x16, Refusal.SHIFT_EXPIRED),
        (0x06, Refusal.FN_EXHAUSTED),
        (0x15, Refusal.OFD_BACKLOG),
        (0x07, Refusal.CLOCK),
        (0x4A, Refusal.RECEIPT_OPEN),
        (0x77, Refusal.COVER_OPEN),
        (0x35, Refusal.OTHER),  # "not valid with the current settings": the driver knows more
    ],
    ids=lambda v: f"{v:02X}" if isinstance(v, int) else v.value,
)
def test_codes_map_to_neutral_reasons(code: int, reason: Refusal) -> None:
    assert device_error(code, 0x10).reason is reason


def test_device_error_for_an_unknown_code() -> None:
    err = device_error(0xFE, 0x10)
    assert err.error_code == 0xFE
    assert "0xfe" in err.text
    assert not err.transient


@pytest.mark.parametrize(
    ("code", "atol"),
    [
        (0x6B, 44),  # no paper
        (0x77, 45),  # no sensor signal: the cover is open
        (0xC8, 46),  # printer fault
        (0x4E, 68),  # shift over 24 h
        (0x4A, 82),  # a receipt is open
        (0x07, 36),  # date earlier than the last document
        (0x06, 120),  # ФН archive full
        (0x15, 139),  # OFD wait exhausted
        (0x33, 160),  # bad parameter
        (0x73, 1000 + 0x73),  # no ATOL twin: 1000 + the register's own code, as before
        (0xEE, 1000 + 0xEE),  # a code no table knows
    ],
    ids=lambda v: f"{v:02X}",
)
def test_a_client_sees_atol_codes_from_the_neutral_reason(code: int, atol: int) -> None:
    assert results.error_code(device_error(code, 0xFF45)) == atol


def test_the_boxs_own_refusals_have_no_register_code() -> None:
    err = RegisterRefused(Refusal.WRONG_MODE, "shift is already open")
    assert not err.transient
    assert results.error_code(err) == results.ATOL_OTHER
    assert results.error_code(RegisterRefused(Refusal.PAPER_OUT, "no paper")) == 44
