"""The model layer with tiny real models: streaming, stop, the factory and its typed errors."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from a11y_caption.captioner import GenerationOptions, Request, load_captioner
from a11y_caption.captioner.factory import backend_for
from a11y_caption.errors import ModelLoadError, ModelNotFound, UnsupportedModel
from a11y_caption.captioner.prompts import prompt_for
from conftest import SAMPLE, add_to_hub_cache, non_word_start_tokens


@pytest.fixture(scope="module")
def qwen(tiny_qwen):
    return load_captioner(str(tiny_qwen))


@pytest.fixture(scope="module")
def wordy(tiny_qwen):
    """The tiny Qwen limited to tokens that start a new word, so its stream has many words.

    A random model's text rarely has spaces, and a text streamer releases text word by word.
    """
    captioner = load_captioner(str(tiny_qwen))
    vocab = captioner.processor.tokenizer.get_vocab()
    captioner.model.generation_config.suppress_tokens = non_word_start_tokens(vocab)
    return captioner


@pytest.fixture(scope="module")
def screen():
    return Image.open(SAMPLE).convert("RGB")


def test_factory_picks_backend_from_config(tiny_models):
    assert backend_for(tiny_models["qwen2-vl-2b"]) == "chat_vlm"
    assert backend_for(tiny_models["qwen2.5-vl"]) == "chat_vlm"
    assert backend_for(tiny_models["blip-base"]) == "blip"


def test_chunks_arrive_while_the_model_is_still_generating(wordy, screen):
    generation = wordy.generate(Request(screen, "screen"), GenerationOptions(max_new_tokens=60))
    seen_alive = []
    for _ in generation:
        seen_alive.append(any(t.name == "a11y-generate" and t.is_alive() for t in threading.enumerate()))
    assert len(seen_alive) > 30, "one chunk per word"
    assert all(seen_alive[:20]), "chunks arrived before generation ended"
    assert generation.new_tokens == 60


def test_stop_ends_generation_not_just_reading(wordy, screen):
    stop = threading.Event()
    generation = wordy.generate(Request(screen, "screen"), GenerationOptions(max_new_tokens=400), stop)
    for i, _ in enumerate(generation):
        if i == 2:
            stop.set()
    assert generation.stopped
    assert 0 < generation.new_tokens < 50, generation.new_tokens
    assert not any(t.name == "a11y-generate" for t in threading.enumerate())


def test_abandoning_a_stream_stops_the_model(wordy, screen):
    generation = wordy.generate(Request(screen, "screen"), GenerationOptions(max_new_tokens=400))
    for _ in generation:
        break
    assert generation.stop.is_set()
    assert not any(t.name == "a11y-generate" for t in threading.enumerate())


def test_sampling_and_beams(qwen, screen):
    sampled = qwen.generate(Request(screen, "photo"), GenerationOptions(max_new_tokens=5, temperature=0.8)).collect()
    beams = qwen.generate(Request(screen, "photo"), GenerationOptions(max_new_tokens=5, num_beams=2)).collect()
    assert sampled.text and beams.text
    assert beams.new_tokens == 5


def test_blip_prefix_starts_the_caption(tiny_blip, screen):
    blip = load_captioner(str(tiny_blip), blip_prefix="a screenshot of")
    streamed = blip.generate(Request(screen), GenerationOptions(max_new_tokens=5)).collect()
    assert streamed.text.startswith("a screenshot of ")
    assert streamed.new_tokens == 5
    beams = blip.generate(Request(screen), GenerationOptions(max_new_tokens=5, num_beams=2)).collect()
    assert beams.text.startswith("a screenshot of")


def test_image_budget_bounds_image_tokens(tiny_qwen, screen):
    small = load_captioner(str(tiny_qwen), screen_image_tokens=64)
    large = load_captioner(str(tiny_qwen), screen_image_tokens=512)
    image_id = small.model.config.image_token_id
    count = lambda c: int((c.prepare(Request(screen, "screen"))["input_ids"] == image_id).sum())  # noqa: E731
    assert count(small) <= 64 < count(large) <= 512


def test_prompts():
    image = Image.new("RGB", (4, 4))
    assert "alt text" in prompt_for(Request(image, "alt_text")).lower()
    assert prompt_for(Request(image, "question", "Is there an error?", "German")) == "Is there an error? Answer in German."
    with pytest.raises(ValueError):
        prompt_for(Request(image, "question"))


def test_missing_hub_model_names_the_pull_command():
    with pytest.raises(ModelNotFound) as e:
        load_captioner("someone/not-downloaded")
    assert str(e.value) == ("The model someone/not-downloaded is not on this computer. "
                            "Download it with: a11y-caption models pull someone/not-downloaded")


def test_missing_folder(tmp_path):
    with pytest.raises(ModelNotFound):
        load_captioner(str(tmp_path / "nothing-here"))


def test_only_safetensors_weights_load(tiny_qwen, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_qwen, folder)
    for f in folder.glob("*.safetensors"):
        f.rename(f.with_suffix(".bin"))
    with pytest.raises(ModelLoadError, match="no safetensors weights"):
        load_captioner(str(folder))


def test_corrupt_weights_are_one_sentence(tiny_qwen, tmp_path):
    folder = tmp_path / "corrupt"
    shutil.copytree(tiny_qwen, folder)
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="damaged or incomplete"):
        load_captioner(str(folder))


def test_unsupported_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(UnsupportedModel, match="bert model, which cannot describe images"):
        load_captioner(str(tmp_path))


def test_hub_id_resolves_from_the_local_cache(tiny_blip):
    """A hub id is found in the Hugging Face cache exactly as `models pull` leaves it."""
    from huggingface_hub import constants

    cache = add_to_hub_cache(tiny_blip, Path(constants.HF_HUB_CACHE), "acme/tiny-blip")
    captioner = load_captioner("acme/tiny-blip")
    assert captioner.name == "acme/tiny-blip"
    assert captioner.generate(Request(Image.new("RGB", (64, 64), "red")), GenerationOptions(max_new_tokens=3)).collect().text

    from conftest import run_cli

    r = run_cli("models", "list", env={"HF_HUB_CACHE": str(cache)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("acme/tiny-blip\t0.00 GB\t")
    assert "blip-base (Salesforce/blip-image-captioning-base, 0.9 GB)" in r.stderr


def test_time_to_stop_is_short(wordy, screen):
    stop = threading.Event()
    generation = wordy.generate(Request(screen, "screen"), GenerationOptions(max_new_tokens=2000), stop)
    chunks = iter(generation)
    next(chunks)
    start = time.perf_counter()
    stop.set()
    for _ in chunks:
        pass
    assert time.perf_counter() - start < 2.0


def test_int8_quantization_replaces_linear_layers_and_still_generates(tiny_qwen, screen):
    from torch import nn

    quantized = load_captioner(str(tiny_qwen), quantize="int8")
    from a11y_caption.captioner.quantize import Int8Linear

    assert any(isinstance(m, Int8Linear) for m in quantized.model.modules())
    assert not any(type(m) is nn.Linear for m in quantized.model.model.modules()), "every body Linear is int8"
    assert quantized.generate(Request(screen, "screen"), GenerationOptions(max_new_tokens=4)).collect().new_tokens == 4


@pytest.mark.parametrize("packed", [False, True], ids=["int_mm", "packed"])
@pytest.mark.parametrize("rows", [1, 8, 100])
def test_int8_linear_matches_the_float_layer(rows, packed, monkeypatch):
    """Per-row int8 weights keep a Linear's output within ~1% of the float result: with
    torch._int_mm both when decoding (few rows: the weight is the kernel's left operand) and when
    reading a prompt, and packed for torch.ao's engine, as CPUs without AVX-512 VNNI run it."""
    import torch
    from torch import nn

    from a11y_caption.captioner import packing, quantize
    from a11y_caption.captioner.quantize import SMALL_BATCH, quantize_int8

    assert (rows <= SMALL_BATCH) == (rows < 50)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 64)).to(torch.bfloat16)
    x = torch.randn(rows, 256)
    x[0] = 0  # an all-zero row quantizes without dividing by zero
    expected = model.float()(x)
    model.to(torch.bfloat16)
    quantize_int8(model)
    monkeypatch.setattr(packing, "packs_int8", lambda: packed)
    packing.pack_for_this_cpu(model, background=False)
    assert not any(type(m) is nn.Linear for m in model.modules())
    assert all((m._packed is not None) == packed for m in model.modules() if type(m) is quantize.Int8Linear)
    got = model(x)
    assert got.dtype == torch.float32
    # torch.ao's kernel quantizes a whole input with one 7-bit scale, ours each row with 8 bits
    assert (got - expected).norm() / expected.norm() < (0.03 if packed else 0.02)


def _with_position_limit(folder: Path, out: Path, limit: int) -> Path:
    """A copy of a tiny checkpoint whose text model reads at most ``limit`` positions (random weights)."""
    from transformers import AutoConfig, AutoModelForImageTextToText, BlipForConditionalGeneration

    shutil.copytree(folder, out)
    config = AutoConfig.from_pretrained(out)
    config.text_config.max_position_embeddings = limit
    model = (BlipForConditionalGeneration(config) if config.model_type == "blip"
             else AutoModelForImageTextToText.from_config(config))
    model.save_pretrained(out)
    return out


def test_answers_stay_within_the_models_position_limit(tiny_blip, screen, tmp_path, caplog):
    """BLIP's learned position table has max_position_embeddings rows: 128 new tokens from a model
    with 64 used to end in "IndexError: index out of range in self". The answer is capped instead,
    and the cap is logged once."""
    captioner = load_captioner(str(_with_position_limit(tiny_blip, tmp_path / "short-blip", 64)), quantize="none")
    captioner.model.generation_config.min_new_tokens = 128  # a random model may stop early on its own
    options = GenerationOptions(max_new_tokens=128)
    with caplog.at_level("WARNING"):
        for _ in range(2):
            generation = captioner.generate(Request(screen, "photo"), options)
            generation.collect()
            assert 0 < generation.new_tokens <= 64
    assert sum("capped at" in r.getMessage() for r in caplog.records) == 1


def test_a_prompt_beyond_the_position_limit_is_one_sentence(tiny_qwen, screen, tmp_path):
    from a11y_caption.errors import GenerationError

    captioner = load_captioner(str(_with_position_limit(tiny_qwen, tmp_path / "short-qwen", 64)))
    with pytest.raises(GenerationError, match=r"^The image and prompt take \d+ tokens, more than the 64 .*\.$"):
        captioner.generate(Request(screen, "screen"), GenerationOptions(max_new_tokens=8)).collect()


def test_an_error_inside_generate_is_one_sentence_without_its_text(qwen, screen, monkeypatch):
    """A library error's own text may quote screen content or run to pages: the user hears which
    error it was and where, in one sentence; the original stays chained for the debug log."""
    from a11y_caption.errors import GenerationError

    def broken(**kwargs):
        raise RuntimeError("shape mismatch 1x2 vs 3x4: secret screen text")

    monkeypatch.setattr(qwen.model, "generate", broken)
    with pytest.raises(GenerationError) as caught:
        qwen.generate(Request(screen, "screen"), GenerationOptions(max_new_tokens=4)).collect()
    message = str(caught.value)
    assert message.startswith("The model ") and "RuntimeError" in message and "secret" not in message
    assert "\n" not in message and isinstance(caught.value.__cause__, RuntimeError)
