"""Any image-text-to-text checkpoint with a chat template: Qwen2-VL, Qwen2.5-VL, SmolVLM, ...

One generic path: AutoProcessor -> apply_chat_template -> processor(text, images) -> generate.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

from PIL import Image

from ..prompts import prompt_for
from ._hf import pick_device, pick_dtype, stream_generate
from .base import Generation, GenerationOptions, Request

__all__ = ["ChatVLMCaptioner", "fit_pixels"]

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


class ChatVLMCaptioner:
    reads_text = True

    def __init__(self, name: str, folder: Path, *, device: str = "auto", dtype: str = "auto",
                 trust_remote_code: bool = False, screen_pixels: int = SCREEN_PIXELS,
                 photo_pixels: int = PHOTO_PIXELS, quantize: str | None = None):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.name = name
        self.device = pick_device(device)
        self.screen_pixels, self.photo_pixels = screen_pixels, photo_pixels
        self.processor = AutoProcessor.from_pretrained(folder, trust_remote_code=trust_remote_code)
        # int8 replaces the Linear weights; the rest stays as shipped ("auto"), never an fp32 copy.
        torch_dtype = "auto" if quantize and dtype == "auto" else pick_dtype(dtype, self.device)
        self.model = AutoModelForImageTextToText.from_pretrained(
            folder, dtype=torch_dtype, use_safetensors=True, trust_remote_code=trust_remote_code,
        ).to(self.device).eval()
        if quantize:
            from .quantize import quantize_int8

            quantize_int8(self.model)

    def prepare(self, request: Request) -> dict:
        """The model inputs for ``request``: chat template applied, image fitted to its budget."""
        budget = self.screen_pixels if request.task in ("screen", "window", "read") else self.photo_pixels
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt_for(request)}]}]
        prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        kwargs = {}
        ip = self.processor.image_processor
        if getattr(ip, "merge_size", None) and getattr(ip, "patch_size", None):
            # Qwen-style dynamic resolution rounds sides to whole patches, which can overshoot the
            # budget by a row; its own pixel limits bound it exactly.
            kwargs["images_kwargs"] = {"size": {"shortest_edge": min(ip.size.shortest_edge or 0, budget),
                                                "longest_edge": budget}}
        inputs = self.processor(text=[prompt], images=[fit_pixels(request.image, budget)], return_tensors="pt", **kwargs)
        return inputs.to(self.device)

    def generate(self, request: Request, options: GenerationOptions, stop: threading.Event | None = None) -> Generation:
        inputs = self.prepare(request)
        return stream_generate(self.model, inputs, self.processor.tokenizer, options, stop or threading.Event(), self.name)

    def close(self) -> None:
        self.model = self.processor = None
