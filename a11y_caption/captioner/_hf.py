"""Shared plumbing for Hugging Face transformers backends: device, dtype, streaming generate."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from ..errors import A11yCaptionError, DeviceError, GenerationError, describe_unexpected
from .base import Generation, GenerationOptions

__all__ = ["batch_generate", "pick_device", "pick_dtype", "position_limit", "stream_generate"]

log = logging.getLogger(__name__)
_capped: set[tuple[str, int]] = set()  # (model, limit) pairs whose cap was logged already


def position_limit(model) -> int | None:
    """How many positions (prompt and answer tokens) the model's text part can take, if it says."""
    config = model.config
    text = getattr(config, "text_config", None) or config
    limit = getattr(text, "max_position_embeddings", None)
    return limit if isinstance(limit, int) and limit > 0 else None


def _cap_new_tokens(model, inputs: dict, wanted: int, model_name: str) -> int:
    """``wanted`` new tokens, or fewer so that the prompt and answer stay within the model's
    position limit (beyond it a learned position table is indexed out of range).

    Raises:
        GenerationError: the prompt alone reaches the limit.
    """
    limit = position_limit(model)
    prompt = inputs["input_ids"].shape[-1] if "input_ids" in inputs else 0
    if limit is None or prompt + wanted <= limit:
        return wanted
    room = limit - prompt
    if room < 1:
        raise GenerationError(f"The image and prompt take {prompt} tokens, more than the {limit} the model "
                              f"{model_name} can read; lower the image budget or use another model.")
    if (model_name, limit) not in _capped:
        _capped.add((model_name, limit))
        log.warning("answers of %s are capped at %d new tokens: the model reads at most %d positions",
                    model_name, room, limit)
    return room


def pick_device(device: str = "auto") -> str:
    """The torch device for the setting ``device`` (auto, cpu, cuda, cuda:N or mps).

    Raises:
        DeviceError: the device is unknown or not usable here. Said before loading, because torch
            would otherwise fail halfway with a RuntimeError that reads like damaged files.
    """
    import torch

    from ..config import setting_problem

    problem = setting_problem("model", "device", device)
    if problem:
        raise DeviceError(f"There is no device \"{device}\"; device {problem}.")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"CUDA was asked for (device = \"{device}\"), but this computer has no usable GPU; "
                              "use device = \"auto\" or \"cpu\".")
        index, count = int(device.partition(":")[2] or 0), torch.cuda.device_count()
        if index >= count:
            raise DeviceError(f"GPU {index} was asked for (device = \"{device}\"), but this computer has only "
                              f"{count} usable GPU{'s' if count > 1 else ''}, numbered from 0; use device = \"cuda\".")
    elif device == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("Apple's Metal GPU was asked for (device = \"mps\"), but it is not usable on this "
                          "computer; use device = \"auto\" or \"cpu\".")
    return device


def pick_dtype(dtype: str, device: str):
    """"auto": fp16 on CUDA; bf16 on CPUs with native bf16 maths (AVX512-BF16/AMX); else fp32."""
    import torch

    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.float16
        return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else torch.float32
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, fp32, bf16 or fp16")
    return names[dtype]


def _generate_kwargs(model, inputs: dict, options: GenerationOptions, stop: threading.Event, model_name: str) -> dict:
    """``model.generate``'s arguments: the inputs, the options (length within the position limit)
    and a StoppingCriteria that ends generation itself at the next token once ``stop`` is set."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopOnEvent(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

    kwargs = dict(inputs, max_new_tokens=_cap_new_tokens(model, inputs, options.max_new_tokens, model_name),
                  num_beams=options.num_beams, stopping_criteria=StoppingCriteriaList([StopOnEvent()]))
    if options.temperature > 0:
        kwargs.update(do_sample=True, temperature=options.temperature)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return kwargs


def stream_generate(model, inputs: dict, tokenizer, options: GenerationOptions, stop: threading.Event,
                    model_name: str, *, strip_prompt: bool = True, lead: str = "", on_finish=None,
                    **extra) -> Generation:
    """Run ``model.generate`` on a background thread and return a Generation streaming its text.

    Setting ``stop`` makes generate itself end at the next token (a StoppingCriteria), so the model
    stops working, not only the reader. Beam search cannot stream; it yields the whole text at the end.
    ``on_finish(sequence, cache)``, if given, receives the prompt and answer token ids and the model's
    key-value cache of a generation that was not stopped (for follow-up questions).
    """
    kwargs = dict(_generate_kwargs(model, inputs, options, stop, model_name), **extra)
    streamer = None
    if options.num_beams == 1:
        streamer = _counting_streamer(tokenizer)
        kwargs["streamer"] = streamer

    if on_finish is not None:
        kwargs["return_dict_in_generate"] = True
    thread, result = _generate_thread(model, kwargs, stop, streamer, on_finish)
    generation: Generation

    def chunks() -> Iterator[str]:
        thread.start()
        try:
            if streamer is not None:
                if lead:
                    yield lead
                for text in streamer:
                    if text:
                        yield text
        finally:
            thread.join()
        if "error" in result:
            _raise_failure(result["error"], model_name)
        if streamer is not None:
            generation.new_tokens = streamer.new_tokens
        else:
            output = result["output"][0]
            prompt_len = inputs["input_ids"].shape[-1] if "input_ids" in inputs else 0
            generation.new_tokens = max(0, int(output.numel()) - prompt_len)
            yield tokenizer.decode(output[prompt_len:] if strip_prompt else output, skip_special_tokens=True)

    generation = Generation(chunks(), stop, model_name)
    if streamer is not None:
        streamer.generation = generation  # before the thread starts (at the first chunk asked for)
    return generation


def _counting_streamer(tokenizer):
    """A TextIteratorStreamer of the answer's text that counts its new tokens and notes on its
    ``generation`` (set before generating starts) when the first came."""
    from transformers import TextIteratorStreamer

    class CountingStreamer(TextIteratorStreamer):
        new_tokens = 0
        generation: Generation

        def put(self, value):
            if not self.next_tokens_are_prompt:
                if self.new_tokens == 0:
                    self.generation.first_token_at = time.perf_counter()
                self.new_tokens += value.numel()
            super().put(value)

    return CountingStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


def _generate_thread(model, kwargs: dict, stop: threading.Event, streamer, on_finish) -> tuple[threading.Thread, dict]:
    """(a thread, not yet started, that runs ``model.generate(**kwargs)``, and the dict it leaves
    its "output" or its "error" in). An error ends the streamer, so its reader is not left waiting."""
    import torch

    result: dict = {}

    def work() -> None:
        try:
            with torch.inference_mode():
                output = model.generate(**kwargs)
            if on_finish is not None:
                if not stop.is_set():
                    on_finish(output.sequences, output.cache)
                output = output.sequences
            result["output"] = output
        except BaseException as e:  # handed to the reading thread
            result["error"] = e
            if streamer is not None:
                streamer.end()

    return threading.Thread(target=work, name="a11y-generate", daemon=True), result


def _raise_failure(error: BaseException, model_name: str) -> None:
    """Raise what generating raised: our own errors as they are, a library's as one sentence."""
    if isinstance(error, (A11yCaptionError, KeyboardInterrupt, MemoryError)):
        raise error
    # A library error's text is for developers (and may be long); the user hears one sentence.
    raise GenerationError(f"The model {model_name} failed while describing "
                          f"({describe_unexpected(error)}).") from error


def batch_generate(model, inputs: dict, tokenizer, options: GenerationOptions, stop: threading.Event | None = None,
                   *, strip_prompt: bool = True) -> list[str]:
    """Several prompts (padded) in one ``model.generate`` call, to the end: one text per row.
    Nothing streams; ``stop`` ends the whole batch at the next token."""
    import torch

    kwargs = _generate_kwargs(model, inputs, options, stop or threading.Event(), getattr(model, "name_or_path", "model"))
    with torch.inference_mode():
        output = model.generate(**kwargs)
    if strip_prompt and "input_ids" in inputs:
        output = output[:, inputs["input_ids"].shape[-1]:]
    return [text.strip() for text in tokenizer.batch_decode(output, skip_special_tokens=True)]
