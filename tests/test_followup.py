"""Follow-up questions reuse the model's key-value cache of the last answer, and that reuse is
exact: the answer matches a fresh run of the whole conversation token for token (greedy, tiny model)."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from a11y_caption.captioner.base import GenerationOptions, Request
from a11y_caption.captioner.prompts import prompt_for


def _screen() -> Image.Image:
    """Screen-sized, so that the screen and photo budgets shrink it differently."""
    im = Image.effect_mandelbrot((1280, 800), (-2, -1.2, 1, 1.2), 40).convert("RGB")
    ImageDraw.Draw(im).text((10, 10), "Error: disk full", fill="white")
    return im


def _answer(captioner, request, options):
    """(text, the new token ids) of one greedy generation."""
    sequences = []
    keep = captioner._keep

    def record(sequence, cache, pixels, prompt_length, request):
        sequences.append((sequence, prompt_length))
        keep(sequence, cache, pixels, prompt_length, request)

    captioner._keep = record
    try:
        text = captioner.generate(request, options).collect().text
    finally:
        captioner._keep = keep
    sequence, prompt_length = sequences[0]
    return text, sequence[0, prompt_length:].tolist()


def _fresh(captioner, request, ids, options) -> list[int]:
    """The new token ids of a greedy run over ``ids`` with the image, from nothing (no kept cache)."""
    import torch

    inputs = dict(captioner.prepare(request))
    n = min(ids.shape[-1], inputs["input_ids"].shape[-1])
    image_tokens = int((inputs["input_ids"][0] == captioner.model.config.image_token_id).sum())
    assert image_tokens and torch.equal(ids[0, :n][ids[0, :n] == captioner.model.config.image_token_id],
                                        inputs["input_ids"][0, :n][inputs["input_ids"][0, :n] == captioner.model.config.image_token_id])
    inputs["input_ids"], inputs["attention_mask"] = ids, torch.ones_like(ids)
    if "mm_token_type_ids" in inputs:
        inputs["mm_token_type_ids"] = (ids == captioner.model.config.image_token_id).to(inputs["mm_token_type_ids"].dtype)
    with torch.inference_mode():
        out = captioner.model.generate(**inputs, max_new_tokens=options.max_new_tokens, do_sample=False)
    return out[0, ids.shape[-1]:].tolist()


@pytest.mark.parametrize("family", ["qwen2-vl-2b", "qwen2.5-vl"])
def test_follow_up_continues_the_kept_conversation_and_matches_a_fresh_run_token_for_token(tiny_models, family):
    """The follow-up's ids are the kept ones (the first answer as generated) plus the new turn: the
    model reads only the new turn, and answers as a run over the same ids from nothing would."""
    from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner

    captioner = ChatVLMCaptioner(family, tiny_models[family], device="cpu", dtype="fp32")
    options = GenerationOptions(max_new_tokens=24)
    image = _screen()
    first = Request(image, "screen")
    answer, _ = _answer(captioner, first, options)
    assert captioner.reused_tokens == captioner.prefix_tokens
    kept = captioner._kept
    cached = kept.cache.get_seq_length()
    history = ((prompt_for(first), answer),)
    follow_up = Request(image, "question", "What does the error say?", history=history, image_kind="screen")
    reused_text, reused_ids = _answer(captioner, follow_up, options)
    assert cached == kept.sequence.shape[-1] - 1, "the cache holds the first turn and its answer"
    assert captioner.reused_tokens == cached, "everything but the new turn came from the cache"
    continued = captioner._kept.sequence[:, :captioner._kept.prompt_length]
    # The ids read after the first prompt are the first answer and the new turn, as the template writes them.
    text, said = captioner._prompt(follow_up), answer.strip()
    assert captioner.processor.tokenizer.decode(continued[0, kept.prompt_length:]).strip() == text[text.rfind(said):].strip()
    assert reused_ids == _fresh(captioner, follow_up, continued, options)
    assert len(reused_ids) > 3

    # And a second follow-up ("and the second one?") continues the first follow-up's cache.
    history2 = history + (("What does the error say?", reused_text),)
    second = Request(image, "question", "And the second one?", history=history2, image_kind="screen")
    cached = captioner._kept.cache.get_seq_length()
    _, second_ids = _answer(captioner, second, options)
    assert captioner.reused_tokens == cached
    assert second_ids == _fresh(captioner, second, captioner._kept.sequence[:, :captioner._kept.prompt_length], options)


@pytest.mark.parametrize("family", ["qwen2-vl-2b", "qwen2.5-vl"])
def test_a_follow_up_with_an_edited_answer_reuses_the_common_start_exactly(tiny_models, family):
    """When the answer in the history is not the kept one as generated (a quote replaced, say), the
    kept cache still serves the ids both share, and the result matches a fresh run token for token."""
    from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner

    captioner = ChatVLMCaptioner(family, tiny_models[family], device="cpu", dtype="fp32")
    options = GenerationOptions(max_new_tokens=24)
    image = _screen()
    first = Request(image, "screen")
    answer, _ = _answer(captioner, first, options)
    history = ((prompt_for(first), answer + " (unconfirmed text)"),)
    follow_up = Request(image, "question", "What does the error say?", history=history, image_kind="screen")
    reused_text, reused_ids = _answer(captioner, follow_up, options)
    prompt_len = captioner.prepare(follow_up)["input_ids"].shape[-1]
    assert prompt_len // 2 < captioner.reused_tokens < prompt_len, "the image and the first turn came from the cache"

    captioner._kept = None  # a fresh run of the whole conversation, image included
    fresh_text, fresh_ids = _answer(captioner, follow_up, options)
    assert captioner.reused_tokens == captioner.prefix_tokens
    assert reused_ids == fresh_ids and reused_text == fresh_text
    assert len(fresh_ids) > 3


def test_a_different_image_never_reuses_the_cache(tiny_qwen):
    from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner

    captioner = ChatVLMCaptioner("tiny", tiny_qwen, device="cpu", dtype="fp32")
    options = GenerationOptions(max_new_tokens=8)
    first = Request(_screen(), "screen")
    answer = captioner.generate(first, options).collect().text
    other = Image.new("RGB", (1280, 800), "navy")
    ImageDraw.Draw(other).text((10, 10), "Another window", fill="white")
    captioner.generate(Request(other, "question", "What is it?", history=((prompt_for(first), answer),),
                               image_kind="screen"), options).collect()
    assert captioner.reused_tokens == captioner.prefix_tokens, "same-size images give the same token ids; the pixels differ"
    # The same image again, on the other hand, is reused.
    captioner.generate(first, options).collect()
    captioner.generate(Request(first.image, "question", "What is it?", history=((prompt_for(first), answer),),
                               image_kind="screen"), options).collect()
    assert captioner.reused_tokens > 0


def test_a_question_about_a_screen_gets_the_screen_budget(tiny_qwen):
    """The error-message hotkey asks a question about a window: a window still gets the screen's
    pixel budget, not a photo's (and a follow-up sees the same pixels as the description before)."""
    from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner

    captioner = ChatVLMCaptioner("tiny", tiny_qwen, device="cpu", dtype="fp32", screen_pixels=256 * 28 * 28,
                                 photo_pixels=64 * 28 * 28)
    image = _screen()
    screen = captioner.prepare(Request(image, "window"))["pixel_values"].shape
    question = captioner.prepare(Request(image, "question", "Is there an error?", image_kind="screen"))
    photo = captioner.prepare(Request(image, "question", "Is there an error?"))["pixel_values"].shape
    assert question["pixel_values"].shape == screen and photo[0] < screen[0]
