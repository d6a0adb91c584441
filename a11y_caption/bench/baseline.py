"""The naive baseline: plain transformers code, the processor's default image size, the default
dtype, generate() to the end, then decode and speak."""

from __future__ import annotations

import time

from .fixtures import TimingVoice, blip_patches, photo, screenshot
from .machine import peak_rss_mb
from .rows import Row

__all__ = ["baseline"]


def baseline(spec: dict) -> Row:
    """Straightforward transformers code: default processor settings and dtype, no streaming."""
    import torch
    from transformers import StoppingCriteriaList

    from ..speech import Speaker

    n = spec["new_tokens"]
    chat = spec["kind"] == "chat-baseline"
    processor, model, image = _loaded(spec["folder"], chat)
    first: list[float] = []
    noter = _first_token_noter(first)
    model.generate(**_inputs(processor, photo() if chat else screenshot(), chat), max_new_tokens=2)  # warm-up, as for ours
    voice = TimingVoice()
    speaker = Speaker(voice)
    t0 = time.perf_counter()
    inputs = _inputs(processor, image, chat)
    preprocess_s = time.perf_counter() - t0
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                             stopping_criteria=StoppingCriteriaList([noter]))
    prompt_len = inputs["input_ids"].shape[-1] if chat else 0
    text = processor.batch_decode(out[:, prompt_len:], skip_special_tokens=True)[0]
    total = time.perf_counter() - t0
    speaker.say(text or "(empty)")
    speaker.wait()
    new_tokens = int(out.shape[-1] - prompt_len) if chat else int(out.shape[-1]) - 1
    image_tokens = int((inputs["input_ids"] == model.config.image_token_id).sum()) if chat else blip_patches(model)
    dtype = str(model.dtype).replace("torch.", "")
    return Row(spec["model"], f"baseline ({dtype}, default image size, no streaming)", image_tokens, preprocess_s,
               first[0] - t0, voice.times[0] - t0, total, new_tokens,
               (new_tokens - 1) / (total - (first[0] - t0)), peak_rss_mb())


def _loaded(folder: str, chat: bool):
    """(processor, model, the image it is timed on) as from_pretrained gives them, nothing set."""
    if chat:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor = AutoProcessor.from_pretrained(folder)
        model = AutoModelForImageTextToText.from_pretrained(folder)
        return processor, model, screenshot()
    from transformers import BlipForConditionalGeneration, BlipProcessor

    processor = BlipProcessor.from_pretrained(folder)
    model = BlipForConditionalGeneration.from_pretrained(folder)
    return processor, model, photo()


def _inputs(processor, img, chat: bool):
    if not chat:
        return processor(images=img, return_tensors="pt")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this screen."}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    return processor(text=[prompt], images=[img], return_tensors="pt")


def _first_token_noter(first: list[float]):
    """A StoppingCriteria that only notes, in ``first``, when the first new token came: the naive
    code does not stream."""
    import torch
    from transformers import StoppingCriteria

    class FirstToken(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            if not first:
                first.append(time.perf_counter())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    return FirstToken()
