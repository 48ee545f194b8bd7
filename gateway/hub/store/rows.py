"""Database rows -> the hub's frozen domain values."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row

from gateway.hub.model import BoxInfo, Order, OrderState, Writeback, WritebackState


def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def loads_obj(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def order(row: Row[Any]) -> Order:
    m = row._mapping
    return Order(
        id=m["id"],
        connector=m["connector"],
        account=m["account"],
        crm_key=m["crm_key"],
        box_id=m["box_id"],
        job_uuid=m["job_uuid"],
        request=json.loads(m["request_json"]),
        meta=json.loads(m["meta_json"]),
        state=OrderState(m["state"]),
        result=loads_obj(m["result_json"]),
        writeback=WritebackState(m["writeback"]),
        sends=m["sends"],
        created_ms=m["created_ms"],
        updated_ms=m["updated_ms"],
        finished_ms=m["finished_ms"],
    )


def box(row: Row[Any]) -> BoxInfo:
    m = row._mapping
    return BoxInfo(
        box_id=m["box_id"],
        online=bool(m["online"]),
        status=loads_obj(m["status_json"]),
        seen_ms=m["seen_ms"],
        last_seq=m["seq"],
    )


def writeback(row: Row[Any]) -> Writeback:
    m = row._mapping
    return Writeback(
        id=m["id"],
        order_id=m["order_id"],
        connector=m["connector"],
        target=m["target"],
        body=json.loads(m["body_json"]),
        attempts=m["attempts"],
        next_ms=m["next_ms"],
        created_ms=m["created_ms"],
        last_error=m["last_error"],
        alerted_ms=m["alerted_ms"],
    )
