"""Pure: the validated tasks of an ATOL request, as the worker runs them.

`FiscalTask` is any one of them (named so it never reads like `asyncio.Task`); `parser.py`
makes them from JSON. Each task knows its ATOL type name and whether it changes the
register's fiscal state (and so must run exactly once).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from gateway.atol.names import RECEIPT_TYPE_NAMES
from gateway.domain import fiscal, marking


class QueryKind(enum.Enum):
    """What a query task asks for, by its ATOL task type."""

    DEVICE_STATUS = "getDeviceStatus"
    SHIFT_STATUS = "getShiftStatus"
    FN_STATUS = "getFnStatus"
    OFD_EXCHANGE_STATUS = "ofdExchangeStatus"
    SHIFT_TOTALS = "getShiftTotals"


class _Kind:
    """`is_fiscal` and `type_name` from two class constants; a task may compute its name."""

    __slots__ = ()
    FISCAL: ClassVar[bool]
    ATOL_TYPE: ClassVar[str] = ""

    @property
    def is_fiscal(self) -> bool:
        """Changes the register's fiscal state, so it runs exactly once."""
        return self.FISCAL

    @property
    def type_name(self) -> str:
        """The ATOL task type."""
        return self.ATOL_TYPE


@dataclass(frozen=True, slots=True)
class ReceiptTask(_Kind):
    """sell, sellReturn, buy, buyReturn. `electronically`: sent to the buyer, not printed."""

    FISCAL: ClassVar[bool] = True
    receipt: fiscal.Receipt

    @property
    def electronically(self) -> bool:
        """Sent to the buyer's e-mail or phone instead of printed."""
        return self.receipt.electronically

    @property
    def type_name(self) -> str:
        """The ATOL task type."""
        return RECEIPT_TYPE_NAMES[self.receipt.type]


@dataclass(frozen=True, slots=True)
class OpenShiftTask(_Kind):
    """openShift; without an operator the configured default is used."""

    FISCAL: ClassVar[bool] = True
    ATOL_TYPE: ClassVar[str] = "openShift"
    operator: fiscal.Operator | None = None


@dataclass(frozen=True, slots=True)
class CloseShiftTask(_Kind):
    """closeShift (Z report)."""

    FISCAL: ClassVar[bool] = True
    ATOL_TYPE: ClassVar[str] = "closeShift"
    operator: fiscal.Operator | None = None


@dataclass(frozen=True, slots=True)
class ReportXTask(_Kind):
    """reportX: prints an X report, no fiscal document."""

    FISCAL: ClassVar[bool] = False
    ATOL_TYPE: ClassVar[str] = "reportX"


@dataclass(frozen=True, slots=True)
class QueryTask(_Kind):
    """A status query. `info` marks getFnInfo, answered like getFnStatus."""

    FISCAL: ClassVar[bool] = False
    kind: QueryKind
    info: bool = False

    @property
    def type_name(self) -> str:
        """The ATOL task type."""
        return "getFnInfo" if self.info else self.kind.value


@dataclass(frozen=True, slots=True)
class ContinuePrintTask(_Kind):
    """continuePrint: finish a document whose printing stopped (paper out)."""

    FISCAL: ClassVar[bool] = False
    ATOL_TYPE: ClassVar[str] = "continuePrint"


@dataclass(frozen=True, slots=True)
class CashTask(_Kind):
    """cashIn / cashOut: `amount` kopecks put into or taken out of the cash drawer.

    Not a fiscal document, but it changes the register's counters, so it runs exactly once.
    """

    FISCAL: ClassVar[bool] = True
    direction: fiscal.CashDirection
    amount: int
    operator: fiscal.Operator | None = None

    @property
    def type_name(self) -> str:
        """The ATOL task type."""
        return self.direction.value


class MarkingAction(enum.Enum):
    """The ATOL marking-code tasks (ATOL driver 10 JSON task names)."""

    BEGIN = "beginMarkingCodeValidation"  # check one code (ФН + ОИСМ)
    STATUS = "getMarkingCodeValidationStatus"  # the answer of the last check
    ACCEPT = "acceptMarkingCode"  # keep the checked code for the receipt
    DECLINE = "declineMarkingCode"  # reject the checked code
    CANCEL = "cancelMarkingCodeValidation"  # abandon the check in progress
    CLEAR = "clearMarkingCodeValidationResult"  # empty the register's table of checked codes
    VALIDATE = "validateMarks"  # check and accept (or reject) several codes
    EXCHANGE_STATUS = "ismExchangeStatus"  # marking state and notifications not yet sent


@dataclass(frozen=True, slots=True)
class CodeCheckParams:
    """One code to check: a `beginMarkingCodeValidation` params object or a `validateMarks`
    element. `quantity` (×10⁶) and `unit` (2108) are given for measured items only."""

    code: marking.MarkingCode
    quantity: int | None = None
    unit: int | None = None


@dataclass(frozen=True, slots=True)
class MarkingTask(_Kind):
    """A marking task: no fiscal document, but BEGIN/ACCEPT/DECLINE/CLEAR/VALIDATE change the
    register's table of checked codes, which the next marked receipt uses."""

    FISCAL: ClassVar[bool] = False
    action: MarkingAction
    checks: tuple[CodeCheckParams, ...] = ()

    @property
    def type_name(self) -> str:
        """The ATOL task type."""
        return self.action.value


FiscalTask = (
    ReceiptTask
    | OpenShiftTask
    | CloseShiftTask
    | ReportXTask
    | QueryTask
    | ContinuePrintTask
    | CashTask
    | MarkingTask
)


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A validated request and its task list as exact JSON, to be stored in the journal.

    In `tasks_json` CRM names are replaced by the ATOL names they map to, so a later change
    of the mapping cannot change a queued receipt.
    """

    uuid: str
    tasks: tuple[FiscalTask, ...]
    tasks_json: str


def format_money(kopecks: int) -> str:
    """Kopecks as rubles with two decimals: 3209 -> "32.09"."""
    sign = "-" if kopecks < 0 else ""
    whole, part = divmod(abs(kopecks), 100)
    return f"{sign}{whole}.{part:02d}"


def describe(task: FiscalTask) -> str:
    """A one-line summary for logs, without personal data (no names, e-mails or phones)."""
    if not isinstance(task, ReceiptTask):
        return task.type_name
    r = task.receipt
    paid = ", ".join(f"{p.type.value} {format_money(p.sum)}" for p in r.payments) or "nothing"
    lines = len(r.items)
    text = (
        f"{task.type_name}: {lines} line{'' if lines == 1 else 's'}, "
        f"total {format_money(r.total)}, paid {paid}"
    )
    if r.change:
        text += f", change {format_money(r.change)}"
    if task.electronically:
        text += ", electronic only"
    return text
