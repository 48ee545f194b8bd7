"""Command line: `fiscal-gateway run | emulator | check-config | send | watch | provision |
selftest`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import __version__
from gateway.domain.errors import ConfigError, GatewayError


def _build_parser() -> argparse.ArgumentParser:
    from gateway.registers.emulator import cli as emulator_cli

    parser = argparse.ArgumentParser(prog="fiscal-gateway", description="Fiscal register gateway")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the gateway (embedded defaults without --config)")
    run.add_argument("--config", type=Path, help="YAML config file")

    emu = sub.add_parser("emulator", help="run the Shtrih-M register emulator")
    emulator_cli.add_arguments(emu)

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("file", type=Path)

    from gateway.office import cli as office_cli

    office_cli.add_send_arguments(
        sub.add_parser("send", help="office: send a command to a box over MQTT, show its result")
    )
    office_cli.add_watch_arguments(
        sub.add_parser("watch", help="office: a live table of the fleet's status and telemetry")
    )

    from gateway.updates import cli as update_cli

    update_cli.add_arguments(
        sub.add_parser("update", help="releases: apply, revert-unconfirmed, confirm, status, sign")
    )
    _add_provision_arguments(
        sub.add_parser("provision", help="boot step: import settings left on the SD card")
    )
    from gateway.app import selftest_cli

    selftest_cli.add_arguments(
        sub.add_parser(
            "selftest",
            help="commissioning: sell and return 1.00 per payment type on the running box, "
            "check the register's counters",
        )
    )
    return parser


def _add_provision_arguments(parser: argparse.ArgumentParser) -> None:
    from gateway.updates.provision import DEFAULT_SOURCE, DEFAULT_TARGET

    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=DEFAULT_SOURCE,
        help=f"folder on the boot partition (default {DEFAULT_SOURCE})",
    )
    parser.add_argument(
        "--to",
        dest="target",
        type=Path,
        default=DEFAULT_TARGET,
        help=f"settings folder (default {DEFAULT_TARGET})",
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from gateway.app import gateway as app
    from gateway.config import default_config, load_config
    from gateway.runtime.log import setup_logging

    try:
        cfg = load_config(args.config) if args.config else default_config()
    except ConfigError as err:
        for issue in err.issues:
            print(f"{args.config}: {issue}", file=sys.stderr)
        return 2
    setup_logging(cfg.log_level)
    return asyncio.run(app.run(cfg))


def _cmd_check_config(args: argparse.Namespace) -> int:
    from gateway.config import check_config

    issues = check_config(args.file)
    for issue in issues:
        print(f"{args.file}: {issue}")
    if not issues:
        print(f"{args.file}: OK")
    return 2 if issues else 0


def _cmd_emulator(args: argparse.Namespace) -> int:
    from gateway.registers.emulator import cli as emulator_cli
    from gateway.runtime.log import setup_logging

    setup_logging("info")
    return asyncio.run(emulator_cli.run(args))


def _cmd_office(args: argparse.Namespace) -> int:
    from gateway.office import cli as office_cli

    try:
        return office_cli.send(args) if args.command == "send" else office_cli.watch(args)
    except GatewayError as err:
        print(f"fiscal-gateway {args.command}: {err}", file=sys.stderr)
        return 2 if err.code == "usage" else 1
    except KeyboardInterrupt:
        return 130


def _cmd_update(args: argparse.Namespace) -> int:
    from gateway.runtime.log import setup_logging
    from gateway.updates import cli as update_cli

    setup_logging("info")
    return update_cli.run(args)


def _cmd_provision(args: argparse.Namespace) -> int:
    from gateway.runtime.log import setup_logging
    from gateway.updates.provision import provision

    setup_logging("info")
    try:
        return provision(args.source, args.target).exit_code
    except OSError as err:  # e.g. the card's folder cannot be listed; nothing was installed
        print(f"fiscal-gateway provision: {err}", file=sys.stderr)
        return 2


def _cmd_selftest(args: argparse.Namespace) -> int:
    from gateway.app import selftest_cli

    return selftest_cli.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the sub-command; returns the exit code."""
    args = _build_parser().parse_args(argv)
    handlers = {
        "run": _cmd_run,
        "check-config": _cmd_check_config,
        "emulator": _cmd_emulator,
        "send": _cmd_office,
        "watch": _cmd_office,
        "update": _cmd_update,
        "provision": _cmd_provision,
        "selftest": _cmd_selftest,
    }
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
