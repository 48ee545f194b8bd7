"""A fake Вчасно.Каса API (`POST /api/v3/fiscal/execute`) for tests: aiohttp.web on 127.0.0.1.

Written from [VCHASNO] (the API description and the vendor's Postman examples):
`Authorization: <token>`; tasks 0 open shift, 1 sale, 2 return, 3 / 4 cash in / out
(`fiscal.cash {type, sum}`), 10 X report, 11 Z, 18 status, 22 the last document; answers
`{res, res_action, errortxt, info}` with `res` 0 on success. Every fiscal document gets the
next local number (`docno`) and a fiscal code (`doccode`). It has no idempotency key:
the same sale sent twice is two sales — which is what the recovery rule must prevent.

The X report's `info` carries `safe` (cash in the drawer), `pays` (receipts by payment
type: `sum_p` sales, `sum_m` returns) and `money` (cash in `sum_p` / out `sum_m`), as the
Device Manager's description shows. Tax groups 1–9 exist, as in the vendor's table.
What task 22 answers on a device without documents is not documented; the fake refuses it
(`res` ≠ 0), which a driver must not read as "none" by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp import web

TOKEN = "vchasno-test-token-0001"
FISCAL_NUMBER = "4000765432"
TAX_GROUPS = set(range(1, 10))
PAY_TYPES = {0, 1, 2, 3, 4, 5, 6, 8, *range(11, 21)}


@dataclass
class Faults:
    """Switches a test flips."""

    online: bool = True  # the tax service is reachable (else documents are made offline)
    key_ok: bool = True  # the cashier's key (ЕЦП) is loaded and valid
    hang_answers: int = 0  # make the next N fiscal documents, then never answer
    last_doc_has_kind: bool = True  # task 22 tells the document's kind and sum
    fail_before: int = 0  # answer the next N fiscal tasks with a 502 without making anything
    busy_last_doc: int = 0  # answer the next N task-22 calls with HTTP 429 (rate limit)


class FakeVchasno:
    """One device."""

    def __init__(self) -> None:
        self.faults = Faults()
        self.docs: list[dict[str, Any]] = []
        self.shift_open = False
        self.shift_dt: str | None = None
        self.last_z_no = 0
        self.sales = 0
        self.returns = 0
        self.calls: list[int] = []
        self.requests: list[dict[str, Any]] = []  # every request body, in order
        self.stop_hanging = asyncio.Event()

    def app(self) -> web.Application:
        """The application under /api/v3."""
        app = web.Application()
        app.router.add_post("/api/v3/fiscal/execute", self.execute)
        return app

    def receipts(self) -> list[dict[str, Any]]:
        """Sales and returns made, in order: the paper tape."""
        return [d for d in self.docs if d["doctype"] in (1, 2)]

    def shift_docs(self) -> list[dict[str, Any]]:
        """Documents of the open shift (after the last Z report)."""
        out: list[dict[str, Any]] = []
        for doc in self.docs:
            out = [] if doc["doctype"] == 11 else [*out, doc]
        return out

    @staticmethod
    def _answer(res: int, errortxt: str = "", info: dict[str, Any] | None = None) -> web.Response:
        return web.json_response(
            {"res": res, "res_action": 0, "errortxt": errortxt, "info": info or {}}
        )

    async def execute(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != TOKEN:
            return web.json_response({"res": -1, "errortxt": "Невірний токен доступу"}, status=403)
        body = await request.json()
        self.requests.append(body)
        fiscal = body.get("fiscal") or {}
        task = fiscal.get("task")
        self.calls.append(task)
        if task == 18:
            return self._answer(0, info=self._status())
        if task == 22:
            if self.faults.busy_last_doc > 0:
                self.faults.busy_last_doc -= 1
                return web.json_response({"message": "Too Many Requests"}, status=429)
            if not self.docs:
                return self._answer(3, "Документів ще немає")
            doc = {k: v for k, v in self.docs[-1].items() if k not in ("rows", "tag", "userinfo")}
            if not self.faults.last_doc_has_kind:
                doc.pop("doctype")
                doc.pop("sum")
            return self._answer(0, info=doc)
        if task == 10:
            if not self.shift_open:
                return self._answer(1, "Зміну не відкрито")
            return self._answer(0, info=self._x_report())
        if task not in (0, 1, 2, 3, 4, 11):
            return self._answer(9, f"Невідоме завдання {task}")
        if self.faults.fail_before > 0:
            self.faults.fail_before -= 1
            return web.Response(status=502, text="Bad Gateway")
        if not self.faults.key_ok:
            return self._answer(5, "Ключ касира (ЕЦП) недійсний")
        if task == 0:
            if self.shift_open:
                return self._answer(2, "Зміну вже відкрито")
            self._open()
            doc = self._doc(0, None)
        elif task == 11:
            if not self.shift_open:
                return self._answer(1, "Зміну не відкрито")
            self.shift_open = False
            self.last_z_no += 1
            doc = self._doc(11, None)
        elif not self.shift_open:
            return self._answer(1, "Зміну не відкрито")
        elif task in (3, 4):
            cash = fiscal.get("cash")
            if not isinstance(cash, dict) or cash.get("type") not in PAY_TYPES:
                return self._answer(4, "Невірна сума службової операції")
            amount = Decimal(str(cash.get("sum")))
            if amount <= 0:
                return self._answer(4, "Невірна сума службової операції")
            if task == 4 and amount > self._safe():
                return self._answer(4, "Недостатньо готівки в касі")
            doc = self._doc(task, amount)
            doc["cash"] = cash
        else:
            problem, total = _check_receipt(fiscal.get("receipt"))
            if problem:
                return self._answer(4, problem)
            if task == 1:
                self.sales += 1
            else:
                self.returns += 1
            doc = self._doc(task, total)
            doc["rows"] = fiscal["receipt"]["rows"]
            doc["pays"] = fiscal["receipt"]["pays"]
        doc["tag"] = body.get("tag")
        doc["cashier"] = fiscal.get("cashier")
        doc["userinfo"] = body.get("userinfo")
        self.docs.append(doc)
        if self.faults.hang_answers > 0:
            self.faults.hang_answers -= 1
            await self.stop_hanging.wait()  # made, but the answer never comes
        hidden = ("rows", "pays", "cash", "tag", "userinfo")
        return self._answer(0, info={k: v for k, v in doc.items() if k not in hidden})

    def _open(self) -> None:
        if not self.shift_open:
            self.shift_open = True
            self.shift_dt = dt.datetime.now().replace(microsecond=0).isoformat()
            self.sales = self.returns = 0

    def _doc(self, doctype: int, total: Decimal | None) -> dict[str, Any]:
        docno = len(self.docs) + 1
        offline = not self.faults.online
        return {
            "docno": docno,
            "doccode": f"{'9' if offline else '3'}{FISCAL_NUMBER}{docno:05d}",
            "doctype": doctype,
            "sum": float(total) if total is not None else None,
            "dt": dt.datetime.now().replace(microsecond=0).isoformat(),
            "isoffline": int(offline),
            "qr": f"https://cabinet.tax.gov.ua/cashregs/check?fn={FISCAL_NUMBER}&id={docno}",
        }

    def _safe(self) -> Decimal:
        safe = Decimal(0)
        for doc in self.shift_docs():
            if doc["doctype"] in (1, 2):
                for pay in doc["pays"]:
                    if pay["type"] == 0:
                        net = Decimal(str(pay["sum"])) - Decimal(str(pay.get("change") or 0))
                        safe += net if doc["doctype"] == 1 else -net
            elif doc["doctype"] in (3, 4):
                amount = Decimal(str(doc["sum"]))
                safe += amount if doc["doctype"] == 3 else -amount
        return safe

    def _x_report(self) -> dict[str, Any]:
        pays: dict[int, dict[str, Decimal]] = {}
        money: dict[int, dict[str, Decimal]] = {}
        for doc in self.shift_docs():
            if doc["doctype"] in (1, 2):
                for pay in doc["pays"]:
                    row = pays.setdefault(pay["type"], {"sum_p": Decimal(0), "sum_m": Decimal(0)})
                    net = Decimal(str(pay["sum"])) - Decimal(str(pay.get("change") or 0))
                    row["sum_p" if doc["doctype"] == 1 else "sum_m"] += net
            elif doc["doctype"] in (3, 4):
                row = money.setdefault(0, {"sum_p": Decimal(0), "sum_m": Decimal(0)})
                row["sum_p" if doc["doctype"] == 3 else "sum_m"] += Decimal(str(doc["sum"]))
        return {
            "safe": float(self._safe()),
            "pays": [{"type": t, **{k: float(v) for k, v in r.items()}} for t, r in pays.items()],
            "money": [{"type": t, **{k: float(v) for k, v in r.items()}} for t, r in money.items()],
        }

    def _status(self) -> dict[str, Any]:
        return {
            "fisid": FISCAL_NUMBER,
            "shift_status": int(self.shift_open),
            "shift_dt": self.shift_dt if self.shift_open else None,
            "online_status": int(self.faults.online),
            "sign_status": int(self.faults.key_ok),
            "last_receipt_no": self.sales,
            "last_back_no": self.returns,
            "last_z_no": self.last_z_no,
            "vacant_off_nums": 100,
        }


def _check_receipt(receipt: Any) -> tuple[str, Decimal]:
    """Sum of rows must match `sum`; pays must cover it; tax groups must exist."""
    if not isinstance(receipt, dict) or not receipt.get("rows"):
        return "Чек без рядків", Decimal(0)
    total = Decimal(0)
    for row in receipt["rows"]:
        if row.get("taxgrp") not in TAX_GROUPS:
            return f"Невідома податкова група {row.get('taxgrp')}", Decimal(0)
        line = (Decimal(str(row["price"])) * Decimal(str(row["cnt"]))).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
        total += line - Decimal(str(row.get("disc") or 0))
    if total != Decimal(str(receipt.get("sum"))):
        return f"Сума чеку {receipt.get('sum')} не дорівнює сумі рядків {total}", Decimal(0)
    pays = receipt.get("pays") or []
    if any(p.get("type") not in PAY_TYPES for p in pays):
        return "Невідомий тип оплати", Decimal(0)
    paid = sum(Decimal(str(p["sum"])) for p in pays)
    change = sum(Decimal(str(p.get("change") or 0)) for p in pays)
    if paid - change != total:
        return "Сума оплат не відповідає сумі чеку", Decimal(0)
    return "", total


@contextlib.asynccontextmanager
async def serve(fake: FakeVchasno) -> AsyncIterator[str]:
    """Run `fake` on 127.0.0.1; yields the API root URL."""
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/api/v3"
    finally:
        fake.stop_hanging.set()
        await runner.cleanup()
