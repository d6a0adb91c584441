"""The describing pipeline shared by the CLI and the agent.

blank check -> cache -> captioning model (streamed) -> text found by OCR where the model can't read.
Without the model's weights it still reads the text on the image and says what is missing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator

from PIL import Image

from .blank import blank_description
from .captioner.base import Captioner, Generation, GenerationOptions, Request, Task
from .config import ModelConfig
from .errors import ModelNotFound

__all__ = ["Describer"]

log = logging.getLogger(__name__)


class Describer:
    """Owns the captioner and the OCR reader. Not thread-safe: one worker thread calls it."""

    def __init__(self, config: ModelConfig, *, cache_size: int = 16):
        self.config = config
        self.options = GenerationOptions(config.max_new_tokens, config.temperature, config.num_beams)
        self.captioner: Captioner | None = None
        self.missing: ModelNotFound | None = None  # set when the weights are not on this computer
        self._ocr = None
        self._cache: OrderedDict[bytes, str] = OrderedDict()  # image hash -> text; never images
        self._cache_size = cache_size

    @property
    def loaded(self) -> bool:
        return self.captioner is not None or self.missing is not None

    def load(self) -> None:
        """Load the captioning model. A missing model is remembered (OCR fallback), not raised,
        and looked for again on the next call: the user may have pulled it meanwhile.

        Raises:
            ModelLoadError, UnsupportedModel: the model is there but cannot be used.
        """
        if self.captioner is not None:
            return
        from .captioner.factory import load_captioner

        c = self.config
        self.missing = None
        try:
            self.captioner = load_captioner(
                c.name, device=c.device, dtype=c.dtype, quantize=c.quantize, trust_remote_code=c.trust_remote_code,
                blip_prefix=c.blip_prefix, screen_image_tokens=c.screen_image_tokens,
                photo_image_tokens=c.photo_image_tokens,
            )
        except ModelNotFound as e:
            log.info("%s", e)
            self.missing = e

    def release(self) -> None:
        """Free the model's memory; the next description loads it again."""
        if self.captioner is not None:
            self.captioner.close()
        self.captioner = None
        # With model "ocr" the OCR reader IS the captioner, just closed: drop it too (and free its
        # memory in any case); the next read makes a new one.
        self._ocr = None
        self.missing = None
        self._cache.clear()
        import gc
        import sys

        gc.collect()
        torch = sys.modules.get("torch")  # never imported just for this
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()  # else the freed blocks stay reserved: other programs cannot have them

    @property
    def ocr(self):
        if self._ocr is None:
            from .captioner.ocr import OcrReader

            self._ocr = self.captioner if getattr(self.captioner, "name", "") == "ocr" else OcrReader()
        return self._ocr

    def read_text(self, image: Image.Image) -> list[str]:
        """The text lines of ``image``, in reading order (OCR only; no captioning model needed)."""
        return self.ocr.read_lines(image)

    def read(self, image: Image.Image, subject: str = "image") -> tuple[str, list[str]]:
        """What reading ``image`` aloud says, and the lines found: a blank image is said to be blank
        (no lines, no OCR run), an image without text says so."""
        blank = blank_description(image, subject)
        if blank:
            return blank, []
        lines = self.read_text(image)
        return ("\n".join(lines) if lines else "No text found."), lines

    def describe(self, image: Image.Image, task: Task = "photo", question: str | None = None,
                 stop: threading.Event | None = None, history: tuple[tuple[str, str], ...] = (),
                 image_kind: str | None = None) -> Generation:
        """Start describing ``image``; iterate the result for text as it is produced. ``history``:
        earlier (question, answer) turns about this image, for a follow-up question; ``image_kind``:
        "screen" or "photo" where the task does not say (a question about a window).

        Raises:
            ModelNotFound: alt text was asked for and the model is missing (OCR text is no alt text).
        """
        stop = stop or threading.Event()
        subject = "screen" if image_kind == "screen" or task in ("screen", "window") else "image"
        blank = blank_description(image, subject)
        if blank:
            return Generation(_once(blank), stop, "blank check")
        self.load()
        if self.missing is not None and task == "alt_text":
            raise self.missing
        request = Request(image, task, question, self.config.language or None, history, image_kind)
        key = self._key(image, task, question, (history, image_kind))
        if key in self._cache:
            self._cache.move_to_end(key)
            return Generation(_once(self._cache[key]), stop, "cache")
        name = self.captioner.name if self.captioner is not None else "ocr"
        outer: Generation

        def chunks() -> Iterator[str]:
            if self.captioner is None:
                # Never cached: once the model is pulled, the same image must get the model's answer.
                lines = self.read_text(image)
                yield ("\n".join(lines) + "\n") if lines else "No text found.\n"
                yield str(self.missing)
                return
            inner = self.captioner.generate(request, self.options, stop)
            yield from inner
            outer.new_tokens, outer.first_token_at = inner.new_tokens, inner.first_token_at
            if self._add_ocr(task) and not stop.is_set():
                lines = self.read_text(image)
                if lines:
                    yield "\nText found:\n" + "\n".join(lines)
            if not stop.is_set():  # only a real model's complete answer
                self._remember(key, outer.text)

        outer = Generation(chunks(), stop, name)
        return outer

    def _add_ocr(self, task: Task) -> bool:
        if task in ("alt_text", "question", "read") or getattr(self.captioner, "name", "") == "ocr":
            return False
        mode = self.config.add_ocr_text
        return mode == "always" or (mode == "auto" and not self.captioner.reads_text)

    def _key(self, image: Image.Image, task: str, question: str | None, history=()) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{image.size}{image.mode}{task}\0{question}\0{self.config.language}\0{history}".encode())
        h.update(image.tobytes())
        return h.digest()

    def _remember(self, key: bytes, text: str) -> None:
        self._cache[key] = text
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def _once(text: str) -> Iterator[str]:
    yield text
