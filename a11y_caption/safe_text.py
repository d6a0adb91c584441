"""Text from outside (file names, server answers, error text, OCR) made safe to show or store.

A file name may hold any bytes but "/" and NUL: Python gives undecodable bytes to us as lone
surrogates (``os.fsdecode``), which cannot be encoded as UTF-8 and so break printing, JSON and
SQLite alike. Any text may hold terminal escape sequences (which rewrite or hide what the terminal
shows, and what the screen reader then reads) and line breaks (which split a one-line record).
"""

from __future__ import annotations

import os
import unicodedata

__all__ = ["one_line", "path_text", "terminal_text"]

# Kept by terminal_text: the line breaks and tabs of a multi-line answer.
_KEPT = frozenset("\n\t")


def path_text(path: str | os.PathLike | bytes) -> str:
    """A path as valid text: undecodable bytes become ``\\xNN`` (the same path always gives the
    same text, so it can serve as a key); every valid name is unchanged."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def terminal_text(text: str) -> str:
    """``text`` with control characters (escape sequences, carriage returns, bells...) and lone
    surrogates written as visible escapes; line breaks and tabs stay."""
    return _escape(text, _KEPT)


def one_line(text: str) -> str:
    """``terminal_text`` for a one-line field: line breaks and tabs are escaped too."""
    return _escape(text, frozenset())


_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _escape(text: str, kept: frozenset[str]) -> str:
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in kept or (category not in ("Cc", "Cs", "Zl", "Zp") and ch not in _BIDI_CONTROLS):
            out.append(ch)  # letters, marks, spaces (a no-break space too), the kept breaks
        elif category == "Cs" and 0xDC80 <= ord(ch) <= 0xDCFF:  # an undecodable byte of a name
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:  # controls (ESC, CR, BEL...), line separators, bidi overrides, other lone surrogates
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    return "".join(out)
