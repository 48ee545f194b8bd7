"""KKMServer marking codes [KKMSERVER]: GoodCodeData and ValidationMarkingCode -> the ATOL task
the box's own parser checks (codes, planned statuses, policies, 1260), refusals named in
KKMServer's terms, and the check results -> `MarkingCodeValidation`."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway.atol.decimal_json import dumps, loads
from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request, parse_tasks_json
from gateway.atol.tasks import MarkingAction, MarkingTask, ParsedRequest, ReceiptTask
from gateway.domain import marking as m
from gateway.domain.errors import ValidationError
from gateway.domain.fiscal import QTY_SCALE, Item
from gateway.domain.marking import MarkingPolicy, PlannedStatus
from gateway.ingress.kkmserver.marking import check_answer, decryption, receipt_answer
from gateway.ingress.kkmserver.parse import kkm_field, kkm_reason, read_command
from gateway.ingress.kkmserver.wire import KNOWN_UNSUPPORTED, Command

# A dairy code as scanned ([NG] #165): GS (1Dh) between the serial and the check key.
CODE = "0104600653105990215" + "2CUnq\x1d93Gk30"
SHORT = "04606203103348a3=EfODAB=UpGbL"  # a tobacco pack ([NG] #145)


def line(**changes: Any) -> dict[str, Any]:
    register: dict[str, Any] = {
        "Name": "Молоко 3,2%",
        "Quantity": 1,
        "Price": 95,
        "Amount": 95,
        "Tax": 10,
        "SignMethodCalculation": 4,
        "SignCalculationObject": 33,
        "MeasureOfQuantity": 0,
        "GoodCodeData": {"BarCode": CODE, "ContainsSerialNumber": True, "AcceptOnBad": False},
    }
    register.update(changes)
    return {"Register": register}


def sale(*lines: dict[str, Any], type_check: int = 0) -> dict[str, Any]:
    total = sum(item["Register"]["Amount"] for item in lines)
    return {
        "Command": "RegisterCheck",
        "IdCommand": "mark-1",
        "TypeCheck": type_check,
        "CheckStrings": list(lines),
        "ElectronicPayment": total,
    }


def parsed(body: dict[str, Any]) -> ParsedRequest:
    request = read_command(json.dumps(body))
    assert request.atol is not None
    try:
        return parse_request(dumps(request.atol), NameMapping())
    except ValidationError as err:
        raise ValidationError(
            kkm_field(err.field, request.fields), kkm_reason(err.reason)
        ) from None


def items(body: dict[str, Any]) -> tuple[Item, ...]:
    task = parsed(body).tasks[0]
    assert isinstance(task, ReceiptTask)
    return task.receipt.items


def refused(body: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        parsed(body)
    return caught.value


def test_a_scanned_code_becomes_the_items_code_and_its_check_policy() -> None:
    [item] = items(sale(line()))
    assert item.marking is not None
    assert item.marking.code == CODE.encode()
    assert item.marking.planned_status is PlannedStatus.PIECE_SOLD
    assert item.marking.policy is MarkingPolicy.OFFLINE_OK
    assert item.payment_object == 33
    assert item.industry == ()


def test_accept_on_bad_is_kept_in_the_journal_and_read_again_after_a_restart() -> None:
    good = {"BarCode": CODE, "AcceptOnBad": True, "IndustryProps": "UUID=7f1c&Time=17648"}
    request = parsed(sale(line(GoodCodeData=good)))
    task = request.tasks[0]
    assert isinstance(task, ReceiptTask)
    [item] = task.receipt.items
    assert item.marking is not None
    assert item.marking.policy is MarkingPolicy.ANY
    [again] = parse_tasks_json(request.tasks_json, NameMapping(), job_id="mark-1")
    assert again == task  # the worker after a restart sells it under the same policy
    [attribute] = item.industry
    assert (attribute.fois, attribute.document_date, attribute.document_number) == (
        "030",
        "21.11.2023",
        "1944",
    )
    assert attribute.value == "UUID=7f1c&Time=17648"


def test_base64_code_trailing_gs_and_written_out_escape_give_the_same_code() -> None:
    variants = [
        {"MarkingCodeBase64": base64.b64encode(CODE.encode()).decode()},
        {"BarCode": CODE + "\x1d"},
        {"BarCode": CODE.replace("\x1d", "\\x1d")},
    ]
    for good in variants:
        [item] = items(sale(line(GoodCodeData=good)))
        assert item.marking is not None, good
        assert item.marking.code == CODE.encode(), good


def test_a_return_returns_and_a_weighed_item_is_measured() -> None:
    [back] = items(
        sale(line(GoodCodeData={"BarCode": SHORT}, SignCalculationObject=31), type_check=1)
    )
    assert back.marking is not None
    assert back.marking.planned_status is PlannedStatus.PIECE_RETURNED
    weighed = line(Quantity=0.5, Price=190, Amount=95, MeasureOfQuantity=11)
    [item] = items(sale(weighed))
    assert item.marking is not None
    assert item.marking.planned_status is PlannedStatus.MEASURED_SOLD
    assert (item.quantity, item.measurement_unit) == (QTY_SCALE // 2, 11)


def test_a_bare_ean_is_refused_unless_the_client_says_it_has_no_serial() -> None:
    err = refused(sale(line(GoodCodeData={"BarCode": "4600653105990"})))
    assert err.field == "CheckStrings[0].Register.GoodCodeData.BarCode"
    assert "ContainsSerialNumber false" in err.reason
    ean = {"BarCode": "4600653105990", "ContainsSerialNumber": False}
    [item] = items(sale(line(GoodCodeData=ean)))
    assert item.marking is not None
    assert item.marking.code == b"4600653105990"


@pytest.mark.parametrize(
    ("register", "type_check", "field", "words"),
    [
        ({"Quantity": 2, "Amount": 190}, 0, "CheckStrings[0].Register.Quantity", "one pack"),
        ({}, 10, "CheckStrings[0].Register.GoodCodeData", "sell and sellReturn"),
        ({"GoodCodeData": None}, 0, "CheckStrings[0].Register.SignCalculationObject", "BarCode"),
        (
            {"SignCalculationObject": 1},
            0,
            "CheckStrings[0].Register",
            "",
        ),
        (
            {"GoodCodeData": {"BarCode": "0104600653105990215Кириллица"}},
            0,
            "CheckStrings[0].Register.GoodCodeData.BarCode",
            "scanner",
        ),
        (
            {"GoodCodeData": {"BarCode": CODE, "MarkingCodeBase64": "MDE="}},
            0,
            "CheckStrings[0].Register.GoodCodeData.MarkingCodeBase64",
            "once",
        ),
        (
            {"GoodCodeData": {"MarkingCodeBase64": "not base64!"}},
            0,
            "CheckStrings[0].Register.GoodCodeData.MarkingCodeBase64",
            "base64",
        ),
        (
            {"GoodCodeData": {"BarCode": CODE, "GTIN": "04600653105990"}},
            0,
            "CheckStrings[0].Register.GoodCodeData.GTIN",
            "ФФД 1.05",
        ),
        (
            {"GoodCodeData": {"BarCode": CODE, "AddIndustryProps": "&x=1"}},
            0,
            "CheckStrings[0].Register.GoodCodeData.AddIndustryProps",
            "IndustryProps",
        ),
        (
            {"GoodCodeData": {"BarCode": CODE, "AcceptOnBad": "yes"}},
            0,
            "CheckStrings[0].Register.GoodCodeData.AcceptOnBad",
            "true or false",
        ),
        (
            {"GoodCodeData": {"BarCode": CODE, "Colour": "red"}},
            0,
            "CheckStrings[0].Register.GoodCodeData.Colour",
            "unknown field",
        ),
        ({"PackageQuantity": 22}, 0, "CheckStrings[0].Register.PackageQuantity", "part of"),
        ({"MeasureOfQuantity": 50}, 0, "CheckStrings[0].Register.MeasureOfQuantity", "«штука»"),
        ({"MeasureOfQuantity": 255}, 0, "CheckStrings[0].Register.MeasureOfQuantity", "«штука»"),
    ],
)
def test_refusals_name_the_kkmserver_field(
    register: dict[str, Any], type_check: int, field: str, words: str
) -> None:
    err = refused(sale(line(**register), type_check=type_check))
    assert err.field.startswith(field), err
    assert words in err.reason, err


def test_validation_marking_code_becomes_validate_marks_with_kkmservers_default() -> None:
    body = {
        "Command": "ValidationMarkingCode",
        "IdCommand": "check-1",
        "TypeCheck": 1,
        "GoodCodeDatas": [
            {"BarCode": CODE},
            {"BarCode": SHORT, "AcceptOnBad": False, "WaitForResult": True},
            {"BarCode": CODE.replace("215", "216"), "Quantity": 0.5, "MeasureOfQuantity": 11},
        ],
    }
    request = read_command(json.dumps(body))
    assert request.command is Command.VALIDATION_MARKING_CODE
    assert "ValidationMarkingCode" not in KNOWN_UNSUPPORTED
    [task] = parsed(body).tasks
    assert isinstance(task, MarkingTask)
    assert task.action is MarkingAction.VALIDATE
    first, second, third = task.checks
    # [KKMSERVER] a check accepts the code whatever it says unless AcceptOnBad is false.
    assert first.code.policy is MarkingPolicy.ANY
    assert second.code.policy is MarkingPolicy.STRICT
    assert first.code.planned_status is PlannedStatus.PIECE_RETURNED
    assert third.code.planned_status is PlannedStatus.MEASURED_RETURNED
    assert (third.quantity, third.unit) == (QTY_SCALE // 2, 11)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"Name": 5}, "GoodCodeDatas[0].Name"),
        ({"Price": 95}, "GoodCodeDatas[0].Price"),
        ({"MeasureOfQuantity": 50}, "GoodCodeDatas[0].MeasureOfQuantity"),
        ({"Quantity": 2}, "GoodCodeDatas[0].Quantity"),
        ({"WaitForResult": False}, "GoodCodeDatas[0].WaitForResult"),
        ({"BarCode": ""}, "GoodCodeDatas[0].BarCode"),
        ({"Surprise": 1}, "GoodCodeDatas[0].Surprise"),
    ],
)
def test_validation_refusals_name_the_field(change: dict[str, Any], field: str) -> None:
    body = {"Command": "ValidationMarkingCode", "GoodCodeDatas": [{"BarCode": CODE, **change}]}
    err = refused(body)
    assert err.field == field, err


def test_validation_of_a_purchase_or_nothing_is_refused() -> None:
    assert refused({"Command": "ValidationMarkingCode", "GoodCodeDatas": []}).field == (
        "GoodCodeDatas"
    )
    body = {
        "Command": "ValidationMarkingCode",
        "TypeCheck": 10,
        "GoodCodeDatas": [{"BarCode": CODE}],
    }
    assert refused(body).field == "TypeCheck"


def test_decryption_reads_tag_2106_like_kkmserver() -> None:
    assert decryption(m.FULLY_POSITIVE).startswith("[М+] КП КМ проверен, результат положительный")
    assert decryption(m.CHECK_DONE).startswith("[М-]")
    offline = decryption(m.CHECK_DONE | m.CHECK_POSITIVE | m.AUTONOMOUS)
    assert offline.startswith("[М] ")
    assert "автономном" in offline
    assert "не проверен" in offline
    assert decryption(None) == "[М] Результат проверки не получен"


def test_check_and_receipt_results_become_marking_code_validation() -> None:
    imc = base64.b64encode(CODE.encode()).decode()
    task = loads(dumps({"type": "validateMarks", "params": [{"imc": imc}, {"imc": imc}]}))
    accepted = {
        "itemInfoCheckResult": {
            "imcCheckFlag": True,
            "imcCheckResult": True,
            "imcStatusInfo": True,
            "imcEstimatedStatusCorrect": True,
            "ecrStandAloneFlag": False,
        }
    }
    declined = {
        "onlineValidation": {
            "itemInfoCheckResult": {
                "imcCheckFlag": True,
                "imcCheckResult": True,
                "imcStatusInfo": True,
                "imcEstimatedStatusCorrect": False,
                "ecrStandAloneFlag": False,
            }
        },
        "driverError": {"code": 404, "description": "the code was declined"},
    }
    good, bad = check_answer(task, {"validateMarks": [accepted, declined]})
    assert good["BarCode"] == CODE
    assert good["ValidationKKT"]["ValidationResult"] == 0x0F
    assert bad["ValidationKKT"]["ValidationResult"] == 0x07
    assert bad["ValidationKKT"]["DecryptionResult"].endswith("the code was declined")
    assert good["ValidationPR"] == {
        "ValidationResult": False,
        "ValidationDisabled": True,
        "DecryptionResult": "Разрешительный режим не проверяется этой кассой",
    }
    receipt = {
        "type": "sell",
        "items": [
            {"name": "Хлеб"},
            {"name": "Молоко", "industryInfo": [{"industryAttribute": "UUID=1&Time=2"}]},
        ],
    }
    [mark] = receipt_answer(receipt, {"marks": [{"item": 1, "imc": imc, "tag2106": 0x1F}]})
    assert (mark["Name"], mark["BarCode"], mark["IndustryProps"]) == (
        "Молоко",
        CODE,
        "UUID=1&Time=2",
    )
    assert mark["ValidationKKT"]["ValidationResult"] == 0x1F
    assert mark["ValidationPR"]["ValidationResult"] is True


def test_validation_takes_kkmservers_default_price_and_names_the_goods_back() -> None:
    body = {
        "Command": "ValidationMarkingCode",
        "GoodCodeDatas": [
            {"BarCode": CODE, "Name": "Молоко 3,2%", "Price": -1},
            {"BarCode": SHORT, "Price": -1.0},
        ],
    }
    request = read_command(json.dumps(body))
    assert request.atol is not None
    [task] = parsed(body).tasks
    assert isinstance(task, MarkingTask)
    stored = loads(parsed(body).tasks_json)[0]
    ok = {"itemInfoCheckResult": {"imcCheckFlag": True, "imcCheckResult": True}}
    named, unnamed = check_answer(stored, {"validateMarks": [ok, ok]})
    assert named["Name"] == "Молоко 3,2%"
    assert "Name" not in unnamed


def test_a_measured_check_without_quantity_checks_one_unit() -> None:
    body = {
        "Command": "ValidationMarkingCode",
        "GoodCodeDatas": [{"BarCode": CODE, "MeasureOfQuantity": 11}],
    }
    [task] = parsed(body).tasks
    assert isinstance(task, MarkingTask)
    [check] = task.checks
    assert (check.quantity, check.unit) == (QTY_SCALE, 11)


def test_the_same_code_on_two_lines_is_refused_naming_the_second() -> None:
    err = refused(sale(line(), line()))
    assert err.field == "CheckStrings[1].Register.GoodCodeData.BarCode", err
    assert "CheckStrings[0]" in err.reason
