"""A fake Checkbox API (api.checkbox.ua/api/v1) for tests: aiohttp.web on 127.0.0.1.

Written from [CHECKBOX] (the OpenAPI schemas and the published captures): license header on
every call (422 missing, 403 refused/expired), bearer tokens (401 `base.credentials`),
asynchronous shift states CREATED→OPENED and CLOSING→CLOSED, receipts CREATED→DONE with a
client id that can never be used twice (400 `receipt.already_exists`), error bodies
`{code, message[, detail]}`, offline mode with reserved offline codes.

One organisation with two cash registers (two license keys): receipt ids are the client's
UUIDs and global, so an id used by either register is refused to both; a receipt can be
read by id from either (the organisation's cashiers see its receipts), and says which
register made it (`cash_register_id`, `shift.cash_register`). Service receipts
(`receipts/service`, a CASH payment, positive in / negative out), the X report
(`POST reports`, a `ReportModel`) and the shift's `balance` follow the OpenAPI schemas.

It keeps its state in a JSON file when given one, and appends every receipt it accepts to
`<state>.tape.jsonl` — the paper tape that proves exactly-once.

    python -m tests.fakes.checkbox --state FILE [--port N]   # prints "READY <api url>"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import signal
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

LICENSE_KEY = "test-license-key-0001"
FISCAL_NUMBER = "4000123456"
LICENSE_KEY_2 = "test-license-key-0002"  # a second register of the same organisation
FISCAL_NUMBER_2 = "4000123457"
LOGIN = "test_cashier"
PASSWORD = "test_password"
PIN_CODE = "1234"
TAXES = [
    {"code": 1, "label": "ПДВ", "symbol": "А", "rate": 20.0, "extra_rate": None},
    {"code": 2, "label": "ПДВ", "symbol": "Б", "rate": 7.0, "extra_rate": None},
    {"code": 3, "label": "Без ПДВ", "symbol": "В", "rate": 0.0, "extra_rate": None},
    {"code": 8, "label": "Акциз", "symbol": "Е", "rate": 0.0, "extra_rate": 5.0},
]
_UA_PHONE = re.compile(r"380\d{9}")  # [CHECKBOX] ReceiptDeliverySmsPayload.phone


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _err(status: int, code: str, message: str, detail: object = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        body["detail"] = detail
    return web.json_response(body, status=status)


@dataclass
class Faults:
    """Switches a test flips."""

    tax_online: bool = True
    license_expired: bool = False
    cashier_key_end: dt.datetime = field(default_factory=lambda: _now() + dt.timedelta(days=365))
    hang_sell_answers: int = 0  # accept the next N sells, then never answer
    fail_sell_before: int = 0  # answer the next N sells with a 502 without storing them
    polls_to_done: int = 1  # GETs before CREATED/CLOSING moves on


@dataclass
class CashRegister:
    """One cash register (one license key) and its shifts."""

    license_key: str
    fiscal_number: str
    id: str
    shift: dict[str, Any] | None = None
    shift_serial: int = 0
    offline_mode: bool = False
    offline_codes: list[str] = field(default_factory=list)

    def state(self) -> dict[str, Any]:
        return {
            "shift_id": None if self.shift is None else self.shift["id"],
            "shift_serial": self.shift_serial,
            "offline_mode": self.offline_mode,
            "offline_codes": self.offline_codes,
        }


REGISTER = web.RequestKey("register", CashRegister)


def _balance() -> dict[str, int]:
    keys = ("cash_sales", "card_sales", "cash_returns", "card_returns", "service_in")
    return {"initial": 0, "balance": 0, **dict.fromkeys(keys, 0), "service_out": 0}


class FakeCheckbox:
    """State and handlers of one organisation: two cash registers, one cashier."""

    def __init__(self, state: Path | None = None) -> None:
        self.state_path = state
        self.faults = Faults()
        self.tokens: dict[str, str] = {}  # token -> the license key it was issued under
        self.registers: dict[str, CashRegister] = {
            LICENSE_KEY: CashRegister(
                LICENSE_KEY, FISCAL_NUMBER, "cafe0000-0000-4000-8000-000000000001"
            ),
            LICENSE_KEY_2: CashRegister(
                LICENSE_KEY_2, FISCAL_NUMBER_2, "cafe0000-0000-4000-8000-000000000002"
            ),
        }
        self.shifts: dict[str, dict[str, Any]] = {}
        self.receipts: dict[str, dict[str, Any]] = {}
        self.reports: list[dict[str, Any]] = []
        self.polls: dict[str, int] = {}
        self.sell_posts = 0  # every POST receipts/sell, refused or not
        self.service_posts = 0  # every POST receipts/service, refused or not
        self.stop_hanging = asyncio.Event()
        self._load()

    # The first register is the one most tests drive.

    @property
    def main(self) -> CashRegister:
        return self.registers[LICENSE_KEY]

    @property
    def shift(self) -> dict[str, Any] | None:
        return self.main.shift

    @property
    def offline_mode(self) -> bool:
        return self.main.offline_mode

    @property
    def offline_codes(self) -> list[str]:
        return self.main.offline_codes

    def shifts_of(self, reg: CashRegister) -> list[dict[str, Any]]:
        return [s for s in self.shifts.values() if s["cash_register"]["id"] == reg.id]

    # --- persistence (for the crash harness) -------------------------------------------------

    @property
    def tape_path(self) -> Path | None:
        """One JSON line per accepted receipt."""
        return None if self.state_path is None else Path(f"{self.state_path}.tape.jsonl")

    def _load(self) -> None:
        if self.state_path is None or not self.state_path.exists():
            return
        data = json.loads(self.state_path.read_text(encoding="utf-8"))
        self.shifts = data["shifts"]
        self.receipts = data["receipts"]
        for key, saved in data["registers"].items():
            reg = self.registers[key]
            reg.shift_serial = saved["shift_serial"]
            reg.offline_mode = saved["offline_mode"]
            reg.offline_codes = saved["offline_codes"]
            reg.shift = None if saved["shift_id"] is None else self.shifts[saved["shift_id"]]

    def _save(self) -> None:
        if self.state_path is None:
            return
        data = {
            "shifts": self.shifts,
            "receipts": self.receipts,
            "registers": {key: reg.state() for key, reg in self.registers.items()},
        }
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_path)

    def _tape(self, receipt: dict[str, Any]) -> None:
        path = self.tape_path
        if path is None:
            return
        line = {
            "id": receipt["id"],
            "type": receipt["type"],
            "total": receipt["total_sum"],
            "names": [g["good"]["name"] for g in receipt["goods"]],
        }
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def tape(self) -> list[dict[str, Any]]:
        """Receipts accepted, in order (from memory when there is no state file)."""
        path = self.tape_path
        if path is None:
            return [
                {"id": r["id"], "type": r["type"], "total": r["total_sum"]}
                for r in self.receipts.values()
            ]
        if not path.exists():
            return []
        return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]

    # --- app -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application under /api/v1."""
        app = web.Application(middlewares=[self._guard])
        r = app.router
        p = "/api/v1/"
        r.add_post(p + "cashier/signin", self.signin)
        r.add_post(p + "cashier/signinPinCode", self.signin_pin)
        r.add_get(p + "cashier/me", self.me)
        r.add_get(p + "cashier/shift", self.cashier_shift)
        r.add_get(p + "cash-registers/info", self.info)
        r.add_get(p + "tax", self.taxes)
        r.add_post(p + "shifts", self.open_shift)
        r.add_post(p + "shifts/close", self.close_shift)
        r.add_get(p + "shifts/{id}", self.get_shift)
        r.add_post(p + "receipts/sell", self.sell)
        r.add_post(p + "receipts/service", self.service)
        r.add_get(p + "receipts/{id}", self.get_receipt)
        r.add_get(p + "receipts/{id}/text", self.receipt_text)
        r.add_post(p + "reports", self.x_report)
        r.add_post(p + "cash-registers/ping-tax-service", self.ping_tax)
        r.add_post(p + "cash-registers/go-offline", self.go_offline)
        r.add_post(p + "cash-registers/go-online", self.go_online)
        r.add_get(p + "cash-registers/get-offline-codes-count", self.codes_count)
        r.add_get(p + "cash-registers/ask-offline-codes", self.ask_codes)
        r.add_post("/_control", self.control)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/_control":
            return await handler(request)  # type: ignore[no-any-return]
        key = request.headers.get("X-License-Key")
        if key is None:
            return _err(422, "validation_error", "X-License-Key header is required")
        if key not in self.registers:
            return _err(403, "license.invalid", "Невірний ключ ліцензії каси")
        if self.faults.license_expired:
            return _err(403, "license.expired", "Термін дії ліцензії каси закінчився")
        if not request.path.startswith("/api/v1/cashier/signin"):
            auth = request.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or self.tokens.get(auth[7:]) != key:
                return _err(401, "base.credentials", "Не вдалося перевірити облікові дані")
        request[REGISTER] = self.registers[key]
        resp: web.StreamResponse = await handler(request)
        return resp

    async def control(self, request: web.Request) -> web.Response:
        """Tests in another process flip a fault: `{"fault": name, "value": v}`."""
        body = await request.json()
        name = body["fault"]
        if name == "expire_tokens":
            self.expire_tokens()
        elif hasattr(self.faults, name):
            setattr(self.faults, name, body["value"])
        else:
            return _err(400, "control.unknown", f"no fault {name!r}")
        return web.json_response({"ok": True})

    def expire_tokens(self) -> None:
        """Every issued token stops working (the driver must sign in again)."""
        self.tokens.clear()

    def _token(self, request: web.Request) -> web.Response:
        token = uuid.uuid4().hex
        self.tokens[token] = request.headers["X-License-Key"]
        return web.json_response({"token_type": "bearer", "access_token": token})

    async def signin(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("login") != LOGIN or body.get("password") != PASSWORD:
            return _err(401, "auth.invalid_credentials", "Невірний логін або пароль")
        return self._token(request)

    async def signin_pin(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("pin_code") != PIN_CODE:
            return _err(401, "auth.invalid_pin_code", "Невірний пін-код")
        return self._token(request)

    async def me(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "id": "c0ffee00-0000-4000-8000-000000000001",
                "full_name": "Тестовий Касир",
                "certificate_end": self.faults.cashier_key_end.isoformat(),
            }
        )

    async def info(self, request: web.Request) -> web.Response:
        reg: CashRegister = request[REGISTER]
        return web.json_response(
            {
                "id": reg.id,
                "fiscal_number": reg.fiscal_number,
                "offline_mode": reg.offline_mode,
                "stay_offline": False,
                "has_shift": reg.shift is not None,
            }
        )

    async def taxes(self, request: web.Request) -> web.Response:
        return web.json_response(TAXES)

    # --- shifts ----------------------------------------------------------------------------

    def _fiscal_code(self, reg: CashRegister) -> tuple[str, bool]:
        if reg.offline_mode:
            if not reg.offline_codes:
                raise web.HTTPBadRequest(
                    text=json.dumps({"code": "offline.no_codes", "message": "Немає кодів"}),
                    content_type="application/json",
                )
            return reg.offline_codes.pop(0), True
        return str(7_000_000_000 + len(self.receipts) + len(self.shifts) * 1000), False

    def _advance(self, key: str, reg: CashRegister) -> bool:
        """True once the object was polled enough to move on (and the tax service allows)."""
        self.polls[key] = self.polls.get(key, 0) + 1
        return self.polls[key] >= self.faults.polls_to_done and (
            self.faults.tax_online or reg.offline_mode
        )

    async def cashier_shift(self, request: web.Request) -> web.Response:
        return web.json_response(request[REGISTER].shift)

    async def open_shift(self, request: web.Request) -> web.Response:
        reg: CashRegister = request[REGISTER]
        if reg.shift is not None:
            return _err(400, "shift.already_opened", "Зміну вже відкрито")
        if self.faults.cashier_key_end <= _now():
            return _err(400, "cashier.signature_expired", "Термін дії ключа касира закінчився")
        reg.shift_serial += 1
        shift = {
            "id": str(uuid.uuid4()),
            "serial": reg.shift_serial,
            "status": "CREATED",
            "opened_at": None,
            "closed_at": None,
            "receipts_count": 0,
            "balance": _balance(),
            "initial_transaction": {"status": "PENDING", "fiscal_code": None},
            "closing_transaction": None,
            "z_report": None,
            "cash_register": {"id": reg.id, "fiscal_number": reg.fiscal_number},
        }
        reg.shift = shift
        self.shifts[shift["id"]] = shift
        self._save()
        return web.json_response(shift, status=202)

    async def close_shift(self, request: web.Request) -> web.Response:
        reg: CashRegister = request[REGISTER]
        shift = reg.shift
        if shift is None or shift["status"] != "OPENED":
            return _err(400, "shift.not_opened", "Зміну не відкрито")
        shift["status"] = "CLOSING"
        shift["closing_transaction"] = {"status": "PENDING", "fiscal_code": None}
        self._save()
        return web.json_response(shift, status=202)

    async def get_shift(self, request: web.Request) -> web.Response:
        reg: CashRegister = request[REGISTER]
        shift = self.shifts.get(request.match_info["id"])
        if shift is None:
            return _err(404, "shift.not_found", "Зміну не знайдено")
        if shift["status"] in ("CREATED", "CLOSING") and self._advance(shift["id"], reg):
            code, _off = self._fiscal_code(reg)
            self.polls.pop(shift["id"], None)
            if shift["status"] == "CREATED":
                shift.update(status="OPENED", opened_at=_now().isoformat())
                shift["initial_transaction"] = {"status": "DONE", "fiscal_code": code}
            else:
                shift.update(status="CLOSED", closed_at=_now().isoformat())
                shift["closing_transaction"] = {"status": "DONE", "fiscal_code": code}
                shift["z_report"] = {**self._report(shift), "is_z_report": True}
                reg.shift = None
            self._save()
        return web.json_response(shift)

    # --- receipts --------------------------------------------------------------------------

    def _new_receipt(
        self, reg: CashRegister, rid: str, kind: str, body: dict[str, Any], total: int
    ) -> dict[str, Any]:
        shift = reg.shift
        assert shift is not None
        shift["receipts_count"] += 1
        paid = sum(p["value"] for p in body["payments"])
        receipt = {
            "id": rid,
            "type": kind,
            "status": "CREATED",
            "serial": shift["receipts_count"],
            "goods": body.get("goods") or [],
            "payments": body["payments"],
            "total_sum": total,
            "total_payment": paid,
            "total_rest": max(0, paid - total),
            "fiscal_code": None,
            "fiscal_date": None,
            "created_at": _now().isoformat(),
            "tax_url": None,
            "is_created_offline": False,
            "is_sent_dps": False,
            "delivery": body.get("delivery") or {},
            "cashier_name": body.get("cashier_name"),
            "cash_register_id": reg.id,
            "shift_id": shift["id"],
            "shift": {"id": shift["id"], "serial": shift["serial"], **_register_ref(shift)},
        }
        self._count(shift["balance"], receipt)
        self.receipts[rid] = receipt
        self._save()
        self._tape(receipt)
        return receipt

    @staticmethod
    def _count(balance: dict[str, int], receipt: dict[str, Any]) -> None:
        """The shift's `balance` [CHECKBOX] BalanceModel: sums by kind and cash in the drawer."""
        kind = receipt["type"]
        for pay in receipt["payments"]:
            cash = pay["type"] == "CASH"
            value = pay["value"]
            if kind == "SELL":
                net = value - (receipt["total_rest"] if cash else 0)
                balance["cash_sales" if cash else "card_sales"] += net
                balance["balance"] += net if cash else 0
            elif kind == "RETURN":
                balance["cash_returns" if cash else "card_returns"] += value
                balance["balance"] -= value if cash else 0
            elif kind == "SERVICE_IN":
                balance["service_in"] += value
                balance["balance"] += value
            else:
                balance["service_out"] += -value
                balance["balance"] += value

    async def sell(self, request: web.Request) -> web.Response:
        reg: CashRegister = request[REGISTER]
        self.sell_posts += 1
        body = await request.json()
        if self.faults.fail_sell_before > 0:
            self.faults.fail_sell_before -= 1
            return web.Response(status=502, text="Bad Gateway")
        rid = str(body.get("id") or uuid.uuid4())
        if rid in self.receipts:  # ids are global: any register's receipt refuses it
            return _err(400, "receipt.already_exists", "Вказаний id чеку вже існує")
        if reg.shift is None or reg.shift["status"] != "OPENED":
            return _err(400, "shift.not_opened", "Зміну не відкрито")
        problem = _validate(body)
        if problem is not None:
            return _err(422, "validation_error", "Помилка валідації", [{"msg": problem}])
        total = sum(_good_sum(g) for g in body["goods"])
        paid = sum(p["value"] for p in body["payments"])
        if paid < total:
            return _err(400, "receipt.payments", f"Сума оплат {paid} менша за суму чеку {total}")
        is_return = any(g.get("is_return") for g in body["goods"])
        receipt = self._new_receipt(reg, rid, "RETURN" if is_return else "SELL", body, total)
        if self.faults.hang_sell_answers > 0:
            self.faults.hang_sell_answers -= 1
            await self.stop_hanging.wait()  # accepted, but the answer never comes
        return web.json_response(receipt, status=201)

    async def service(self, request: web.Request) -> web.Response:
        """[CHECKBOX] ReceiptServicePayload: one CASH payment, + put in, − taken out."""
        reg: CashRegister = request[REGISTER]
        self.service_posts += 1
        body = await request.json()
        rid = str(body.get("id") or uuid.uuid4())
        if rid in self.receipts:
            return _err(400, "receipt.already_exists", "Вказаний id чеку вже існує")
        if reg.shift is None or reg.shift["status"] != "OPENED":
            return _err(400, "shift.not_opened", "Зміну не відкрито")
        pay = body.get("payment")
        if (
            not isinstance(pay, dict)
            or pay.get("type") != "CASH"
            or not isinstance(pay.get("value"), int)
            or not pay["value"]
        ):
            return _err(422, "validation_error", "Помилка валідації", [{"msg": "payment"}])
        kind = "SERVICE_IN" if pay["value"] > 0 else "SERVICE_OUT"
        receipt = self._new_receipt(reg, rid, kind, {"payments": [pay]}, abs(pay["value"]))
        return web.json_response(receipt, status=201)

    async def get_receipt(self, request: web.Request) -> web.Response:
        receipt = self.receipts.get(request.match_info["id"])
        if receipt is None:
            return _err(404, "receipt.not_found", "Чек не знайдено")
        owner = next(r for r in self.registers.values() if r.id == receipt["cash_register_id"])
        if receipt["status"] == "CREATED" and self._advance(receipt["id"], owner):
            code, offline = self._fiscal_code(owner)
            receipt.update(
                status="DONE",
                fiscal_code=code,
                fiscal_date=_now().isoformat(),
                is_created_offline=offline,
                is_sent_dps=not offline,
                tax_url=f"https://cabinet.tax.gov.ua/cashregs/check?id={code}",
            )
            self._save()
        return web.json_response(receipt)

    async def receipt_text(self, request: web.Request) -> web.Response:
        receipt = self.receipts.get(request.match_info["id"])
        if receipt is None:
            return _err(404, "receipt.not_found", "Чек не знайдено")
        lines = [f"{g['good']['name']} {g['good']['price']}" for g in receipt["goods"]]
        return web.Response(text="\n".join([*lines, f"ФН {receipt['fiscal_code']}"]))

    def _report(self, shift: dict[str, Any]) -> dict[str, Any]:
        """[CHECKBOX] ReportModel of a shift: counts, and sums by payment type."""
        mine = [r for r in self.receipts.values() if r["shift_id"] == shift["id"]]
        payments = []
        for kind, label in (("CASH", "Готівка"), ("CASHLESS", "Картка")):
            row = {"type": kind, "label": label, "sell_sum": 0, "return_sum": 0}
            row.update(service_in=0, service_out=0, cash_withdrawal=0)
            for r in mine:
                for p in r["payments"]:
                    if p["type"] != kind:
                        continue
                    if r["type"] == "SELL":
                        row["sell_sum"] += p["value"] - (r["total_rest"] if kind == "CASH" else 0)
                    elif r["type"] == "RETURN":
                        row["return_sum"] += p["value"]
                    elif r["type"] == "SERVICE_IN":
                        row["service_in"] += p["value"]
                    else:
                        row["service_out"] += -p["value"]
            payments.append(row)
        return {
            "id": str(uuid.uuid4()),
            "shift_id": shift["id"],
            "serial": len(self.reports) + 1,
            "is_z_report": False,
            "fiscal_code": None,
            "payments": payments,
            "taxes": [],
            "sell_receipts_count": sum(r["type"] == "SELL" for r in mine),
            "return_receipts_count": sum(r["type"] == "RETURN" for r in mine),
            "cash_withdrawal_receipts_count": 0,
            "currency_exchange_count": 0,
            "transfers_count": 0,
            "transfers_sum": 0,
            "balance": shift["balance"]["balance"],
            "initial": shift["balance"]["initial"],
            "created_at": _now().isoformat(),
        }

    async def x_report(self, request: web.Request) -> web.Response:
        reg: CashRegister = request[REGISTER]
        if reg.shift is None:
            return _err(400, "shift.not_opened", "Зміну не відкрито")
        report = self._report(reg.shift)
        self.reports.append(report)
        return web.json_response(report, status=201)

    # --- offline ---------------------------------------------------------------------------

    async def ping_tax(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "DONE" if self.faults.tax_online else "ERROR"})

    async def go_offline(self, request: web.Request) -> web.Response:
        request[REGISTER].offline_mode = True
        return web.json_response({"status": "ok"})

    async def go_online(self, request: web.Request) -> web.Response:
        reg: CashRegister = request[REGISTER]
        if not self.faults.tax_online:
            return _err(400, "tax.unreachable", "Податковий сервіс недоступний")
        reg.offline_mode = False
        for receipt in self.receipts.values():
            if receipt["cash_register_id"] == reg.id:
                receipt["is_sent_dps"] = True  # the backlog goes to the tax service
        self._save()
        return web.json_response({"status": "ok"})

    async def codes_count(self, request: web.Request) -> web.Response:
        return web.json_response({"available": len(request[REGISTER].offline_codes)})

    async def ask_codes(self, request: web.Request) -> web.Response:
        reg: CashRegister = request[REGISTER]
        if not self.faults.tax_online:
            return _err(400, "tax.unreachable", "Податковий сервіс недоступний")
        count = int(request.query.get("count", "2000"))
        start = len(reg.offline_codes) + 1
        prefix = "OFF-" if reg is self.main else f"OFF{reg.fiscal_number[-1]}-"
        reg.offline_codes.extend(f"{prefix}{n:06d}" for n in range(start, start + min(count, 50)))
        self._save()
        return web.json_response({"status": "ok"})


def _register_ref(shift: dict[str, Any]) -> dict[str, Any]:
    return {"cash_register": dict(shift["cash_register"])}


def _good_sum(good: dict[str, Any]) -> int:
    base = (good["good"]["price"] * good["quantity"] + 500) // 1000
    for disc in good.get("discounts") or []:
        base += -disc["value"] if disc["type"] == "DISCOUNT" else disc["value"]
    return int(base)


def _validate(body: dict[str, Any]) -> str | None:
    """The checks the real API's schema makes on the fields this box sends."""
    try:
        uuid.UUID(str(body.get("id")))
    except ValueError:
        return "id: value is not a valid uuid"
    goods, payments = body.get("goods"), body.get("payments")
    if not isinstance(goods, list) or not goods:
        return "goods: field required"
    codes = {t["code"] for t in TAXES}
    for i, g in enumerate(goods):
        good = g.get("good") or {}
        if not isinstance(good.get("price"), int) or not isinstance(g.get("quantity"), int):
            return f"goods.{i}: price and quantity must be integers"
        if not good.get("code") or not good.get("name"):
            return f"goods.{i}.good: code and name are required"
        if any(t not in codes for t in good.get("tax") or []):
            return f"goods.{i}.good.tax: unknown tax code"
    if not isinstance(payments, list) or not payments:
        return "payments: field required"
    for i, p in enumerate(payments):
        if p.get("type") not in ("CASH", "CASHLESS") or not isinstance(p.get("value"), int):
            return f"payments.{i}: bad type or value"
    delivery = body.get("delivery")
    if delivery is not None:
        phone = delivery.get("phone")
        if phone is not None and not _UA_PHONE.fullmatch(str(phone)):
            return "delivery.phone: string does not match regex '^380\\d{9}$'"
        for email in delivery.get("emails") or []:
            if "@" not in str(email):
                return "delivery.emails: value is not a valid email address"
    return None


@contextlib.asynccontextmanager
async def serve(fake: FakeCheckbox, port: int = 0) -> Any:
    """Run `fake` on 127.0.0.1; yields the API root URL."""
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    server = site._server
    assert server is not None
    sock_port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{sock_port}/api/v1"
    finally:
        fake.stop_hanging.set()
        await runner.cleanup()


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    fake = FakeCheckbox(args.state)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with serve(fake, args.port) as url:
        print(f"READY {url}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(_main())
