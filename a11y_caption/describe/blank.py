"""Recognise blank, uniform and near-black images before any model runs.

A caption model shown a black screen invents something; a screen reader user needs to hear that
the screen is black (locked, asleep, or a screen curtain is on) instead. Silencing real content is
as bad as inventing it, so content is anything that differs from the dominant colour in brightness
*or* in colour: a chart in mid-tone colours on grey, red on green, a logo as light as its background.
"""

from __future__ import annotations

import math

from PIL import Image, ImageChops

__all__ = ["blank_description"]

# Distances are measured in YCbCr (full range, as JPEG): Y is the Rec. 601 luma that Pillow's "L"
# conversion computes, Cb and Cr the two colour-difference axes. A pixel is content when
# (dY / _DEVIATION)^2 + (dCb^2 + dCr^2) / _CHROMA^2 > 1 from the dominant colour: a change in
# brightness alone must pass 32 levels, as always; a change in colour alone, 12 units of chroma
# (about 8 to 17 CIE76 delta E at mid grey, by hue: a plainly visible tint; the 32 levels of
# brightness are about 11 to 14).
# Screen noise of a few levels and JPEG's artefacts on a plain colour stay well inside.
_DEVIATION = 32  # brightness levels (0-255) away from the dominant colour that count as content
_CHROMA = 12  # chroma (Cb/Cr units, 0-255 scale) away from it that counts as content; also the
# most a shade may have to be called black or white
_GRID = 2048  # the longest side on which the speck allowance is reckoned (the check's former working size)
_SAMPLE = 1024  # longest side of the first look, a subset of the image's own pixels
_SCORE = 100  # a pixel's deviation score on the boundary of content (see _deviation)
_NEAR = 6  # levels from the dominant colour, in each of R, G and B, that are noise, never content


def blank_description(image: Image.Image, subject: str = "image") -> str | None:
    """One sentence when ``image`` shows nothing, else None.

    Content is any pixel far from the dominant colour, in brightness or in colour; a few dozen such
    pixels (a single short word at 12 px) are enough to count as not blank, so real screens are
    never silenced, while a stray speck is not content: up to 16 pixels, or 2e-5 of the image
    (reckoned at 2048 px on the longest side: 47 pixels on a 4K screen), whichever is more.

    Fast on large screenshots: a nearest-neighbour sample (pixels of the image itself) settles
    almost every real screen; only an image that looks blank there is looked at pixel by pixel,
    so a 1-px line in a row or column the sample skipped is still found.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    w, h = rgb.size
    if not w or not h:
        return None  # nothing to judge
    shrink = min(1.0, _GRID / max(w, h))
    limit = max(16, w * h * shrink * shrink * 2e-5)  # content pixels that are only specks
    sample = _shrink(rgb, _SAMPLE)
    ycc = sample.convert("YCbCr")
    dominant = _modes(ycc)
    if _content(ycc, dominant) > limit:
        return None  # every sampled pixel is one of the image's: the image has at least as many
    if sample is not rgb:
        # Every pixel, where any is more than noise away from the dominant colour (none on a plain
        # screen, a few on one with a speck, a thin line's worth where the sample missed one). Those
        # within _NEAR of it in R, G and B are well inside the content distance, so need no count.
        centre = Image.new("YCbCr", (1, 1), dominant).convert("RGB").getpixel((0, 0))
        if centre == (0, 0, 0):  # the usual blank screen: any pixel that is not black, found in one pass
            box = rgb.getbbox()
        else:
            box = rgb.point([0 if abs(v - c) <= _NEAR else 255 for c in centre for v in range(256)]).getbbox()
        if box is not None and _content(rgb.crop(box).convert("YCbCr"), dominant) > limit:
            return None
    return _sentence(subject, _shade(dominant))


def _shrink(image: Image.Image, side: int) -> Image.Image:
    """Nearest neighbour: every pixel kept is one of the image's own, at full contrast."""
    w, h = image.size
    if max(w, h) <= side:
        return image
    scale = side / max(w, h)
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.NEAREST)


def _modes(image: Image.Image) -> tuple[int, ...]:
    """The most common value of each band."""
    hist = image.histogram()
    return tuple(max(range(256), key=lambda v: hist[256 * band + v]) for band in range(len(image.getbands())))


def _content(ycc: Image.Image, dominant: tuple[int, int, int]) -> int:
    """How many pixels of a YCbCr image lie farther from ``dominant`` than the content distance."""
    deviation = _deviation(ycc, dominant)
    if deviation.getextrema()[1] <= _SCORE:
        return 0  # the usual case on a blank image, and cheaper than counting a uniform one
    return sum(deviation.histogram()[_SCORE + 1:])


def _deviation(ycc: Image.Image, dominant: tuple[int, int, int]) -> Image.Image:
    """Each pixel's squared, scaled distance from ``dominant``: _SCORE on the boundary of content,
    clipped at 255. Table lookups and saturating adds only, all in Pillow's C code."""
    lut: list[int] = []
    for centre, reach in zip(dominant, (_DEVIATION, _CHROMA, _CHROMA)):
        lut += [min(255, round(_SCORE * ((v - centre) / reach) ** 2)) for v in range(256)]
    y, cb, cr = ycc.point(lut).split()
    return ImageChops.add(ImageChops.add(y, cb), cr)


def _shade(dominant: tuple[int, int, int]) -> str:
    """Black or white only for a colourless shade: a blue screen is not black, nor yellow white."""
    y, cb, cr = dominant
    if math.hypot(cb - 128, cr - 128) <= _CHROMA:
        if y <= 40:
            return "black"
        if y >= 215:
            return "white"
    return "a single plain colour"


def _sentence(subject: str, shade: str) -> str:
    if subject == "screen" and shade == "black":
        return "The screen is black: it may be locked, asleep, or behind a screen curtain."
    if shade == "a single plain colour":
        return f"The {subject} is blank: {shade}, with no text or pictures."
    return f"The {subject} is blank: plain {shade}, with no text or pictures."
