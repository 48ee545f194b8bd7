"""The register the config names, and only its code: each driver is imported when chosen.

A cloud РРО (Checkbox, Вчасно.Каса) brings the aiohttp client; a Shtrih register the serial
stack; `register.port: emulator` starts the built-in emulator first, by default in a child
process (`EmulatorProcess`), or in this process when a caller wants to reach into it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import zoneinfo
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.config import Config
from gateway.domain import fiscal
from gateway.domain.errors import GatewayError

if TYPE_CHECKING:
    from gateway.app.emulator_child import EmulatorProcess
    from gateway.registers.emulator.server import EmulatorServer

_LOGGER = logging.getLogger(__name__)

EMULATOR_STATE = "emulator.state"
EMULATOR_LINK = "emulator.tty"

OnEvent = Callable[[str, dict[str, object]], None]


def timezone(name: str) -> dt.tzinfo | None:
    """The register's wall-clock zone: an IANA name, or the box's local zone."""
    if name == "local":
        return dt.datetime.now().astimezone().tzinfo
    return zoneinfo.ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class OpenRegister:
    """The register, and the built-in emulator behind it when there is one."""

    register: fiscal.Register
    emulator_process: EmulatorProcess | None = None
    emulator_inline: EmulatorServer | None = None


def _missing(driver: str, *keys: str) -> GatewayError:
    return GatewayError(
        f"register.driver {driver} needs {' and '.join(f'register.{k}' for k in keys)}",
        code="config_invalid",
        hint="add the missing keys to the config file",
    )


def _cloud(cfg: Config, on_event: OnEvent) -> fiscal.Register:
    reg = cfg.register
    tz = timezone(cfg.timezone)
    if reg.driver == "checkbox":
        if reg.url is None or reg.license_key is None:
            raise _missing("checkbox", "url", "license_key")
        from gateway.registers.checkbox.driver import CheckboxRegister

        return CheckboxRegister(
            reg.url,
            license_key=reg.license_key.reveal(),
            login=reg.login.reveal() if reg.login else None,
            password=reg.password.reveal() if reg.password else None,
            pin_code=reg.pin_code.reveal() if reg.pin_code else None,
            client_name=reg.client_name,
            tz=tz,
            on_event=on_event,
        )
    if reg.url is None or reg.token is None:
        raise _missing("vchasno", "url", "token")
    from gateway.registers.vchasno.driver import VchasnoRegister

    return VchasnoRegister(
        reg.url,
        token=reg.token.reveal(),
        tax_groups=reg.tax_groups.table() if reg.tax_groups else None,
        tz=tz,
        on_event=on_event,
    )


def _shtrih(cfg: Config, port: str) -> fiscal.Register:
    from gateway.registers.shtrih.driver import ShtrihRegister

    reg = cfg.register
    return ShtrihRegister(
        port,
        baudrate=reg.baudrate,
        password=reg.device_password,
        answer_timeout_s=reg.answer_timeout_s,
        print_timeout_s=reg.print_timeout_s,
        report_timeout_s=reg.report_timeout_s,
        marking_order=reg.marking_order,
    )


@contextlib.asynccontextmanager
async def open_register(
    cfg: Config, *, on_event: OnEvent, emulator_in_process: bool = False
) -> AsyncIterator[OpenRegister]:
    """The configured register (not yet connected); the emulator stops on the way out."""
    reg = cfg.register
    if reg.driver in ("checkbox", "vchasno"):
        yield OpenRegister(_cloud(cfg, on_event))
        return
    if reg.port != "emulator":
        yield OpenRegister(_shtrih(cfg, reg.port))
        return
    state_dir = cfg.state_dir
    state, link = state_dir / EMULATOR_STATE, state_dir / EMULATOR_LINK
    if emulator_in_process:
        from gateway.registers.emulator.server import EmulatorServer

        server = EmulatorServer(
            state,
            clock_offset_s=reg.emulator.clock_offset_s,
            ofd_interval_s=reg.emulator.ofd_interval_s,
        )
        try:
            port = await server.start_pty(link=link)
            _LOGGER.info(
                "Built-in register emulator on %s (paper tape %s.journal.jsonl)", port, state
            )
            yield OpenRegister(_shtrih(cfg, port), emulator_inline=server)
        finally:
            await server.close()
        return
    from gateway.app.emulator_child import EmulatorProcess

    child = EmulatorProcess(
        state,
        link,
        clock_offset_s=reg.emulator.clock_offset_s,
        ofd_interval_s=reg.emulator.ofd_interval_s,
    )
    try:
        port = await child.start()
        _LOGGER.info(
            "Built-in register emulator process on %s (paper tape %s.journal.jsonl)", port, state
        )
        yield OpenRegister(_shtrih(cfg, port), emulator_process=child)
    finally:
        await child.close()
