"""What a chat model is sent, wherever it runs: the conversation (the image with the first turn,
earlier turns, then this request's prompt) and the image fitted to its pixel budget.

Shared by the in-process backend (chat_vlm.py) and the server backend (server.py), so that a
model on a server sees the same prompts and the same picture as one in this process.
"""

from __future__ import annotations

import math

from PIL import Image

from .prompts import prompt_for
from .base import Request

__all__ = ["PHOTO_PIXELS", "SCREEN_PIXELS", "chat_messages", "fit_pixels", "pixel_budget"]

# Image budgets in pixels. Qwen2-VL turns each 28x28 block into one token, so 256*28*28 is about
# 256 image tokens: enough for the layout and large text of a 1280x800 screen, and 5x faster to
# first token than the model's default of 1280 tokens. Small text is read by OCR instead.
SCREEN_PIXELS = 256 * 28 * 28
PHOTO_PIXELS = 192 * 28 * 28


def fit_pixels(image: Image.Image, max_pixels: int) -> Image.Image:
    """Downscale ``image`` (keeping its aspect) so that width*height <= max_pixels."""
    w, h = image.size
    if w * h <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (w * h))
    return image.resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.Resampling.BICUBIC)


def pixel_budget(request: Request, screen_pixels: int, photo_pixels: int) -> int:
    """The pixel budget of ``request``'s image: its own where it has one, else screens and windows
    get the screen budget and other images the photo budget."""
    if request.pixels:
        return request.pixels
    return screen_pixels if request.is_screen else photo_pixels


def chat_messages(request: Request, image_part: dict, prompt: str | None = None) -> list[dict]:
    """The chat turns for ``request``: earlier (asked, answered) turns, then its prompt (or
    ``prompt``), with ``image_part`` (the backend's way of giving the image) at the start of the
    first turn."""
    messages = []
    for asked, answered in request.history:
        messages += [{"role": "user", "content": [{"type": "text", "text": asked}]},
                     {"role": "assistant", "content": [{"type": "text", "text": answered}]}]
    text = prompt_for(request) if prompt is None else prompt
    messages.append({"role": "user", "content": [{"type": "text", "text": text}]})
    messages[0]["content"].insert(0, image_part)
    return messages
