"""The МойСклад connector: the webhook route, the POS masters, and the write-back."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

import aiohttp
from aiohttp import web

from gateway.hub.connectors.base import WritebackFailed
from gateway.hub.connectors.moysklad import writeback
from gateway.hub.connectors.moysklad.client import WEBHOOK_ECHO_HEADER, Backoff, Client
from gateway.hub.connectors.moysklad.errors import MoyskladError
from gateway.hub.connectors.moysklad.pos import PosMaster
from gateway.hub.connectors.moysklad.settings import MoyskladAccount, MoyskladSettings
from gateway.hub.connectors.moysklad.sweep import Sweeper
from gateway.hub.connectors.moysklad.webhook import CONNECTOR, Webhooks
from gateway.hub.model import Order, OrderState, Writeback, WritebackSpec
from gateway.hub.store import Store


class MoyskladConnector:
    """Implements the hub's Connector protocol; `run()` polls the POS queues and sweeps."""

    name = CONNECTOR

    def __init__(
        self,
        store: Store,
        settings: MoyskladSettings,
        *,
        public_url: str,
        owner: str,
        timeout_s: float,
        on_accepted: Callable[[Order], None],
    ) -> None:
        self.settings = settings
        self.public_url = public_url
        self.timeout_s = timeout_s
        self.accounts = {a.name: a for a in settings.accounts}
        self.backoff = Backoff()
        self._session: aiohttp.ClientSession | None = None
        self.webhooks = Webhooks(
            store,
            {a.name: a for a in settings.accounts if a.mode == "webhook"},
            self.api_client,
            api_url=settings.api_url,
            public_url=public_url,
            on_accepted=on_accepted,
        )
        self.masters = [
            PosMaster(
                store,
                a,
                self.pos_client(a),
                api_url=settings.api_url,
                owner=owner,
                on_accepted=on_accepted,
            )
            for a in settings.accounts
            if a.mode == "pos"
        ]
        self.sweepers = [
            Sweeper(store, self.webhooks, a, owner)
            for a in settings.accounts
            if a.mode == "webhook"
        ]

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=True)
        return self._session

    def api_client(self, account: MoyskladAccount) -> Client:
        token = account.token.reveal()
        headers = {"Authorization": f"Bearer {token}"}
        return self._client(self.settings.api_url, headers, token)

    def pos_client(self, account: MoyskladAccount) -> Client:
        token = account.token.reveal()
        # [MOYSKLAD-POS] auth: the token and the cashier uid `attach` returned.
        headers = {
            "Lognex-Pos-Auth-Token": token,
            "Lognex-Pos-Auth-Cashier-Uid": account.pos_uid or "",
        }
        return self._client(self.settings.pos_url, headers, token)

    def _client(self, base: str, headers: dict[str, str], token: str) -> Client:
        key = hashlib.sha256(token.encode()).hexdigest()[:16]  # the limits count per token
        return Client(
            self.session, base, headers, key=key, backoff=self.backoff, timeout_s=self.timeout_s
        )

    def add_routes(self, app: web.Application) -> None:
        self.webhooks.add_routes(app)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for master in self.masters:
                tg.create_task(master.run(), name=f"moysklad-pos-{master.account.name}")
            for sweeper in self.sweepers:
                tg.create_task(sweeper.run(), name=f"moysklad-sweep-{sweeper.account.name}")

    def build_writeback(self, order: Order) -> WritebackSpec | None:
        account = self.accounts.get(order.account)
        if account is None:
            return None
        if order.meta.get("pos"):
            meta = order.meta["operation_meta"]
            if order.state is OrderState.DONE:
                body = writeback.approve_body(order, str(order.meta["shift_href"]))
                return WritebackSpec("pos:approve", {"account": account.name, "put": body})
            reason = writeback.failure_text(order)
            return WritebackSpec(
                "pos:reject",
                {"account": account.name, "put": writeback.reject_body(meta, reason)},
            )
        body = writeback.order_attributes(self.settings.api_url, account, order)
        return WritebackSpec(str(order.meta["href"]), {"account": account.name, "put": body})

    async def deliver(self, row: Writeback) -> None:
        account = self.accounts.get(str(row.body.get("account")))
        if account is None:
            raise WritebackFailed(f"no МойСклад account {row.body.get('account')!r} in this hub")
        try:
            if row.target in ("pos:approve", "pos:reject"):
                path = f"/cheque/rpc/master/{row.target.removeprefix('pos:')}"
                await self.pos_client(account).call("PUT", path, row.body["put"])
            else:
                # The header keeps our own write from firing the shop's webhooks again.
                await self.api_client(account).call(
                    "PUT",
                    row.target,
                    row.body["put"],
                    headers={WEBHOOK_ECHO_HEADER: self.public_url},
                )
        except MoyskladError as err:
            raise WritebackFailed(str(err), permanent=not err.retryable) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
