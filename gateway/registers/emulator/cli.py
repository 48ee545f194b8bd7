"""Command line of the emulator: `fiscal-gateway emulator ...` or `python -m gateway.registers.emulator`.

    (--pty [--link PATH] | --tcp HOST:PORT) [--state FILE] [--clock-offset S] [--baudrate N]
    [--pace] [--ofd-interval S] [--tax-systems osn,usnIncome,...]
    [--firmware classic|core] [--marking | --no-marking]
    [--ism-answer ANSWER] [--ism-code CODE=ANSWER ...] [--ism-timeout S] [--no-ism-uploads]
    [--control PATH | --no-control] [fault flags]

Prints `READY <device-path-or-address>` as the first line on stdout (the link path when
`--link` is given, else the pty slave; `tcp://HOST:PORT` for TCP), then serves until SIGTERM
or SIGINT and exits 0. If an injected power cut fires, it exits 3 with the receipt left open
in the state file. `--pace` makes writes take as long as they would at `--baudrate`
(10 bits per byte); it is off by default so tests run at pty speed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from gateway.registers.emulator.faults import FaultName
from gateway.registers.emulator.marking import Firmware, IsmAnswer, parse_code
from gateway.registers.emulator.server import DEFAULT_BAUDRATE, EmulatorServer
from gateway.registers.emulator.state import TAX_SYSTEM_NAMES, parse_tax_systems

_LOGGER = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_POWER_CUT = 3
DEFAULT_STATE = Path("emulator.state")

# Fault flags: (flag, fault, argparse options).
_FAULT_FLAGS: tuple[tuple[str, FaultName, dict[str, object]], ...] = (
    ("--paper-out", FaultName.PAPER_OUT, {"action": "store_true", "help": "start without paper"}),
    (
        "--cover-open",
        FaultName.COVER_OPEN,
        {"action": "store_true", "help": "start with the cover open"},
    ),
    (
        "--paper-ends",
        FaultName.PAPER_ENDS,
        {"action": "store_true", "help": "the roll runs out while the next fiscal document prints"},
    ),
    (
        "--power-cut-after-lines",
        FaultName.POWER_CUT_MID_RECEIPT,
        {"type": int, "metavar": "K", "help": "lose power after the next K receipt lines (exit 3)"},
    ),
    (
        "--answer-lost",
        FaultName.ANSWER_LOST,
        {
            "type": int,
            "metavar": "N",
            "help": "lose the next N document-closing answers (ENQ gets them)",
        },
    ),
    (
        "--answer-dropped",
        FaultName.ANSWER_DROPPED,
        {
            "type": int,
            "metavar": "N",
            "help": "drop the next N document-closing answers (ENQ gets NAK)",
        },
    ),
    (
        "--garbled",
        FaultName.GARBLED,
        {"type": int, "metavar": "N", "help": "corrupt one byte of the next N answers"},
    ),
    (
        "--slow-bytes",
        FaultName.SLOW_BYTES,
        {"type": float, "metavar": "SECONDS", "help": "delay before each byte sent"},
    ),
    (
        "--drift-ppm",
        FaultName.DRIFT,
        {"type": float, "metavar": "PPM", "help": "the RTC drifts by PPM millionths"},
    ),
    ("--fn-expiry", FaultName.FN_EXPIRY, {"metavar": "YYYY-MM-DD", "help": "ФН validity end"}),
    (
        "--fn-warnings",
        FaultName.FN_WARNINGS,
        {"type": int, "metavar": "BITS", "help": "FF01h warning bits"},
    ),
    (
        "--no-ofd-drain",
        FaultName.OFD_DRAIN,
        {"action": "store_false", "default": None, "help": "the OFD never answers"},
    ),
    (
        "--ofd-backlog",
        FaultName.OFD_BACKLOG,
        {"type": int, "metavar": "N", "help": "the last N documents wait for the OFD"},
    ),
    (
        "--ism-answer",
        FaultName.ISM_ANSWER,
        {
            "choices": [a.value for a in IsmAnswer],
            "help": "the fake ОИСМ's answer to every code check (default positive)",
        },
    ),
    (
        "--ism-timeout",
        FaultName.ISM_TIMEOUT,
        {
            "type": float,
            "metavar": "SECONDS",
            "help": "how long a code check waits for a silent ОИСМ (default 0.05)",
        },
    ),
    (
        "--no-ism-uploads",
        FaultName.ISM_UPLOADS,
        {
            "action": "store_false",
            "default": None,
            "help": "the ОИСМ acknowledges no uploaded notification (FF73h)",
        },
    ),
    (
        "--ism-bind-recheck",
        FaultName.ISM_BIND_RECHECK,
        {
            "choices": [a.value for a in IsmAnswer],
            "help": "FF67h checks each code again and the fake ОИСМ gives this answer",
        },
    ),
    (
        "--marking-clear-refused",
        FaultName.MARKING_CLEAR_REFUSED,
        {
            "action": "store_true",
            "default": None,
            "help": "FF69h(2) is refused with ФН A1h, as Штрих-Нано-Ф does",
        },
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to `parser`."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal")
    where.add_argument(
        "--tcp", metavar="HOST:PORT", help="serve on a TCP port (port 0: any free one)"
    )
    parser.add_argument(
        "--link", type=Path, help="with --pty: keep this symlink pointing at the current pty"
    )
    parser.add_argument(
        "--state", type=Path, default=DEFAULT_STATE, help="state file (default ./emulator.state)"
    )
    parser.add_argument(
        "--clock-offset",
        type=float,
        metavar="SECONDS",
        help="RTC starts this far from the host clock",
    )
    parser.add_argument(
        "--baudrate", type=int, default=DEFAULT_BAUDRATE, help="emulated line speed"
    )
    parser.add_argument(
        "--pace",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="send no faster than --baudrate allows",
    )
    parser.add_argument(
        "--ofd-interval", type=float, metavar="SECONDS", help="RTC seconds per OFD acknowledgement"
    )
    parser.add_argument(
        "--tax-systems",
        type=_tax_systems,
        metavar="LIST",
        help="tax systems the register is registered with, comma-separated: "
        f"{', '.join(TAX_SYSTEM_NAMES)} (default: all; FF45h refuses others)",
    )
    parser.add_argument(
        "--firmware",
        choices=[f.value for f in Firmware],
        help="firmware family: classic (FF46h, FF4Dh, FF67h) or core, «кассовое ядро» "
        "(8Dh, FF4Dh, FF67h, FF46h; model 45); default classic, an existing register keeps its own",
    )
    parser.add_argument(
        "--marking",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the ФН-М is registered for marked goods (default yes; --no-marking: FF61h gets "
        "A0h, FF68h 32h)",
    )
    parser.add_argument(
        "--ism-code",
        action="append",
        type=_ism_code,
        default=[],
        metavar="CODE=ANSWER",
        help="the fake ОИСМ answers this code ANSWER (repeatable); <GS> between AIs, or hex:BYTES",
    )
    control = parser.add_mutually_exclusive_group()
    control.add_argument(
        "--control", type=Path, metavar="PATH", help="control socket (default <state>.control)"
    )
    control.add_argument("--no-control", action="store_true", help="no control socket")
    faults = parser.add_argument_group("faults")
    for flag, _fault, options in _FAULT_FLAGS:
        faults.add_argument(flag, **options)  # type: ignore[arg-type]


def _tax_systems(value: str) -> int:
    """The bitmask of --tax-systems."""
    try:
        return parse_tax_systems(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _ism_code(value: str) -> dict[str, str]:
    """CODE=ANSWER of --ism-code, as the `ism_code_answer` fault takes it."""
    code, sep, answer = value.rpartition("=")
    known = [a.value for a in IsmAnswer]
    if not sep or answer not in known:
        raise argparse.ArgumentTypeError(f"expected CODE=ANSWER with ANSWER one of {known}")
    try:
        parse_code(code)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return {"code": code, "answer": answer}


def _parse_tcp(value: str) -> tuple[str, int]:
    """HOST:PORT from --tcp."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"--tcp expects HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


async def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT (exit 0) or an injected power cut (exit 3)."""
    server = EmulatorServer(
        args.state,
        clock_offset_s=args.clock_offset,
        ofd_interval_s=args.ofd_interval,
        baudrate=args.baudrate,
        pace=args.pace,
        tax_systems=getattr(args, "tax_systems", None),
        firmware=getattr(args, "firmware", None),
        marking_enabled=getattr(args, "marking", None),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if args.tcp:
            host, port = await server.start_tcp(*_parse_tcp(args.tcp))
            where = f"tcp://{host}:{port}"
        else:
            device = await server.start_pty(link=args.link)
            where = str(args.link) if args.link else device
        for flag, fault, _options in _FAULT_FLAGS:
            value = getattr(args, flag.lstrip("-").replace("-", "_"))
            if value is not None and value is not False:
                await server.apply_fault(fault, value)
        for override in getattr(args, "ism_code", []):
            await server.apply_fault(FaultName.ISM_CODE_ANSWER, override)
        if not args.no_control:
            try:
                await server.start_control(args.control)
            except OSError as err:  # e.g. a socket path longer than AF_UNIX allows
                _LOGGER.error("No control socket: %s", err)
        sys.stdout.write(f"READY {where}\n")
        sys.stdout.flush()
        stop_wait = asyncio.create_task(stop.wait(), name="emulator-stop")
        power_wait = asyncio.create_task(server.power_lost.wait(), name="emulator-power-lost")
        try:
            await asyncio.wait({stop_wait, power_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
            power_wait.cancel()
        _LOGGER.info("Emulator stopping")
        return EXIT_POWER_CUT if server.power_lost.is_set() else EXIT_OK
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await server.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m gateway.registers.emulator`."""
    parser = argparse.ArgumentParser(
        prog="python -m gateway.registers.emulator", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    return asyncio.run(run(args))
