"""The one small interface every captioning backend implements."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from PIL import Image

if TYPE_CHECKING:
    from .screen_text import ScreenText

__all__ = ["Captioner", "Description", "Generation", "GenerationOptions", "Request", "Task"]

Task = Literal["screen", "window", "photo", "alt_text", "question", "read", "object"]


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 means greedy decoding
    num_beams: int = 1


@dataclass(frozen=True)
class Request:
    image: Image.Image = field(repr=False)
    task: Task = "photo"
    question: str | None = None  # the custom prompt for task "question"
    language: str | None = None  # answer language for chat models, e.g. "German"
    # Earlier turns about the same image, oldest first: (what was asked, what the model answered).
    # The image goes with the first of them; this request's prompt is the newest turn.
    history: tuple[tuple[str, str], ...] = ()
    # What the image is, for its pixel budget: "screen" (a screen or window capture) or "photo".
    # None: as the task says. A question about a window is still a window.
    image_kind: str | None = None
    # The text OCR found on the image, for a grounded description (screen_text.py): its lines go into
    # the first turn's prompt, and the model may quote only them. None: not grounded.
    screen_text: "ScreenText | None" = None
    # The image's pixel budget where the caller sets one (a screen grounded in OCR gets
    # [model] grounded_image_tokens); None: the backend's budget for the image's kind.
    pixels: int | None = None
    # What the accessibility tree says of the object in the picture (task "object"), one fact a line
    # ("Role: push button", "Name: none"): exact, so the model is told them and asked what the
    # picture adds. Empty for every other picture.
    facts: tuple[str, ...] = ()

    @property
    def is_screen(self) -> bool:
        return self.image_kind == "screen" if self.image_kind else self.task in ("screen", "window", "read")


@dataclass(frozen=True)
class Description:
    text: str
    model: str
    seconds: float
    new_tokens: int = 0
    stopped: bool = False


class Generation:
    """Text chunks as a backend produces them; after iteration ``new_tokens``/``stopped`` are set.

    Iterating drives the backend; ``stop`` (a threading.Event) ends generation itself, not only
    the consumer's reading of it.
    """

    def __init__(self, chunks: Generator[str, None, None], stop: threading.Event, model: str):
        self._chunks = chunks
        self.stop = stop
        self.model = model
        self.new_tokens = 0
        self.stopped = False
        self.text = ""
        self.first_token_at: float | None = None  # time.perf_counter() when the first new token came
        self.finished_at: float | None = None  # ... and when the backend was done
        self.screen_text: "ScreenText | None" = None  # the OCR text the answer was grounded in, if any
        self.unconfirmed_quotes = 0  # quotes replaced because they were not on the screen
        # The OCR text the quotes were checked against when it was not in the prompt (ground_in_ocr
        # "check"), if a quote made it read.
        self.checked_against: "ScreenText | None" = None

    def __iter__(self) -> Iterator[str]:
        finished = False
        try:
            for chunk in self._chunks:
                self.text += chunk
                yield chunk
            finished = True
            self.finished_at = time.perf_counter()
        finally:
            if not finished:  # the reader gave up: make the model stop too
                self.stop.set()
                self._chunks.close()
            self.stopped = self.stop.is_set()

    def collect(self) -> Description:
        start = time.perf_counter()
        for _ in self:
            pass
        return Description(self.text.strip(), self.model, time.perf_counter() - start, self.new_tokens, self.stopped)


class Captioner(Protocol):
    """What the describer may ask of a backend. The optional capabilities have defaults here, so a
    backend (which subclasses this) says only what it can do more: nothing is probed with getattr."""

    name: str  # what the user asked for: hub id or folder
    reads_text: bool  # True when the model can transcribe text on screen itself
    answers_questions: bool  # True when it follows a prompt (chat models), so follow-ups work
    text_only: bool = False  # True when it only transcribes text (the "ocr" model): no picture is described
    device: str = "cpu"  # where it runs: "cpu", "cuda", "mps", or "server" for a model server of the user's
    can_prefill: bool = False  # True when prefill() reads an image and the prompt's start ahead of generate()
    loaded_from: str | None = None  # "checkpoint", "kept copy" or "converted" for a local model

    def generate(self, request: Request, options: GenerationOptions, stop: threading.Event | None = None) -> Generation:
        """Start describing ``request``; iterate the result to receive text as it is generated."""
        ...

    def close(self) -> None:
        """Free the model's memory."""
        ...

    def prefill(self, request: Request) -> None:
        """Read ``request``'s image and the start of its prompt ahead (where ``can_prefill``), so a
        ``generate`` of a request that begins the same way starts from there."""

    def forget(self) -> None:
        """Drop what is kept of the last answer (its key-value cache), so the next one starts cold."""
