"""Pure: KKMServer's marking codes [KKMSERVER] -> the ATOL `imcParams` and `validateMarks` the
box's parser checks, and the check results -> KKMServer's `MarkingCodeValidation` answer.

KKMServer takes the code as the scanner gave it (`BarCode`: text, GS as the character 1Dh;
a trailing GS is dropped, and the escape `\\x1d` written out as text is read as GS), or
base64-encoded (`MarkingCodeBase64`). Both become ATOL's base64 `imc`, so every rule about the
code is the ATOL parser's. `ContainsSerialNumber` (true unless false) refuses a bare EAN-8,
EAN-13 or ITF-14 barcode, which names a product, not one pack.

`AcceptOnBad: true` (the client sells whatever the check says) has no ATOL name; it travels as
the box's own `imcParams.acceptOnBad` (MarkingPolicy.ANY), so the journal keeps it and a
restart re-reads it. The planned status ([FFD] tag 2003) follows the receipt type and the
line's unit: a sale sells, a return returns; pieces (MeasureOfQuantity 0 or absent) are
`itemPiece…`, a mass, length, area or volume unit is measured (`itemDry…`); any other unit
(pairs, packs, «иные») is refused on a marked line. A check's `Name` is kept with the task
only to be named back in the answer; `Price: -1` is KKMServer's "no price".

`IndustryProps` is the permissive-mode answer (tag 1265 of the line's 1260, "UUID=…&Time=…");
`AddIndustryProps` is appended to it as KKMServer does. The 1262/1263/1264 of that 1260 are the
box's `marking.permit_*` (KKMServer's own defaults are the same: "030", 21.11.2023, 1944).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, TypedDict

from gateway.atol import values as v
from gateway.atol.imc import ACCEPT_ANY, CHECK_NAME
from gateway.domain import marking
from gateway.domain.errors import ValidationError

__all__ = ["ACCEPT_ANY", "CodeValidation", "check_answer", "imc_params", "receipt_answer"]
_UNKNOWN = (
    "unknown field; every field is carried into the fiscal document or refused, "
    "so remove it or check its spelling"
)
_FFD105 = (
    "the ФФД 1.05 form of a marking code is not supported; send the whole code as scanned in "
    "BarCode (or MarkingCodeBase64)"
)
GOOD_CODE_FIELDS: Final = frozenset(
    {
        "BarCode",
        "MarkingCodeBase64",
        "ContainsSerialNumber",
        "AcceptOnBad",
        "IndustryProps",
        "AddIndustryProps",
    }
)
REFUSED_GOOD_CODE: Final = {"StampType": _FFD105, "GTIN": _FFD105, "SerialNumber": _FFD105}
CHECK_FIELDS: Final = frozenset(
    {
        "BarCode",
        "MarkingCodeBase64",
        "Name",
        "Price",
        "Quantity",
        "MeasureOfQuantity",
        "AcceptOnBad",
        "WaitForResult",
    }
)
_PRICE = "a code check keeps no price (the box runs no permissive-mode price check); remove it"
REFUSED_CHECK: Final = {
    "IndustryProps": (
        "a code check does not use the permissive-mode answer; give it with the receipt line "
        "(RegisterCheck, GoodCodeData.IndustryProps)"
    ),
    "PackageQuantity": (
        "selling part of a pack (tag 1291) is not supported through this API yet; check the "
        "code as one piece"
    ),
}
# A bare EAN-8, EAN-13 or ITF-14: digits only, no serial number of one pack.
_BARE_BARCODE = re.compile(r"[0-9]{8}|[0-9]{13}|[0-9]{14}")
_CODE_TEXT = re.compile(r"[\x1d\x20-\x7e]+")
_GS = "\x1d"
_GS_ESCAPE = "\\x1d"
_STATUSES: Final[Mapping[tuple[bool, bool], str]] = {
    # (return, measured) -> [ATOL] itemEstimatedStatus
    (False, False): "itemPieceSold",
    (False, True): "itemDryForSale",
    (True, False): "itemPieceReturn",
    (True, True): "itemDryReturn",
}
VALIDATE_TASK: Final = "validateMarks"
_UNIT_REFUSED = (
    "{unit} is neither a piece (0) nor a weight, length, area or volume, so a marked line "
    "cannot be sold in it: set the goods' unit to «штука» (0) for marked goods"
)


def measured(unit: object, where: str) -> bool:
    """Whether a marked line's unit is measured; a unit neither piece nor measured is refused."""
    if unit in (None, "", 0) and not isinstance(unit, bool):
        return False
    if not isinstance(unit, bool) and unit in marking.MEASURED_UNITS:
        return True
    raise ValidationError(where, _UNIT_REFUSED.format(unit=unit))


def status(returned: bool, unit: object, where: str) -> str:
    """The ATOL planned status of a line: sold or returned, a piece or measured."""
    return _STATUSES[(returned, measured(unit, where))]


def imc_params(
    data: dict[str, object], path: str, *, returned: bool, unit: object, unit_field: str
) -> tuple[dict[str, object], str | None]:
    """`Register.GoodCodeData` -> (`imcParams`, the 1265 value or None); `unit_field` names
    the line's `MeasureOfQuantity`."""
    _members(data, GOOD_CODE_FIELDS, REFUSED_GOOD_CODE, path)
    code = _code(data, path)
    serial = data.get("ContainsSerialNumber")
    if serial is not None and not isinstance(serial, bool):
        raise ValidationError(v.key(path, "ContainsSerialNumber"), "must be true or false")
    bare = bool(_BARE_BARCODE.fullmatch(code.decode("ascii")))
    if serial is not False and bare:
        raise ValidationError(
            v.key(path, _code_field(data)),
            "a bare EAN/ITF barcode has no serial number of one pack: scan the pack's "
            "DataMatrix code, or send ContainsSerialNumber false if this item is marked with "
            "this barcode only",
        )
    params: dict[str, object] = {
        "imc": base64.b64encode(code).decode("ascii"),
        # A barcode the client says is the goods' only code: the ФН will not recognise it.
        "imcType": "imcUnrecognized" if bare else "auto",
        "itemEstimatedStatus": status(returned, unit, unit_field),
        "imcModeProcessing": 0,
    }
    if v.flag(data, "AcceptOnBad", path):
        params[ACCEPT_ANY] = True
    return params, _industry(data, path)


def check_params(data: dict[str, object], path: str, *, returned: bool) -> dict[str, object]:
    """One `GoodCodeDatas` element of ValidationMarkingCode -> a `validateMarks` element."""
    _members(data, CHECK_FIELDS, REFUSED_CHECK, path)
    unit = data.get("MeasureOfQuantity")
    is_measured = measured(unit, v.key(path, "MeasureOfQuantity"))
    params: dict[str, object] = {
        "imc": base64.b64encode(_code(data, path)).decode("ascii"),
        "imcType": "auto",
        "itemEstimatedStatus": status(returned, unit, v.key(path, "MeasureOfQuantity")),
        "imcModeProcessing": 0,
    }
    name = data.get("Name")
    if v.given(name):
        if not isinstance(name, str):
            raise ValidationError(v.key(path, "Name"), "must be a string: the goods' name")
        params[CHECK_NAME] = name  # named back in the answer, never printed
    price = data.get("Price")
    # [KKMSERVER] its own client classes send Price -1 when no price is given.
    if price is not None and not (
        not isinstance(price, bool) and isinstance(price, int | float | Decimal) and price == -1
    ):
        raise ValidationError(v.key(path, "Price"), _PRICE)
    quantity = data.get("Quantity")
    if is_measured:
        params["itemUnits"] = unit
        # [KKMSERVER] an absent Quantity is 1 of the unit.
        params["itemQuantity"] = 1 if quantity is None else quantity
    elif quantity is not None and v.number(quantity, v.key(path, "Quantity")) != 1:
        raise ValidationError(
            v.key(path, "Quantity"),
            "a piece is one code: quantity 1 (give MeasureOfQuantity for a weighed item)",
        )
    # [KKMSERVER] a check accepts the code whatever it says unless AcceptOnBad is false.
    if data.get("AcceptOnBad") is not False:
        v.flag(data, "AcceptOnBad", path)
        params[ACCEPT_ANY] = True
    wait = data.get("WaitForResult")
    if wait is not None:
        params["waitForResult"] = wait
    return params


def _members(
    data: dict[str, object], known: frozenset[str], refused: Mapping[str, str], path: str
) -> None:
    for name, value in data.items():
        if name in known:
            continue
        if name in refused:
            if v.given(value) and value is not False:
                raise ValidationError(v.key(path, name), refused[name])
            continue
        raise ValidationError(v.key(path, name), _UNKNOWN)


def _code_field(data: dict[str, object]) -> str:
    return "BarCode" if v.given(data.get("BarCode")) else "MarkingCodeBase64"


def _code(data: dict[str, object], path: str) -> bytes:
    """The code's bytes from BarCode (text as scanned) or MarkingCodeBase64."""
    text, b64 = data.get("BarCode"), data.get("MarkingCodeBase64")
    if v.given(text) and v.given(b64):
        raise ValidationError(
            v.key(path, "MarkingCodeBase64"), "give the code once: BarCode or MarkingCodeBase64"
        )
    if v.given(b64):
        where = v.key(path, "MarkingCodeBase64")
        if not isinstance(b64, str):
            raise ValidationError(where, "must be a string: the code as scanned, base64-encoded")
        try:
            raw = base64.b64decode(b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(
                where, "is not base64; send the code as scanned in BarCode instead"
            ) from None
        try:
            scanned = raw.decode("ascii")
        except UnicodeDecodeError:
            raise ValidationError(
                where, "decodes to bytes that are not a marking code (printable ASCII and GS)"
            ) from None
        return _scanned(scanned, where)
    where = v.key(path, "BarCode")
    if not v.given(text):
        raise ValidationError(where, "required: the marking code as scanned")
    if not isinstance(text, str):
        raise ValidationError(where, "must be a string: the marking code as scanned")
    return _scanned(text.replace(_GS_ESCAPE, _GS), where)


def _scanned(text: str, where: str) -> bytes:
    code = text.strip(" ").removesuffix(_GS)  # [KKMSERVER] drops a trailing GS
    if not code:
        raise ValidationError(where, "must not be empty")
    if not _CODE_TEXT.fullmatch(code):
        bad = next(c for c in code if not _CODE_TEXT.fullmatch(c))
        raise ValidationError(
            where,
            f"holds {bad!r}, which no marking code has: set the scanner to pass the code "
            "as is (printable Latin letters, digits and GS, 1Dh, between the parts)",
        )
    return code.encode("ascii")


def _industry(data: dict[str, object], path: str) -> str | None:
    props, extra = data.get("IndustryProps"), data.get("AddIndustryProps")
    for name, value in (("IndustryProps", props), ("AddIndustryProps", extra)):
        if value is not None and not isinstance(value, str):
            raise ValidationError(v.key(path, name), "must be a string")
    if not v.given(props):
        if v.given(extra):
            raise ValidationError(
                v.key(path, "AddIndustryProps"),
                "the box does not run the permissive-mode check itself, so there is nothing "
                "to add to: give the whole tag 1265 value in IndustryProps",
            )
        return None
    assert isinstance(props, str)
    return props + (extra if isinstance(extra, str) else "")


# --- answers -----------------------------------------------------------------------------


class ValidationKkt(TypedDict):
    """What the register said: tag 2106 and its reading."""

    ValidationResult: int
    DecryptionResult: str


class ValidationPr(TypedDict):
    """The permissive-mode check (разрешительный режим): never run by the box itself."""

    ValidationResult: bool
    ValidationDisabled: bool
    DecryptionResult: str


class CodeValidation(TypedDict, total=False):
    """One element of `MarkingCodeValidation` [KKMSERVER]."""

    Name: str
    BarCode: str
    IndustryProps: str
    ValidationKKT: ValidationKkt
    ValidationPR: ValidationPr


_PR_OUTSIDE = "Проверка произведена вне кассы (IndustryProps)"
_PR_NONE = "Разрешительный режим не проверяется этой кассой"


def decryption(result: int | None) -> str:
    """Tag 2106 in words, in the style of KKMServer's `DecryptionResult`."""
    if result is None:
        return "[М] Результат проверки не получен"
    positive = result & marking.FULLY_POSITIVE == marking.FULLY_POSITIVE
    negative = bool(
        (result & marking.CHECK_DONE and not result & marking.CHECK_POSITIVE)
        or (result & marking.ISM_DONE and not result & marking.ISM_POSITIVE)
    )
    mark = "[М+]" if positive else "[М-]" if negative else "[М]"
    parts: list[str] = []
    if not result & marking.CHECK_DONE:
        parts.append("КП КМ не проверен")
    elif result & marking.CHECK_POSITIVE:
        parts.append("КП КМ проверен, результат положительный")
    else:
        parts.append("КП КМ проверен, результат отрицательный")
    if not result & marking.ISM_DONE:
        parts.append("статус товара ОИСМ не проверен")
    elif result & marking.ISM_POSITIVE:
        parts.append("статус товара ОИСМ проверен, статус корректен")
    else:
        parts.append("статус товара ОИСМ проверен, статус некорректен")
    if result & marking.AUTONOMOUS:
        parts.append("ККТ работает в автономном режиме")
    return f"{mark} " + "; ".join(parts)


def _bits(check: Mapping[str, Any]) -> int:
    """ATOL's `itemInfoCheckResult` booleans -> tag 2106."""
    result = 0
    for name, bit in (
        ("imcCheckFlag", marking.CHECK_DONE),
        ("imcCheckResult", marking.CHECK_POSITIVE),
        ("imcStatusInfo", marking.ISM_DONE),
        ("imcEstimatedStatusCorrect", marking.ISM_POSITIVE),
        ("ecrStandAloneFlag", marking.AUTONOMOUS),
    ):
        if check.get(name) is True:
            result |= bit
    return result


def _result_2106(element: Mapping[str, Any]) -> int | None:
    tag = element.get("tag2106")
    if isinstance(tag, int) and not isinstance(tag, bool):
        return tag
    for holder in (element, element.get("onlineValidation")):
        if isinstance(holder, Mapping) and isinstance(holder.get("itemInfoCheckResult"), Mapping):
            return _bits(holder["itemInfoCheckResult"])
    return None


def _barcode(imc: object) -> str:
    if not isinstance(imc, str):
        return ""
    try:
        return base64.b64decode(imc).decode("ascii")
    except (binascii.Error, ValueError):
        return ""


def _one(code: str, element: Mapping[str, Any], name: str | None, props: str | None) -> Any:
    result = _result_2106(element)
    text = decryption(result)
    error = element.get("driverError")
    if isinstance(error, Mapping) and error.get("code") and error.get("description"):
        text += f"; {error['description']}"
    out: CodeValidation = {
        "BarCode": code,
        "ValidationKKT": {"ValidationResult": result or 0, "DecryptionResult": text},
        "ValidationPR": {
            "ValidationResult": props is not None,
            "ValidationDisabled": True,
            "DecryptionResult": _PR_OUTSIDE if props is not None else _PR_NONE,
        },
    }
    if name is not None:
        out["Name"] = name
    if props is not None:
        out["IndustryProps"] = props
    return out


def check_answer(task: Mapping[str, Any], result: Mapping[str, Any]) -> list[CodeValidation]:
    """A `validateMarks` job -> ValidationMarkingCode's `MarkingCodeValidation`, in order."""
    params = task.get("params")
    elements = result.get("validateMarks")
    if not isinstance(params, list) or not isinstance(elements, list):
        return []
    return [
        _one(_barcode(p.get("imc")), e, _name(p), None)
        if isinstance(p, Mapping)
        else _one("", e, None, None)
        for p, e in zip(params, elements, strict=False)
        if isinstance(e, Mapping)
    ]


def _name(params: Mapping[str, Any]) -> str | None:
    name = params.get(CHECK_NAME)
    return name if isinstance(name, str) else None


def receipt_answer(task: Mapping[str, Any], result: Mapping[str, Any]) -> list[CodeValidation]:
    """A receipt job's `marks` -> RegisterCheck's `MarkingCodeValidation`, one per marked
    line: its name, its code, the 2106 bound into the document."""
    marks = result.get("marks")
    items = task.get("items")
    if not isinstance(marks, list) or not isinstance(items, list):
        return []
    out: list[CodeValidation] = []
    for mark in marks:
        if not isinstance(mark, Mapping):
            continue
        index = mark.get("item")
        item = items[index] if isinstance(index, int) and 0 <= index < len(items) else {}
        name = item.get("name") if isinstance(item, Mapping) else None
        props = None
        industry = item.get("industryInfo") if isinstance(item, Mapping) else None
        if isinstance(industry, list) and industry and isinstance(industry[0], Mapping):
            value = industry[0].get("industryAttribute")
            props = value if isinstance(value, str) else None
        out.append(
            _one(_barcode(mark.get("imc")), mark, name if isinstance(name, str) else "", props)
        )
    return out
