"""Pure: marking-code checks -> the ATOL driver-10 JSON result shapes of the marking tasks.

Names follow [ATOLJS] (`myscripts_marks.js`, `myscripts_utils.js`) and [KSL]
(`Types/Common/MarkingCodes`). Only what the register really answered is shown: an ОИСМ tag
the answer did not carry is left out, never filled in with a default.

Choices where the sources are thin ([ATOLJS] maps names to libfptr constants whose numbers
it does not show):
- tag 2105 (ОИСМ request processing code): 0 correct, 1 incorrect, 2 unrecognized; a wire
  trace ([NG] #145) shows 0 with a request the ОИСМ accepted;
- tag 2109 (ОИСМ item status): 1 itemEstimatedStatusCorrect, 2 itemEstimatedStatusIncorrect,
  3 itemSaleStopped (the ФФД 1.2 numbering, starting at 1);
- a number outside those tables is shown as the number itself, so nothing is hidden.
The register checks a code synchronously (Shtrih FF61h waits for the ОИСМ), so a started
check is always `ready`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Final

from gateway.domain import marking

# Tags of the ОИСМ answer the register passes on with a check ([FFD]).
TAG_REQUEST_CODE: Final = 2105  # markOperatorResponseResult
TAG_ITEM_STATUS: Final = 2109  # markOperatorItemStatus
TAG_PROCESSING_RESULTS: Final = 2005  # markOperatorResponse
TAG_BARCODE: Final = 2101  # imcBarcode: the item's product code as the ОИСМ read it

# ATOL driver errors 4xx of the marking functions ([ATOLJS] utils, libfptr headers).
ATOL_CHECK_IN_PROGRESS: Final = 401  # imcCheckIsRun
ATOL_NO_SERVER_CONNECTION: Final = 402
ATOL_INVALID_STATUS: Final = 404  # the code or its status was refused
ATOL_WRONG_STATE: Final = 410  # imcCheckWrongState: nothing to answer or decide

FM_CHECK_ERROR_REASONS: Final[Mapping[int, str]] = {
    marking.NotCheckedReason.CHECKED: "checked",
    marking.NotCheckedReason.TYPE_NOT_CHECKABLE: "typeIncorrect",
    marking.NotCheckedReason.NO_KEYS: "noKeys",
    marking.NotCheckedReason.NO_GS1_AI_91_92: "noGS1",
    marking.NotCheckedReason.OTHER: "other",
}
IMC_TYPES: Final[Mapping[int, str]] = {  # tag 2100 ([KSL] ImcType)
    marking.CodeType.UNRECOGNISED: "imcUnrecognized",
    marking.CodeType.SHORT: "imcShort",
    marking.CodeType.VERIFY88: "imcFmVerifyCode88",
    marking.CodeType.VERIFY44_UNCHECKED: "imcVerifyCode44",
    marking.CodeType.VERIFY44: "imcFmVerifyCode44",
    marking.CodeType.VERIFY4: "imcVerifyCode4",
}
RESPONSE_RESULTS: Final[Mapping[int, str]] = {0: "correct", 1: "incorrect", 2: "unrecognized"}
ITEM_STATUSES: Final[Mapping[int, str]] = {
    1: "itemEstimatedStatusCorrect",
    2: "itemEstimatedStatusIncorrect",
    3: "itemSaleStopped",
}


def _tag_int(check: marking.CodeCheck, tag: int) -> int | None:
    """An ОИСМ answer tag as an unsigned little-endian number; None when it is absent."""
    for number, value in check.server_tags:
        if number == tag and value:
            return int.from_bytes(value, "little")
    return None


def _tag_bytes(check: marking.CodeCheck, tag: int) -> bytes | None:
    for number, value in check.server_tags:
        if number == tag:
            return value
    return None


def item_info_check_result(result: int) -> dict[str, bool]:
    """Tag 2106 as ATOL's `itemInfoCheckResult` ([ATOLJS] getItemInfoCheckResult)."""
    return {
        "imcCheckFlag": bool(result & marking.CHECK_DONE),
        "imcCheckResult": bool(result & marking.CHECK_POSITIVE),
        "imcStatusInfo": bool(result & marking.ISM_DONE),
        "imcEstimatedStatusCorrect": bool(result & marking.ISM_POSITIVE),
        "ecrStandAloneFlag": bool(result & marking.AUTONOMOUS),
    }


def offline_validation(check: marking.CodeCheck) -> dict[str, Any]:
    """The ФН's own check (2004 and the reason byte) as ATOL's `offlineValidation`."""
    reason = int(check.reason)
    return {
        "fmCheck": bool(check.local & marking.LOCAL_CHECKED),
        "fmCheckResult": bool(check.local & marking.LOCAL_POSITIVE),
        "fmCheckErrorReason": FM_CHECK_ERROR_REASONS.get(reason, str(reason)),
    }


def begin_result(check: marking.CodeCheck) -> dict[str, Any]:
    """beginMarkingCodeValidation."""
    return {"offlineValidation": offline_validation(check)}


def sent_request(check: marking.CodeCheck) -> bool:
    """The register sent the code to the ОИСМ: it answered, or the ФН names the exchange's
    outcome (FFh: no answer in time; 20h: an answer it could not accept)."""
    return check.answered or check.server_code is not None


def driver_error(check: marking.CodeCheck) -> dict[str, Any]:
    """ATOL's `driverError` of a finished check: code 0 unless the ОИСМ exchange failed."""
    if check.answered or check.server_code in (None, 0):
        return {"code": 0, "error": "", "description": ""}
    if check.server_code == 0xFF:
        return {
            "code": ATOL_NO_SERVER_CONNECTION,
            "error": "responseTimeout",
            "description": "the marking system (ОИСМ) did not answer in time",
        }
    refused = check.answer_refused_text
    return {
        "code": ATOL_NO_SERVER_CONNECTION,
        "error": "ismAnswerRefused" if refused is not None else "serverNoConnect",
        "description": refused
        or f"the marking system's exchange failed (ФН code {check.server_code:#04x})",
    }


def online_validation(
    check: marking.CodeCheck, code: marking.MarkingCode | None = None
) -> dict[str, Any]:
    """What the register says about the ОИСМ's side of the check, as ATOL's
    `onlineValidation`: 2106, then 2005/2109/2105/2101 when the answer carried them."""
    out: dict[str, Any] = {}
    if check.result is not None:
        out["itemInfoCheckResult"] = item_info_check_result(check.result)
    processing = _tag_int(check, TAG_PROCESSING_RESULTS)
    if processing is not None:
        # [ATOLJS] getMarkOperatorResponse: bit1 "КП КМ result", bit3 "item status correct"
        out["markOperatorResponse"] = {
            "responseStatus": bool(processing & 0x02),
            "itemStatusCheck": bool(processing & 0x08),
        }
    status = _tag_int(check, TAG_ITEM_STATUS)
    if status is not None:
        out["markOperatorItemStatus"] = ITEM_STATUSES.get(status, str(status))
    request = _tag_int(check, TAG_REQUEST_CODE)
    if request is not None:
        out["markOperatorResponseResult"] = RESPONSE_RESULTS.get(request, str(request))
    out["imcType"] = IMC_TYPES.get(check.code_type, str(check.code_type))
    barcode = _tag_bytes(check, TAG_BARCODE)
    if barcode is not None:
        out["imcBarcode"] = base64.b64encode(barcode).decode("ascii")
    if code is not None:
        out["imcModeProcessing"] = code.processing_mode
    return out


def status_result(
    check: marking.CodeCheck, code: marking.MarkingCode | None = None
) -> dict[str, Any]:
    """getMarkingCodeValidationStatus of a finished check.

    ATOL shows `onlineValidation` only when `driverError.code` is 0; here it is shown
    whenever the register gave a 2106, so a client that allows a sale without the ОИСМ's
    answer sees what will be recorded (the autonomous flag).
    """
    out: dict[str, Any] = {
        "ready": True,
        "sentImcRequest": sent_request(check),
        "driverError": driver_error(check),
    }
    online = online_validation(check, code)
    if online:
        out["onlineValidation"] = online
    return out


def accept_result(check: marking.CodeCheck, stored: int | None) -> dict[str, Any]:
    """acceptMarkingCode: the 2106 the register stored (FF69h's answer), else the check's.

    With neither (FF69h answered no byte, and the check had no 2106: autonomous or no
    answer) `itemInfoCheckResult` is left out rather than shown as all false: [ATOLJS]
    getItemInfoCheckResult reads the member only where it is there, and all-false would
    claim a 2106 of 0 the register never gave."""
    result = stored if stored is not None else check.result
    if result is None:
        return {}
    return {"itemInfoCheckResult": item_info_check_result(result)}


def validate_item(
    check: marking.CodeCheck,
    code: marking.MarkingCode,
    *,
    stored: int | None,
    refusal: str | None,
) -> dict[str, Any]:
    """One element of validateMarks: accepted codes carry `itemInfoCheckResult`; a refused
    one carries `driverError` 404 with the reason its policy refused it."""
    out: dict[str, Any] = {
        "offlineValidation": offline_validation(check),
        "sentImcRequest": sent_request(check),
        "driverError": driver_error(check),
    }
    online = online_validation(check, code)
    if online:
        out["onlineValidation"] = online
    if refusal is None:
        out.update(accept_result(check, stored))
    else:
        # No ОИСМ answer keeps its own code (402); a definite "no" is 404.
        failed = out["driverError"]["code"]
        out["driverError"] = {
            "code": failed or ATOL_INVALID_STATUS,
            "error": out["driverError"]["error"] or "imcRefused",
            "description": f"{refusal}; the code was declined — do not sell this item",
        }
    return out


def validate_error(error_code: int, text: str) -> dict[str, Any]:
    """One element of validateMarks whose check the register refused outright."""
    return {"driverError": {"code": error_code, "error": "checkFailed", "description": text}}


def not_kept(item: dict[str, Any], refused: str) -> dict[str, Any]:
    """A validateMarks element that passed its check but was emptied from the table with the
    rest, because code(s) `refused` of the same request were refused."""
    return {
        **item,
        "kept": False,
        "driverError": {
            "code": ATOL_WRONG_STATE,
            "error": "imcNotKept",
            "description": (
                f"the code passed its check, but code(s) {refused} of this request were "
                "refused, so the register's table of checked codes was emptied; check the "
                "codes again (without the refused ones) before the sale"
            ),
        },
    }


def mark_result(mark: marking.MarkResult) -> dict[str, Any]:
    """One marked item of a receipt's result: its code, the check and the 2106 bound."""
    out: dict[str, Any] = {
        "item": mark.index,
        "imc": base64.b64encode(mark.code).decode("ascii"),
    }
    if mark.result is not None:
        out["itemInfoCheckResult"] = item_info_check_result(mark.result)
        out["tag2106"] = mark.result
    else:
        out["tag2106"] = None
    # Sold without the ОИСМ's answer: the notification goes to the ОИСМ later.
    out["offline"] = not mark.check.answered or bool((mark.result or 0) & marking.AUTONOMOUS)
    refused = mark.check.answer_refused_text
    if refused is not None:
        # Sold under OFFLINE_OK, but apart from a plain timeout: the ОИСМ was reached.
        out["ismAnswerRefused"] = refused
    return out


def exchange_status(state: marking.MarkingState, exchange: marking.IsmExchange) -> dict[str, Any]:
    """ismExchangeStatus: notifications not yet sent (FF68h, named as ATOL's
    `status.notSent*`), plus the register's marking state (FF70h) under `markingState`.

    A ФН in autonomous mode has no exchange (`exchange.autonomous`): `status.autonomous` is
    true, the count is FF70h's (they wait for an upload by hand), and what only FF68h knows
    (first number, its date, exchange state, fill) is null, not made up.
    """
    if exchange.autonomous:
        status: dict[str, Any] = {
            "autonomous": True,
            "notSentCount": state.unsent,
            "notSentFirstNoticeNumber": None,
            "notSentFirstNoticeDateTime": None,
            "exchangeState": None,
            "memoryFillPercent": None,
            "description": (
                "the fiscal storage works in autonomous mode: it does not send notifications "
                "to the marking system; upload them by hand"
            ),
        }
    else:
        status = {
            "autonomous": False,
            "notSentCount": exchange.unsent,
            "notSentFirstNoticeNumber": exchange.current_number if exchange.unsent else None,
            "notSentFirstNoticeDateTime": exchange.first_unsent_at if exchange.unsent else None,
            "exchangeState": exchange.state,
            "memoryFillPercent": exchange.fill_percent,
        }
    return {
        "status": status,
        "markingState": {
            "checkState": state.check_state,
            "waitingDecision": state.waiting_decision,
            "notificationState": state.notification_state,
            "savedResults": state.saved_results,
            "codesInNotification": state.codes_in_notification,
            "areaFill": state.area_fill,
            "unsentNotifications": state.unsent,
        },
    }
