"""The prompt's start (system turn, "<|im_start|>user\\n<|vision_start|>") is read into a key-value
cache once per load, and every new conversation starts from a copy of it; the answers are token for
token the ones a run from nothing gives (greedy, tiny random models)."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from a11y_caption.captioner.base import GenerationOptions, Request
from a11y_caption.captioner.prefix_cache import PrefixCache, build_prefix_cache
from a11y_caption.captioner.prompts import prompt_for

N = 12  # new tokens compared: a random model's first few tokens alone could agree by chance


def _screen(colour: str = "white", size=(1280, 800)) -> Image.Image:
    im = Image.effect_mandelbrot(size, (-2, -1.2, 1, 1.2), 40).convert("RGB")
    ImageDraw.Draw(im).text((10, 10), "Error: disk full", fill=colour)
    return im


def _sharpened(captioner):
    """``captioner`` with its language model's attention made sharp, and its prefix read again.

    A tiny random model's attention is nearly uniform, so positions barely matter to it: a prefix
    cache read at positions shifted by 3, or the image given 1-D positions, changes its logits by
    less than 1e-3 and its tokens not at all. Queries and keys 10 times larger make such a slip
    change the answer (``test_the_comparison_tells_wrong_positions``)."""
    import torch

    with torch.no_grad():
        for name, module in captioner.model.named_modules():
            if name.endswith(("q_proj", "k_proj")) and "visual" not in name:
                module.weight.mul_(10)
    captioner._prefix = build_prefix_cache(captioner.model, captioner._prefix_samples, captioner._image_token_id())
    captioner.model.generation_config.min_new_tokens = N  # nonsense may end early; compare N tokens
    return captioner


def _captioner(tiny_models, family):
    from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner

    return _sharpened(ChatVLMCaptioner(family, tiny_models[family], device="cpu", dtype="fp32"))


def _ids(captioner, request) -> list[int]:
    """The new token ids of one greedy generation (and the cache kept of it, as usual)."""
    seen = []
    keep = captioner._keep

    def record(sequence, cache, pixels, prompt_length, request):
        seen.append(sequence[0, prompt_length:].tolist())
        keep(sequence, cache, pixels, prompt_length, request)

    captioner._keep = record
    try:
        captioner.generate(request, GenerationOptions(max_new_tokens=N)).collect()
    finally:
        captioner._keep = keep
    assert len(seen[0]) == N
    return seen[0]


@pytest.mark.parametrize("family", ["qwen2-vl-2b", "qwen2.5-vl"])
def test_descriptions_from_the_prefix_cache_match_runs_from_nothing(tiny_models, family):
    """Two images in a row, then the first again: each answer is the uncached one, so the copy each
    generation extends never changes the prefix cache itself."""
    captioner = _captioner(tiny_models, family)
    k = captioner.prefix_tokens
    inputs = captioner.prepare(Request(_screen(), "screen"))
    first_image = int(inputs["mm_token_type_ids"][0].nonzero()[0])
    assert k == first_image > 1, "the prefix is everything before the first image token"
    assert captioner.processor.tokenizer.decode(inputs["input_ids"][0, :k]).endswith("user\n<|vision_start|>")

    requests = [Request(_screen(), "screen"), Request(_screen("red", (900, 700)), "photo"),
                Request(_screen(), "screen")]
    cached = []
    for request in requests:
        cached.append(_ids(captioner, request))
        assert captioner.reused_tokens == k, "the model read the prompt from the image on"
        captioner.forget()
    assert captioner._prefix._cache.get_seq_length() == k

    captioner.reuse_prefix = False
    assert captioner.prefix_tokens == 0
    fresh = []
    for request in requests:
        fresh.append(_ids(captioner, request))
        assert captioner.reused_tokens == 0
        captioner.forget()
    assert cached == fresh
    assert cached[0] == cached[2]


def test_the_logits_match_those_of_a_run_from_nothing(tiny_qwen):
    """Beneath the captioner: generate(whole prompt, pixels, cache of its first k ids) reads the rest
    with the image and Qwen2-VL's 3-D rotary positions of the whole prompt, so every step's logits
    are those of a run without the cache, to rounding."""
    import torch

    from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner

    captioner = _sharpened(ChatVLMCaptioner("tiny", tiny_qwen, device="cpu", dtype="fp32"))
    inputs = captioner.prepare(Request(_screen(), "screen"))
    kwargs = dict(max_new_tokens=N, min_new_tokens=N, do_sample=False, return_dict_in_generate=True,
                  output_logits=True)
    with torch.inference_mode():
        plain = captioner.model.generate(**inputs, **kwargs)
        cached = captioner.model.generate(**inputs, **captioner._from_prefix(inputs), **kwargs)
    assert torch.equal(plain.sequences, cached.sequences)
    for a, b in zip(plain.logits, cached.logits):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert cached.cache.get_seq_length() == plain.cache.get_seq_length()


def test_the_comparison_tells_wrong_positions(tiny_qwen):
    """The control: with a prefix cache read at the wrong positions, or the image placed by plain
    1-D positions, the sharpened tiny model's answer changes, so the tests above would see it."""
    import torch

    from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner

    captioner = _sharpened(ChatVLMCaptioner("tiny", tiny_qwen, device="cpu", dtype="fp32"))
    model, k = captioner.model, captioner.prefix_tokens
    inputs = captioner.prepare(Request(_screen(), "screen"))
    ids, length = inputs["input_ids"], inputs["input_ids"].shape[-1]
    kwargs = dict(max_new_tokens=N, min_new_tokens=N, do_sample=False)
    with torch.inference_mode():
        plain = model.generate(**inputs, **kwargs)
        shifted = model(input_ids=ids[:, :k], position_ids=(torch.arange(k) + 3).view(1, 1, -1).expand(3, 1, -1),
                        use_cache=True).cache
        wrong_prefix = model.generate(**inputs, cache=shifted, **kwargs)
        flat = torch.arange(length).view(1, 1, -1).expand(4, 1, -1)  # text positions, and 1-D ones for the image
        flat_image = model.generate(**inputs, **captioner._from_prefix(inputs), position_ids=flat, **kwargs)
    assert not torch.equal(plain, wrong_prefix) and not torch.equal(plain, flat_image)


def test_a_follow_up_after_a_prefix_cached_description_still_reuses_its_kept_cache(tiny_models):
    captioner = _captioner(tiny_models, "qwen2-vl-2b")
    image = _screen()
    runs = {}
    for reuse in (True, False):
        captioner.reuse_prefix = reuse
        captioner.forget()
        first = Request(image, "screen")
        answer_ids = _ids(captioner, first)
        assert captioner.reused_tokens == (captioner.prefix_tokens if reuse else 0)
        answer = captioner.processor.tokenizer.decode(answer_ids, skip_special_tokens=True)
        kept = captioner._kept.cache.get_seq_length()
        follow_up = Request(image, "question", "What does the error say?", history=((prompt_for(first), answer),),
                            image_kind="screen")
        runs[reuse] = answer_ids, _ids(captioner, follow_up)
        assert captioner.reused_tokens == kept > captioner.prefix_tokens, "the kept cache, not the prefix"
    assert runs[True] == runs[False]


def test_the_grounded_prefill_starts_from_the_prefix_and_answers_the_same(tiny_qwen):
    """OCR beside the model: prefill reads the image and the prompt's start (from the prefix on)
    while OCR runs; the answer is the one without the prefix cache, and the one in a single pass."""
    from a11y_caption.config import ModelConfig
    from a11y_caption.describe.describer import Describer
    from screens import render_screen

    screen = render_screen()
    describer = Describer(ModelConfig(name=str(tiny_qwen), device="cpu", dtype="fp32", quantize="none",
                                      ground_in_ocr="auto", max_new_tokens=N))
    describer.load()
    model = _sharpened(describer.captioner)
    given = []
    generate = model.model.generate
    model.model.generate = lambda **kw: given.append("cache" in kw) or generate(**kw)
    answers = {}
    for beside, reuse in ((True, True), (True, False), (False, True)):
        describer.clear_cache()
        model.forget()
        model.reuse_prefix, describer.ocr_beside_model = reuse, beside
        given.clear()
        answers[beside, reuse] = describer.describe(screen.image, "screen").collect().text
        if beside:  # prefill, then the generate that reads the rest from its cache
            assert given == [reuse, True] and model.reused_tokens > model.prefix_tokens
        else:
            assert given == [True] and model.reused_tokens == model.prefix_tokens > 0
    assert answers[True, True] == answers[True, False] == answers[False, True]
    assert answers[True, True].strip()


def test_batches_and_beams_do_not_use_the_prefix(tiny_qwen):
    """Left padding shifts a batch's rows; beam search expands its cache: both read the whole prompt."""
    from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner

    captioner = ChatVLMCaptioner("tiny", tiny_qwen, device="cpu", dtype="fp32")
    given = []
    generate = captioner.model.generate
    captioner.model.generate = lambda **kw: given.append("cache" in kw) or generate(**kw)
    captioner.generate_batch([Request(_screen(), "screen"), Request(_screen("red"), "photo")],
                             GenerationOptions(max_new_tokens=3))
    captioner.generate(Request(_screen(), "photo"), GenerationOptions(max_new_tokens=3, num_beams=2)).collect()
    assert given == [False, False] and captioner.reused_tokens == 0


def test_without_reuse_prefix_nothing_is_read_at_load(tiny_qwen):
    from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner

    captioner = ChatVLMCaptioner("tiny", tiny_qwen, device="cpu", dtype="fp32", reuse_prefix=False)
    assert captioner._prefix is None and captioner.prefix_tokens == 0
    captioner.generate(Request(_screen(), "screen"), GenerationOptions(max_new_tokens=2)).collect()
    assert captioner.reused_tokens == 0


def test_only_a_prompt_that_starts_with_the_prefix_and_goes_on_is_served():
    import torch

    prefix = PrefixCache(torch.tensor([[5, 6, 7]]), None)
    assert prefix.fits(torch.tensor([[5, 6, 7, 8]]))
    assert not prefix.fits(torch.tensor([[5, 6, 7]])), "at least one token is left for the model to read"
    assert not prefix.fits(torch.tensor([[5, 9, 7, 8]])), "another template"
    assert not prefix.fits(torch.tensor([[5, 6, 7, 8], [5, 6, 7, 8]])), "one prompt at a time"


def test_a_model_it_does_not_apply_to_loads_without_it(caplog):
    """No prefix cache where generate might drop image inputs given a cache, where the prompts share
    nothing before the image, or where reading it fails: a debug line, never an error."""
    import torch

    def sample(ids, types):
        return {"input_ids": torch.tensor([ids]), "mm_token_type_ids": torch.tensor([types])}

    class Old:
        def prepare_inputs_for_generation(self, input_ids, **kwargs):
            pass

    class Broken:
        def prepare_inputs_for_generation(self, input_ids, is_first_iteration=False, **kwargs):
            pass

        def __call__(self, **kwargs):
            raise RuntimeError("no text-only forward")

    two = lambda: [sample([1, 2, 9, 9, 3], [0, 0, 1, 1, 0]), sample([1, 2, 9, 4], [0, 0, 1, 0])]  # noqa: E731
    with caplog.at_level("DEBUG", logger="a11y_caption.captioner.prefix_cache"):
        assert build_prefix_cache(Old(), two, 9) is None
        assert build_prefix_cache(Broken(), lambda: [sample([9, 1], [1, 0]), sample([9, 2], [1, 0])], 9) is None
        assert build_prefix_cache(Broken(), two, 9) is None
    assert [r.getMessage().split(":")[1].strip() for r in caplog.records] == [
        "this model's generate may leave image inputs out when given a cache",
        "the prompts share no tokens before the image", "RuntimeError"]
