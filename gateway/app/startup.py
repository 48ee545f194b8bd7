"""Start-up checks and the one paragraph a person reads when the daemon cannot run.

A failure before READY (state folder not writable, journal damaged, a port taken) ends the
process with a message saying what is wrong and what to do, and a non-zero exit code; the
traceback of such a failure helps nobody at a shop.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from gateway.domain.errors import GatewayError

EXIT_FAILED = 1  # systemd restarts the service (Restart=on-failure)
PROBE_NAME = ".write-probe"


def check_state_dir(path: Path) -> None:
    """Create the state folder if needed and prove a file can be written and synced there."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / PROBE_NAME
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as err:
        raise GatewayError(
            f"state_dir {path} is not a writable folder ({err.strerror or err})",
            code="state_dir_unwritable",
            hint=f"create {path} and give the service user write access to it, "
            "or set state_dir in the config to a folder that is writable",
        ) from err


def _leaves(err: BaseException) -> list[BaseException]:
    if isinstance(err, BaseExceptionGroup):
        return [leaf for sub in err.exceptions for leaf in _leaves(sub)]
    return [err]


def explain(err: BaseException) -> str | None:
    """One paragraph for a failure a person can fix; None for anything else (a bug)."""
    for leaf in _leaves(err):
        if isinstance(leaf, GatewayError):
            text = f"fiscal-gateway cannot run: {leaf.message.rstrip('.')}."
            if leaf.hint:  # else the message itself says what to do
                text += f" What to do: {leaf.hint.rstrip('.')}."
            text += f" (error {leaf.code})"
        elif isinstance(leaf, OSError):
            where = f" ({leaf.filename})" if leaf.filename else ""
            text = (
                f"fiscal-gateway cannot run: {leaf.strerror or str(leaf) or type(leaf).__name__}"
                f"{where}. What to do: check "
                "that the file or folder exists and that the service user may use it. "
                f"(error os_{leaf.errno or type(leaf).__name__})"
            )
        else:
            continue
        return textwrap.fill(text, width=100)
    return None
