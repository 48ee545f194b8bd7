"""Pure: marked goods in ATOL tasks: a position's `imcParams`, `industryInfo` (items and
receipt), and the marking tasks (`beginMarkingCodeValidation`, `validateMarks`, …).

Shapes are ATOL driver 10's JSON tasks ([ATOL], [ATOLJS], [KSL]); tags are [FFD]:
- `imcParams` -> `MarkingCode`: `imc` base64 -> tag 2000 bytes, `imcType` -> 2100 (auto: the
  register recognises it), `itemEstimatedStatus` -> 2003, `imcModeProcessing` -> 2102 (only
  0), `itemFractionalAmount` "n/d" -> 1291, `itemInfoCheckResult` -> the 2106 bits an earlier
  check gave. `imcBarcode` (2101) is refused: the register builds 1163 from the code itself.
- `industryInfo [{fois, date, number, industryAttribute}]` -> 1260 per item (1261 for the
  receipt): 1262, 1263, 1264, 1265. Missing fois/date/number take the box's `marking.permit_*`.

Rules chosen here (each refused with the field named):
- The code must be base64. ATOL's own script falls back to the plain text when decoding fails
  ([ATOLJS]); that silently turns a typo into a different code, so a plain-text code is refused
  with a hint to encode it. A decoded code is printable ASCII with GS (1Dh) separators, as
  scanned; anything else is a mistake in the encoding.
- Only payment objects 31 and 33 ([FFD] 1212, marked goods) carry a code, and they must.
- The «кассовое ядро» firmware takes codes only in приход and возврат прихода ([NG]), so
  buy and buyReturn refuse marking; sell takes sold or unchanged, sellReturn returned or
  unchanged.
- One code is one pack: a marked piece line sells quantity 1, or the fraction it names
  (quantity = n/d to 6 decimals). A measured status needs a unit other than piece and sells any
  quantity; a piece status needs the piece unit.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Final

from gateway.atol import limits, names
from gateway.atol import values as v
from gateway.atol.names import NameMapping
from gateway.atol.tasks import CodeCheckParams, MarkingAction, MarkingTask
from gateway.domain import fiscal, marking
from gateway.domain.errors import ValidationError
from gateway.domain.marking import MarkingCode, MarkingPolicy, PlannedStatus

# The box's own member (no ATOL name): `acceptOnBad: true` sells the item whatever its check
# says (MarkingPolicy.ANY); the KKMServer API sends it for `GoodCodeData.AcceptOnBad`.
ACCEPT_ANY: Final = "acceptOnBad"
_IMC_FIELDS: Final = frozenset(
    {
        ACCEPT_ANY,
        "imc",
        "imcType",
        "itemEstimatedStatus",
        "imcModeProcessing",
        "itemFractionalAmount",
        "itemInfoCheckResult",
    }
)
_REFUSED_IMC_FIELDS: Final = {
    "imcBarcode": "imcBarcode (tag 2101) is not supported yet; the register reads the product "
    "code from imc itself, so remove imcBarcode",
}
# The box's own member of a code check: the goods' name, kept with the task only to be named
# back in the KKMServer API's answer (`GoodCodeDatas[].Name`); never printed.
CHECK_NAME: Final = "name"
_CHECK_FIELDS: Final = frozenset(
    {
        ACCEPT_ANY,
        CHECK_NAME,
        "imc",
        "imcType",
        "itemEstimatedStatus",
        "imcModeProcessing",
        "itemQuantity",
        "itemUnits",
        "itemFractionalAmount",
        "waitForResult",
        "notSendToServer",
        "notFormRequest",
    }
)
_NOT_OFFLINE = (
    "is not supported: the box always asks the marking system (ОИСМ) about a code; "
    "remove it or set it to false"
)
# [ATOLJS] getItemInfoCheckResult: itemInfoCheckResult's booleans are the 2106 bits.
_CHECK_RESULT_BITS: Final = {
    "imcCheckFlag": marking.CHECK_DONE,
    "imcCheckResult": marking.CHECK_POSITIVE,
    "imcStatusInfo": marking.ISM_DONE,
    "imcEstimatedStatusCorrect": marking.ISM_POSITIVE,
    "ecrStandAloneFlag": marking.AUTONOMOUS,
}
_INDUSTRY_FIELDS: Final = frozenset({"fois", "date", "number", "industryAttribute"})
_FRACTION = re.compile(r"([0-9]{1,9})/([0-9]{1,9})")
_FOIS = re.compile(r"[0-9]{3}")
_DATE = re.compile(r"([0-9]{2})\.([0-9]{2})\.([0-9]{4})")
# A code as scanned: printable ASCII, GS (1Dh) between the GS1 application identifiers.
_CODE_BYTES = re.compile(rb"[\x1d\x20-\x7e]+")
_B64_TEXT = re.compile(r"[A-Za-z0-9+/]+={0,2}")

# Planned statuses by receipt type ([NG]: «кассовое ядро» takes codes in приход and возврат
# прихода only; the status must say what the receipt does to the pack).
_STATUSES_FOR: Final[dict[fiscal.ReceiptType, frozenset[PlannedStatus]]] = {
    fiscal.ReceiptType.SELL: frozenset(
        {PlannedStatus.PIECE_SOLD, PlannedStatus.MEASURED_SOLD, PlannedStatus.UNCHANGED}
    ),
    fiscal.ReceiptType.SELL_RETURN: frozenset(
        {PlannedStatus.PIECE_RETURNED, PlannedStatus.MEASURED_RETURNED, PlannedStatus.UNCHANGED}
    ),
}
_MARKING_TASKS: Final = {action.value: action for action in MarkingAction}
MARKING_TASK_TYPES: Final = frozenset(_MARKING_TASKS)


# Product barcodes that carry no serial number (EAN-8, EAN-13, ITF-14): never a marking code.
_BARCODE_LENGTHS: Final = frozenset({8, 13, 14})


def marking_code(
    value: object,
    item_path: str,
    *,
    item: fiscal.Item,
    kind: fiscal.ReceiptType,
    strict: bool,
    mapping: NameMapping,
) -> MarkingCode:
    """The `imcParams` of the position at `item_path`, checked against that position."""
    path = v.key(item_path, "imcParams")
    v.carried(mapping, "items.imcParams", path)
    members = v.obj(value, path)
    v.check_members(members, path, _IMC_FIELDS, _REFUSED_IMC_FIELDS)
    if item.payment_object not in names.MARKED_OBJECTS:
        raise ValidationError(
            path,
            "a marking code goes with paymentObject 33 (commodityWithMarking) or 31 "
            f"(exciseWithMarking); this item's paymentObject is {item.payment_object}",
        )
    allowed = _STATUSES_FOR.get(kind)
    if allowed is None:
        raise ValidationError(
            path,
            "marking codes go only into sell and sellReturn receipts (приход, возврат прихода); "
            "remove imcParams",
        )
    code = _code(members, path)
    status = _status(members, path)
    status_path = v.key(path, "itemEstimatedStatus")
    if status not in allowed:
        accepted = ", ".join(names.ESTIMATED_STATUS_NAMES[s] for s in sorted(allowed))
        raise ValidationError(
            status_path,
            f"{names.ESTIMATED_STATUS_NAMES[status]} does not fit a {_kind_name(kind)} "
            f"receipt; use {accepted}",
        )
    fraction = _fraction(members.get("itemFractionalAmount"), v.key(path, "itemFractionalAmount"))
    _check_quantity(item, status, fraction, item_path)
    expected = _imc_type(members, path)
    _not_a_barcode(code, expected, path)
    return MarkingCode(
        code=code,
        planned_status=status,
        processing_mode=_mode(members, path),
        fraction=fraction,
        expected_type=expected,
        claimed_result=_claimed_result(
            members.get("itemInfoCheckResult"), v.key(path, "itemInfoCheckResult")
        ),
        policy=_policy(members, path, strict=strict),
    )


def _policy(members: dict[str, object], path: str, *, strict: bool) -> MarkingPolicy:
    """`acceptOnBad: true` -> ANY; else the receipt's (or the task's) STRICT / OFFLINE_OK."""
    if v.flag(members, ACCEPT_ANY, path):
        return MarkingPolicy.ANY
    return MarkingPolicy.STRICT if strict else MarkingPolicy.OFFLINE_OK


def _kind_name(kind: fiscal.ReceiptType) -> str:
    return names.RECEIPT_TYPE_NAMES[kind]


def _code(members: dict[str, object], path: str) -> bytes:
    """`imc`: the code as scanned, base64-encoded ([ATOL])."""
    where = v.key(path, "imc")
    raw = v.required(members, "imc", path)
    if not isinstance(raw, str):
        raise ValidationError(where, "must be a string: the marking code, base64-encoded")
    text = raw.strip()
    if not text:
        raise ValidationError(where, "must not be empty")
    plain = (
        "is not base64; send the marking code as scanned (GS as byte 1Dh), base64-encoded, "
        'e.g. "MDEwNDYwNjIwMzEwMzM0ODIx..." for "010460620310334821..."'
    )
    if not _B64_TEXT.fullmatch(text) or len(text) % 4:
        raise ValidationError(where, plain)
    try:
        code = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(where, plain) from None
    # The one normalisation: scanners append a GS after the last field, which is no part of
    # the code ([KKMSERVER] drops it too).
    if code.endswith(b"\x1d"):
        code = code[:-1]
    if not code:
        raise ValidationError(where, "must not be empty")
    if code[:1] == b" " or code[-1:] == b" ":
        raise ValidationError(
            where,
            "the decoded code starts or ends with a space; a marking code has none: send the "
            "code exactly as scanned, without padding",
        )
    if not _CODE_BYTES.fullmatch(code):
        # A plain-text code of base64 letters decodes without error, but into bytes no
        # scanner produces.
        raise ValidationError(
            where,
            "decodes to bytes that are not a marking code (a code is printable ASCII with GS "
            "separators); " + plain.removeprefix("is not base64; "),
        )
    if len(code) > limits.MAX_IMC_BYTES:
        raise ValidationError(where, f"the code is longer than {limits.MAX_IMC_BYTES} bytes")
    return code


def _not_a_barcode(code: bytes, expected: marking.CodeType | None, path: str) -> None:
    """A bare EAN-8/EAN-13/ITF-14 has no serial number of one pack: refused unless the client
    says the goods carry only that (`imcType: imcUnrecognized`)."""
    if (
        code.isdigit()
        and len(code) in _BARCODE_LENGTHS
        and expected is not marking.CodeType.UNRECOGNISED
    ):
        raise ValidationError(
            v.key(path, "imc"),
            "is a product barcode (EAN-8, EAN-13 or ITF-14), not a marking code: scan the "
            "pack's DataMatrix code (or give imcType imcUnrecognized if the goods carry only "
            "this barcode)",
        )


def _status(members: dict[str, object], path: str) -> PlannedStatus:
    """`itemEstimatedStatus` -> [FFD] tag 2003 (required: the box does not guess it)."""
    return v.lookup(
        v.required(members, "itemEstimatedStatus", path),
        v.key(path, "itemEstimatedStatus"),
        names.ESTIMATED_STATUSES,
        {},
        "item status",
    )


def _imc_type(members: dict[str, object], path: str) -> marking.CodeType | None:
    """`imcType` -> [FFD] tag 2100; "auto" or absent: the register recognises the code."""
    raw = members.get("imcType")
    if raw is None:
        return None
    return v.lookup(raw, v.key(path, "imcType"), names.IMC_TYPES, {}, "code type")


def _mode(members: dict[str, object], path: str) -> int:
    """`imcModeProcessing` ([FFD] tag 2102): always 0 ([JPOS] "сейчас всегда 0")."""
    raw = members.get("imcModeProcessing")
    if raw is None:
        return 0
    return v.code(raw, v.key(path, "imcModeProcessing"), range(0, 1))


def _fraction(raw: object, where: str) -> tuple[int, int] | None:
    """`itemFractionalAmount` "n/d" -> [FFD] 1291 {1293 n, 1294 d}: part of one pack."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationError(where, 'must be a string "numerator/denominator", e.g. "1/2"')
    m = _FRACTION.fullmatch(raw.strip())
    if m is None:
        raise ValidationError(where, 'must be "numerator/denominator", e.g. "1/2"')
    numerator, denominator = int(m[1]), int(m[2])
    if not 0 < numerator < denominator:
        raise ValidationError(
            where, "must be a part of one pack: 0 < numerator < denominator, e.g. 1/2"
        )
    return numerator, denominator


def _check_quantity(
    item: fiscal.Item,
    status: PlannedStatus,
    fraction: tuple[int, int] | None,
    item_path: str,
) -> None:
    """One code is one pack: quantity 1, the named fraction, or any amount when measured."""
    quantity_path = v.key(item_path, "quantity")
    unit_path = v.key(item_path, "measurementUnit")
    fraction_path = v.key(item_path, "imcParams.itemFractionalAmount")
    piece = item.measurement_unit == names.UNITS["piece"]
    if status.measured:
        if piece:
            raise ValidationError(
                unit_path,
                f"{names.ESTIMATED_STATUS_NAMES[status]} is a measured item: give its "
                "measurementUnit (kilogram, liter, …), not piece",
            )
        if item.measurement_unit not in marking.MEASURED_UNITS:
            raise ValidationError(
                unit_path,
                f"{names.ESTIMATED_STATUS_NAMES[status]} needs a unit of mass, length, area or "
                "volume (kilogram, meter, liter, …); a pack, pair or set is sold as piece",
            )
        if fraction is not None:
            raise ValidationError(
                fraction_path,
                "a measured item sells its quantity in its unit; remove itemFractionalAmount",
            )
        return
    if status is not PlannedStatus.UNCHANGED and not piece:
        raise ValidationError(
            unit_path,
            f"{names.ESTIMATED_STATUS_NAMES[status]} is a piece item: its measurementUnit must "
            "be piece (use itemDryForSale/itemDryReturn for a measured one)",
        )
    if not piece:
        if fraction is not None:
            # A part of a pack is a part of one piece, whatever the status says.
            raise ValidationError(
                fraction_path,
                "a part of a pack goes only on a piece line (measurementUnit piece or absent); "
                "remove itemFractionalAmount or sell the line as piece",
            )
        return  # unchanged status of a measured item: any quantity in its unit
    if fraction is None:
        if item.quantity != fiscal.QTY_SCALE:
            raise ValidationError(
                quantity_path,
                "a marked item is one pack per code: quantity must be 1 (a part of a pack "
                "needs imcParams.itemFractionalAmount, several packs need one position each)",
            )
        return
    numerator, denominator = fraction
    # Equal to the 6-decimal resolution: rounded down or up, |quantity - n/d| < 10⁻⁶.
    if abs(item.quantity * denominator - numerator * fiscal.QTY_SCALE) >= denominator:
        exact = numerator * fiscal.QTY_SCALE // denominator
        raise ValidationError(
            quantity_path,
            f"must be itemFractionalAmount {numerator}/{denominator} "
            f"= {exact // fiscal.QTY_SCALE}.{exact % fiscal.QTY_SCALE:06d}",
        )


def _claimed_result(raw: object, where: str) -> int | None:
    """`itemInfoCheckResult {imcCheckFlag, …}` -> the 2106 bits ([ATOLJS])."""
    if raw is None:
        return None
    members = v.obj(raw, where)
    v.check_members(members, where, frozenset(_CHECK_RESULT_BITS), {})
    result = 0
    for name, bit in _CHECK_RESULT_BITS.items():
        if v.flag(members, name, where):
            result |= bit
    return result


# --- industryInfo (1260 / 1261) ----------------------------------------------------------


def industry_info(
    value: object, path: str, mapping: NameMapping, *, carried_as: str
) -> tuple[marking.IndustryAttribute, ...]:
    """`industryInfo [{fois, date, number, industryAttribute}]`; absent or empty: none."""
    if not v.given(value):
        return ()
    v.carried(mapping, carried_as, path)
    raw = v.array(value, path)
    if len(raw) > limits.MAX_INDUSTRY_ATTRIBUTES:
        raise ValidationError(path, f"more than {limits.MAX_INDUSTRY_ATTRIBUTES} entries")
    return tuple(_industry_attribute(entry, v.idx(path, i), mapping) for i, entry in enumerate(raw))


def _industry_attribute(
    entry: object, path: str, mapping: NameMapping
) -> marking.IndustryAttribute:
    members = v.obj(entry, path)
    v.check_members(members, path, _INDUSTRY_FIELDS, {})
    permit = mapping.permit
    fois = permit.fois
    if members.get("fois") is not None:
        fois = _fois(members["fois"], v.key(path, "fois"))
    date = permit.date
    if members.get("date") is not None:
        date = _date(members["date"], v.key(path, "date"))
    number = permit.number
    if members.get("number") is not None:
        number = v.text(
            members["number"], v.key(path, "number"), limits.MAX_PERMIT_NUMBER_CHARS, mapping
        )
    value_path = v.key(path, "industryAttribute")
    value = v.text(
        v.required(members, "industryAttribute", path),
        value_path,
        limits.MAX_INDUSTRY_VALUE_CHARS,
        mapping,
    )
    # 1260/1261 is an STLV of four string tags (2-byte tag, 2-byte length, cp1251 text each)
    # and travels in one register block ([PROTO] FF4Dh / FF0Ch).
    size = 4 + sum(4 + len(s.encode("cp1251", "replace")) for s in (fois, date, number, value))
    if size > limits.MAX_INDUSTRY_TLV_BYTES:
        room = limits.MAX_INDUSTRY_TLV_BYTES - (size - len(value.encode("cp1251", "replace")))
        raise ValidationError(
            value_path,
            f"too long for the register: fois, date, number and industryAttribute together "
            f"take {size} bytes of the {limits.MAX_INDUSTRY_TLV_BYTES} one industry attribute "
            f"may use; shorten industryAttribute to at most {room} characters",
        )
    return marking.IndustryAttribute(fois, date, number, value)


def _fois(raw: object, where: str) -> str:
    """[FFD] tag 1262: the federal body's 3-digit id."""
    if not isinstance(raw, str) or not _FOIS.fullmatch(raw):
        raise ValidationError(where, 'must be the 3-digit ФОИВ id (ФФД tag 1262), e.g. "030"')
    return raw


def _date(raw: object, where: str) -> str:
    """[FFD] tag 1263: the regulation's date as dd.mm.yyyy."""
    message = 'must be the document date as "dd.mm.yyyy", e.g. "21.11.2023"'
    if not isinstance(raw, str):
        raise ValidationError(where, message)
    m = _DATE.fullmatch(raw)
    if m is None:
        raise ValidationError(where, message)
    try:
        dt.date(int(m[3]), int(m[2]), int(m[1]))
    except ValueError:
        raise ValidationError(where, f"{raw!r} is not a date; {message}") from None
    return raw


def canonical_industry(parsed: tuple[marking.IndustryAttribute, ...]) -> list[object]:
    """industryInfo as parsed, the defaults it took filled in, so a later change of the
    config's `marking.permit_*` cannot change a queued receipt."""
    return [
        {
            "fois": a.fois,
            "date": a.document_date,
            "number": a.document_number,
            "industryAttribute": a.value,
        }
        for a in parsed
    ]


# --- marking tasks -----------------------------------------------------------------------


def marking_task(task: dict[str, object], path: str, mapping: NameMapping) -> MarkingTask:
    """One of the ATOL marking tasks (`MARKING_TASK_TYPES`)."""
    kind = task.get("type")
    assert isinstance(kind, str)
    action = _MARKING_TASKS[kind]
    if mapping.carries is not None and "items.imcParams" not in mapping.carries:
        raise ValidationError(
            v.key(path, "type"),
            "this box's register cannot check marking codes; run marking tasks on a box "
            "with a Russian ФФД 1.2 register",
        )
    if action is MarkingAction.BEGIN:
        v.check_members(task, path, frozenset({"type", "params"}), {})
        where = v.key(path, "params")
        params = v.required(task, "params", path)
        if isinstance(params, dict) and ACCEPT_ANY in params:
            raise ValidationError(
                v.key(where, ACCEPT_ANY),
                "goes with a sale's imcParams or validateMarks; after "
                "beginMarkingCodeValidation the client itself accepts or declines the code",
            )
        check = _check_params(params, where, mapping, strict=False)
        return MarkingTask(action, (check,))
    if action is MarkingAction.VALIDATE:
        v.check_members(
            task,
            path,
            frozenset({"type", "params", "waitForResult"}),
            {
                "timeout": "the register waits for the marking system (ОИСМ) by its own "
                "setting; remove timeout",
            },
        )
        _wait_for_result(task, path)
        where = v.key(path, "params")
        raw = v.array(task.get("params"), where)
        if not raw:
            raise ValidationError(where, "must list at least one code")
        if len(raw) > limits.MAX_MARK_CHECKS:
            raise ValidationError(where, f"more than {limits.MAX_MARK_CHECKS} codes")
        # validateMarks accepts a code only when the ОИСМ confirmed it ([ATOLJS]
        # executeValidateMarks), which is the strict policy.
        checks = tuple(
            _check_params(entry, v.idx(where, i), mapping, strict=True)
            for i, entry in enumerate(raw)
        )
        seen: dict[bytes, int] = {}
        for i, check in enumerate(checks):
            first = seen.setdefault(check.code.code, i)
            if first != i:
                raise ValidationError(
                    v.key(v.idx(where, i), "imc"),
                    f"the same marking code as {v.idx(where, first)}: one code is one pack",
                )
        return MarkingTask(action, checks)
    v.check_members(task, path, frozenset({"type"}), {})
    return MarkingTask(action)


def _wait_for_result(members: dict[str, object], path: str) -> None:
    """`waitForResult`: the box always waits for the check's answer; false is refused."""
    raw = members.get("waitForResult")
    if raw is None or raw is True:
        return
    where = v.key(path, "waitForResult")
    if raw is False:
        raise ValidationError(
            where,
            "false is not supported: the box runs each check to its answer; remove it",
        )
    raise ValidationError(where, "must be true or false")


def _check_params(
    value: object, path: str, mapping: NameMapping, *, strict: bool
) -> CodeCheckParams:
    """One code to check: a beginMarkingCodeValidation `params` or a validateMarks element."""
    members = v.obj(value, path)
    v.check_members(members, path, _CHECK_FIELDS, {})
    code = _code(members, path)
    status = _status(members, path)
    for name in ("notSendToServer", "notFormRequest"):
        if v.flag(members, name, path):
            raise ValidationError(v.key(path, name), _NOT_OFFLINE)
    _wait_for_result(members, path)
    if CHECK_NAME in members:
        v.text(members[CHECK_NAME], v.key(path, CHECK_NAME), limits.MAX_NAME_CHARS, mapping)
    quantity: int | None = None
    unit: int | None = None
    raw_quantity = members.get("itemQuantity")
    raw_unit = members.get("itemUnits")
    # [KSL]: itemQuantity and itemUnits go with a measured item's check only.
    for name, raw in (("itemQuantity", raw_quantity), ("itemUnits", raw_unit)):
        if raw is not None and not status.measured:
            raise ValidationError(
                v.key(path, name),
                f"only for itemDryForSale or itemDryReturn; "
                f"{names.ESTIMATED_STATUS_NAMES[status]} is one pack, so remove it",
            )
    if raw_quantity is not None:
        quantity = v.quantity(raw_quantity, v.key(path, "itemQuantity"))
    if raw_unit is not None:
        where = v.key(path, "itemUnits")
        if isinstance(raw_unit, str):
            unit = v.lookup(raw_unit, where, names.UNITS, mapping.units, "measurement unit")
        else:
            unit = v.code(raw_unit, where, names.UNIT_CODES)
        if unit not in marking.MEASURED_UNITS:
            raise ValidationError(
                where, "a measured item's unit is one of mass, length, area or volume"
            )
    fraction_path = v.key(path, "itemFractionalAmount")
    fraction = _fraction(members.get("itemFractionalAmount"), fraction_path)
    if fraction is not None and status not in (
        PlannedStatus.PIECE_SOLD,
        PlannedStatus.PIECE_RETURNED,
    ):
        raise ValidationError(
            fraction_path, "a part of a pack goes with itemPieceSold or itemPieceReturn only"
        )
    if status.measured:
        for name, raw in (("itemQuantity", raw_quantity), ("itemUnits", raw_unit)):
            if raw is None:
                raise ValidationError(
                    v.key(path, name),
                    f"required: {names.ESTIMATED_STATUS_NAMES[status]} checks a measured "
                    "quantity in its unit",
                )
    expected = _imc_type(members, path)
    _not_a_barcode(code, expected, path)
    return CodeCheckParams(
        code=MarkingCode(
            code=code,
            planned_status=status,
            processing_mode=_mode(members, path),
            fraction=fraction,
            expected_type=expected,
            policy=_policy(members, path, strict=strict),
        ),
        quantity=quantity,
        unit=unit,
    )
