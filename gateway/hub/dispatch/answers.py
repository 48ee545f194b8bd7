"""Acks, results and status from the boxes: each committed to the store before its PUBACK.

Messages are taken in small batches and handled together (different boxes do not wait for
each other's commits); the PUBACKs are then sent in the order the messages came.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from gateway.hub.dispatch.dispatcher import Dispatcher
from gateway.hub.errors import StoreError
from gateway.hub.model import Order
from gateway.hub.store import Store
from gateway.hub.store.orders import Answer, WritebackBuilder
from gateway.ingress.mqtt import Message, MqttLink
from gateway.ingress.topics import split

_LOGGER = logging.getLogger(__name__)

BATCH = 64
STORE_RETRY_S = 1.0


class Answers:
    """Handles everything the boxes send the hub."""

    def __init__(
        self,
        store: Store,
        link: MqttLink,
        dispatcher: Dispatcher,
        builder: WritebackBuilder,
        *,
        prefix: str,
        reask_ms: int,
        on_finished: Callable[[Order], None],
    ) -> None:
        self.store = store
        self.link = link
        self.dispatcher = dispatcher
        self.builder = builder
        self.prefix = prefix
        self.reask_ms = reask_ms
        self.on_finished = on_finished
        self.handled = 0

    async def run(self) -> None:
        while True:
            batch = [await self.link.messages.get()]
            while len(batch) < BATCH and not self.link.messages.empty():
                batch.append(self.link.messages.get_nowait())
            await self._committed(batch)
            for message in batch:
                self.link.ack(message)  # only now: every one of them is in the store
            self.handled += len(batch)

    async def _committed(self, batch: list[Message]) -> None:
        """Handle until the store has it: a database outage delays the PUBACK, never skips it."""
        while True:
            try:
                await self._handle(batch)
                return
            except StoreError as err:
                _LOGGER.warning("%d answer(s) not stored yet: %s", len(batch), err)
                await asyncio.sleep(STORE_RETRY_S)

    async def _handle(self, batch: list[Message]) -> None:
        answers: list[Answer] = []
        for message in batch:
            where = split(message.topic, self.prefix)
            body = _json_object(message.payload)
            if where is None or body is None:
                if message.payload:  # an empty retained status is a deletion, not an error
                    _LOGGER.warning("Ignored a malformed message on %s", message.topic)
                continue
            box, kind, uuid = where
            if kind == "status":
                online = await self.store.fleet.record_status(box, body)
                if self.dispatcher.box_status(box, online):
                    await self.store.orders.send_now(box)
                    self.dispatcher.wake.set()
            elif kind in ("ack", "result"):
                if body.get("uuid") != uuid:
                    _LOGGER.warning(
                        "Ignored %s from %s: the body's uuid is not the topic's", kind, box
                    )
                    continue
                answers.append(Answer(kind, box, uuid, body))
        if not answers:
            return
        # One transaction for the batch: one commit instead of one per message.
        orders = await self.store.orders.record_answers(
            answers, self.builder, reask_ms=self.reask_ms
        )
        for answer, order in zip(answers, orders, strict=True):
            if order is None:
                _LOGGER.info(
                    "%s for unknown job %s from %s (not the hub's)",
                    answer.kind,
                    answer.uuid,
                    answer.box_id,
                )
            elif order.state.finished:
                self.on_finished(order)
            elif answer.kind == "ack" and answer.body.get("status") == "rejected":
                self.dispatcher.wake.set()  # a fresh signature goes out at once


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(payload) if payload else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
