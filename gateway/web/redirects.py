"""Where the page may send a browser after login or a language switch: this site only.

Pure. Browsers are lenient with a Location header: they drop tabs and newlines, read a
backslash as a slash and `//host` as another site, so `/\\t/evil.example/` or `/%2F/evil`
can leave the site. Only a plain same-site path is accepted, checked as sent and after every
round of percent-decoding; anything else goes to the overview.
"""

from __future__ import annotations

import unicodedata
import urllib.parse
from typing import Final

HOME: Final = "/"
_DECODE_ROUNDS: Final = 4  # more nested encodings than this are refused outright
# Unicode categories a browser may strip or read as a separator: controls, format
# characters (zero-width, direction marks), separators, surrogates, private use, unassigned.
_BAD_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def _plain_path(text: str) -> bool:
    if not text.startswith("/") or "//" in text or "\\" in text:
        return False
    return not any(ch.isspace() or unicodedata.category(ch) in _BAD_CATEGORIES for ch in text)


def safe_next(raw: str | None) -> str:
    """`raw` when it is a path on this site, else "/"."""
    if not raw or not raw.isascii() or not raw.isprintable():
        return HOME  # a browser sends a path percent-encoded: anything else is forged
    text = raw
    for _ in range(_DECODE_ROUNDS):
        if not _plain_path(text):
            return HOME
        decoded = urllib.parse.unquote(text, errors="replace")
        if decoded == text:
            return raw
        text = decoded
    return HOME
