"""The POS API master: the hub fiscalises МойСклад's cloud-cheque queue [MOYSKLAD-POS].

One poller per account, and per hub deployment (a lease in the store): it opens the day's
shift, polls the queue at `poll_s` (100 requests per 5 s is the documented limit), commits
each operation as an order, and the box prints it. The approve with the fiscal data, or the
reject with the reason, goes through the write-back outbox, so it survives a restart.
An operation handed out again (before its approve arrived) lands on the same order: its key
is the operation's id. An operation the hub cannot print is rejected at once, naming why.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid as uuid_mod
from collections.abc import Callable
from typing import Any, Final

from gateway.hub.connectors.moysklad import mapping
from gateway.hub.connectors.moysklad.client import Client
from gateway.hub.connectors.moysklad.errors import MoyskladError, OrderRefused
from gateway.hub.connectors.moysklad.settings import MoyskladAccount
from gateway.hub.connectors.moysklad.writeback import reject_body
from gateway.hub.errors import StoreError, UnknownRoute
from gateway.hub.model import NewOrder, Order, job_uuid
from gateway.hub.store import Store

_LOGGER = logging.getLogger(__name__)

CONNECTOR = "moysklad"
# Fixed forever: the day's shift id is derived from it, so a restart reopens the same shift.
_SHIFT_NAMESPACE = uuid_mod.UUID("0c8e51a4-3b6f-4d0a-9f3e-2a7d5c1b9e60")
OPERATION_TYPES: Final = {"retaildemand": "sell", "retailsalesreturn": "sellReturn"}
LEASE_S = 15.0


class PosMaster:
    """Polls one account's queue while this process holds its lease."""

    def __init__(
        self,
        store: Store,
        account: MoyskladAccount,
        client: Client,
        *,
        api_url: str,
        owner: str,
        on_accepted: Callable[[Order], None],
    ) -> None:
        assert account.organization is not None
        self.store = store
        self.account = account
        self.client = client
        self.api_url = api_url
        self.owner = owner
        self.on_accepted = on_accepted
        self._shift_day: dt.date | None = None
        self.polls = 0

    def shift_href(self, day: dt.date) -> str:
        sync = uuid_mod.uuid5(_SHIFT_NAMESPACE, f"{self.account.name}/{day.isoformat()}")
        return f"{self.api_url}/entity/retailshift/syncid/{sync}"

    async def run(self) -> None:
        lease = f"moysklad-pos-{self.account.name}"
        while True:
            try:
                if await self.store.access.take_lease(lease, self.owner, int(LEASE_S * 1000)):
                    await self.poll_once()
            except (MoyskladError, StoreError) as err:
                _LOGGER.warning("МойСклад POS %s: %s", self.account.name, err)
            await asyncio.sleep(self.account.poll_s)

    async def poll_once(self) -> Order | None:
        """Open the day's shift if needed, take one operation from the queue."""
        today = dt.datetime.now(dt.UTC).date()
        if self._shift_day != today:
            await self._open_shift(today)
            self._shift_day = today
        self.polls += 1
        try:
            status, op = await self.client.call(
                "GET", f"/cheque/rpc/master/poll/{self.account.organization}"
            )
        except MoyskladError as err:
            if err.status != 404:
                raise
            return None
        # Not documented how an empty queue answers: 204, 404 or an empty object all mean none.
        if status == 204 or not isinstance(op, dict) or not isinstance(op.get("meta"), dict):
            return None
        return await self.take(op, self.shift_href(today))

    async def take(self, op: dict[str, Any], shift_href: str) -> Order | None:
        meta = op["meta"]
        op_id = str(meta.get("id") or str(meta.get("href", "")).rsplit("/", 1)[-1])
        key = f"pos:{op_id}"
        earlier = await self.store.orders.by_key(CONNECTOR, self.account.name, key)
        if earlier is not None:
            _LOGGER.info("МойСклад POS operation %s handed out again: already taken", op_id)
            return earlier
        kind = meta.get("type")
        try:
            if kind not in OPERATION_TYPES:
                raise OrderRefused("meta.type", f"{kind} operations are not supported yet")
            rows = operation_rows(op.get("positions"))
            profile = mapping.Profile(taxation=self.account.taxation, payment=self.account.payment)
            task = mapping.to_task(op, rows or [], profile, OPERATION_TYPES[str(kind)])
            request = mapping.checked(task, job_uuid(CONNECTOR, self.account.name, key))
            new = NewOrder(
                CONNECTOR,
                self.account.name,
                key,
                self.account.name,
                request,
                {"pos": True, "operation_meta": meta, "shift_href": shift_href},
            )
            accepted = await self.store.orders.accept(new)
        except OrderRefused as err:
            await self._reject(meta, f"{err.field}: {err.reason}")
            return None
        except UnknownRoute:
            await self._reject(meta, "no box is routed for this store")
            return None
        if accepted.created:
            self.on_accepted(accepted.order)
            _LOGGER.info("МойСклад POS operation %s -> %s", op_id, accepted.order.box_id)
        return accepted.order

    async def _reject(self, meta: dict[str, Any], reason: str) -> None:
        _LOGGER.warning("МойСклад POS operation %s rejected: %s", meta.get("id"), reason)
        await self.client.call("PUT", "/cheque/rpc/master/reject", reject_body(meta, reason))

    async def _open_shift(self, day: dt.date) -> None:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        body = {
            "retailShift": {"meta": {"href": self.shift_href(day), "type": "retailshift"}},
            "name": f"{self.account.name} {day.isoformat()}",
            "openmoment": now,
        }
        await self.client.call("PUT", "/rpc/openshift/", body)


def operation_rows(block: object) -> list[Any]:
    """The operation's positions; a part of them is never printed as the whole."""
    if not isinstance(block, dict):
        return []
    rows = block.get("rows") or []
    size = block.get("meta", {}).get("size", len(rows))
    if not isinstance(rows, list) or size != len(rows):
        raise OrderRefused("positions", f"{size} positions, {len(rows)} came with the operation")
    return rows
