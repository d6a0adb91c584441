"""The timed runs of our own pipeline, each in a child process of its own (children.py): the first
load, load and one description, the warm model's rows, and the idle agent."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from .chat_rows import follow_up, grounded, press_to_model_start
from .fixtures import (
    TimingVoice, blip_patches, cold, default_budget, default_precision, model_config, photo, screenshot,
)
from .machine import int8_kernel, peak_rss_mb, rss_mb
from .object_rows import object_rows
from .rows import BENCH_MODELS, Row

__all__ = ["first_load", "idle_agent", "objects", "one_description", "ours", "PrefillOps"]


def first_load(spec: dict) -> Row:
    """The first int8 load of a checkpoint: converted, and the copy written (int8_store); timed and
    its peak memory taken in a process of its own."""
    from ..captioner.int8_store import model_key, store_for

    folder = Path(spec["folder"])
    shutil.rmtree(store_for(folder, model_key(spec["folder"]), spec["precision"]), ignore_errors=True)
    from ..captioner import load_captioner

    start = time.perf_counter()
    captioner = load_captioner(spec["folder"], quantize=spec["precision"])
    seconds = time.perf_counter() - start
    assert captioner.loaded_from == "converted", captioner.loaded_from
    return Row(spec["model"], "first load", peak_rss_mb=peak_rss_mb(),
               extra={"first_load_s": seconds, "rss_after_first_load_mb": rss_mb()})


def one_description(spec: dict) -> Row:
    """What an agent does after it starts: load the model (its kept copy) and describe one screen
    (BLIP: one photo) at the default image budget, in a process of its own, for its peak memory.
    The rows of ``ours`` share one process across budgets, so their peak is the largest budget's.
    A chat model then describes the screen again grounded in OCR, as the default settings do
    (``ground_in_ocr``): the peak with OCR's reader and buffers too."""
    from dataclasses import replace

    from ..config import ModelConfig
    from ..describe.describer import Describer

    chat = BENCH_MODELS[spec["model"]] == "chat"  # this child's kind is "one-description"
    describer = Describer(model_config(spec))
    describer.load()
    describer.describe(screenshot() if chat else photo(), "screen" if chat else "photo").collect()
    extra = {"rss_after_one_description_mb": rss_mb(), "peak_rss_model_alone_mb": peak_rss_mb()}
    if chat:
        describer.config = replace(describer.config, ground_in_ocr=ModelConfig().ground_in_ocr)
        cold(describer)
        describer.describe(screenshot(), "screen").collect()
        extra["rss_after_grounded_description_mb"] = rss_mb()
    return Row(spec["model"], "load and one description", peak_rss_mb=peak_rss_mb(), extra=extra)


def ours(spec: dict) -> list[Row]:
    """Our pipeline: Describer (blank check, cache, budget) -> streaming -> Speaker, warm model."""
    chat = spec["kind"] == "chat"
    task = "screen" if chat else "photo"
    describer, load_s, rss_loaded = _loaded_and_warm(spec, task)
    image = screenshot() if chat else photo()
    rows = [_budget_row(spec, describer, image, task, budget, load_s, rss_loaded)
            for budget in spec.get("budgets", [None])]
    if chat and spec["precision"] == default_precision() and not spec.get("kernel"):
        rows.append(grounded(spec, describer, image))
        rows.append(follow_up(spec, describer, image))
    rows[-1].extra["identical_image_s"] = _identical_image_s(describer, image, task)
    if chat and not spec.get("kernel"):
        rows[-1].extra["press_to_model_start_s"] = press_to_model_start(describer, image)
    if chat and spec["model"] == "qwen2-vl-2b" and spec["precision"] == default_precision() and not spec.get("kernel"):
        rows += object_rows(spec, describer)
    for row in rows:
        row.peak_rss_mb = peak_rss_mb()
    return rows


def objects(spec: dict) -> list[Row]:
    """``bench --objects``: the object rows alone (object_rows.py), on the warm model."""
    describer, _, _ = _loaded_and_warm(spec, "screen")
    rows = object_rows(spec, describer)
    for row in rows:
        row.peak_rss_mb = peak_rss_mb()
    return rows


def _loaded_and_warm(spec: dict, task: str):
    """(the variant's Describer, its model loaded and warmed up on another image, the seconds the load
    took, the RSS after it); from then on it generates exactly the variant's number of tokens."""
    from ..captioner.base import GenerationOptions
    from ..describe.describer import Describer

    start = time.perf_counter()
    describer = Describer(model_config(spec))
    describer.load()
    load_s = time.perf_counter() - start
    rss_loaded = rss_mb()
    describer.options = GenerationOptions(max_new_tokens=2)
    describer.describe(photo() if task == "screen" else screenshot(), task).collect()  # warm-up, another image
    # Where the int8 layers are packed in the background after the load (packing.pack_for_this_cpu),
    # the timed rows wait for it: they time the kernel the model runs with from then on.
    from ..captioner.packing import wait_until_packed

    wait_until_packed(describer.captioner.model)
    spec["background_packing_s"] = time.perf_counter() - start - load_s
    describer.options = GenerationOptions(max_new_tokens=spec["new_tokens"])
    # random weights may stop early: time n tokens
    describer.captioner.model.generation_config.min_new_tokens = spec["new_tokens"]
    return describer, load_s, rss_loaded


def _budget_row(spec: dict, describer, image, task: str, budget: int | None, load_s: float,
                rss_loaded: float) -> Row:
    """One timed description at the image budget ``budget`` (a chat model's; None for BLIP)."""
    from ..captioner.base import Request
    from ..speech import Speaker

    chat, precision, captioner = spec["kind"] == "chat", spec["precision"], describer.captioner
    if budget:
        captioner.screen_pixels = budget * 28 * 28
    cold(describer)
    voice = TimingVoice()
    speaker = Speaker(voice)
    t = time.perf_counter()
    inputs = captioner.prepare(Request(image, task)) if chat else None
    preprocess_s = time.perf_counter() - t
    image_tokens = (int((inputs["input_ids"] == captioner.model.config.image_token_id).sum()) if chat
                    else blip_patches(captioner.model))
    counted = PrefillOps(captioner.model) if chat else None
    t0 = time.perf_counter()
    generation = describer.describe(image, task)
    speaker.say_stream(generation)
    speaker.wait()
    speaker.close()
    decode_s = generation.finished_at - generation.first_token_at
    variant = f"{precision}, {budget} image tokens" if budget else precision
    if spec.get("kernel"):
        variant += f", kernel {int8_kernel(spec['kernel'])} (measured, not the product's)"
    elif chat and budget == default_budget() and precision == default_precision():
        variant += " (default)"
    extra = {"load_s": load_s, "loaded_from": captioner.loaded_from,
             "rss_after_load_mb": rss_loaded, "last_token_to_audio_s": voice.times[-1] - generation.finished_at}
    if precision in ("int8", "int4"):
        extra["int8_kernel"] = int8_kernel(spec.get("kernel"))
        extra.update({k: spec[k] for k in ("background_packing_s",) if k in spec})
    if counted is not None:
        extra["prefill_gop"] = counted.ops / 1e9
        gops = spec.get("int8_gops_int_mm" if spec.get("kernel") == "int_mm" else "int8_gops")
        if gops and precision == "int8":
            extra["prefill_efficiency"] = counted.ops / 1e9 / ((generation.first_token_at - t0) * gops)
    return Row(spec["model"], variant, image_tokens, preprocess_s, generation.first_token_at - t0,
               voice.times[0] - t0, generation.finished_at - t0, generation.new_tokens,
               (generation.new_tokens - 1) / decode_s if decode_s > 0 else None, None, extra)


def _identical_image_s(describer, image, task: str) -> float:
    """Key press to first word for the same image again: answered from the hash-keyed cache."""
    from ..speech import Speaker

    t0 = time.perf_counter()
    voice = TimingVoice()
    speaker = Speaker(voice)
    generation = describer.describe(image, task)
    speaker.say_stream(generation)
    speaker.wait()
    return voice.times[0] - t0


class PrefillOps:
    """Counts the operations (2 per multiply-add) of every Linear layer in the model's first forward
    pass from now on, the prefill: whatever the family (vision tower over its patches, connector,
    language model over the prompt, the head over the positions it is asked for), as run. Attention
    scores are left out (a few percent here)."""

    def __init__(self, model):
        self.ops, self._done = 0.0, False
        linears = [m for m in model.modules() if type(m).__name__ in ("Linear", "Int8Linear", "Int4Linear")]
        self._hooks = [m.register_forward_hook(self._count) for m in linears]
        self._hooks.append(model.register_forward_hook(self._finished))

    def _count(self, module, args, output):
        if not self._done:
            rows = args[0].numel() // args[0].shape[-1]
            self.ops += 2.0 * rows * module.in_features * module.out_features

    def _finished(self, *_):
        self._done = True
        for hook in self._hooks:
            hook.remove()


def idle_agent() -> Row:
    """The agent running with no model weights on disk (it reads text only), after start-up."""
    import tempfile

    from ..agent.core import Agent
    from ..config import ModelConfig, load_config
    from ..describe.describer import Describer
    from ..speech import Speaker

    voice = TimingVoice()
    speaker = Speaker(voice)
    missing = Path(tempfile.gettempdir()) / "a11y-caption-bench-no-model"
    agent = Agent(load_config(), speaker, describer=Describer(ModelConfig(name=str(missing))))
    agent.start()
    while agent.state != "ready":
        time.sleep(0.01)
    time.sleep(0.5)
    rss = rss_mb()
    agent.close()
    speaker.close()
    return Row("none", "idle agent, no model loaded", peak_rss_mb=rss,
               extra={"rss_is": "current VmRSS, agent threads and speaker running; no keyboard listener "
                                "(pynput needs a display)"})
