"""Entry points: any request or answer to and from its frame body, error answers. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from gateway.domain.errors import ProtocolError
from gateway.registers.shtrih.codec.cash import CashInRequest, CashOutRequest
from gateway.registers.shtrih.codec.clock import (
    ConfirmDateRequest,
    SetDateRequest,
    SetTimeRequest,
)
from gateway.registers.shtrih.codec.fn import (
    FnCancelDocumentRequest,
    FnDocumentTlvRequest,
    FnExpiryRequest,
    FnFindDocumentRequest,
    FnOfdStatusRequest,
    FnReadDocumentTlvRequest,
    FnRegistrationRequest,
    FnStatusRequest,
    FnVersionRequest,
)
from gateway.registers.shtrih.codec.marking import (
    IsmExchangeStatusRequest,
    MarkingAcceptRequest,
    MarkingBindRequest,
    MarkingCheckRequest,
    MarkingStatusRequest,
    NotificationBeginRequest,
    NotificationConfirmRequest,
    NotificationReadRequest,
)
from gateway.registers.shtrih.codec.messages import Answer, Request, command_bytes, split_command
from gateway.registers.shtrih.codec.receipt import (
    CancelReceiptRequest,
    CloseReceiptRequest,
    ContinuePrintRequest,
    FnCloseReceiptV2Request,
    FnOperationV2Request,
    FnSendOperationTlvRequest,
    FnSendTlvRequest,
    OpenReceiptRequest,
    ReturnSaleRequest,
    SaleRequest,
)
from gateway.registers.shtrih.codec.shift import (
    FnBeginCloseShiftRequest,
    FnBeginOpenShiftRequest,
    FnCloseShiftRequest,
    FnOpenShiftRequest,
    FnShiftParamsRequest,
    OpenShiftRequest,
    XReportRequest,
    ZReportRequest,
)
from gateway.registers.shtrih.codec.status import (
    DeviceTypeRequest,
    LongStatusRequest,
    ShortStatusRequest,
)
from gateway.registers.shtrih.codec.tables import (
    MoneyRegisterRequest,
    OperationRegisterRequest,
    WriteTableRequest,
)

A = TypeVar("A", bound=Answer)

_REQUESTS: Mapping[int, type[Request]] = MappingProxyType(
    {
        cls.COMMAND: cls
        for cls in (
            ShortStatusRequest,
            LongStatusRequest,
            DeviceTypeRequest,
            SetTimeRequest,
            SetDateRequest,
            ConfirmDateRequest,
            XReportRequest,
            ZReportRequest,
            OpenShiftRequest,
            OpenReceiptRequest,
            SaleRequest,
            ReturnSaleRequest,
            CloseReceiptRequest,
            CancelReceiptRequest,
            ContinuePrintRequest,
            FnStatusRequest,
            FnExpiryRequest,
            FnVersionRequest,
            FnCancelDocumentRequest,
            FnFindDocumentRequest,
            FnBeginOpenShiftRequest,
            FnOpenShiftRequest,
            FnBeginCloseShiftRequest,
            FnCloseShiftRequest,
            FnSendTlvRequest,
            FnSendOperationTlvRequest,
            FnOfdStatusRequest,
            FnShiftParamsRequest,
            FnRegistrationRequest,
            WriteTableRequest,
            FnCloseReceiptV2Request,
            FnOperationV2Request,
            CashInRequest,
            CashOutRequest,
            MoneyRegisterRequest,
            OperationRegisterRequest,
            FnDocumentTlvRequest,
            FnReadDocumentTlvRequest,
            MarkingCheckRequest,
            MarkingBindRequest,
            IsmExchangeStatusRequest,
            MarkingAcceptRequest,
            MarkingStatusRequest,
            NotificationBeginRequest,
            NotificationReadRequest,
            NotificationConfirmRequest,
        )
    }
)


def encode_request(req: Request) -> bytes:
    """The request's frame body."""
    return req.to_body()


def decode_request(body: bytes) -> Request:
    """Parse any known request (the emulator's side)."""
    command, _ = split_command(body)
    cls = _REQUESTS.get(command)
    if cls is None:
        raise ProtocolError(f"unknown command {command:#x}")
    try:
        return cls.from_body(body)
    except (ValueError, IndexError) as err:
        raise ProtocolError(f"malformed command {command:#x}: {err}") from err


def encode_answer(answer: Answer) -> bytes:
    """The answer's frame body with ERR = 0."""
    return answer.to_body()


def encode_error(command: int, code: int) -> bytes:
    """An error answer: CMD ERR only ([PROTO] p.8); `code` 01h–FFh."""
    if not 0 < code <= 0xFF:
        raise ValueError(f"error code {code} is not 1..255")
    return command_bytes(command) + bytes((code,))


def answer_error_code(body: bytes) -> int:
    """The ERR byte of an answer body."""
    _, rest = split_command(body)
    if not rest:
        raise ProtocolError(f"answer without an error byte: {body.hex()}")
    return rest[0]


def decode_answer(body: bytes, cls: type[A]) -> A:
    """Parse an answer as `cls`; ERR≠0 raises ShtrihError, anything unparsable ProtocolError."""
    try:
        return cls.from_body(body)
    except (ValueError, IndexError) as err:
        raise ProtocolError(f"malformed answer {body.hex()}: {err}") from err


def fields_of(obj: Request | Answer) -> dict[str, Any]:
    """The dataclass fields as a dict (for logs and tests)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
