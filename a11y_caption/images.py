"""Open and normalise images from files or memory into bounded RGB PIL images."""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

__all__ = ["MAX_PIXELS", "MAX_SIDE", "image_file", "normalize", "open_image", "open_image_bytes", "pixel_bound"]

# Larger than any real screen (an 8K monitor is 33 MP) but far below what exhausts memory: checked
# from the file's header, before a byte of pixels is decoded (a 10 KB PNG can claim 80 MP).
MAX_PIXELS = 80_000_000
# Models see at most a few hundred thousand pixels; keep memory flat for huge inputs.
MAX_SIDE = 4096
# Pillow checks this from the header when it opens a picture: a library that opens and loads in one
# call (ImageGrab's clipboard) is then bounded too, inside pixel_bound.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# One decode at a time, on every path (files, the agent's requests, the clipboard, Wayland): a
# decoded picture can take 4 bytes a pixel, and eight requests at once would add up their peaks.
_DECODING = threading.Lock()


def open_image(path: str | os.PathLike) -> Image.Image:
    """Read an image file: first frame, EXIF orientation applied, RGB, at most MAX_SIDE a side.

    Raises:
        ImageError: the path is missing, not a file, or not an image Pillow can read safely.
    """
    p = image_file(path)
    return _decode(p, p.name)


def image_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path, once it is known to be a file that is not empty.

    Raises:
        ImageError: missing, not a file, or empty.
    """
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p} does not exist.")
    if not p.is_file():
        raise ImageError(f"{p} is not a file.")
    if p.stat().st_size == 0:
        raise ImageError(f"{p.name} is empty.")
    return p


def open_image_bytes(data: bytes, name: str) -> Image.Image:
    """``open_image`` for an image file's bytes (sent to the agent by a command); ``name`` is
    what error sentences call it."""
    if not data:
        raise ImageError(f"{name} is empty.")
    return _decode(io.BytesIO(data), name)


@contextmanager
def pixel_bound(name: str) -> Iterator[None]:
    """Inside it, Pillow refuses to open a picture of more than MAX_PIXELS, before decoding it.

    Raises:
        ImageError: "``name`` is too large to open safely."
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name} is too large to open safely.") from e


def _decode(source, name: str) -> Image.Image:
    try:
        with pixel_bound(name), Image.open(source) as im:
            _check_size(im, name)
            im.seek(0)
            return normalize(im)
    except ImageError:
        raise
    except UnidentifiedImageError as e:
        raise ImageError(f"{name} is not an image this program can read.") from e
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data
        raise ImageError(f"{name} is damaged and could not be read.") from e


def _check_size(im: Image.Image, name: str) -> None:
    w, h = im.size
    if w < 1 or h < 1 or w * h > MAX_PIXELS:
        raise ImageError(f"{name} is {w} by {h} pixels, too large to open safely.")


def normalize(im: Image.Image) -> Image.Image:
    """Any Pillow image -> an upright RGB copy no larger than MAX_SIDE on its longer side.

    A large picture is shrunk in the mode it was decoded in (a JPEG is even decoded at a fraction
    of its size), before anything converts it to RGB or lays it on a background: so the peak is
    about the decoded picture itself, not three full-size copies of it at four bytes a pixel.
    """
    _check_size(im, "The image")
    with _DECODING:
        if im.format == "JPEG":
            im.draft(None, (MAX_SIDE, MAX_SIDE))  # before loading: 1/2, 1/4 or 1/8 scale, never below MAX_SIDE
        im.load()
        if im.mode == "1":
            im = im.convert("L")  # the same byte a pixel, and it can be resampled
        elif im.mode in ("I;16", "I;16B", "I;16L", "I"):
            # 16/32-bit grey: scale to 8 bits instead of clipping everything to white.
            lo, hi = im.getextrema()
            scale = 255.0 / max(1, hi - lo)
            im = im.point(lambda v: (v - lo) * scale).convert("L")
        elif im.mode in ("P", "PA"):  # palette indices cannot be averaged: colours first
            im = im.convert("RGBA" if im.mode == "PA" or "transparency" in im.info else "RGB")
        if max(im.size) > MAX_SIDE:
            im = im.copy() if im.readonly else im
            im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0)
        im = ImageOps.exif_transpose(im)
        if im.mode in ("LA", "RGBA", "La", "RGBa"):
            rgba = im.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(background, rgba)
        return im.convert("RGB")
