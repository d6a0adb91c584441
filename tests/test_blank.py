"""The blank check: colour-only content is content; plain, black, noisy and JPEG screens are blank.

Content that differs from its background in colour but not in brightness (equal Rec. 601 luma, the
brightness Pillow's "L" conversion computes) must never be told to the user as a blank screen.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from a11y_caption.describe.blank import blank_description
from screens import font

BLACK_SCREEN = "The screen is black: it may be locked, asleep, or behind a screen curtain."
PLAIN_SCREEN = "The screen is blank: a single plain colour, with no text or pictures."
WHITE_SCREEN = "The screen is blank: plain white, with no text or pictures."


def luma(colour) -> int:
    return Image.new("RGB", (1, 1), colour).convert("L").getpixel((0, 0))


def same_luma(red: int, blue: int, target: int) -> tuple[int, int, int]:
    """A colour with the given red and blue whose luma is exactly ``target``."""
    for green in range(256):
        if luma((red, green, blue)) == target:
            return red, green, blue
    raise AssertionError(f"no green gives luma {target} with red {red} and blue {blue}")


GREY = (128, 128, 128)
# A chart palette in mid tones, every colour exactly as bright as the grey background.
PALETTE = [same_luma(80, 190, 128), same_luma(210, 60, 128), same_luma(60, 80, 128), same_luma(170, 200, 128)]
RED = same_luma(220, 80, 122)
GREEN = same_luma(60, 60, 122)


def test_the_colours_differ_only_in_colour():
    assert {luma(c) for c in PALETTE} == {128} == {luma(GREY)}
    assert luma(RED) == luma(GREEN) == 122
    assert all(max(abs(a - b) for a, b in zip(c, GREY)) >= 40 for c in PALETTE)


# -- colour-only content is not blank -------------------------------------------------------------

def bar_chart(size=(1280, 800)) -> Image.Image:
    im = Image.new("RGB", size, GREY)
    d = ImageDraw.Draw(im)
    w, h = size
    for i, (colour, height) in enumerate(zip(PALETTE, (0.3, 0.6, 0.45, 0.8))):
        x = w // 8 + i * w // 5
        d.rectangle([x, int(h * (0.9 - height)), x + w // 8, int(h * 0.9)], fill=colour)
    return im


def test_a_bar_chart_as_bright_as_its_background_is_not_blank():
    assert blank_description(bar_chart(), "screen") is None
    assert blank_description(bar_chart((3840, 2160)), "screen") is None


def test_a_red_green_checker_of_equal_brightness_is_not_blank():
    im = Image.new("RGB", (1280, 800), RED)
    d = ImageDraw.Draw(im)
    for y in range(0, 800, 40):
        for x in range(0, 1280, 40):
            if (x // 40 + y // 40) % 2:
                d.rectangle([x, y, x + 39, y + 39], fill=GREEN)
    assert blank_description(im, "image") is None


def test_red_green_stripes_of_equal_brightness_are_not_blank():
    im = Image.new("RGB", (1920, 1080), RED)
    d = ImageDraw.Draw(im)
    for x in range(0, 1920, 16):
        d.rectangle([x, 0, x + 7, 1079], fill=GREEN)
    assert blank_description(im, "screen") is None


@pytest.mark.parametrize("background, logo", [
    (GREY, same_luma(250, 40, 128)),  # an orange logo on grey
    (same_luma(90, 230, 160), same_luma(240, 170, 160)),  # a pink logo on light blue
    ((200, 200, 200), same_luma(120, 250, 200)),  # a lilac logo on light grey
])
def test_a_coloured_logo_on_a_background_as_bright_is_not_blank(background, logo):
    assert luma(background) == luma(logo)
    im = Image.new("RGB", (1280, 800), background)
    ImageDraw.Draw(im).ellipse([580, 340, 700, 460], fill=logo)
    assert blank_description(im, "screen") is None


def test_a_small_coloured_word_as_bright_as_its_background_is_not_blank():
    im = Image.new("RGB", (1280, 800), GREY)
    ImageDraw.Draw(im).text((600, 390), "OK", fill=same_luma(220, 80, 128), font=font("DejaVu Sans", 12))
    assert blank_description(im, "screen") is None


def test_thin_coloured_strokes_as_bright_as_their_background_are_not_blank():
    im = Image.new("RGB", (1280, 800), GREY)
    d = ImageDraw.Draw(im)
    blue = same_luma(60, 230, 128)
    d.line([(400, 300), (430, 260), (460, 300), (490, 260)], fill=blue, width=1)  # a signature-like scrawl
    d.line([(400, 320), (520, 320)], fill=blue, width=1)  # an underline
    assert blank_description(im, "screen") is None


@pytest.mark.parametrize("x", [1001, 1002, 1003, 1004])
def test_a_one_pixel_line_on_a_4k_screen_is_not_lost(x):
    """Wherever it falls: a shrunk copy keeps only some columns, so the check must see them all."""
    for colour in ((0, 0, 0), same_luma(220, 80, 128)):  # one dark, one only different in colour
        im = Image.new("RGB", (3840, 2160), GREY)
        ImageDraw.Draw(im).line([(x, 900), (x, 1200)], fill=colour, width=1)
        assert blank_description(im, "screen") is None, (x, colour)
        rotated = im.transpose(Image.Transpose.ROTATE_90)  # the same line, horizontal, on a tall screen
        assert blank_description(rotated, "screen") is None, (x, colour)


def test_colour_only_content_in_other_image_modes_is_not_blank():
    chart = bar_chart()
    assert blank_description(chart.convert("RGBA"), "image") is None
    assert blank_description(chart.convert("P", palette=Image.Palette.ADAPTIVE), "image") is None


def test_a_real_screen_of_text_is_not_blank():
    from screens import render_screen
    for size in ((1280, 800), (3840, 2160)):
        assert blank_description(render_screen(size=size, px=14).image, "screen") is None
    assert blank_description(render_screen(["OK"], px=12, buttons=(), size=(2560, 1600)).image, "screen") is None


# -- blank stays blank, black stays black -----------------------------------------------------------

@pytest.mark.parametrize("colour, expected", [
    ((0, 0, 0), BLACK_SCREEN),
    ((12, 14, 10), BLACK_SCREEN),
    ((13, 17, 23), BLACK_SCREEN),  # a dark theme's near-black
    ((30, 30, 30), BLACK_SCREEN),
    ((255, 255, 255), WHITE_SCREEN),
    ((250, 250, 240), WHITE_SCREEN),
    (GREY, PLAIN_SCREEN),
    ((40, 90, 160), PLAIN_SCREEN),
    (RED, PLAIN_SCREEN),
])
@pytest.mark.parametrize("size", [(1280, 800), (1600, 1000), (3840, 2160)])
def test_a_plain_screen_is_blank(colour, expected, size):
    assert blank_description(Image.new("RGB", size, colour), "screen") == expected


def test_a_plain_image_is_said_to_be_an_image():
    assert blank_description(Image.new("RGB", (640, 480), (3, 3, 3))) == "The image is blank: plain black, with no text or pictures."
    assert blank_description(Image.new("RGB", (640, 480), GREY)) == "The image is blank: a single plain colour, with no text or pictures."
    assert blank_description(Image.new("L", (640, 480), 255)) == "The image is blank: plain white, with no text or pictures."


@pytest.mark.parametrize("colour, expected", [
    ((0, 0, 170), PLAIN_SCREEN),  # a blue screen is blue, not black (nor locked or asleep)
    ((0, 0, 60), PLAIN_SCREEN),  # dark navy
    ((255, 255, 0), PLAIN_SCREEN),  # yellow is not white
    ((0, 255, 255), PLAIN_SCREEN),  # nor is cyan
])
def test_a_plain_saturated_colour_is_not_called_black_or_white(colour, expected):
    assert blank_description(Image.new("RGB", (1280, 800), colour), "screen") == expected


def noisy(colour, size=(1280, 800), spread=3, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    a = np.array(colour, np.int16) + rng.integers(-spread, spread + 1, (size[1], size[0], 3), dtype=np.int16)
    return Image.fromarray(a.clip(0, 255).astype(np.uint8), "RGB")


@pytest.mark.parametrize("colour, expected", [
    ((8, 8, 8), BLACK_SCREEN), ((252, 252, 252), WHITE_SCREEN), (GREY, PLAIN_SCREEN), ((40, 90, 160), PLAIN_SCREEN),
    (RED, PLAIN_SCREEN),
])
@pytest.mark.parametrize("size", [(1280, 800), (3840, 2160)])
def test_mild_noise_is_still_blank(colour, expected, size):
    assert blank_description(noisy(colour, size), "screen") == expected


def jpeg(im: Image.Image, quality=75) -> Image.Image:
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


@pytest.mark.parametrize("colour, expected", [
    ((0, 0, 0), BLACK_SCREEN), ((255, 255, 255), WHITE_SCREEN), ((40, 90, 160), PLAIN_SCREEN),
    ((200, 60, 60), PLAIN_SCREEN), (GREY, PLAIN_SCREEN),
])
def test_a_plain_jpeg_is_still_blank(colour, expected):
    assert blank_description(jpeg(Image.new("RGB", (1280, 800), colour)), "screen") == expected
    assert blank_description(jpeg(noisy(colour, (1280, 800))), "screen") == expected


def test_a_jpeg_chart_is_not_blank():
    assert blank_description(jpeg(bar_chart()), "screen") is None


@pytest.mark.parametrize("size", [(1280, 800), (3840, 2160)])
def test_a_speck_is_not_content(size):
    """A dead pixel or a stray speck (up to 16 pixels) does not make a plain screen worth describing."""
    for speck, box in (((0, 0, 0), 1), (same_luma(220, 80, 128), 1), ((255, 255, 255), 3), (same_luma(60, 230, 128), 4)):
        im = Image.new("RGB", size, GREY)
        ImageDraw.Draw(im).rectangle([500, 400, 500 + box - 1, 400 + box - 1], fill=speck)
        assert blank_description(im, "screen") == PLAIN_SCREEN, (speck, box)
    im = Image.new("RGB", size, (0, 0, 0))
    im.putpixel((700, 300), (255, 255, 255))
    assert blank_description(im, "screen") == BLACK_SCREEN


def test_dim_colour_on_black_is_content():
    """Dark blue or red text on black has little brightness, but it is there to be read."""
    for colour in ((0, 0, 200), (80, 0, 0)):
        assert luma(colour) <= 24
        im = Image.new("RGB", (1280, 800), (0, 0, 0))
        ImageDraw.Draw(im).text((100, 100), "Press any key", fill=colour, font=font("DejaVu Sans", 24))
        assert blank_description(im, "screen") is None, colour
