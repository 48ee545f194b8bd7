"""Domain types of fiscal work and the `Register` protocol every driver implements.

Pure: no I/O. Money is integer kopecks; quantities are integer millionths (×10⁶), the
resolution of Shtrih-M FF46h and of ФФД 1.2 fractional quantities.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from gateway.domain.marking import (
    CodeCheck,
    IndustryAttribute,
    IsmExchange,
    MarkingCode,
    MarkingState,
    MarkResult,
)

QTY_SCALE = 1_000_000  # quantities are held ×10⁶


class ReceiptType(enum.IntEnum):
    """Settlement sign, ФФД tag 1054."""

    SELL = 1  # приход
    SELL_RETURN = 2  # возврат прихода
    BUY = 3  # расход
    BUY_RETURN = 4  # возврат расхода


class TaxationType(enum.IntFlag):
    """Tax system, ФФД tag 1055 (bitmask; one system per receipt)."""

    OSN = 1
    USN_INCOME = 2
    USN_INCOME_OUTCOME = 4
    ESN = 16
    PATENT = 32


class Vat(enum.Enum):
    """VAT rate of a line, by its ATOL task name; `rate` is (numerator, denominator) of the tax."""

    NONE = "none"
    VAT0 = "vat0"
    VAT5 = "vat5"
    VAT7 = "vat7"
    VAT10 = "vat10"
    VAT20 = "vat20"
    VAT22 = "vat22"
    VAT105 = "vat105"
    VAT107 = "vat107"
    VAT110 = "vat110"
    VAT120 = "vat120"
    VAT122 = "vat122"

    @property
    def rate(self) -> tuple[int, int]:
        """Fraction of the line amount that is tax (tax included in the price)."""
        return _VAT_FRACTIONS[self]

    def tax_of(self, amount: int) -> int:
        """Tax included in `amount` kopecks, rounded half up."""
        num, den = self.rate
        return (2 * amount * num + den) // (2 * den) if num else 0


# Tax included in a price: vat20 -> 20/120 of the amount, vat120 (calculated rate) the same.
_VAT_FRACTIONS: dict[Vat, tuple[int, int]] = {
    Vat.NONE: (0, 1),
    Vat.VAT0: (0, 1),
    Vat.VAT5: (5, 105),
    Vat.VAT7: (7, 107),
    Vat.VAT10: (10, 110),
    Vat.VAT20: (20, 120),
    Vat.VAT22: (22, 122),
    Vat.VAT105: (5, 105),
    Vat.VAT107: (7, 107),
    Vat.VAT110: (10, 110),
    Vat.VAT120: (20, 120),
    Vat.VAT122: (22, 122),
}


class PaymentMethod(enum.IntEnum):
    """Payment method of a line, ФФД tag 1214."""

    FULL_PREPAYMENT = 1
    PREPAYMENT = 2
    ADVANCE = 3
    FULL_PAYMENT = 4
    PARTIAL_PAYMENT = 5
    CREDIT = 6
    CREDIT_PAYMENT = 7


class PaymentType(enum.Enum):
    """How the buyer paid (ATOL `payments[].type`)."""

    CASH = "cash"
    ELECTRONICALLY = "electronically"
    PREPAID = "prepaid"
    CREDIT = "credit"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Operator:
    """The cashier: ФФД tags 1021 (name) and 1203 (ИНН)."""

    name: str
    vatin: str | None = None


@dataclass(frozen=True, slots=True)
class Buyer:
    """Buyer data, ФФД 1.2 STLV 1256: name (1227) and ИНН (1228)."""

    name: str | None = None
    vatin: str | None = None


@dataclass(frozen=True, slots=True)
class UserAttribute:
    """Additional user attribute of a receipt, ФФД STLV 1084: name (1085), value (1086)."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Item:
    """One receipt line. `amount` may be below price×quantity: the difference is a discount."""

    name: str
    price: int  # kopecks
    quantity: int  # ×10⁶
    amount: int  # kopecks
    vat: Vat
    payment_method: PaymentMethod = PaymentMethod.FULL_PAYMENT
    payment_object: int = 1  # ФФД tag 1212, 1 = товар
    measurement_unit: int = 0  # ФФД tag 2108, 0 = штука
    department: int = 1
    tax_sum: int | None = None  # the client's own VAT of the line (tag 1200), checked ±1 kopeck
    excise: int | None = None  # ФФД tag 1229, kopecks
    country_code: str | None = None  # ФФД tag 1230, ОКСМ digital code, 3 digits
    customs_declaration: str | None = None  # ФФД tag 1231
    additional_attribute: str | None = None  # ФФД tag 1191
    marking: MarkingCode | None = None  # ФФД tag 2000 and its check (marked goods)
    industry: tuple[IndustryAttribute, ...] = ()  # ФФД STLV 1260 (permissive mode)

    @property
    def full_amount(self) -> int:
        """price × quantity rounded half up, in kopecks."""
        return round_qty(self.price * self.quantity)


@dataclass(frozen=True, slots=True)
class Payment:
    """One payment of a receipt."""

    type: PaymentType
    sum: int  # kopecks


@dataclass(frozen=True, slots=True)
class Receipt:
    """A validated receipt ready for a register. `job_id` is the client's uuid."""

    type: ReceiptType
    taxation: TaxationType | None
    items: tuple[Item, ...]
    payments: tuple[Payment, ...]
    operator: Operator | None = None
    client_contact: str | None = None  # ФФД tag 1008, e-mail or phone
    buyer: Buyer | None = None  # ФФД STLV 1256
    electronically: bool = False  # sent to the buyer (1008), not printed on paper
    payments_place: str | None = None  # ФФД tag 1187
    payments_address: str | None = None  # ФФД tag 1009
    additional_attribute: str | None = None  # ФФД tag 1192
    user_attribute: UserAttribute | None = None  # ФФД STLV 1084
    industry: tuple[IndustryAttribute, ...] = ()  # ФФД STLV 1261
    job_id: str | None = None
    # Stable id of this one fiscal document across retries and restarts (job uuid + task index).
    # Cloud backends that keep the client's id (Checkbox) use it to answer "was it made?".
    request_id: str | None = None

    @property
    def total(self) -> int:
        """Receipt total in kopecks: the sum of the line amounts."""
        return sum(i.amount for i in self.items)

    @property
    def paid(self) -> int:
        """Sum of all payments in kopecks."""
        return sum(p.sum for p in self.payments)

    @property
    def marked(self) -> bool:
        """Some item carries a marking code."""
        return any(item.marking is not None for item in self.items)

    @property
    def change(self) -> int:
        """Change given back in cash."""
        return max(0, self.paid - self.total)

    def vat_sums(self) -> dict[Vat, int]:
        """Tax per rate, computed on the sum of each rate's lines."""
        per_rate: dict[Vat, int] = {}
        for item in self.items:
            per_rate[item.vat] = per_rate.get(item.vat, 0) + item.amount
        return {vat: vat.tax_of(amount) for vat, amount in per_rate.items()}


def round_qty(kopecks_x_qty: int) -> int:
    """Round kopecks×10⁶ to kopecks, half up."""
    return (kopecks_x_qty + QTY_SCALE // 2) // QTY_SCALE


@dataclass(frozen=True, slots=True)
class PrintLine:
    """A line as sent to a register: price×quantity is within ±1 kopeck of `amount`."""

    item: Item
    price: int
    quantity: int
    amount: int


def print_lines(item: Item, tolerance: int = 1) -> tuple[PrintLine, ...]:
    """Lines that print `item` exactly on a register that allows |price×qty − sum| ≤ tolerance.

    A discount (amount below price×quantity) is carried by lowering the unit price. When no
    single price fits (e.g. 7 pieces for 1.00), the line is split in two: some units at p and
    the rest at p+1 kopeck, so the printed sums still add up to the amount exactly.
    """
    if abs(item.full_amount - item.amount) <= tolerance:
        return (PrintLine(item, item.price, item.quantity, item.amount),)
    qty = item.quantity
    price = item.amount * QTY_SCALE // qty
    for p in (price, price + 1):
        if abs(round_qty(p * qty) - item.amount) <= tolerance:
            return (PrintLine(item, p, qty, item.amount),)
    # Whole units only can be split; the rest of the quantity rides on the first part.
    units = qty // QTY_SCALE
    if units >= 2:
        # k units at (price+1), the rest at price: amount = price*qty/1e6 + k
        base = round_qty(price * qty)
        k = item.amount - base
        if 0 < k < units:
            first_qty = qty - k * QTY_SCALE
            first = PrintLine(item, price, first_qty, round_qty(price * first_qty))
            second = PrintLine(item, price + 1, k * QTY_SCALE, (price + 1) * k)
            if first.amount + second.amount == item.amount:
                return (first, second)
    raise ValueError(f"cannot print {item.name!r}: amount {item.amount} does not fit the register")


# --- register state ----------------------------------------------------------------------


class ShiftState(enum.Enum):
    """Shift state in ATOL terms."""

    OPENED = "opened"
    CLOSED = "closed"
    EXPIRED = "expired"  # open for more than 24 h: only a Z report is possible


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What identifies a register."""

    model: str
    serial: str
    firmware_version: str
    firmware_build: int
    firmware_date: dt.date | None
    protocol: str = ""
    inn: str = ""


@dataclass(frozen=True, slots=True)
class RegisterStatus:
    """A register's mode right now."""

    mode: int  # protocol mode, low nibble of Shtrih's mode byte
    submode: int
    shift: ShiftState
    receipt_open: bool
    paper_present: bool
    cover_open: bool
    waiting_continue_print: bool
    datetime: dt.datetime | None = None
    shift_number: int | None = None
    raw_mode: int = 0

    @classmethod
    def cloud(
        cls, shift: ShiftState, when: dt.datetime | None, shift_number: int | None
    ) -> RegisterStatus:
        """A software register's status: no paper, cover, print mode or open receipt."""
        return cls(
            mode=0,
            submode=0,
            shift=shift,
            receipt_open=False,
            paper_present=True,
            cover_open=False,
            waiting_continue_print=False,
            datetime=when,
            shift_number=shift_number,
        )


class FnWarning(enum.Enum):
    """ФН warning flags (Shtrih FF01h, bits 0–3)."""

    REPLACE_URGENTLY = "replace_urgently"  # срочная замена КС
    RESOURCE_EXHAUSTED = "resource_exhausted"  # ресурс КС < 30 дней
    MEMORY_ALMOST_FULL = "memory_almost_full"  # память заполнена на 90 %
    OFD_TIMEOUT = "ofd_timeout"  # превышено время ожидания ответа ОФД


@dataclass(frozen=True, slots=True)
class FnStatus:
    """State of the fiscal storage (ФН)."""

    number: str
    life_phase: int
    current_document: int
    shift_open: bool
    warnings: frozenset[FnWarning]
    last_document_number: int
    last_document_datetime: dt.datetime | None
    expiry: dt.date | None = None
    registration_number: str = ""  # РН ККТ of the last registration ("" when unknown)


@dataclass(frozen=True, slots=True)
class OfdStatus:
    """Documents the ФН has not yet got an OFD receipt for."""

    unsent_count: int
    first_unsent_number: int | None
    first_unsent_datetime: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ShiftInfo:
    """Shift state and counters."""

    state: ShiftState
    number: int
    receipts: int = 0
    opened_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class FiscalResult:
    """The fiscal data of a closed document (ATOL `fiscalParams`)."""

    document_number: int  # ФД
    fiscal_sign: int  # ФП
    datetime: dt.datetime | None
    fn_number: str = ""
    registration_number: str = ""
    shift_number: int | None = None
    receipt_number: int | None = None
    total: int | None = None
    fns_url: str = "www.nalog.gov.ru"
    extra: dict[str, str] = field(default_factory=dict)  # backend-specific (receipt link, QR)
    marks: tuple[MarkResult, ...] = ()  # marked items: the check and the bound 2106


@dataclass(frozen=True, slots=True)
class FoundDocument:
    """A document read back from the ФН archive by its number."""

    number: int
    document_type: int  # ФФД document type: 1 registration, 2 shift open, 3 receipt, 5 shift close…
    datetime: dt.datetime | None
    fiscal_sign: int
    ofd_acknowledged: bool
    receipt_type: ReceiptType | None = None
    total: int | None = None


class CashDirection(enum.Enum):
    """Cash put into (внесение) or taken out of (выплата) the drawer; ATOL task names."""

    IN = "cashIn"
    OUT = "cashOut"


@dataclass(frozen=True, slots=True)
class CashResult:
    """What a register answers for a cash-in or cash-out.

    On a Shtrih register it is a non-fiscal document with its own through number; a cloud
    РРО makes a service receipt with a fiscal code (`extra`).
    """

    document_number: int | None
    datetime: dt.datetime | None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OperationTotals:
    """Counters of one operation type in the current shift: documents and money by payment."""

    count: int | None = 0  # None: the register does not count these (cloud cash operations)
    sum: int = 0  # kopecks
    payments: dict[PaymentType, int] = field(default_factory=dict)  # kopecks by payment type


@dataclass(frozen=True, slots=True)
class ShiftTotals:
    """A register's own counters for the current (or just closed) shift.

    `receipts` has every receipt type (zero counters where nothing was made); `cash_in` and
    `cash_out` count cash put in and taken out; `cash_drawer` is the cash the register thinks
    it holds (None when it does not keep one, e.g. a cloud РРО).
    """

    shift_number: int | None
    receipts: dict[ReceiptType, OperationTotals]
    cash_in: OperationTotals = field(default_factory=OperationTotals)
    cash_out: OperationTotals = field(default_factory=OperationTotals)
    cash_drawer: int | None = None


DOC_TYPE_SHIFT_OPEN = 2
DOC_TYPE_RECEIPT = 3
DOC_TYPE_SHIFT_CLOSE = 5


@runtime_checkable
class Register(Protocol):
    """What the worker, monitors and ingress may ask of a fiscal register."""

    @property
    def connected(self) -> bool:
        """True while the link to the register is up."""

    async def connect(self) -> None:
        """Open the link and check that the register answers."""

    async def close(self) -> None:
        """Close the link; waits for an exchange already on the wire."""

    async def device_info(self) -> DeviceInfo:
        """Model, serial and firmware."""

    async def status(self) -> RegisterStatus:
        """Mode, submode, paper and cover."""

    async def fn_status(self) -> FnStatus:
        """ФН number, phase, warnings and the last fiscal document number."""

    async def fn_expiry(self) -> dt.date | None:
        """The ФН's expiry date."""

    async def ofd_status(self) -> OfdStatus:
        """Documents waiting for the OFD."""

    async def shift_info(self) -> ShiftInfo:
        """Shift state, number and receipt count."""

    async def open_shift(self, operator: Operator | None = None) -> FiscalResult:
        """Open a shift; returns the shift-open document."""

    async def close_shift(self, operator: Operator | None = None) -> FiscalResult:
        """Close the shift with a Z report."""

    async def x_report(self) -> None:
        """Print an X report (no fiscal document)."""

    async def cash_operation(
        self,
        direction: CashDirection,
        amount: int,
        operator: Operator | None = None,
        *,
        request_id: str | None = None,
    ) -> CashResult:
        """Cash-in or cash-out of `amount` kopecks (open shift). A backend that keeps the
        client's id (Checkbox) makes at most one operation per `request_id`."""

    async def shift_totals(self) -> ShiftTotals:
        """The register's counters of the current shift; a Z report starts them from zero, so
        the worker reads them just before it."""

    async def print_receipt(self, receipt: Receipt) -> FiscalResult:
        """Register and print a receipt; returns its fiscal data."""

    async def cancel_receipt(self) -> None:
        """Cancel a receipt left open (not fiscalised)."""

    async def find_document(self, number: int) -> FoundDocument:
        """Read a document back from the ФН archive."""

    async def continue_print(self) -> None:
        """Resume printing after paper was loaded."""

    async def read_clock(self) -> dt.datetime:
        """The register's date and time."""

    async def set_clock(self, when: dt.datetime) -> None:
        """Set the register's date and time (shift closed only)."""

    async def settle(self) -> RegisterStatus:
        """After an ambiguous failure: finish any exchange left pending, then return the status.

        Never re-sends a command. Shtrih: ENQ — an ACK means an answer is waiting; it is read
        and discarded (the caller reconciles by document numbers).
        """


@runtime_checkable
class KeyedRegister(Register, Protocol):
    """A register that stores the client's id of every receipt (a cloud РРО such as Checkbox).

    Recovery asks it by id instead of comparing document numbers: the backend refuses a
    second receipt with the same id, so "not found" proves the receipt was never made.
    """

    async def find_receipt(
        self, request_id: str, *, expected: Receipt | None = None
    ) -> FiscalResult | None:
        """The fiscal data of the receipt made with `request_id`; None when there is none.

        `expected` is the receipt the job meant to make: a receipt under that id with other
        contents raises `OutcomeUnproven`.

        Waits while the backend is still fiscalising it; a receipt the backend refused
        raises a non-transient `RegisterRefused`.
        """


@runtime_checkable
class MarkingRegister(Register, Protocol):
    """A register that checks and binds marking codes (a ФФД 1.2 register with a ФН-М).

    `print_receipt` checks every marked item's code itself before it opens the receipt (and
    refuses the receipt with `Refusal.MARKING` when an item's policy refuses the answer), binds
    it to its line, and returns each item's outcome in `FiscalResult.marks`.
    `cancel_receipt` also empties the register's table of checked codes.
    """

    async def check_code(
        self, code: MarkingCode, *, quantity: int | None = None, unit: int | None = None
    ) -> CodeCheck:
        """Check one code in the ФН and with the ОИСМ (may take the ОИСМ's whole timeout).
        `quantity` (×10⁶) and `unit` (tag 2108) go with a measured item's check."""

    async def accept_code(self, accept: bool) -> int | None:
        """Accept (keep for the receipt) or reject the code just checked; the 2106 the
        register stored, None when the register does not say."""

    async def clear_codes(self) -> bool:
        """Empty the table of checked codes; False when the register would not (a register
        without this command is left alone)."""

    async def marking_state(self) -> MarkingState:
        """The marking check and notification state."""

    async def ism_exchange(self) -> IsmExchange:
        """Notifications waiting for the ОИСМ."""

    async def recorded_marks(self, number: int) -> list[tuple[bytes | None, int]]:
        """Document `number` from the ФН archive: (2000 code or None, 2106) of each item that
        carries a 2106, in item order."""


def receipt_lines(items: Sequence[Item], tolerance: int = 1) -> list[PrintLine]:
    """All print lines of a receipt's items."""
    return [line for item in items for line in print_lines(item, tolerance)]
