"""A fake Checkbox API (api.checkbox.ua/api/v1) for tests: aiohttp.web on 127.0.0.1.

Written from the public API docs and recorded exchanges (reference §4): license header on
every call (422 missing, 403 refused/expired), bearer tokens (401 `base.credentials`),
asynchronous shift states CREATED→OPENED and CLOSING→CLOSED, receipts CREATED→DONE with a
client id that can never be used twice (400 `receipt.already_exists`), error bodies
`{code, message[, detail]}`, offline mode with reserved offline codes.

It keeps its state in a JSON file when given one, and appends every receipt it accepts to
`<state>.tape.jsonl` — the paper tape that proves exactly-once.

    python -m tests.fakes.checkbox --state FILE [--port N]   # prints "READY <api url>"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import signal
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

LICENSE_KEY = "test-license-key-0001"
LOGIN = "test_cashier"
PASSWORD = "test_password"
PIN_CODE = "1234"
FISCAL_NUMBER = "4000123456"
TAXES = [
    {"code": 1, "label": "ПДВ", "symbol": "А", "rate": 20.0, "extra_rate": None},
    {"code": 2, "label": "ПДВ", "symbol": "Б", "rate": 7.0, "extra_rate": None},
    {"code": 3, "label": "Без ПДВ", "symbol": "В", "rate": 0.0, "extra_rate": None},
    {"code": 8, "label": "Акциз", "symbol": "Е", "rate": 0.0, "extra_rate": 5.0},
]


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


class FakeCheckbox:
    """State and handlers of one cash register with one cashier."""

    def __init__(self, state: Path | None = None) -> None:
        self.state_path = state
        self.faults = Faults()
        self.tokens: set[str] = set()
        self.shift: dict[str, Any] | None = None
        self.shift_serial = 0
        self.shifts: dict[str, dict[str, Any]] = {}
        self.receipts: dict[str, dict[str, Any]] = {}
        self.offline_mode = False
        self.offline_codes: list[str] = []
        self.offline_serial = itertools.count(1)
        self.polls: dict[str, int] = {}
        self.sell_posts = 0  # every POST receipts/sell, refused or not
        self.stop_hanging = asyncio.Event()
        self._load()

    # --- persistence (for the crash harness) -------------------------------------------------

    @property
    def tape_path(self) -> Path | None:
        """One JSON line per accepted receipt."""
        return None if self.state_path is None else Path(f"{self.state_path}.tape.jsonl")

    def _load(self) -> None:
        if self.state_path is None or not self.state_path.exists():
            return
        data = json.loads(self.state_path.read_text(encoding="utf-8"))
        self.shift = data["shift"]
        self.shift_serial = data["shift_serial"]
        self.shifts = data["shifts"]
        self.receipts = data["receipts"]
        self.offline_codes = data["offline_codes"]

    def _save(self) -> None:
        if self.state_path is None:
            return
        data = {
            "shift": self.shift,
            "shift_serial": self.shift_serial,
            "shifts": self.shifts,
            "receipts": self.receipts,
            "offline_codes": self.offline_codes,
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
        if key != LICENSE_KEY:
            return _err(403, "license.invalid", "Невірний ключ ліцензії каси")
        if self.faults.license_expired:
            return _err(403, "license.expired", "Термін дії ліцензії каси закінчився")
        if not request.path.startswith("/api/v1/cashier/signin"):
            auth = request.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
                return _err(401, "base.credentials", "Не вдалося перевірити облікові дані")
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

    def _token(self) -> web.Response:
        token = uuid.uuid4().hex
        self.tokens.add(token)
        return web.json_response({"token_type": "bearer", "access_token": token})

    async def signin(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("login") != LOGIN or body.get("password") != PASSWORD:
            return _err(401, "auth.invalid_credentials", "Невірний логін або пароль")
        return self._token()

    async def signin_pin(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("pin_code") != PIN_CODE:
            return _err(401, "auth.invalid_pin_code", "Невірний пін-код")
        return self._token()

    async def me(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "id": "c0ffee00-0000-4000-8000-000000000001",
                "full_name": "Тестовий Касир",
                "certificate_end": self.faults.cashier_key_end.isoformat(),
            }
        )

    async def info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "id": "cafe0000-0000-4000-8000-000000000001",
                "fiscal_number": FISCAL_NUMBER,
                "offline_mode": self.offline_mode,
                "stay_offline": False,
                "has_shift": self.shift is not None,
            }
        )

    async def taxes(self, request: web.Request) -> web.Response:
        return web.json_response(TAXES)

    # --- shifts ----------------------------------------------------------------------------

    def _fiscal_code(self) -> tuple[str, bool]:
        if self.offline_mode:
            if not self.offline_codes:
                raise web.HTTPBadRequest(
                    text=json.dumps({"code": "offline.no_codes", "message": "Немає кодів"}),
                    content_type="application/json",
                )
            return self.offline_codes.pop(0), True
        return str(7_000_000_000 + len(self.receipts) + self.shift_serial * 1000), False

    def _advance(self, key: str) -> bool:
        """True once the object was polled enough to move on (and the tax service allows)."""
        self.polls[key] = self.polls.get(key, 0) + 1
        return self.polls[key] >= self.faults.polls_to_done and (
            self.faults.tax_online or self.offline_mode
        )

    async def cashier_shift(self, request: web.Request) -> web.Response:
        return web.json_response(self.shift)

    async def open_shift(self, request: web.Request) -> web.Response:
        if self.shift is not None:
            return _err(400, "shift.already_opened", "Зміну вже відкрито")
        if self.faults.cashier_key_end <= _now():
            return _err(400, "cashier.signature_expired", "Термін дії ключа касира закінчився")
        self.shift_serial += 1
        shift = {
            "id": str(uuid.uuid4()),
            "serial": self.shift_serial,
            "status": "CREATED",
            "opened_at": None,
            "closed_at": None,
            "receipts_count": 0,
            "initial_transaction": {"status": "PENDING", "fiscal_code": None},
            "closing_transaction": None,
        }
        self.shift = shift
        self.shifts[shift["id"]] = shift
        self._save()
        return web.json_response(shift, status=202)

    async def close_shift(self, request: web.Request) -> web.Response:
        shift = self.shift
        if shift is None or shift["status"] != "OPENED":
            return _err(400, "shift.not_opened", "Зміну не відкрито")
        shift["status"] = "CLOSING"
        shift["closing_transaction"] = {"status": "PENDING", "fiscal_code": None}
        self._save()
        return web.json_response(shift, status=202)

    async def get_shift(self, request: web.Request) -> web.Response:
        shift = self.shifts.get(request.match_info["id"])
        if shift is None:
            return _err(404, "shift.not_found", "Зміну не знайдено")
        if shift["status"] in ("CREATED", "CLOSING") and self._advance(shift["id"]):
            code, _off = self._fiscal_code()
            self.polls.pop(shift["id"], None)
            if shift["status"] == "CREATED":
                shift.update(status="OPENED", opened_at=_now().isoformat())
                shift["initial_transaction"] = {"status": "DONE", "fiscal_code": code}
            else:
                shift.update(status="CLOSED", closed_at=_now().isoformat())
                shift["closing_transaction"] = {"status": "DONE", "fiscal_code": code}
                shift["z_report"] = {"id": str(uuid.uuid4()), "serial": shift["serial"]}
                self.shift = None
            self._save()
        return web.json_response(shift)

    # --- receipts --------------------------------------------------------------------------

    async def sell(self, request: web.Request) -> web.Response:
        self.sell_posts += 1
        body = await request.json()
        if self.faults.fail_sell_before > 0:
            self.faults.fail_sell_before -= 1
            return web.Response(status=502, text="Bad Gateway")
        rid = str(body.get("id") or uuid.uuid4())
        if rid in self.receipts:
            return _err(400, "receipt.already_exists", "Вказаний id чеку вже існує")
        if self.shift is None or self.shift["status"] != "OPENED":
            return _err(400, "shift.not_opened", "Зміну не відкрито")
        problem = _validate(body)
        if problem is not None:
            return _err(422, "validation_error", "Помилка валідації", [{"msg": problem}])
        total = sum(_good_sum(g) for g in body["goods"])
        paid = sum(p["value"] for p in body["payments"])
        if paid < total:
            return _err(400, "receipt.payments", f"Сума оплат {paid} менша за суму чеку {total}")
        is_return = any(g.get("is_return") for g in body["goods"])
        self.shift["receipts_count"] += 1
        receipt = {
            "id": rid,
            "type": "RETURN" if is_return else "SELL",
            "status": "CREATED",
            "serial": self.shift["receipts_count"],
            "goods": body["goods"],
            "payments": body["payments"],
            "total_sum": total,
            "rest": paid - total,
            "fiscal_code": None,
            "fiscal_date": None,
            "created_at": _now().isoformat(),
            "tax_url": None,
            "is_created_offline": False,
            "is_sent_dps": False,
            "shift": {"id": self.shift["id"], "serial": self.shift["serial"]},
        }
        self.receipts[rid] = receipt
        self._save()
        self._tape(receipt)
        if self.faults.hang_sell_answers > 0:
            self.faults.hang_sell_answers -= 1
            await self.stop_hanging.wait()  # accepted, but the answer never comes
        return web.json_response(receipt, status=201)

    async def get_receipt(self, request: web.Request) -> web.Response:
        receipt = self.receipts.get(request.match_info["id"])
        if receipt is None:
            return _err(404, "receipt.not_found", "Чек не знайдено")
        if receipt["status"] == "CREATED" and self._advance(receipt["id"]):
            code, offline = self._fiscal_code()
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

    async def x_report(self, request: web.Request) -> web.Response:
        if self.shift is None:
            return _err(400, "shift.not_opened", "Зміну не відкрито")
        return web.json_response({"id": str(uuid.uuid4()), "serial": 1}, status=201)

    # --- offline ---------------------------------------------------------------------------

    async def ping_tax(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "DONE" if self.faults.tax_online else "ERROR"})

    async def go_offline(self, request: web.Request) -> web.Response:
        self.offline_mode = True
        return web.json_response({"status": "ok"})

    async def go_online(self, request: web.Request) -> web.Response:
        if not self.faults.tax_online:
            return _err(400, "tax.unreachable", "Податковий сервіс недоступний")
        self.offline_mode = False
        for receipt in self.receipts.values():
            receipt["is_sent_dps"] = True  # the backlog goes to the tax service
        self._save()
        return web.json_response({"status": "ok"})

    async def codes_count(self, request: web.Request) -> web.Response:
        return web.json_response({"available": len(self.offline_codes)})

    async def ask_codes(self, request: web.Request) -> web.Response:
        if not self.faults.tax_online:
            return _err(400, "tax.unreachable", "Податковий сервіс недоступний")
        count = int(request.query.get("count", "2000"))
        start = len(self.offline_codes) + 1
        self.offline_codes.extend(f"OFF-{n:06d}" for n in range(start, start + min(count, 50)))
        self._save()
        return web.json_response({"status": "ok"})


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
