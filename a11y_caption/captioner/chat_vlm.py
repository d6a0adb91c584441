"""Any image-text-to-text checkpoint with a chat template: Qwen2-VL, Qwen2.5-VL, SmolVLM, ...

One generic path: AutoProcessor -> apply_chat_template -> processor(text, images) -> generate.
"""

from __future__ import annotations

import threading
from pathlib import Path

from .prompts import grounded_prefix, prompt_for
from ._hf import batch_generate, pick_device, pick_dtype, stream_generate
from .base import Captioner, Generation, GenerationOptions, Request
from .budgets import image_inputs
from .chat import PHOTO_PIXELS, SCREEN_PIXELS, chat_messages, fit_pixels, pixel_budget
from .prefix_cache import build_prefix_cache

__all__ = ["ChatVLMCaptioner", "fit_pixels"]  # fit_pixels: from chat.py, kept importable here


class ChatVLMCaptioner(Captioner):
    reads_text = True
    answers_questions = True
    can_prefill = True

    def __init__(self, name: str, folder: Path, *, device: str = "auto", dtype: str = "auto",
                 trust_remote_code: bool = False, screen_pixels: int = SCREEN_PIXELS,
                 photo_pixels: int = PHOTO_PIXELS, quantize: str | None = None, reuse_prefix: bool = True):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.name = name
        self.device = pick_device(device)
        self.screen_pixels, self.photo_pixels = screen_pixels, photo_pixels
        self.processor = AutoProcessor.from_pretrained(folder, trust_remote_code=trust_remote_code)
        # int8 replaces the Linear weights; the rest stays as shipped ("auto"), never an fp32 copy.
        torch_dtype = "auto" if quantize and dtype == "auto" else pick_dtype(dtype, self.device)

        def load():
            return AutoModelForImageTextToText.from_pretrained(
                folder, dtype=torch_dtype, use_safetensors=True, trust_remote_code=trust_remote_code,
            ).to(self.device).eval()

        self.loaded_from = "checkpoint"  # or, quantized, "kept copy" / "converted" (int8_store)
        if quantize:
            from .int8_store import load_int8

            self.model, self.loaded_from = load_int8(
                lambda config: AutoModelForImageTextToText.from_config(config, trust_remote_code=trust_remote_code),
                load, folder, name, quantize)
        else:
            self.model = load()
        self._kept: _Kept | None = None  # the last answer's cache, for a follow-up question
        self.reused_tokens = 0  # how many prompt tokens the last generate took from a cache (prefix or kept)
        # The prompts' common start, read now, while loading: one short forward pass (about 1 s for
        # Qwen2-VL-2B in int8 on 2 cores) spares it on every press, the first one included.
        # Setting reuse_prefix to False later turns it off (benchmarks compare).
        self.reuse_prefix, self._prefix = reuse_prefix, None
        if reuse_prefix:
            self._prefix = build_prefix_cache(self.model, self._prefix_samples, self._image_token_id())

    @property
    def prefix_tokens(self) -> int:
        """How many tokens the prefix cache holds (0: none, or not in use)."""
        return self._prefix.tokens if self._prefix is not None and self.reuse_prefix else 0

    def prepare(self, request: Request) -> dict:
        """The model inputs for ``request``: chat template applied, image fitted to its budget."""
        return self._prepare([request])

    def generate_batch(self, requests: list[Request], options: GenerationOptions,
                       stop: threading.Event | None = None) -> list[str]:
        """Answers for several requests (first turns) in one generate call, prompts padded on the
        left; in order; nothing streams."""
        self._kept = None  # the cache of one answer no longer matches what the model saw last
        tokenizer = self.processor.tokenizer
        side, tokenizer.padding_side = tokenizer.padding_side, "left"
        try:
            inputs = self._prepare(requests, padding=True)
        finally:
            tokenizer.padding_side = side
        return batch_generate(self.model, inputs, tokenizer, options, stop)

    def prefill(self, request: Request) -> None:
        """Read the image and the part of a grounded ``request``'s prompt that comes before the
        screen's text (``grounded_prefix``) into a key-value cache, while OCR still runs: the
        ``generate`` that follows with the text found reads only the rest (``_reusable``)."""
        import torch

        marker = "\ue000"  # a private-use character: where the screen text will go
        text = self.processor.apply_chat_template(
            chat_messages(request, {"type": "image"}, grounded_prefix(request) + marker), add_generation_prompt=True)
        inputs = self._prepare([request], prompts=[text[:text.index(marker)]])
        self._kept = None
        start = self._from_prefix(inputs)
        with torch.inference_mode():  # one token: generate builds the cache and the rotary offsets
            output = self.model.generate(**inputs, **start, max_new_tokens=1, min_new_tokens=0, do_sample=False,
                                         temperature=None, top_p=None, top_k=None, return_dict_in_generate=True)
        self._keep(output.sequences, output.cache, inputs.get("pixel_values"), inputs["input_ids"].shape[-1],
                   request)

    def _prepare(self, requests: list[Request], prompts: list[str] | None = None, **extra) -> dict:
        prompts = prompts or [self._prompt(r) for r in requests]
        # One processor call takes one set of caps: the largest budget's; each image is fitted to its own.
        fitted = [image_inputs(self.processor, self._budget(r)) for r in requests]
        images = [fit_pixels(r.image, pixels) for r, (pixels, _) in zip(requests, fitted)]
        kwargs = {**max(fitted, key=lambda f: f[0])[1], **extra}
        inputs = self.processor(text=prompts, images=images, return_tensors="pt", **kwargs)
        return inputs.to(self.device)

    def _budget(self, request: Request) -> int:
        return pixel_budget(request, self.screen_pixels, self.photo_pixels)

    def _prompt(self, request: Request) -> str:
        """The chat-templated text of ``request``: earlier turns, the image with the first, the new prompt."""
        return self.processor.apply_chat_template(chat_messages(request, {"type": "image"}), add_generation_prompt=True)

    def generate(self, request: Request, options: GenerationOptions, stop: threading.Event | None = None) -> Generation:
        inputs = self.prepare(request)
        extra = {}
        kept, self._kept = self._kept, None  # a cache belongs to one generation at a time
        reused, pixels = 0, inputs.get("pixel_values")
        if kept is not None and options.num_beams == 1 and self._same_image(kept, inputs):
            continued = self._continuation(kept, request)
            if continued is not None:
                inputs, reused = continued, int(kept.cache.get_seq_length())
            else:
                reused = self._reusable(kept, inputs)
        if reused and not _rolled_back(kept.cache, reused):
            reused = 0  # a cache that cannot forget its last tokens (a convolution's state): read it all again
        if reused:
            # A follow-up: the image and the conversation so far are in the kept cache already; the
            # model reads only the new turn. Image inputs are left out, so the vision encoder does not run.
            if kept.rope_deltas is not None:
                self._rope_owner().rope_deltas = kept.rope_deltas
            inputs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
            extra["cache"] = kept.cache
        elif options.num_beams == 1:
            # A new conversation: its start is in the prefix cache; the model reads from the image on.
            extra = self._from_prefix(inputs)
            reused = self.prefix_tokens if extra else 0
        self.reused_tokens = reused
        prompt_length = inputs["input_ids"].shape[-1]
        return stream_generate(self.model, inputs, self.processor.tokenizer, options, stop or threading.Event(),
                               self.name, **extra,
                               on_finish=lambda seq, cache: self._keep(seq, cache, pixels, prompt_length, request))

    def forget(self) -> None:
        """Drop the kept cache: the next description starts from the prefix cache at most (benchmarks time that)."""
        self._kept = None

    @property
    def kept_cache_mb(self) -> float | None:
        """The size of the key-value cache kept of the last answer (None when none is kept)."""
        kept = self._kept
        if kept is None:
            return None
        import torch

        # keys and values, or whatever state a layer keeps instead (a convolution's last inputs)
        return sum(t.numel() * t.element_size() for layer in kept.cache.layers for t in vars(layer).values()
                   if isinstance(t, torch.Tensor)) / 2**20

    def _from_prefix(self, inputs) -> dict:
        """{"cache": a copy of the prefix cache} where ``inputs`` start with the prefix, else {}."""
        if not self.prefix_tokens or not self._prefix.fits(inputs["input_ids"]):
            return {}
        owner = self._rope_owner()
        if owner is not None:  # with a cache, some models would place this image by an earlier prompt's offsets
            owner.rope_deltas = None
        return {"cache": self._prefix.copy()}

    def _prefix_samples(self) -> list:
        """Processor inputs of two different first-turn prompts with images of two sizes: what
        they share before the image is what every first turn starts with."""
        from PIL import Image

        return [self._prepare([Request(Image.new("RGB", size, "grey"), task)])
                for size, task in (((64, 64), "screen"), ((112, 56), "photo"))]

    def _image_token_id(self):
        token = getattr(self.processor, "image_token_id", None)
        return token if token is not None else getattr(self.model.config, "image_token_id", None)

    def _rope_owner(self):
        """The module that holds multimodal rotary offsets between calls (Qwen2-VL, Qwen2.5-VL), or None."""
        inner = getattr(self.model, "model", None)
        return inner if inner is not None and hasattr(inner, "rope_deltas") else None

    def _keep(self, sequence, cache, pixels, prompt_length: int, request: Request) -> None:
        """Keep the key-value cache of a finished answer (bounded) for a follow-up question."""
        if cache is None or pixels is None or sequence.shape[-1] > MAX_KEPT_TOKENS:
            return
        owner = self._rope_owner()
        self._kept = _Kept(sequence, prompt_length, cache, owner.rope_deltas if owner is not None else None, pixels,
                           request.history, prompt_for(request))

    @staticmethod
    def _same_image(kept: "_Kept", inputs) -> bool:
        """Whether ``inputs`` show the kept cache's image: two images of the same size give the same
        token ids, so only the pixels tell them apart."""
        import torch

        pixels = inputs.get("pixel_values")
        return pixels is not None and pixels.shape == kept.pixels.shape and torch.equal(pixels, kept.pixels)

    def _continuation(self, kept: "_Kept", request: Request):
        """The input ids of a follow-up that continues the kept conversation exactly, or None.

        When the request's last turn is the kept prompt with the kept answer, the new ids are the
        kept ones (the answer as generated, not re-tokenized, which can split words otherwise) plus
        the new turn: the cache then holds everything but the newest turn and its last answer token.
        """
        import torch

        if not request.history or request.history[:-1] != kept.history or request.history[-1][0] != kept.asked:
            return None  # another conversation before the kept answer
        tokenizer = self.processor.tokenizer
        full = kept.sequence[0]
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        ended = int(full[-1]) in eos
        answer = tokenizer.decode(full[kept.prompt_length:], skip_special_tokens=True).strip()
        if not answer or answer != request.history[-1][1].strip():
            return None
        text = self._prompt(request)
        at = text.rfind(answer)
        if at < 0:
            return None
        after = text[at + len(answer):]
        if ended:  # the answer's own end token is in the kept ids already
            end = tokenizer.decode([int(full[-1])])
            if not after.startswith(end):
                return None
            after = after[len(end):]
        new = tokenizer(after, add_special_tokens=False, return_tensors="pt")["input_ids"].to(full.device)
        if new.shape[-1] == 0:
            return None
        ids = torch.cat([kept.sequence, new], dim=-1)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def _reusable(self, kept: "_Kept", inputs) -> int:
        """How many leading tokens of ``inputs`` the kept cache already holds (0: none usable).

        Only a cache that covers the whole image is worth reusing, and at least one token must be
        left for the model to read.
        """
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
        self._kept = self._prefix = None


def _rolled_back(cache, keep: int) -> bool:
    """Cut ``cache`` back to its first ``keep`` tokens; False where it cannot be (LFM2's convolution
    layers keep only their last inputs): then it must not be used."""
    drop = int(cache.get_seq_length()) - keep
    if drop == 0:
        return True
    try:
        cache.crop(-drop)
    except RuntimeError:
        return False
    return True


MAX_KEPT_TOKENS = 8192  # a kept conversation cache holds at most this many tokens (Qwen2-VL-2B: ~30 MB in bf16)


class _Kept:
    """The last answer's token ids (prompt and answer), key-value cache and rotary offsets, the
    image's pixels and the conversation it answered. The cache holds all ids but the last generated one."""

    def __init__(self, sequence, prompt_length: int, cache, rope_deltas, pixels, history, asked: str):
        self.sequence, self.prompt_length = sequence, prompt_length
        self.cache, self.rope_deltas, self.pixels = cache, rope_deltas, pixels
        self.history, self.asked = history, asked  # the conversation before the answer, as text

    @property
    def ids(self):
        """The ids the cache holds."""
        return self.sequence[:, :self.cache.get_seq_length()]
