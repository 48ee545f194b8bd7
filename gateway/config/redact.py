"""Pure: a config as plain data with every secret shown as '***' (diagnostics and logs)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from pathlib import Path

from gateway.config.schema import Config
from gateway.config.values import Listen, Secret


def redacted(cfg: Config) -> dict[str, object]:
    """The config as plain data (for diagnostics and logs) with every secret shown as '***'."""
    plain = _plain(cfg)
    assert isinstance(plain, dict)
    return plain


def _plain(value: object) -> object:
    """One value as JSON-like data."""
    if isinstance(value, Secret):
        return "***"
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Listen):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
