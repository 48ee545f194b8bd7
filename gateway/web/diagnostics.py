"""The diagnostics bundle: config with secrets masked, recent logs, status, journal check.

`RecentLogs` is a logging handler the app attaches to the root logger; it keeps the last
lines in memory so the page can show recent events and the bundle can carry the log without
reading journald.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime as dt
import enum
import io
import json
import logging
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Final

MASK: Final = "***"
LOG_LINES_KEPT: Final = 2000
# Field names whose text values are masked even when they are not a Secret (belt and braces).
_SECRET_WORDS: Final = ("password", "token", "secret", "license_key", "private")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One kept log record."""

    at: dt.datetime
    level: str
    levelno: int
    logger: str
    message: str


class RecentLogs(logging.Handler):
    """Keeps the last LOG_LINES_KEPT records in memory."""

    def __init__(self, *, capacity: int = LOG_LINES_KEPT, level: int = logging.INFO) -> None:
        super().__init__(level=level)
        self._lines: collections.deque[LogLine] = collections.deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record (formatted once, here)."""
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            self._lines.append(
                LogLine(
                    dt.datetime.fromtimestamp(record.created, dt.UTC),
                    record.levelname,
                    record.levelno,
                    record.name,
                    message,
                )
            )
        except Exception:
            self.handleError(record)

    def lines(self, *, min_level: int = logging.NOTSET, limit: int | None = None) -> list[LogLine]:
        """Kept lines at or above `min_level`, oldest first; the last `limit` of them."""
        out = [line for line in list(self._lines) if line.levelno >= min_level]
        return out[-limit:] if limit else out

    def text(self) -> str:
        """Every kept line as a log file."""
        return "".join(
            f"{ln.at.isoformat(timespec='milliseconds')} {ln.level:<8} {ln.logger}: {ln.message}\n"
            for ln in self.lines()
        )


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS) and not lowered.endswith("_file")


def masked(value: object, name: str = "") -> Any:
    """A JSON-ready copy of a config value with every secret replaced by MASK.

    Anything with a `reveal()` method (the config's Secret) is masked; so are text values
    under a secret-sounding key. Paths, enums and public keys are kept: they are not secret.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if hasattr(value, "reveal"):
        return MASK
    if isinstance(value, str):
        return MASK if name and _is_secret_name(name) else value
    if isinstance(value, enum.Enum):
        return masked(value.value, name)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        if type(value).__name__ == "Listen":
            return str(value)
        return {f.name: masked(getattr(value, f.name), f.name) for f in fields}
    if isinstance(value, Mapping):
        return {str(k): masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [masked(v, name) for v in value]
    return str(value)


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2, default=str)


def bundle(
    *,
    config: Mapping[str, Any],
    status: Mapping[str, Any],
    logs: str,
    integrity: str,
    jobs: list[dict[str, Any]],
    now: dt.datetime,
) -> bytes:
    """A zip with config.json, status.json, log.txt, journal-integrity.txt and jobs.json."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        stamp = now.timetuple()[:6]
        for name, body in (
            ("config.json", _dumps(config)),
            ("status.json", _dumps(status)),
            ("log.txt", logs or "(no log lines kept)\n"),
            ("journal-integrity.txt", integrity + "\n"),
            ("jobs.json", _dumps(jobs)),
            ("created.txt", now.isoformat() + "\n"),
        ):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, body.encode("utf-8"))
    return buf.getvalue()
