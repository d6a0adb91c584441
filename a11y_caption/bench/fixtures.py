"""What a timed run is given and timed with: the bench's images, the model settings of a variant,
and a voice that notes when it is handed each utterance."""

from __future__ import annotations

import time

__all__ = ["TimingVoice", "blip_patches", "cold", "default_budget", "default_precision", "first_word",
           "model_config", "photo", "screenshot"]


def screenshot():
    """A 1280x800 screen: the bundled sample window twice over, on a desktop-grey background."""
    from importlib import resources

    from PIL import Image

    sample = Image.open(str(resources.files("a11y_caption") / "samples" / "sample-screen.png")).convert("RGB")
    screen = Image.new("RGB", (1280, 800), (52, 61, 70))
    screen.paste(sample, (0, 0))
    screen.paste(sample.resize((840, 330)), (420, 440))
    return screen


def photo():
    from PIL import Image

    return Image.effect_mandelbrot((640, 480), (-2, -1.2, 1, 1.2), 80).convert("RGB")


class TimingVoice:
    """A speech sink that notes when each utterance is handed to it (no sound card is needed)."""

    def __init__(self):
        self.times: list[float] = []

    def say(self, text: str) -> None:
        self.times.append(time.perf_counter())

    def interrupt(self) -> None:
        pass

    def close(self) -> None:
        pass


def model_config(spec: dict):
    """The model settings of a bench variant: its precision, its answer length, and the model
    alone (no OCR appendix, no grounding; the grounded row switches grounding on)."""
    from ..config import ModelConfig

    precision = spec["precision"]
    quantized = precision in ("int8", "int4")
    return ModelConfig(name=spec["folder"], dtype="auto" if quantized else precision,
                       quantize=precision if quantized else "none", max_new_tokens=spec["new_tokens"],
                       add_ocr_text="never", ground_in_ocr="never")


def default_budget() -> int:
    from ..config import ModelConfig

    return ModelConfig().screen_image_tokens


def default_precision() -> str:
    from ..captioner import pick_dtype

    import torch

    from ..config import ModelConfig

    if ModelConfig().quantize in ("int8", "auto"):  # auto is int8 on the CPU this bench runs on
        return "int8"
    return {torch.float32: "fp32", torch.bfloat16: "bf16"}.get(pick_dtype(ModelConfig().dtype, "cpu"), "fp32")


def blip_patches(model) -> int:
    vision = model.config.vision_config
    return (vision.image_size // vision.patch_size) ** 2


def cold(describer) -> None:
    """A timed description starts from nothing: no answer from the describer's cache, and no key-value
    cache of the last answer (the same screen again would reuse it, as a follow-up does)."""
    describer.clear_cache()
    describer.captioner.forget()


def first_word(describer, image, task: str):
    """(seconds to the first spoken word, seconds to the first token, the Generation, the start) of one
    description."""
    from ..speech import Speaker

    cold(describer)
    voice = TimingVoice()
    speaker = Speaker(voice)
    t0 = time.perf_counter()
    generation = describer.describe(image, task)
    speaker.say_stream(generation)
    speaker.wait()
    speaker.close()
    return voice.times[0] - t0, generation.first_token_at - t0, generation, t0
