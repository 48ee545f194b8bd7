"""What the hub core asks of a connector."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from gateway.hub.model import Order, Writeback, WritebackSpec


class WritebackFailed(Exception):
    """A write-back attempt failed; it is retried. `permanent` ones are alerted at once."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Connector(Protocol):
    """A CRM connector: its HTTP routes, and its write-back built and delivered."""

    name: str

    def add_routes(self, app: web.Application) -> None:
        """Register the connector's HTTP endpoints on the hub's API server."""

    def build_writeback(self, order: Order) -> WritebackSpec | None:
        """Called inside the transaction that finishes an order; None = nothing to send."""

    async def deliver(self, row: Writeback) -> None:
        """Send one write-back; return when the CRM took it, else raise WritebackFailed."""
