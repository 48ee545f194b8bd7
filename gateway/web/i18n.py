"""Pure: the page language (cookie, Accept-Language, config) and the translator."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from gateway.web.texts import TEXTS

LANGUAGES: Final = ("en", "ru", "uk")  # the column order of TEXTS
LANGUAGE_NAMES: Final = {"ru": "Русский", "uk": "Українська", "en": "English"}
_ALIASES: Final = {"ua": "uk", "be": "ru", "kk": "ru"}  # "ua" is a common mistake for Ukrainian
_RANGE: Final = re.compile(
    r"^\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$"
)

Translate = Callable[..., str]


def supported(code: str | None) -> str | None:
    """The language for a code ("uk", "uk-UA", "ua"), or None."""
    if not code:
        return None
    base = code.strip().lower().split("-")[0]
    base = _ALIASES.get(base, base)
    return base if base in LANGUAGES else None


def from_accept_language(header: str | None) -> str | None:
    """The best supported language of an Accept-Language header (RFC 9110 q-values)."""
    if not header:
        return None
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(header.split(",")[:32]):
        m = _RANGE.match(part)
        if m is None:
            continue
        try:
            q = float(m[2]) if m[2] is not None else 1.0
        except ValueError:
            continue
        lang = supported(m[1])
        if lang is None or q <= 0:
            continue
        # Highest q wins; on a tie the one listed first.
        if best is None or (q, -position) > (best[0], best[1]):
            best = (q, -position, lang)
    return best[2] if best else None


def choose(cookie: str | None, accept_language: str | None, default: str) -> str:
    """The person's own choice, then the browser's, then the box's configured language."""
    return supported(cookie) or from_accept_language(accept_language) or default


def translator(lang: str) -> Translate:
    """t(key, **params) in `lang`; an unknown key shows as itself (never a crash on a page)."""
    column = LANGUAGES.index(lang)

    def t(key: str, **params: object) -> str:
        row = TEXTS.get(key)
        if row is None:
            return key
        text = row[column]
        if not params:
            return text
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text

    return t
