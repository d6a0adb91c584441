"""SmolVLM2 and LFM2-VL through the one generic chat path, with tiny random replicas
(bench/replica_compact.py): loading, streaming, int8 and its kept copy, the image-token budget
(captioner/budgets.py) and follow-up questions."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from a11y_caption.captioner import GenerationOptions, Request, load_captioner
from a11y_caption.captioner.budgets import TOKEN_PX, image_inputs
from a11y_caption.captioner.chat import fit_pixels
from a11y_caption.captioner.prompts import prompt_for
from a11y_caption.captioner.screen_text import ScreenLine, ScreenText
from conftest import non_word_start_tokens

FAMILIES = {"smolvlm2-500m": "SmolVLMForConditionalGeneration", "lfm2-vl-450m": "Lfm2VlForConditionalGeneration"}

# LFM2's short-convolution layers keep only their last 3 inputs, so their cache cannot be cut back:
# a follow-up that continues the kept conversation exactly needs no cut and reuses it; one that
# would need a cut reads everything again (chat_vlm._rolled_back).
_REUSE = ["smolvlm2-500m", "lfm2-vl-450m"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    from a11y_caption.bench.replica import build_replica

    root = tmp_path_factory.mktemp("tiny-compact")
    return {name: build_replica(name, root / name, full=False) for name in FAMILIES}


@pytest.fixture(scope="module")
def screen() -> Image.Image:
    im = Image.effect_mandelbrot((1280, 800), (-2, -1.2, 1, 1.2), 40).convert("RGB")
    ImageDraw.Draw(im).text((10, 10), "Error: disk full", fill="white")
    return im


def _load(folder, **kwargs):
    return load_captioner(str(folder), device="cpu", **{"quantize": "none", **kwargs})


def _image_tokens(captioner, inputs) -> int:
    return int((inputs["input_ids"] == captioner.processor.image_token_id).sum())


def test_tiny_replicas_are_small(tiny):
    for folder in tiny.values():
        assert sum(f.stat().st_size for f in folder.iterdir()) < 1_000_000


@pytest.mark.parametrize("family", FAMILIES)
def test_loads_through_the_generic_path_and_streams_a_description(tiny, screen, family):
    from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner

    captioner = _load(tiny[family])
    assert isinstance(captioner, ChatVLMCaptioner) and type(captioner.model).__name__ == FAMILIES[family]
    assert captioner.loaded_from == "checkpoint"
    # Words only, so that the streamer (which releases text a word at a time) has many chunks.
    captioner.model.generation_config.suppress_tokens = non_word_start_tokens(captioner.processor.tokenizer.get_vocab())
    generation = captioner.generate(Request(screen, "screen"), GenerationOptions(max_new_tokens=16))
    chunks = list(generation)
    assert len(chunks) > 5 and all(chunks) and generation.new_tokens == 16


@pytest.mark.parametrize("family", FAMILIES)
def test_int8_converts_every_linear_and_the_kept_copy_loads_back(tiny, family):
    from torch import nn

    from a11y_caption.captioner.quantize import Int8Linear

    first = _load(tiny[family], quantize="int8")
    assert first.loaded_from == "converted"
    assert any(type(m) is Int8Linear for m in first.model.modules())
    floats = [n for n, m in first.model.named_modules() if type(m) is nn.Linear]
    assert all(n.endswith(".patch_embedding") for n in floats), "every Linear is int8 but a patch embedding"
    kept = _load(tiny[family], quantize="int8")
    assert kept.loaded_from == "kept copy"
    assert [n for n, m in kept.model.named_modules() if type(m) is nn.Linear] == floats
    assert not any(p.is_meta for p in kept.model.parameters())


@pytest.mark.parametrize("family", [
    "smolvlm2-500m",
    # SigLIP2's patch embedding (an nn.Linear) casts the pixels to its own weight's dtype
    # (Siglip2VisionEmbeddings.forward): it stays float (quantize.FLOAT_LINEARS).
    "lfm2-vl-450m",
])
def test_the_int8_model_and_its_kept_copy_describe_alike(tiny, screen, family):
    from a11y_caption.captioner.packing import wait_until_packed

    first, kept = _load(tiny[family], quantize="int8"), _load(tiny[family], quantize="int8")
    assert (first.loaded_from, kept.loaded_from) == ("converted", "kept copy")
    assert all(wait_until_packed(c.model, timeout=120) for c in (first, kept))  # one kernel for both
    options = GenerationOptions(max_new_tokens=6)
    texts = [c.generate(Request(screen, "screen"), options).collect() for c in (first, kept)]
    assert texts[0].new_tokens == 6 and texts[0].text == texts[1].text


@pytest.mark.parametrize("family", FAMILIES)
def test_the_budget_bounds_a_screens_image_tokens(tiny, screen, family):
    small, large = _load(tiny[family], screen_image_tokens=256), _load(tiny[family], screen_image_tokens=1024)
    at_256 = _image_tokens(small, small.prepare(Request(screen, "screen")))
    at_1024 = _image_tokens(large, large.prepare(Request(screen, "screen")))
    # SmolVLM2: 1 tile (64) at 256, 7 tiles (448) at 1024; LFM2-VL: 240 at 256, 2 tiles (512) at 1024.
    assert 0 < at_256 <= 256 < at_1024 <= 1024


@pytest.mark.parametrize("family", FAMILIES)
def test_no_image_shape_exceeds_the_budget(tiny, family):
    """The caps cannot see the image: they hold for a screen, a square and a tall picture alike,
    down to each family's floor (SmolVLM2: one tile of 64 tokens)."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny[family])
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}],
        add_generation_prompt=True)
    for budget in (64, 128, 256, 512, 2048):
        pixels, kwargs = image_inputs(processor, budget * TOKEN_PX)
        for size in ((1280, 800), (900, 900), (600, 1200)):
            inputs = processor(text=[text], images=[fit_pixels(Image.new("RGB", size, "gray"), pixels)],
                               return_tensors="pt", **kwargs)
            tokens = int((inputs["input_ids"] == processor.image_token_id).sum())
            assert 0 < tokens <= budget, (budget, size, tokens)


@pytest.mark.parametrize("family", _REUSE)
def test_a_follow_up_reuses_the_kept_cache(tiny, screen, family):
    captioner = _load(tiny[family])
    captioner.model.generation_config.suppress_tokens = non_word_start_tokens(captioner.processor.tokenizer.get_vocab())
    options = GenerationOptions(max_new_tokens=8)
    first = Request(screen, "screen")
    answer = captioner.generate(first, options).collect().text
    follow_up = Request(screen, "question", "What does the error say?", history=((prompt_for(first), answer),),
                        image_kind="screen")
    again = captioner.generate(follow_up, options).collect()
    assert again.new_tokens == 8 and again.text
    assert captioner.reused_tokens > _image_tokens(captioner, captioner.prepare(first))


@pytest.mark.parametrize("family", _REUSE)
def test_a_grounded_description_after_prefill(tiny, screen, family):
    captioner = _load(tiny[family])
    captioner.model.generation_config.suppress_tokens = non_word_start_tokens(captioner.processor.tokenizer.get_vocab())
    request = Request(screen, "screen", screen_text=ScreenText((ScreenLine("Error: disk full", "top left"),)))
    captioner.prefill(request)
    assert captioner.generate(request, GenerationOptions(max_new_tokens=4)).collect().new_tokens == 4
    assert captioner.reused_tokens > 0
