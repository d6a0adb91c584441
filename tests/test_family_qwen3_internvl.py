"""Qwen3-VL-2B and InternVL3-1B / -2B through the one generic chat path, with their tiny random
replicas (bench/replica_qwen_family.py): a screen streams a description, int8 and its kept copy
load, the image budget caps the image tokens, and a follow-up reuses the kept cache."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from a11y_caption.captioner import GenerationOptions, Request, load_captioner
from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner
from a11y_caption.captioner.prompts import prompt_for
from conftest import non_word_start_tokens

FAMILIES = ["qwen3-vl-2b", "internvl3-1b", "internvl3-2b"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    from a11y_caption.bench.replica import build_replica

    root = tmp_path_factory.mktemp("tiny-qwen-family")
    return {name: build_replica(name, root / name, full=False) for name in FAMILIES}


@pytest.fixture(scope="module")
def screen() -> Image.Image:
    im = Image.effect_mandelbrot((1280, 800), (-2, -1.2, 1, 1.2), 40).convert("RGB")
    ImageDraw.Draw(im).text((10, 10), "Error: disk full", fill="white")
    return im


def _wordy(captioner):
    """Only tokens that start a word (no end token): a random model then writes words to the end."""
    captioner.model.generation_config.suppress_tokens = non_word_start_tokens(captioner.processor.tokenizer.get_vocab())
    return captioner


def _image_tokens(captioner, screen) -> int:
    ids = captioner.prepare(Request(screen, "screen"))["input_ids"]
    return int((ids == captioner.model.config.image_token_id).sum())


@pytest.mark.parametrize("family", FAMILIES)
def test_a_screen_description_streams_through_the_generic_path(tiny, family, screen):
    captioner = _wordy(load_captioner(str(tiny[family]), quantize="none"))
    assert isinstance(captioner, ChatVLMCaptioner) and captioner.loaded_from == "checkpoint"
    generation = captioner.generate(Request(screen, "screen"), GenerationOptions(max_new_tokens=12))
    chunks = list(generation)
    assert len(chunks) > 3 and "".join(chunks).strip()
    assert generation.new_tokens == 12


@pytest.mark.parametrize("family", FAMILIES)
def test_int8_converts_every_linear_and_the_kept_copy_loads_back(tiny, family, screen):
    from torch import nn

    from a11y_caption.captioner.packing import wait_until_packed
    from a11y_caption.captioner.quantize import Int8Linear

    first = load_captioner(str(tiny[family]), quantize="int8")
    assert first.loaded_from == "converted"
    kept = load_captioner(str(tiny[family]), quantize="int8")
    assert kept.loaded_from == "kept copy"
    for captioner in (first, kept):
        assert any(type(m) is Int8Linear for m in captioner.model.modules())
        assert not any(type(m) is nn.Linear for m in captioner.model.modules()), "every Linear is int8"
    options = GenerationOptions(max_new_tokens=6)
    assert all(wait_until_packed(c.model, timeout=120) for c in (first, kept))  # one kernel for both
    answers = [_wordy(c).generate(Request(screen, "screen"), options).collect() for c in (first, kept)]
    assert answers[0].new_tokens == 6 and answers[0].text == answers[1].text


@pytest.mark.parametrize("family", FAMILIES)
def test_the_budget_caps_the_image_tokens(tiny, family, screen):
    small = _image_tokens(load_captioner(str(tiny[family]), quantize="none", screen_image_tokens=256), screen)
    large = _image_tokens(load_captioner(str(tiny[family]), quantize="none", screen_image_tokens=1024), screen)
    if family.startswith("internvl"):
        assert (small, large) == (256, 768), "one tile; then a 2 x 1 grid and its thumbnail"
    else:
        assert 200 < small <= 256 < large <= 1024
    tiny_budget = _image_tokens(load_captioner(str(tiny[family]), quantize="none", screen_image_tokens=64), screen)
    assert tiny_budget == 256 if family.startswith("internvl") else tiny_budget <= 64


@pytest.mark.parametrize("family", FAMILIES)
def test_a_follow_up_on_the_same_image_reuses_the_kept_cache(tiny, family, screen):
    captioner = _wordy(load_captioner(str(tiny[family]), quantize="none"))
    options = GenerationOptions(max_new_tokens=8)
    first = Request(screen, "screen")
    answer = captioner.generate(first, options).collect().text
    # A first turn reads the image: at most the prompt's start before it comes from a cache.
    assert captioner.reused_tokens == captioner.prefix_tokens and captioner._kept is not None
    cached = captioner._kept.cache.get_seq_length()
    follow_up = Request(screen, "question", "What does the error say?", history=((prompt_for(first), answer),),
                        image_kind="screen")
    again = captioner.generate(follow_up, options).collect()
    assert captioner.reused_tokens == cached > 256, "the image and the first answer came from the cache"
    assert again.new_tokens == 8
