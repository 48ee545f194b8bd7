"""The hub's domain: orders, routes, boxes and write-backs as frozen values."""

from __future__ import annotations

import enum
import uuid as uuid_mod
from dataclasses import dataclass
from typing import Any

# Fixed forever: job uuids are derived from it, so changing it would print retried orders twice.
_JOB_NAMESPACE = uuid_mod.UUID("5b0f3c1e-7a52-4c8e-9d0e-6f1d2a9c4b17")


class OrderState(enum.Enum):
    """accepted -> sent -> acked -> done | failed | blocked."""

    ACCEPTED = "accepted"  # committed; not yet published to the box
    SENT = "sent"  # published at least once; no ack yet
    ACKED = "acked"  # the box committed the job
    DONE = "done"  # printed: `result` holds the fiscal data
    FAILED = "failed"  # refused by the box or the register: `result` says why
    BLOCKED = "blocked"  # the box stopped on it and waits for a person

    @property
    def finished(self) -> bool:
        return self in (OrderState.DONE, OrderState.FAILED, OrderState.BLOCKED)


PENDING_STATES = (OrderState.ACCEPTED, OrderState.SENT)


class WritebackState(enum.Enum):
    """A write-back row's delivery: `none` on an order means the connector sends nothing."""

    NONE = "none"
    PENDING = "pending"
    DELIVERED = "delivered"


def job_uuid(connector: str, account: str, crm_key: str) -> str:
    """The box job uuid for a CRM's key: the same key always gives the same uuid."""
    return str(uuid_mod.uuid5(_JOB_NAMESPACE, f"{connector}\x1f{account}\x1f{crm_key}"))


@dataclass(frozen=True, slots=True)
class NewOrder:
    """What a connector hands to the store; `request` is the validated ATOL request list."""

    connector: str
    account: str
    crm_key: str
    route_key: str
    request: list[dict[str, Any]]
    meta: dict[str, Any]  # the connector's own data (e.g. callback URL), kept with the order


@dataclass(frozen=True, slots=True)
class Order:
    """One CRM request to fiscalise, as stored."""

    id: int
    connector: str
    account: str
    crm_key: str
    box_id: str
    job_uuid: str
    request: list[dict[str, Any]]
    meta: dict[str, Any]
    state: OrderState
    result: dict[str, Any] | None  # the box's result body, or {"error": {...}} on a refusal
    writeback: WritebackState
    sends: int
    created_ms: int
    updated_ms: int
    finished_ms: int | None


@dataclass(frozen=True, slots=True)
class Accepted:
    """The store's answer to a new order: the order and whether this call created it."""

    order: Order
    created: bool


@dataclass(frozen=True, slots=True)
class Route:
    """A connector-specific key (an ATOL group code, a cashbox id…) -> a box."""

    connector: str
    key: str
    box_id: str


@dataclass(frozen=True, slots=True)
class BoxInfo:
    """A box as the hub knows it: its last status message and when it came."""

    box_id: str
    online: bool
    status: dict[str, Any] | None
    seen_ms: int | None
    last_seq: int


@dataclass(frozen=True, slots=True)
class Writeback:
    """One call back to a CRM, durable until delivered."""

    id: int
    order_id: int
    connector: str
    target: str  # e.g. the callback URL
    body: dict[str, Any]
    attempts: int
    next_ms: int
    created_ms: int
    last_error: str | None
    alerted_ms: int | None  # set once it has waited longer than the alert limit


@dataclass(frozen=True, slots=True)
class Dispatch:
    """An order to publish now with the sequence number allocated for this send."""

    order_id: int
    box_id: str
    job_uuid: str
    request: list[dict[str, Any]]
    seq: int


@dataclass(frozen=True, slots=True)
class WritebackSpec:
    """What a connector wants sent back to its CRM when an order finishes."""

    target: str
    body: dict[str, Any]
