"""Pure: a journal job -> the KKMServer answer of the command that made it [KKMSERVER].

The job's own task list says which command it was, so `GetRezult` (and a repeated IdCommand)
answers any job, whichever API queued it. A blocked job is reported as still running: its
outcome is being proven, and an error would invite the client to sell again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from gateway.atol.decimal_json import loads
from gateway.ingress.kkmserver import marking
from gateway.ingress.kkmserver.parse import DATA_KKT_TASKS, PAYMENTS
from gateway.ingress.kkmserver.wire import Answer, Command, KktInfo, Status
from gateway.journal import JobRecord, JobState

BLOCKED_TEXT: Final = (
    "the outcome of this command is being proven after a lost answer; a technician decides on "
    "the box's status page. Do not send it again under a new IdCommand: poll GetRezult"
)
RECOVERED_TEXT: Final = "the result was read back from the fiscal storage after a lost answer"
_COMMANDS: Final = {
    "sell": Command.REGISTER_CHECK,
    "sellReturn": Command.REGISTER_CHECK,
    "buy": Command.REGISTER_CHECK,
    "buyReturn": Command.REGISTER_CHECK,
    "openShift": Command.OPEN_SHIFT,
    "closeShift": Command.CLOSE_SHIFT,
    "reportX": Command.X_REPORT,
    "cashIn": Command.DEPOSITING_CASH,
    "cashOut": Command.PAYMENT_CASH,
    marking.VALIDATE_TASK: Command.VALIDATION_MARKING_CODE,
}
# [FFD] tag 1054 as the receipt QR code's `n`.
_QR_TYPES: Final = {"sell": 1, "sellReturn": 2, "buy": 3, "buyReturn": 4}
_SESSION_STATES: Final = {"closed": 1, "opened": 2, "expired": 3}
_ATOL_PAYMENTS: Final = {atol: kkm for kkm, atol in PAYMENTS.items()}


def base(command: str, id_command: str, status: Status, error: str = "") -> Answer:
    """The fields every answer has."""
    return {
        "Command": command,
        "IdCommand": id_command,
        "NumDevice": 1,
        "Status": int(status),
        "Error": error,
        "Warning": "",
        "Message": "",
    }


def job_answer(job: JobRecord) -> Answer:
    """The answer of the command that made `job`, as far as it has run."""
    tasks = _tasks(job)
    types = [str(t.get("type", "")) for t in tasks]
    command = _command(types)
    state = job.state
    if state is JobState.QUEUED:
        return base(command, job.uuid, Status.NOT_STARTED)
    if state is JobState.IN_PROGRESS:
        return base(command, job.uuid, Status.RUNNING)
    if state is JobState.BLOCKED:
        answer = base(command, job.uuid, Status.RUNNING)
        answer["Warning"] = answer["Message"] = BLOCKED_TEXT
        return answer
    if state is not JobState.DONE:
        return base(command, job.uuid, Status.ERROR, _error(job))
    answer = base(command, job.uuid, Status.OK)
    results = [t.result or {} for t in job.task_results]
    if command == Command.GET_DATA_KKT:
        _data_kkt(answer, results)
    elif command == Command.VALIDATION_MARKING_CODE:
        if results:
            answer["MarkingCodeValidation"] = marking.check_answer(tasks[0], results[0])
    elif results:
        _document(answer, types[0], tasks[0], results[0])
    return answer


def _tasks(job: JobRecord) -> list[dict[str, Any]]:
    raw = loads(job.tasks_json)
    if not isinstance(raw, list):
        return []
    return [t for t in raw if isinstance(t, dict)]


def _command(types: list[str]) -> str:
    if tuple(types) == DATA_KKT_TASKS:
        return Command.GET_DATA_KKT.value
    if len(types) == 1 and types[0] in _COMMANDS:
        return _COMMANDS[types[0]].value
    return ""  # a job of the ATOL API with no KKMServer twin: status only


def _error(job: JobRecord) -> str:
    if job.state is JobState.CANCELED:
        return "the command was canceled before it started"
    for task in job.task_results:
        if task.error_code is not None:
            return f"{task.error_description or 'failed'} (code {task.error_code})"
    return job.error_text or "failed"


def _document(
    answer: Answer, kind: str, task: Mapping[str, Any], result: Mapping[str, Any]
) -> None:
    """A receipt, a shift report or a cash operation."""
    warnings = result.get("warnings")
    if isinstance(warnings, dict) and warnings.get("recovered"):
        answer["Warning"] = RECOVERED_TEXT
    if kind in ("cashIn", "cashOut"):
        if isinstance(result.get("documentNumber"), int):
            answer["CheckNumber"] = result["documentNumber"]
        answer["Amount"] = _rubles(task.get("cashSum"))
        return
    params = result.get("fiscalParams")
    if not isinstance(params, dict):
        return
    number, sign = params.get("fiscalDocumentNumber"), params.get("fiscalDocumentSign")
    if isinstance(number, int):
        answer["CheckNumber"] = number
    if isinstance(params.get("shiftNumber"), int):
        answer["SessionNumber"] = params["shiftNumber"]
    if isinstance(params.get("fiscalReceiptNumber"), int):
        answer["SessionCheckNumber"] = params["fiscalReceiptNumber"]
    if sign is not None:
        answer["FiscalSign"] = str(sign)
    answer["URL"] = str(params.get("fnsUrl") or "")
    answer["QRCode"] = _qr(kind, params)
    if kind in _QR_TYPES:
        marks = marking.receipt_answer(task, result)
        if marks:
            answer["MarkingCodeValidation"] = marks
        for payment in task.get("payments", ()):
            name = _ATOL_PAYMENTS.get(str(payment.get("type")))
            if name is not None:
                answer[name] = _rubles(payment.get("sum"))  # type: ignore[literal-required]


def _qr(kind: str, params: Mapping[str, Any]) -> str:
    """The receipt's QR code text: t, s, fn, i, fp, n (shift documents: no s and n)."""
    parts: list[str] = []
    when = params.get("fiscalDocumentDateTime")
    if isinstance(when, str):
        stamp = dt.datetime.fromisoformat(when)
        parts.append(f"t={stamp:%Y%m%dT%H%M}")
    total = params.get("total")
    if kind in _QR_TYPES and total is not None:
        parts.append(f"s={Decimal(str(total)):.2f}")
    parts.append(f"fn={params.get('fnNumber') or ''}")
    parts.append(f"i={params.get('fiscalDocumentNumber')}")
    parts.append(f"fp={params.get('fiscalDocumentSign')}")
    if kind in _QR_TYPES:
        parts.append(f"n={_QR_TYPES[kind]}")
    return "&".join(parts)


def _data_kkt(answer: Answer, results: list[dict[str, Any]]) -> None:
    """getDeviceStatus, getShiftStatus and getFnStatus -> GetDataKKT."""
    device = results[0].get("deviceStatus", {}) if results else {}
    shift = results[1].get("shiftStatus", {}) if len(results) > 1 else {}
    fn = results[2].get("fnStatus", {}) if len(results) > 2 else {}
    warnings = fn.get("warnings") or {}
    info: KktInfo = {
        "KktNumber": str(device.get("serialNumber") or ""),
        "FnNumber": str(fn.get("fnNumber") or ""),
        "NameDevice": str(device.get("modelName") or ""),
        "Firmware_Version": str(device.get("firmwareVersion") or ""),
        "SessionState": _SESSION_STATES.get(str(shift.get("state")), 1),
        "PaperOver": device.get("paperPresent") is False,
        "FN_IsFiscal": bool(fn.get("fnNumber")),
        "FN_DateEnd": fn.get("validityDate"),
        "FN_MemOverflowl": bool(warnings.get("memoryOverflow")),
        "OFD_Error": "no answer from the OFD" if warnings.get("ofdTimeout") else "",
    }
    answer["Info"] = info
    if isinstance(fn.get("fiscalDocumentNumber"), int):
        answer["CheckNumber"] = fn["fiscalDocumentNumber"]
    if isinstance(shift.get("number"), int):
        answer["SessionNumber"] = shift["number"]


def _rubles(value: object) -> float:
    """A stored sum (exact decimal) as the number KKMServer answers with."""
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        return float(value)
    return 0.0
