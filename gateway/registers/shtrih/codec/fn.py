"""ФН queries: FF01h status, FF03h expiry, FF04h version, FF08h cancel, FF09h registration,
FF0Ah find document, FF39h OFD exchange, FF3Ah/FF3Bh a document as TLV. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar, Self

from gateway.domain import fiscal
from gateway.registers.shtrih.codec.messages import Answer, Cmd, Request, command_bytes
from gateway.registers.shtrih.codec.wire import (
    MONEY,
    U8,
    U16,
    U32,
    Ascii,
    Bool,
    FnDate,
    FnDateTime,
    Layout,
    Rest,
    pack,
    unpack,
)


@dataclass(frozen=True, slots=True)
class FnStatusRequest(Request):
    """FF01h FN status."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_STATUS


@dataclass(frozen=True, slots=True)
class FnStatus(Answer):
    """FF01h answer: phase, current doc, doc data, shift, warnings, last FD time, FN No, last FD."""

    # [PROTO] FF01h pp.42–43 (33 bytes); the same order in pyshtrih and JavaPOS FSReadStatus.

    COMMAND: ClassVar[Cmd] = Cmd.FN_STATUS
    LAYOUT: ClassVar[Layout] = (
        ("life_phase", U8),
        ("current_document", U8),
        ("document_data", U8),
        ("shift_open", Bool()),
        ("warnings", U8),
        ("last_document_datetime", FnDateTime()),
        ("fn_number", Ascii(16)),
        ("last_document_number", U32),
    )
    life_phase: int
    current_document: int
    document_data: int
    shift_open: bool
    warnings: int
    last_document_datetime: dt.datetime | None
    fn_number: str
    last_document_number: int


@dataclass(frozen=True, slots=True)
class FnExpiryRequest(Request):
    """FF03h FN validity."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_EXPIRY


@dataclass(frozen=True, slots=True)
class FnExpiry(Answer):
    """FF03h answer: expiry YY MM DD, [re-registrations left, done]."""

    # [PROTO] v1.17 gives the answer as 6 bytes (the date only); pyshtrih and the vendor's
    # JavaPOS (FSReadExpDate) read the two counters after it, so they are optional here.
    COMMAND: ClassVar[Cmd] = Cmd.FN_EXPIRY
    LAYOUT: ClassVar[Layout] = (
        ("expiry", FnDate()),
        ("registrations_left", U8),
        ("registrations_done", U8),
    )
    OPTIONAL_FROM: ClassVar[int | None] = 1
    expiry: dt.date
    registrations_left: int | None = None
    registrations_done: int | None = None


@dataclass(frozen=True, slots=True)
class FnVersionRequest(Request):
    """FF04h FN firmware version."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_VERSION


@dataclass(frozen=True, slots=True)
class FnVersion(Answer):
    """FF04h answer: version (16 ASCII), type (0 debug, 1 serial)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_VERSION
    LAYOUT: ClassVar[Layout] = (("version", Ascii(16)), ("fn_type", U8))
    version: str
    fn_type: int


@dataclass(frozen=True, slots=True)
class FnCancelDocumentRequest(Request):
    """FF08h cancel the FN document in progress."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_CANCEL_DOCUMENT


@dataclass(frozen=True, slots=True)
class FnCancelDocumentAnswer(Answer):
    """FF08h answer."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_CANCEL_DOCUMENT


@dataclass(frozen=True, slots=True)
class FnFindDocumentRequest(Request):
    """FF0Ah find a fiscal document by number."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_FIND_DOCUMENT
    LAYOUT: ClassVar[Layout] = (("number", U32),)
    number: int = 0


@dataclass(frozen=True, slots=True)
class FnDocument(Answer):
    """FF0Ah answer: type, OFD ack, datetime, FD, FP; a receipt (type 3) adds op(1), total(5)."""

    # [PROTO] FF0Ah p.46 gives type and OFD ack, then "data by document type"; the common head
    # (datetime, FD, FP) and the receipt part follow kkt-shtrih's FNFindDocument.

    COMMAND: ClassVar[Cmd] = Cmd.FN_FIND_DOCUMENT
    document_type: int
    ofd_acknowledged: bool
    datetime: dt.datetime | None
    number: int
    fiscal_sign: int
    receipt_type: int | None = None
    total: int | None = None
    tail: bytes = b""

    _HEAD: ClassVar[Layout] = (
        ("document_type", U8),
        ("ofd_acknowledged", Bool()),
        ("datetime", FnDateTime()),
        ("number", U32),
        ("fiscal_sign", U32),
    )
    _RECEIPT: ClassVar[Layout] = (("receipt_type", U8), ("total", MONEY))

    def to_body(self) -> bytes:
        """Head, then the receipt part for receipts, then any tail."""
        data = pack(self, self._HEAD)
        if self.document_type == fiscal.DOC_TYPE_RECEIPT:
            if self.receipt_type is None or self.total is None:
                raise ValueError("a receipt (type 3) needs receipt_type and total")
            data += pack(self, self._RECEIPT)
        return command_bytes(self.COMMAND) + b"\x00" + data + self.tail

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        """Parse the head; decode the receipt part for receipts, keep the rest as `tail`."""
        data = cls._data_of(body)
        values = unpack(data[:15], cls._HEAD, None)
        tail = data[15:]
        if values["document_type"] == fiscal.DOC_TYPE_RECEIPT and len(tail) >= 6:
            values.update(unpack(tail[:6], cls._RECEIPT, None))
            tail = tail[6:]
        return cls(tail=tail, **values)


@dataclass(frozen=True, slots=True)
class FnOfdStatusRequest(Request):
    """FF39h OFD exchange status."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_OFD_STATUS


@dataclass(frozen=True, slots=True)
class FnOfdStatus(Answer):
    """FF39h answer: exchange status, read flag, count(2), first doc No(4), its datetime(5)."""

    # [PROTO] FF39h p.51 (16 bytes); pyshtrih, kkt-shtrih and JavaPOS FSReadCommStatus agree.

    COMMAND: ClassVar[Cmd] = Cmd.FN_OFD_STATUS
    LAYOUT: ClassVar[Layout] = (
        ("exchange_status", U8),
        ("read_flag", U8),
        ("count", U16),
        ("first_number", U32),
        ("first_datetime", FnDateTime()),
    )
    exchange_status: int
    read_flag: int
    count: int
    first_number: int
    first_datetime: dt.datetime | None


@dataclass(frozen=True, slots=True)
class FnRegistrationRequest(Request):
    """FF09h totals of the last registration ([PROTO] FF09h p.44)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_REGISTRATION


@dataclass(frozen=True, slots=True)
class FnRegistration(Answer):
    """FF09h answer: date-time(5), ИНН(12), registration number(20), tax systems(1), work mode(1),
    then fields that differ between ФФД versions ([PROTO] p.44–45), kept raw."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_REGISTRATION
    LAYOUT: ClassVar[Layout] = (
        ("datetime", FnDateTime()),
        ("inn", Ascii(12)),
        ("registration_number", Ascii(20)),
        ("tax_systems", U8),
        ("work_mode", U8),
        ("rest", Rest()),
    )
    datetime: dt.datetime | None
    inn: str
    registration_number: str
    tax_systems: int
    work_mode: int
    rest: bytes = b""


@dataclass(frozen=True, slots=True)
class FnDocumentTlvRequest(Request):
    """FF3Ah ask the ФН for a fiscal document as TLV: document number(4) ([PROTO] p.50)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_DOCUMENT_TLV
    LAYOUT: ClassVar[Layout] = (("number", U32),)
    number: int = 0


@dataclass(frozen=True, slots=True)
class FnDocumentTlv(Answer):
    """FF3Ah answer: document type (its STLV tag, 2), document length (2) ([PROTO] p.50).

    The `length` bytes of the document then come in FF3Bh blocks.
    """

    COMMAND: ClassVar[Cmd] = Cmd.FN_DOCUMENT_TLV
    LAYOUT: ClassVar[Layout] = (("document_type", U16), ("length", U16))
    document_type: int
    length: int


@dataclass(frozen=True, slots=True)
class FnReadDocumentTlvRequest(Request):
    """FF3Bh read the next TLV block of the document asked for by FF3Ah ([PROTO] p.50)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_READ_DOCUMENT_TLV


@dataclass(frozen=True, slots=True)
class FnDocumentTlvBlock(Answer):
    """FF3Bh answer: TLV data (N bytes) ([PROTO] p.50, 3+N bytes)."""

    COMMAND: ClassVar[Cmd] = Cmd.FN_READ_DOCUMENT_TLV
    # A frame carries at most 255 bytes: FF 3B and the error byte leave 252 for data.
    LAYOUT: ClassVar[Layout] = (("tlv", Rest(252)),)
    tlv: bytes = b""
