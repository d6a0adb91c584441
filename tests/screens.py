"""Renders UI-like screenshots with known text, for OCR accuracy and end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

FONTS = {
    "DejaVu Sans": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "DejaVu Serif": "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "DejaVu Sans Mono": "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "Nimbus Sans": "/usr/share/fonts/opentype/urw-base35/NimbusSans-Regular.otf",
}
THEMES = {"light": ("#f6f6f6", "#1a1a1a", "#dcdcdc"), "dark": ("#1e1e1e", "#e8e8e8", "#3a3a3a")}

SAMPLE_TEXT = [
    "Settings - Display",
    "File  Edit  View  Help",
    "Screen resolution: 1920 x 1080 (recommended)",
    "Scale text and apps to 125 percent",
    "Night light turns on at 9:30 PM",
    "Warning: changes apply after you sign out.",
]


@dataclass
class Screen:
    image: Image.Image
    lines: list[str]  # the text in reading order


def font(name: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONTS[name], px)


def render_screen(text: list[str] = SAMPLE_TEXT, *, size=(1280, 800), font_name="DejaVu Sans", px=18,
                  theme="light", buttons=("OK", "Cancel", "Apply")) -> Screen:
    """A window with a title, a menu line, body lines and a row of buttons."""
    bg, fg, chrome = THEMES[theme]
    im = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(im)
    f = font(font_name, px)
    line_h = int(px * 2.0)
    d.rectangle([0, 0, size[0], line_h + 8], fill=chrome)
    y = 6
    lines = []
    for i, line in enumerate(text):
        d.text((24, y), line, fill=fg, font=f)
        lines.append(line)
        y += line_h + (12 if i == 0 else 0)
    x = 24
    y += line_h
    row = []
    for label in buttons:
        w = int(d.textlength(label, font=f)) + 2 * px
        d.rounded_rectangle([x, y, x + w, y + line_h], radius=6, outline=fg, fill=chrome, width=2)
        d.text((x + px, y + (line_h - px) // 2 - 2), label, fill=fg, font=f)
        row.append(label)
        x += w + px * 2
    if row:
        lines.append(" ".join(row))
    return Screen(im, lines)
