"""An order's outcome -> what is written to the deal, and its delivery through the outbox.

A printed receipt: its link into the deal field, then the move to the "receipt done"
stage (if chosen), then a comment with the fiscal number and link. The field and the move
are idempotent; the comment goes last, so a retry after a failed field or move never
repeats it. A box's refusal becomes a comment naming the reason.
"""

from __future__ import annotations

from typing import Any, TypedDict

from gateway.hub.connectors.base import WritebackFailed
from gateway.hub.connectors.uspacy import mapping
from gateway.hub.connectors.uspacy.client import UspacyClient
from gateway.hub.connectors.uspacy.errors import UspacyApiError
from gateway.hub.connectors.uspacy.settings import Portal
from gateway.hub.model import Order, OrderState, WritebackSpec


class DealUpdate(TypedDict):
    """The outbox row's body."""

    deal_id: int
    fields: dict[str, str]
    move_to: int | None
    comment: str


def build(order: Order, portal: Portal) -> WritebackSpec:
    deal_id = int(order.meta["deal_id"])
    if order.state is OrderState.DONE:
        number, link = mapping.receipt_link(order.result)
        body = DealUpdate(
            deal_id=deal_id,
            fields={portal.rules.receipt_field: link or f"№ {number}"},
            move_to=portal.done_stage,
            comment=mapping.done_comment(number, link),
        )
    else:
        body = DealUpdate(
            deal_id=deal_id,
            fields={},
            move_to=None,
            comment=mapping.refused_comment([mapping.failure_text(order.result)]),
        )
    return WritebackSpec(portal.key, dict(body))


async def deliver(client: UspacyClient, body: dict[str, Any], *, retry: bool) -> None:
    """On a retry the deal is read first, so what an earlier attempt wrote is not repeated."""
    deal_id = int(body["deal_id"])
    fields: dict[str, Any] = dict(body.get("fields") or {})
    move_to = body.get("move_to")
    try:
        if retry:
            deal = await client.deal(deal_id)
            fields = {k: v for k, v in fields.items() if deal.get(k) != v}
            if move_to is not None and mapping.stage_of(deal) == move_to:
                move_to = None
        if fields:
            await client.set_fields(deal_id, fields)
        if move_to is not None:
            await client.move(deal_id, int(move_to))
        await client.comment(deal_id, str(body["comment"]))
    except UspacyApiError as err:
        # 4xx other than 429 will not cure itself: alert at once, still retried.
        raise WritebackFailed(str(err), permanent=not err.transient) from None
