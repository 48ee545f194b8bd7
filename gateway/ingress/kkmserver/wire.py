"""Pure: KKMServer's command names, statuses and answer shapes [KKMSERVER]."""

from __future__ import annotations

import enum
from typing import Final, TypedDict

from gateway.ingress.kkmserver.marking import CodeValidation


class Command(enum.StrEnum):
    """The commands this box runs; any other is refused naming `Command`."""

    LIST = "List"
    GET_DATA_KKT = "GetDataKKT"
    OPEN_SHIFT = "OpenShift"
    CLOSE_SHIFT = "CloseShift"
    X_REPORT = "XReport"
    REGISTER_CHECK = "RegisterCheck"
    GET_REZULT = "GetRezult"
    DEPOSITING_CASH = "DepositingCash"
    PAYMENT_CASH = "PaymentCash"
    VALIDATION_MARKING_CODE = "ValidationMarkingCode"


class Status(enum.IntEnum):
    """`Status` of an answer [KKMSERVER]."""

    OK = 0
    RUNNING = 1
    ERROR = 2
    NOT_FOUND = 3
    NOT_STARTED = 4


# KKMServer commands that exist but are not run by this box, named in the refusal.
KNOWN_UNSUPPORTED: Final = frozenset(
    {
        "ZReport",
        "GetDataCheck",
        "GetCounters",
        "KkmRegOfd",
        "OpenCashDrawer",
        "PrintDocument",
        "GetLineLength",
        "PayByPaymentCard",
        "ReturnPaymentByPaymentCard",
        "Settlement",
        "GetServerData",
        "OnOffUnut",
        "OfdReport",
    }
)


class ListUnit(TypedDict):
    """One device of a `List` answer."""

    NumDevice: int
    IdDevice: str
    OnOff: bool
    Active: bool
    TypeDevice: str
    IdTypeDevice: str
    NameDevice: str
    KktNumber: str
    INN: str
    TaxVariant: str
    PaperOver: bool
    FN_IsFiscal: bool


class KktInfo(TypedDict, total=False):
    """`Info` of a `GetDataKKT` answer."""

    KktNumber: str
    FnNumber: str
    RegNumber: str
    NameDevice: str
    Firmware_Version: str
    SessionState: int  # 1 closed, 2 open, 3 open for more than 24 h
    PaperOver: bool
    FN_IsFiscal: bool
    FN_DateEnd: str | None
    FN_MemOverflowl: bool
    OFD_Error: str
    OFD_NumErrorDoc: int
    OFD_DateErrorDoc: str | None


class Answer(TypedDict, total=False):
    """Every answer of `/Execute`; a command fills the fields it has [KKMSERVER]."""

    Command: str
    IdCommand: str
    NumDevice: int
    Status: int
    Error: str
    Warning: str
    Message: str
    # receipts, shifts, cash
    CheckNumber: int
    SessionNumber: int
    SessionCheckNumber: int
    FiscalSign: str
    QRCode: str
    URL: str
    Amount: float
    Cash: float
    ElectronicPayment: float
    AdvancePayment: float
    Credit: float
    CashProvision: float
    # GetDataKKT
    LineLength: int
    Info: KktInfo
    # List
    ListUnit: list[ListUnit]
    # RegisterCheck with marked lines, ValidationMarkingCode: each code's check
    MarkingCodeValidation: list[CodeValidation]
    # GetRezult: the answer of the command asked about
    Rezult: Answer
