"""Pure: marked goods (Честный знак) in ФФД 1.2 terms, shared by the task parser, the drivers
and the emulator.

Tags ([FFD]): 2000 the marking code (КМ) as scanned bytes, GS (1Dh) kept between the GS1
application identifiers; 2003 planned status; 2102 processing mode (always 0); 2004 the ФН's
own check; 2100 the code type the ФН recognised; 2106 the check result of an item; 1291
fractional quantity {1293 numerator, 1294 denominator}; 1260 industry attribute of an item
{1262 ФОИВ id, 1263 document date, 1264 document number, 1265 value}, 1261 the same for the
whole receipt.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class PlannedStatus(enum.IntEnum):
    """Tag 2003: what the sale does to the item's status in the marking system."""

    PIECE_SOLD = 1
    MEASURED_SOLD = 2
    PIECE_RETURNED = 3
    MEASURED_RETURNED = 4
    UNCHANGED = 255

    @property
    def measured(self) -> bool:
        """A weighed or otherwise measured item: the check carries 2108 and 1023."""
        return self in (PlannedStatus.MEASURED_SOLD, PlannedStatus.MEASURED_RETURNED)


class CodeType(enum.IntEnum):
    """Tag 2100: the kind of code the ФН recognised."""

    UNRECOGNISED = 0
    SHORT = 1  # tobacco pack
    VERIFY88 = 2  # 88-character check code, checked in the ФН
    VERIFY44_UNCHECKED = 3  # 44-character check code, not checked in the ФН
    VERIFY44 = 4  # 44-character check code, checked in the ФН
    VERIFY4 = 5  # 4-character check code, not checked in the ФН


class MarkingPolicy(enum.Enum):
    """What the client allows when a code's check is not positive.

    STRICT: the marking system (ОИСМ) must answer and confirm the code and its status (ATOL
    `validateMarkingCodes: true`). OFFLINE_OK: a definite "no" from the ФН or the ОИСМ refuses
    the item; no answer at all (autonomous mode, timeout) is sold and reported. ANY: the client
    decided already; every answer is recorded and nothing is refused (KKMServer `AcceptOnBad`).
    """

    STRICT = "strict"
    OFFLINE_OK = "offline_ok"
    ANY = "any"


# Tag 2106 bits ([FFD] table of 2106; the vendor drivers read the same bits).
CHECK_DONE = 0x01  # the code's check code (КП КМ) was checked
CHECK_POSITIVE = 0x02  # ... and it was right
ISM_DONE = 0x04  # the ОИСМ checked the item's status
ISM_POSITIVE = 0x08  # ... and the planned status is right
AUTONOMOUS = 0x10  # the register works without the ОИСМ (autonomous mode)
FULLY_POSITIVE = CHECK_DONE | CHECK_POSITIVE | ISM_DONE | ISM_POSITIVE

# FF61h fnCode 20h: the ФН refused the ОИСМ's answer; the next byte says why ([JPOS], [OPOS]).
SERVER_ANSWER_REFUSED = 0x20
ANSWER_REFUSAL_REASONS = {
    1: "bad fiscal sign of the answer",
    2: "bad answer format",
    3: "wrong request number",
    4: "wrong ФН number",
    5: "bad CRC",
    7: "bad length",
}

# [FFD] tag 2108 units a measured (weighed, poured, cut) item may be sold in: mass 10–12,
# length 20–22, area 30–32, volume 40–42. Pairs, packs and "other" (255) are not measures.
MEASURED_UNITS = frozenset({10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42})

# Tag 2004 bits: the ФН's own check of the code.
LOCAL_CHECKED = 0x01
LOCAL_POSITIVE = 0x02


class NotCheckedReason(enum.IntEnum):
    """Why the ФН did not check a code itself (the byte after 2004 in the FF61h answer)."""

    CHECKED = 0
    TYPE_NOT_CHECKABLE = 1
    NO_KEYS = 2
    NO_GS1_AI_91_92 = 3
    OTHER = 4


@dataclass(frozen=True, slots=True)
class MarkingCode:
    """The marking code of one item and what the client asks of it.

    `fraction` is tag 1291 (numerator, denominator) for part of a piece; `expected_type` the
    client's own idea of the code type (None: the register recognises it); `claimed_result` the
    2106 bits the client says an earlier check gave, which the register's own check may not
    contradict.
    """

    code: bytes
    planned_status: PlannedStatus
    processing_mode: int = 0
    fraction: tuple[int, int] | None = None
    expected_type: CodeType | None = None
    claimed_result: int | None = None
    policy: MarkingPolicy = MarkingPolicy.OFFLINE_OK

    def printable(self) -> str:
        """The code for logs and errors: GS shown as <GS>, the rest as it was scanned."""
        return self.code.decode("latin-1").replace("\x1d", "<GS>")


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """What a register answered to the check of one code (Shtrih FF61h).

    `answered` is False when the ОИСМ gave no answer (autonomous mode, no connection, timeout);
    then `result` is the 2106 the register will record without it (None when unknown).
    `server_code` is the ФН's code for the exchange (0 fine, 20h bad answer, FFh timeout).
    `server_tags` are the ОИСМ answer's tags (2105, 2109, 2005…) as the register passed them.
    """

    local: int  # 2004
    reason: NotCheckedReason | int
    code_type: int  # 2100
    answered: bool
    result: int | None  # 2106
    server_code: int | None = None
    server_tags: tuple[tuple[int, bytes], ...] = ()
    # After server_code 20h: why the ФН refused the ОИСМ's answer (ANSWER_REFUSAL_REASONS).
    answer_refusal: int | None = None

    @property
    def answer_refused(self) -> bool:
        """The ОИСМ answered, but the ФН refused its answer (fnCode 20h: bad fiscal sign,
        format, request number…): neither a "no" about the goods nor an absence of answer."""
        return self.server_code == SERVER_ANSWER_REFUSED

    @property
    def answer_refused_text(self) -> str | None:
        """ "the ФН refused the marking system's answer (<why>)", when it did."""
        if not self.answer_refused:
            return None
        why = self.answer_refusal
        said = (
            "reason not given"
            if why is None
            else ANSWER_REFUSAL_REASONS.get(why, f"reason code {why}")
        )
        return f"the ФН refused the marking system's answer ({said})"

    @property
    def local_negative(self) -> bool:
        """The ФН checked the code and found it wrong (forged or damaged)."""
        return bool(self.local & LOCAL_CHECKED) and not self.local & LOCAL_POSITIVE

    @property
    def ism_negative(self) -> bool:
        """The ОИСМ answered and said no (not found, sold already, withdrawn, wrong status)."""
        if not self.answered or self.result is None:
            return False
        r = self.result
        return bool(
            (r & CHECK_DONE and not r & CHECK_POSITIVE) or (r & ISM_DONE and not r & ISM_POSITIVE)
        )

    @property
    def positive(self) -> bool:
        """The ОИСМ answered and confirmed the code and its status."""
        return (
            self.answered
            and self.result is not None
            and self.result & FULLY_POSITIVE == FULLY_POSITIVE
            and not self.local_negative
        )

    def refusal(self, policy: MarkingPolicy) -> str | None:
        """Why `policy` refuses this code, in words for a cashier; None when it may be sold.

        An answer the ФН refused (fnCode 20h, `answer_refused`) says nothing about the goods,
        yet the ОИСМ was reached, so it is not an absence of answer either. The choice: STRICT
        refuses it in its own words (the client asked for a confirmed code and has none);
        OFFLINE_OK sells it as it sells a check without an answer, and the result and the
        logs name it apart (`answer_refused_text`), so it can be told from a plain timeout.
        """
        if policy is MarkingPolicy.ANY:
            return None
        if self.local_negative:
            return "the fiscal storage found the code invalid (forged or misread)"
        if self.ism_negative:
            return "the marking system refused the code (unknown, sold already or withdrawn)"
        refused = self.answer_refused_text
        if policy is MarkingPolicy.STRICT and refused is not None:
            return (
                f"{refused}, so the code is not confirmed; sell it only when the client "
                "allows a sale without the marking system's answer"
            )
        if policy is MarkingPolicy.STRICT and not self.positive:
            return (
                "the marking system did not confirm the code (no answer); sell it only when "
                "the client allows a sale without the answer"
            )
        return None


def recorded_check(result: int) -> CodeCheck:
    """A check rebuilt from the 2106 a document recorded (the ФН archive keeps no FF61h
    answer): bits 0–1 are the ФН's own check (2004), bit 2 says the ОИСМ answered; the code
    type (2100) is not kept, so it is UNRECOGNISED."""
    local = result & (LOCAL_CHECKED | LOCAL_POSITIVE)
    return CodeCheck(
        local=local,
        reason=NotCheckedReason.CHECKED if local else NotCheckedReason.OTHER,
        code_type=CodeType.UNRECOGNISED,
        answered=bool(result & ISM_DONE),
        result=result,
    )


@dataclass(frozen=True, slots=True)
class MarkResult:
    """The marking outcome of receipt item `index` (0-based, in the task's item order)."""

    index: int
    code: bytes
    check: CodeCheck
    result: int | None  # 2106 as bound into the document


@dataclass(frozen=True, slots=True)
class MarkingState:
    """The register's marking state (Shtrih FF70h), for health and the status page.

    `check_state`: 0 blocked (table or notification area full), 1 nothing in progress, 2 a
    code checked and waiting for accept or reject, 3 request formed, 4 answer passed to the ФН.
    `notification_state`: 0 none, 1 being formed, 2 blocked (area full). `area_fill`: 0 under
    50 %, 1 50–80 %, 2 80–90 %, 3 over 90 %, 4 full. `unsent` is the notifications still to
    be sent to the ОИСМ (the autonomous mode's queue).
    """

    check_state: int
    notification_state: int
    flags: int
    saved_results: int
    codes_in_notification: int
    area_fill: int
    unsent: int

    @property
    def waiting_decision(self) -> bool:
        """A checked code waits for accept or reject."""
        return self.check_state in (2, 3, 4)


@dataclass(frozen=True, slots=True)
class IsmExchange:
    """The register's exchange with the ОИСМ (Shtrih FF68h): notifications not yet sent."""

    state: int  # 0 idle, 1 reading a notification, 2 waiting for the receipt (квитанция)
    unsent: int
    current_number: int
    first_unsent_at: str | None  # as the register gives it, "YYYY-MM-DDTHH:MM" or None
    fill_percent: int
    # The ФН works autonomously (Shtrih FF68h: ФН error 02h): it has no exchange with the
    # ОИСМ, so the other fields are empty; its notifications wait for an upload by hand
    # (FF71h–FF73h) and their count is in `MarkingState.unsent`.
    autonomous: bool = False

    @classmethod
    def autonomous_mode(cls) -> IsmExchange:
        """The exchange of a ФН in autonomous mode: none."""
        return cls(
            state=0,
            unsent=0,
            current_number=0,
            first_unsent_at=None,
            fill_percent=0,
            autonomous=True,
        )


@dataclass(frozen=True, slots=True)
class IndustryAttribute:
    """Tag 1260 of an item (1261 of a receipt): the permissive-mode proof and the like.

    1262 the federal body's id ("030" for the marking system), 1263 the regulation's date
    (dd.mm.yyyy), 1264 its number, 1265 the value (e.g. "UUID=…&Time=…" of the check).
    """

    fois: str
    document_date: str
    document_number: str
    value: str


def _type_family(code_type: int) -> int:
    """A 44-character check code is type 3 or 4 (tag 2100) as the ФН has its key or not."""
    if code_type == CodeType.VERIFY44_UNCHECKED:
        return int(CodeType.VERIFY44)
    return code_type


def refusal(code: MarkingCode, check: CodeCheck) -> str | None:
    """Why the item's policy refuses the check, in words for a cashier; None to sell it.

    Beyond `CodeCheck.refusal`: the code type the client expects (imcType) must be the one the
    ФН recognised, and the 2106 bits the client claims from an earlier check must not be
    missing from the register's answer. `MarkingPolicy.ANY` refuses nothing.
    """
    why = check.refusal(code.policy)
    if why is not None or code.policy is MarkingPolicy.ANY:
        return why
    expected = code.expected_type
    if expected is not None and _type_family(check.code_type) != _type_family(expected):
        return (
            f"the register recognised a code of type {check.code_type} (tag 2100), the "
            f"request says {expected.name.lower()} ({int(expected)})"
        )
    claimed = code.claimed_result
    if claimed is not None and check.answered and check.result is not None:
        missing = claimed & FULLY_POSITIVE & ~check.result
        if missing:
            return (
                f"the register's check (2106 = {check.result:#04x}) does not confirm the "
                f"check result the request claims ({claimed:#04x})"
            )
    return None
