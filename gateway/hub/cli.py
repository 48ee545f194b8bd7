"""`fiscal-gateway hub run | check-config | route add|list|remove`."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import sys
from pathlib import Path

from gateway.hub.config import HubConfig, check_config, default_config, load_config
from gateway.hub.errors import HubConfigError, HubError
from gateway.hub.model import Route


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="hub_command", required=True)
    run = sub.add_parser("run", help="run one hub process (embedded defaults without --config)")
    run.add_argument("--config", type=Path, help="YAML config file")
    check = sub.add_parser("check-config", help="validate a hub config file")
    check.add_argument("file", type=Path)
    route = sub.add_parser("route", help="the route table: connector key -> box id")
    route.add_argument("--config", type=Path, help="YAML config file (for the database)")
    rsub = route.add_subparsers(dest="route_command", required=True)
    add = rsub.add_parser("add", help="route a connector key to a box (or re-point it)")
    add.add_argument("connector")
    add.add_argument("key")
    add.add_argument("box")
    listing = rsub.add_parser("list", help="every route")
    listing.add_argument("connector", nargs="?")
    remove = rsub.add_parser("remove", help="remove a route")
    remove.add_argument("connector")
    remove.add_argument("key")
    # Bitrix24 REST cashbox installs (gateway/hub/connectors/bitrix24/install.py).
    from gateway.hub.connectors.bitrix24 import commands as bitrix24_commands

    bitrix24_commands.add_arguments(sub.add_parser("bitrix24", help="Bitrix24 REST cashbox"))
    # МойСклад install / POS attach (gateway/hub/connectors/moysklad/install.py).
    from gateway.hub.connectors.moysklad import install as moysklad_install

    moysklad_install.add_arguments(sub.add_parser("moysklad", help="МойСклад set-up"))
    # Uspacy portal set-up (gateway/hub/connectors/uspacy/install.py).
    from gateway.hub.connectors.uspacy import install as uspacy_install

    uspacy_install.add_arguments(sub.add_parser("uspacy", help="Uspacy portals"))


def run(args: argparse.Namespace) -> int:
    if args.hub_command == "check-config":
        issues = check_config(args.file)
        for issue in issues:
            print(f"{args.file}: {issue}")
        if not issues:
            print(f"{args.file}: OK")
        return 2 if issues else 0
    try:
        cfg = load_config(args.config) if args.config else default_config()
    except HubConfigError as err:
        for issue in err.issues:
            print(f"{args.config}: {issue}", file=sys.stderr)
        return 2
    if importlib.util.find_spec("sqlalchemy") is None:  # the `hub` extra is not installed
        print(
            "fiscal-gateway hub: install the hub extra: pip install 'fiscal-gateway[hub]'",
            file=sys.stderr,
        )
        return 2
    try:
        if args.hub_command == "run":
            from gateway.hub.service import serve
            from gateway.runtime.log import setup_logging

            setup_logging(cfg.log_level)
            return asyncio.run(serve(cfg))
        if args.hub_command == "moysklad":
            from gateway.hub.connectors.moysklad import install as moysklad_install

            return moysklad_install.run(cfg, args)
        if args.hub_command == "bitrix24":
            from gateway.hub.connectors.bitrix24 import install as bitrix24_install

            return asyncio.run(bitrix24_install.run(cfg, args))
        if args.hub_command == "uspacy":
            from gateway.hub.connectors.uspacy import install as uspacy_setup

            return asyncio.run(uspacy_setup.run(cfg, args))
        return asyncio.run(_route(cfg, args))
    except HubError as err:
        print(f"fiscal-gateway hub: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _route(cfg: HubConfig, args: argparse.Namespace) -> int:
    from gateway.hub.store import Store

    logging.getLogger("gateway.hub").setLevel(logging.WARNING)
    store = await Store.open(cfg.database)
    try:
        if args.route_command == "add":
            await store.fleet.set_route(Route(args.connector, args.key, args.box))
            print(f"{args.connector} {args.key} -> {args.box}")
        elif args.route_command == "remove":
            if not await store.fleet.remove_route(args.connector, args.key):
                print(f"no route {args.connector} {args.key}", file=sys.stderr)
                return 1
        else:
            for route in await store.fleet.routes(args.connector):
                print(f"{route.connector}\t{route.key}\t{route.box_id}")
    finally:
        await store.close()
    return 0
