"""The KKMServer-compatible API on aiohttp's real server, the worker and the Shtrih driver on
the emulator over a real pty, the journal on disk. The emulator's paper tape is the proof."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.config.reader import parse_config
from gateway.config.schema import KkmServerConfig, KkmUserConfig
from gateway.config.values import Listen, Secret
from gateway.domain.errors import ConfigError
from gateway.ingress.kkmserver.server import build_app
from gateway.journal import JobState
from tests.support.box import ShtrihBox, running_box
from tests.support.broker import free_port
from tests.support.in_process import gateway_tape, running_gateway

DOCS_1C = Path(__file__).resolve().parents[2] / "docs" / "1c.md"
USER, PASSWORD = "kassa", "kassa-secret-1"
CONFIG = KkmServerConfig(users=(KkmUserConfig(USER, Secret(PASSWORD)),))


@dataclass
class KkmClient:
    """A KKMServer client: one session with its Basic auth."""

    session: aiohttp.ClientSession

    async def execute(self, body: dict[str, Any], *, sync: bool = False, **kw: Any) -> Any:
        """POST one command; the HTTP status must be 200 and the answer JSON."""
        path = "/Execute/sync" if sync else "/Execute"
        async with self.session.post(path, json=body, **kw) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def rezult(self, id_command: str) -> Any:
        """Poll GetRezult until the command has its final word."""
        async with asyncio.timeout(30):
            while True:
                answer = await self.execute({"Command": "GetRezult", "IdCommand": id_command})
                assert answer["Status"] == 0, answer
                if answer["Rezult"]["Status"] in (0, 2):
                    return answer["Rezult"]
                await asyncio.sleep(0.05)


@dataclass
class Kkm(KkmClient):
    """A box with the KKMServer API in front of it."""

    box: ShtrihBox


async def _device() -> dict[str, object]:
    return {"register": "connected", "model": "ШТРИХ-М-01Ф", "serial": "0012345678"}


@contextlib.asynccontextmanager
async def kkm_box(tmp_path: Path, **options: Any) -> AsyncIterator[Kkm]:
    async with running_box(tmp_path, box_type=ShtrihBox, **options) as box:
        app = build_app(
            config=CONFIG,
            journal=box.journal,
            mapping=box.mapping,
            device=_device,
            on_submitted=box.worker.wake,
        )
        server = TestServer(app)
        await server.start_server()
        auth = {"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)}
        try:
            async with aiohttp.ClientSession(
                base_url=str(server.make_url("/")), headers=auth
            ) as session:
                yield Kkm(session, box)
        finally:
            await server.close()


def sale(id_command: str, name: str = "Хлеб бородинский", **extra: Any) -> dict[str, Any]:
    """A RegisterCheck as a KKMServer client sends it: one line, paid in cash with change."""
    body: dict[str, Any] = {
        "Command": "RegisterCheck",
        "NumDevice": 0,
        "IdCommand": id_command,
        "IsFiscalCheck": True,
        "TypeCheck": 0,
        "NotPrint": False,
        "CashierName": "Иванова А.",
        "CashierVATIN": "",
        "TaxVariant": "",
        "CheckStrings": [
            {
                "Register": {
                    "Name": name,
                    "Quantity": 2,
                    "Price": 45.50,
                    "Amount": 91.00,
                    "Department": 0,
                    "Tax": 10,
                    "SignMethodCalculation": 4,
                    "SignCalculationObject": 1,
                    "MeasureOfQuantity": 0,
                    "GoodCodeData": None,
                }
            }
        ],
        "Cash": 100,
        "ElectronicPayment": 0,
        "AdvancePayment": 0,
        "Credit": 0,
        "CashProvision": 0,
    }
    body.update(extra)
    return body


async def test_sale_prints_once_and_answers_fiscal_data(tmp_path: Path) -> None:
    async with kkm_box(tmp_path) as kkm:
        answer = await kkm.execute(sale("a1b2c3d4-0001"))
        assert answer["Status"] in (1, 4)
        assert answer["Error"] == ""
        assert answer["IdCommand"] == "a1b2c3d4-0001"
        result = await kkm.rezult("a1b2c3d4-0001")
        assert result["Command"] == "RegisterCheck"
        assert result["Error"] == ""
        receipts = [d for d in kkm.box.tape() if d.get("items")]
        assert len(receipts) == 1
        doc = receipts[0]
        assert doc["items"][0]["name"] == "Хлеб бородинский"
        assert result["CheckNumber"] == doc["number"]
        assert result["FiscalSign"] == str(doc["fiscal_sign"])
        assert result["Cash"] == 100.0
        assert result["SessionNumber"] >= 1
        assert result["SessionCheckNumber"] >= 1
        qr = dict(part.split("=", 1) for part in result["QRCode"].split("&"))
        assert qr["s"] == "91.00"
        assert qr["n"] == "1"
        assert qr["i"] == str(doc["number"])
        assert qr["fp"] == str(doc["fiscal_sign"])


async def test_repeated_id_command_prints_nothing(tmp_path: Path) -> None:
    async with kkm_box(tmp_path) as kkm:
        first = await kkm.execute(sale("dup-0001"), sync=True)
        assert first["Status"] == 0, first
        again = await kkm.execute(sale("dup-0001", name="Другой товар"), sync=True)
        assert again["Status"] == 0
        assert again["CheckNumber"] == first["CheckNumber"]
        assert again["FiscalSign"] == first["FiscalSign"]
        assert kkm.box.printed("Хлеб бородинский") == 1
        assert kkm.box.printed("Другой товар") == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"TypeCheck": 2}, "TypeCheck"),
        ({"Cash": 100.001}, "Cash"),
        ({"Cash": 50}, "Cash"),
        ({"SenderEmail": "shop@example.com"}, "SenderEmail"),
        ({"Surprise": 1}, "Surprise"),
        ({"PayByProcessing": True}, "PayByProcessing"),
    ],
)
async def test_bad_receipt_field_is_named_and_nothing_printed(
    tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    async with kkm_box(tmp_path) as kkm:
        answer = await kkm.execute(sale("bad-0001", **change), sync=True)
        assert answer["Status"] == 2
        assert answer["Error"].startswith(f"{field}"), answer["Error"]
        assert await kkm.box.journal.find("bad-0001") is None
        assert kkm.box.tape() == []


@pytest.mark.parametrize(
    ("register", "field"),
    [
        ({"GoodCodeData": {"BarCode": "0104601234567890215abc"}}, "GoodCodeData"),
        ({"GoodCodeData": {"BarCode": "4601234567890"}}, "GoodCodeData.BarCode"),
        ({"PackageQuantity": 22}, "PackageQuantity"),
        ({"AgentSign": 2}, "AgentSign"),
        ({"Price": 45.505}, "Price"),
        ({"Amount": 95}, "Amount"),
        ({"Tax": 18}, "Tax"),
        ({"Name": "Торт 🎂"}, "Name"),
        ({"Colour": "red"}, "Colour"),
    ],
)
async def test_bad_line_field_is_named(
    tmp_path: Path, register: dict[str, Any], field: str
) -> None:
    async with kkm_box(tmp_path) as kkm:
        body = sale("bad-line-1")
        body["CheckStrings"][0]["Register"].update(register)
        answer = await kkm.execute(body)
        assert answer["Status"] == 2
        assert answer["Error"].startswith(f"CheckStrings[0].Register.{field}:"), answer["Error"]
        assert kkm.box.tape() == []


async def test_print_text_line_is_refused(tmp_path: Path) -> None:
    async with kkm_box(tmp_path) as kkm:
        body = sale("text-1")
        body["CheckStrings"].insert(0, {"PrintText": {"Text": "Спасибо!"}})
        answer = await kkm.execute(body)
        assert answer["Status"] == 2
        assert answer["Error"].startswith("CheckStrings[0].PrintText:")
        assert kkm.box.tape() == []


async def test_wrong_basic_auth_is_401(tmp_path: Path) -> None:
    async with kkm_box(tmp_path) as kkm:
        for name, password in ((USER, "wrong-password"), ("x", PASSWORD)):
            auth = {"Authorization": aiohttp.encode_basic_auth(name, password)}
            async with kkm.session.post("/Execute", json=sale("auth-1"), headers=auth) as resp:
                assert resp.status == 401
                assert resp.headers["WWW-Authenticate"].startswith("Basic ")
                assert (await resp.json())["Status"] == 2
        async with kkm.session.post(
            "/Execute", json=sale("auth-1"), headers={"Authorization": ""}
        ) as resp:
            assert resp.status == 401
        assert await kkm.box.journal.find("auth-1") is None
        assert kkm.box.tape() == []


async def test_shifts_cash_and_x_report(tmp_path: Path) -> None:
    async with kkm_box(tmp_path) as kkm:
        opened = await kkm.execute(
            {"Command": "OpenShift", "IdCommand": "open-1", "CashierName": "Иванова А."},
            sync=True,
        )
        assert opened["Status"] == 0, opened
        assert opened["SessionNumber"] >= 1
        assert opened["CheckNumber"] >= 1
        cash_in = await kkm.execute(
            {"Command": "DepositingCash", "IdCommand": "in-1", "Amount": 500}, sync=True
        )
        assert cash_in["Status"] == 0
        assert cash_in["Amount"] == 500.0
        cash_out = await kkm.execute(
            {"Command": "PaymentCash", "IdCommand": "out-1", "Amount": 120.5}, sync=True
        )
        assert cash_out["Status"] == 0
        assert cash_out["Amount"] == 120.5
        report = await kkm.execute({"Command": "XReport", "IdCommand": "x-1"}, sync=True)
        assert report["Status"] == 0
        data = await kkm.execute({"Command": "GetDataKKT", "IdCommand": "kkt-1"}, sync=True)
        assert data["Status"] == 0
        assert data["Info"]["SessionState"] == 2
        assert data["Info"]["FnNumber"]
        closed = await kkm.execute({"Command": "CloseShift", "IdCommand": "close-1"}, sync=True)
        assert closed["Status"] == 0
        assert closed["SessionNumber"] == opened["SessionNumber"]
        data = await kkm.execute({"Command": "GetDataKKT", "IdCommand": "kkt-2"}, sync=True)
        assert data["Info"]["SessionState"] == 1
        assert data["CheckNumber"] == closed["CheckNumber"]
        for id_command in ("open-1", "in-1", "out-1", "x-1", "close-1"):
            assert (await kkm.box.journal.get(id_command)).state is JobState.DONE
        # The register counted the cash: its own shift totals before the Z report.
        kinds = [d.get("type") for d in kkm.box.tape()]
        assert kinds, "the emulator printed nothing"


async def test_sync_waits_only_up_to_timeout_and_blocked_is_running(tmp_path: Path) -> None:
    async with kkm_box(tmp_path, start_worker=False) as kkm:
        waited = await kkm.execute(sale("late-1", Timeout=1), sync=True)
        assert waited["Status"] == 4  # committed, not started: poll GetRezult
        assert (await kkm.box.journal.get("late-1")).state is JobState.QUEUED
        polled = await kkm.execute({"Command": "GetRezult", "IdCommand": "late-1"})
        assert polled["Rezult"]["Status"] == 4
        await kkm.box.journal.block("late-1", 0, 501, "the register's answer was lost")
        blocked = await kkm.execute({"Command": "GetRezult", "IdCommand": "late-1"})
        assert blocked["Rezult"]["Status"] == 1
        assert "IdCommand" in blocked["Rezult"]["Warning"]
        again = await kkm.execute(sale("late-1"), sync=True)  # a blocked job is final here
        assert again["Status"] == 1
        assert kkm.box.tape() == []


async def test_register_refusal_is_status_2_with_its_error(tmp_path: Path) -> None:
    async with kkm_box(tmp_path, tax_systems=1) as kkm:  # registered for ОСН only
        answer = await kkm.execute(sale("patent-1", TaxVariant="5"), sync=True)
        assert answer["Status"] == 2
        assert "(code " in answer["Error"]
        assert (await kkm.box.journal.get("patent-1")).state is JobState.FAILED
        assert [d for d in kkm.box.tape() if d.get("items")] == []


async def test_unreadable_and_oversized_bodies_are_refused(tmp_path: Path) -> None:
    async with kkm_box(tmp_path) as kkm:
        async with kkm.session.post("/Execute", data=b"{not json") as resp:
            assert resp.status == 200
            answer = await resp.json()
        assert answer["Status"] == 2
        assert answer["Error"].startswith("not valid JSON")
        huge = sale("huge-1", AdditionalAttribute="x" * 70_000)
        async with kkm.session.post("/Execute", json=huge) as resp:
            assert resp.status == 413
            assert (await resp.json())["Status"] == 2
        assert await kkm.box.journal.find("huge-1") is None


async def test_list_and_unknown_commands(tmp_path: Path) -> None:
    async with kkm_box(tmp_path) as kkm:
        listed = await kkm.execute({"Command": "List"})
        assert listed["Status"] == 0
        assert listed["ListUnit"][0]["KktNumber"] == "0012345678"
        missing = await kkm.execute({"Command": "GetRezult", "IdCommand": "never-sent"})
        assert missing["Status"] == 3
        zreport = await kkm.execute({"Command": "ZReport"})
        assert zreport["Status"] == 2
        assert zreport["Error"].startswith("Command:")
        other = await kkm.execute({"Command": "OpenShift", "NumDevice": 2})
        assert other["Status"] == 2
        assert other["Error"].startswith("NumDevice:")


def doc_sequence() -> list[tuple[str, dict[str, Any]]]:
    """The sample sequence of docs/1c.md: (path, command) in order."""
    text = DOCS_1C.read_text(encoding="utf-8")
    steps = re.findall(r"`POST (/Execute(?:/sync)?)`\n```json\n(.*?)```", text, re.DOTALL)
    return [(path, json.loads(body)) for path, body in steps]


async def test_the_1c_sample_sequence_on_the_daemon(tmp_path: Path) -> None:
    """docs/1c.md, step by step, against the whole daemon configured with a kkmserver section
    (the password from a file), on its built-in emulator."""
    secret = tmp_path / "kkm.secret"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    port = free_port()
    text = f"""
state_dir: {tmp_path / "state"}
http:
  listen: 127.0.0.1:{free_port()}
web:
  enabled: false
kkmserver:
  listen: 127.0.0.1:{port}
  users:
    - name: {USER}
      password_file: {secret}
"""
    steps = doc_sequence()
    assert len(steps) >= 6
    auth = {"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)}
    async with (
        running_gateway(text),
        aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}", headers=auth) as session,
    ):
        kkm = KkmClient(session)
        done: dict[str, Any] = {}
        for path, command in steps:
            answer = await kkm.execute(command, sync=path.endswith("/sync"))
            id_command = command["IdCommand"]
            if command["Command"] == "GetRezult":
                answer = await kkm.rezult(id_command)
            elif path == "/Execute":
                assert answer["Status"] in (1, 4), answer
                continue
            assert answer["Status"] == 0, (command["Command"], answer)
            if id_command in done:  # the repeated receipt: the stored answer
                assert answer["CheckNumber"] == done[id_command]["CheckNumber"]
                assert answer["FiscalSign"] == done[id_command]["FiscalSign"]
            done[id_command] = answer
            if command["Command"] == "GetDataKKT":
                assert answer["Info"]["SessionState"] in (1, 2)
    receipts = [d for d in gateway_tape(tmp_path / "state") if d.get("items")]
    assert [i["name"] for d in receipts for i in d["items"]] == [
        "Хлеб бородинский",
        "Молоко 3,2% 1 л",
    ]


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ("kkmserver:\n  listen: 0.0.0.0:5893\n", "kkmserver.users: is required"),
        ("kkmserver:\n  users: []\n", "kkmserver.users: list at least one user"),
        (
            "kkmserver:\n  users:\n    - {name: 'a:b', password: kassa-secret}\n",
            "kkmserver.users[0].name: must not contain ':'",
        ),
        (
            "kkmserver:\n  users:\n    - {name: a, password: short}\n",
            "kkmserver.users: the password of 'a' is too short",
        ),
    ],
)
def test_config_section_is_checked(section: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(section)
    assert any(f"{i.path}: {i.message}".startswith(problem) for i in caught.value.issues)


def test_config_section_is_off_when_absent(tmp_path: Path) -> None:
    assert parse_config("").kkmserver is None
    secret = tmp_path / "kassa.secret"
    secret.write_text("kassa-secret-1\n", encoding="utf-8")
    cfg = parse_config(f"kkmserver:\n  users:\n    - name: kassa\n      password_file: {secret}\n")
    assert cfg.kkmserver is not None
    assert cfg.kkmserver.listen == Listen("127.0.0.1", 5893)
    assert cfg.kkmserver.users[0].password.reveal() == "kassa-secret-1"


# A dairy code as scanned ([NG] #165): GS (1Dh) between the serial and its check key.
MILK = "0104600653105990215" + "2CUnq\x1d93Gk30"


def marked_sale(id_command: str, code: str = MILK, **good: Any) -> dict[str, Any]:
    """A RegisterCheck with one marked pack of milk besides the bread."""
    body = sale(id_command)
    body["CheckStrings"].append(
        {
            "Register": {
                "Name": "Молоко 3,2%",
                "Quantity": 1,
                "Price": 95,
                "Amount": 95,
                "Tax": 10,
                "SignMethodCalculation": 4,
                "SignCalculationObject": 33,
                "MeasureOfQuantity": 0,
                "GoodCodeData": {"BarCode": code, "ContainsSerialNumber": True, **good},
            }
        }
    )
    body["Cash"] = 200
    return body


def _item_tags(kkm: Kkm, name: str) -> dict[str, Any]:
    [tags] = [i["tags"] for d in kkm.box.tape() for i in d.get("items", []) if i["name"] == name]
    assert isinstance(tags, dict)
    return tags


async def test_a_marked_sale_checks_binds_and_answers_each_codes_result(tmp_path: Path) -> None:
    async with kkm_box(tmp_path) as kkm:
        body = marked_sale("mark-0001", IndustryProps="UUID=7f1c&Time=1764800000000")
        answer = await kkm.execute(body, sync=True)
        assert answer["Status"] == 0, answer
        assert kkm.box.printed("Молоко 3,2%") == 1
        [mark] = answer["MarkingCodeValidation"]
        assert mark["Name"] == "Молоко 3,2%"
        assert mark["BarCode"] == MILK
        assert mark["ValidationKKT"]["ValidationResult"] == 0x0F  # the ОИСМ confirmed it
        assert mark["ValidationKKT"]["DecryptionResult"].startswith("[М+]")
        assert mark["IndustryProps"] == "UUID=7f1c&Time=1764800000000"
        tags = _item_tags(kkm, "Молоко 3,2%")
        assert tags.get("2106") == 0x0F, tags
        assert tags.get("2000") == MILK.encode().hex()  # the code as scanned, GS kept
        assert tags.get("1260") == {
            "1262": "030",
            "1263": "21.11.2023",
            "1264": "1944",
            "1265": "UUID=7f1c&Time=1764800000000",
        }
        assert "2000" not in _item_tags(kkm, "Хлеб бородинский")
        # The same answer later through GetRezult.
        again = await kkm.rezult("mark-0001")
        assert again["MarkingCodeValidation"] == answer["MarkingCodeValidation"]


async def test_a_refused_code_prints_nothing_unless_accept_on_bad(tmp_path: Path) -> None:
    async with kkm_box(tmp_path) as kkm:
        await kkm.box.emulator.apply_fault("ism_answer", "sold")
        refused = await kkm.execute(marked_sale("mark-0002"), sync=True)
        assert refused["Status"] == 2
        assert "0104600653105990215" in refused["Error"], refused["Error"]
        assert [d for d in kkm.box.tape() if d.get("items")] == []
        sold = await kkm.execute(marked_sale("mark-0003", AcceptOnBad=True), sync=True)
        assert sold["Status"] == 0, sold
        assert sold["MarkingCodeValidation"][0]["ValidationKKT"]["ValidationResult"] == 0x07
        assert sold["MarkingCodeValidation"][0]["ValidationKKT"]["DecryptionResult"].startswith(
            "[М-]"
        )
        assert _item_tags(kkm, "Молоко 3,2%").get("2106") == 0x07


async def test_validation_marking_code_answers_each_codes_check(tmp_path: Path) -> None:
    async with kkm_box(tmp_path) as kkm:
        sold_code = "0104600653105990215" + "9XYZq\x1d93Gk31"
        await kkm.box.emulator.apply_fault("ism_code_answer", {"code": sold_code, "answer": "sold"})
        body = {
            "Command": "ValidationMarkingCode",
            "IdCommand": "check-0001",
            "TypeCheck": 0,
            "GoodCodeDatas": [
                {"BarCode": MILK},
                {"BarCode": sold_code, "AcceptOnBad": False},
            ],
        }
        answer = await kkm.execute(body, sync=True)
        assert answer["Status"] == 0, answer
        assert answer["Command"] == "ValidationMarkingCode"
        good, bad = answer["MarkingCodeValidation"]
        assert (good["BarCode"], good["ValidationKKT"]["ValidationResult"]) == (MILK, 0x0F)
        assert bad["BarCode"] == sold_code
        assert bad["ValidationKKT"]["ValidationResult"] == 0x07
        assert bad["ValidationPR"]["ValidationDisabled"] is True
        assert [d for d in kkm.box.tape() if d.get("items")] == []  # a check prints nothing
