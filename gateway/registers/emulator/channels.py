"""Byte channels the emulator serves on: a pty it owns, or a TCP connection."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
import termios
import tty
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

READ_CHUNK_BYTES = 4096
CLOSE_TIMEOUT_S = 5.0
DRAIN_POLL_S = 0.005

# Baud constants termios knows; the slave side advertises the emulated line speed.
_BAUD = {
    2400: termios.B2400,
    4800: termios.B4800,
    9600: termios.B9600,
    19200: termios.B19200,
    38400: termios.B38400,
    57600: termios.B57600,
    115200: termios.B115200,
}


def _unread(fd: int) -> int:
    """Bytes waiting in a tty's input queue."""
    try:
        raw = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", raw)[0])


class Pty:
    """A pseudo-terminal: the register holds the master; hosts open `device`.

    The emulator keeps its own descriptor on the slave so the master never sees a hang-up
    while no host has the port open; bytes written meanwhile are discarded by the host's open
    (pyserial flushes the input on open).
    """

    def __init__(self, baudrate: int) -> None:
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        speed = _BAUD.get(baudrate, termios.B115200)
        attrs = termios.tcgetattr(slave)
        attrs[4] = attrs[5] = speed  # ispeed, ospeed
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        self.master = master
        self._slave = slave
        self.device = os.ttyname(slave)
        self._closed = False

    def __repr__(self) -> str:
        return f"Pty(device={self.device!r}, closed={self._closed})"

    async def read(self) -> bytes:
        """Bytes the host wrote; b"" once closed."""
        while not self._closed:
            try:
                return os.read(self.master, READ_CHUNK_BYTES)
            except BlockingIOError:
                await self._wait(readable=True)
            except OSError as err:
                _LOGGER.debug("pty %s read failed: %s", self.device, err)
                return b""
        return b""

    async def write(self, data: bytes) -> None:
        """Write all of `data` to the host."""
        view = memoryview(data)
        while view and not self._closed:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:
                await self._wait(readable=False)

    async def _wait(self, *, readable: bool) -> None:
        """Wait until the master can be read (or written)."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            """Wake the waiter once."""
            if not ready.done():
                ready.set_result(None)

        if readable:
            loop.add_reader(self.master, wake)
        else:
            loop.add_writer(self.master, wake)
        try:
            await ready
        finally:
            if readable:
                loop.remove_reader(self.master)
            else:
                loop.remove_writer(self.master)

    async def drain(self, timeout_s: float) -> None:
        """Until the host has read what was written (bounded): closing the master discards
        bytes the slave has not read yet, while a real line has already delivered them."""
        # Bytes written to the master reach the slave's queue a moment later, so the queue
        # must be seen empty twice, a poll apart.
        empty = 0
        for _ in range(max(1, int(timeout_s / DRAIN_POLL_S))):
            await asyncio.sleep(DRAIN_POLL_S)
            empty = empty + 1 if self._closed or not _unread(self._slave) else 0
            if empty >= 2:
                return
        _LOGGER.debug("pty %s: the host left bytes unread", self.device)

    def close(self) -> None:
        """Pull the plug: the host's descriptor sees EOF / EIO from now on."""
        if self._closed:
            return
        self._closed = True
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError as err:
                _LOGGER.debug("closing pty fd %d: %s", fd, err)


class TcpChannel:
    """One TCP client of the register."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    def __repr__(self) -> str:
        return f"TcpChannel(peer={self._writer.get_extra_info('peername')!r})"

    async def read(self) -> bytes:
        """Bytes from the client; b"" at EOF."""
        try:
            return await self._reader.read(READ_CHUNK_BYTES)
        except ConnectionError:
            return b""

    async def write(self, data: bytes) -> None:
        """Send bytes to the client."""
        self._writer.write(data)
        await self._writer.drain()

    async def close(self) -> None:
        """Close the connection."""
        self._writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._writer.wait_closed()


def point_link(link: Path, device: str) -> None:
    """Atomically make `link` a symlink to `device`."""
    tmp = link.with_name(link.name + ".tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(device, tmp)
    os.replace(tmp, link)


def remove_link(link: Path) -> None:
    """Remove `link` if it is a symlink (a device unplugged disappears from /dev)."""
    if link.is_symlink():
        link.unlink()
