"""МойСклад wire shapes [MOYSKLAD] (JSON API 1.2) and [MOYSKLAD-POS] (POS API 1.0).

Money is in kopecks (floats on the wire); `discount` is a percentage; `vat` a whole percent.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class Meta(TypedDict):
    href: str
    type: str
    mediaType: NotRequired[str]
    metadataHref: NotRequired[str]


class MetaRef(TypedDict):
    meta: Meta


class Assortment(TypedDict):
    meta: Meta
    name: str
    paymentItemType: NotRequired[str]  # GOOD | SERVICE | WORK | …
    trackingType: NotRequired[str]  # NOT_TRACKED unless the goods are marked


class Position(TypedDict):
    meta: NotRequired[Meta]
    quantity: float
    price: float  # kopecks
    discount: NotRequired[float]  # %
    vat: int
    vatEnabled: NotRequired[bool]
    assortment: Assortment
    trackingCodes: NotRequired[list[object]]  # [{cis, type, trackingCodes?}] (JSON API)
    marks: NotRequired[list[object]]  # [{cis}] (POS API)
    gtd: NotRequired[dict[str, str]]
    country: NotRequired[MetaRef]


class Agent(TypedDict, total=False):
    meta: Meta
    name: str
    email: str
    phone: str


class Rows(TypedDict):
    meta: Meta
    rows: NotRequired[list[Position]]


class Document(TypedDict):
    """A customer order or a retail demand, read with expand=positions.assortment,agent."""

    id: str
    meta: Meta
    name: NotRequired[str]
    sum: NotRequired[float]
    vatEnabled: NotRequired[bool]
    vatIncluded: NotRequired[bool]
    taxSystem: NotRequired[str]
    state: NotRequired[MetaRef]
    agent: NotRequired[Agent]
    positions: NotRequired[Rows]
    attributes: NotRequired[list[dict[str, object]]]
    cashSum: NotRequired[float]  # retail demands only
    noCashSum: NotRequired[float]
    qrSum: NotRequired[float]
    prepaymentCashSum: NotRequired[float]
    prepaymentNoCashSum: NotRequired[float]


class WebhookEvent(TypedDict):
    meta: Meta
    action: str  # CREATE | UPDATE | DELETE
    accountId: str
    updatedFields: NotRequired[list[str]]


class WebhookBody(TypedDict):
    """POST <url>?requestId=<uuid>: the same requestId on each retry."""

    auditContext: NotRequired[dict[str, object]]
    events: list[WebhookEvent]


class AttributeValue(TypedDict):
    meta: Meta
    value: str


class Cheque(TypedDict):
    """The fiscal data in a POS approve."""

    fiscal: bool
    online: bool
    printed: bool
    number: str
    sum: float
    fnNumber: str
    fiscalDocSign: str
    fiscalDocNumber: str
    time: str  # "YYYY-MM-DD HH:MM:SS"


class ApproveBody(TypedDict):
    meta: Meta
    cheque: Cheque
    chequePrinter: dict[str, object]
    taxSystem: NotRequired[str]
    retailShift: MetaRef


class RejectBody(TypedDict):
    meta: Meta
    fiscalErrMsg: str


class ErrorItem(TypedDict, total=False):
    error: str
    code: int
    moreInfo: str
    parameter: str


class ErrorBody(TypedDict):
    errors: list[ErrorItem]
