"""Any image-text-to-text checkpoint with a chat template: Qwen2-VL, Qwen2.5-VL, SmolVLM, ...

One generic path: AutoProcessor -> apply_chat_template -> processor(text, images) -> generate.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ._hf import pick_device, pick_dtype, stream_generate
from .base import Generation, GenerationOptions, Request
from .chat import PHOTO_PIXELS, SCREEN_PIXELS, chat_messages, fit_pixels, pixel_budget

__all__ = ["ChatVLMCaptioner", "fit_pixels"]  # fit_pixels: from chat.py, kept importable here


class ChatVLMCaptioner:
    reads_text = True
    answers_questions = True

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
        self._kept: _Kept | None = None  # the last answer's cache, for a follow-up question
        self.reused_tokens = 0  # how many prompt tokens the last generate took from that cache

    def prepare(self, request: Request) -> dict:
        """The model inputs for ``request``: chat template applied, image fitted to its budget."""
        budget = pixel_budget(request, self.screen_pixels, self.photo_pixels)
        messages = chat_messages(request, {"type": "image"})
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
        extra = {}
        kept, self._kept = self._kept, None  # a cache belongs to one generation at a time
        reused = self._reusable(kept, inputs) if kept is not None and options.num_beams == 1 else 0
        pixels = inputs.get("pixel_values")
        if reused:
            # A follow-up: the image and the conversation so far are in the kept cache already; the
            # model reads only the new turn. Image inputs are left out, so the vision encoder does not run.
            kept.cache.crop(reused - kept.cache.get_seq_length())
            if kept.rope_deltas is not None:
                self._rope_owner().rope_deltas = kept.rope_deltas
            inputs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
            extra["cache"] = kept.cache
        self.reused_tokens = reused
        return stream_generate(self.model, inputs, self.processor.tokenizer, options, stop or threading.Event(),
                               self.name, on_finish=lambda seq, cache: self._keep(seq, cache, pixels), **extra)

    def forget(self) -> None:
        """Drop the kept cache: the next description starts from nothing (benchmarks time that)."""
        self._kept = None

    def _rope_owner(self):
        """The module that holds multimodal rotary offsets between calls (Qwen2-VL, Qwen2.5-VL), or None."""
        inner = getattr(self.model, "model", None)
        return inner if inner is not None and hasattr(inner, "rope_deltas") else None

    def _keep(self, sequence, cache, pixels) -> None:
        """Keep the key-value cache of a finished answer (bounded) for a follow-up question."""
        if cache is None or pixels is None or sequence.shape[-1] > MAX_KEPT_TOKENS:
            return
        owner = self._rope_owner()
        self._kept = _Kept(sequence[:, :cache.get_seq_length()], cache,
                           owner.rope_deltas if owner is not None else None, pixels)

    def _reusable(self, kept: "_Kept", inputs) -> int:
        """How many leading tokens of ``inputs`` the kept cache already holds (0: none usable).

        Only a cache that covers the whole image is worth reusing, and at least one token must be
        left for the model to read.
        """
        import torch

        # Two images of the same size give the same token ids: only the pixels tell them apart.
        pixels = inputs.get("pixel_values")
        if pixels is None or pixels.shape != kept.pixels.shape or not torch.equal(pixels, kept.pixels):
            return 0
        new, old = inputs["input_ids"][0], kept.ids[0]
        n = min(len(new) - 1, len(old))
        same = (new[:n] == old[:n]).int()
        prefix = n if bool(same.all()) else int(same.argmin())
        return prefix if prefix > self._last_image_position(inputs) else 0

    def _last_image_position(self, inputs) -> int:
        """Index of the last image token in ``inputs``; the whole length where it cannot be told."""
        ids = inputs["input_ids"][0]
        types = inputs.get("mm_token_type_ids")  # Qwen-VL processors mark image tokens here
        if types is not None:
            where = types[0].nonzero()
        else:
            token = getattr(self.processor, "image_token_id", None)
            if token is None:
                return len(ids)
            where = (ids == token).nonzero()
        return int(where[-1]) if len(where) else -1

    def close(self) -> None:
        self.model = self.processor = None
        self._kept = None


MAX_KEPT_TOKENS = 8192  # a kept conversation cache holds at most this many tokens (Qwen2-VL-2B: ~30 MB in bf16)


class _Kept:
    """The last answer's token ids, key-value cache and rotary offsets, and the image's pixels."""

    def __init__(self, ids, cache, rope_deltas, pixels):
        self.ids, self.cache, self.rope_deltas, self.pixels = ids, cache, rope_deltas, pixels
