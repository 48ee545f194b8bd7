"""Pure: one KKMServer command [KKMSERVER] -> the ATOL request the box's own parser checks.

Only the names are translated here; amounts, text, charset and every other rule are the ATOL
parser's (`Intake.parse`), and an error it raises is renamed back to the KKMServer field with
`kkm_field`. Every field KKMServer defines is carried or refused by name; an unknown field is
refused too. A field that is null, empty or false asks for nothing and is accepted as absent.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from gateway.atol import values as v
from gateway.atol.decimal_json import loads
from gateway.domain.errors import ValidationError
from gateway.ingress.kkmserver import marking
from gateway.ingress.kkmserver.wire import KNOWN_UNSUPPORTED, Command

_ID_COMMAND = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # the journal's uuid rule
_UNKNOWN = (
    "unknown field; every field is carried into the fiscal document or refused, "
    "so remove it or check its spelling"
)
_SEARCH = "this box has one register: leave it empty (or give NumDevice 0 or 1)"
# Fields every command may carry: which device, which command, how long to wait.
_COMMON: Final = frozenset({"Command", "IdCommand", "NumDevice", "Timeout", "InnKkm", "KktNumber"})
_CASHIER: Final = frozenset({"CashierName", "CashierVATIN"})
_SHIFT_FIELDS: Final = _COMMON | _CASHIER | {"TaxVariant", "NotPrint", "IdDevice"}
_CASH_FIELDS: Final = _COMMON | _CASHIER | {"TaxVariant", "Amount"}
_CHECK_COMMAND_FIELDS: Final = _COMMON | {"TaxVariant", "TypeCheck", "GoodCodeDatas"}
_RECEIPT_FIELDS: Final = (
    _COMMON
    | _CASHIER
    | {
        "IsFiscalCheck",
        "TypeCheck",
        "NotPrint",
        "NumberCopies",
        "ClientAddress",
        "ClientInfo",
        "ClientINN",
        "AddressSettle",
        "PlaceMarket",
        "TaxVariant",
        "UserAttribute",
        "AdditionalAttribute",
        "CheckStrings",
        "Cash",
        "ElectronicPayment",
        "AdvancePayment",
        "Credit",
        "CashProvision",
    }
)
_ACQUIRING = "payment by card through the server (acquiring) is not supported; remove it"
_CORRECTION = "correction receipts are not supported yet"
# KKMServer receipt fields that change the document but cannot be carried yet.
_REFUSED_RECEIPT: Final = {
    "SenderEmail": "the sender's e-mail (tag 1117) is not supported; remove it",
    "KeySubLicensing": "sub-licence keys are not used by this box; remove it",
    "CorrectionType": _CORRECTION,
    "CorrectionBaseDate": _CORRECTION,
    "CorrectionBaseNumber": _CORRECTION,
    "PayByProcessing": _ACQUIRING,
    "NumDeviceByProcessing": _ACQUIRING,
    "ReceiptNumber": _ACQUIRING,
    "PrintSlipAfterCheck": _ACQUIRING,
    "PrintSlipForCashier": _ACQUIRING,
    "RRNCode": _ACQUIRING,
    "AuthorizationCode": _ACQUIRING,
}
_AGENT = "agent data (tags 1222-1226) is not supported yet"
_LINE_FIELDS: Final = {"GoodCodeData"}
_REGISTER_FIELDS: Final = {
    # KKMServer name -> ATOL position member
    "Name": "name",
    "Quantity": "quantity",
    "Price": "price",
    "Amount": "amount",
    "Tax": "tax",
    "SignMethodCalculation": "paymentMethod",
    "SignCalculationObject": "paymentObject",
    "MeasureOfQuantity": "measurementUnit",
    "Department": "department",
    "ExciseAmount": "exciseSum",
    "CountryOfOrigin": "countryCode",
    "CustomsDeclaration": "customsDeclaration",
    "AdditionalAttribute": "additionalAttribute",
}
_REFUSED_REGISTER: Final = {
    # [KKMSERVER] leaves open what Price means for part of a pack; refused, not guessed.
    "PackageQuantity": (
        "selling part of a marked pack (tag 1291) is not supported through this API yet; "
        "the ATOL API takes it as imcParams.itemFractionalAmount"
    ),
    "AgentSign": _AGENT,
    "AgentData": _AGENT,
    "PurveyorData": _AGENT,
}
_REFUSED_LINES: Final = {
    "PrintText": "text lines are not printed by this box; remove the line",
    "BarCode": "barcodes are not printed by this box; remove the line",
    "PrintImage": "pictures are not printed by this box; remove the line",
}
# KKMServer payment field -> ATOL payment type [FFD] tags 1031, 1081, 1215, 1216, 1217.
PAYMENTS: Final = {
    "Cash": "cash",
    "ElectronicPayment": "electronically",
    "AdvancePayment": "prepaid",
    "Credit": "credit",
    "CashProvision": "other",
}
_RECEIPT_TYPES: Final = {0: "sell", 1: "sellReturn", 10: "buy", 11: "buyReturn"}
_CORRECTION_TYPES: Final = frozenset({2, 3, 12, 13})
# `Tax`: VAT percent, or 110/120… for the calculated rates; -1 is no VAT.
_VATS: Final = {-1: "none", 0: "vat0", 5: "vat5", 7: "vat7", 10: "vat10", 20: "vat20", 22: "vat22"}
_VATS.update({105: "vat105", 107: "vat107", 110: "vat110", 120: "vat120", 122: "vat122"})
# `TaxVariant` [KKMSERVER] -> ATOL taxationType; 3 (ЕНВД) no longer exists.
_TAXATION: Final = {
    "0": "osn",
    "1": "usnIncome",
    "2": "usnIncomeOutcome",
    "4": "esn",
    "5": "patent",
}
_JOB_TASKS: Final = {
    Command.OPEN_SHIFT: "openShift",
    Command.CLOSE_SHIFT: "closeShift",
    Command.X_REPORT: "reportX",
    Command.DEPOSITING_CASH: "cashIn",
    Command.PAYMENT_CASH: "cashOut",
}
# GetDataKKT reads the register through the worker, in order, like any ATOL query.
DATA_KKT_TASKS: Final = ("getDeviceStatus", "getShiftStatus", "getFnStatus")


@dataclass(frozen=True, slots=True)
class Request:
    """A checked KKMServer command.

    `atol`: the ATOL request for a command the worker runs (None for List and GetRezult);
    `fields`: ATOL field path -> KKMServer field, to name a refusal in the client's terms.
    `generated`: the IdCommand was made up here (the client sent none).
    """

    command: Command
    id_command: str
    timeout_s: float | None
    atol: dict[str, object] | None
    fields: Mapping[str, str]
    generated: bool = False


def read_command(body: bytes | str) -> Request:
    """Check one `/Execute` body; a ValidationError names the KKMServer field."""
    doc = v.obj(loads(body), "")
    name = doc.get("Command")
    if name is None:
        raise ValidationError("Command", "required")
    if not isinstance(name, str):
        raise ValidationError("Command", "must be a string")
    if name not in Command.__members__.values():
        if name in KNOWN_UNSUPPORTED:
            raise ValidationError("Command", f"command {name!r} is not supported by this box")
        raise ValidationError("Command", f"unknown command {name!r}")
    command = Command(name)
    id_command, generated = _id_command(doc, command)
    timeout = _timeout(doc)
    _device(doc)
    builder = _Builder(id_command)
    if command is Command.LIST:
        _members(doc, _COMMON | {"Active", "OnOff"}, {})
        return Request(command, id_command, timeout, None, {}, generated)
    if command is Command.GET_REZULT:
        _members(doc, _COMMON, {})
        return Request(command, id_command, timeout, None, {}, generated)
    if command is Command.GET_DATA_KKT:
        _members(doc, _COMMON | {"TaxVariant"}, {})
        _search_only(doc, "TaxVariant")
        atol = builder.request([{"type": t} for t in DATA_KKT_TASKS])
        return Request(command, id_command, timeout, atol, builder.fields, generated)
    if command is Command.VALIDATION_MARKING_CODE:
        task = builder.code_checks(doc)
    elif command is Command.REGISTER_CHECK:
        task = builder.receipt(doc)
    elif command in (Command.DEPOSITING_CASH, Command.PAYMENT_CASH):
        _members(doc, _CASH_FIELDS, {})
        _search_only(doc, "TaxVariant")
        task = {"type": _JOB_TASKS[command], "cashSum": v.required(doc, "Amount", "")}
        builder.map("cashSum", "Amount")
        builder.cashier(doc, task)
    else:
        _members(doc, _SHIFT_FIELDS if command is not Command.X_REPORT else _COMMON, {})
        _search_only(doc, "TaxVariant", "IdDevice")
        if v.flag(doc, "NotPrint", ""):
            raise ValidationError("NotPrint", "shift reports are always printed; remove it")
        task = {"type": _JOB_TASKS[command]}
        if command is not Command.X_REPORT:
            builder.cashier(doc, task)
    atol = builder.request([task])
    return Request(command, id_command, timeout, atol, builder.fields, generated)


def kkm_field(atol_field: str, fields: Mapping[str, str]) -> str:
    """The KKMServer name of an ATOL field path: the nearest mapped path above it."""
    path = atol_field
    while path:
        if path in fields:
            return fields[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return fields.get("", "")


# ATOL words in the parser's reasons, in the client's terms.
_REASON_WORDS: Final = {
    "electronically is true": "NotPrint is true",
    "imcParams {imc (base64), itemEstimatedStatus}": "GoodCodeData {BarCode}",
    "a part of a pack needs imcParams.itemFractionalAmount, ": "",
    "imcParams.itemFractionalAmount": "PackageQuantity",
    "itemFractionalAmount": "PackageQuantity",
    "imcParams": "GoodCodeData",
    "measurementUnit": "MeasureOfQuantity",
    "paymentObject": "SignCalculationObject",
}


def kkm_reason(reason: str) -> str:
    """The ATOL parser's reason with ATOL field names put in KKMServer's."""
    for atol, kkm in _REASON_WORDS.items():
        reason = reason.replace(atol, kkm)
    return reason


def _id_command(doc: dict[str, object], command: Command) -> tuple[str, bool]:
    raw = doc.get("IdCommand")
    if raw is None or raw == "":
        if command is Command.GET_REZULT:
            raise ValidationError("IdCommand", "required: the IdCommand of the command asked about")
        return str(uuid.uuid4()), True
    if not isinstance(raw, str) or not _ID_COMMAND.fullmatch(raw):
        raise ValidationError(
            "IdCommand", "must be 1 to 64 characters: A-Z a-z 0-9 - _ . : (a GUID fits)"
        )
    return raw, False


def _timeout(doc: dict[str, object]) -> float | None:
    raw = doc.get("Timeout")
    if raw is None:
        return None
    seconds = v.number(raw, "Timeout")
    if seconds < 0:
        raise ValidationError("Timeout", "must not be negative")
    return float(seconds) if seconds else None


def _device(doc: dict[str, object]) -> None:
    """One box drives one register: device 0 (the first) or 1."""
    raw = doc.get("NumDevice")
    if raw is not None:
        v.code(raw, "NumDevice", range(0, 2))
    _search_only(doc, "InnKkm", "KktNumber")


def _search_only(doc: dict[str, object], *names: str) -> None:
    for name in names:
        if v.given(doc.get(name)):
            raise ValidationError(name, _SEARCH)


def _members(
    doc: dict[str, object], known: frozenset[str], refused: Mapping[str, str], path: str = ""
) -> None:
    """Refuse unknown members, and refused ones that ask for something (not null/""/false)."""
    for name, value in doc.items():
        if name in known:
            continue
        if name in refused:
            if v.given(value) and value != 0:  # false and 0 ask for nothing
                raise ValidationError(v.key(path, name), refused[name])
            continue
        raise ValidationError(v.key(path, name), _UNKNOWN)


class _Builder:
    """Builds the ATOL request and remembers which KKMServer field each ATOL path came from."""

    def __init__(self, id_command: str) -> None:
        self.id_command = id_command
        self.fields: dict[str, str] = {"uuid": "IdCommand", "request": "", "request[0]": ""}
        self._codes: dict[str, str] = {}  # imc -> the line that gave it first

    def map(self, atol: str, kkm: str) -> None:
        self.fields[f"request[0].{atol}" if atol else "request[0]"] = kkm

    def request(self, tasks: list[dict[str, object]]) -> dict[str, object]:
        return {"uuid": self.id_command, "request": tasks}

    def cashier(self, doc: dict[str, object], task: dict[str, object]) -> None:
        """CashierName / CashierVATIN -> operator ([FFD] tags 1021, 1203)."""
        name, vatin = doc.get("CashierName"), doc.get("CashierVATIN")
        if not v.given(name):
            if v.given(vatin):
                raise ValidationError("CashierName", "required with CashierVATIN")
            return  # the box's configured cashier
        operator: dict[str, object] = {"name": name}
        if v.given(vatin):
            operator["vatin"] = vatin
        task["operator"] = operator
        self.map("operator", "CashierName")
        self.map("operator.name", "CashierName")
        self.map("operator.vatin", "CashierVATIN")

    def receipt(self, doc: dict[str, object]) -> dict[str, object]:
        """RegisterCheck -> an ATOL sell / sellReturn / buy / buyReturn task."""
        _members(doc, _RECEIPT_FIELDS, _REFUSED_RECEIPT)
        fiscal = doc.get("IsFiscalCheck")
        if fiscal is not None and fiscal is not True:
            raise ValidationError("IsFiscalCheck", "only fiscal receipts are printed; send true")
        copies = doc.get("NumberCopies")
        if copies is not None:
            v.code(copies, "NumberCopies", range(0, 2))
        task: dict[str, object] = {"type": self._type(doc)}
        self.map("type", "TypeCheck")
        taxation = doc.get("TaxVariant")
        if v.given(taxation):
            key = str(taxation)
            if key not in _TAXATION:
                accepted = ", ".join(_TAXATION)
                raise ValidationError(
                    "TaxVariant", f"unknown tax system {key!r}; accepted: {accepted}"
                )
            task["taxationType"] = _TAXATION[key]
            self.map("taxationType", "TaxVariant")
        if v.flag(doc, "NotPrint", ""):
            task["electronically"] = True
            self.map("electronically", "NotPrint")
            self.map("clientInfo.emailOrPhone", "ClientAddress")
        self.cashier(doc, task)
        self._client(doc, task)
        for kkm, atol in (
            ("PlaceMarket", "paymentsPlace"),
            ("AddressSettle", "paymentsAddress"),
            ("AdditionalAttribute", "additionalAttribute"),
        ):
            if v.given(doc.get(kkm)):
                task[atol] = doc[kkm]
                self.map(atol, kkm)
        attribute = doc.get("UserAttribute")
        if v.given(attribute):
            members = v.obj(attribute, "UserAttribute")
            _members(members, frozenset({"Name", "Value"}), {}, "UserAttribute")
            task["userAttribute"] = {"name": members.get("Name"), "value": members.get("Value")}
            self.map("userAttribute", "UserAttribute")
            self.map("userAttribute.name", "UserAttribute.Name")
            self.map("userAttribute.value", "UserAttribute.Value")
        task["items"] = self._lines(doc.get("CheckStrings"), returned=task["type"] != "sell")
        task["payments"] = self._payments(doc)
        return task

    def _type(self, doc: dict[str, object]) -> str:
        raw = doc.get("TypeCheck")
        if raw is None:
            raise ValidationError("TypeCheck", "required")
        code = v.number(raw, "TypeCheck")
        if code in _CORRECTION_TYPES:
            raise ValidationError("TypeCheck", f"{code}: {_CORRECTION}")
        if code not in _RECEIPT_TYPES:
            raise ValidationError(
                "TypeCheck",
                "must be 0 (sale), 1 (sale return), 10 (purchase), 11 (purchase return)",
            )
        return _RECEIPT_TYPES[int(code)]

    def _client(self, doc: dict[str, object], task: dict[str, object]) -> None:
        """ClientAddress ([FFD] 1008), ClientInfo (1227), ClientINN (1228)."""
        client: dict[str, object] = {}
        for kkm, atol in (
            ("ClientAddress", "emailOrPhone"),
            ("ClientInfo", "name"),
            ("ClientINN", "vatin"),
        ):
            if v.given(doc.get(kkm)):
                client[atol] = doc[kkm]
                self.map(f"clientInfo.{atol}", kkm)
        if client:
            task["clientInfo"] = client

    def code_checks(self, doc: dict[str, object]) -> dict[str, object]:
        """ValidationMarkingCode -> an ATOL `validateMarks` task, one element per code."""
        _members(doc, _CHECK_COMMAND_FIELDS, {})
        _search_only(doc, "TaxVariant")
        kind = doc.get("TypeCheck")
        code = 0 if kind is None else v.number(kind, "TypeCheck")
        if code not in (0, 1):
            raise ValidationError(
                "TypeCheck", "must be 0 (sale) or 1 (sale return): codes go into those only"
            )
        raw = v.array(doc.get("GoodCodeDatas"), "GoodCodeDatas")
        if not raw:
            raise ValidationError("GoodCodeDatas", "required: at least one code")
        self.map("params", "GoodCodeDatas")
        params: list[object] = []
        for j, entry in enumerate(raw):
            where = f"GoodCodeDatas[{j}]"
            data = v.obj(entry, where)
            params.append(marking.check_params(data, where, returned=code == 1))
            field = "MarkingCodeBase64" if v.given(data.get("MarkingCodeBase64")) else "BarCode"
            for atol, kkm in (
                ("", ""),
                (".imc", f".{field}"),
                (".itemQuantity", ".Quantity"),
                (".itemUnits", ".MeasureOfQuantity"),
                (".itemEstimatedStatus", ".MeasureOfQuantity"),
                (".waitForResult", ".WaitForResult"),
                (".name", ".Name"),
                (f".{marking.ACCEPT_ANY}", ".AcceptOnBad"),
            ):
                self.map(f"params[{j}]{atol}", f"{where}{kkm}")
        return {"type": marking.VALIDATE_TASK, "params": params}

    def _lines(self, value: object, *, returned: bool) -> list[object]:
        lines = v.array(value, "CheckStrings")
        self.map("items", "CheckStrings")
        items: list[object] = []
        for j, line in enumerate(lines):
            where = f"CheckStrings[{j}]"
            members = v.obj(line, where)
            register: object = None
            for name, member in members.items():
                if name == "Register":
                    register = member
                elif name in _REFUSED_LINES:
                    if v.given(member):
                        raise ValidationError(f"{where}.{name}", _REFUSED_LINES[name])
                else:
                    raise ValidationError(f"{where}.{name}", _UNKNOWN)
            if not v.given(register):
                raise ValidationError(where, "a line must hold a Register (a fiscal line)")
            reg = v.obj(register, f"{where}.Register")
            items.append(self._position(len(items), reg, where, returned=returned))
        return items

    def _position(
        self, i: int, reg: dict[str, object], where: str, *, returned: bool
    ) -> dict[str, object]:
        path = f"{where}.Register"
        _members(reg, frozenset(_REGISTER_FIELDS) | _LINE_FIELDS, _REFUSED_REGISTER, path)
        atol_path = f"items[{i}]"
        self.map(atol_path, path)
        item: dict[str, object] = {"type": "position"}
        for kkm, atol in _REGISTER_FIELDS.items():
            value = reg.get(kkm)
            if value is None or (value == "" and kkm not in ("Name",)):
                continue
            self.map(f"{atol_path}.{atol}", f"{path}.{kkm}")
            if kkm == "Tax":
                item["tax"] = {"type": _vat(value, f"{path}.Tax")}
                self.map(f"{atol_path}.tax.type", f"{path}.Tax")
            elif kkm == "Department" and isinstance(value, Decimal) and value == 0:
                continue  # 0: the register's default department
            else:
                item[atol] = value
        if "tax" not in item:
            raise ValidationError(
                f"{path}.Tax",
                "required: -1 (no VAT), 0, 5, 7, 10, 20, 22, 105, 107, 110, 120 or 122",
            )
        good = reg.get("GoodCodeData")
        if v.given(good):
            self._marked(item, v.obj(good, f"{path}.GoodCodeData"), atol_path, path, returned)
        return item

    def _marked(
        self,
        item: dict[str, object],
        good: dict[str, object],
        atol_path: str,
        path: str,
        returned: bool,
    ) -> None:
        """GoodCodeData -> imcParams (tag 2000 and its check), IndustryProps -> 1260."""
        where = f"{path}.GoodCodeData"
        params, props = marking.imc_params(
            good,
            where,
            returned=returned,
            unit=item.get("measurementUnit"),
            unit_field=f"{path}.MeasureOfQuantity",
        )
        item["imcParams"] = params
        field = "MarkingCodeBase64" if v.given(good.get("MarkingCodeBase64")) else "BarCode"
        # One code is one pack: the same code on two lines of one receipt is refused.
        first = self._codes.setdefault(str(params["imc"]), path)
        if first != path:
            raise ValidationError(
                f"{where}.{field}",
                f"the same marking code as {first}.GoodCodeData: one code is one pack, scan "
                "each pack's own code",
            )
        self.map(f"{atol_path}.imcParams", where)
        self.map(f"{atol_path}.imcParams.imc", f"{where}.{field}")
        self.map(f"{atol_path}.imcParams.itemEstimatedStatus", f"{path}.MeasureOfQuantity")
        self.map(f"{atol_path}.imcParams.{marking.ACCEPT_ANY}", f"{where}.AcceptOnBad")
        if props is not None:
            item["industryInfo"] = [{"industryAttribute": props}]
            self.map(f"{atol_path}.industryInfo", f"{where}.IndustryProps")

    def _payments(self, doc: dict[str, object]) -> list[object]:
        payments: list[object] = []
        given: list[str] = []
        for kkm, atol in PAYMENTS.items():
            value = doc.get(kkm)
            if value is None:
                continue
            amount = v.number(value, kkm)
            if amount == 0:
                continue  # nothing paid this way
            self.map(f"payments[{len(payments)}]", kkm)
            payments.append({"type": atol, "sum": value})
            given.append(kkm)
        self.map("payments", ", ".join(given) or "Cash")
        return payments


def _vat(value: object, path: str) -> str:
    code = v.number(value, path)
    if code not in _VATS:
        accepted = ", ".join(str(c) for c in _VATS)
        raise ValidationError(path, f"unknown VAT rate {value}; accepted: {accepted}")
    return _VATS[int(code)]
