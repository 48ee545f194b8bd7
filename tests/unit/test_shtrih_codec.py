"""Round trips of every Shtrih-M command and answer, golden bytes from [PROTO], error answers."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TypeVar

import pytest

from gateway.domain import fiscal
from gateway.domain.errors import ProtocolError
from gateway.registers.shtrih import codec as c
from gateway.registers.shtrih.errors_table import ShtrihError
from gateway.registers.shtrih.framing import Frame, FrameDecoder, encode_frame

AnswerT = TypeVar("AnswerT", bound=c.Answer)

D = dt.date(2026, 11, 22)
T = dt.time(13, 5, 9)
W = dt.datetime(2026, 11, 22, 13, 5)
CYRILLIC = "Сыр «Российский» весовой, №5"

REQUESTS: list[c.Request] = [
    c.ShortStatusRequest(),
    c.LongStatusRequest(password=1),
    c.DeviceTypeRequest(),
    c.SetTimeRequest(time=T),
    c.SetDateRequest(date=D),
    c.ConfirmDateRequest(date=D),
    c.XReportRequest(),
    c.ZReportRequest(password=29),
    c.OpenShiftRequest(),
    c.OpenReceiptRequest(receipt_type=2),
    c.SaleRequest(quantity=1500, price=4550, department=2, taxes=(1, 0, 0, 0), text="Хлеб ржаной"),
    c.ReturnSaleRequest(quantity=1000, price=100, department=1, taxes=(2, 0, 0, 0), text="Возврат"),
    c.CloseReceiptRequest(
        payments=(10000, 500, 0, 0), discount_percent_x100=-150, taxes=(1, 2, 0, 0), text="Спасибо"
    ),
    c.CancelReceiptRequest(),
    c.ContinuePrintRequest(),
    c.FnStatusRequest(),
    c.FnExpiryRequest(),
    c.FnVersionRequest(),
    c.FnCancelDocumentRequest(),
    c.FnFindDocumentRequest(number=123456),
    c.FnBeginOpenShiftRequest(),
    c.FnOpenShiftRequest(),
    c.FnBeginCloseShiftRequest(),
    c.FnCloseShiftRequest(),
    c.FnSendTlvRequest(tlv=c.tlv_str(1021, "Иванова А.") + c.tlv_str(1203, "7707083893")),
    c.FnSendTlvRequest(tlv=bytes(range(249))),
    c.FnOfdStatusRequest(),
    c.FnCloseReceiptV2Request(
        payments=(100, 200, *(0,) * 13, 5),
        rounding=7,
        taxes=(1, 2, 3, 4, 5, 6),
        tax_system=2,
        text="x" * 64,
    ),
    c.FnCloseReceiptV2Request(payments=(0,) * 16, taxes=(0,) * 6, text=""),
    c.FnOperationV2Request(
        operation=2,
        quantity=357_000,
        price=89_900,
        amount=32_094,
        tax_amount=5_349,
        tax_rate=1,
        department=3,
        payment_method=4,
        payment_object=1,
        name=CYRILLIC,
    ),
    c.FnOperationV2Request(amount=None, name="KKT computes the sum"),
    c.FnOperationV2Request(name="Я" * 128),
    c.FnSendOperationTlvRequest(tlv=c.tlv_str(1191, "Атрибут")),
    c.WriteTableRequest(table=17, row=1, field=7, value=b"\x01"),
    c.FnShiftParamsRequest(),
    c.FnRegistrationRequest(),
    c.CashInRequest(amount=100_000),
    c.CashOutRequest(password=29, amount=(1 << 40) - 1),
    c.MoneyRegisterRequest(register=193),
    c.OperationRegisterRequest(register=255),
    c.FnDocumentTlvRequest(number=0xFFFFFFFF),
    c.FnReadDocumentTlvRequest(),
    # Marked goods: the real wire traces are in test_shtrih_marking_codec.
    c.MarkingCheckRequest(planned_status=2, code=b"0104\x1d93ab", tlv=bytes.fromhex("3c0801000b")),
    c.MarkingBindRequest(code=b"0104\x1d93ab", volume_sort=True),
    c.IsmExchangeStatusRequest(),
    c.MarkingAcceptRequest(action=2),
    c.MarkingStatusRequest(),
    c.NotificationBeginRequest(),
    c.NotificationReadRequest(),
    c.NotificationConfirmRequest(number=7, crc=0xBEEF),
]

ANSWERS: list[c.Answer] = [
    c.ShortStatus(
        operator=30,
        flags=0x0282,
        mode=0x18,
        submode=3,
        receipt_operations=0x1234,
        battery_voltage=200,
        power_voltage=150,
        last_print_result=0,
    ),
    c.ShortStatus(
        operator=1,
        flags=0,
        mode=4,
        submode=0,
        receipt_operations=2,
        battery_voltage=1,
        power_voltage=2,
    ),
    c.LongStatus(
        operator=30,
        firmware_version="C.",
        firmware_build=62776,
        firmware_date=D,
        hall=1,
        document_number=77,
        flags=0x0482,
        mode=2,
        submode=0,
        port=0,
        fp_version="FN",
        fp_build=1,
        fp_date=D,
        date=D,
        time=T,
        fp_flags=1,
        serial=0x0001_2345_6789,
        last_shift=12,
        free_fp_records=0,
        registrations=1,
        registrations_left=11,
        inn=7707083893,
    ),
    c.DeviceType(
        device_type=0,
        subtype=0,
        protocol_version=1,
        protocol_subversion=0,
        model=152,
        language=0,
        name="ШТРИХ-М-01Ф",
    ),
    c.SetTimeAnswer(),
    c.SetDateAnswer(),
    c.ConfirmDateAnswer(),
    c.XReportAnswer(operator=30),
    c.ZReportAnswer(operator=29),
    c.OpenShiftAnswer(operator=30),
    c.OpenReceiptAnswer(operator=30),
    c.SaleAnswer(operator=30),
    c.ReturnSaleAnswer(operator=30),
    c.CloseReceiptAnswer(operator=30, change=1234),
    c.CancelReceiptAnswer(operator=30),
    c.ContinuePrintAnswer(operator=30),
    c.FnStatus(
        life_phase=3,
        current_document=0,
        document_data=0,
        shift_open=True,
        warnings=0b1010,
        last_document_datetime=W,
        fn_number="9999078900000001",
        last_document_number=4242,
    ),
    c.FnStatus(
        life_phase=1,
        current_document=0,
        document_data=0,
        shift_open=False,
        warnings=0,
        last_document_datetime=None,
        fn_number="9999078900000002",
        last_document_number=0,
    ),
    c.FnExpiry(expiry=D, registrations_left=11, registrations_done=1),
    c.FnExpiry(expiry=D),
    c.FnVersion(version="fn_v_1_1_ver_01", fn_type=1),
    c.FnCancelDocumentAnswer(),
    c.FnDocument(
        document_type=3,
        ofd_acknowledged=True,
        datetime=W,
        number=7,
        fiscal_sign=3_000_000_000,
        receipt_type=2,
        total=99_99,
    ),
    c.FnDocument(
        document_type=2,
        ofd_acknowledged=False,
        datetime=W,
        number=6,
        fiscal_sign=1,
        tail=b"\x0c\x00",
    ),
    c.FnBeginOpenShiftAnswer(),
    c.FnOpenShiftAnswer(shift_number=13, document_number=8, fiscal_sign=42),
    c.FnOpenShiftAnswer(shift_number=13, document_number=8, fiscal_sign=42, datetime=W),
    c.FnBeginCloseShiftAnswer(),
    c.FnCloseShiftAnswer(shift_number=13, document_number=9, fiscal_sign=43),
    c.FnCloseShiftAnswer(shift_number=13, document_number=9, fiscal_sign=43, datetime=W),
    c.FnSendTlvAnswer(),
    c.FnOfdStatus(exchange_status=1, read_flag=0, count=3, first_number=5, first_datetime=W),
    c.FnOfdStatus(exchange_status=0, read_flag=0, count=0, first_number=0, first_datetime=None),
    c.FnCloseReceiptV2Answer(change=50, document_number=10, fiscal_sign=44, datetime=W),
    c.FnCloseReceiptV2Answer(change=0, document_number=11, fiscal_sign=45),
    c.FnOperationV2Answer(),
    c.FnSendOperationTlvAnswer(),
    c.WriteTableAnswer(),
    c.FnShiftParams(shift_open=True, shift_number=13, receipt_number=4),
    c.FnRegistration(
        datetime=W,
        inn="7707083893",
        registration_number="0000000001009224",
        tax_systems=1,
        work_mode=0,
    ),
    c.CashInAnswer(operator=30, document_number=42),
    c.CashOutAnswer(operator=29, document_number=0xFFFF),
    c.MoneyRegister(operator=30, value=(1 << 48) - 1),
    c.OperationRegister(operator=30, value=0),
    c.FnDocumentTlv(document_type=3, length=300),
    c.FnDocumentTlvBlock(tlv=c.tlv_str(1021, "Иванова А.")),
    c.MarkingCheck(
        local=3, reason=0, code_type=2, server=bytes.fromhex("000f") + b"\x39\x08\x01\x00\x00"
    ),
    c.MarkingBind(code_kind=b"DM", dm_type=0),
    c.IsmExchangeStatus(state=2, unsent=3, current_number=12, current_datetime=W, fill_percent=4),
    c.MarkingAcceptAnswer(result=0x0F),
    c.MarkingStatus(
        check_state=1,
        notification_state=0,
        flags=0x1F,
        saved_results=2,
        codes_in_notification=0,
        area_fill=0,
        unsent=0x0102,
    ),
    c.NotificationBegin(count=2, first_number=5, first_size=300),
    c.NotificationBlock(number=5, full_size=300, offset=128, block=bytes(range(128))),
    c.NotificationConfirmAnswer(),
]


def _ids(items: list[c.Request] | list[c.Answer]) -> list[str]:
    return [f"{type(i).__name__}-{n}" for n, i in enumerate(items)]


def _through_framing(body: bytes) -> bytes:
    """Frame a body and feed it back one byte at a time."""
    decoder = FrameDecoder()
    events = [e for b in encode_frame(body) for e in decoder.feed(bytes([b]))]
    assert events == [Frame(body)]
    frame = events[0]
    assert isinstance(frame, Frame)
    return frame.body


def _first(cls: type[AnswerT]) -> AnswerT:
    """The first sample answer of a class."""
    return next(a for a in ANSWERS if isinstance(a, cls))


def _all_subclasses(base: type) -> set[type]:
    """Every subclass of `base`, however deep."""
    out: set[type] = set()
    sub: type
    for sub in base.__subclasses__():
        out |= {sub} | _all_subclasses(sub)
    return out


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("request_", REQUESTS, ids=_ids(REQUESTS))
def test_request_round_trip(request_: c.Request) -> None:
    body = c.encode_request(request_)
    assert body == request_.to_body()
    assert type(request_).from_body(body) == request_
    assert c.decode_request(_through_framing(body)) == request_


@pytest.mark.parametrize("answer", ANSWERS, ids=_ids(ANSWERS))
def test_answer_round_trip(answer: c.Answer) -> None:
    body = c.encode_answer(answer)
    assert body == answer.to_body()
    assert c.answer_error_code(body) == 0
    assert type(answer).from_body(body) == answer
    assert c.decode_answer(_through_framing(body), type(answer)) == answer


def test_every_class_is_round_tripped() -> None:
    # By name: slots=True dataclasses leave their pre-slots class behind as a subclass too.
    assert {k.__name__ for k in _all_subclasses(c.Request)} == {type(r).__name__ for r in REQUESTS}
    assert {k.__name__ for k in _all_subclasses(c.Answer)} == {type(a).__name__ for a in ANSWERS}


def test_every_command_has_a_request_and_answer() -> None:
    assert {type(r).COMMAND for r in REQUESTS} == set(c.Cmd)
    assert {type(a).COMMAND for a in ANSWERS} == set(c.Cmd)


def test_fields_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.ShortStatusRequest().password = 1  # type: ignore[misc]


# --- command bytes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "wire"),
    [(0x10, b"\x10"), (0xFC, b"\xfc"), (0xFF01, b"\xff\x01"), (0xFF46, b"\xff\x46")],
)
def test_command_bytes_and_split(cmd: int, wire: bytes) -> None:
    # [PROTO] p.8: FFxxh commands take two bytes, FF first.
    assert c.command_bytes(cmd) == wire
    assert c.split_command(wire + b"\x01\x02") == (cmd, b"\x01\x02")


@pytest.mark.parametrize("body", [b"", b"\xff"])
def test_split_command_refuses_truncated(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        c.split_command(body)


# --- golden bytes written from [PROTO] ---------------------------------------------------------


def test_golden_short_status_request() -> None:
    # [PROTO] 10h: CMD, password 30 as 4 bytes little-endian; "Длина сообщения: 5 байт".
    assert c.encode_request(c.ShortStatusRequest()) == bytes.fromhex("101e000000")
    assert encode_frame(bytes.fromhex("101e000000")) == bytes.fromhex("0205101e0000000b")


def test_golden_device_type_has_no_password() -> None:
    # [PROTO] FCh: "Длина сообщения: 1 байт".
    assert c.encode_request(c.DeviceTypeRequest()) == b"\xfc"


def test_golden_short_status_answer() -> None:
    # [PROTO] 10h answer: ERR, op, flags(2), mode, submode, ops lo, battery, power,
    # 2 old error bytes, ops hi, 3 reserved, [print result]: 16 or 17 bytes.
    body = bytes.fromhex("10 00 1e 8202 04 00 05 c8 96 0000 01 000000")
    assert len(body) == 16
    status = c.decode_answer(body, c.ShortStatus)
    assert status == c.ShortStatus(
        operator=30,
        flags=0x0282,
        mode=4,
        submode=0,
        receipt_operations=0x0105,
        battery_voltage=0xC8,
        power_voltage=0x96,
        last_print_result=None,
    )
    assert status.to_body() == body
    with_print = c.decode_answer(body + b"\x05", c.ShortStatus)
    assert with_print.last_print_result == 5
    assert len(with_print.to_body()) == 17


def test_golden_long_status_answer() -> None:
    # [PROTO] 11h: 48 bytes; 50 with the serial's high word after the INN.
    body = bytes.fromhex(
        "11 00 1e"  # CMD ERR op
        "4331 b0f5 160b1a"  # FW "C1", build 62896, date 22.11.26 (DD MM YY)
        "01 4d00 8202 04 00 00"  # hall, doc No 77, flags, mode, submode, port
        "464e 0100 000000"  # FP version "FN", build 1, date never set
        "160b1a 0d0509 01"  # date 22.11.26, time 13:05:09, FP flags
        "89674523 0c00 0000 01 0b"  # serial low, last shift 12, free FP, reg 1, left 11
        "75c460cb0100"  # INN 7707083893 (6 bytes LE)
    )
    assert len(body) == 48
    status = c.decode_answer(body, c.LongStatus)
    assert status.firmware_version == "C1"
    assert status.firmware_build == 62896
    assert status.firmware_date == D
    assert status.fp_date == dt.date(2000, 1, 1)
    assert (status.date, status.time) == (D, T)
    assert status.serial == 0x23456789
    assert status.last_shift == 12
    assert (status.registrations, status.registrations_left) == (1, 11)
    assert status.inn == 7707083893
    assert c.decode_answer(body + b"\x01\x00", c.LongStatus).serial == 0x1_2345_6789
    # The encoder always writes the high word; a never-set date comes back as 01 01 00.
    assert len(status.to_body()) == 50
    assert c.decode_answer(status.to_body(), c.LongStatus) == status


@pytest.mark.parametrize(
    ("request_", "hex_body"),
    [
        # [PROTO] 21h/22h/23h: HH MM SS and DD MM YY after the password; 8 bytes each.
        (c.SetTimeRequest(time=T), "21 1e000000 0d0509"),
        (c.SetDateRequest(date=D), "22 1e000000 160b1a"),
        (c.ConfirmDateRequest(date=D), "23 1e000000 160b1a"),
        (c.OpenReceiptRequest(receipt_type=2), "8d 1e000000 02"),
        (c.FnFindDocumentRequest(number=0x01020304), "ff0a 1e000000 04030201"),
        (c.FnSendTlvRequest(tlv=c.encode_tlv(1008, b"a@b")), "ff0c 1e000000 f003 0300 614062"),
    ],
)
def test_golden_requests(request_: c.Request, hex_body: str) -> None:
    assert c.encode_request(request_) == bytes.fromhex(hex_body)


def test_golden_sale_is_60_bytes() -> None:
    # [PROTO] 80h: "Длина сообщения: 60": qty(5) ×1000, price(5), dept, 4 taxes, text(40).
    body = c.encode_request(
        c.SaleRequest(quantity=1500, price=4550, department=2, taxes=(1, 0, 0, 0), text="Щи")
    )
    assert len(body) == 60
    assert body[:20] == bytes.fromhex("80 1e000000 dc05000000 c611000000 02 01000000")
    assert body[20:] == "Щи".encode("cp1251") + bytes(38)


def test_golden_close_receipt_is_71_bytes() -> None:
    # [PROTO] 85h: 4 sums, discount % ×100 as signed int16, 4 taxes, text(40): 71 bytes.
    body = c.encode_request(
        c.CloseReceiptRequest(payments=(100, 0, 0, 0), discount_percent_x100=-1)
    )
    assert len(body) == 71
    assert body[5:10] == bytes.fromhex("6400000000")
    assert body[25:27] == b"\xff\xff"


def test_golden_close_receipt_answer_ignores_web_link() -> None:
    # [PROTO] 85h answer: ERR, op, change(5), then up to 247 bytes of a web link on some models.
    body = bytes.fromhex("85 00 1e 0a00000000") + b"https://check.example/1"
    assert c.decode_answer(body, c.CloseReceiptAnswer) == c.CloseReceiptAnswer(
        operator=30, change=10
    )


def test_golden_open_shift_answer_without_operator() -> None:
    # [PROTO] E0h answer: "Длина сообщения: 2 байта" (CMD ERR); pyshtrih reads no operator.
    assert c.decode_answer(b"\xe0\x00", c.OpenShiftAnswer) == c.OpenShiftAnswer()


def test_golden_ff46_request() -> None:
    # [PROTO] FF46h: op, qty(6) ×10⁶, price(5), sum(5, FF×5 = KKT computes), tax(5, FF×5 = none),
    # rate, department, 1214, 1212, name.
    req = c.FnOperationV2Request(
        operation=1,
        quantity=1_000_000,
        price=100,
        amount=None,
        tax_amount=None,
        tax_rate=8,
        department=1,
        payment_method=4,
        payment_object=1,
        name="A",
    )
    assert c.encode_request(req) == bytes.fromhex(
        "ff46 1e000000 01 40420f000000 6400000000 ffffffffff ffffffffff 08 01 04 01 41"
    )


def test_golden_ff46_max_is_160_bytes() -> None:
    # [PROTO] FF46h: "Длина сообщения: 160 байт" with the 128-byte name.
    body = c.encode_request(c.FnOperationV2Request(name="Я" * 128))
    assert len(body) == 160
    assert encode_frame(body)[1] == 160


def test_golden_ff45_max_is_182_bytes() -> None:
    # [PROTO] FF45h: "Длина сообщения: 182 байта": 16 sums, rounding, 6 taxes, system, text(64).
    body = c.encode_request(
        c.FnCloseReceiptV2Request(payments=(1, *(0,) * 15), rounding=3, tax_system=1, text="x" * 64)
    )
    assert len(body) == 182
    assert body[6:11] == bytes.fromhex("0100000000")
    assert body[86] == 3  # rounding after the 16 sums
    assert body[117] == 1  # tax system after the 6 tax sums


@pytest.mark.parametrize(
    ("answer", "length"),
    [
        # Lengths from [PROTO] "Длина сообщения" of each answer (CMD counted as 2 bytes for FFxx).
        (next(a for a in ANSWERS if isinstance(a, c.FnStatus)), 33),  # FF01h
        (c.FnExpiry(expiry=D), 6),  # FF03h
        (c.FnVersion(version="x", fn_type=1), 20),  # FF04h
        (c.FnOpenShiftAnswer(shift_number=1, document_number=2, fiscal_sign=3), 13),  # FF0Bh
        (c.FnCloseShiftAnswer(shift_number=1, document_number=2, fiscal_sign=3), 13),  # FF43h
        (c.FnCloseShiftAnswer(shift_number=1, document_number=2, fiscal_sign=3, datetime=W), 18),
        (
            c.FnOfdStatus(
                exchange_status=0, read_flag=0, count=0, first_number=0, first_datetime=None
            ),
            16,
        ),
        (c.FnCloseReceiptV2Answer(change=0, document_number=1, fiscal_sign=2), 16),  # FF45h
        (c.FnCloseReceiptV2Answer(change=0, document_number=1, fiscal_sign=2, datetime=W), 21),
        (c.FnOperationV2Answer(), 3),  # FF46h
        (c.CloseReceiptAnswer(change=0), 8),  # 85h
        (c.SaleAnswer(), 3),  # 80h
    ],
)
def test_answer_lengths_match_proto(answer: c.Answer, length: int) -> None:
    assert len(c.encode_answer(answer)) == length


def test_golden_fn_status_answer() -> None:
    # [PROTO] FF01h: phase, current doc, doc data, shift, warnings, datetime YY MM DD HH MM,
    # FN number (16 ASCII), last FD number (4).
    body = (
        bytes.fromhex("ff01 00 03 00 00 01 08 1a0b160d05")
        + b"9999078900000001"
        + bytes.fromhex("92100000")
    )
    assert c.decode_answer(body, c.FnStatus) == c.FnStatus(
        life_phase=3,
        current_document=0,
        document_data=0,
        shift_open=True,
        warnings=8,
        last_document_datetime=W,
        fn_number="9999078900000001",
        last_document_number=0x1092,
    )


def test_golden_fn_document_receipt() -> None:
    # FF0Ah: type 3, OFD ack, datetime, FD, FP, then operation type and total for a receipt.
    body = bytes.fromhex("ff0a 00 03 01 1a0b160d05 07000000 5e0bb2b2 01 0f27000000")
    doc = c.decode_answer(body, c.FnDocument)
    assert (doc.document_type, doc.ofd_acknowledged, doc.datetime) == (3, True, W)
    assert (doc.number, doc.fiscal_sign) == (7, 0xB2B20B5E)
    assert (doc.receipt_type, doc.total, doc.tail) == (1, 9999, b"")


def test_golden_fn_document_shift_keeps_the_tail() -> None:
    body = bytes.fromhex("ff0a 00 05 00 1a0b160d05 09000000 01000000 0d00")
    doc = c.decode_answer(body, c.FnDocument)
    assert (doc.document_type, doc.receipt_type, doc.total, doc.tail) == (
        5,
        None,
        None,
        b"\x0d\x00",
    )


def test_fn_document_receipt_needs_its_total() -> None:
    with pytest.raises(ValueError, match="receipt"):
        c.FnDocument(
            document_type=3, ofd_acknowledged=False, datetime=W, number=1, fiscal_sign=1
        ).to_body()


def test_golden_ofd_status_empty_queue() -> None:
    # FF39h: status, read flag, count(2), first doc No(4), first doc datetime(5); zeros = none.
    body = bytes.fromhex("ff39 00 00 00 0000 00000000 0000000000")
    ofd = c.decode_answer(body, c.FnOfdStatus)
    assert (ofd.count, ofd.first_number, ofd.first_datetime) == (0, 0, None)


def test_golden_device_type_answer() -> None:
    body = bytes.fromhex("fc 00 00 00 01 00 98 00") + "ШТРИХ-М-01Ф".encode("cp1251") + b"\0"
    device = c.decode_answer(body, c.DeviceType)
    assert (device.protocol_version, device.model, device.name) == (1, 152, "ШТРИХ-М-01Ф")


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ANSWERS, ids=_ids(ANSWERS))
def test_error_answer_of_every_command(answer: c.Answer) -> None:
    command = type(answer).COMMAND
    body = c.encode_error(command, 0x6B)
    assert body == c.command_bytes(command) + b"\x6b"
    assert c.answer_error_code(body) == 0x6B
    with pytest.raises(ShtrihError) as err:
        c.decode_answer(body, type(answer))
    assert err.value.error_code == 0x6B
    assert err.value.command == command


def test_error_answer_raises_typed_device_error() -> None:
    body = c.encode_error(0xFF46, 0x6B)
    assert body == bytes.fromhex("ff466b")
    with pytest.raises(ShtrihError) as err:
        c.decode_answer(body, c.FnOperationV2Answer)
    assert err.value.error_code == 0x6B
    assert err.value.command == 0xFF46
    assert err.value.transient
    assert err.value.hint
    assert "paper" in err.value.hint
    assert "Нет чековой ленты" in err.value.text


@pytest.mark.parametrize(
    ("code", "transient"), [(0x45, False), (0x4E, False), (0x16, False), (0x58, True), (0x50, True)]
)
def test_device_error_transient_flag(code: int, transient: bool) -> None:
    with pytest.raises(ShtrihError) as err:
        c.decode_answer(c.encode_error(0xFF45, code), c.FnCloseReceiptV2Answer)
    assert err.value.error_code == code
    assert err.value.transient is transient


def test_encode_error_refuses_code_zero() -> None:
    with pytest.raises(ValueError, match="error code"):
        c.encode_error(0x10, 0)


@pytest.mark.parametrize(
    ("body", "cls"),
    [
        (b"", c.ShortStatus),
        (b"\xff", c.FnStatus),
        (b"\x10", c.ShortStatus),
        (bytes.fromhex("1000"), c.ShortStatus),
        (bytes.fromhex("ff0100") + b"\x01", c.FnStatus),
        (bytes.fromhex("ff0300 1a0b"), c.FnExpiry),
        (bytes.fromhex("ff0b00 0d00 0800"), c.FnOpenShiftAnswer),
        (bytes.fromhex("ff0300 1a0d16"), c.FnExpiry),  # month 13
    ],
)
def test_malformed_answers(body: bytes, cls: type[c.Answer]) -> None:
    with pytest.raises(ProtocolError):
        c.decode_answer(body, cls)


def _ends_in_optional_field(answer: c.Answer) -> bool:
    """True when the sample's last field may be absent or shorter on the wire."""
    if isinstance(answer, c.ShortStatus):
        return answer.last_print_result is not None
    if isinstance(answer, c.FnExpiry):
        return answer.registrations_done is not None
    return isinstance(
        answer,
        c.DeviceType
        | c.FnDocument
        | c.OpenShiftAnswer
        | c.FnDocumentTlvBlock
        | c.MarkingAcceptAnswer
        | c.NotificationBlock,
    )


@pytest.mark.parametrize(
    "answer",
    [a for a in ANSWERS if a.to_body()[len(c.command_bytes(type(a).COMMAND)) + 1 :]],
    ids=lambda a: type(a).__name__,
)
def test_truncated_answers(answer: c.Answer) -> None:
    cut = c.encode_answer(answer)[:-1]
    if _ends_in_optional_field(answer):
        assert isinstance(c.decode_answer(cut, type(answer)), type(answer))
    else:
        with pytest.raises(ProtocolError, match="too short"):
            c.decode_answer(cut, type(answer))


@pytest.mark.parametrize("answer", ANSWERS, ids=_ids(ANSWERS))
def test_answer_for_another_command(answer: c.Answer) -> None:
    other = c.ZReportAnswer if type(answer) is not c.ZReportAnswer else c.XReportAnswer
    with pytest.raises(ProtocolError, match="expected"):
        c.decode_answer(c.encode_answer(answer), other)


def test_unknown_and_malformed_requests() -> None:
    with pytest.raises(ProtocolError, match="0x99"):
        c.decode_request(b"\x99\x1e\x00\x00\x00")
    with pytest.raises(ProtocolError, match="0xff99"):
        c.decode_request(b"\xff\x99\x1e\x00\x00\x00")
    with pytest.raises(ProtocolError):
        c.decode_request(b"\x10\x1e")  # password cut short
    with pytest.raises(ProtocolError):
        c.decode_request(bytes.fromhex("ff0a1e000000"))  # FF0Ah without the document number
    with pytest.raises(ProtocolError):
        c.decode_request(bytes.fromhex("221e000000 200d1a"))  # 32.13.26
    with pytest.raises(ProtocolError, match="not"):
        c.ShortStatusRequest.from_body(bytes.fromhex("111e000000"))


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (c.FnOperationV2Request(name="я" * 129), "longer"),
        (c.FnOperationV2Request(price=-1), "fit"),
        (c.FnOperationV2Request(quantity=1 << 48), "fit"),
        (c.FnOperationV2Request(amount=(1 << 40) - 1), "not given"),
        (c.FnCloseReceiptV2Request(payments=(1, 2)), "expected 16"),
        (c.FnCloseReceiptV2Request(rounding=256), "fit"),
        (c.FnCloseReceiptV2Request(text="x" * 65), "longer"),
        (c.SaleRequest(text="x" * 41), "longer"),
        (c.SaleRequest(quantity=-1000), "fit"),
        (c.CloseReceiptRequest(discount_percent_x100=40000), "fit"),
        (c.SetDateRequest(date=dt.date(1999, 12, 31)), "year"),
        (c.ConfirmDateRequest(date=dt.date(2100, 1, 1)), "year"),
        (c.FnSendTlvRequest(tlv=bytes(250)), "more than 249"),
        (c.ShortStatusRequest(password=1 << 32), "fit"),
    ],
)
def test_encoders_refuse_out_of_range(request_: c.Request, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        c.encode_request(request_)


def test_answer_encoders_refuse_out_of_range() -> None:
    with pytest.raises(ValueError, match="6 bytes"):
        dataclasses.replace(_first(c.LongStatus), serial=1 << 48).to_body()
    with pytest.raises(ValueError, match="ASCII"):
        c.FnVersion(version="версия", fn_type=1).to_body()
    with pytest.raises(ValueError, match="longer"):
        c.FnVersion(version="x" * 17, fn_type=1).to_body()
    with pytest.raises(ValueError, match="fit"):
        dataclasses.replace(_first(c.ShortStatus), receipt_operations=0x10000).to_body()


# --- text ----------------------------------------------------------------------------------------


def test_cp1251_on_the_wire() -> None:
    body = c.encode_request(c.FnOperationV2Request(name="Щи"))
    assert body.endswith("Щи".encode("cp1251"))
    assert body.endswith(b"\xd9\xe8")


def test_cp1251_round_trip_strips_padding() -> None:
    body = c.encode_request(c.SaleRequest(text=CYRILLIC))
    assert body.endswith(b"\0")
    assert c.decode_request(body) == c.SaleRequest(text=CYRILLIC)


def test_text_outside_cp1251_is_replaced() -> None:
    body = c.encode_request(c.FnOperationV2Request(name="Чай 🍵 茶"))
    decoded = c.decode_request(body)
    assert isinstance(decoded, c.FnOperationV2Request)
    assert decoded.name == "Чай ? ?"


# --- TLV and VAT -------------------------------------------------------------------------------


def test_tlv_round_trip() -> None:
    data = c.tlv_str(1008, "buyer@example.com") + c.encode_tlv(1203, b"7707083893")
    assert data[:4] == bytes.fromhex("f0031100")  # tag 1008, length 17, both u16 LE
    assert c.decode_tlvs(data) == [(1008, b"buyer@example.com"), (1203, b"7707083893")]
    assert c.decode_tlvs(c.tlv_str(1021, "Кассир")) == [(1021, "Кассир".encode("cp1251"))]
    assert c.decode_tlvs(b"") == []


@pytest.mark.parametrize("cut", [1, 4, 20])
def test_truncated_tlvs(cut: int) -> None:
    data = c.tlv_str(1008, "buyer@example.com")
    with pytest.raises(ProtocolError):
        c.decode_tlvs(data[:-cut])


def test_tlv_refuses_bad_tag_and_length() -> None:
    with pytest.raises(ValueError, match="fit"):
        c.encode_tlv(0x10000, b"")
    with pytest.raises(ValueError, match="too long"):
        c.encode_tlv(1008, bytes(0x10000))


def test_vat_mapping_covers_every_rate() -> None:
    assert set(c.VAT_TO_TAX_RATE) == set(fiscal.Vat)
    assert len(set(c.VAT_TO_TAX_RATE.values())) == len(fiscal.Vat)
    assert all(c.TAX_RATE_TO_VAT[v] is k for k, v in c.VAT_TO_TAX_RATE.items())


@pytest.mark.parametrize(
    ("vat", "byte"),
    [
        (fiscal.Vat.VAT20, 0x01),
        (fiscal.Vat.VAT10, 0x02),
        (fiscal.Vat.VAT0, 0x04),
        (fiscal.Vat.NONE, 0x08),
        (fiscal.Vat.VAT120, 0x10),
        (fiscal.Vat.VAT110, 0x20),
        (fiscal.Vat.VAT5, 0x81),
        (fiscal.Vat.VAT7, 0x82),
        (fiscal.Vat.VAT105, 0x84),
        (fiscal.Vat.VAT107, 0x88),
        (fiscal.Vat.VAT22, 0xCB),
        (fiscal.Vat.VAT122, 0xCC),
    ],
)
def test_vat_tax_rate_bytes(vat: fiscal.Vat, byte: int) -> None:
    assert c.VAT_TO_TAX_RATE[vat] == byte
    body = c.encode_request(c.FnOperationV2Request(tax_rate=c.VAT_TO_TAX_RATE[vat]))
    assert body[2 + 4 + 1 + 6 + 5 + 5 + 5] == byte


def test_fields_of() -> None:
    fields = c.fields_of(c.FnFindDocumentRequest(number=5))
    assert fields == {"password": 30, "number": 5}
    assert [f.name for f in dataclasses.fields(c.LongStatus)][-1] == "inn"


# --- cash in and out, registers, documents as TLV ([PROTO] pp.22, 28, 50) ------------------------


@pytest.mark.parametrize(
    ("request_", "hex_body"),
    [
        # [PROTO] 50h/51h p.28: password, sum(5); "Длина сообщения: 10 байт". 1000.00 ₽.
        (c.CashInRequest(amount=100_000), "50 1e000000 a086010000"),
        (c.CashOutRequest(amount=1), "51 1e000000 0100000000"),
        # [PROTO] 1Ah/1Bh p.22: password, register number(1); 6 bytes.
        (c.MoneyRegisterRequest(register=241), "1a 1e000000 f1"),
        (c.OperationRegisterRequest(register=144), "1b 1e000000 90"),
        # [PROTO] FF3Ah p.50: password, document number(4); 10 bytes.
        (c.FnDocumentTlvRequest(number=7), "ff3a 1e000000 07000000"),
        # [PROTO] FF3Bh p.50: password only; 6 bytes.
        (c.FnReadDocumentTlvRequest(), "ff3b 1e000000"),
    ],
)
def test_golden_counter_requests(request_: c.Request, hex_body: str) -> None:
    body = c.encode_request(request_)
    assert body == bytes.fromhex(hex_body)
    assert c.decode_request(body) == request_


def test_golden_cash_answers() -> None:
    # [PROTO] 50h/51h p.28 answer: ERR, operator, through document number(2); 5 bytes.
    cash_in = c.decode_answer(bytes.fromhex("50 00 1e 2a01"), c.CashInAnswer)
    assert cash_in == c.CashInAnswer(operator=30, document_number=0x012A)
    cash_out = c.decode_answer(bytes.fromhex("51 00 1d 0300"), c.CashOutAnswer)
    assert (cash_out.operator, cash_out.document_number) == (29, 3)
    assert len(c.encode_answer(cash_in)) == 5
    with pytest.raises(ProtocolError, match="expected"):
        c.decode_answer(bytes.fromhex("50 00 1e 2a01"), c.CashOutAnswer)


def test_golden_register_answers() -> None:
    # [PROTO] 1Ah p.22 answer: ERR, operator, contents(6), 9 bytes; 1Bh pp.22–23: contents(2), 5.
    money = c.decode_answer(bytes.fromhex("1a 00 1e 40420f000001"), c.MoneyRegister)
    assert money == c.MoneyRegister(operator=30, value=0x0100_000F_4240)
    assert len(c.encode_answer(money)) == 9
    count = c.decode_answer(bytes.fromhex("1b 00 1e 0201"), c.OperationRegister)
    assert count == c.OperationRegister(operator=30, value=0x0102)
    assert len(c.encode_answer(count)) == 5


def test_golden_document_tlv_answers() -> None:
    # [PROTO] FF3Ah p.50 answer: ERR, document type (STLV tag, 2), length(2): 7 bytes.
    head = c.decode_answer(bytes.fromhex("ff3a 00 0300 2c01"), c.FnDocumentTlv)
    assert (head.document_type, head.length) == (3, 300)
    assert len(c.encode_answer(head)) == 7
    # [PROTO] FF3Bh p.50 answer: ERR, TLV data (N bytes): 3+N. Tag 1021, length 3, "Ира".
    block = c.decode_answer(bytes.fromhex("ff3b 00 fd03 0300 c8f0e0"), c.FnDocumentTlvBlock)
    assert c.decode_tlvs(block.tlv) == [(1021, "Ира".encode("cp1251"))]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (c.CashInRequest(amount=1 << 40), "fit"),
        (c.CashOutRequest(amount=-1), "fit"),
        (c.MoneyRegisterRequest(register=256), "fit"),
        (c.OperationRegisterRequest(register=-1), "fit"),
        (c.FnDocumentTlvRequest(number=1 << 32), "fit"),
    ],
)
def test_counter_requests_refuse_out_of_range(request_: c.Request, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        c.encode_request(request_)


def test_document_tlv_block_fits_one_frame() -> None:
    assert len(c.encode_answer(c.FnDocumentTlvBlock(tlv=bytes(252)))) == 255
    with pytest.raises(ValueError, match="more than 252"):
        c.encode_answer(c.FnDocumentTlvBlock(tlv=bytes(253)))
