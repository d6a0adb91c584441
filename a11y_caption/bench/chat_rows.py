"""The chat model's further rows, timed on the warm model of its default row: grounded in OCR, a
follow-up question, and the key press through the agent's threads to the model's start."""

from __future__ import annotations

import time

from .fixtures import TimingVoice, cold, default_budget, first_word
from .rows import Row

__all__ = ["follow_up", "grounded", "press_to_model_start", "what_the_model_sees"]


def grounded(spec: dict, describer, image) -> Row:
    """The default row again, grounded in OCR (grounding.py; the image at the grounded budget,
    [model] grounded_image_tokens), next to an ungrounded run of the same moment at the default
    budget: what grounding costs in time to the first word, and in prompt tokens. Both ways of
    running OCR are timed (before the model, and beside the model reading the image); the row is
    the way the product takes on this machine (Describer.ocr_runs_beside_model)."""
    from dataclasses import replace

    from ..captioner.base import Request
    from ..captioner.prompts import prompt_for

    captioner = describer.captioner
    budget = default_budget()
    captioner.screen_pixels = budget * 28 * 28
    grounded_pixels = describer.config.grounded_image_tokens * 28 * 28
    cold(describer)
    ungrounded = first_word(describer, image, "screen")
    describer.config = replace(describer.config, ground_in_ocr="auto")
    describer.ocr, describer.ocr_alongside  # loaded with the model, as the agent does, before any press
    t = time.perf_counter()
    screen = describer.read_screen_text(image)
    ocr_s = time.perf_counter() - t
    plain = captioner.prepare(Request(image, "screen", pixels=grounded_pixels))["input_ids"].shape[-1]
    inputs = captioner.prepare(Request(image, "screen", screen_text=screen, pixels=grounded_pixels))
    product_way = describer.ocr_runs_beside_model()
    runs = _both_ways(describer, image, product_way)
    word, token, generation, t0, _ = runs[product_way]
    describer.config = replace(describer.config, ground_in_ocr="never")
    decode_s = generation.finished_at - generation.first_token_at
    extra = {**_ocr_costs(runs, product_way, ungrounded),
             "grounded_image_tokens": describer.config.grounded_image_tokens,
             "ocr_s": ocr_s, "ocr_lines": len(screen.lines),
             # Tokens by this checkpoint's tokenizer (a replica's is learnt from less English than
             # Qwen2's, so a little finer), and the characters, which do not depend on it.
             "prompt_tokens_added_by_ocr": int(inputs["input_ids"].shape[-1] - plain),
             "prompt_chars_added_by_ocr": len(prompt_for(Request(image, "screen", screen_text=screen)))
             - len(prompt_for(Request(image, "screen"))),
             **what_the_model_sees(captioner)}
    variant = f"{spec['precision']}, {describer.config.grounded_image_tokens} image tokens, grounded"
    return Row(spec["model"], variant, int((inputs["input_ids"] == captioner.model.config.image_token_id).sum()),
               None, token, word, generation.finished_at - t0, generation.new_tokens,
               (generation.new_tokens - 1) / decode_s if decode_s > 0 else None, None, extra)


def _both_ways(describer, image, product_way: bool) -> dict:
    """{OCR beside the model: (``first_word``'s figures..., prompt tokens the model read meanwhile)}
    of a grounded description each way, the product's way last: its generation makes the row."""
    runs = {}
    for beside in (not product_way, product_way):
        describer.ocr_beside_model = beside
        cold(describer)
        runs[beside] = first_word(describer, image, "screen")
        runs[beside] += (describer.captioner.reused_tokens,)
    describer.ocr_beside_model = None
    return runs


def _ocr_costs(runs: dict, product_way: bool, ungrounded) -> dict:
    """What grounding adds to the ungrounded run's first word and first token, the product's way
    and each way of running OCR."""
    ungrounded_word, ungrounded_token = ungrounded[0], ungrounded[1]
    word, token = runs[product_way][0], runs[product_way][1]
    first, beside = runs[False], runs[True]
    return {"ungrounded_time_to_first_word_s": ungrounded_word, "grounding_cost_s": word - ungrounded_word,
            "grounding_cost_first_token_s": token - ungrounded_token,
            "ocr_runs": "beside the model" if product_way else "before the model",
            "ocr_first_cost_s": first[0] - ungrounded_word, "ocr_first_cost_first_token_s": first[1] - ungrounded_token,
            "ocr_beside_model_cost_s": beside[0] - ungrounded_word,
            "ocr_beside_model_cost_first_token_s": beside[1] - ungrounded_token,
            "prompt_tokens_read_while_ocr_ran": beside[4]}


def what_the_model_sees(captioner) -> dict:
    """For a 1920x1080 and a 1280x800 screen at the default budget: the scale factor of the image the
    model is given, and how tall 12 px interface text is in it (a 14 px patch reads little below ~8 px)."""
    from PIL import Image

    from ..captioner.base import Request

    out = {}
    for w, h in ((1920, 1080), (1280, 800)):
        inputs = captioner.prepare(Request(Image.new("RGB", (w, h), "grey"), "screen"))
        grid = inputs.get("image_grid_thw")
        if grid is None:
            continue
        patch = captioner.processor.image_processor.patch_size
        scale = float(grid[0][1]) * patch / h
        out[f"scale_{w}x{h}"] = round(scale, 3)
        out[f"text_12px_in_model_input_px_{w}x{h}"] = round(12 * scale, 1)
    return out


def follow_up(spec: dict, describer, image) -> Row:
    """A question about the screen just described, at the default budget: the kept key-value cache
    spares the vision encoder and the first turn, so only the question is read before answering."""
    from ..captioner.base import Request
    from ..captioner.prompts import prompt_for
    from ..speech import Speaker

    captioner = describer.captioner
    captioner.screen_pixels = default_budget() * 28 * 28
    describer.clear_cache()
    first = describer.describe(image, "screen").collect()
    history = ((prompt_for(Request(image, "screen")), first.text),)
    voice = TimingVoice()
    speaker = Speaker(voice)
    t0 = time.perf_counter()
    generation = describer.describe(image, "question", "What does the warning say?", history=history,
                                    image_kind="screen")
    speaker.say_stream(generation)
    speaker.wait()
    speaker.close()
    kept_mb = captioner.kept_cache_mb
    decode_s = generation.finished_at - generation.first_token_at
    return Row(spec["model"], "follow-up question", None, None, generation.first_token_at - t0,
               voice.times[0] - t0, generation.finished_at - t0, generation.new_tokens,
               (generation.new_tokens - 1) / decode_s if decode_s > 0 else None, None,
               {"reused_prompt_tokens": captioner.reused_tokens, "kept_cache_mb": kept_mb})


class StartNoted:
    """The captioner it is given, but noting when each ``generate`` is called: when the model starts."""

    def __init__(self, captioner):
        self.captioner = captioner
        self.started: list[float] = []

    def generate(self, *args, **kwargs):
        self.started.append(time.perf_counter())
        return self.captioner.generate(*args, **kwargs)

    def __getattr__(self, name: str):  # everything else is the captioner's own
        return getattr(self.captioner, name)


def press_to_model_start(describer, image) -> float:
    """Key press (Agent.press) -> the captioning model starts, through the agent's real threads. The
    agent gets a describer of its own with ``describer``'s settings and its loaded model, whose
    start is noted (StartNoted)."""
    from ..agent.core import Agent
    from ..config import Binding, load_config
    from ..describe.describer import Describer
    from ..speech import Speaker

    class StubCapture:  # the bench has no display; mss itself takes ~1 ms at 1280x800
        @staticmethod
        def grab_screen(which):
            return image.copy()

    noted = StartNoted(describer.captioner)
    timed = Describer(describer.config)  # its answer cache is empty: the model runs
    timed.captioner, timed.options = noted, describer.options  # loaded already: load() keeps it
    speaker = Speaker(TimingVoice())
    agent = Agent(load_config(), speaker, describer=timed, capture=StubCapture)
    agent.start()
    while agent.state != "ready":
        time.sleep(0.01)
    pressed = time.perf_counter()
    agent.press(Binding("<ctrl>+<alt>+<shift>+d", "describe_screen"))
    while agent.jobs_run < 1:
        time.sleep(0.01)
    agent.close()
    speaker.close()
    return noted.started[0] - pressed
