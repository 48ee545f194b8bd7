"""Fixtures for every test."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import Broker, Pki

# Our own loggers run at DEBUG during tests so every %-format, hex dumps included, is tried.
CHECKED_LOGGER = "gateway"


class FailOnBadFormattingHandler(logging.Handler):
    """Remembers every log call whose message cannot be %-formatted with its args."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.failures: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Format the record; keep a note when that fails (raising here would be swallowed)."""
        try:
            record.getMessage()
        except Exception as err:
            self.failures.append(
                f"{record.pathname}:{record.lineno}: {record.msg!r} % {record.args!r}: {err!r}"
            )


@pytest.fixture(autouse=True)
def fail_on_bad_log_formatting() -> Iterator[FailOnBadFormattingHandler]:
    """Fail the test if any log call during it had bad %-formatting."""
    handler = FailOnBadFormattingHandler()
    root = logging.getLogger()
    ours = logging.getLogger(CHECKED_LOGGER)
    old_level = ours.level
    ours.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        ours.setLevel(old_level)
    if handler.failures:
        pytest.fail("bad log formatting:\n" + "\n".join(handler.failures), pytrace=False)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """An office CA for this test (broker, box and office certificates)."""
    return Pki(tmp_path / "pki")


@pytest.fixture
def broker(tmp_path: Path, pki: Pki) -> Iterator[Broker]:
    """A real Mosquitto with mutual TLS and the recommended ACL, stopped after the test."""
    root = tmp_path / "broker"
    root.mkdir()
    b = Broker(root, pki)
    b.start()
    yield b
    b.stop()
