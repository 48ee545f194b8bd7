"""The only module that imports pyserial-asyncio: opens a register's port.

`port` is a device path (/dev/ttyACM0, /dev/serial/by-id/…, a pty) or `tcp://host:port`
(a register on the network, or the emulator's TCP mode).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar
from urllib.parse import urlsplit

import serial
import serial_asyncio

from gateway.domain.errors import NotConnected

_LOGGER = logging.getLogger(__name__)

P = TypeVar("P", bound=asyncio.Protocol)


@dataclass(frozen=True, slots=True)
class PortSpec:
    """Where a register is."""

    kind: Literal["serial", "tcp"]
    path: str = ""
    host: str = ""
    port: int = 0


def parse_port(port: str) -> PortSpec:
    """A device path or tcp://host:port; ValueError when it is neither."""
    if not port:
        raise ValueError("no register port given; expected a device path or tcp://host:port")
    if port.startswith("tcp://"):
        url = urlsplit(port)
        if not url.hostname or not url.port:
            raise ValueError(f"bad register address {port!r}; expected tcp://host:port")
        return PortSpec("tcp", host=url.hostname, port=url.port)
    return PortSpec("serial", path=port)


def _explain(path: str, err: BaseException) -> str:
    """A message a technician can act on for a port that would not open."""
    code = getattr(err, "errno", None)
    if code == errno.EACCES:
        return f"cannot open {path}: permission denied — is the service user in the dialout group?"
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or not os.path.exists(path):
        return f"cannot open {path}: no such device — is the register plugged in and switched on?"
    if code == errno.EBUSY or "busy" in str(err).lower() or "lock" in str(err).lower():
        return f"cannot open {path}: the port is in use by another program (ModemManager?)"
    if code == errno.ENOTTY or "configure port" in str(err):
        return f"cannot open {path}: it is not a serial port — check register.port"
    return f"cannot open {path}: {err}"


async def open_connection(
    port: str, *, baudrate: int, protocol_factory: Callable[[], P], timeout_s: float = 5.0
) -> tuple[asyncio.Transport, P]:
    """Open the port with 8N1, no flow control; returns (transport, protocol)."""
    spec = parse_port(port)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            if spec.kind == "tcp":
                transport, protocol = await loop.create_connection(
                    protocol_factory, spec.host, spec.port
                )
            else:
                # RTS/DTR are left alone: on a pty (the emulator) those ioctls fail with
                # ENOTTY, and pyserial already ignores that when it applies its defaults.
                transport, protocol = await serial_asyncio.create_serial_connection(
                    loop,
                    protocol_factory,
                    spec.path,
                    baudrate=baudrate,
                    bytesize=serial.EIGHTBITS,
                    parity=serial.PARITY_NONE,
                    stopbits=serial.STOPBITS_ONE,
                    xonxoff=False,
                    rtscts=False,
                    dsrdtr=False,
                    exclusive=True,
                )
    except TimeoutError as err:
        raise NotConnected(f"opening {port} timed out") from err
    except serial.SerialException as err:
        raise NotConnected(_explain(spec.path, err)) from err
    except OSError as err:
        where = spec.path if spec.kind == "serial" else f"{spec.host}:{spec.port}"
        raise NotConnected(
            _explain(where, err)
            if spec.kind == "serial"
            else f"cannot connect to {where}: {err} — is the register on the network?"
        ) from err
    # pyserial-asyncio schedules connection_made with call_soon: let it run before use.
    await asyncio.sleep(0)
    _LOGGER.debug("Opened %s (%s, %d baud)", port, spec.kind, baudrate)
    return transport, protocol
