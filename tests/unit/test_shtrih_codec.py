"""Round trips of every Shtrih-M command and answer, golden bytes, and error answers."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from gateway import fiscal
from gateway.errors import DeviceError, ProtocolError
from gateway.registers.shtrih import codec as c
from gateway.registers.shtrih.framing import Frame, FrameDecoder, encode_frame

D = dt.date(2026, 11, 22)
T = dt.time(13, 5, 9)
W = dt.datetime(2026, 11, 22, 13, 5)

REQUESTS: list[c.Request] = [
    c.ShortStatusRequest(),
    c.LongStatusRequest(password=1),
    c.DeviceTypeRequest(),
    c.SetTimeRequest(time=T),
    c.SetDateRequest(date=D),
    c.ConfirmDateRequest(date=D),
    c.XReportRequest(),
    c.ZReportRequest(),
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
    c.FnOfdStatusRequest(),
    c.FnCloseReceiptV2Request(
        payments=(100, 200) + (0,) * 13 + (5,),
        rounding=7,
        taxes=(1, 2, 3, 4, 5, 6),
        tax_system=2,
        text="x" * 64,
    ),
    c.FnOperationV2Request(
        operation=2,
        quantity=357_000,
        price=89_900,
        amount=32_094,
        tax_amount=None,
        tax_rate=1,
        department=3,
        payment_method=4,
        payment_object=1,
        name="Сыр «Российский» весовой",
    ),
    c.FnOperationV2Request(amount=None, name="KKT computes the sum"),
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
    c.ZReportAnswer(operator=30),
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
    c.FnBeginCloseShiftAnswer(),
    c.FnCloseShiftAnswer(shift_number=13, document_number=9, fiscal_sign=43),
    c.FnSendTlvAnswer(),
    c.FnOfdStatus(exchange_status=1, read_flag=0, count=3, first_number=5, first_datetime=W),
    c.FnOfdStatus(exchange_status=0, read_flag=0, count=0, first_number=0, first_datetime=None),
    c.FnCloseReceiptV2Answer(change=50, document_number=10, fiscal_sign=44, datetime=W),
    c.FnOperationV2Answer(),
]


def _ids(items: list[c.Request] | list[c.Answer]) -> list[str]:
    return [f"{type(i).__name__}-{n}" for n, i in enumerate(items)]


@pytest.mark.parametrize("request_", REQUESTS, ids=_ids(REQUESTS))
def test_request_round_trip(request_: c.Request) -> None:
    body = c.encode_request(request_)
    assert c.decode_request(body) == request_
    # and through the framing, byte by byte
    decoder = FrameDecoder()
    events = [e for b in encode_frame(body) for e in decoder.feed(bytes([b]))]
    assert events == [Frame(body)]


@pytest.mark.parametrize("answer", ANSWERS, ids=_ids(ANSWERS))
def test_answer_round_trip(answer: c.Answer) -> None:
    body = c.encode_answer(answer)
    assert c.answer_error_code(body) == 0
    assert c.decode_answer(body, type(answer)) == answer


def test_every_command_has_a_request_and_answer_tested() -> None:
    requested = {type(r).COMMAND for r in REQUESTS}
    answered = {type(a).COMMAND for a in ANSWERS}
    assert requested == set(c.Cmd)
    assert answered == set(c.Cmd)


def test_golden_short_status_request() -> None:
    # [PROTO] 10h: CMD, password 30 as 4 bytes little-endian.
    assert c.encode_request(c.ShortStatusRequest()) == bytes.fromhex("101e000000")


def test_golden_device_type_has_no_password() -> None:
    assert c.encode_request(c.DeviceTypeRequest()) == b"\xfc"


def test_golden_ff46() -> None:
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
        "ff461e0000000140420f0000006400000000ffffffffffffffffffff0801040141"
    )


def test_cp1251_on_the_wire() -> None:
    body = c.encode_request(c.FnOperationV2Request(name="Щи"))
    assert body.endswith("Щи".encode("cp1251"))


def test_error_answer_raises_typed_device_error() -> None:
    body = c.encode_error(0xFF46, 0x6B)
    assert body == bytes.fromhex("ff466b")
    with pytest.raises(DeviceError) as err:
        c.decode_answer(body, c.FnOperationV2Answer)
    assert err.value.error_code == 0x6B
    assert err.value.command == 0xFF46
    assert err.value.transient
    assert err.value.hint
    assert "paper" in err.value.hint


def test_non_transient_error() -> None:
    with pytest.raises(DeviceError) as err:
        c.decode_answer(c.encode_error(0xFF45, 0x45), c.FnCloseReceiptV2Answer)
    assert not err.value.transient


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff", bytes.fromhex("10"), bytes.fromhex("1000"), bytes.fromhex("ff0100") + b"\x01"],
)
def test_malformed_answers(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        c.decode_answer(body, c.ShortStatus if body[:1] != b"\xff" else c.FnStatus)


def test_answer_for_another_command() -> None:
    with pytest.raises(ProtocolError, match="expected"):
        c.decode_answer(c.encode_answer(c.XReportAnswer()), c.ZReportAnswer)


def test_unknown_and_malformed_requests() -> None:
    with pytest.raises(ProtocolError, match="unknown command"):
        c.decode_request(b"\x99\x1e\x00\x00\x00")
    with pytest.raises(ProtocolError):
        c.decode_request(b"\x10\x1e")  # password cut short
    with pytest.raises(ProtocolError):
        c.decode_request(bytes.fromhex("ff0a1e000000"))  # FF0Ah without the document number


def test_encoders_refuse_out_of_range() -> None:
    with pytest.raises(ValueError, match="longer"):
        c.encode_request(c.FnOperationV2Request(name="я" * 129))
    with pytest.raises(ValueError, match="fit"):
        c.encode_request(c.FnOperationV2Request(price=-1))
    with pytest.raises(ValueError, match="expected 16"):
        c.encode_request(c.FnCloseReceiptV2Request(payments=(1, 2)))


def test_tlv_round_trip() -> None:
    data = c.tlv_str(1008, "buyer@example.com") + c.encode_tlv(1203, b"7707083893")
    assert c.decode_tlvs(data) == [(1008, b"buyer@example.com"), (1203, b"7707083893")]
    with pytest.raises(ProtocolError):
        c.decode_tlvs(data[:-1])


def test_vat_mapping_covers_every_rate() -> None:
    assert set(c.VAT_TO_TAX_RATE) == set(fiscal.Vat)
    assert len(set(c.VAT_TO_TAX_RATE.values())) == len(fiscal.Vat)
    assert all(c.TAX_RATE_TO_VAT[v] is k for k, v in c.VAT_TO_TAX_RATE.items())


def test_fields_of() -> None:
    fields = c.fields_of(c.FnFindDocumentRequest(number=5))
    assert fields == {"password": 30, "number": 5}
    assert [f.name for f in dataclasses.fields(c.LongStatus)][-1] == "inn"
