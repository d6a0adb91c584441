"""Follow-up questions reuse the model's key-value cache of the last answer, and that reuse is
exact: the answer matches a fresh run of the whole conversation token for token (greedy, tiny model)."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from a11y_caption.captioner.base import GenerationOptions, Request
from a11y_caption.prompts import prompt_for


def _screen() -> Image.Image:
    im = Image.effect_mandelbrot((320, 200), (-2, -1.2, 1, 1.2), 40).convert("RGB")
    ImageDraw.Draw(im).text((10, 10), "Error: disk full", fill="white")
    return im


def _answer(captioner, request, options):
    """(text, the new token ids) of one greedy generation."""
    sequences = []
    keep = captioner._keep

    def record(sequence, cache, pixels):
        sequences.append(sequence)
        keep(sequence, cache, pixels)

    captioner._keep = record
    try:
        prompt_len = captioner.prepare(request)["input_ids"].shape[-1]
        text = captioner.generate(request, options).collect().text
    finally:
        captioner._keep = keep
    return text, sequences[0][0, prompt_len:].tolist()


@pytest.mark.parametrize("family", ["qwen2-vl-2b", "qwen2.5-vl"])
def test_follow_up_reuses_the_cache_and_matches_a_fresh_run_token_for_token(tiny_models, family):
    from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner

    captioner = ChatVLMCaptioner(family, tiny_models[family], device="cpu", dtype="fp32")
    options = GenerationOptions(max_new_tokens=24)
    image = _screen()
    first = Request(image, "screen")
    answer, _ = _answer(captioner, first, options)
    assert captioner.reused_tokens == 0
    history = ((prompt_for(first), answer),)
    follow_up = Request(image, "question", "What does the error say?", history=history)
    reused_text, reused_ids = _answer(captioner, follow_up, options)
    prompt_len = captioner.prepare(follow_up)["input_ids"].shape[-1]
    assert captioner.reused_tokens > prompt_len // 2, "the image and the first turn came from the cache"

    captioner._kept = None  # a fresh run of the whole conversation, image included
    fresh_text, fresh_ids = _answer(captioner, follow_up, options)
    assert captioner.reused_tokens == 0
    assert reused_ids == fresh_ids and reused_text == fresh_text
    assert len(fresh_ids) > 3

    # And a second follow-up ("and the second one?") reuses the first follow-up's cache.
    history2 = history + (("What does the error say?", fresh_text),)
    second = Request(image, "question", "And the second one?", history=history2)
    second_text, second_ids = _answer(captioner, second, options)
    assert captioner.reused_tokens > 0
    captioner._kept = None
    assert _answer(captioner, second, options) == (second_text, second_ids)


def test_a_different_image_never_reuses_the_cache(tiny_qwen):
    from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner

    captioner = ChatVLMCaptioner("tiny", tiny_qwen, device="cpu", dtype="fp32")
    options = GenerationOptions(max_new_tokens=8)
    first = Request(_screen(), "screen")
    answer = captioner.generate(first, options).collect().text
    other = Image.new("RGB", (320, 200), "navy")
    ImageDraw.Draw(other).text((10, 10), "Another window", fill="white")
    captioner.generate(Request(other, "question", "What is it?", history=((prompt_for(first), answer),)),
                       options).collect()
    assert captioner.reused_tokens == 0, "same-size images give the same token ids; the pixels differ"
    # The same image again, on the other hand, is reused.
    captioner.generate(first, options).collect()
    captioner.generate(Request(first.image, "question", "What is it?", history=((prompt_for(first), answer),)),
                       options).collect()
    assert captioner.reused_tokens > 0
