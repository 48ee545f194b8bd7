"""`fiscal-gateway hub uspacy install`: stages chosen, the receipt field, the webhook, a route.

Every step can be run again: an existing field or route is kept, a stage is found by id,
title or code. The webhook is confirmed by the running hub (it must already know the
portal); this waits until Uspacy says it is confirmed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from gateway.hub.connectors.uspacy.client import UspacyClient
from gateway.hub.connectors.uspacy.errors import UspacyError
from gateway.hub.connectors.uspacy.marketplace import PortalTokens
from gateway.hub.connectors.uspacy.wire import Funnel, Stage
from gateway.hub.model import Route
from gateway.hub.store import Store

if TYPE_CHECKING:
    from gateway.hub.config import HubConfig

_LOGGER = logging.getLogger(__name__)

CONNECTOR: Final = "uspacy"
FIELD_NAME: Final = "Фіскальний чек"
# The event a stage change is registered under: our choice, see docs/uspacy.md.
STAGE_EVENT: Final = {
    "service": "crm",
    "table_name": "deals",
    "type": "entity",
    "actions": ["updateStage"],
}


class InstallError(UspacyError):
    """The portal cannot be set up as asked; the text says what to change."""

    code = "uspacy_install"


@dataclass(frozen=True, slots=True)
class Installed:
    trigger_stage: int
    done_stage: int | None
    receipt_field: str
    webhook_id: int
    confirmed: bool


def find_stage(funnels: list[Funnel], wanted: str) -> Stage:
    """A stage by id, title or code (case-insensitive); ambiguous or missing is an error."""
    text = wanted.strip().casefold()
    found = [
        s
        for f in funnels
        for s in f.get("stages", [])
        if text
        in (
            str(s.get("id")),
            str(s.get("title", "")).casefold(),
            str(s.get("stage_code", "")).casefold(),
        )
    ]
    if len(found) != 1:
        names = ", ".join(
            f"{s.get('id')} {s.get('title')!r}" for f in funnels for s in f.get("stages", [])
        )
        what = "no stage" if not found else "more than one stage"
        raise InstallError(f"{what} matches {wanted!r}; the stages: {names}")
    return found[0]


async def install(
    client: UspacyClient,
    store: Store,
    *,
    key: str,
    box: str,
    webhook_url: str,
    trigger: str,
    done: str | None,
    receipt_field: str,
    confirm_s: float = 60.0,
) -> Installed:
    funnels = await client.funnels()
    trigger_stage = find_stage(funnels, trigger)
    done_stage = find_stage(funnels, done) if done else None
    if done_stage is not None and done_stage["id"] == trigger_stage["id"]:
        raise InstallError("the 'receipt done' stage must differ from the trigger stage")
    answer = await client.call("GET", "/crm/v1/entities/deals/fields")
    fields: Any = answer.get("data", answer) if isinstance(answer, dict) else answer
    codes = (
        {f.get("code") for f in fields if isinstance(f, dict)}
        if isinstance(fields, list)
        else set()
    )
    if receipt_field not in codes:
        body = {"name": FIELD_NAME, "code": receipt_field, "type": "string"}
        await client.call("POST", "/crm/v1/entities/deals/fields", json=body)
    await store.fleet.set_route(Route(CONNECTOR, key, box))
    hook = await client.call(
        "POST",
        "/company/v1/webhooks",
        json={
            "url": webhook_url,
            "active": True,
            "name": "fiscal-gateway",
            "events": [STAGE_EVENT],
        },
    )
    hook = hook.get("data", hook) if isinstance(hook, dict) else {}
    hook_id = hook.get("id")
    if not isinstance(hook_id, int):
        raise InstallError("Uspacy did not return the webhook's id")
    confirmed = await _wait_confirmed(client, hook_id, confirm_s)
    return Installed(
        trigger_stage=int(trigger_stage["id"]),
        done_stage=int(done_stage["id"]) if done_stage is not None else None,
        receipt_field=receipt_field,
        webhook_id=hook_id,
        confirmed=confirmed,
    )


async def _wait_confirmed(client: UspacyClient, hook_id: int, within_s: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        answer = await client.call("GET", f"/company/v1/webhooks/{hook_id}")
        doc = answer.get("data", answer) if isinstance(answer, dict) else {}
        # An answer without the flag: this portal does not ask for a confirmation.
        if doc.get("confirmed", True) is not False:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.5)


def config_lines(done: Installed) -> str:
    """What to add to the portal's entry in the hub's config."""
    lines = [f"trigger_stage: {done.trigger_stage}"]
    if done.done_stage is not None:
        lines.append(f"done_stage: {done.done_stage}")
    lines.append(f"receipt_field: {done.receipt_field}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="uspacy_command", required=True)
    inst = sub.add_parser("install", help="set up a portal: stages, receipt field, webhook, route")
    inst.add_argument(
        "--config", type=Path, help="the hub's YAML config (the portal must be in it)"
    )
    inst.add_argument("portal", help="the portal's key in the config's uspacy.portals")
    inst.add_argument("box", help="the box that fiscalises this portal's deals")
    inst.add_argument("--trigger", required=True, help='the "fiscalise" stage: id, title or code')
    inst.add_argument("--done", help='the "receipt done" stage (a fiscalised deal moves there)')


async def run(cfg: HubConfig, args: argparse.Namespace) -> int:
    portal = cfg.uspacy.portal(args.portal)
    if portal is None:
        print(f"no Uspacy portal {args.portal!r} in the config's uspacy.portals", file=sys.stderr)
        return 2
    store = await Store.open(cfg.database)
    tokens = PortalTokens(store, portal.domain) if portal.marketplace else None
    client = UspacyClient(portal.url, portal.client_id, portal.client_secret, tokens=tokens)
    try:
        done = await install(
            client,
            store,
            key=portal.key,
            box=args.box,
            webhook_url=f"{cfg.public_url.rstrip('/')}/uspacy/{portal.key}/{portal.webhook_secret}",
            trigger=args.trigger,
            done=args.done,
            receipt_field=portal.rules.receipt_field,
        )
    finally:
        await client.close()
        await store.close()
    print(f"uspacy {portal.key} -> {args.box}; webhook {done.webhook_id}")
    if not done.confirmed:
        print(
            "the webhook is not confirmed yet: is the hub running with this portal?",
            file=sys.stderr,
        )
    print(f"Add to uspacy.portals[{portal.key}] in the config, then restart the hub:")
    print(config_lines(done))
    return 0 if done.confirmed else 1
