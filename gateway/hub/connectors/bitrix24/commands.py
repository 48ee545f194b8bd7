"""The arguments of `fiscal-gateway hub bitrix24 …` (read without the hub extra installed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.hub.connectors.bitrix24.mapping import CONFIG_SECTION


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="the hub's YAML config (database, api.public_url)"
    )
    sub = parser.add_subparsers(dest="bitrix24_command", required=True)
    install = sub.add_parser("install", help="register the hub as a REST cashbox on a portal")
    install.add_argument("--portal", required=True, help="https://<name>.bitrix24.ru")
    auth = install.add_mutually_exclusive_group(required=True)
    auth.add_argument("--webhook", help="an incoming webhook URL with the cashbox scope")
    auth.add_argument(
        "--app",
        nargs=3,
        metavar=("CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN"),
        help="a local or marketplace app's credentials and refresh token",
    )
    install.add_argument("--oauth-server", default="https://oauth.bitrix.info")
    install.add_argument("--box", required=True, help="the box that prints this cashbox")
    install.add_argument("--email", required=True, help="the portal e-mails print errors here")
    install.add_argument("--name", help="the install's name (default: the portal's domain)")
    install.add_argument(
        "--vat", action="append", default=[], metavar="ID=NAME", help="a VAT id -> vat20…"
    )
    install.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"a cashbox setting of {CONFIG_SECTION}: TAXATION, PAYMENTS_PLACE, OPERATOR…",
    )
    uninstall = sub.add_parser("uninstall", help="remove the cashbox, the handler and the route")
    uninstall.add_argument("name")
    sub.add_parser("list", help="every install")
