"""The Shtrih-M error table: complete entries, actions, transient states."""

from __future__ import annotations

import pytest

from gateway.registers.shtrih.errors_table import ERRORS, device_error, lookup


def test_every_entry_is_complete() -> None:
    for code, info in ERRORS.items():
        assert info.code == code
        assert all((info.ru, info.en, info.action)), hex(code)


@pytest.mark.parametrize(
    "code",
    [
        0x02,
        0x03,
        0x05,
        0x06,
        0x07,
        0x08,
        0x11,
        0x12,
        0x14,
        0x15,
        0x16,
        0x17,
        0x2F,
        0x30,
        0x33,
        0x37,
        0x45,
        0x4A,
        0x4E,
        0x4F,
        0x50,
        0x58,
        0x6B,
        0x71,
        0x72,
        0x73,
        0xA0,
        0xA5,
        0xC0,
        0xC8,
    ],
)
def test_reference_codes_are_known(code: int) -> None:
    assert code in ERRORS


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        (0x6B, True),
        (0x58, True),
        (0x50, True),
        (0x77, True),
        (0x45, False),
        (0x4E, False),
        (0x03, False),
    ],
)
def test_transient_flags(code: int, transient: bool) -> None:
    assert lookup(code).transient is transient


def test_unknown_code_gets_a_generic_entry() -> None:
    info = lookup(0xEE)
    assert info.code == 0xEE
    assert "0xee" in info.en


def test_device_error_carries_everything() -> None:
    err = device_error(0x4E, 0xFF46)
    assert err.error_code == 0x4E
    assert err.command == 0xFF46
    assert "24" in err.text
    assert "24" in err.message
    assert err.hint == ERRORS[0x4E].action
    assert not err.transient
