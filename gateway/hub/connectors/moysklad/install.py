"""`fiscal-gateway hub moysklad install | attach`: set a shop up, print its config block.

install [MOYSKLAD]: find the state that means "fiscalise", make the two attributes (the
receipt's fiscal data and its link) unless they exist, register the UPDATE webhook on the
orders (or retail demands) at the hub's public URL with a fresh secret.
attach [MOYSKLAD-POS]: get the POS token of a retail store. A new token revokes every older
token of that store, so a «Касса МойСклад» running on the same store is logged out.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import secrets
import sys
from pathlib import Path
from typing import Any

import aiohttp

from gateway.hub.config import HubConfig
from gateway.hub.connectors.moysklad.client import Backoff, Client
from gateway.hub.connectors.moysklad.errors import MoyskladError
from gateway.hub.connectors.moysklad.settings import API_URL, ENTITIES, POS_URL

TIMEOUT_S = 30.0
FISCAL_ATTR = "Чек: ФН, ФД, ФП"
LINK_ATTR = "Ссылка на чек"
REVOKES = (
    "Note: attaching issues a new POS token and revokes every older token of this store: "
    "a «Касса МойСклад» logged in to it is logged out. Give the hub a store of its own."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="moysklad_command", required=True)
    inst = sub.add_parser("install", help="register the webhook and attributes (JSON API)")
    inst.add_argument("--config", type=Path, help="the hub's YAML config (for api.public_url)")
    inst.add_argument("--account", required=True, help="a name for this shop (the route key)")
    inst.add_argument("--token-file", type=Path, required=True, help="solution or user token")
    inst.add_argument("--state", required=True, help='the state that means "fiscalise"')
    inst.add_argument("--entity", choices=ENTITIES, default="customerorder")
    inst.add_argument("--api-url", default=API_URL)
    att = sub.add_parser("attach", help="get the POS API token of a retail store (master)")
    att.add_argument("--config", type=Path, help="the hub's YAML config")
    att.add_argument("--account", required=True)
    att.add_argument("--store", required=True, help="the retail store id (fiscalType MASTER)")
    att.add_argument("--organization", required=True, help="the legal entity id polled")
    att.add_argument("--login", required=True, help="an admin or a cashier of that store")
    att.add_argument("--password-file", type=Path, required=True)
    att.add_argument("--pos-url", default=POS_URL)


def run(cfg: HubConfig, args: argparse.Namespace) -> int:
    try:
        if args.moysklad_command == "install":
            block = asyncio.run(_install(cfg, args))
        else:
            print(REVOKES, file=sys.stderr)
            block = asyncio.run(_attach(args))
    except MoyskladError as err:
        print(f"fiscal-gateway hub moysklad: {err}", file=sys.stderr)
        return 1
    print("# add to moysklad.accounts in the hub's config:")
    print(render(block))
    return 0


def render(block: dict[str, Any]) -> str:
    lines = []
    for i, (key, value) in enumerate(block.items()):
        lead = "- " if i == 0 else "  "
        if isinstance(value, dict):
            inner = ", ".join(f"{k}: {v}" for k, v in value.items())
            lines.append(f"{lead}{key}: {{{inner}}}")
        else:
            lines.append(f"{lead}{key}: {value}")
    return "\n".join(lines)


async def _install(cfg: HubConfig, args: argparse.Namespace) -> dict[str, Any]:
    token = args.token_file.read_text(encoding="utf-8").strip()
    async with aiohttp.ClientSession() as session:
        client = Client(
            lambda: session,
            args.api_url,
            {"Authorization": f"Bearer {token}"},
            key="install",
            backoff=Backoff(),
            timeout_s=TIMEOUT_S,
        )
        block = await install(
            client,
            account=args.account,
            entity=args.entity,
            state_name=args.state,
            public_url=cfg.public_url,
        )
    block["token_file"] = str(args.token_file.resolve())
    if args.api_url != API_URL:
        print(f"# and set moysklad.api_url: {args.api_url}")
    return block


async def install(
    client: Client, *, account: str, entity: str, state_name: str, public_url: str
) -> dict[str, Any]:
    """Everything install does, against one client; the account's config block."""
    _, meta = await client.call("GET", f"/entity/{entity}/metadata")
    states = {s.get("name"): s.get("id") for s in (meta or {}).get("states", [])}
    if state_name not in states:
        known = ", ".join(repr(n) for n in states) or "none"
        raise MoyskladError(f"no state {state_name!r} on {entity}; the states are {known}")
    fiscal = await _attribute(client, entity, FISCAL_ATTR, "string")
    link = await _attribute(client, entity, LINK_ATTR, "link")
    secret = secrets.token_urlsafe(24)
    url = f"{public_url.rstrip('/')}/moysklad/{account}/{secret}"
    _, hooks = await client.call("GET", "/entity/webhook")
    prefix = f"{public_url.rstrip('/')}/moysklad/{account}/"
    for hook in (hooks or {}).get("rows", []):  # a re-install replaces this account's webhook
        if hook.get("entityType") == entity and str(hook.get("url", "")).startswith(prefix):
            await client.call("DELETE", f"/entity/webhook/{hook['id']}")
    body = {"url": url, "action": "UPDATE", "entityType": entity, "diffType": "FIELDS"}
    await client.call("POST", "/entity/webhook", body)
    return {
        "name": account,
        "entity": entity,
        "state": states[state_name],
        "webhook_secret": secret,
        "attributes": {"fiscal": fiscal, "receipt_url": link},
    }


async def _attribute(client: Client, entity: str, name: str, kind: str) -> str:
    _, listing = await client.call("GET", f"/entity/{entity}/metadata/attributes")
    for row in (listing or {}).get("rows", []):
        if row.get("name") == name:
            return str(row["id"])
    _, made = await client.call(
        "POST", f"/entity/{entity}/metadata/attributes", {"name": name, "type": kind}
    )
    return str(made["id"])


async def _attach(args: argparse.Namespace) -> dict[str, Any]:
    password = args.password_file.read_text(encoding="utf-8").strip()
    async with aiohttp.ClientSession() as session:
        token, uid = await attach(session, args.pos_url, args.store, args.login, password)
    return {
        "name": args.account,
        "mode": "pos",
        "token": token,
        "pos_uid": uid,
        "retail_store": args.store,
        "organization": args.organization,
    }


async def attach(
    session: aiohttp.ClientSession, pos_url: str, store: str, login: str, password: str
) -> tuple[str, str]:
    """[MOYSKLAD-POS] POST /admin/attach/{retailStoreId} (Basic) -> (token, uid)."""
    basic = base64.b64encode(f"{login}:{password}".encode()).decode()
    url = f"{pos_url.rstrip('/')}/admin/attach/{store}"
    try:
        async with (
            asyncio.timeout(TIMEOUT_S),
            session.post(url, headers={"Authorization": f"Basic {basic}"}) as resp,
        ):
            doc = await resp.json(content_type=None) if resp.status == 201 else None
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise MoyskladError(f"attach: {type(err).__name__}: {err}") from None
    if status != 201 or not isinstance(doc, dict):
        why = {401: "wrong login or password", 403: "not a cashier or admin of the store"}
        raise MoyskladError(
            f"attach: HTTP {status}: {why.get(status, 'no such store')}", status=status
        )
    return str(doc["token"]), str(doc["uid"])
