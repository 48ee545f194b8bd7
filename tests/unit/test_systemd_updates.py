"""Pure parts of updates: the pre-start decision, the canonical manifest, the health window."""

from __future__ import annotations

import pytest

from gateway.updates.errors import UpdateRejected
from gateway.updates.layout import BootAction, Trial, boot_action
from gateway.updates.manifest import command_json, parse_command, signed_bytes
from gateway.updates.service import HealthWindow

A = BootAction
BOOT_CASES = [
    # current, confirmed, trial -> action
    ("1", "1", None, A.NOTHING),
    ("1", "1", Trial("2", "1", 0), A.CLEAR_STALE),  # power cut between record and switch
    ("2", "1", Trial("2", "1", 0), A.START_TRIAL),  # first start of the new release
    ("2", "1", Trial("2", "1", 1), A.REVERT),  # crashed / hung / power cut during the trial
    ("2", "1", None, A.REVERT),  # no record of a trial: never trust an unconfirmed current
    ("2", "1", Trial("3", "1", 0), A.REVERT),  # the record is about another release
    (None, "1", None, A.REPAIR_CURRENT),
    (None, None, None, A.NOTHING),
    ("1", None, None, A.NOTHING),  # nothing confirmed yet: nothing to go back to
]


@pytest.mark.parametrize(("current", "confirmed", "trial", "action"), BOOT_CASES)
def test_boot_action(
    current: str | None, confirmed: str | None, trial: Trial | None, action: BootAction
) -> None:
    assert boot_action(current, confirmed, trial) is action


def test_signed_bytes_are_canonical() -> None:
    assert signed_bytes("2.0.0", "ab" * 32, 10) == (
        b'{"purpose":"fiscal-gateway-release/v1","sha256":"' + b"ab" * 32 + b'","size":10,'
        b'"version":"2.0.0"}'
    )


GOOD = {
    "version": "2.0.0",
    "url": "https://office.example/r.tar.gz",
    "sha256": "AB" * 32,
    "size": 10,
    "signature": "A" * 86 + "==",
}


def test_command_round_trip() -> None:
    cmd = parse_command(GOOD)
    assert cmd.sha256 == "ab" * 32  # normalised
    assert parse_command(command_json(cmd)) == cmd


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": "../etc"}, "version"),
        ({"version": ".hidden"}, "version"),
        ({"version": "1/2"}, "version"),
        ({"version": 2}, "version"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"sha256": "xyz"}, "sha256"),
        ({"size": 0}, "size"),
        ({"size": True}, "size"),
        ({"signature": "!!"}, "signature"),
        ({"signature": "AAAA"}, "signature"),
    ],
)
def test_bad_commands_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(UpdateRejected) as err:
        parse_command({**GOOD, **change})
    assert err.value.code == "bad_command"
    assert err.value.message.startswith(field)


def test_health_window_needs_an_unbroken_run() -> None:
    w = HealthWindow(10.0, now=0.0)
    assert [
        w.sample(ok, t) for t, ok in [(5, True), (9, False), (12, True), (21, True), (22, True)]
    ] == [
        False,
        False,
        False,
        False,
        True,
    ]
