"""The hub's durable state: orders, routes, boxes, the write-back outbox, tokens, leases.

`Store` is the only entry: `await Store.open(url)` creates missing tables, then
`store.orders`, `store.fleet`, `store.outbox` and `store.access` hold the operations.
"""

from __future__ import annotations

from gateway.hub.store.store import Store

__all__ = ["Store"]
