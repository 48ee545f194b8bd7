"""The emulated register's command handler: modes, documents, clock rules, refusals.

Every command runs through `machine.execute`, and after each one the state is saved (a
change-log line) and loaded back from the real files and must come back equal. Requests are built with the driver's
codec and read by the emulator's own protocol module, answers the other way round: each step
also checks that the two independent readings of [PROTO] agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.domain.fiscal import Vat
from gateway.registers.emulator import fn, machine, protocol
from gateway.registers.emulator.clock import ClockState
from gateway.registers.emulator.refusals import Fn, Kkt
from gateway.registers.emulator.state import EmulatorState, StateStore, fresh_state, load_state
from gateway.registers.shtrih import codec

H0 = dt.datetime(2026, 3, 2, 10, 0, 0)
STEP = dt.timedelta(seconds=5)
ANSWER_OF: dict[int, type[codec.Answer]] = {
    cls.COMMAND: cls
    for cls in vars(codec).values()
    if isinstance(cls, type) and issubclass(cls, codec.Answer) and cls is not codec.Answer
}


class Register:
    """A state plus a host clock; every step is saved and reloaded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.host = H0
        self.state: EmulatorState = fresh_state(H0)
        self.store = StateStore(path, self.state)

    def run(self, request: codec.Request, *, after: dt.timedelta = STEP) -> machine.Outcome:
        self.host += after
        outcome = machine.execute(
            self.state, protocol.parse(codec.encode_request(request)), self.host
        )
        self.store.save(outcome.state)
        assert load_state(self.path) == outcome.state
        self.state = outcome.state
        return outcome

    def ok(self, request: codec.Request, *, after: dt.timedelta = STEP) -> codec.Answer:
        outcome = self.run(request, after=after)
        assert outcome.error == 0, f"{type(request).__name__} refused with {outcome.error:#04x}"
        assert outcome.answer is not None
        body = protocol.answer(request.COMMAND, outcome.answer)
        return codec.decode_answer(body, ANSWER_OF[request.COMMAND])

    def error(self, request: codec.Request, *, after: dt.timedelta = STEP) -> int:
        before = self.state
        outcome = self.run(request, after=after)
        assert outcome.answer is None
        assert outcome.state.documents == before.documents
        return outcome.error

    @property
    def mode(self) -> int:
        return machine.mode_of(self.state, self.state.rtc(self.host)) & 0x0F


@pytest.fixture
def reg(tmp_path: Path) -> Register:
    return Register(tmp_path / "emulator.state")


def line(
    name: str = "Хлеб",
    price: int = 5000,
    qty: int = 2_000_000,
    amount: int | None = 10000,
    operation: int = 1,
) -> codec.FnOperationV2Request:
    return codec.FnOperationV2Request(
        operation=operation,
        quantity=qty,
        price=price,
        amount=amount,
        tax_amount=None,
        tax_rate=codec.VAT_TO_TAX_RATE[Vat.VAT20],
        department=1,
        payment_method=4,
        payment_object=1,
        name=name,
    )


def close_v2(cash: int = 0, card: int = 0, rounding: int = 0) -> codec.FnCloseReceiptV2Request:
    payments = (cash, card) + (0,) * 14
    return codec.FnCloseReceiptV2Request(
        payments=payments, rounding=rounding, taxes=(0,) * 6, tax_system=1, text=""
    )


def close_85(cash: int = 0, card: int = 0) -> codec.CloseReceiptRequest:
    return codec.CloseReceiptRequest(
        payments=(cash, card, 0, 0), discount_percent_x100=0, taxes=(0, 0, 0, 0), text=""
    )


def sale_80(price: int = 1500, qty: int = 3000, text: str = "Молоко") -> codec.SaleRequest:
    return codec.SaleRequest(quantity=qty, price=price, department=1, taxes=(1, 0, 0, 0), text=text)


def return_82(price: int = 1500, qty: int = 1000) -> codec.ReturnSaleRequest:
    return codec.ReturnSaleRequest(
        quantity=qty, price=price, department=1, taxes=(2, 0, 0, 0), text="Возврат"
    )


# --- modes ------------------------------------------------------------------------------


def _to_mode(reg: Register, mode: int) -> None:
    if mode in (2, 3, 8):
        reg.ok(codec.OpenShiftRequest())
    if mode == 3:
        reg.host += dt.timedelta(hours=24, minutes=1)
    if mode == 8:
        reg.ok(codec.OpenReceiptRequest(receipt_type=0))
    if mode == 6:
        reg.ok(codec.SetDateRequest(date=reg.state.rtc(reg.host).date()))
    assert reg.mode == mode


def _confirm_today(reg: Register) -> codec.Request:
    return codec.ConfirmDateRequest(date=reg.state.rtc(reg.host).date())


MODES = (4, 2, 3, 8, 6)
OK = 0
# command -> expected result in modes 4, 2, 3, 8, 6 ([GUIDE] pp.74–76).
TABLE: list[tuple[str, Callable[[Register], codec.Request], tuple[int, int, int, int, int]]] = [
    ("10h status", lambda r: codec.ShortStatusRequest(), (OK, OK, OK, OK, OK)),
    ("11h status", lambda r: codec.LongStatusRequest(), (OK, OK, OK, OK, OK)),
    ("FF01h FN status", lambda r: codec.FnStatusRequest(), (OK, OK, OK, OK, OK)),
    ("FF39h OFD", lambda r: codec.FnOfdStatusRequest(), (OK, OK, OK, OK, OK)),
    ("E0h open shift", lambda r: codec.OpenShiftRequest(), (OK, 0x73, 0x73, 0x4A, 0xC0)),
    ("FF41h begin open", lambda r: codec.FnBeginOpenShiftRequest(), (OK, 0x73, 0x73, 0x4A, 0xC0)),
    ("40h X", lambda r: codec.XReportRequest(), (0x73, OK, OK, 0x4A, 0xC0)),
    ("41h Z", lambda r: codec.ZReportRequest(), (0x73, OK, OK, 0x4A, 0xC0)),
    ("FF42h begin close", lambda r: codec.FnBeginCloseShiftRequest(), (0x73, OK, OK, 0x4A, 0xC0)),
    (
        "8Dh open receipt",
        lambda r: codec.OpenReceiptRequest(receipt_type=0),
        (0x73, OK, 0x4E, 0x4A, 0xC0),
    ),
    ("80h sale", lambda r: sale_80(), (0x73, OK, 0x4E, OK, 0xC0)),
    ("FF46h line", lambda r: line(), (0x73, OK, 0x4E, OK, 0xC0)),
    ("85h close", lambda r: close_85(), (0x73, 0x73, 0x73, OK, 0xC0)),
    ("FF45h close", lambda r: close_v2(), (0x73, 0x73, 0x73, OK, 0xC0)),
    ("88h cancel", lambda r: codec.CancelReceiptRequest(), (0x73, 0x73, 0x73, OK, 0xC0)),
    ("21h time", lambda r: codec.SetTimeRequest(time=dt.time(12, 0)), (OK, 0x73, 0x73, 0x4A, 0xC0)),
    (
        "22h date",
        lambda r: codec.SetDateRequest(date=r.state.rtc(r.host).date()),
        (OK, 0x73, 0x73, 0x4A, OK),
    ),
    ("23h confirm", _confirm_today, (0x73, 0x73, 0x73, 0x4A, OK)),
]


@pytest.mark.parametrize(("name", "make", "expected"), TABLE, ids=[t[0] for t in TABLE])
@pytest.mark.parametrize("mode_index", range(len(MODES)), ids=[f"mode{m}" for m in MODES])
def test_mode_table(
    reg: Register,
    name: str,
    make: Callable[[Register], codec.Request],
    expected: tuple[int, ...],
    mode_index: int,
) -> None:
    _to_mode(reg, MODES[mode_index])
    outcome = reg.run(make(reg), after=dt.timedelta(0))
    assert outcome.error == expected[mode_index], (
        f"{name} in mode {MODES[mode_index]}: {outcome.error:#04x}"
    )


def test_unknown_password_refused(reg: Register) -> None:
    assert reg.error(codec.ShortStatusRequest(password=31)) == Kkt.WRONG_PASSWORD
    assert reg.error(codec.FnStatusRequest(password=1)) == Kkt.WRONG_PASSWORD
    assert reg.error(codec.ZReportRequest(password=5)) == Kkt.WRONG_PASSWORD
    status = reg.ok(codec.ShortStatusRequest(password=3))
    assert isinstance(status, codec.ShortStatus)
    assert status.operator == 3


# --- a whole shift ----------------------------------------------------------------------


def test_full_shift_every_receipt_type(reg: Register) -> None:
    opened = reg.ok(codec.FnBeginOpenShiftRequest())
    assert isinstance(opened, codec.FnBeginOpenShiftAnswer)
    reg.ok(codec.FnSendTlvRequest(tlv=_tlv(1021, "Иванова")))
    shift = reg.ok(codec.FnOpenShiftRequest())
    assert isinstance(shift, codec.FnOpenShiftAnswer)
    assert (shift.shift_number, shift.document_number) == (1, 2)
    numbers = [shift.document_number]

    for operation in (1, 2, 3, 4):
        reg.ok(line(operation=operation))
        assert reg.state.receipt is not None
        assert reg.mode == 8
        reg.ok(line(name="Масло", price=12345, qty=1_500_000, amount=18517, operation=operation))
        reg.ok(codec.FnSendTlvRequest(tlv=_tlv(1008, "buyer@example.com")))
        closed = reg.ok(close_v2(cash=30000))
        assert isinstance(closed, codec.FnCloseReceiptV2Answer)
        assert closed.change == 30000 - 28517
        doc = reg.state.last_document
        assert closed.document_number == doc.number
        assert closed.fiscal_sign == fn.fiscal_sign(
            reg.state.identity.fn_number, doc.number, doc.datetime, 28517
        )
        assert doc.operation == operation
        assert doc.total == 28517
        numbers.append(closed.document_number)

    # Legacy receipts: 8Dh + 80h + 85h, and 82h opening a sale-return receipt by itself.
    reg.ok(codec.OpenReceiptRequest(receipt_type=0))
    reg.ok(sale_80(price=1500, qty=3000))
    assert isinstance(reg.ok(close_85(cash=5000)), codec.CloseReceiptAnswer)
    numbers.append(reg.state.last_document.number)
    assert reg.state.last_document.total == 4500
    reg.ok(return_82())
    assert reg.mode == 8
    assert reg.state.receipt is not None
    assert reg.state.receipt.receipt_type == 2
    reg.ok(close_85(cash=1500))
    assert reg.state.last_document.operation == fn.Operation.SELL_RETURN
    numbers.append(reg.state.last_document.number)

    assert isinstance(reg.ok(codec.XReportRequest()), codec.XReportAnswer)
    reg.ok(codec.FnBeginCloseShiftRequest())
    z = reg.ok(codec.FnCloseShiftRequest())
    assert isinstance(z, codec.FnCloseShiftAnswer)
    assert z.shift_number == 1
    numbers.append(z.document_number)
    assert numbers == list(range(2, 2 + len(numbers)))
    assert reg.mode == 4
    assert reg.state.shift.number == 1
    assert not reg.state.shift.is_open

    # E0h + 41h work as well and count on.
    reg.ok(codec.OpenShiftRequest())
    assert reg.state.shift.number == 2
    reg.ok(codec.ZReportRequest())
    assert reg.state.last_document.doc_type == fn.DOC_SHIFT_CLOSE
    assert reg.state.last_document.number == numbers[-1] + 2


def test_found_documents_match(reg: Register) -> None:
    reg.ok(codec.OpenShiftRequest())
    reg.ok(line())
    closed = reg.ok(close_v2(card=10000))
    assert isinstance(closed, codec.FnCloseReceiptV2Answer)
    found = reg.ok(codec.FnFindDocumentRequest(number=closed.document_number))
    assert isinstance(found, codec.FnDocument)
    assert found.document_type == fn.DOC_RECEIPT
    assert (found.number, found.fiscal_sign, found.total, found.receipt_type) == (
        closed.document_number,
        closed.fiscal_sign,
        10000,
        1,
    )
    assert reg.error(codec.FnFindDocumentRequest(number=999)) == Fn.NO_DATA
    status = reg.ok(codec.FnStatusRequest())
    assert isinstance(status, codec.FnStatus)
    assert status.last_document_number == closed.document_number
    assert status.shift_open


def test_fiscal_sign_is_deterministic(tmp_path: Path) -> None:
    signs = []
    for run in range(2):
        reg = Register(tmp_path / f"run{run}.state")
        reg.ok(codec.OpenShiftRequest())
        reg.ok(line())
        closed = reg.ok(close_v2(cash=10000))
        assert isinstance(closed, codec.FnCloseReceiptV2Answer)
        signs.append(closed.fiscal_sign)
    assert signs[0] == signs[1]


def test_cancel_drops_the_receipt(reg: Register) -> None:
    reg.ok(codec.OpenShiftRequest())
    reg.ok(line())
    last = reg.state.last_document.number
    reg.ok(codec.CancelReceiptRequest())
    assert reg.mode == 2
    reg.ok(line())
    reg.ok(codec.FnCancelDocumentRequest())
    assert reg.state.receipt is None
    assert reg.state.last_document.number == last


# --- refusals ---------------------------------------------------------------------------


def test_payments_below_total_refused(reg: Register) -> None:
    reg.ok(codec.OpenShiftRequest())
    reg.ok(line())  # 100.00
    assert reg.error(close_v2(cash=9999)) == Kkt.PAYMENTS_BELOW_TOTAL
    assert reg.error(close_v2(card=10001)) == Kkt.CASHLESS_ABOVE_TOTAL
    assert reg.mode == 8
    closed = reg.ok(close_v2(cash=5000, card=5000))
    assert isinstance(closed, codec.FnCloseReceiptV2Answer)
    assert closed.change == 0


def test_line_sum_must_match_price_times_quantity(reg: Register) -> None:
    reg.ok(codec.OpenShiftRequest())
    assert reg.error(line(price=333, qty=3_000_000, amount=1001)) == Kkt.BAD_PARAMETERS
    reg.ok(line(price=333, qty=3_000_000, amount=1000))  # 999 + 1 kopeck: allowed
    reg.ok(line(price=333, qty=3_000_000, amount=None))  # computed: 999
    assert reg.state.receipt is not None
    assert [ln.amount for ln in reg.state.receipt.lines] == [1000, 999]


def test_line_of_another_type_refused(reg: Register) -> None:
    reg.ok(codec.OpenShiftRequest())
    reg.ok(line(operation=1))
    assert reg.error(line(operation=2)) == Kkt.WRONG_RECEIPT_TYPE


def test_shift_over_24_hours(reg: Register) -> None:
    reg.ok(codec.OpenShiftRequest())
    reg.ok(line(), after=dt.timedelta(hours=23))
    reg.ok(close_v2(cash=10000))
    assert reg.mode == 2
    assert reg.error(line(), after=dt.timedelta(hours=1, minutes=1)) == Kkt.SHIFT_OVER_24H
    assert reg.mode == 3
    assert reg.error(codec.OpenReceiptRequest(receipt_type=0)) == Kkt.SHIFT_OVER_24H
    reg.ok(codec.ZReportRequest())
    assert reg.mode == 4


def test_shift_over_24_hours_by_clock_offset(tmp_path: Path) -> None:
    reg = Register(tmp_path / "e.state")
    reg.ok(codec.OpenShiftRequest())
    # The RTC jumps a day ahead (a drifting clock set forward): the shift is now too long.
    reg.state = replace(reg.state, clock=reg.state.clock.with_offset(reg.host, 86_500))
    assert reg.mode == 3
    assert reg.error(line()) == Kkt.SHIFT_OVER_24H


def test_set_time_refused_in_open_shift(reg: Register) -> None:
    reg.ok(codec.OpenShiftRequest())
    assert reg.error(codec.SetTimeRequest(time=dt.time(9, 0))) == Kkt.WRONG_MODE
    assert reg.error(codec.SetDateRequest(date=H0.date())) == Kkt.WRONG_MODE
    reg.ok(codec.ZReportRequest())
    reg.ok(codec.SetTimeRequest(time=dt.time(18, 30, 15)))
    assert reg.state.rtc(reg.host).time().replace(microsecond=0) == dt.time(18, 30, 15)


def test_date_needs_confirmation(reg: Register) -> None:
    tomorrow = H0.date() + dt.timedelta(days=1)
    reg.ok(codec.SetDateRequest(date=tomorrow))
    assert reg.mode == 6
    assert reg.state.rtc(reg.host).date() == H0.date()
    assert reg.error(codec.OpenShiftRequest()) == Kkt.CONFIRM_DATE
    assert reg.error(codec.ConfirmDateRequest(date=H0.date())) == Kkt.DATE_MISMATCH
    reg.ok(codec.ConfirmDateRequest(date=tomorrow))
    assert reg.mode == 4
    assert reg.state.rtc(reg.host).date() == tomorrow
    reg.ok(codec.OpenShiftRequest())
    assert reg.state.last_document.datetime.date() == tomorrow


def test_date_before_last_document_refused(reg: Register) -> None:
    yesterday = H0.date() - dt.timedelta(days=1)
    assert reg.error(codec.SetDateRequest(date=yesterday)) == Fn.BAD_DATETIME
    assert reg.mode == 4


def test_no_document_dated_before_the_last(reg: Register) -> None:
    reg.ok(codec.OpenShiftRequest())
    reg.ok(codec.ZReportRequest())
    reg.ok(codec.SetTimeRequest(time=(H0 - dt.timedelta(hours=2)).time()))
    assert reg.error(codec.OpenShiftRequest()) == Fn.BAD_DATETIME
    assert reg.error(codec.FnBeginOpenShiftRequest()) == Fn.BAD_DATETIME


def test_fn_open_shift_needs_begin(reg: Register) -> None:
    assert reg.error(codec.FnOpenShiftRequest()) == Fn.WRONG_STATE
    reg.ok(codec.FnBeginOpenShiftRequest())
    status = reg.ok(codec.FnStatusRequest())
    assert isinstance(status, codec.FnStatus)
    assert status.current_document == fn.CURRENT_SHIFT_OPEN
    reg.ok(codec.FnOpenShiftRequest())
    assert reg.error(codec.FnCloseShiftRequest()) == Fn.WRONG_STATE


# --- printer ----------------------------------------------------------------------------


def _with_printer(reg: Register, **changes: bool) -> None:
    reg.state = replace(reg.state, printer=replace(reg.state.printer, **changes))


def test_paper_out_refuses_printing(reg: Register) -> None:
    reg.ok(codec.OpenShiftRequest())
    _with_printer(reg, paper=False)
    status = reg.ok(codec.ShortStatusRequest())
    assert isinstance(status, codec.ShortStatus)
    assert status.submode == machine.SUBMODE_NO_PAPER
    assert not status.flags & machine.FLAG_RECEIPT_OPTICAL
    assert reg.error(line()) == Kkt.NO_PAPER
    assert reg.error(codec.ZReportRequest()) == Kkt.NO_PAPER


def test_cover_open_sets_flag_and_refuses(reg: Register) -> None:
    reg.ok(codec.OpenShiftRequest())
    _with_printer(reg, cover_open=True)
    status = reg.ok(codec.LongStatusRequest())
    assert isinstance(status, codec.LongStatus)
    assert status.flags & machine.FLAG_COVER_OPEN
    assert reg.error(line()) == Kkt.PRINTER_SENSORS


def test_paper_ends_mid_document_closes_it_then_waits_for_b0(reg: Register) -> None:
    reg.ok(codec.OpenShiftRequest())
    reg.ok(line())
    _with_printer(reg, paper_ends_next_document=True)
    closed = reg.ok(close_v2(cash=10000))
    assert isinstance(closed, codec.FnCloseReceiptV2Answer)
    assert reg.state.last_document.number == closed.document_number
    assert machine.submode_of(reg.state) == machine.SUBMODE_PAPER_RAN_OUT
    assert reg.error(line()) == Kkt.NO_PAPER
    assert reg.error(codec.ContinuePrintRequest()) == Kkt.NO_PAPER
    _with_printer(reg, paper=True)
    assert machine.submode_of(reg.state) == machine.SUBMODE_WAIT_CONTINUE
    assert reg.error(line()) == Kkt.WAITING_CONTINUE_PRINT
    reg.ok(codec.ContinuePrintRequest())
    assert machine.submode_of(reg.state) == machine.SUBMODE_PAPER
    reg.ok(line())


# --- OFD --------------------------------------------------------------------------------


def test_ofd_queue_drains_with_rtc_time(reg: Register) -> None:
    reg.ok(codec.OpenShiftRequest(), after=dt.timedelta(0))
    reg.ok(line(), after=dt.timedelta(0))
    reg.ok(close_v2(cash=10000), after=dt.timedelta(0))
    ofd = reg.ok(codec.FnOfdStatusRequest(), after=dt.timedelta(0))
    assert isinstance(ofd, codec.FnOfdStatus)
    assert (ofd.count, ofd.first_number) == (2, 2)
    assert ofd.first_datetime == reg.state.document(2).datetime  # type: ignore[union-attr]
    ofd = reg.ok(codec.FnOfdStatusRequest(), after=dt.timedelta(seconds=11))
    assert isinstance(ofd, codec.FnOfdStatus)
    assert (ofd.count, ofd.first_number) == (1, 3)
    ofd = reg.ok(codec.FnOfdStatusRequest(), after=dt.timedelta(seconds=10))
    assert isinstance(ofd, codec.FnOfdStatus)
    assert ofd.count == 0
    found = reg.ok(codec.FnFindDocumentRequest(number=3))
    assert isinstance(found, codec.FnDocument)
    assert found.ofd_acknowledged


# --- helpers ----------------------------------------------------------------------------


def _tlv(tag: int, text: str) -> bytes:
    return codec.tlv_str(tag, text)


def test_rtc_drift_and_offset() -> None:
    clock = ClockState().with_offset(H0, -60.0).with_drift(H0, 1000.0)  # 0.1 % fast
    later = H0 + dt.timedelta(seconds=10_000)
    assert clock.rtc(H0) == H0 - dt.timedelta(seconds=60)
    assert clock.rtc(later) == later - dt.timedelta(seconds=60) + dt.timedelta(seconds=10)
    reset = clock.set_rtc(later, H0)
    assert reset.rtc(later) == H0
