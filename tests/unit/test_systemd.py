"""Pure parts of the systemd integration: watchdog gate, STATUS text, environment parsing, logs."""

from __future__ import annotations

import io
import logging
import os
import socket
from pathlib import Path

import pytest

from gateway.runtime.log import (
    JournalPrefixFormatter,
    setup_logging,
    stream_goes_to_journal,
    syslog_priority,
)
from gateway.runtime.systemd import Notifier, Progress, ProgressGate, StatusFacts, format_status

# --- ProgressGate: (seconds since start, counter, waiting) -> ping? ------------------------

GATE_CASES = [
    # A worker that ticks keeps the pings going.
    ("ticking", [(0, 1, False, True), (10, 2, False, True), (20, 3, False, True)]),
    # Standing still past the limit withholds the ping; moving again resumes it.
    (
        "stall then resume",
        [(0, 1, False, True), (20, 1, False, True), (30, 1, False, False), (31, 2, False, True)],
    ),
    # Waiting on the register (unplugged, paper out) is not a stall, however long.
    ("waiting", [(0, 1, False, True), (100, 1, True, True), (200, 1, True, True)]),
    # The stall clock starts again when the wait ends.
    ("after waiting", [(0, 1, True, True), (25, 1, False, True), (56, 1, False, False)]),
    # Exactly at the limit counts as stalled.
    ("boundary", [(0, 5, False, True), (30, 5, False, False)]),
]


@pytest.mark.parametrize(("name", "steps"), GATE_CASES, ids=[c[0] for c in GATE_CASES])
def test_progress_gate(name: str, steps: list[tuple[float, int, bool, bool]]) -> None:
    gate = ProgressGate(30.0, now=0.0)
    for now, counter, waiting, expected in steps:
        verdict = gate.check(Progress(counter, waiting), now)
        assert verdict.ping is expected, (name, now, verdict)


def test_progress_gate_reports_how_long_it_stood_still() -> None:
    gate = ProgressGate(10.0, now=100.0)
    gate.check(Progress(7), 100.0)
    assert gate.check(Progress(7), 112.5).stalled_s == pytest.approx(12.5)
    with pytest.raises(ValueError, match="positive"):
        ProgressGate(0, now=0.0)


# --- STATUS= text ----------------------------------------------------------------------------

STATUS_CASES = [
    (StatusFacts("starting"), "register starting"),
    (
        StatusFacts("connected", queue_depth=0, clock="synced"),
        "register connected; queue 0; clock synced",
    ),
    (
        StatusFacts("connected", queue_depth=3, printing="job-1"),
        "register connected; queue 3, printing job-1",
    ),
    (
        StatusFacts("disconnected", queue_depth=2, paused="register not connected", printing="x"),
        "register disconnected; queue 2, paused: register not connected",
    ),
    (
        StatusFacts("connected", queue_depth=1, blocked="j9", paused="blocked", clock="unsynced"),
        "register connected; queue 1, BLOCKED on j9; clock unsynced",
    ),
    (StatusFacts("connected", update="trial 0.2.0"), "register connected; update trial 0.2.0"),
]


@pytest.mark.parametrize(("facts", "text"), STATUS_CASES)
def test_format_status(facts: StatusFacts, text: str) -> None:
    assert format_status(facts) == text


# --- Notifier: environment ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "enabled", "interval"),
    [
        ({}, False, None),
        ({"NOTIFY_SOCKET": "/run/systemd/notify"}, True, None),
        ({"NOTIFY_SOCKET": "@abstract"}, True, None),
        ({"NOTIFY_SOCKET": "vsock:2:1"}, False, None),  # not an AF_UNIX address
        ({"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000"}, True, 15.0),
        ({"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, True, 15.0),
        ({"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "43"}, True, None),
        ({"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "garbage"}, True, None),
        ({"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "0"}, True, None),
        ({"WATCHDOG_USEC": "30000000"}, False, None),  # nobody to ping
    ],
)
def test_notifier_reads_the_environment(
    env: dict[str, str], enabled: bool, interval: float | None
) -> None:
    n = Notifier(dict(env), pid=42)
    assert n.enabled is enabled
    assert n.watchdog_interval_s == interval


def test_notifier_can_forget_the_variables_for_child_processes() -> None:
    env = {"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "7", "PATH": "/bin"}
    n = Notifier(env, unset=True, pid=7)
    assert env == {"PATH": "/bin"}
    assert n.enabled
    assert n.watchdog_interval_s == 0.5


def test_notifier_outside_systemd_sends_nothing() -> None:
    n = Notifier({})
    assert n.ready("x") is False
    assert n.watchdog() is False


def test_notifier_survives_a_vanished_socket(tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.ready() is False  # logged, not raised


def test_status_is_one_bounded_line(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        n = Notifier({"NOTIFY_SOCKET": str(path)})
        assert n.status("line one\nREADY=1 " + "x" * 500)
        data = sock.recv(4096).decode()
    assert "\n" not in data
    assert data.startswith("STATUS=line one READY=1 x")
    assert len(data) == len("STATUS=") + 200


# --- logging -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "prio"),
    [
        (logging.CRITICAL, 2),
        (logging.ERROR, 3),
        (logging.WARNING, 4),
        (logging.INFO, 6),
        (25, 6),
        (logging.DEBUG, 7),
        (5, 7),
    ],
)
def test_syslog_priority(level: int, prio: int) -> None:
    assert syslog_priority(level) == prio


def test_prefix_on_every_line_of_a_record() -> None:
    fmt = JournalPrefixFormatter("%(name)s: %(message)s")
    rec = logging.LogRecord("gateway.x", logging.WARNING, __file__, 1, "a\nb %d", (5,), None)
    assert fmt.format(rec) == "<4>gateway.x: a\n<4>b 5"


def test_journal_stream_must_be_this_very_stream(tmp_path: Path) -> None:
    with (tmp_path / "err").open("w") as f:
        st = os.fstat(f.fileno())
        assert stream_goes_to_journal(f, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        # Inherited from a parent whose stderr went elsewhere: not ours.
        assert not stream_goes_to_journal(f, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not stream_goes_to_journal(f, {"JOURNAL_STREAM": "junk"})
        assert not stream_goes_to_journal(f, {})
    assert not stream_goes_to_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"})


def test_setup_logging_modes(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        with (tmp_path / "err").open("w+") as f:
            st = os.fstat(f.fileno())
            mode = setup_logging(
                "info", stream=f, environ={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
            )
            assert mode == "journal-stream"  # the systemd binding is not installed here
            logging.getLogger("gateway.test").warning("paper %s", "out")
            mode = setup_logging("info", stream=f, environ={})
            assert mode == "terminal"
            logging.getLogger("gateway.test").warning("cover open")
            f.seek(0)
            lines = f.read().splitlines()
        assert lines[0] == "<4>gateway.test: paper out"
        assert not lines[1].startswith("<")
        assert lines[1].endswith("gateway.test: cover open")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
