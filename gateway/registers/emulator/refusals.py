"""Error codes the emulated register answers with ([PROTO] "Коды ошибок" pp.67–70).

The same ERR byte carries KKT errors and, for FFxxh commands, ФН errors; both tables are
Shtrih's own numbering.
"""

from __future__ import annotations

import enum


class Kkt(enum.IntEnum):
    """KKT (register) errors."""

    NO_MARKING = 0x32  # FF68h: the ФН is registered without the marking flag ([JPOS])
    BAD_PARAMETERS = 0x33  # «Некорректные параметры в команде» p.68
    BAD_FOR_SETTINGS = 0x35  # «Некорректный параметр при данных настройках» p.68
    UNSUPPORTED = 0x37
    PAYMENTS_BELOW_TOTAL = 0x45
    NOT_ENOUGH_CASH = 0x46  # «Не хватает наличности в кассе» p.68
    WRONG_RECEIPT_TYPE = 0x49  # operation impossible in an open receipt of this type
    RECEIPT_OPEN = 0x4A
    CASHLESS_ABOVE_TOTAL = 0x4D
    SHIFT_OVER_24H = 0x4E
    WRONG_PASSWORD = 0x4F
    WAITING_CONTINUE_PRINT = 0x58
    # «кассовое ядро»: FF67h is not allowed in the open document, extended 005E0013h
    # ([NG] examples #42): marked goods only in приход and возврат прихода.
    NOT_IN_THIS_DOCUMENT = 0x5E
    NO_PAPER = 0x6B
    WRONG_SUBMODE = 0x72
    WRONG_MODE = 0x73
    PRINTER_SENSORS = 0x77  # "printer error: no signal from the sensors" — used for the cover
    DATE_MISMATCH = 0x7C
    CONFIRM_DATE = 0xC0


class Fn(enum.IntEnum):
    """ФН errors."""

    WRONG_STATE = 0x02
    EXPIRED = 0x05
    BAD_DATETIME = 0x07
    NO_DATA = 0x08
    BAD_VALUE = 0x09  # «Некорректное значение параметров команды» p.67
    TLV_TOO_BIG = 0x10  # «Превышение размеров TLV данных» p.67
    OFD_WAIT_EXHAUSTED = 0x15
    SHIFT_OVER_24H = 0x16
    # Marking ([JPOS] messages_ru.txt): A0h the ФН is registered without marking, A1h the
    # marking commands came in the wrong order, A2h marking temporarily blocked, A3h the table
    # of checked codes is full, ACh the code was never checked (accepted) in this ФН.
    MARKING_FORBIDDEN = 0xA0
    MARKING_SEQUENCE = 0xA1
    MARKING_BLOCKED = 0xA2
    MARKING_TABLE_FULL = 0xA3
    MISSING_TAGS = 0xA4  # «В блоке TLV отсутствуют необходимые реквизиты» p.70
    MARK_NOT_CHECKED = 0xAC


class Refused(Exception):
    """Raised inside a command handler: the register answers with `code`."""

    def __init__(self, code: int, extended: int = 0) -> None:
        super().__init__(f"refused with {code:#04x}")
        self.code = code
        self.extended = extended  # «кассовое ядро»'s extended error code, 0 when none
