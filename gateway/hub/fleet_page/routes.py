"""The pages: the fleet, orders with filters, one order's way, the alerts."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from aiohttp import web

from gateway.hub.errors import OrderNotFound
from gateway.hub.fleet_page.auth import require_session
from gateway.hub.fleet_page.render import render
from gateway.hub.fleet_page.state import PAGE
from gateway.hub.fleet_page.texts import TEXTS
from gateway.hub.fleet_page.view import fleet_rows, when
from gateway.hub.model import OrderState
from gateway.hub.store.database import now_ms

ORDER_LIMIT = 200
REGISTER_WORDS = frozenset(k for k in TEXTS if k.startswith("reg_"))


async def fleet(request: web.Request) -> web.Response:
    require_session(request)
    page = request.app[PAGE]
    states = await page.fleet.boxes()
    infos = await page.store.fleet.boxes()
    routed = [r.box_id for r in await page.store.fleet.routes()]
    rows = fleet_rows(states, infos, routed, now_ms(), int(page.settings.stale_after_s * 1000))
    open_alerts = await page.incidents.open_incidents()
    return render(
        request,
        "fleet.html",
        rows=rows,
        open_alerts=len(open_alerts),
        register_words=REGISTER_WORDS,
        live=True,
    )


def _day(raw: str) -> tuple[int, int] | None:
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        return None
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return int(start.timestamp() * 1000), int((start + dt.timedelta(days=1)).timestamp() * 1000)


async def orders(request: web.Request) -> web.Response:
    require_session(request)
    page = request.app[PAGE]
    q = request.query
    box, state, connector, date = (
        q.get(k, "").strip() for k in ("box", "state", "connector", "date")
    )
    states = [s.value for s in OrderState]
    if state not in states:
        state = ""
    span = _day(date) if date else None
    if span is None:
        date = ""
    found = await page.fleet.orders(
        box_id=box or None,
        state=state or None,
        connector=connector or None,
        day_from_ms=span[0] if span else None,
        day_to_ms=span[1] if span else None,
        limit=ORDER_LIMIT,
    )
    boxes = sorted({b.box_id for b in await page.store.fleet.boxes()})
    return render(
        request,
        "orders.html",
        orders=found,
        when=when,
        boxes=boxes,
        states=states,
        connectors=await page.fleet.connectors(),
        chosen={"box": box, "state": state, "connector": connector, "date": date},
    )


async def order(request: web.Request) -> web.Response:
    require_session(request)
    page = request.app[PAGE]
    try:
        found = await page.store.orders.get(request.match_info["uuid"])
    except OrderNotFound:
        raise web.HTTPNotFound() from None
    writebacks = await page.store.outbox.for_order(found.id)
    fiscal: dict[str, Any] | None = None
    results = (found.result or {}).get("results")
    if isinstance(results, list) and results and isinstance(results[0], dict):
        first = results[0].get("result")
        fiscal = first.get("fiscalParams") if isinstance(first, dict) else None
    return render(
        request,
        "order.html",
        order=found,
        when=when,
        fiscal=fiscal,
        details=_details(found.meta),
        writebacks=writebacks,
        result_text=_pretty(found.result),
    )


def _details(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """The connector's own fields kept with the order (a portal, a check id…), as text."""
    return [
        (str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
        for k, v in meta.items()
    ]


def _pretty(value: object) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, indent=2)


async def alerts(request: web.Request) -> web.Response:
    require_session(request)
    page = request.app[PAGE]
    recent = await page.incidents.recent()
    return render(
        request,
        "alerts.html",
        open_rows=[i for i in recent if i.cleared_ms is None],
        cleared_rows=[i for i in recent if i.cleared_ms is not None],
        when=when,
        live=True,
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", fleet)
    router.add_get("/orders", orders)
    router.add_get("/orders/{uuid}", order)
    router.add_get("/alerts", alerts)
