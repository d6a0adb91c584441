"""The start of every chat prompt, read once per load.

What comes before the image in a first turn (the chat template's system turn, "<|im_start|>user\\n
<|vision_start|>" for Qwen2-VL, ...) is the same for every description. Its key-value cache is read
once, right after loading, and each generation that starts with those ids starts from a copy of it:
the language model reads only the tokens from the image on.

This stays on transformers' generic path: ``generate(input_ids=<the whole prompt>, pixel_values=...,
cache=<a cache of its first k ids>)`` reads the ids from k on (``_prefill`` slices them), passes the
image inputs on the first step whatever the cache holds (``is_first_iteration``), and takes the
positions from the whole attention mask; multimodal rotary positions (Qwen-VL's M-RoPE) are computed
over the whole prompt as long as no rotary offsets of an earlier prompt are left on the model, which
the caller clears (``ChatVLMCaptioner._from_prefix``).
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Callable

__all__ = ["PrefixCache", "build_prefix_cache", "common_start"]

log = logging.getLogger(__name__)


class PrefixCache:
    """The ids of the prompts' common start, shape (1, k), and their key-value cache."""

    def __init__(self, ids, cache):
        self.ids, self._cache = ids, cache

    @property
    def tokens(self) -> int:
        return int(self.ids.shape[-1])

    def fits(self, input_ids) -> bool:
        """Whether ``input_ids`` are one prompt that starts with the prefix and goes on after it."""
        k = self.tokens
        return (input_ids.dim() == 2 and input_ids.shape[0] == 1 and input_ids.shape[-1] > k
                and bool((input_ids[0, :k] == self.ids[0].to(input_ids.device)).all()))

    def copy(self):
        """A cache of its own for one generation: generate extends the cache it is given."""
        import torch

        with torch.inference_mode():  # as the caches generate makes (and keeps for follow-ups) are
            return copy.deepcopy(self._cache)


def first_image_position(inputs, image_token_id) -> int | None:
    """Index of the first image (or other non-text) token in one row of processor outputs; None
    where it cannot be told."""
    types = inputs.get("mm_token_type_ids")  # Qwen-VL processors mark image and video tokens here
    ids = inputs["input_ids"][0]
    if types is not None:
        where = types[0].nonzero()
    elif image_token_id is not None:
        where = (ids == image_token_id).nonzero()
    else:
        return None
    return int(where[0]) if len(where) else None


def common_start(samples: list, image_token_id) -> int:
    """How many leading ids all ``samples`` (processor outputs of different prompts and images)
    share before their first image token: 0 where there is no such start, or it cannot be told."""
    rows = [s["input_ids"][0] for s in samples]
    n = min(len(r) for r in rows)
    for s in samples:
        at = first_image_position(s, image_token_id)
        if at is None:
            return 0
        n = min(n, at)
    for row in rows[1:]:
        same = (row[:n] == rows[0][:n]).int()
        n = n if bool(same.all()) else int(same.argmin())
    return n


def build_prefix_cache(model, samples: Callable[[], list], image_token_id) -> PrefixCache | None:
    """The prefix cache of ``model`` for the prompts ``samples()`` stand for (processor outputs of
    at least two different first-turn prompts, with images of different sizes), or None where it
    does not apply (said in the debug log); never raises."""
    try:
        import torch
        from transformers import DynamicCache

        if "is_first_iteration" not in inspect.signature(model.prepare_inputs_for_generation).parameters:
            log.debug("no prefix cache: this model's generate may leave image inputs out when given a cache")
            return None
        rows = samples()
        k = common_start(rows, image_token_id)
        if k < 1:
            log.debug("no prefix cache: the prompts share no tokens before the image")
            return None
        ids = rows[0]["input_ids"][:, :k]
        with torch.inference_mode():
            output = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
        cache = getattr(output, "cache", None)
        if not isinstance(cache, DynamicCache) or cache.get_seq_length() != k:
            log.debug("no prefix cache: the model's cache is a %s", type(cache).__name__)
            return None
        return PrefixCache(ids, cache)
    except Exception as e:  # an optimisation: loading goes on without it
        log.debug("no prefix cache: %s: %s", type(e).__name__, e)
        return None
