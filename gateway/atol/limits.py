"""Pure: how large a request, a task and each of its values may be."""

from __future__ import annotations

from typing import Final

from gateway.domain import fiscal

MAX_BODY_BYTES: Final = 32768  # ATOL's own limit for one request
# Positions per receipt. A 32 KB body holds roughly this many real lines; a discounted line may
# print as two, and the ФН caps the size of one fiscal document, so longer orders are split.
MAX_ITEMS: Final = 100
MAX_PAYMENTS: Final = 10  # five payment types; more entries than this is a client bug
MAX_DEPTH: Final = 32  # nesting of one task; real tasks are 4-5 levels deep
# 9 999 999 999.99: fits the 5-byte sums of Shtrih-M commands with room to spare.
MAX_MONEY: Final = 999_999_999_999  # kopecks
MAX_QUANTITY: Final = 100_000_000 * fiscal.QTY_SCALE  # ×10⁶; the 6-byte quantity field holds more
MAX_DEPARTMENT: Final = 16

# [FFD] string limits: tags 1030, 1021, 1008, 1187, 1009, 1192, 1085, 1086, 1227, 1191, 1231.
MAX_NAME_CHARS: Final = 128
MAX_OPERATOR_CHARS: Final = 64
MAX_CONTACT_CHARS: Final = 64
MAX_PLACE_CHARS: Final = 64
MAX_ADDRESS_CHARS: Final = 256
MAX_RECEIPT_ATTRIBUTE_CHARS: Final = 16
MAX_USER_ATTRIBUTE_NAME_CHARS: Final = 64
MAX_USER_ATTRIBUTE_VALUE_CHARS: Final = 175
MAX_BUYER_CHARS: Final = 256
MAX_ITEM_ATTRIBUTE_CHARS: Final = 64
MAX_CUSTOMS_CHARS: Final = 32

# Marked goods. A Shtrih frame holds 255 bytes: FF61h spends 10 on its header and up to 45 on
# the measured-sale TLV (2108, 1023, 1291), so a code of up to 200 bytes always fits [PROTO].
MAX_IMC_BYTES: Final = 200
MAX_MARK_CHECKS: Final = MAX_ITEMS  # codes in one validateMarks task
# [FFD] 1260/1261: 1262 ФОИВ id (3 characters), 1263 date dd.mm.yyyy, 1264 ≤ 32, 1265 ≤ 256.
MAX_INDUSTRY_ATTRIBUTES: Final = 4  # entries of one industryInfo (each becomes one 1260/1261)
MAX_PERMIT_NUMBER_CHARS: Final = 32
MAX_INDUSTRY_VALUE_CHARS: Final = 256
# A Shtrih register takes a whole 1260 (item) or 1261 (receipt) STLV in one FF4Dh / FF0Ch TLV
# block, and those blocks hold at most 250 bytes [PROTO]; 249 leaves the last byte spare. The
# block is the STLV's 4-byte header and four cp1251 string tags of 4 + length bytes each, so a
# long 1265 refuses sooner than its own 256-character [FFD] limit.
MAX_INDUSTRY_TLV_BYTES: Final = 249
