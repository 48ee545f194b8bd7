"""Uspacy's wire shapes, as its public API documents them [USPACY].

Only the members the connector reads are typed; Uspacy sends more, and that is ignored here
because the deal and its product list are always re-read, never taken from an event.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class Tokens(TypedDict):
    """`app_sign_in` and `refresh_token` answer."""

    jwt: str
    refreshToken: str
    expireInSeconds: int


class Stage(TypedDict):
    id: int
    title: str
    stage_code: NotRequired[str]


class Funnel(TypedDict):
    id: int
    title: str
    stages: list[Stage]


class ProductLine(TypedDict):
    """One line of `entity-product-lists.list_products[]`; prices in major units (UAH)."""

    id: int
    title: str
    price: float | str
    quantity: float | str
    discount_value: NotRequired[float | str | None]
    discount_type: NotRequired[str | None]  # "relative" (per cent) | "absolute" (per unit)
    tax_rate: NotRequired[float | str | None]
    is_tax_included: NotRequired[int | bool | None]
    amount: NotRequired[float | str | None]


class ProductList(TypedDict):
    id: int
    entity_type: str
    entity_id: int
    list_products: list[ProductLine]


class Comment(TypedDict):
    entityType: str
    entityId: int
    message: str


class WebhookEvent(TypedDict, total=False):
    """A stage-change event; only `data.entity.id` is read, as a hint to re-read that deal."""

    type: str
    data: dict[str, Any]


# The deal is a plain mapping: most of what matters lives in the portal's own field codes.
Deal = dict[str, Any]
