"""The files a config names: secrets and keys read from `<key>_file`, and checks that a named
file is there to read. Every problem is a ValueError whose text is the issue shown."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

CREDENTIAL_PREFIX: Final = "credential:"


def secret_file(raw: str, resolve: Callable[[str], Path], credentials_dir: Path | None) -> Path:
    """A `<key>_file` value: a path (`resolve` makes a relative one absolute), or
    credential:NAME in `credentials_dir` (default $CREDENTIALS_DIRECTORY, systemd's)."""
    if not raw.startswith(CREDENTIAL_PREFIX):
        return resolve(raw)
    name = raw[len(CREDENTIAL_PREFIX) :]
    folder = credentials_dir or os.environ.get("CREDENTIALS_DIRECTORY")
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"bad credential name {name!r}")
    if not folder:
        raise ValueError("credential:NAME needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)")
    return Path(folder) / name


def read_small_file(file: Path, max_bytes: int) -> str:
    """The UTF-8 text of a regular file of at most `max_bytes`."""
    problem = file_problem(file, max_bytes=max_bytes)
    if problem is not None:
        raise ValueError(problem)
    try:
        return file.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"cannot read {file}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{file} is not UTF-8 text") from None


def file_problem(file: Path, *, max_bytes: int | None = None) -> str | None:
    """Why `file` is not a readable regular file (of at most `max_bytes`), or None."""
    try:
        st = file.stat()
    except FileNotFoundError:
        return f"file not found: {file}"
    except OSError as err:
        return f"cannot read {file}: {err.strerror or err}"
    if file.is_dir():
        return f"{file} is a folder, not a file"
    if not os.access(file, os.R_OK):
        return f"cannot read {file}: permission denied"
    if max_bytes is not None and st.st_size > max_bytes:
        return f"{file} is larger than {max_bytes} bytes; is it the right file?"
    return None
