"""Salesforce BLIP captioning (base or large): fast photo captions; it cannot read text or follow prompts."""

from __future__ import annotations

import threading
from pathlib import Path

from ._hf import batch_generate, pick_device, pick_dtype, stream_generate
from .base import Captioner, Generation, GenerationOptions, Request

__all__ = ["BlipCaptioner"]


class BlipCaptioner(Captioner):
    reads_text = False
    answers_questions = False  # it captions; it cannot follow a prompt

    def __init__(self, name: str, folder: Path, *, device: str = "auto", dtype: str = "auto",
                 prefix: str | None = None, quantize: str | None = None):
        from transformers import BlipForConditionalGeneration, BlipProcessor

        self.name = name
        self.prefix = prefix or None
        self.device = pick_device(device)
        self.processor = BlipProcessor.from_pretrained(folder)

        def load():
            return BlipForConditionalGeneration.from_pretrained(
                folder, dtype="auto" if quantize and dtype == "auto" else pick_dtype(dtype, self.device),
                use_safetensors=True,
            ).to(self.device).eval()

        self.loaded_from = "checkpoint"  # or, quantized, "kept copy" / "converted" (int8_store)
        if quantize:
            from .int8_store import load_int8

            self.model, self.loaded_from = load_int8(BlipForConditionalGeneration, load, folder, name, quantize)
        else:
            self.model = load()

    def generate(self, request: Request, options: GenerationOptions, stop: threading.Event | None = None) -> Generation:
        # BLIP conditions on a text prefix instead of an instruction; questions cannot be followed.
        kwargs = {"text": self.prefix} if self.prefix else {}
        inputs = self.processor(images=request.image, return_tensors="pt", **kwargs).to(self.device, self.model.dtype)
        return stream_generate(self.model, dict(inputs), self.processor.tokenizer, options,
                               stop or threading.Event(), self.name, strip_prompt=False,
                               lead=f"{self.prefix} " if self.prefix else "")

    def generate_batch(self, requests: list[Request], options: GenerationOptions,
                       stop: threading.Event | None = None) -> list[str]:
        """Captions of several images in one generate call (padded), in order; nothing streams."""
        kwargs = {"text": [self.prefix] * len(requests)} if self.prefix else {}
        inputs = self.processor(images=[r.image for r in requests], return_tensors="pt", padding=True,
                                **kwargs).to(self.device, self.model.dtype)
        texts = batch_generate(self.model, dict(inputs), self.processor.tokenizer, options, stop, strip_prompt=False)
        return texts

    def close(self) -> None:
        self.model = self.processor = None
