"""The text OCR found on an image, with where each line is: what a grounded prompt lists, and what
a grounded description may quote (describe/grounding.py checks the quotes)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

__all__ = ["EDGE_PUNCTUATION", "MAX_PROMPT_CHARS", "ScreenLine", "ScreenText", "normalise", "position_label",
           "screen_text_from"]

# The OCR text given to the model at most (about 500 tokens of Qwen2's tokenizer, about 2 s of
# prefill on 2 CPU cores): a screen full of text must not make the prompt, and so the time to the
# first word, grow without bound. Quotes are checked against every line found, listed or not.
MAX_PROMPT_CHARS = 2000

_ROWS = ("top", "middle", "bottom")
_COLUMNS = ("left", "centre", "right")


@dataclass(frozen=True)
class ScreenLine:
    text: str
    position: str  # the nearest cell of a 3x3 grid: "top left", "middle centre", "bottom right", ...


@dataclass(frozen=True)
class ScreenText:
    """The text OCR found on an image, in reading order: what a grounded description may quote."""

    lines: tuple[ScreenLine, ...]

    def listed(self) -> tuple[ScreenLine, ...]:
        """The lines that go into the prompt: the first ones, up to MAX_PROMPT_CHARS."""
        out, used = [], 0
        for line in self.lines:
            used += len(line.text) + 1
            if used > MAX_PROMPT_CHARS:
                break
            out.append(line)
        return tuple(out)

    def as_json(self) -> list[dict]:
        return [{"text": line.text, "position": line.position} for line in self.listed()]

    def contains(self, quote: str) -> bool:
        """Whether ``quote`` is on the screen, tolerant of case, spacing, punctuation at its ends and
        small OCR slips (one character in ten, for quotes of ten characters or more)."""
        q = normalise(quote).strip(EDGE_PUNCTUATION)
        if not q:
            return True
        haystack = self._haystack()
        if q in haystack:
            return True
        allowed = len(q) // 10
        if not allowed:
            return False
        # Anchor on the longest run the quote shares with the screen, then count how much of the
        # quote appears, in order, in the stretch of screen text it would cover there.
        a, b, size = SequenceMatcher(None, haystack, q, autojunk=False).find_longest_match(0, len(haystack), 0, len(q))
        if not size:
            return False
        start = max(0, a - b - allowed)
        window = haystack[start:a - b + len(q) + allowed]
        matched = sum(m.size for m in SequenceMatcher(None, q, window, autojunk=False).get_matching_blocks())
        return len(q) - matched <= allowed

    def _haystack(self) -> str:
        # Lines are joined without a separator: spacing is ignored anyway, and a quote may run on
        # from one line to the next.
        return "".join(normalise(line.text) for line in self.lines)


def position_label(left: float, top: float, right: float, bottom: float, width: int, height: int) -> str:
    """The cell of a 3x3 grid that holds the centre of a box: "top left" ... "bottom right"."""
    x, y = (left + right) / 2, (top + bottom) / 2
    column = _COLUMNS[min(2, max(0, int(3 * x / max(1, width))))]
    row = _ROWS[min(2, max(0, int(3 * y / max(1, height))))]
    return f"{row} {column}"


def screen_text_from(lines: Sequence, size: tuple[int, int]) -> ScreenText:
    """ScreenText from OCR lines with boxes (captioner.ocr.OcrLine) of an image of ``size``."""
    width, height = size
    return ScreenText(tuple(ScreenLine(line.text, position_label(line.left, line.top, line.right, line.bottom,
                                                                 width, height)) for line in lines))


EDGE_PUNCTUATION = ".,;:!?\u2026"


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return "".join(text.split())
