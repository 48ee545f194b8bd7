"""Pure: ATOL's names for payment types, VAT rates, units and the rest; a CRM's own names.

These tables are the one place the names live: the task parser reads tasks with them and the
config checks a `mapping:` section against them. A CRM's own names ("Готівка", "НДС 20%",
"шт") go through `NameMapping`; an unmapped name is an error, never a guess. Text checks
(`text_problem`) say why a string cannot reach the register or the journal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from gateway.domain import fiscal, marking
from gateway.domain.errors import escape_controls

NOT_CONFIGURED: Final[Mapping[str, bool]] = {"not_configured": True}

# "₽" is not in cp1251, and CRMs put it in names; the tax office reads "руб." the same.
DEFAULT_TEXT_REPLACEMENTS: Final[Mapping[str, str]] = {"₽": "руб."}


@dataclass(frozen=True, slots=True)
class PermitDefaults:
    """What an `industryInfo` entry that leaves out `fois`, `date` or `number` gets ([FFD] tags
    1262, 1263, 1264): the box config's `marking.permit_*`.

    The default is the permissive-mode regulation, Government decree 21.11.2023 № 1944, ФОИВ
    "030"; which document a check must cite is not settled (some integrations cite 26.03.2022
    № 477), so the config can change it.
    """

    fois: str = "030"
    date: str = "21.11.2023"
    number: str = "1944"


@dataclass(frozen=True, slots=True)
class NameMapping:
    """A CRM's own names -> ATOL names: payment types, VAT groups, measurement units.

    e.g. payment_types {"Готівка": "cash"}, vat {"НДС 20%": "vat20"}, units {"шт": "piece"}.
    """

    payment_types: Mapping[str, str] = field(default_factory=dict)
    vat: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)
    # Characters a register cannot print -> the text printed instead, e.g. {"₽": "руб."}.
    text: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TEXT_REPLACEMENTS))
    # Set by the box from its register, not from the config file (`NOT_CONFIGURED`):
    # the register's character set (text outside it is refused after `text`; None = any) and
    # the optional receipt data it can carry (names in CARRIED_FIELDS; None = all).
    charset: str | None = field(default="cp1251", metadata=NOT_CONFIGURED)
    carries: frozenset[str] | None = field(default=None, metadata=NOT_CONFIGURED)
    # Set by the box from its `marking:` config section, not from `mapping:`.
    permit: PermitDefaults = field(default_factory=PermitDefaults, metadata=NOT_CONFIGURED)
    marking_strict: bool = field(default=False, metadata=NOT_CONFIGURED)


# Optional receipt data a register driver may or may not carry (ATOL field paths). A driver
# that cannot carry one has it refused by name at the edge, before anything is queued.
CARRIED_FIELDS: Final = frozenset(
    {
        "clientInfo.emailOrPhone",
        "clientInfo.name",
        "clientInfo.vatin",
        "electronically",
        "paymentsPlace",
        "paymentsAddress",
        "additionalAttribute",
        "userAttribute",
        "operator",
        "items.measurementUnit",
        "items.exciseSum",
        "items.countryCode",
        "items.customsDeclaration",
        "items.additionalAttribute",
        "items.department",
        # Marked goods: a register that carries imcParams also runs the marking tasks.
        "items.imcParams",
        "items.industryInfo",
        "industryInfo",
    }
)

# --- name tables [ATOL] ------------------------------------------------------------------

RECEIPT_TYPES: Final[Mapping[str, fiscal.ReceiptType]] = {
    "sell": fiscal.ReceiptType.SELL,
    "sellReturn": fiscal.ReceiptType.SELL_RETURN,
    "buy": fiscal.ReceiptType.BUY,
    "buyReturn": fiscal.ReceiptType.BUY_RETURN,
}
RECEIPT_TYPE_NAMES: Final = {v: k for k, v in RECEIPT_TYPES.items()}
CORRECTIONS: Final = frozenset(
    {"sellCorrection", "sellReturnCorrection", "buyCorrection", "buyReturnCorrection"}
)
# ATOL task types this gateway does not run (yet).
UNSUPPORTED_TASKS: Final = frozenset(
    {
        "reportOfdExchangeStatus",
        "printLastReceiptCopy",
        "nonFiscal",
        # [ATOL] marking tasks without a Shtrih counterpart here (yet).
        "addMarksToBuffer",
        "checkImcWorkState",
        "pingIsm",
        "checkImcTime",
        "checkMarkingCodeValidationsReady",
    }
)

TAXATION: Final[Mapping[str, fiscal.TaxationType]] = {
    "osn": fiscal.TaxationType.OSN,
    "usnIncome": fiscal.TaxationType.USN_INCOME,
    "usnIncomeOutcome": fiscal.TaxationType.USN_INCOME_OUTCOME,
    "esn": fiscal.TaxationType.ESN,
    "patent": fiscal.TaxationType.PATENT,
}
PAYMENT_METHODS: Final[Mapping[str, fiscal.PaymentMethod]] = {
    "fullPrepayment": fiscal.PaymentMethod.FULL_PREPAYMENT,
    "prepayment": fiscal.PaymentMethod.PREPAYMENT,
    "advance": fiscal.PaymentMethod.ADVANCE,
    "fullPayment": fiscal.PaymentMethod.FULL_PAYMENT,
    "partialPayment": fiscal.PaymentMethod.PARTIAL_PAYMENT,
    "credit": fiscal.PaymentMethod.CREDIT,
    "creditPayment": fiscal.PaymentMethod.CREDIT_PAYMENT,
}
# [FFD] tag 1212 by ATOL name. 12 and 16 have an old (ФФД 1.05) and a new name.
PAYMENT_OBJECTS: Final[Mapping[str, int]] = {
    "commodity": 1,
    "excise": 2,
    "job": 3,
    "service": 4,
    "gamblingBet": 5,
    "gamblingPrize": 6,
    "lottery": 7,
    "lotteryPrize": 8,
    "intellectualActivity": 9,
    "payment": 10,
    "agentCommission": 11,
    "pay": 12,
    "composite": 12,
    "another": 13,
    "proprietaryLaw": 14,
    "nonOperatingIncome": 15,
    "otherContributions": 16,
    "insuranceContributions": 16,
    "merchantTax": 17,
    "resortFee": 18,
    "deposit": 19,
    "consumption": 20,
    "soleProprietorCPIContributions": 21,
    "cpiContributions": 22,
    "soleProprietorCMIContributions": 23,
    "cmiContributions": 24,
    "csiContributions": 25,
    "casinoPayment": 26,
    "fundsIssuance": 27,
    "exciseWithoutMarking": 30,
    "exciseWithMarking": 31,
    "commodityWithoutMarking": 32,
    "commodityWithMarking": 33,
}
MAX_PAYMENT_OBJECT: Final = 33
PAYMENT_OBJECT_CODES: Final = frozenset({*range(1, 28), 30, 31, 32, 33})
# [FFD] tag 1212 31 and 33 are marked goods: the ФН refuses them without a checked code.
MARKED_OBJECTS: Final = frozenset({31, 33})
# [ATOL] [KSL] `imcType` -> [FFD] tag 2100; "auto" lets the register recognise the code.
IMC_TYPES: Final[Mapping[str, marking.CodeType | None]] = {
    "auto": None,
    "imcUnrecognized": marking.CodeType.UNRECOGNISED,
    "imcShort": marking.CodeType.SHORT,
    "imcFmVerifyCode88": marking.CodeType.VERIFY88,
    "imcVerifyCode44": marking.CodeType.VERIFY44_UNCHECKED,
    "imcFmVerifyCode44": marking.CodeType.VERIFY44,
    "imcVerifyCode4": marking.CodeType.VERIFY4,
}
# [ATOL] [ATOLJS] `itemEstimatedStatus` -> [FFD] tag 2003.
ESTIMATED_STATUSES: Final[Mapping[str, marking.PlannedStatus]] = {
    "itemPieceSold": marking.PlannedStatus.PIECE_SOLD,
    "itemDryForSale": marking.PlannedStatus.MEASURED_SOLD,
    "itemPieceReturn": marking.PlannedStatus.PIECE_RETURNED,
    "itemDryReturn": marking.PlannedStatus.MEASURED_RETURNED,
    "itemStatusUnchanged": marking.PlannedStatus.UNCHANGED,
}
ESTIMATED_STATUS_NAMES: Final = {v: k for k, v in ESTIMATED_STATUSES.items()}
# [FFD] tag 2108 by ATOL name.
UNITS: Final[Mapping[str, int]] = {
    "piece": 0,
    "gram": 10,
    "kilogram": 11,
    "ton": 12,
    "centimeter": 20,
    "decimeter": 21,
    "meter": 22,
    "squareCentimeter": 30,
    "squareDecimeter": 31,
    "squareMeter": 32,
    "milliliter": 40,
    "liter": 41,
    "cubicMeter": 42,
    "kilowattHour": 50,
    "gkal": 51,
    "day": 70,
    "hour": 71,
    "minute": 72,
    "second": 73,
    "kilobyte": 80,
    "megabyte": 81,
    "gigabyte": 82,
    "terabyte": 83,
    "otherUnits": 255,
}
UNIT_CODES: Final = frozenset(UNITS.values())
UNIT_NAMES: Final = {code: name for name, code in UNITS.items()}
VATS: Final[Mapping[str, fiscal.Vat]] = {v.value: v for v in fiscal.Vat}
# ATOL also takes the bare rate: "20" for vat20, "120" for vat120.
VATS_AND_BARE_RATES: Final[Mapping[str, fiscal.Vat]] = {
    **VATS,
    **{v.value.removeprefix("vat"): v for v in fiscal.Vat if v.value.startswith("vat")},
}
PAYMENT_TYPES: Final[Mapping[str, fiscal.PaymentType]] = {p.value: p for p in fiscal.PaymentType}

# --- text ------------------------------------------------------------------------------------

# C0 controls and DEL: the register prints none of them, and a NUL cuts a C string short.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def replace_text(value: str, mapping: NameMapping) -> str:
    """`value` with the configured replacements applied ("₽" -> "руб.")."""
    for char, replacement in mapping.text.items():
        value = value.replace(char, replacement)
    return value


def unstorable(value: str) -> str | None:
    """Why `value` cannot be kept as UTF-8 (in the journal, in an answer), or None.

    A Python string from JSON can hold a lone surrogate (the escape "\\ud800"); UTF-8 has no
    form for it, so SQLite and every client would fail on it later.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"holds U+{ord(value[err.start]):04X}, a lone surrogate, which is not text"
    return None


def text_problem(value: str, charset: str | None) -> str | None:
    """Why the register cannot print `value` (replacements already applied), or None."""
    problem = unstorable(value)
    if problem is not None:
        return problem
    if _CONTROL.search(value):
        return "contains control characters"
    if charset is not None:
        try:
            value.encode(charset)
        except UnicodeEncodeError as err:
            char = value[err.start]
            return (
                f"character {char!r} (U+{ord(char):04X}) cannot be printed by the register "
                f"({charset}); remove it or add a replacement under mapping.text "
                "in the box config"
            )
        except UnicodeError:
            return "contains characters that are not valid text"
    return None


def shown(text: str) -> str:
    """`text` safe to quote in an error: a lone surrogate or a control character becomes its
    escape (`\\udc80`, `\\x1f`), so no log line or answer carries raw control bytes."""
    if text.isascii() and text.isprintable():
        return text  # the usual member name: nothing to escape
    return escape_controls(text.encode("utf-8", "backslashreplace").decode("utf-8"))
