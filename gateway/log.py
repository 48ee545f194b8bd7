"""Logging set-up: plain lines on a terminal, `<N>` priority prefixes under systemd."""

from __future__ import annotations

import logging
import os
import sys

# syslog priorities journald reads from a "<N>" line prefix (sd-daemon(3)).
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class _JournalPrefixFormatter(logging.Formatter):
    """Prefixes each line with its syslog priority; journald adds the time itself."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prio = _PRIORITY.get(record.levelno, 6)
        return "\n".join(f"<{prio}>{line}" for line in text.splitlines())


def setup_logging(level: str = "info", *, stream: object = None) -> None:
    """Configure the root logger once for the process."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalPrefixFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
