"""Command line: `fiscal-gateway run | emulator | check-config | send | watch | provision |
selftest`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway import __version__
from gateway.domain.errors import ConfigError, GatewayError


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML config file")


def _add_emulator_arguments(parser: argparse.ArgumentParser) -> None:
    from gateway.registers.emulator import cli as emulator_cli

    emulator_cli.add_arguments(parser)


def _add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path)


def _add_send_arguments(parser: argparse.ArgumentParser) -> None:
    from gateway.office import cli as office_cli

    office_cli.add_send_arguments(parser)


def _add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    from gateway.office import cli as office_cli

    office_cli.add_watch_arguments(parser)


def _add_update_arguments(parser: argparse.ArgumentParser) -> None:
    from gateway.updates import cli as update_cli

    update_cli.add_arguments(parser)


def _add_selftest_arguments(parser: argparse.ArgumentParser) -> None:
    from gateway.app import selftest_cli

    selftest_cli.add_arguments(parser)


def _add_hub_arguments(parser: argparse.ArgumentParser) -> None:
    from gateway.hub import cli as hub_cli  # the `hub` extra: loaded only for this command

    hub_cli.add_arguments(parser)


def _cmd_hub(args: argparse.Namespace) -> int:
    from gateway.hub import cli as hub_cli

    return hub_cli.run(args)


def _commands() -> dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]]:
    """Each sub-command: its help line and what adds its options."""
    return {
        "run": ("run the gateway (embedded defaults without --config)", _add_run_arguments),
        "emulator": ("run the Shtrih-M register emulator", _add_emulator_arguments),
        "check-config": ("validate a config file", _add_check_arguments),
        "send": (
            "office: send a command to a box over MQTT, show its result",
            _add_send_arguments,
        ),
        "watch": ("office: a live table of the fleet's status and telemetry", _add_watch_arguments),
        "update": (
            "releases: apply, revert-unconfirmed, confirm, status, sign",
            _add_update_arguments,
        ),
        "provision": ("boot step: import settings left on the SD card", _add_provision_arguments),
        "selftest": (
            "commissioning: sell and return 1.00 per payment type on the running box, "
            "check the register's counters",
            _add_selftest_arguments,
        ),
        "hub": ("the office hub: run, check-config, route", _add_hub_arguments),
    }


def parser_for(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser for these arguments: it knows the options of their sub-command only."""
    return _build_parser(next((a for a in argv if not a.startswith("-")), None))


def _build_parser(command: str | None) -> argparse.ArgumentParser:
    """The parser; only `command`'s options are added, so `run` loads no other command's code."""
    parser = argparse.ArgumentParser(prog="fiscal-gateway", description="Fiscal register gateway")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add) in _commands().items():
        child = sub.add_parser(name, help=help_text)
        if name == command:
            add(child)
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
    # Only the wiring: the parts the config turns on are imported as they are built.
    from gateway.app import gateway as app
    from gateway.app.startup import EXIT_FAILED, explain
    from gateway.config import load_config
    from gateway.config.reader import default_config
    from gateway.runtime.log import setup_logging

    try:
        cfg = load_config(args.config) if args.config else default_config()
    except ConfigError as err:
        for issue in err.issues:
            print(f"{args.config}: {issue}", file=sys.stderr)
        return 2
    setup_logging(cfg.log_level)
    try:
        return asyncio.run(app.run(cfg))
    except KeyboardInterrupt:  # before the signal handlers are in place
        return 130
    except Exception as err:
        problem = explain(err)
        if problem is None:
            raise
        print(f"\n{problem}", file=sys.stderr)  # a paragraph of its own after the log
        return EXIT_FAILED


def _cmd_check_config(args: argparse.Namespace) -> int:
    from gateway.config.reader import check_config

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
    given = list(sys.argv[1:] if argv is None else argv)
    args = parser_for(given).parse_args(given)
    handlers = {
        "run": _cmd_run,
        "check-config": _cmd_check_config,
        "emulator": _cmd_emulator,
        "send": _cmd_office,
        "watch": _cmd_office,
        "update": _cmd_update,
        "provision": _cmd_provision,
        "selftest": _cmd_selftest,
        "hub": _cmd_hub,
    }
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
