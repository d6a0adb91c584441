"""Recognise blank, uniform and near-black images before any model runs.

A caption model shown a black screen invents something; a screen reader user needs to hear that
the screen is black (locked, asleep, or a screen curtain is on) instead.
"""

from __future__ import annotations

from PIL import Image

__all__ = ["blank_description"]

_DARK = 24  # brightest level (0-255) of a "near-black" image
_DEVIATION = 32  # grey levels away from the dominant shade that count as content


def blank_description(image: Image.Image, subject: str = "image") -> str | None:
    """One sentence when ``image`` shows nothing, else None.

    Content is any pixel far from the dominant shade; a few dozen such pixels (a single short
    word at 12 px) are enough to count as not blank, so real screens are never silenced.
    """
    grey = image.convert("L")
    if max(grey.size) > 2048:
        grey.thumbnail((2048, 2048), Image.Resampling.NEAREST)  # nearest keeps thin text at full contrast
    lo, hi = grey.getextrema()
    if hi <= _DARK:
        return _sentence(subject, "black")
    hist = grey.histogram()
    dominant = max(range(256), key=hist.__getitem__)
    content = sum(n for v, n in enumerate(hist) if abs(v - dominant) > _DEVIATION)
    if content > max(16, grey.width * grey.height * 2e-5):
        return None
    shade = "black" if dominant <= 40 else "white" if dominant >= 215 else "a single plain colour"
    return _sentence(subject, shade)


def _sentence(subject: str, shade: str) -> str:
    if subject == "screen" and shade == "black":
        return "The screen is black: it may be locked, asleep, or behind a screen curtain."
    if shade == "a single plain colour":
        return f"The {subject} is blank: {shade}, with no text or pictures."
    return f"The {subject} is blank: plain {shade}, with no text or pictures."
