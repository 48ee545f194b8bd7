"""A small in-tree sd_notify: READY / STATUS / WATCHDOG / STOPPING. No-op outside systemd.

The notify protocol is stable and tiny (sd_notify(3)): datagrams of `KEY=VALUE` lines to the
AF_UNIX socket named by $NOTIFY_SOCKET ('@' prefix = abstract namespace).
"""

from __future__ import annotations

import logging
import os
import socket

_LOGGER = logging.getLogger(__name__)


class Notifier:
    """Sends notifications to systemd when started by it; otherwise does nothing."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address
        self._watchdog_usec = 0
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC") and (pid is None or pid == str(os.getpid())):
            self._watchdog_usec = int(env["WATCHDOG_USEC"])

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notify socket."""
        return bool(self._address)

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to ping: half the watchdog timeout, or None without a watchdog."""
        return self._watchdog_usec / 2_000_000 if self._watchdog_usec else None

    def notify(self, message: str) -> None:
        """Send one datagram; errors are logged, never raised (systemd may be restarting)."""
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall(message.encode())
        except OSError as err:
            _LOGGER.debug("sd_notify failed: %s", err)

    def ready(self, status: str = "") -> None:
        """READY=1, optionally with a STATUS line."""
        self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> None:
        """A STATUS= line a person reads in `systemctl status`."""
        self.notify(f"STATUS={text}")

    def watchdog(self) -> None:
        """WATCHDOG=1: the loop and the worker make progress."""
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        """STOPPING=1."""
        self.notify("STOPPING=1")
