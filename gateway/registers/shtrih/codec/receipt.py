"""Receipts: legacy 8Dh/80h/82h/85h/88h/B0h, FF46h lines, FF0Ch/FF4Dh TLVs, FF45h close. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from gateway.domain import fiscal
from gateway.registers.shtrih.codec.messages import Answer, Cmd, Request, operator_only
from gateway.registers.shtrih.codec.wire import (
    MONEY,
    QTY5,
    QTY6,
    U8,
    U32,
    FnDateTime,
    Int,
    Layout,
    OptMoney,
    Rest,
    Text,
    Tuple,
)

MAX_TLV_BLOCK = 249  # FF0Ch: 255 (one LEN byte) - FF 0C - password(4)


@dataclass(frozen=True, slots=True)
class OpenReceiptRequest(Request):
    """8Dh open receipt: 0 sale, 1 buy, 2 sale return, 3 buy return."""

    COMMAND: ClassVar[Cmd] = Cmd.OPEN_RECEIPT
    LAYOUT: ClassVar[Layout] = (("receipt_type", U8),)
    receipt_type: int = 0


@dataclass(frozen=True, slots=True)
class OpenReceiptAnswer(Answer):
    """8Dh answer."""

    COMMAND: ClassVar[Cmd] = Cmd.OPEN_RECEIPT
    LAYOUT: ClassVar[Layout] = operator_only()
    operator: int = 30


_LINE_LAYOUT: Layout = (
    ("quantity", QTY5),
    ("price", MONEY),
    ("department", U8),
    ("taxes", Tuple(U8, 4)),
    ("text", Text(40)),
)


@dataclass(frozen=True, slots=True)
class SaleRequest(Request):
    """80h sale line: qty ×1000, price, department, tax groups 1..4, text(40)."""

    COMMAND: ClassVar[Cmd] = Cmd.SALE
    LAYOUT: ClassVar[Layout] = _LINE_LAYOUT
    quantity: int = 1000
    price: int = 0
    department: int = 1
    taxes: tuple[int, int, int, int] = (0, 0, 0, 0)
    text: str = ""


@dataclass(frozen=True, slots=True)
class SaleAnswer(Answer):
    """80h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.SALE
    LAYOUT: ClassVar[Layout] = operator_only()
    operator: int = 30


@dataclass(frozen=True, slots=True)
class ReturnSaleRequest(Request):
    """82h sale-return line, same layout as 80h."""

    COMMAND: ClassVar[Cmd] = Cmd.RETURN_SALE
    LAYOUT: ClassVar[Layout] = _LINE_LAYOUT
    quantity: int = 1000
    price: int = 0
    department: int = 1
    taxes: tuple[int, int, int, int] = (0, 0, 0, 0)
    text: str = ""


@dataclass(frozen=True, slots=True)
class ReturnSaleAnswer(Answer):
    """82h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.RETURN_SALE
    LAYOUT: ClassVar[Layout] = operator_only()
    operator: int = 30


@dataclass(frozen=True, slots=True)
class CloseReceiptRequest(Request):
    """85h close: 4 payment sums (cash first), discount % ×100 (int16), tax groups, text(40)."""

    COMMAND: ClassVar[Cmd] = Cmd.CLOSE_RECEIPT
    LAYOUT: ClassVar[Layout] = (
        ("payments", Tuple(MONEY, 4)),
        ("discount_percent_x100", Int(2, signed=True)),
        ("taxes", Tuple(U8, 4)),
        ("text", Text(40)),
    )
    payments: tuple[int, int, int, int] = (0, 0, 0, 0)
    discount_percent_x100: int = 0
    taxes: tuple[int, int, int, int] = (0, 0, 0, 0)
    text: str = ""


@dataclass(frozen=True, slots=True)
class CloseReceiptAnswer(Answer):
    """85h answer: op, change(5)."""

    COMMAND: ClassVar[Cmd] = Cmd.CLOSE_RECEIPT
    LAYOUT: ClassVar[Layout] = (("operator", U8), ("change", MONEY))
    operator: int = 30
    change: int = 0


@dataclass(frozen=True, slots=True)
class CancelReceiptRequest(Request):
    """88h cancel the open receipt."""

    COMMAND: ClassVar[Cmd] = Cmd.CANCEL_RECEIPT


@dataclass(frozen=True, slots=True)
class CancelReceiptAnswer(Answer):
    """88h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.CANCEL_RECEIPT
    LAYOUT: ClassVar[Layout] = operator_only()
    operator: int = 30


@dataclass(frozen=True, slots=True)
class ContinuePrintRequest(Request):
    """B0h continue printing after paper was loaded."""

    COMMAND: ClassVar[Cmd] = Cmd.CONTINUE_PRINT


@dataclass(frozen=True, slots=True)
class ContinuePrintAnswer(Answer):
    """B0h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.CONTINUE_PRINT
    LAYOUT: ClassVar[Layout] = operator_only()
    operator: int = 30


@dataclass(frozen=True, slots=True)
class FnSendTlvRequest(Request):
    """FF0Ch TLV data for the open document (tag u16, len u16, value)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_SEND_TLV
    # [PROTO] FF0Ch allows "мах 250 байт", but FF 0C + password leave 249 in a 255-byte frame.
    LAYOUT: ClassVar[Layout] = (("tlv", Rest(MAX_TLV_BLOCK)),)
    tlv: bytes = b""


@dataclass(frozen=True, slots=True)
class FnSendTlvAnswer(Answer):
    """FF0Ch answer."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_SEND_TLV


@dataclass(frozen=True, slots=True)
class FnSendOperationTlvRequest(Request):
    """FF4Dh TLV data bound to the last operation (FF46h) of the open receipt: item tags."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_SEND_OPERATION_TLV
    LAYOUT: ClassVar[Layout] = (("tlv", Rest(MAX_TLV_BLOCK)),)
    tlv: bytes = b""


@dataclass(frozen=True, slots=True)
class FnSendOperationTlvAnswer(Answer):
    """FF4Dh answer."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_SEND_OPERATION_TLV


@dataclass(frozen=True, slots=True)
class FnCloseReceiptV2Request(Request):
    """FF45h close receipt: 16 payment sums, rounding, 6 tax sums, tax system, text(≤64)."""

    # [PROTO] FF45h pp.52–53 (182 bytes with 64 bytes of text): sums 1 cash, 2–13 reported to
    # the OFD as electronic, 14 prepayment, 15 credit, 16 counter-provision; rounding in kopecks;
    # taxes 1..6 = VAT 20 (18)%, 10%, 0% turnover, no-VAT turnover, 20/120, 10/110; tax system 1055.

    COMMAND: ClassVar[Cmd] = Cmd.FN_CLOSE_RECEIPT_V2
    LAYOUT: ClassVar[Layout] = (
        ("payments", Tuple(MONEY, 16)),
        ("rounding", U8),
        ("taxes", Tuple(MONEY, 6)),
        ("tax_system", U8),
        ("text", Text(None, 64)),
    )
    payments: tuple[int, ...] = (0,) * 16
    rounding: int = 0
    taxes: tuple[int, ...] = (0,) * 6
    tax_system: int = 1
    text: str = ""


@dataclass(frozen=True, slots=True)
class FnCloseReceiptV2Answer(Answer):
    """FF45h answer: change(5), FD(4), FP(4), [datetime(5)] ([PROTO] FF45h "16 (21) байт")."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_CLOSE_RECEIPT_V2
    LAYOUT: ClassVar[Layout] = (
        ("change", MONEY),
        ("document_number", U32),
        ("fiscal_sign", U32),
        ("datetime", FnDateTime()),
    )
    OPTIONAL_FROM: ClassVar[int | None] = 3
    change: int
    document_number: int
    fiscal_sign: int
    datetime: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class FnOperationV2Request(Request):
    """FF46h receipt line: operation, qty ×10⁶, price, sum, tax, rate, dept, 1214, 1212, name."""

    # [PROTO] FF46h pp.53–54 (160 bytes with a 128-byte name); sum FF×5: the register computes
    # price × quantity (a given sum may differ from it by ±1 kopeck); tax FF×5: not given.

    COMMAND: ClassVar[Cmd] = Cmd.FN_OPERATION_V2
    LAYOUT: ClassVar[Layout] = (
        ("operation", U8),
        ("quantity", QTY6),
        ("price", MONEY),
        ("amount", OptMoney()),
        ("tax_amount", OptMoney()),
        ("tax_rate", U8),
        ("department", U8),
        ("payment_method", U8),
        ("payment_object", U8),
        ("name", Text(None, 128)),
    )
    operation: int = 1
    quantity: int = 1_000_000
    price: int = 0
    amount: int | None = None
    tax_amount: int | None = None
    tax_rate: int = 8
    department: int = 1
    payment_method: int = 4
    payment_object: int = 1
    name: str = ""


@dataclass(frozen=True, slots=True)
class FnOperationV2Answer(Answer):
    """FF46h answer (empty)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_OPERATION_V2


# FF46h tax-rate byte: bits 01h 20%, 02h 10%, 04h 0%, 08h no VAT, 10h 20/120, 20h 10/110
# ([PROTO] FF46h, pyshtrih); the 2025–2026 rates 81h–CCh follow the vendor's JavaPOS
# (getVatCodeShtrih, February 2026; its Shtrih-Nano branch uses 90h/A0h for 22% and 22/122).
VAT_TO_TAX_RATE: Mapping[fiscal.Vat, int] = MappingProxyType(
    {
        fiscal.Vat.VAT20: 0x01,
        fiscal.Vat.VAT10: 0x02,
        fiscal.Vat.VAT0: 0x04,
        fiscal.Vat.NONE: 0x08,
        fiscal.Vat.VAT120: 0x10,
        fiscal.Vat.VAT110: 0x20,
        fiscal.Vat.VAT5: 0x81,
        fiscal.Vat.VAT7: 0x82,
        fiscal.Vat.VAT105: 0x84,
        fiscal.Vat.VAT107: 0x88,
        fiscal.Vat.VAT22: 0xCB,
        fiscal.Vat.VAT122: 0xCC,
    }
)
TAX_RATE_TO_VAT: Mapping[int, fiscal.Vat] = MappingProxyType(
    {v: k for k, v in VAT_TO_TAX_RATE.items()}
)
