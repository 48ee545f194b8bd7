"""Marked goods: the Shtrih driver against the emulator on a real pty.

The emulator plays the ФН-М and a fake ОИСМ whose answer is switched per test (or per code);
its paper tape shows what the ФН kept for every item (2000 the code, 2106 the check result).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.atol import marking_results
from gateway.domain import fiscal, marking
from gateway.domain.errors import LinkError, Refusal, RegisterRefused
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.shtrih import tags
from gateway.registers.shtrih.codec import decode_tlvs, encode_request
from gateway.registers.shtrih.driver import ShtrihRegister
from gateway.registers.shtrih.errors_table import ShtrihError

# The `emulator` and `register` fixtures and the tape reader are the Shtrih driver tests' own.
pytest_plugins = ["tests.integration.test_shtrih_driver"]
from tests.integration.test_shtrih_driver import tape  # noqa: E402

GS = "\x1d"
# A GS1 code with AI 91/92 and a 44-character check code: the ФН checks it itself (2100 = 4).
SHOES = ("0104600439931256" + "21JgXJ5.T" + GS + "91EE06" + GS + "92" + "A" * 43 + "=").encode()
# A dairy code with a 4-character check code (AI 93): not checkable in the ФН (2100 = 5).
MILK = ("0104600653105990" + "2152CUnq" + GS + "93Gk30").encode()
# A tobacco pack's 29-character code (2100 = 1).
PACK = b"04606203103348a3=EfODAB=UpGbL"

PIECE = marking.PlannedStatus.PIECE_SOLD


def code(
    raw: bytes,
    status: marking.PlannedStatus = PIECE,
    policy: marking.MarkingPolicy = marking.MarkingPolicy.OFFLINE_OK,
    **extra: object,
) -> marking.MarkingCode:
    return marking.MarkingCode(raw, status, policy=policy, **extra)  # type: ignore[arg-type]


def marked(
    name: str,
    price: int,
    mark: marking.MarkingCode,
    *,
    quantity: int = fiscal.QTY_SCALE,
    unit: int = 0,
    industry: tuple[marking.IndustryAttribute, ...] = (),
) -> fiscal.Item:
    return fiscal.Item(
        name=name,
        price=price,
        quantity=quantity,
        amount=fiscal.round_qty(price * quantity),
        vat=fiscal.Vat.VAT20,
        payment_object=33,
        measurement_unit=unit,
        marking=mark,
        industry=industry,
    )


def plain(name: str, price: int) -> fiscal.Item:
    return fiscal.Item(
        name=name, price=price, quantity=fiscal.QTY_SCALE, amount=price, vat=fiscal.Vat.VAT10
    )


def receipt(
    *items: fiscal.Item, kind: fiscal.ReceiptType = fiscal.ReceiptType.SELL
) -> fiscal.Receipt:
    total = sum(i.amount for i in items)
    return fiscal.Receipt(
        type=kind,
        taxation=fiscal.TaxationType.OSN,
        items=items,
        payments=(fiscal.Payment(fiscal.PaymentType.CASH, total),),
        operator=fiscal.Operator("Иванова А."),
    )


def sells(tmp_path: Path) -> list[dict[str, Any]]:
    """The receipts on the paper tape."""
    return [line for line in tape(tmp_path) if line["type"] in ("sell", "sellReturn")]


def item_tags(line: dict[str, Any]) -> list[dict[str, Any]]:
    """Each item's tags (the members of its 1059) as the tape shows them."""
    return [i["tags"] for i in line["items"]]


async def ism(emulator: EmulatorServer, answer: str, raw: bytes | None = None) -> None:
    """The fake ОИСМ's answer to every code, or to `raw` only."""
    if raw is None:
        await emulator.apply_fault("ism_answer", answer)
    else:
        text = "hex:" + raw.hex()
        await emulator.apply_fault("ism_code_answer", {"code": text, "answer": answer})


async def table_is_empty(register: ShtrihRegister) -> bool:
    state = await register.marking_state()
    return state.saved_results == 0 and not state.waiting_decision


@pytest.fixture
async def shift(register: ShtrihRegister) -> ShtrihRegister:
    await register.open_shift()
    return register


# --- sales -----------------------------------------------------------------------------------


@pytest.mark.parametrize("firmware", ["classic", "core"])
async def test_positive_sale_binds_every_code(
    shift: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path, firmware: str
) -> None:
    # "auto": the driver reads the model id (FCh) on the first receipt and picks the order.
    await emulator.apply_fault("firmware", firmware)
    r = receipt(
        marked("Кроссовки", 499000, code(SHOES)),
        plain("Пакет", 500),
        marked("Молоко", 8990, code(MILK)),
    )
    res = await shift.print_receipt(r)
    assert [m.index for m in res.marks] == [0, 2]
    assert [m.code for m in res.marks] == [SHOES, MILK]
    assert all(m.check.positive for m in res.marks)
    assert [m.result for m in res.marks] == [marking.FULLY_POSITIVE] * 2
    assert res.marks[0].check.code_type == marking.CodeType.VERIFY44
    assert res.marks[1].check.code_type == marking.CodeType.VERIFY4

    [sale] = sells(tmp_path)
    shoes, bag, milk = item_tags(sale)
    assert (shoes["2106"], milk["2106"]) == (0x0F, 0x0F)
    assert "2000" in shoes
    assert "2000" in milk
    assert "2000" not in bag
    assert (shoes["2108"], bag["2108"]) == (0, 0)
    assert await table_is_empty(shift)


async def test_explicit_core_order(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await emulator.apply_fault("firmware", "core")
    reg = ShtrihRegister(str(tmp_path / "emu.tty"), marking_order="core")
    await reg.connect()
    try:
        await reg.open_shift()
        res = await reg.print_receipt(
            receipt(plain("Пакет", 500), marked("Сигареты", 21500, code(PACK)))
        )
        assert [m.result for m in res.marks] == [marking.FULLY_POSITIVE]
        # A receipt without marked goods goes in the same order (8Dh, tags before each line).
        await reg.print_receipt(receipt(plain("Хлеб", 4550), plain("Соль", 2000)))
        assert [line["total"] for line in sells(tmp_path)] == [22000, 6550]
    finally:
        await reg.close()


async def test_classic_order_refused_by_core_firmware(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    # The oracle's own rules: FF67h before the line's 2108 is refused on «кассовое ядро».
    await emulator.apply_fault("firmware", "core")
    reg = ShtrihRegister(str(tmp_path / "emu.tty"), marking_order="classic")
    await reg.connect()
    try:
        await reg.open_shift()
        with pytest.raises(RegisterRefused):
            await reg.print_receipt(receipt(marked("Молоко", 8990, code(MILK))))
        assert sells(tmp_path) == []
        assert not (await reg.status()).receipt_open
        assert await table_is_empty(reg)
    finally:
        await reg.close()


@pytest.mark.parametrize("answer", ["negative", "sold"])
async def test_refused_code_prints_nothing(
    shift: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path, answer: str
) -> None:
    await ism(emulator, answer, MILK)
    n0 = (await shift.fn_status()).last_document_number
    r = receipt(marked("Кроссовки", 499000, code(SHOES)), marked("Молоко", 8990, code(MILK)))
    with pytest.raises(RegisterRefused) as caught:
        await shift.print_receipt(r)
    err = caught.value
    assert err.reason is Refusal.MARKING
    assert "request item 2" in err.message
    assert "Молоко" in err.message
    assert "93Gk30" in err.message
    assert "<GS>" in err.message
    assert err.hint
    assert "take the item off" in err.hint
    assert sells(tmp_path) == []
    assert (await shift.fn_status()).last_document_number == n0
    assert not (await shift.status()).receipt_open
    assert await table_is_empty(shift)
    # The same receipt without the refused item sells.
    res = await shift.print_receipt(receipt(marked("Кроссовки", 499000, code(SHOES))))
    assert res.marks[0].result == marking.FULLY_POSITIVE


async def test_any_policy_sells_a_refused_code(
    shift: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path
) -> None:
    await ism(emulator, "negative")
    mark = code(MILK, policy=marking.MarkingPolicy.ANY)
    res = await shift.print_receipt(receipt(marked("Молоко", 8990, mark)))
    assert res.marks[0].check.ism_negative
    assert res.marks[0].result == 0x05
    assert item_tags(sells(tmp_path)[0])[0]["2106"] == 0x05


async def test_ism_silent_sells_offline_ok(
    shift: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path
) -> None:
    await ism(emulator, "timeout")
    res = await shift.print_receipt(receipt(marked("Кроссовки", 499000, code(SHOES))))
    [mark] = res.marks
    assert not mark.check.answered
    assert mark.check.server_code == 0xFF
    assert mark.result is not None
    assert mark.result & (marking.ISM_DONE | marking.ISM_POSITIVE) == 0
    tags = item_tags(sells(tmp_path)[0])[0]
    assert tags["2106"] == mark.result
    assert isinstance(tags["2106"], int)
    assert tags["2106"] & 0x0C == 0
    # The sale owes the ОИСМ a notification.
    assert (await shift.ism_exchange()).unsent == 1
    assert (await shift.marking_state()).unsent == 1


async def test_ism_silent_refused_strict(
    shift: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path
) -> None:
    await ism(emulator, "timeout")
    strict = code(SHOES, policy=marking.MarkingPolicy.STRICT)
    with pytest.raises(RegisterRefused) as caught:
        await shift.print_receipt(receipt(marked("Кроссовки", 499000, strict)))
    assert caught.value.reason is Refusal.MARKING
    assert "did not confirm" in caught.value.message
    assert "request item 1" in caught.value.message
    assert sells(tmp_path) == []
    assert await table_is_empty(shift)


async def test_autonomous_register_sells_offline_ok(
    shift: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path
) -> None:
    await ism(emulator, "autonomous")
    res = await shift.print_receipt(receipt(marked("Сигареты", 21500, code(PACK))))
    [mark] = res.marks
    assert not mark.check.answered
    assert mark.check.server_code is None
    assert mark.result is not None
    assert mark.result & marking.AUTONOMOUS
    assert item_tags(sells(tmp_path)[0])[0]["2106"] == mark.result


async def test_strict_positive_sells(shift: ShtrihRegister) -> None:
    strict = code(MILK, policy=marking.MarkingPolicy.STRICT)
    res = await shift.print_receipt(receipt(marked("Молоко", 8990, strict)))
    assert res.marks[0].check.positive


@pytest.mark.parametrize("firmware", ["classic", "core"])
async def test_measured_marked_item(
    shift: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path, firmware: str
) -> None:
    await emulator.apply_fault("firmware", firmware)
    cheese = marked(
        "Сыр весовой",
        89900,
        code(SHOES, marking.PlannedStatus.MEASURED_SOLD),
        quantity=357_000,
        unit=11,  # kilogram
    )
    res = await shift.print_receipt(receipt(cheese))
    assert res.marks[0].result == marking.FULLY_POSITIVE
    [line] = sells(tmp_path)[0]["items"]
    assert line["quantity"] == 0.357
    assert line["tags"]["2108"] == 11
    assert line["tags"]["2106"] == 0x0F


async def test_fraction_and_permit(shift: ShtrihRegister, tmp_path: Path) -> None:
    permit = marking.IndustryAttribute("030", "21.11.2023", "1944", "UUID=ab-12&Time=1700000000")
    half = marked(
        "Сыр, половина головки",
        40000,
        code(MILK, fraction=(1, 2)),
        quantity=500_000,
        industry=(permit,),
    )
    res = await shift.print_receipt(receipt(half))
    assert res.marks[0].result == marking.FULLY_POSITIVE
    # 1291 as the ФН archive holds it (FF3Ah/FF3Bh): 1293 = 1, 1294 = 2, VLN.
    [item_stlv] = [v for t, v in await shift.document_tags(res.document_number) if t == 1059]
    [fraction] = [v for t, v in decode_tlvs(item_stlv) if t == 1291]
    assert decode_tlvs(fraction) == [(1293, b"\x01"), (1294, b"\x02")]
    [tags] = item_tags(sells(tmp_path)[0])
    assert tags["1260"] == {
        "1262": "030",
        "1263": "21.11.2023",
        "1264": "1944",
        "1265": "UUID=ab-12&Time=1700000000",
    }


@pytest.mark.parametrize("firmware", ["classic", "core"])
async def test_return_of_a_marked_item(
    shift: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path, firmware: str
) -> None:
    await emulator.apply_fault("firmware", firmware)
    back = marked("Кроссовки", 499000, code(SHOES, marking.PlannedStatus.PIECE_RETURNED))
    res = await shift.print_receipt(receipt(back, kind=fiscal.ReceiptType.SELL_RETURN))
    assert res.marks[0].result == marking.FULLY_POSITIVE
    [line] = sells(tmp_path)
    assert line["type"] == "sellReturn"
    assert item_tags(line)[0]["2106"] == 0x0F


# --- the table of checked codes --------------------------------------------------------------


async def test_explicit_check_accept_and_status(shift: ShtrihRegister) -> None:
    check = await shift.check_code(code(SHOES))
    assert check.positive
    assert (await shift.marking_state()).waiting_decision
    assert await shift.accept_code(True) == marking.FULLY_POSITIVE
    state = await shift.marking_state()
    assert not state.waiting_decision
    assert state.saved_results == 1
    await shift.clear_codes()
    assert await table_is_empty(shift)


async def test_a_code_left_waiting_is_rejected_before_the_sale(
    shift: ShtrihRegister, tmp_path: Path
) -> None:
    await shift.check_code(code(PACK))
    assert (await shift.marking_state()).waiting_decision
    res = await shift.print_receipt(receipt(marked("Молоко", 8990, code(MILK))))
    assert [m.code for m in res.marks] == [MILK]
    assert len(sells(tmp_path)) == 1


async def test_cancel_receipt_clears_the_table(shift: ShtrihRegister) -> None:
    await shift.check_code(code(SHOES))
    await shift.accept_code(True)
    assert (await shift.marking_state()).saved_results == 1
    with pytest.raises(ShtrihError):
        await shift.cancel_receipt()  # no receipt is open: 88h is refused, the table still goes
    assert await table_is_empty(shift)


async def test_power_cut_after_binding_then_recovery(
    shift: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path
) -> None:
    r = receipt(marked("Кроссовки", 499000, code(SHOES)), marked("Молоко", 8990, code(MILK)))
    n0 = (await shift.fn_status()).last_document_number
    await emulator.apply_fault("power_cut_mid_receipt", 1)
    with pytest.raises(LinkError):
        await shift.print_receipt(r)
    await emulator.power_lost.wait()
    await shift.close()
    revived = EmulatorServer(tmp_path / "emu.state")
    await revived.start_pty(link=tmp_path / "emu.tty")
    try:
        await shift.connect()
        status = await shift.settle()
        assert status.receipt_open
        assert (await shift.marking_state()).saved_results == 2  # the ФН kept the table
        await shift.cancel_receipt()
        assert await table_is_empty(shift)
        assert (await shift.fn_status()).last_document_number == n0
        res = await shift.print_receipt(r)  # the whole receipt again, checks included
        assert [m.result for m in res.marks] == [marking.FULLY_POSITIVE] * 2
        assert len(sells(tmp_path)) == 1
    finally:
        await shift.close()
        await revived.close()


# --- a ФН without marked goods ---------------------------------------------------------------


async def test_fn_without_marking(
    shift: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path
) -> None:
    await emulator.apply_fault("fn_marking", False)
    for query in (shift.marking_state, shift.ism_exchange):
        with pytest.raises(RegisterRefused) as caught:
            await query()
        assert caught.value.reason is Refusal.NOT_SUPPORTED
        assert caught.value.hint
        assert "service engineer" in caught.value.hint
    with pytest.raises(RegisterRefused) as caught:
        await shift.print_receipt(receipt(marked("Молоко", 8990, code(MILK))))
    assert caught.value.reason is Refusal.NOT_SUPPORTED
    assert sells(tmp_path) == []
    await shift.clear_codes()  # refused (ФН A0h) and left alone, as on Штрих-Нано-Ф
    res = await shift.print_receipt(receipt(plain("Хлеб", 4550)))
    assert res.marks == ()


async def test_check_refused_by_a_fn_without_marking(
    shift: ShtrihRegister, emulator: EmulatorServer
) -> None:
    await emulator.apply_fault("fn_marking", False)
    with pytest.raises(ShtrihError) as caught:
        await shift.check_code(code(MILK))
    assert caught.value.error_code == 0xA0
    assert caught.value.reason is Refusal.MARKING
    assert caught.value.hint
    assert "not registered for marked goods" in caught.value.hint


async def test_empty_code_refused_before_the_register(shift: ShtrihRegister) -> None:
    with pytest.raises(RegisterRefused) as caught:
        await shift.check_code(code(b""))
    assert caught.value.reason is Refusal.MARKING


async def test_a_tag_longer_than_one_block_is_refused_before_anything_is_sent(
    shift: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path
) -> None:
    # 1260 goes whole in one FF4Dh: 37 bytes of frame and members plus the value.
    permit = marking.IndustryAttribute("030", "21.11.2023", "1944", "U" * 230)
    r = receipt(marked("Молоко", 8990, code(MILK), industry=(permit,)))
    with pytest.raises(RegisterRefused) as err:
        await shift.print_receipt(r)
    assert err.value.reason is Refusal.INVALID_DATA
    assert "request item 1 'Молоко': tag 1260 takes" in err.value.message
    assert sells(tmp_path) == []
    assert not (await shift.status()).receipt_open
    assert await table_is_empty(shift)


# --- FF67h re-check, a register that does not clear, one FF61h rule, autonomous FF68h --------


def spy_commands(register: ShtrihRegister, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every request body the driver sends from now on."""
    sent: list[bytes] = []
    call = register._call

    async def recording(request: Any, answer_cls: Any, timeout_s: float | None = None) -> Any:
        sent.append(encode_request(request))
        return await call(request, answer_cls, timeout_s)

    monkeypatch.setattr(register, "_call", recording)
    return sent


@pytest.mark.parametrize("firmware", ["classic", "core"])
async def test_a_negative_recheck_on_binding_refuses_the_receipt(
    shift: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path, firmware: str
) -> None:
    await emulator.apply_fault("firmware", firmware)
    # FF61h says yes; FF67h checks again and the ОИСМ now says "sold".
    await emulator.apply_fault("ism_bind_recheck", "sold")
    n0 = (await shift.fn_status()).last_document_number
    r = receipt(plain("Пакет", 500), marked("Молоко", 8990, code(MILK)))
    with pytest.raises(RegisterRefused) as caught:
        await shift.print_receipt(r)
    err = caught.value
    assert err.reason is Refusal.MARKING
    assert "request item 2 'Молоко'" in err.message
    assert "checked the code again when binding" in err.message
    assert err.hint is not None
    assert "take the item off" in err.hint
    assert sells(tmp_path) == []
    assert (await shift.fn_status()).last_document_number == n0
    assert not (await shift.status()).receipt_open
    assert await table_is_empty(shift)


async def test_a_recheck_on_binding_replaces_the_check_in_the_result(
    shift: ShtrihRegister, emulator: EmulatorServer, tmp_path: Path
) -> None:
    # The re-check gets no answer: OFFLINE_OK sells, and the result holds the FF67h check.
    await emulator.apply_fault("ism_bind_recheck", "timeout")
    res = await shift.print_receipt(receipt(marked("Кроссовки", 499000, code(SHOES))))
    [mark] = res.marks
    assert mark.check.server_code == 0xFF
    assert not mark.check.answered
    assert mark.result == mark.check.result
    assert mark.result is not None
    assert mark.result & marking.ISM_DONE == 0
    assert item_tags(sells(tmp_path)[0])[0]["2106"] == mark.result
    # STRICT refuses the same re-check.
    strict = code(SHOES, policy=marking.MarkingPolicy.STRICT)
    with pytest.raises(RegisterRefused) as caught:
        await shift.print_receipt(receipt(marked("Кроссовки", 499000, strict)))
    assert caught.value.reason is Refusal.MARKING
    assert len(sells(tmp_path)) == 1


async def test_without_a_recheck_the_fast_check_stays(shift: ShtrihRegister) -> None:
    res = await shift.print_receipt(receipt(marked("Молоко", 8990, code(MILK))))
    [mark] = res.marks
    assert mark.check.positive
    assert mark.check.server_code == 0  # FF61h's check: FF67h answered no block


async def test_a_register_that_refuses_to_clear_warns_once(
    shift: ShtrihRegister,
    emulator: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await emulator.apply_fault("marking_clear_refused", True)
    sent = spy_commands(shift, monkeypatch)
    clear = bytes.fromhex("ff69") + (30).to_bytes(4, "little") + b"\x02"
    caplog.set_level(logging.DEBUG, logger="gateway.registers.shtrih.driver")
    for name in ("Молоко", "Кефир"):
        await shift.print_receipt(receipt(marked(name, 8990, code(MILK))))
    assert len(sells(tmp_path)) == 2
    # A1h is also an ordinary "wrong state" answer: the clear is tried each time, the warning
    # given once per connection.
    assert sent.count(clear) == 2
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "FF69h 2" in r.message
    ]
    assert len(warnings) == 1
    assert await shift.clear_codes() is False
    # A refused code is still rejected (FF69h 0), so nothing of it stays waiting.
    await ism(emulator, "sold")
    with pytest.raises(RegisterRefused):
        await shift.print_receipt(receipt(marked("Молоко", 8990, code(MILK))))
    assert not (await shift.marking_state()).waiting_decision
    # A new connection warns again; a register that clears says so.
    await shift.close()
    await shift.connect()
    caplog.clear()
    assert await shift.clear_codes() is False
    assert any(r.levelno == logging.WARNING and "FF69h 2" in r.message for r in caplog.records)
    await emulator.apply_fault("marking_clear_refused", False)
    assert await shift.clear_codes() is True


async def test_a_fractional_code_sends_its_quantity_in_a_sale_and_in_a_task(
    shift: ShtrihRegister, monkeypatch: pytest.MonkeyPatch
) -> None:
    third = code(MILK, fraction=(2, 3))
    sent = spy_commands(shift, monkeypatch)
    # The sale: 1023 is the line's own quantity, here the fraction floored (the parser allows
    # floor or ceiling), so the check and the line agree.
    await shift.print_receipt(receipt(marked("Сыр, 2/3 головки", 60000, third, quantity=666_666)))
    # The task (beginMarkingCodeValidation) has no line: n/d rounded half-up stands in.
    await shift.check_code(third, quantity=None, unit=None)
    await shift.accept_code(False)
    # The same sale with the line's quantity rounded half-up: the same bytes as the task.
    await shift.print_receipt(receipt(marked("Сыр, 2/3 головки", 60000, third, quantity=666_667)))
    sale, task, sale_up = [body for body in sent if body[:2] == b"\xff\x61"]
    fraction = tags.fraction(2, 3)
    assert sale.endswith(MILK + tags.byte(2108, 0) + tags.fvln(1023, 666_666) + fraction)
    assert task.endswith(MILK + tags.byte(2108, 0) + tags.fvln(1023, 666_667) + fraction)
    assert sale_up == task


async def test_an_autonomous_fn_has_no_exchange_but_is_not_refused(
    shift: ShtrihRegister, emulator: EmulatorServer
) -> None:
    assert not (await shift.ism_exchange()).autonomous
    await ism(emulator, "autonomous")
    exchange = await shift.ism_exchange()
    assert exchange.autonomous
    assert exchange.unsent == 0
    assert (await shift.marking_state()).check_state == 1


async def test_an_answer_the_fn_refused_sells_offline_ok_apart_and_is_refused_strict(
    shift: ShtrihRegister,
    emulator: EmulatorServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await ism(emulator, "refused")  # fnCode 20h, reason 1: bad fiscal sign of the answer
    res = await shift.print_receipt(receipt(marked("Молоко", 8990, code(MILK))))
    [mark] = res.marks
    assert mark.check.answer_refused
    assert mark.check.answer_refusal == 1
    assert not mark.check.answered
    said = "the ФН refused the marking system's answer (bad fiscal sign of the answer)"
    assert any(r.levelno == logging.WARNING and said in r.getMessage() for r in caplog.records)
    assert marking_results.mark_result(mark)["ismAnswerRefused"] == said
    assert len(sells(tmp_path)) == 1
    strict = code(MILK, policy=marking.MarkingPolicy.STRICT)
    with pytest.raises(RegisterRefused) as caught:
        await shift.print_receipt(receipt(marked("Молоко", 8990, strict)))
    assert caught.value.reason is Refusal.MARKING
    assert said in caught.value.message
    assert len(sells(tmp_path)) == 1
    assert await table_is_empty(shift)
