"""One rule over the OpenAPI description: every field of a receipt task reaches the fiscal
document or is refused with a 400 that names it.

The running daemon (`fiscal-gateway run`, built-in emulator on a pty) gets one receipt per
field. What it fiscalised is read back from the emulator's paper tape, which records every
ФФД tag the emulated ФН stored — the emulator decodes the wire on its own, so a tag the driver
forgets shows as missing or defaulted here. Expected tags and values come from the ФФД 1.2
tag list ([FFD]), not from the driver.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import free_port

SPEC: dict[str, Any] = json.loads(
    resources.files("gateway.ingress").joinpath("openapi.json").read_text(encoding="utf-8")
)
SCHEMAS = SPEC["components"]["schemas"]
START_TIMEOUT_S = 30.0
RESULT_TIMEOUT_S = 20.0

Json = dict[str, Any]


def base_receipt() -> Json:
    """A 100.00 loaf at 20 % VAT, paid in cash."""
    return {
        "type": "sell",
        "items": [
            {
                "type": "position",
                "name": "Хлеб",
                "price": 100.00,
                "quantity": 1,
                "amount": 100.00,
                "tax": {"type": "vat20"},
            }
        ],
        "payments": [{"type": "cash", "sum": 100.00}],
    }


# field path -> (value sent, tag path in the document, the tag's value on the tape).
# Item fields are checked in the first item's own tags (STLV 1059). [FFD] values: 1054 1 =
# приход; 1055 bit 1 = УСН доход; 1199 1 = НДС 20 %; 1214 1 = полная предоплата; 1212 4 =
# услуга; 2108 11 = килограмм; money in kopecks.
RECEIPT_TAGS: dict[str, tuple[object, tuple[int, ...], object]] = {
    "type": ("sell", (1054,), 1),
    "taxationType": ("usnIncome", (1055,), 2),
    "operator": ({"name": "Иванова А."}, (1021,), "Иванова А."),
    "operator.name": ("Петрова Б.", (1021,), "Петрова Б."),
    "operator.vatin": ("027406211109", (1203,), "027406211109"),
    "clientInfo.emailOrPhone": ("+79990000000", (1008,), "+79990000000"),
    "clientInfo.name": ("ООО «Ромашка»", (1256, 1227), "ООО «Ромашка»"),
    "clientInfo.vatin": ("7701234567", (1256, 1228), "7701234567"),
    "paymentsPlace": ("Магазин №1", (1187,), "Магазин №1"),
    "paymentsAddress": ("г. Москва, ул. Ленина, 1", (1009,), "г. Москва, ул. Ленина, 1"),
    "additionalAttribute": ("A-17", (1192,), "A-17"),
    "userAttribute": (
        {"name": "Номер заказа", "value": "CRM-42"},
        (1084,),
        {"1085": "Номер заказа", "1086": "CRM-42"},
    ),
    "taxes": ([{"type": "vat20", "sum": 16.67}], (1102,), 1667),
    "total": (100.00, (1020,), 10000),
    "payments": ([{"type": "electronically", "sum": 100.00}], (1081,), 10000),
    # fois left out: the config's marking.permit_* (set in the daemon's config below).
    "industryInfo": (
        [{"industryAttribute": "mode=horeca"}],
        (1261,),
        {"1262": "030", "1263": "26.03.2022", "1264": "477", "1265": "mode=horeca"},
    ),
}
ITEM_TAGS: dict[str, tuple[object, tuple[int, ...], object]] = {
    "name": ("Батон нарезной", (1030,), "Батон нарезной"),
    "price": (100.00, (1079,), 10000),
    "amount": (100.00, (1043,), 10000),
    "tax": ({"type": "vat20"}, (1199,), 1),
    "tax.sum": (16.67, (1200,), 1667),
    "paymentMethod": ("fullPrepayment", (1214,), 1),
    "paymentObject": ("service", (1212,), 4),
    "measurementUnit": ("kilogram", (2108,), 11),
    "exciseSum": (120.50, (1229,), 12050),
    "countryCode": ("250", (1230,), "250"),
    "customsDeclaration": ("10702070/010120/0000001", (1231,), "10702070/010120/0000001"),
    "additionalAttribute": ("партия 7", (1191,), "партия 7"),
    "industryInfo": (
        [{"fois": "030", "date": "21.11.2023", "number": "1944", "industryAttribute": "UUID=1"}],
        (1260,),
        {"1262": "030", "1263": "21.11.2023", "1264": "1944", "1265": "UUID=1"},
    ),
}
# A dairy code as scanned ([NG] #165): a 4-character check code after GS.
DAIRY = b"010460065310599021" + b"52CUnq" + b"\x1d" + b"93Gk30"
IMC = base64.b64encode(DAIRY).decode("ascii")
# Marked-goods fields of the first item of a marked receipt: (edits of that item, tag path in
# its tags, the tag's value on the tape). [FFD] 2000 the code (bytes, shown in hex), 2102 the
# processing mode, 1291 the fractional quantity {1293 numerator, 1294 denominator}.
MARKED_ITEM_TAGS: dict[str, tuple[Json, tuple[int, ...], object]] = {
    # The object as a whole: its code is checked before the receipt opens, and the check's
    # answer is bound with it (the emulator's ОИСМ confirms every code: 2106 = 0x0F).
    "imcParams": ({}, (2106,), 0x0F),
    "imcParams.imc": ({}, (2000,), DAIRY.hex()),
    "imcParams.imcModeProcessing": ({"imcParams.imcModeProcessing": 0}, (2102,), 0),
    "imcParams.itemFractionalAmount": (
        {"imcParams.itemFractionalAmount": "1/2", "quantity": 0.5, "amount": 50.00},
        (1291,),
        {"1293": 1, "1294": 2},
    ),
}
# Fields carried by means other than a tag, each with its own test below.
CARRIED_OTHERWISE = {
    "receipt": {
        "electronically",
        "ignoreNonFiscalPrintErrors",
        "items",
        "clientInfo",
        "validateMarkingCodes",
    },
    "item": {
        "type",
        "quantity",
        "department",
        "imcParams.imcType",
        "imcParams.itemEstimatedStatus",
        "imcParams.itemInfoCheckResult",
        "imcParams.acceptOnBad",
    },
}


def _properties(schema: Json, prefix: str = "") -> Iterator[tuple[str, Json]]:
    """(path, schema) of every property, nested objects included."""
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        yield path, sub
        if "$ref" in sub:
            sub = SCHEMAS[sub["$ref"].rsplit("/", 1)[-1]]
        if sub.get("type") == "object" and "x-refused" not in sub:
            yield from _properties(sub, f"{path}.")


RECEIPT_FIELDS = list(_properties(SCHEMAS["ReceiptTask"]))
ITEM_FIELDS = list(_properties(SCHEMAS["Position"]))


def test_every_field_of_the_schema_is_classified() -> None:
    """A field added to the description must say where it goes, or the suite fails."""
    unclassified = [
        path
        for path, sub in RECEIPT_FIELDS
        if "x-refused" not in sub
        and path not in RECEIPT_TAGS
        and path not in CARRIED_OTHERWISE["receipt"]
        and not path.startswith("userAttribute.")
        and not path.startswith("taxes.")
    ] + [
        f"items.{path}"
        for path, sub in ITEM_FIELDS
        if "x-refused" not in sub
        and path not in ITEM_TAGS
        and path not in MARKED_ITEM_TAGS
        and path not in CARRIED_OTHERWISE["item"]
        and path != "tax.type"
    ]
    assert unclassified == []
    assert SCHEMAS["ReceiptTask"]["additionalProperties"] is False
    assert SCHEMAS["Position"]["additionalProperties"] is False


@dataclass
class Daemon:
    """A running `fiscal-gateway run` and where its tape is."""

    base: str
    tape: Path
    seq: int = 0

    def post(self, task: Json) -> tuple[int, Json, str]:
        """POST one task as a new request; (status, body, uuid)."""
        self.seq += 1
        uuid = f"field-{self.seq}"
        data = json.dumps({"uuid": uuid, "request": [task]}, ensure_ascii=False).encode()
        req = urllib.request.Request(
            f"{self.base}/api/v2/requests",
            data=data,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read()), uuid
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read()), uuid

    def result(self, uuid: str) -> Json:
        """The task's final result (ready or error)."""
        deadline = time.monotonic() + RESULT_TIMEOUT_S
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{self.base}/api/v2/requests/{uuid}", timeout=10) as r:
                (task,) = json.loads(r.read())["results"]
            if task["status"] not in ("wait", "inProgress"):
                return dict(task)
            time.sleep(0.05)
        raise AssertionError(f"{uuid} not finished in {RESULT_TIMEOUT_S} s")

    def run_tasks(self, tasks: list[Json]) -> list[Json]:
        """POST `tasks` as one request; each task's final result."""
        self.seq += 1
        uuid = f"tasks-{self.seq}"
        data = json.dumps({"uuid": uuid, "request": tasks}, ensure_ascii=False).encode()
        req = urllib.request.Request(
            f"{self.base}/api/v2/requests",
            data=data,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 201
        deadline = time.monotonic() + RESULT_TIMEOUT_S
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{self.base}/api/v2/requests/{uuid}", timeout=10) as r:
                results = json.loads(r.read())["results"]
            if all(t["status"] not in ("wait", "inProgress") for t in results):
                return [dict(t) for t in results]
            time.sleep(0.05)
        raise AssertionError(f"{uuid} not finished in {RESULT_TIMEOUT_S} s")

    def document(self, number: int) -> Json:
        """The tape line of fiscal document `number`."""
        for line in self.tape.read_text(encoding="utf-8").splitlines():
            doc = json.loads(line)
            if doc.get("number") == number and doc.get("fiscal", True):
                return dict(doc)
        raise AssertionError(f"document {number} is not on the tape")

    def fiscalise(self, task: Json) -> Json:
        """Print `task`; the tape line of its document."""
        status, body, uuid = self.post(task)
        assert status == 201, body
        result = self.result(uuid)
        assert result["status"] == "ready", result
        return self.document(result["result"]["fiscalParams"]["fiscalDocumentNumber"])


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("fields")
    port = free_port()
    config = home / "gw.yaml"
    config.write_text(
        f"state_dir: {home / 'var'}\nhttp:\n  listen: 127.0.0.1:{port}\nweb:\n  enabled: false\n"
        "marking:\n  permit_date: '26.03.2022'\n  permit_number: '477'\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        cwd=home,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            seen.append(line)
            if "Register mode" in line or not line:
                break
        assert any("Register mode" in line for line in seen), "".join(seen)
        yield Daemon(f"http://127.0.0.1:{port}", home / "var" / "emulator.state.journal.jsonl")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _set(obj: Json, path: str, value: object) -> None:
    keys = path.split(".")
    for key in keys[:-1]:
        obj = obj.setdefault(key, {})
    obj[keys[-1]] = copy.deepcopy(value)


def _tag(tags: Json, path: tuple[int, ...]) -> object:
    value: object = tags
    for tag in path:
        assert isinstance(value, dict)
        assert str(tag) in value, f"tag {tag} missing in {value}"
        value = value[str(tag)]
    return value


@pytest.mark.parametrize("path", sorted(RECEIPT_TAGS))
def test_receipt_field_reaches_the_document(daemon: Daemon, path: str) -> None:
    value, tag, expected = RECEIPT_TAGS[path]
    task = base_receipt()
    if path.startswith("operator."):
        task["operator"] = {"name": "Иванова А."}  # the cashier's name is required
    _set(task, path, value)
    doc = daemon.fiscalise(task)
    assert _tag(doc["tags"], tag) == expected


@pytest.mark.parametrize("path", sorted(ITEM_TAGS))
def test_item_field_reaches_the_document(daemon: Daemon, path: str) -> None:
    value, tag, expected = ITEM_TAGS[path]
    task = base_receipt()
    _set(task["items"][0], path, value)
    doc = daemon.fiscalise(task)
    assert _tag(doc["items"][0]["tags"], tag) == expected


def marked_receipt(edits: Json | None = None, **receipt: object) -> Json:
    """base_receipt() with its loaf sold as marked goods, the item edited by `edits` (dotted
    paths); paid in full."""
    task = base_receipt()
    item = task["items"][0]
    item["paymentObject"] = "commodityWithMarking"
    item["imcParams"] = {"imc": IMC, "imcType": "auto", "itemEstimatedStatus": "itemPieceSold"}
    for path, value in (edits or {}).items():
        _set(item, path, value)
    task["payments"][0]["sum"] = item["amount"]
    task.update(receipt)
    return task


@pytest.mark.parametrize("path", sorted(MARKED_ITEM_TAGS))
def test_marked_item_field_reaches_the_document(daemon: Daemon, path: str) -> None:
    edits, tag, expected = MARKED_ITEM_TAGS[path]
    doc = daemon.fiscalise(marked_receipt(edits))
    assert _tag(doc["items"][0]["tags"], tag) == expected


def test_a_marked_sale_binds_the_code_and_reports_its_check(daemon: Daemon) -> None:
    # The emulator's ОИСМ confirms every code: 2106 = 0x0F (checked, right, status checked,
    # status right), bound into the item and listed in the result.
    status, body, uuid = daemon.post(marked_receipt(validateMarkingCodes=True))
    assert status == 201, body
    result = daemon.result(uuid)
    assert result["status"] == "ready", result
    doc = daemon.document(result["result"]["fiscalParams"]["fiscalDocumentNumber"])
    tags = doc["items"][0]["tags"]
    assert (tags["1212"], tags["2000"], tags["2106"]) == (33, DAIRY.hex(), 0x0F)
    (mark,) = result["result"]["marks"]
    assert (mark["item"], mark["imc"], mark["tag2106"], mark["offline"]) == (0, IMC, 0x0F, False)
    assert mark["itemInfoCheckResult"] == {
        "imcCheckFlag": True,
        "imcCheckResult": True,
        "imcStatusInfo": True,
        "imcEstimatedStatusCorrect": True,
        "ecrStandAloneFlag": False,
    }


def test_a_return_of_marked_goods(daemon: Daemon) -> None:
    task = marked_receipt({"imcParams.itemEstimatedStatus": "itemPieceReturn"})
    task["type"] = "sellReturn"
    doc = daemon.fiscalise(task)
    assert doc["tags"]["1054"] == 2
    assert doc["items"][0]["tags"]["2000"] == DAIRY.hex()


def test_the_expected_code_type_is_checked(daemon: Daemon) -> None:
    # The register recognises the dairy code as one with a 4-character check code (2100 = 5).
    doc = daemon.fiscalise(marked_receipt({"imcParams.imcType": "imcVerifyCode4"}))
    assert doc["items"][0]["tags"]["2000"] == DAIRY.hex()
    before = daemon.tape.read_text(encoding="utf-8")
    status, body, uuid = daemon.post(marked_receipt({"imcParams.imcType": "imcShort"}))
    assert status == 201, body
    result = daemon.result(uuid)
    assert result["status"] == "error"
    assert result["error"]["code"] == 404
    assert daemon.tape.read_text(encoding="utf-8") == before
    # acceptOnBad: the client decided already; the same mismatch is sold.
    edits = {"imcParams.imcType": "imcShort", "imcParams.acceptOnBad": True}
    doc = daemon.fiscalise(marked_receipt(edits))
    assert doc["items"][0]["tags"]["2000"] == DAIRY.hex()


def test_check_first_then_sell_with_the_check_result(daemon: Daemon) -> None:
    params = {"imc": IMC, "imcType": "auto", "itemEstimatedStatus": "itemPieceSold"}
    checked = daemon.run_tasks(
        [
            {"type": "beginMarkingCodeValidation", "params": params},
            {"type": "getMarkingCodeValidationStatus"},
            {"type": "acceptMarkingCode"},
        ]
    )
    assert [r["status"] for r in checked] == ["ready"] * 3, checked
    begin, status, accept = (r["result"] for r in checked)
    assert begin["offlineValidation"]["fmCheckErrorReason"] == "typeIncorrect"
    assert status["ready"] is True
    assert status["onlineValidation"]["itemInfoCheckResult"]["imcEstimatedStatusCorrect"]
    claimed = accept["itemInfoCheckResult"]
    doc = daemon.fiscalise(marked_receipt({"imcParams.itemInfoCheckResult": claimed}))
    assert doc["items"][0]["tags"]["2106"] == 0x0F


def test_validate_marks_accepts_confirmed_codes(daemon: Daemon) -> None:
    params = {"imc": IMC, "imcType": "auto", "itemEstimatedStatus": "itemPieceSold"}
    (result,) = daemon.run_tasks([{"type": "validateMarks", "params": [params]}])
    assert result["status"] == "ready", result
    (entry,) = result["result"]["validateMarks"]
    assert entry["driverError"]["code"] == 0
    assert entry["itemInfoCheckResult"]["imcCheckResult"] is True


def test_a_piece_line_says_so_too(daemon: Daemon) -> None:
    # ФФД 1.2 requires 2108 on every line: the driver must send piece (0), not leave it out.
    doc = daemon.fiscalise(base_receipt())
    assert doc["items"][0]["tags"]["2108"] == 0


def test_weighed_quantity_and_department(daemon: Daemon) -> None:
    task = base_receipt()
    task["items"][0].update({"quantity": 0.455, "price": 899.00, "amount": 409.05, "department": 3})
    task["items"][0]["measurementUnit"] = "kilogram"
    task["payments"][0]["sum"] = 409.05
    doc = daemon.fiscalise(task)
    (item,) = doc["items"]
    assert item["quantity"] == 0.455
    assert item["tags"]["2108"] == 11
    assert item["department"] == 3


def test_electronically_is_not_printed_and_goes_to_the_buyer(daemon: Daemon) -> None:
    task = base_receipt()
    task["electronically"] = True
    task["clientInfo"] = {"emailOrPhone": "buyer@example.com"}
    doc = daemon.fiscalise(task)
    assert doc["printed"] is False
    assert doc["tags"]["1008"] == "buyer@example.com"
    # The register prints again from the next document on.
    assert daemon.fiscalise(base_receipt())["printed"] is True


def test_ignore_non_fiscal_print_errors_is_accepted(daemon: Daemon) -> None:
    task = base_receipt()
    task["ignoreNonFiscalPrintErrors"] = True
    assert daemon.fiscalise(task)["total"] == 10000


REFUSED = [(f"{path}", sub) for path, sub in RECEIPT_FIELDS if "x-refused" in sub] + [
    (f"items.{path}", sub) for path, sub in ITEM_FIELDS if "x-refused" in sub
]


@pytest.mark.parametrize(("path", "schema"), REFUSED, ids=[p for p, _ in REFUSED])
def test_refused_field_is_named_and_nothing_is_printed(
    daemon: Daemon, path: str, schema: Json
) -> None:
    task = base_receipt()
    if path.startswith("items."):
        _set(task["items"][0], path.removeprefix("items."), schema["examples"][0])
        where = f"request[0].items[0].{path.removeprefix('items.')}"
    else:
        _set(task, path, schema["examples"][0])
        where = f"request[0].{path}"
    before = daemon.tape.read_text(encoding="utf-8") if daemon.tape.exists() else ""
    status, body, _ = daemon.post(task)
    assert status == 400
    assert body["error"]["field"] == where
    assert body["error"]["description"] == f"{where}: {schema['x-refused']}"
    after = daemon.tape.read_text(encoding="utf-8") if daemon.tape.exists() else ""
    assert after == before


def test_an_unknown_field_is_refused_by_name(daemon: Daemon) -> None:
    task = base_receipt()
    task["discountPercent"] = 10
    status, body, _ = daemon.post(task)
    assert status == 400
    assert body["error"]["field"] == "request[0].discountPercent"


def test_text_the_register_cannot_print_is_refused_naming_the_character(daemon: Daemon) -> None:
    task = base_receipt()
    task["items"][0]["name"] = "Торт 🎂"
    status, body, _ = daemon.post(task)
    assert status == 400
    assert "'🎂' (U+1F382)" in body["error"]["description"]
    task["items"][0]["name"] = "Подарок 100 ₽"
    doc = daemon.fiscalise(task)
    assert doc["items"][0]["name"] == "Подарок 100 руб."


def test_every_result_names_receipt_shift_and_registration(daemon: Daemon) -> None:
    status, _, uuid = daemon.post(base_receipt())
    assert status == 201
    params = daemon.result(uuid)["result"]["fiscalParams"]
    doc = daemon.document(params["fiscalDocumentNumber"])
    assert params["shiftNumber"] == doc["shift"] == doc["tags"]["1038"]
    assert params["fiscalReceiptNumber"] == doc["tags"]["1042"]
    assert params["registrationNumber"] == doc["tags"]["1037"]
    assert params["registrationNumber"].strip()
