"""The one small interface every captioning backend implements."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from PIL import Image

__all__ = ["Captioner", "Description", "Generation", "GenerationOptions", "Request", "Task"]

Task = Literal["screen", "window", "photo", "alt_text", "question", "read"]


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
    name: str  # what the user asked for: hub id or folder
    reads_text: bool  # True when the model can transcribe text on screen itself

    def generate(self, request: Request, options: GenerationOptions, stop: threading.Event | None = None) -> Generation:
        """Start describing ``request``; iterate the result to receive text as it is generated."""
        ...

    def close(self) -> None:
        """Free the model's memory."""
        ...
