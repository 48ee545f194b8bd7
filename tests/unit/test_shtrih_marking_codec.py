"""Marked goods on the Shtrih-M wire: FF61h/FF67h/FF68h/FF69h/FF70h and the marking tags.

The two FF61h exchanges are real wire traces published with the vendor's answers ([NG] #145, a
tobacco pack the ОИСМ answered; [NG] #165, a dairy code not checkable in the ФН, no ОИСМ
data): the request must encode to the same frame, LRC included, and the answer must decode to
what the trace means.
"""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.domain import fiscal, marking
from gateway.domain.errors import ProtocolError
from gateway.registers.shtrih import codec as c
from gateway.registers.shtrih import tags
from gateway.registers.shtrih.codec import marking as cm
from gateway.registers.shtrih.errors_table import ShtrihError
from gateway.registers.shtrih.framing import Frame, FrameDecoder, encode_frame

TOBACCO = b"04606203103348a3=EfODAB=UpGbL"
DAIRY = b"01046006531059902152CUnq\x1d93Gk30"

TOBACCO_REQUEST = (
    bytes.fromhex("02 27 ff 61 1e 00 00 00 01 00 1d 00") + TOBACCO + bytes.fromhex("86")
)
TOBACCO_ANSWER = bytes.fromhex(
    "02 1b ff 61 00 00 01 01 14 00 05 42 08 04 00 80 07 15 61 39 08 01 00 00 d5 07 01 00 05 cf"
)
DAIRY_REQUEST = bytes.fromhex("02 29 ff 61 1e 00 00 00 01 00 1f 00") + DAIRY + bytes.fromhex("85")
DAIRY_ANSWER = bytes.fromhex("02 07 ff 61 00 00 01 05 00 9d")


def unframe(wire: bytes) -> bytes:
    """The body of one whole frame, its LRC checked by the framing module."""
    events = FrameDecoder().feed(wire)
    assert len(events) == 1
    frame = events[0]
    assert isinstance(frame, Frame), frame
    return frame.body


# --- the real FF61h traces -------------------------------------------------------------------


def test_tobacco_check_request_is_the_traced_frame() -> None:
    request = c.MarkingCheckRequest(password=30, planned_status=1, processing_mode=0, code=TOBACCO)
    assert encode_frame(c.encode_request(request)) == TOBACCO_REQUEST
    assert c.decode_request(unframe(TOBACCO_REQUEST)) == request


def test_tobacco_check_answer_decodes_to_an_answered_check() -> None:
    answer = c.decode_answer(unframe(TOBACCO_ANSWER), c.MarkingCheck)
    assert (answer.local, answer.reason, answer.code_type) == (0, 1, 1)
    assert answer.server_code == cm.SERVER_OK
    assert answer.result == 0x05
    assert encode_frame(c.encode_answer(answer)) == TOBACCO_ANSWER
    assert answer.check() == marking.CodeCheck(
        local=0,
        reason=marking.NotCheckedReason.TYPE_NOT_CHECKABLE,
        code_type=marking.CodeType.SHORT,
        answered=True,
        result=0x05,
        server_code=0,
        server_tags=(
            (2114, bytes.fromhex("80071561")),  # the request's unixtime
            (2105, b"\x00"),
            (2005, b"\x05"),
        ),
    )


def test_tobacco_trace_is_a_definite_no_for_strict_and_offline_policies() -> None:
    # 2106 = 05h: the code's check code checked (bit 0) but not positive (bit 1 clear), the
    # status checked (bit 2) but not right (bit 3 clear).
    check = c.decode_answer(unframe(TOBACCO_ANSWER), c.MarkingCheck).check()
    assert check.ism_negative
    assert check.refusal(marking.MarkingPolicy.OFFLINE_OK) is not None
    assert check.refusal(marking.MarkingPolicy.STRICT) is not None
    assert check.refusal(marking.MarkingPolicy.ANY) is None


def test_dairy_check_request_is_the_traced_frame() -> None:
    request = c.MarkingCheckRequest(code=DAIRY)
    assert encode_frame(c.encode_request(request)) == DAIRY_REQUEST
    assert c.decode_request(unframe(DAIRY_REQUEST)) == request


def test_dairy_check_answer_has_no_server_data() -> None:
    answer = c.decode_answer(unframe(DAIRY_ANSWER), c.MarkingCheck)
    assert answer == c.MarkingCheck(local=0, reason=1, code_type=5, server=b"")
    assert encode_frame(c.encode_answer(answer)) == DAIRY_ANSWER
    check = answer.check()
    assert check == marking.CodeCheck(
        local=0,
        reason=marking.NotCheckedReason.TYPE_NOT_CHECKABLE,
        code_type=marking.CodeType.VERIFY4,
        answered=False,
        result=None,
        server_code=None,
    )
    # No answer: sold under OFFLINE_OK, refused under STRICT.
    assert check.refusal(marking.MarkingPolicy.OFFLINE_OK) is None
    assert check.refusal(marking.MarkingPolicy.STRICT) is not None


# --- FF61h: the other answer shapes ----------------------------------------------------------


def test_check_answer_fully_positive() -> None:
    body = bytes.fromhex("ff61 00 03 00 02 07 00 0f 39 08 01 00 00")
    check = c.decode_answer(body, c.MarkingCheck).check()
    assert check.answered
    assert check.positive
    assert check.result == marking.FULLY_POSITIVE
    assert check.server_tags == ((2105, b"\x00"),)
    assert check.refusal(marking.MarkingPolicy.STRICT) is None


def test_check_answer_ism_timeout_keeps_the_fn_result() -> None:
    # fnCode FFh: the ОИСМ did not answer in time; 2106 lacks bits 2/3 (UNSURE reading).
    check = c.decode_answer(bytes.fromhex("ff61 00 03 00 02 02 ff 03"), c.MarkingCheck).check()
    assert not check.answered
    assert check.server_code == cm.SERVER_TIMEOUT
    assert check.result == 0x03
    assert check.server_tags == ()
    assert not check.ism_negative
    assert check.refusal(marking.MarkingPolicy.OFFLINE_OK) is None
    assert check.refusal(marking.MarkingPolicy.STRICT) is not None


def test_check_answer_ism_reply_refused_by_the_fn() -> None:
    # fnCode 20h: the next byte is why (5 = bad CRC), not 2106.
    answer = c.decode_answer(bytes.fromhex("ff61 00 00 00 01 02 20 05"), c.MarkingCheck)
    assert answer.refusal_reason == 5
    check = answer.check()
    assert (check.answered, check.result, check.server_code) == (False, None, 0x20)
    assert check.answer_refused
    assert check.answer_refusal == 5
    assert check.answer_refused_text == "the ФН refused the marking system's answer (bad CRC)"


def test_an_answer_the_fn_refused_sells_offline_ok_and_is_refused_strict() -> None:
    # fnCode 20h, reason 1 (bad fiscal sign): not a "no" about the goods, not an absence.
    check = c.decode_answer(bytes.fromhex("ff61 00 00 01 05 02 20 01"), c.MarkingCheck).check()
    assert not check.ism_negative
    assert check.refusal(marking.MarkingPolicy.OFFLINE_OK) is None
    assert check.refusal(marking.MarkingPolicy.ANY) is None
    strict = check.refusal(marking.MarkingPolicy.STRICT)
    assert strict is not None
    assert strict.startswith(
        "the ФН refused the marking system's answer (bad fiscal sign of the answer)"
    )
    # The item-level rule gives the same answers.
    for policy, sells in (
        (marking.MarkingPolicy.OFFLINE_OK, True),
        (marking.MarkingPolicy.STRICT, False),
    ):
        code = marking.MarkingCode(DAIRY, marking.PlannedStatus.PIECE_SOLD, policy=policy)
        assert (marking.refusal(code, check) is None) is sells
    # A timeout is not named so.
    timeout = c.decode_answer(bytes.fromhex("ff61 00 00 01 05 01 ff"), c.MarkingCheck).check()
    assert not timeout.answer_refused
    assert timeout.answer_refused_text is None
    unknown = marking.CodeCheck(0, 1, 5, False, None, server_code=0x20, answer_refusal=9)
    assert unknown.answer_refused_text == (
        "the ФН refused the marking system's answer (reason code 9)"
    )


def test_check_answer_with_only_the_fn_code() -> None:
    check = c.decode_answer(bytes.fromhex("ff61 00 00 00 01 01 ff"), c.MarkingCheck).check()
    assert (check.answered, check.result, check.server_code) == (False, None, 0xFF)


def test_check_answer_local_negative() -> None:
    # 2004 = 01h: the ФН checked the code and it is wrong.
    check = c.decode_answer(bytes.fromhex("ff61 00 01 00 02 00"), c.MarkingCheck).check()
    assert check.local_negative
    assert check.refusal(marking.MarkingPolicy.OFFLINE_OK) is not None


def test_check_answer_unknown_reason_is_kept_as_a_number() -> None:
    check = c.decode_answer(bytes.fromhex("ff61 00 00 09 00 00"), c.MarkingCheck).check()
    assert check.reason == 9


@pytest.mark.parametrize(
    "body",
    [
        "ff61 00 00 01",  # no length byte
        "ff61 00 00 01 05 03 00 0f",  # announces 3 bytes, has 2
        "ff61 00 00 01 05 01 00 0f",  # announces 1 byte, has 2
    ],
)
def test_malformed_check_answers(body: str) -> None:
    with pytest.raises(ProtocolError):
        c.decode_answer(bytes.fromhex(body), c.MarkingCheck)


def test_malformed_ism_tags_raise_protocol_error_on_check() -> None:
    answer = c.decode_answer(bytes.fromhex("ff61 00 00 00 02 04 00 0f 39 08"), c.MarkingCheck)
    assert answer.result == 0x0F
    with pytest.raises(ProtocolError):
        answer.check()


def test_check_request_refuses_a_code_over_the_frame() -> None:
    with pytest.raises(ValueError, match="245"):
        c.MarkingCheckRequest(code=b"x" * 240, tlv=b"y" * 6).to_body()
    assert len(c.MarkingCheckRequest(code=b"x" * 245).to_body()) == 255


def test_check_request_with_measured_tags() -> None:
    tlv = tags.check_tags(
        marking.MarkingCode(b"0104\x1d93ab", marking.PlannedStatus.MEASURED_SOLD), 357_000, 11
    )
    # 2108 = 11 (kilogram); 1023 FVLN: 3 decimals, 357 = 65 01
    assert tlv == bytes.fromhex("3c08 0100 0b") + bytes.fromhex("ff03 0300 03 6501")
    body = c.MarkingCheckRequest(planned_status=2, code=b"0104\x1d93ab", tlv=tlv).to_body()
    assert body == bytes.fromhex("ff61 1e000000 02 00 09 0c") + b"0104\x1d93ab" + tlv


# --- FF67h bind ------------------------------------------------------------------------------


def test_bind_request() -> None:
    assert c.MarkingBindRequest(code=DAIRY).to_body() == (bytes.fromhex("ff67 1e000000 1f") + DAIRY)
    assert c.MarkingBindRequest(code=b"ab", volume_sort=True).to_body() == bytes.fromhex(
        "ff67 1e000000 02 6162 ff"
    )


def test_bind_answer_without_a_check() -> None:
    answer = c.decode_answer(bytes.fromhex("ff67 00 444d 00"), c.MarkingBind)
    assert (answer.code_kind, answer.dm_type) == (b"DM", cm.DM_KM88)
    assert answer.result is None
    assert answer.check() is None


def test_bind_answer_with_the_registers_own_check() -> None:
    body = bytes.fromhex("ff67 00 444d 02 03 00 01 07 00 0f 39 08 01 00 00")
    answer = c.decode_answer(body, c.MarkingBind)
    assert answer.dm_type == cm.DM_TOBACCO
    assert answer.result == 0x0F
    check = answer.check()
    assert check is not None
    assert check.positive
    assert c.encode_answer(answer) == body


def test_bind_answer_too_short() -> None:
    with pytest.raises(ProtocolError, match="too short"):
        c.decode_answer(bytes.fromhex("ff67 00 444d"), c.MarkingBind)


def test_bind_error_is_a_register_refusal() -> None:
    # ФН ACh: the code was never checked in the ФН.
    with pytest.raises(ShtrihError) as caught:
        c.decode_answer(bytes.fromhex("ff67 ac"), c.MarkingBind)
    assert caught.value.error_code == 0xAC
    assert caught.value.reason.value == "marking"


# --- FF69h accept / reject / clear -----------------------------------------------------------


@pytest.mark.parametrize(("action", "byte"), [(cm.REJECT, 0), (cm.ACCEPT, 1), (cm.CLEAR, 2)])
def test_accept_request(action: int, byte: int) -> None:
    assert c.MarkingAcceptRequest(action=action).to_body() == bytes.fromhex(
        f"ff69 1e000000 {byte:02x}"
    )


def test_accept_answer_with_2106() -> None:
    assert c.decode_answer(bytes.fromhex("ff69 00 0f"), c.MarkingAcceptAnswer).result == 0x0F


def test_accept_answer_without_2106() -> None:
    # [OPOS] reads no data after the error byte: the driver must tolerate its absence.
    answer = c.decode_answer(bytes.fromhex("ff69 00"), c.MarkingAcceptAnswer)
    assert answer.result is None
    assert c.encode_answer(answer) == bytes.fromhex("ff69 00")


def test_clear_refused_by_shtrih_nano() -> None:
    # ФН A1h, wrong Bxh sequence: the gateway's own sequence, not the cashier's.
    with pytest.raises(ShtrihError) as caught:
        c.decode_answer(bytes.fromhex("ff69 a1"), c.MarkingAcceptAnswer)
    assert caught.value.reason.value == "invalid_data"


# --- FF70h / FF68h ---------------------------------------------------------------------------


def test_marking_status() -> None:
    body = bytes.fromhex("ff70 00 02 01 12 03 01 02 0500")
    status = c.decode_answer(body, c.MarkingStatus)
    state = status.state()
    assert state == marking.MarkingState(
        check_state=2,
        notification_state=1,
        flags=0x12,
        saved_results=3,
        codes_in_notification=1,
        area_fill=2,
        unsent=5,
    )
    assert state.waiting_decision


def test_marking_status_too_short() -> None:
    with pytest.raises(ProtocolError, match="too short"):
        c.decode_answer(bytes.fromhex("ff70 00 01 00 1f 00 00 00 05"), c.MarkingStatus)


def test_ism_exchange_status() -> None:
    body = bytes.fromhex("ff68 00 02 0300 0c000000 1a0b160d05 07")
    status = c.decode_answer(body, c.IsmExchangeStatus)
    assert status.current_datetime == dt.datetime(2026, 11, 22, 13, 5)
    assert status.exchange() == marking.IsmExchange(
        state=2, unsent=3, current_number=12, first_unsent_at="2026-11-22T13:05", fill_percent=7
    )


def test_ism_exchange_status_with_nothing_queued() -> None:
    body = bytes.fromhex("ff68 00 00 0000 00000000 0000000000 00")
    exchange = c.decode_answer(body, c.IsmExchangeStatus).exchange()
    assert exchange.first_unsent_at is None
    assert exchange.unsent == 0


def test_ism_exchange_not_registered_for_marking() -> None:
    with pytest.raises(ShtrihError) as caught:
        c.decode_answer(bytes.fromhex("ff68 32"), c.IsmExchangeStatus)
    assert caught.value.error_code == 0x32


# --- FF71h–FF73h -----------------------------------------------------------------------------


def test_notification_upload_shapes() -> None:
    begin = c.decode_answer(bytes.fromhex("ff71 00 0200 05000000 2c01"), c.NotificationBegin)
    assert (begin.count, begin.first_number, begin.first_size) == (2, 5, 300)
    block = c.decode_answer(bytes.fromhex("ff72 00 05000000 2c01 8000 aabb"), c.NotificationBlock)
    assert (block.number, block.full_size, block.offset, block.block) == (5, 300, 128, b"\xaa\xbb")
    assert c.NotificationConfirmRequest(number=5, crc=0x1234).to_body() == bytes.fromhex(
        "ff73 1e000000 05000000 34120000"
    )


# --- marking tags ----------------------------------------------------------------------------


def test_fvln_drops_trailing_zero_decimals() -> None:
    assert tags.fvln(1023, 1_000_000) == bytes.fromhex("ff03 0200 00 01")
    assert tags.fvln(1023, 500_000) == bytes.fromhex("ff03 0200 01 05")
    assert tags.fvln(1023, 1_234_567) == bytes.fromhex("ff03 0400 06 87d612")


def test_check_tags_only_for_measured_or_fractional_codes() -> None:
    piece = marking.MarkingCode(DAIRY, marking.PlannedStatus.PIECE_SOLD)
    assert tags.check_tags(piece, None, None) == b""
    with pytest.raises(ValueError, match="measured or fractional"):
        tags.check_tags(piece, 1_000_000, 0)
    half = marking.MarkingCode(DAIRY, marking.PlannedStatus.PIECE_SOLD, fraction=(1, 2))
    # 2108 = 0; 1023 = 0.5; 1291 {1293 = 1, 1294 = 2}
    assert tags.check_tags(half, None, None) == (
        bytes.fromhex("3c08 0100 00")
        + bytes.fromhex("ff03 0200 01 05")
        + bytes.fromhex("0b05 0a00 0d05 0100 01 0e05 0100 02")
    )


def test_check_tags_one_rule_per_kind_of_code() -> None:
    # A part of a piece: counted in pieces; a sale's line gives its own quantity.
    two_thirds = marking.MarkingCode(DAIRY, marking.PlannedStatus.PIECE_SOLD, fraction=(2, 3))
    with pytest.raises(ValueError, match="pieces"):
        tags.check_tags(two_thirds, 666_667, 11)
    assert tags.check_tags(two_thirds, 666_666, 0) == (
        tags.byte(2108, 0) + tags.fvln(1023, 666_666) + tags.fraction(2, 3)
    )
    # 2/3 = 0.6666666…: half-up gives 0.666667 (floored it would be 0.666666).
    assert tags.fraction_quantity(2, 3) == 666_667
    assert tags.fraction_quantity(1, 3) == 333_333
    assert tags.fraction_quantity(1, 2) == 500_000
    assert tags.check_tags(two_thirds, None, None) == (
        tags.byte(2108, 0) + tags.fvln(1023, 666_667) + tags.fraction(2, 3)
    )
    # A measured code needs both its quantity and its unit, and sends nothing else.
    cheese = marking.MarkingCode(DAIRY, marking.PlannedStatus.MEASURED_SOLD)
    for quantity, unit in ((None, 11), (357_000, None), (None, None)):
        with pytest.raises(ValueError, match="quantity and unit"):
            tags.check_tags(cheese, quantity, unit)
    assert tags.check_tags(cheese, 357_000, 11) == tags.byte(2108, 11) + tags.fvln(1023, 357_000)


def _permit() -> marking.IndustryAttribute:
    return marking.IndustryAttribute("030", "21.11.2023", "1944", "UUID=abc&Time=1700000000")


def test_item_tags_of_a_marked_fraction_with_a_permit() -> None:
    item = fiscal.Item(
        name="Сыр",
        price=20000,
        quantity=500_000,
        amount=10000,
        vat=fiscal.Vat.VAT10,
        payment_object=33,
        marking=marking.MarkingCode(DAIRY, marking.PlannedStatus.PIECE_SOLD, fraction=(1, 2)),
        industry=(_permit(),),
    )
    out = tags.item_tags(item)
    assert out[0] == bytes.fromhex("3c08 0100 00")  # 2108 first
    members = (
        bytes.fromhex("ee04 0300") + b"030"
        + bytes.fromhex("ef04 0a00") + b"21.11.2023"
        + bytes.fromhex("f004 0400") + b"1944"
        + bytes.fromhex("f104 1800") + b"UUID=abc&Time=1700000000"
    )  # fmt: skip
    assert out[1] == bytes.fromhex("ec04") + len(members).to_bytes(2, "little") + members
    assert out[2] == bytes.fromhex("0b05 0a00 0d05 0100 01 0e05 0100 02")  # 1291
    assert len(out) == 3


def test_receipt_tags_carry_1261() -> None:
    receipt = fiscal.Receipt(
        type=fiscal.ReceiptType.SELL,
        taxation=fiscal.TaxationType.OSN,
        items=(),
        payments=(),
        industry=(_permit(),),
    )
    out = tags.receipt_tags(receipt)
    assert len(out) == 1
    assert out[0][:2] == (1261).to_bytes(2, "little")
    assert c.decode_tlvs(out[0][4:]) == [
        (1262, b"030"),
        (1263, b"21.11.2023"),
        (1264, b"1944"),
        (1265, b"UUID=abc&Time=1700000000"),
    ]
