"""Marked goods in ATOL tasks: imcParams, industryInfo and the marking tasks -> domain values,
and every refusal by path."""

from __future__ import annotations

import base64
import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from gateway.atol import marking_results
from gateway.atol.decimal_json import dumps
from gateway.atol.names import NameMapping, PermitDefaults
from gateway.atol.parser import parse_request, parse_task, parse_tasks_json
from gateway.atol.tasks import CodeCheckParams, MarkingAction, MarkingTask, ReceiptTask
from gateway.domain import fiscal
from gateway.domain.errors import ValidationError
from gateway.domain.marking import (
    AUTONOMOUS,
    FULLY_POSITIVE,
    CodeCheck,
    CodeType,
    IndustryAttribute,
    IsmExchange,
    MarkingCode,
    MarkingPolicy,
    MarkingState,
    MarkResult,
    NotCheckedReason,
    PlannedStatus,
)
from gateway.registers.shtrih import tags

Json = dict[str, Any]
MAPPING = NameMapping(units={"кг": "kilogram"})
# A cloud РРО: carries only what it names, marking not among it.
CLOUD = dataclasses.replace(
    NameMapping(), charset=None, carries=frozenset({"operator", "clientInfo.emailOrPhone"})
)
# Dairy code as scanned ([NG] #165): GS between the serial and the check code.
DAIRY = b"010460065310599021" + b"52CUnq" + b"\x1d" + b"93Gk30"
TOBACCO = b"04606203103348a3=EfODAB=UpGbL"  # a short tobacco pack code ([NG] #145)
I0 = "request[0].items[0]"


def b64(code: bytes) -> str:
    return base64.b64encode(code).decode("ascii")


def imc(code: bytes = DAIRY, status: str = "itemPieceSold", **extra: Any) -> Json:
    params: Json = {"imc": b64(code), "imcType": "auto", "itemEstimatedStatus": status}
    params.update(extra)
    return params


def marked(
    params: Json | None = None,
    quantity: str = "1",
    price: str = "89.90",
    amount: str | None = None,
    **extra: Any,
) -> Json:
    full = (Decimal(price) * Decimal(quantity)).quantize(Decimal("0.01"))
    item: Json = {
        "type": "position",
        "name": "Молоко 3,2 %",
        "price": Decimal(price),
        "quantity": Decimal(quantity),
        "amount": Decimal(amount) if amount is not None else full,
        "tax": {"type": "vat10"},
        "paymentObject": "commodityWithMarking",
        "imcParams": params if params is not None else imc(),
    }
    item.update(extra)
    return item


def receipt(*items: Json, kind: str = "sell", **extra: Any) -> Json:
    lines = list(items) or [marked()]
    total = sum((Decimal(i["amount"]) for i in lines), Decimal(0))
    task: Json = {"type": kind, "items": lines, "payments": [{"type": "cash", "sum": total}]}
    task.update(extra)
    return task


def parsed(task: Json, mapping: NameMapping = MAPPING) -> fiscal.Receipt:
    result = parse_task(task, "request[0]", mapping)
    assert isinstance(result, ReceiptTask)
    return result.receipt


def refused(task: Json, mapping: NameMapping = MAPPING) -> tuple[str, str]:
    with pytest.raises(ValidationError) as err:
        parse_task(task, "request[0]", mapping)
    return err.value.field, err.value.reason


# --- imcParams -> MarkingCode --------------------------------------------------------------


def test_a_marked_sale_carries_the_code_as_scanned() -> None:
    (item,) = parsed(receipt()).items
    assert item.payment_object == 33
    assert item.marking is not None
    assert item.marking.code == DAIRY
    assert item.marking.planned_status is PlannedStatus.PIECE_SOLD
    assert item.marking.processing_mode == 0
    assert item.marking.expected_type is None  # auto: the register recognises it
    assert item.marking.fraction is None
    assert item.marking.claimed_result is None
    assert item.marking.policy is MarkingPolicy.OFFLINE_OK


def test_validate_marking_codes_makes_every_marked_item_strict() -> None:
    task = receipt(marked(), marked(imc(TOBACCO)), validateMarkingCodes=True)
    items = parsed(task).items
    assert [i.marking.policy for i in items if i.marking] == [MarkingPolicy.STRICT] * 2
    task["validateMarkingCodes"] = False
    items = parsed(task).items
    assert [i.marking.policy for i in items if i.marking] == [MarkingPolicy.OFFLINE_OK] * 2


def test_a_strict_box_makes_every_marked_sale_strict_and_keeps_it_with_the_job() -> None:
    """`marking.strict: true` in the box config: as if every receipt said
    validateMarkingCodes; the stored job says so, so a later config change cannot undo it."""
    strict_box = dataclasses.replace(MAPPING, marking_strict=True)
    task = receipt(marked(), marked(imc(TOBACCO)))
    items = parsed(task, strict_box).items
    assert [i.marking.policy for i in items if i.marking] == [MarkingPolicy.STRICT] * 2
    # KKMServer's AcceptOnBad is the client's explicit choice: it still sells.
    (item,) = parsed(receipt(marked(imc(acceptOnBad=True))), strict_box).items
    assert item.marking is not None
    assert item.marking.policy is MarkingPolicy.ANY
    request = parse_request(dumps({"uuid": "s-1", "request": [task]}), strict_box)
    assert '"validateMarkingCodes":true' in request.tasks_json
    (again,) = parse_tasks_json(request.tasks_json, MAPPING, job_id="s-1")
    assert again == request.tasks[0]
    # A receipt without marked items is stored as it came.
    plain = {**marked(), "paymentObject": "commodity"}
    del plain["imcParams"]
    request = parse_request(dumps({"uuid": "s-2", "request": [receipt(plain)]}), strict_box)
    assert "validateMarkingCodes" not in request.tasks_json


def test_validate_marking_codes_without_marked_items_changes_nothing() -> None:
    plain = {**marked(), "paymentObject": "commodity"}
    del plain["imcParams"]
    (item,) = parsed(receipt(plain, validateMarkingCodes=True)).items
    assert item.marking is None


def test_accept_on_bad_sells_whatever_the_check_says() -> None:
    # The box's own member, sent by the KKMServer API for GoodCodeData.AcceptOnBad.
    task = receipt(marked(imc(acceptOnBad=True)), validateMarkingCodes=True)
    (item,) = parsed(task).items
    assert item.marking is not None
    assert item.marking.policy is MarkingPolicy.ANY
    (item,) = parsed(receipt(marked(imc(acceptOnBad=False)))).items
    assert item.marking is not None
    assert item.marking.policy is MarkingPolicy.OFFLINE_OK
    assert refused(receipt(marked(imc(acceptOnBad="yes")))) == (
        f"{I0}.imcParams.acceptOnBad",
        "must be true or false",
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("imcUnrecognized", CodeType.UNRECOGNISED),
        ("imcShort", CodeType.SHORT),
        ("imcFmVerifyCode88", CodeType.VERIFY88),
        ("imcVerifyCode44", CodeType.VERIFY44_UNCHECKED),
        ("imcFmVerifyCode44", CodeType.VERIFY44),
        ("imcVerifyCode4", CodeType.VERIFY4),
    ],
)
def test_imc_type_names(name: str, expected: CodeType) -> None:
    (item,) = parsed(receipt(marked(imc(imcType=name)))).items
    assert item.marking is not None
    assert item.marking.expected_type is expected


def test_claimed_check_result_becomes_the_2106_bits() -> None:
    flags = {
        "imcCheckFlag": True,
        "imcCheckResult": True,
        "imcStatusInfo": True,
        "imcEstimatedStatusCorrect": True,
        "ecrStandAloneFlag": False,
    }
    (item,) = parsed(receipt(marked(imc(itemInfoCheckResult=flags)))).items
    assert item.marking is not None
    assert item.marking.claimed_result == FULLY_POSITIVE
    alone = {"imcCheckFlag": True, "ecrStandAloneFlag": True}
    (item,) = parsed(receipt(marked(imc(itemInfoCheckResult=alone)))).items
    assert item.marking is not None
    assert item.marking.claimed_result == 0x01 | AUTONOMOUS


def test_a_return_takes_returned_or_unchanged() -> None:
    for status, planned in (
        ("itemPieceReturn", PlannedStatus.PIECE_RETURNED),
        ("itemStatusUnchanged", PlannedStatus.UNCHANGED),
    ):
        (item,) = parsed(receipt(marked(imc(status=status)), kind="sellReturn")).items
        assert item.marking is not None
        assert item.marking.planned_status is planned


def test_a_weighed_marked_item_sells_any_quantity_in_its_unit() -> None:
    item_json = marked(
        imc(status="itemDryForSale"), quantity="0.455", price="899.00", measurementUnit="кг"
    )
    (item,) = parsed(receipt(item_json)).items
    assert item.marking is not None
    assert item.marking.planned_status is PlannedStatus.MEASURED_SOLD
    assert item.quantity == 455_000
    assert item.measurement_unit == 11


@pytest.mark.parametrize("quantity", ["0.333333", "0.333334"])
def test_a_part_of_a_pack_names_its_fraction(quantity: str) -> None:
    item_json = marked(imc(itemFractionalAmount="1/3"), quantity=quantity)
    (item,) = parsed(receipt(item_json)).items
    assert item.marking is not None
    assert item.marking.fraction == (1, 3)
    assert item.quantity == int(Decimal(quantity) * 1_000_000)


P = f"{I0}.imcParams"
PLAIN = "is not base64; send the marking code as scanned (GS as byte 1Dh), base64-encoded"


@pytest.mark.parametrize(
    ("task", "field", "starts"),
    [
        # The code as scanned, not encoded: ATOL would silently send it as text.
        (receipt(marked({**imc(), "imc": TOBACCO.decode()})), f"{P}.imc", PLAIN),
        (receipt(marked({**imc(), "imc": "01046\x1d93"})), f"{P}.imc", PLAIN),
        (receipt(marked({**imc(), "imc": "QUJD="})), f"{P}.imc", PLAIN),
        # Base64 letters only: decodes, but into bytes no scanner gives.
        (
            receipt(marked({**imc(), "imc": "0104600653105990"})),
            f"{P}.imc",
            "decodes to bytes that are not a marking code",
        ),
        (receipt(marked({**imc(), "imc": ""})), f"{P}.imc", "must not be empty"),
        (receipt(marked({**imc(), "imc": 12})), f"{P}.imc", "must be a string"),
        (receipt(marked(imc(code=b"0" * 201))), f"{P}.imc", "the code is longer than 200"),
        (receipt(marked({"imc": b64(DAIRY)})), f"{P}.itemEstimatedStatus", "required"),
        (
            receipt(marked(imc(status="sold"))),
            f"{P}.itemEstimatedStatus",
            "unknown item status 'sold'; accepted: itemPieceSold",
        ),
        (
            receipt(marked(imc(imcType="datamatrix"))),
            f"{P}.imcType",
            "unknown code type 'datamatrix'; accepted: auto, imcUnrecognized",
        ),
        (receipt(marked(imc(imcModeProcessing=1))), f"{P}.imcModeProcessing", "must be from 0"),
        (
            receipt(marked(imc(imcBarcode="NDYwMDY1MzEwNTk5MA=="))),
            f"{P}.imcBarcode",
            "imcBarcode (tag 2101) is not supported yet",
        ),
        (receipt(marked(imc(mark="x"))), f"{P}.mark", "unknown field"),
        (
            receipt(marked(imc(itemInfoCheckResult={"imcCheckFlag": 1}))),
            f"{P}.itemInfoCheckResult.imcCheckFlag",
            "must be true or false",
        ),
        (
            receipt(marked(imc(itemInfoCheckResult={"checked": True}))),
            f"{P}.itemInfoCheckResult.checked",
            "unknown field",
        ),
        # Status against the receipt type.
        (
            receipt(marked(imc(status="itemPieceReturn"))),
            f"{P}.itemEstimatedStatus",
            "itemPieceReturn does not fit a sell receipt; use itemPieceSold, itemDryForSale, "
            "itemStatusUnchanged",
        ),
        (
            receipt(marked(), kind="sellReturn"),
            f"{P}.itemEstimatedStatus",
            "itemPieceSold does not fit a sellReturn receipt; use itemPieceReturn, "
            "itemDryReturn, itemStatusUnchanged",
        ),
        (
            receipt(marked(), kind="buy"),
            P,
            "marking codes go only into sell and sellReturn receipts",
        ),
        (receipt(marked(), kind="buyReturn"), P, "marking codes go only into sell and sellReturn"),
        # Payment object against the code.
        (
            receipt(marked(paymentObject="commodity")),
            P,
            "a marking code goes with paymentObject 33 (commodityWithMarking) or 31",
        ),
        (
            receipt({k: val for k, val in marked().items() if k != "imcParams"}),
            f"{I0}.paymentObject",
            "payment object 33 is marked goods: give the item's marking code in imcParams",
        ),
        # One code is one pack.
        (
            receipt(marked(quantity="2")),
            f"{I0}.quantity",
            "a marked item is one pack per code: quantity must be 1",
        ),
        (
            receipt(marked(imc(itemFractionalAmount="1/3"), quantity="0.5")),
            f"{I0}.quantity",
            "must be itemFractionalAmount 1/3 = 0.333333",
        ),
        (
            receipt(marked(imc(itemFractionalAmount="3/2"), quantity="1.5")),
            f"{P}.itemFractionalAmount",
            "must be a part of one pack: 0 < numerator < denominator",
        ),
        (
            receipt(marked(imc(itemFractionalAmount="1/0"))),
            f"{P}.itemFractionalAmount",
            "must be a part of one pack",
        ),
        (
            receipt(marked(imc(itemFractionalAmount="0.5"))),
            f"{P}.itemFractionalAmount",
            'must be "numerator/denominator"',
        ),
        (
            receipt(marked(imc(itemFractionalAmount=0.5))),
            f"{P}.itemFractionalAmount",
            "must be a string",
        ),
        (
            receipt(marked(imc(status="itemDryForSale"), quantity="0.5")),
            f"{I0}.measurementUnit",
            "itemDryForSale is a measured item: give its measurementUnit",
        ),
        (
            receipt(
                marked(
                    imc(status="itemDryForSale", itemFractionalAmount="1/2"),
                    quantity="0.5",
                    measurementUnit="kilogram",
                )
            ),
            f"{P}.itemFractionalAmount",
            "a measured item sells its quantity in its unit",
        ),
        (
            receipt(marked(measurementUnit="kilogram")),
            f"{I0}.measurementUnit",
            "itemPieceSold is a piece item: its measurementUnit must be piece",
        ),
        (
            receipt(marked(markingCode={"type": "other", "mark": "x"})),
            f"{I0}.markingCode",
            "markingCode is the ФФД 1.05 form; send the marking code in imcParams",
        ),
    ],
)
def test_marking_refusals(task: Json, field: str, starts: str) -> None:
    where, message = refused(task)
    assert where == field
    assert message.startswith(starts), message


def test_unchanged_status_of_a_measured_item_takes_any_quantity() -> None:
    item_json = marked(imc(status="itemStatusUnchanged"), quantity="1.25", measurementUnit="liter")
    (item,) = parsed(receipt(item_json)).items
    assert item.marking is not None
    assert item.marking.planned_status is PlannedStatus.UNCHANGED


# --- industryInfo (1260 / 1261) -------------------------------------------------------------

CHECK = "UUID=fb3c7c5e-5b0b-4c3e-9d0e-3a0f0c2b7d11&Time=1733300000000"


def test_item_industry_info_takes_the_configured_document_when_left_out() -> None:
    permits = dataclasses.replace(MAPPING, permit=PermitDefaults("030", "26.03.2022", "477"))
    task = receipt(marked(industryInfo=[{"industryAttribute": CHECK}]))
    (item,) = parsed(task, permits).items
    assert item.industry == (IndustryAttribute("030", "26.03.2022", "477", CHECK),)
    (item,) = parsed(task).items  # the default: decree 21.11.2023 № 1944
    assert item.industry == (IndustryAttribute("030", "21.11.2023", "1944", CHECK),)


def test_industry_info_given_whole_and_at_receipt_level() -> None:
    entry = {"fois": "030", "date": "08.11.2016", "number": "787", "industryAttribute": "crpt=mrk"}
    task = receipt(marked(industryInfo=[entry]), industryInfo=[entry])
    r = parsed(task)
    expected = (IndustryAttribute("030", "08.11.2016", "787", "crpt=mrk"),)
    assert r.items[0].industry == expected
    assert r.industry == expected


def test_an_unmarked_item_may_carry_industry_info() -> None:
    plain = {k: val for k, val in marked().items() if k != "imcParams"}
    plain["paymentObject"] = "commodity"
    plain["industryInfo"] = [{"industryAttribute": "mode=horeca"}]
    (item,) = parsed(receipt(plain)).items
    assert item.marking is None
    assert item.industry[0].value == "mode=horeca"


def test_queued_receipts_keep_the_document_they_were_accepted_with() -> None:
    task = receipt(
        marked(industryInfo=[{"industryAttribute": CHECK}]),
        industryInfo=[{"industryAttribute": "x=1"}],
    )
    request = parse_request(dumps({"uuid": "m-1", "request": [task]}), MAPPING)
    later = dataclasses.replace(MAPPING, permit=PermitDefaults("031", "01.01.2030", "9"))
    (again,) = parse_tasks_json(request.tasks_json, later, job_id="m-1")
    assert again == request.tasks[0]
    assert isinstance(again, ReceiptTask)
    assert again.receipt.items[0].industry[0].document_number == "1944"
    assert again.receipt.industry[0].document_date == "21.11.2023"


IND = f"{I0}.industryInfo[0]"


@pytest.mark.parametrize(
    ("entry", "field", "starts"),
    [
        ({"fois": "30", "industryAttribute": "a"}, f"{IND}.fois", "must be the 3-digit ФОИВ id"),
        ({"fois": 30, "industryAttribute": "a"}, f"{IND}.fois", "must be the 3-digit ФОИВ id"),
        ({"date": "2023-11-21", "industryAttribute": "a"}, f"{IND}.date", "must be the document"),
        ({"date": "31.02.2024", "industryAttribute": "a"}, f"{IND}.date", "'31.02.2024' is not"),
        ({"number": "1" * 33, "industryAttribute": "a"}, f"{IND}.number", "longer than 32"),
        ({"number": ""}, f"{IND}.number", "must not be empty"),
        ({}, f"{IND}.industryAttribute", "required"),
        ({"industryAttribute": "x" * 257}, f"{IND}.industryAttribute", "longer than 256"),
        ({"industryAttribute": "режим 🍺"}, f"{IND}.industryAttribute", "character '🍺'"),
        ({"industryAttribute": "a", "value": "b"}, f"{IND}.value", "unknown field"),
    ],
)
def test_industry_info_refusals(entry: Json, field: str, starts: str) -> None:
    where, message = refused(receipt(marked(industryInfo=[entry])))
    assert where == field
    assert message.startswith(starts), message


def test_industry_info_shape_refusals() -> None:
    assert refused(receipt(marked(industryInfo={"industryAttribute": "a"}))) == (
        f"{I0}.industryInfo",
        "must be a list",
    )
    five = [{"industryAttribute": str(i)} for i in range(5)]
    assert refused(receipt(marked(), industryInfo=five)) == (
        "request[0].industryInfo",
        "more than 4 entries",
    )


# --- a register that cannot carry marking ---------------------------------------------------

CANNOT = "this box's register cannot carry this field into the receipt; remove it"


def test_a_cloud_register_refuses_marking_by_name() -> None:
    assert refused(receipt(), CLOUD) == (P, CANNOT)
    plain = {k: val for k, val in marked().items() if k != "imcParams"}
    assert refused(receipt(plain), CLOUD) == (f"{I0}.paymentObject", CANNOT)
    plain["paymentObject"] = "commodity"
    plain["industryInfo"] = [{"industryAttribute": "a"}]
    assert refused(receipt(plain), CLOUD) == (f"{I0}.industryInfo", CANNOT)
    del plain["industryInfo"]
    task = receipt(plain, industryInfo=[{"industryAttribute": "a"}])
    assert refused(task, CLOUD) == ("request[0].industryInfo", CANNOT)
    with pytest.raises(ValidationError) as err:
        parse_task({"type": "acceptMarkingCode"}, "request[0]", CLOUD)
    assert err.value.field == "request[0].type"
    assert "cannot check marking codes" in err.value.reason


# --- marking tasks -------------------------------------------------------------------------


def task_of(obj: Json, mapping: NameMapping = MAPPING) -> MarkingTask:
    result = parse_task(obj, "request[0]", mapping)
    assert isinstance(result, MarkingTask)
    return result


def test_begin_checks_one_code() -> None:
    task = task_of({"type": "beginMarkingCodeValidation", "params": imc(imcType="imcShort")})
    assert task.action is MarkingAction.BEGIN
    assert not task.is_fiscal
    assert task.type_name == "beginMarkingCodeValidation"
    (check,) = task.checks
    assert check.code.code == DAIRY
    assert check.code.expected_type is CodeType.SHORT
    assert check.quantity is None
    assert check.unit is None


def test_begin_for_a_measured_item_carries_quantity_and_unit() -> None:
    params = imc(status="itemDryForSale", itemQuantity=Decimal("0.455"), itemUnits="кг")
    params.update(waitForResult=True, notSendToServer=False, notFormRequest=False)
    (check,) = task_of({"type": "beginMarkingCodeValidation", "params": params}).checks
    assert check == CodeCheckParams(
        code=dataclasses.replace(check.code, planned_status=PlannedStatus.MEASURED_SOLD),
        quantity=455_000,
        unit=11,
    )
    params = imc(itemFractionalAmount="1/4")
    (check,) = task_of({"type": "beginMarkingCodeValidation", "params": params}).checks
    assert check.code.fraction == (1, 4)


def test_validate_marks_checks_several_codes_strictly() -> None:
    task = task_of(
        {
            "type": "validateMarks",
            "params": [imc(), imc(TOBACCO, status="itemStatusUnchanged")],
            "waitForResult": True,
        }
    )
    assert task.action is MarkingAction.VALIDATE
    assert [c.code.code for c in task.checks] == [DAIRY, TOBACCO]
    assert {c.code.policy for c in task.checks} == {MarkingPolicy.STRICT}


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("getMarkingCodeValidationStatus", MarkingAction.STATUS),
        ("acceptMarkingCode", MarkingAction.ACCEPT),
        ("declineMarkingCode", MarkingAction.DECLINE),
        ("cancelMarkingCodeValidation", MarkingAction.CANCEL),
        ("clearMarkingCodeValidationResult", MarkingAction.CLEAR),
        ("ismExchangeStatus", MarkingAction.EXCHANGE_STATUS),
    ],
)
def test_parameterless_marking_tasks(name: str, action: MarkingAction) -> None:
    assert task_of({"type": name}) == MarkingTask(action)
    with pytest.raises(ValidationError) as err:
        parse_task({"type": name, "params": {}}, "request[0]", MAPPING)
    assert err.value.field == "request[0].params"


BEGIN = "beginMarkingCodeValidation"
BP = "request[0].params"


@pytest.mark.parametrize(
    ("task", "field", "starts"),
    [
        ({"type": BEGIN}, BP, "required"),
        ({"type": BEGIN, "params": [imc()]}, BP, "must be an object"),
        ({"type": BEGIN, "params": imc(), "x": 1}, "request[0].x", "unknown field"),
        ({"type": BEGIN, "params": imc(extra=1)}, f"{BP}.extra", "unknown field"),
        ({"type": BEGIN, "params": {**imc(), "imc": "0104 6"}}, f"{BP}.imc", PLAIN),
        (
            {"type": BEGIN, "params": imc(notSendToServer=True)},
            f"{BP}.notSendToServer",
            "is not supported: the box always asks the marking system",
        ),
        (
            {"type": BEGIN, "params": imc(notFormRequest=True)},
            f"{BP}.notFormRequest",
            "is not supported",
        ),
        (
            {"type": BEGIN, "params": imc(waitForResult=False)},
            f"{BP}.waitForResult",
            "false is not supported",
        ),
        (
            {"type": BEGIN, "params": imc(itemQuantity=1)},
            f"{BP}.itemQuantity",
            "only for itemDryForSale or itemDryReturn",
        ),
        (
            {"type": BEGIN, "params": imc(itemUnits="piece")},
            f"{BP}.itemUnits",
            "only for itemDryForSale or itemDryReturn",
        ),
        (
            {"type": BEGIN, "params": imc(status="itemDryReturn", itemUnits="piece")},
            f"{BP}.itemUnits",
            "a measured item's unit is one of mass, length, area or volume",
        ),
        (
            {"type": BEGIN, "params": imc(status="itemDryReturn", itemUnits=255)},
            f"{BP}.itemUnits",
            "a measured item's unit is one of mass, length, area or volume",
        ),
        (
            {"type": BEGIN, "params": imc(status="itemDryForSale", itemQuantity=0.5)},
            f"{BP}.itemUnits",
            "required: itemDryForSale checks a measured quantity",
        ),
        (
            {"type": BEGIN, "params": imc(acceptOnBad=True)},
            f"{BP}.acceptOnBad",
            "goes with a sale's imcParams or validateMarks",
        ),
        (
            {"type": BEGIN, "params": imc(status="itemDryReturn", itemUnits="ящик")},
            f"{BP}.itemUnits",
            "unknown measurement unit 'ящик'",
        ),
        (
            {"type": BEGIN, "params": imc(status="itemDryReturn", itemQuantity=0)},
            f"{BP}.itemQuantity",
            "must be greater than 0",
        ),
        (
            {"type": BEGIN, "params": imc(status="itemDryForSale", itemFractionalAmount="1/2")},
            f"{BP}.itemFractionalAmount",
            "a part of a pack goes with itemPieceSold or itemPieceReturn only",
        ),
        ({"type": "validateMarks", "params": []}, BP, "must list at least one code"),
        ({"type": "validateMarks", "params": imc()}, BP, "must be a list"),
        ({"type": "validateMarks"}, BP, "required"),
        (
            {"type": "validateMarks", "params": [imc()] * 101},
            BP,
            "more than 100 codes",
        ),
        (
            {"type": "validateMarks", "params": [imc(), {"imc": b64(DAIRY)}]},
            f"{BP}[1].itemEstimatedStatus",
            "required",
        ),
        (
            {"type": "validateMarks", "params": [imc()], "timeout": 60000},
            "request[0].timeout",
            "the register waits for the marking system (ОИСМ) by its own setting",
        ),
        (
            {"type": "validateMarks", "params": [imc()], "waitForResult": False},
            "request[0].waitForResult",
            "false is not supported",
        ),
        (
            {"type": "validateMarks", "params": [imc()], "waitForResult": "yes"},
            "request[0].waitForResult",
            "must be true or false",
        ),
        ({"type": "pingIsm"}, "request[0].type", "task type 'pingIsm' is not supported yet"),
        ({"type": "addMarksToBuffer", "params": []}, "request[0].type", "task type"),
    ],
)
def test_marking_task_refusals(task: Json, field: str, starts: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_task(task, "request[0]", MAPPING)
    assert err.value.field == field
    assert err.value.reason.startswith(starts), err.value.reason


def test_marking_tasks_survive_the_journal() -> None:
    request = [
        {"type": "beginMarkingCodeValidation", "params": imc()},
        {"type": "getMarkingCodeValidationStatus"},
        {"type": "acceptMarkingCode"},
        receipt(marked(imc(status="itemStatusUnchanged")), validateMarkingCodes=True),
    ]
    parsed_request = parse_request(dumps({"uuid": "m-2", "request": request}), MAPPING)
    assert (
        parse_tasks_json(parsed_request.tasks_json, MAPPING, job_id="m-2") == parsed_request.tasks
    )


def test_one_code_on_two_items_is_refused() -> None:
    field, reason = refused(receipt(marked(), marked(imc(TOBACCO)), marked()))
    assert field == "request[0].items[2].imcParams.imc"
    assert reason == "the same marking code as request[0].items[0]: one code is one pack"
    with pytest.raises(ValidationError) as err:
        task_of({"type": "validateMarks", "params": [imc(), imc(TOBACCO), imc()]})
    assert err.value.field == "request[0].params[2].imc"
    assert err.value.reason.startswith("the same marking code as request[0].params[0]")


@pytest.mark.parametrize("unit", ["otherUnits", "hour"])
def test_a_measured_status_needs_a_unit_of_measure(unit: str) -> None:
    item = marked(imc(status="itemDryForSale"), quantity="2", measurementUnit=unit)
    field, reason = refused(receipt(item))
    assert field == "request[0].items[0].measurementUnit"
    assert "needs a unit of mass, length, area or volume" in reason


def test_a_bare_product_barcode_is_not_a_marking_code() -> None:
    field, reason = refused(receipt(marked(imc(b"4600653105990"))))
    assert field == "request[0].items[0].imcParams.imc"
    assert reason.startswith("is a product barcode (EAN-8, EAN-13 or ITF-14)")
    (item,) = parsed(receipt(marked(imc(b"4600653105990", imcType="imcUnrecognized")))).items
    assert item.marking is not None
    assert item.marking.expected_type is CodeType.UNRECOGNISED


def test_an_industry_attribute_fits_one_register_block() -> None:
    # The configured document (030, 21.11.2023, 1944) leaves 212 bytes of the 249 for 1265.
    (item,) = parsed(receipt(marked(industryInfo=[{"industryAttribute": "ж" * 212}]))).items
    (attribute,) = item.industry
    assert len(tags.industry(1260, attribute)) == 249
    field, reason = refused(receipt(marked(industryInfo=[{"industryAttribute": "ж" * 213}])))
    assert field == f"{IND}.industryAttribute"
    assert reason.startswith("too long for the register: fois, date, number and")
    assert "take 250 bytes of the 249" in reason
    assert reason.endswith("shorten industryAttribute to at most 212 characters")
    # A longer number leaves less room; the receipt's 1261 goes the same way.
    entry = {"number": "N" * 32, "industryAttribute": "x" * 185}
    field, reason = refused(receipt(industryInfo=[entry]))
    assert field == "request[0].industryInfo[0].industryAttribute"
    assert reason.endswith("at most 184 characters")


def test_a_trailing_gs_is_the_one_normalisation() -> None:
    (item,) = parsed(receipt(marked(imc(DAIRY + b"\x1d")))).items
    assert item.marking is not None
    assert item.marking.code == DAIRY


@pytest.mark.parametrize("code", [b" " + DAIRY, DAIRY + b" ", DAIRY + b" \x1d"])
def test_spaces_around_a_code_are_refused(code: bytes) -> None:
    field, reason = refused(receipt(marked(imc(code))))
    assert field == f"{I0}.imcParams.imc"
    assert reason.startswith("the decoded code starts or ends with a space")


@pytest.mark.parametrize("code", [b"46006531", b"4600653105990", b"14600653105997"])
def test_a_bare_barcode_of_any_length_is_refused(code: bytes) -> None:
    field, reason = refused(receipt(marked(imc(code))))
    assert field == f"{I0}.imcParams.imc"
    assert "not a marking code" in reason
    with pytest.raises(ValidationError) as err:
        task_of({"type": "beginMarkingCodeValidation", "params": imc(code)})
    assert err.value.field == "request[0].params.imc"


def test_a_part_of_a_pack_only_on_a_piece_line() -> None:
    item = marked(
        imc(status="itemStatusUnchanged", itemFractionalAmount="1/2"),
        quantity="0.5",
        measurementUnit="liter",
    )
    field, reason = refused(receipt(item))
    assert field == f"{P}.itemFractionalAmount"
    assert reason.startswith("a part of a pack goes only on a piece line")


# --- results of the marking tasks (marking_results) ------------------------------------------


def _checked(**fields: Any) -> CodeCheck:
    base: dict[str, Any] = {
        "local": 0,
        "reason": NotCheckedReason.TYPE_NOT_CHECKABLE,
        "code_type": CodeType.VERIFY4,
        "answered": False,
        "result": None,
    }
    return CodeCheck(**{**base, **fields})


def test_accept_without_a_2106_leaves_item_info_check_result_out() -> None:
    silent = _checked(result=None)
    assert marking_results.accept_result(silent, None) == {}
    assert marking_results.accept_result(silent, 0x10) == {
        "itemInfoCheckResult": {
            "imcCheckFlag": False,
            "imcCheckResult": False,
            "imcStatusInfo": False,
            "imcEstimatedStatusCorrect": False,
            "ecrStandAloneFlag": True,
        }
    }
    code = MarkingCode(b"0104600653105990215\x1d93Gk30", PlannedStatus.PIECE_SOLD)
    accepted = marking_results.validate_item(silent, code, stored=None, refusal=None)
    assert "itemInfoCheckResult" not in accepted
    assert "itemInfoCheckResult" not in accepted.get("onlineValidation", {})


def test_an_answer_the_fn_refused_is_named_apart() -> None:
    refused = _checked(server_code=0x20, answer_refusal=1)
    assert refused.answer_refused
    assert refused.answer_refused_text == (
        "the ФН refused the marking system's answer (bad fiscal sign of the answer)"
    )
    error = marking_results.driver_error(refused)
    assert error["error"] == "ismAnswerRefused"
    assert "bad fiscal sign" in error["description"]
    assert marking_results.sent_request(refused)
    # A plain timeout keeps its own words.
    assert marking_results.driver_error(_checked(server_code=0xFF))["error"] == "responseTimeout"
    # Sold under OFFLINE_OK: the receipt's result says why it is offline.
    mark = MarkResult(index=0, code=b"abc", check=refused, result=None)
    shown = marking_results.mark_result(mark)
    assert shown["offline"] is True
    assert shown["ismAnswerRefused"].startswith("the ФН refused the marking system's answer")
    plain = marking_results.mark_result(
        MarkResult(index=0, code=b"abc", check=_checked(server_code=0xFF), result=None)
    )
    assert "ismAnswerRefused" not in plain


def test_exchange_status_of_an_autonomous_fn() -> None:
    state = MarkingState(
        check_state=1,
        notification_state=0,
        flags=0,
        saved_results=0,
        codes_in_notification=0,
        area_fill=0,
        unsent=3,
    )
    shown = marking_results.exchange_status(state, IsmExchange.autonomous_mode())
    assert shown["status"]["autonomous"] is True
    assert shown["status"]["notSentCount"] == 3
    assert shown["status"]["notSentFirstNoticeDateTime"] is None
    assert "upload them by hand" in shown["status"]["description"]
    online = IsmExchange(
        state=0, unsent=1, current_number=7, first_unsent_at="2026-03-02T10:00", fill_percent=1
    )
    shown = marking_results.exchange_status(state, online)
    assert shown["status"]["autonomous"] is False
    assert shown["status"]["notSentCount"] == 1
    assert shown["status"]["notSentFirstNoticeNumber"] == 7
