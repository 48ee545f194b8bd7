"""The built-in register emulator (`register.port: emulator`) as a child process on a pty.

A process of its own keeps the emulator's code and state out of the daemon's memory, and
the daemon talks to it through the pty exactly as to the USB cable. The child dies with the
daemon (PR_SET_PDEATHSIG); if it exits by itself, `run` raises and is restarted like any
other task, on the same link path.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from gateway.domain.errors import GatewayError

_LOGGER = logging.getLogger(__name__)

READY_TIMEOUT_S = 30.0  # a Pi starting a second interpreter from an SD card
STOP_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1  # prctl(2)


# Looked up in the parent: between fork and exec the child must not load libraries.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the daemon goes, even on SIGKILL."""
    _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


class EmulatorProcess:
    """`fiscal-gateway emulator --pty` kept running for the daemon."""

    def __init__(
        self,
        state: Path,
        link: Path,
        *,
        clock_offset_s: float | None = None,
        ofd_interval_s: float | None = None,
    ) -> None:
        self.state = state
        self.link = link
        self._args = ["--pty", "--link", str(link), "--state", str(state), "--no-control"]
        if clock_offset_s is not None:
            self._args += ["--clock-offset", str(clock_offset_s)]
        if ofd_interval_s is not None:
            self._args += ["--ofd-interval", str(ofd_interval_s)]
        self._proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> str:
        """Start the child unless it runs; the link path once it answers READY."""
        if self._proc is not None and self._proc.returncode is None:
            return str(self.link)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",  # the command line sets up logging as the daemon's (journald-aware)
            "emulator",
            *self._args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # a Ctrl-C at the terminal is the daemon's to handle
        )
        self._proc = proc
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                line = (await proc.stdout.readline()).decode(errors="replace").strip()
        except TimeoutError:
            await self.close()
            raise GatewayError(
                f"the built-in register emulator did not start within {READY_TIMEOUT_S:.0f} s",
                code="emulator_failed",
            ) from None
        if not line.startswith("READY "):
            await self.close()
            raise GatewayError(
                f"the built-in register emulator did not start ({line or 'no output'}); "
                f"its messages are in the log above",
                code="emulator_failed",
                hint=f"check that {self.state.parent} is writable",
            )
        self.starts += 1
        return str(self.link)

    async def run(self, on_restarted: Callable[[], None] = lambda: None) -> None:
        """Watch the child; start it again (via the caller's restart) if it exits.

        `on_restarted` is called once a new child answers (the driver may reconnect now
        rather than after its backoff)."""
        starts = self.starts
        await self.start()
        if self.starts > starts:
            on_restarted()
        proc = self._proc
        assert proc is not None
        code = await proc.wait()
        raise GatewayError(f"the built-in register emulator exited with code {code}")

    async def close(self) -> None:
        """Stop the child: SIGTERM, then SIGKILL after STOP_TIMEOUT_S."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await proc.wait()
        except TimeoutError:
            _LOGGER.warning("The register emulator did not stop; killing it")
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await proc.wait()
