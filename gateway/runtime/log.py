"""Logging set-up: plain lines on a terminal, `<N>` priority prefixes under systemd.

Under systemd stderr is a stream into journald, named by $JOURNAL_STREAM ("device:inode");
journald reads a leading `<N>` as the syslog priority and adds the time itself. When the
`systemd` Python binding is installed (Debian's python3-systemd), records go to journald
natively instead, with structured fields (LOGGER, BOX_ID, JOB_UUID…). Nothing of this is
active outside systemd.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

# syslog priorities journald reads from a "<N>" line prefix (sd-daemon(3)).
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def syslog_priority(levelno: int) -> int:
    """The syslog priority for a logging level (levels between two map to the more severe)."""
    for level in sorted(_PRIORITY, reverse=True):
        if levelno >= level:
            return _PRIORITY[level]
    return 7


class JournalPrefixFormatter(logging.Formatter):
    """Prefixes each line with its syslog priority; journald adds the time itself."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prio = syslog_priority(record.levelno)
        return "\n".join(f"<{prio}>{line}" for line in text.splitlines() or [""])


def stream_goes_to_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when `stream` is the very journald stream systemd set up for this service.

    Comparing device and inode (systemd.exec(5), $JOURNAL_STREAM) keeps a child process whose
    stderr was redirected, or a shell started from a service, from printing `<N>` prefixes.
    """
    env = os.environ if environ is None else environ
    raw = env.get("JOURNAL_STREAM", "")
    dev, sep, ino = raw.partition(":")
    if not sep:
        return False
    try:
        st = os.fstat(stream.fileno())
        return (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (OSError, ValueError, AttributeError):
        return False


def _journal_handler(fields: Mapping[str, str]) -> logging.Handler | None:
    """journald's native handler from the optional binding, or None when it is not installed."""
    try:
        journal: Any = importlib.import_module("systemd.journal")
    except ImportError:
        return None
    handler: logging.Handler = journal.JournalHandler(
        SYSLOG_IDENTIFIER="fiscal-gateway", **{k.upper(): v for k, v in fields.items()}
    )
    return handler


class _ExtraFields(logging.Filter):
    """Copies `extra={"job_uuid": ...}` style attributes into journald field names."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.LOGGER = record.name
        job = getattr(record, "job_uuid", None)
        if job is not None:
            record.JOB_UUID = str(job)
        return True


def setup_logging(
    level: str = "info",
    *,
    stream: TextIO | None = None,
    fields: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Configure the root logger once for the process; returns the mode chosen.

    Modes: "terminal" (timestamps), "journal-stream" (`<N>` prefixes on stderr), "journald"
    (the optional binding, with `fields` such as {"box_id": ...} on every record).
    """
    out = stream or sys.stderr
    handler: logging.Handler | None = None
    mode = "terminal"
    if stream_goes_to_journal(out, environ):
        handler = _journal_handler(fields or {})
        if handler is not None:
            handler.addFilter(_ExtraFields())
            mode = "journald"
        else:
            handler = logging.StreamHandler(out)
            handler.setFormatter(JournalPrefixFormatter("%(name)s: %(message)s"))
            mode = "journal-stream"
    if handler is None:
        handler = logging.StreamHandler(out)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    return mode
