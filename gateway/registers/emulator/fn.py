"""The emulated ФН (fiscal storage): document kinds, phases and a deterministic fiscal sign.

A real ФН signs each document with a key only it holds. The emulator derives the sign with
HMAC-SHA256 over the ФН number, the document number, its date-time and its total, truncated
to 32 bits, so the same document always gets the same sign and tests can recompute it.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac

# ФФД document types as FF0Ah reports them.
DOC_REGISTRATION = 1
DOC_SHIFT_OPEN = 2
DOC_RECEIPT = 3
DOC_SHIFT_CLOSE = 5

# FF01h "current document" codes ([PROTO] FF01h).
CURRENT_NONE = 0x00
CURRENT_SHIFT_OPEN = 0x02
CURRENT_RECEIPT = 0x04
CURRENT_SHIFT_CLOSE = 0x08

# FF01h life phase bits: 0 setup done, 1 fiscal mode open, 2 fiscal mode closed, 3 archive sent.
PHASE_FISCAL = 0b0011

# FF01h warning bits ([PROTO] FF01h).
WARN_REPLACE_URGENTLY = 1 << 0
WARN_RESOURCE_EXHAUSTED = 1 << 1
WARN_MEMORY_ALMOST_FULL = 1 << 2
WARN_OFD_TIMEOUT = 1 << 3

_SIGN_KEY = b"fiscal-gateway emulator FN"

# FF46h quantities have six digits after the point ([PROTO] FF46h p.53).
QTY_SCALE = 1_000_000


class Operation(enum.IntEnum):
    """Settlement sign, ФФД tag 1054, as FF46h and FF0Ah carry it."""

    SELL = 1
    SELL_RETURN = 2
    BUY = 3
    BUY_RETURN = 4


# Shtrih receipt type (8Dh, high nibble of mode 8): 0 sale, 1 buy, 2 sale return, 3 buy return.
RECEIPT_TYPE_OF_OPERATION = {
    Operation.SELL: 0,
    Operation.BUY: 1,
    Operation.SELL_RETURN: 2,
    Operation.BUY_RETURN: 3,
}
OPERATION_OF_RECEIPT_TYPE = {v: k for k, v in RECEIPT_TYPE_OF_OPERATION.items()}

# Paper-tape `type` of each Shtrih receipt type (ATOL task names).
TAPE_TYPE_OF_RECEIPT_TYPE = {0: "sell", 1: "buy", 2: "sellReturn", 3: "buyReturn"}


def round_qty(kopecks_x_qty: int) -> int:
    """price × quantity (kopecks × 10⁶) to whole kopecks, half up ([GUIDE] p.7 note)."""
    return (kopecks_x_qty + QTY_SCALE // 2) // QTY_SCALE


def fn_time(moment: dt.datetime) -> dt.datetime:
    """A moment as the ФН stores it: to the minute ([PROTO] FN date-time is YY MM DD HH MM)."""
    return moment.replace(second=0, microsecond=0)


def fiscal_sign(fn_number: str, number: int, when: dt.datetime, total: int) -> int:
    """The 32-bit fiscal sign (ФП) of a document; deterministic."""
    message = f"{fn_number}|{number}|{fn_time(when).isoformat()}|{total}".encode()
    digest = hmac.new(_SIGN_KEY + fn_number.encode(), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big")
