"""Bitrix24 wire shapes [B24]: the check the core posts to PRINT_URL, the answers it reads,
and the REST calls the hub makes. Values decoded from a form are strings."""

from __future__ import annotations

from typing import NotRequired, TypedDict

# Check types the core sends to a REST cashbox with SUPPORTS_FFD105=Y [B24].
INCOME_TYPES = frozenset(
    {"sell", "advancepayment", "prepayment", "fullprepayment", "credit", "creditpayment"}
)
RETURN_TYPES = frozenset(
    {
        "sellreturn",
        "sellreturncash",
        "advancereturn",
        "advancereturncash",
        "prepaymentreturn",
        "prepaymentreturncash",
        "fullprepaymentreturn",
        "fullprepaymentreturncash",
        "creditreturn",
        "creditpaymentreturn",
        "creditpaymentreturncash",
    }
)
CHECK_TYPES = INCOME_TYPES | RETURN_TYPES


class SupplierInfo(TypedDict, total=False):
    phones: list[str]
    name: str
    inn: str


class CheckItem(TypedDict):
    name: str
    base_price: NotRequired[str]
    price: str
    sum: str
    quantity: str
    measure_code: NotRequired[str]
    vat: NotRequired[str]
    vat_sum: NotRequired[str]
    payment_object: NotRequired[str]
    payment_method: NotRequired[str]
    properties: NotRequired[object]
    discount: NotRequired[object]
    barcode: NotRequired[str]
    nomenclature_code: NotRequired[str]
    marking_code: NotRequired[str]
    supplier_info: NotRequired[SupplierInfo]
    additional_params: NotRequired[object]


class CheckPayment(TypedDict):
    type: str  # cash | cashless | advance | credit
    is_cash: NotRequired[str]  # Y | N
    sum: str
    currency: NotRequired[str]
    additional_params: NotRequired[object]


class Check(TypedDict):
    """What PRINT_URL receives (the core's buildCheckQuery)."""

    type: str
    uuid: str  # check|<domain>|<id>
    unique_id: str
    calculated_sign: NotRequired[str]  # income | consumption
    operation: NotRequired[str]  # the same sign again
    date_create: NotRequired[str]
    items: list[CheckItem]
    payments: list[CheckPayment]
    client_email: NotRequired[str]
    client_phone: NotRequired[str]
    total_sum: str
    number_kkm: NotRequired[str]
    service_email: NotRequired[str]
    cashbox_params: NotRequired[dict[str, dict[str, str]]]
    additional_params: NotRequired[object]


class PrintAnswer(TypedDict, total=False):
    UUID: str
    ERRORS: list[str]


class StatusAnswer(TypedDict, total=False):
    """CHECK_URL's answer and the body of `sale.cashbox.check.apply` (with UUID)."""

    UUID: str
    STATUS: str  # WAIT | DONE | ERROR
    ERROR: str
    REG_NUMBER_KKT: str
    FISCAL_DOC_ATTR: str
    FISCAL_DOC_NUMBER: str
    FISCAL_RECEIPT_NUMBER: str
    FN_NUMBER: str
    SHIFT_NUMBER: str
    PRINT_END_TIME: int


class VatRow(TypedDict):
    """One row of `catalog.vat.list`; `rate` is null for «Без НДС»."""

    id: str
    name: str
    rate: str | None


class RestError(TypedDict):
    error: str
    error_description: NotRequired[str]
