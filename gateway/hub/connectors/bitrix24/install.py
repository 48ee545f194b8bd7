"""`fiscal-gateway hub bitrix24 install | uninstall | list`: the hub as a REST cashbox.

Install registers the handler (`sale.cashbox.handler.add`, or `…update` when its code is
taken), creates or updates the cashbox (`sale.cashbox.add` with ACTIVE=Y: the core's default
is N), reads the VAT table and routes the cashbox to a box. Running it again updates; the
secret in the handler URLs is kept, so checks already sent still find the hub.
"""

from __future__ import annotations

import argparse
import re
import secrets
from dataclasses import replace
from typing import Any

from gateway.hub.config import HubConfig
from gateway.hub.connectors.bitrix24.client import portal_domain
from gateway.hub.connectors.bitrix24.errors import PortalError
from gateway.hub.connectors.bitrix24.installs import CONNECTOR, Install
from gateway.hub.connectors.bitrix24.mapping import CONFIG_SECTION, TAXATION, VAT_RATES
from gateway.hub.connectors.bitrix24.writeback import Bitrix24Connector
from gateway.hub.errors import HubError
from gateway.hub.model import Route
from gateway.hub.store import Store

TIMEOUT_S = 30.0
_VAT_NAMES = frozenset({"none", *VAT_RATES.values()})


def handler_settings(public_url: str, secret: str) -> dict[str, Any]:
    """SETTINGS of `sale.cashbox.handler.add` [B24]; SUPPORTS_FFD105 is read only here."""
    base = f"{public_url.rstrip('/')}/bitrix24/{secret}"
    return {
        "PRINT_URL": f"{base}/print",
        "CHECK_URL": f"{base}/check",
        "HTTP_VERSION": "1.1",
        "SUPPORTS_FFD105": "Y",
        "CONFIG": {
            CONFIG_SECTION: {
                "LABEL": "Fiscal data",
                "ITEMS": {
                    "TAXATION": {
                        "TYPE": "ENUM",
                        "LABEL": "Taxation system",
                        "REQUIRED": "N",
                        "OPTIONS": {key: key for key in TAXATION},
                    },
                    "PAYMENTS_PLACE": {
                        "TYPE": "STRING",
                        "LABEL": "Settlement place (the shop's site)",
                        "REQUIRED": "N",
                    },
                    "OPERATOR": {"TYPE": "STRING", "LABEL": "Cashier", "REQUIRED": "N"},
                    "ELECTRONICALLY": {
                        "TYPE": "Y/N",
                        "LABEL": "Electronic receipt only",
                        "REQUIRED": "N",
                    },
                },
            }
        },
    }


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key or not item:
            raise HubError(f"{what}: {value!r} is not KEY=VALUE")
        out[key] = item
    return out


async def install(cfg: HubConfig, store: Store, args: argparse.Namespace) -> Install:
    vat_overrides = _pairs(args.vat, "--vat")
    for key, name in vat_overrides.items():
        if name not in _VAT_NAMES:
            raise HubError(f"--vat {key}={name}: must be one of {', '.join(sorted(_VAT_NAMES))}")
    settings = _pairs(args.setting, "--setting")
    domain = portal_domain(args.portal)
    name = args.name or domain
    if args.webhook:
        auth: dict[str, Any] = {"kind": "webhook", "url": args.webhook}
    else:
        client_id, client_secret, refresh_token = args.app
        auth = {
            "kind": "oauth",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
            "expires_ms": 0,
            "oauth_server": args.oauth_server,
        }
    connector = Bitrix24Connector(store, timeout_s=TIMEOUT_S, on_accepted=_nothing)
    old = await connector.installs.get(name)
    current = Install(
        name=name,
        portal=args.portal.rstrip("/"),
        domain=domain,
        secret=old.secret if old else secrets.token_urlsafe(32),
        box=args.box,
        auth=auth,
        email=args.email,
        handler_code=old.handler_code if old else _code(name),
        handler_id=old.handler_id if old else None,
        cashbox_id=old.cashbox_id if old else None,
        vat_overrides=vat_overrides,
    )
    # Stored first: the portal may call the handler URLs as soon as they are registered.
    await connector.installs.save(current)
    await store.fleet.set_route(Route(CONNECTOR, name, args.box))
    try:
        current = await _register(connector, current, cfg.public_url, settings)
    finally:
        await connector.close()
    return current


async def _register(
    connector: Bitrix24Connector, current: Install, public_url: str, settings: dict[str, str]
) -> Install:
    fields = {
        "NAME": f"Fiscal hub ({current.box})",
        "SORT": 100,
        "SETTINGS": handler_settings(public_url, current.secret),
    }
    try:
        handler_id = await connector.call(
            current, "sale.cashbox.handler.add", {"CODE": current.handler_code, **fields}
        )
    except PortalError as err:
        if err.error != "ERROR_HANDLER_ALREADY_EXIST":
            raise
        handler_id = await _handler_id(connector, current)
        await connector.call(
            current, "sale.cashbox.handler.update", {"ID": handler_id, "FIELDS": fields}
        )
    current = replace(current, handler_id=int(handler_id))
    cashbox = {
        "NAME": f"Fiscal hub {current.box}",
        "REST_CODE": current.handler_code,
        "EMAIL": current.email,
        "NUMBER_KKM": current.box,
        "ACTIVE": "Y",
        "USE_OFFLINE": "N",
        "SETTINGS": {CONFIG_SECTION: settings} if settings else {},
    }
    cashbox_id = await _cashbox_id(connector, current)
    if cashbox_id is None:
        cashbox_id = await connector.call(current, "sale.cashbox.add", cashbox)
    else:
        await connector.call(current, "sale.cashbox.update", {"ID": cashbox_id, "FIELDS": cashbox})
    # Only the ids: the record's tokens may have been renewed by the calls above.
    saved = await connector.installs.update(
        current.name, handler_id=current.handler_id, cashbox_id=int(cashbox_id)
    )
    if saved is None:
        raise HubError(f"install {current.name!r} was removed while it was being installed")
    return await connector.read_vat(saved)


async def _handler_id(connector: Bitrix24Connector, current: Install) -> int:
    for row in await connector.call(current, "sale.cashbox.handler.list", {}) or []:
        if row.get("CODE") == current.handler_code:
            return int(row["ID"])
    raise HubError(f"the portal says handler {current.handler_code} exists but does not list it")


async def _cashbox_id(connector: Bitrix24Connector, current: Install) -> int | None:
    found = await connector.call(
        current,
        "sale.cashbox.list",
        {"select": ["ID", "REST_CODE"], "filter": {"REST_CODE": current.handler_code}},
    )
    for row in found or []:
        if row.get("REST_CODE") == current.handler_code:
            return int(row["ID"])
    return None


async def uninstall(store: Store, name: str) -> bool:
    connector = Bitrix24Connector(store, timeout_s=TIMEOUT_S, on_accepted=_nothing)
    try:
        current = await connector.installs.get(name)
        if current is None:
            return False
        cashbox_id = await _cashbox_id(connector, current)
        if cashbox_id is not None:
            await connector.call(current, "sale.cashbox.delete", {"ID": cashbox_id})
        if current.handler_code:
            try:
                handler_id = await _handler_id(connector, current)
            except HubError:
                handler_id = None
            if handler_id is not None:
                await connector.call(current, "sale.cashbox.handler.delete", {"ID": handler_id})
        await store.fleet.remove_route(CONNECTOR, name)
        await connector.installs.delete(name)
        return True
    finally:
        await connector.close()


async def run(cfg: HubConfig, args: argparse.Namespace) -> int:
    store = await Store.open(cfg.database)
    try:
        if args.bitrix24_command == "install":
            done = await install(cfg, store, args)
            print(
                f"{done.name}: handler {done.handler_id}, cashbox {done.cashbox_id} -> {done.box}"
                f"; VAT ids {', '.join(f'{k}={v}' for k, v in sorted(done.vat.items()))}"
            )
        elif args.bitrix24_command == "uninstall":
            if not await uninstall(store, args.name):
                print(f"no install {args.name!r}")
                return 1
            print(f"{args.name}: removed")
        else:
            for item in await Bitrix24Connector(
                store, timeout_s=TIMEOUT_S, on_accepted=_nothing
            ).installs.all():
                print(f"{item.name}\t{item.portal}\t{item.box}\tcashbox {item.cashbox_id}")
    finally:
        await store.close()
    return 0


def _code(name: str) -> str:
    """The handler's CODE on the portal: unique per install, stable across reinstalls."""
    return "fiscal_hub_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40]


def _nothing(_order: object) -> None:
    """CLI commands dispatch nothing."""
