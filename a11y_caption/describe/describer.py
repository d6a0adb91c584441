"""The describing pipeline shared by the CLI and the agent.

blank check -> cache -> [OCR -> grounded prompt] -> captioning model (streamed) -> [quote check] ->
text found by OCR where the model can't read. Without the model's weights it still reads the text on
the image and says what is missing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import replace

from PIL import Image

from .blank import blank_description
from ..captioner.base import Captioner, Generation, GenerationOptions, Request, Task
from ..config import ModelConfig
from ..errors import ModelNotFound, ServerUnreachable, log_unexpected
from ..speech import WholeText
from .grounding import Pending, QuoteChecker, ScreenText, screen_text_from
from .objects import ObjectFacts, grounding_of, with_tree_text
from .missing import TEXT_ONLY, cannot_follow, not_here

__all__ = ["Describer"]

log = logging.getLogger(__name__)


class Describer:
    """Owns the captioner and the OCR reader. Not thread-safe: one worker thread calls it."""

    def __init__(self, config: ModelConfig, *, cache_size: int = 16):
        self.config = config
        self.options = GenerationOptions(config.max_new_tokens, config.temperature, config.num_beams)
        self.captioner: Captioner | None = None
        self.missing: ModelNotFound | None = None  # set when the weights are not on this computer
        self.told_missing = False  # a description said so once; the later ones say "Text only."
        self._ocr = self._ocr_alongside = None
        self._prefilling: Pending | None = None  # the model reading a prompt's start (grounding)
        # Whether grounding's OCR runs while the model reads the image, or before; None: decided by
        # where the model runs (``ocr_runs_beside_model``).
        self.ocr_beside_model: bool | None = None
        # image hash -> (text, the screen text it was grounded in); never images
        self._cache: OrderedDict[bytes, tuple[str, ScreenText | None]] = OrderedDict()
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
        from ..captioner.factory import load_captioner

        c = self.config
        self.missing = None
        try:
            self.captioner = load_captioner(
                c.name, device=c.device, dtype=c.dtype, quantize=c.quantize, trust_remote_code=c.trust_remote_code,
                blip_prefix=c.blip_prefix, screen_image_tokens=c.screen_image_tokens,
                photo_image_tokens=c.photo_image_tokens, server=c.server, api_key_env=c.api_key_env,
                connect_timeout=c.connect_timeout, first_token_timeout=c.first_token_timeout,
                answer_timeout=c.answer_timeout, proxy=c.proxy,
            )
        except ModelNotFound as e:
            log.debug("%s", e)  # said (and printed) by the description that finds it missing
            self.missing = e
            return
        if c.ground_in_ocr != "never" and self.captioner.answers_questions:
            # Grounded descriptions read: load the readers they use now, not at a press.
            if c.ground_in_ocr != "check":
                self.ocr
            self.ocr_alongside  # "check", OCR beside the model, and a small object's quote check

    def release(self) -> None:
        """Free the model's memory; the next description loads it again."""
        self._settle()
        if self.captioner is not None:
            self.captioner.close()
        self.captioner = None
        # With model "ocr" the OCR reader IS the captioner, just closed: drop it too (and free its
        # memory in any case); the next read makes a new one.
        self._ocr = self._ocr_alongside = None
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
            from ..captioner.ocr import OcrReader

            self._ocr = self.captioner if self._text_only() else OcrReader()
        return self._ocr

    @property
    def ocr_alongside(self):
        """The reader of grounding's OCR, which runs while the model works: one thread, so that
        it takes one core from the model, not both (measured on 2 cores: the model's first token
        came about 0.7 s sooner than with a two-thread reader)."""
        if self._ocr_alongside is None:
            from ..captioner.ocr import OcrReader

            self._ocr_alongside = OcrReader(threads=1)
        return self._ocr_alongside

    def clear_cache(self) -> None:
        """Forget every kept answer: the next description of an image runs the model (the bench times it)."""
        self._cache.clear()

    def _text_only(self) -> bool:
        return self.captioner is not None and self.captioner.text_only

    def _answers_questions(self) -> bool:
        return self.captioner is not None and self.captioner.answers_questions

    def ocr_runs_beside_model(self) -> bool:
        """Whether a grounded description's OCR runs while the model reads the image and the
        prompt's start (``prefill``), or before the model starts.

        Beside the model only where the two do not share the processor: a model on a GPU. On the
        CPU the model's threads take every core, and one more thread beside them holds each of
        their parallel steps back to the pace of the thread that shares its core. Measured on
        2-core CPUs (full-size Qwen2-VL-2B replica, int8), OCR first on every core and then the
        whole prompt reached the first word 2.1 s sooner (AMD EPYC, AVX2; medians of alternating
        rounds: 10.3 s against 12.4 s) and 0.3 s sooner (Intel Xeon with AMX; one bench run).
        """
        if self.ocr_beside_model is not None:
            return self.ocr_beside_model
        return self.captioner is not None and self.captioner.can_prefill and str(self.captioner.device) != "cpu"

    def read_text(self, image: Image.Image) -> list[str]:
        """The text lines of ``image``, in reading order (OCR only; no captioning model needed)."""
        return self.ocr.read_lines(image)

    def read_screen_text(self, image: Image.Image, stop: threading.Event | None = None) -> ScreenText | None:
        """The text on ``image`` with where each line is, for grounding; None if ``stop`` was set first.
        OCR cannot be interrupted, so it runs on a thread of its own and this waits on ``stop`` too:
        Stop is answered at once, and the abandoned read ends by itself a second or so later."""
        pending = self._pending_screen_text(image, stop or threading.Event(), self.ocr)
        screen = pending.get()
        if pending.error is not None:
            raise pending.error
        return screen

    def _read_while_prefilling(self, image: Image.Image, request: Request, stop: threading.Event) -> ScreenText | None:
        """The text on ``image``, read while the model reads the image and the start of the
        grounded prompt (``prefill``), which does not depend on that text, where the two do not
        share the processor (``ocr_runs_beside_model``), else before the model starts; None if Stop
        came first.

        Raises:
            the OCR's error: the screen's text cannot be read.
        """
        prefill = self.captioner.prefill if self.captioner.can_prefill and self.ocr_runs_beside_model() else None
        reading = self._pending_screen_text(image, stop, self.ocr_alongside if prefill else self.ocr).start()
        if prefill:
            self._settle()
            self._prefilling = Pending(lambda: prefill(request), stop, "a11y-prefill").start()
        screen = reading.get()
        if reading.error is not None:
            raise reading.error
        if screen is None:
            return None  # Stop: a prefill still running is waited for by the next use of the model
        if prefill:
            self._prefilling.get()
            if stop.is_set():
                return None
            if self._prefilling.error is not None:  # generate reads the whole prompt instead
                log_unexpected(log, "reading the prompt ahead of the screen's text", self._prefilling.error)
        return screen

    def _settle(self) -> None:
        """Wait for a prefill a stopped description left running: the model never runs twice at once."""
        if self._prefilling is not None:
            self._prefilling.join()
            self._prefilling = None

    @staticmethod
    def _pending_screen_text(image: Image.Image, stop: threading.Event, reader, facts=None) -> Pending:
        return Pending(lambda: with_tree_text(screen_text_from(reader.read_boxed_lines(image), image.size), facts),
                       stop, "a11y-ocr")

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
                 image_kind: str | None = None, screen_text: ScreenText | None = None,
                 facts: ObjectFacts | None = None) -> Generation:
        """Start describing ``image``; iterate the result for text as it is produced. ``history``:
        earlier (question, answer) turns about this image, for a follow-up question; ``image_kind``:
        "screen" or "photo" where the task does not say (a question about a window);
        ``screen_text``: the OCR text of the first turn, for a follow-up of a grounded description
        (OCR is not run again, and the answer's quotes are checked against it); ``facts``: the tree's
        facts of an object (task "object"), said first, told to the model, its strings quotable.

        A grounded description (``ground_in_ocr``) runs OCR first, inside the iteration, so Stop
        cuts it; the result's ``screen_text`` is the text it was grounded in.

        Raises:
            ModelNotFound: alt text was asked for and the model is missing (OCR text is no alt text).
        """
        stop = stop or threading.Event()
        subject = "screen" if image_kind == "screen" or task in ("screen", "window") else "image"
        blank = blank_description(image, subject)
        if blank:  # an object's tree facts still stand: "Push button, no label. The image is blank."
            return Generation(_once(f"{facts.lead} {blank}" if facts else blank), stop, "blank check")
        self.load()
        if self.missing is not None and task == "alt_text":
            raise self.missing
        request = Request(image, task, question, self.config.language or None, history, image_kind,
                          facts=facts.facts if facts else ())
        grounds = grounding_of(self._grounds(task, history, screen_text), task, image)
        if grounds == "prompt" and request.is_screen:  # prefill, generate and follow-ups: one budget
            request = replace(request, pixels=self.config.grounded_image_tokens * 28 * 28)
        key = self._key(image, task, question, (history, image_kind, grounds, facts))
        if key in self._cache:
            return self._cached(key, stop)
        name = self.captioner.name if self.captioner is not None else "ocr"
        outer: Generation

        def chunks() -> Iterator[str]:
            if facts is not None:  # the tree's answer, at once, before the model has a word
                yield WholeText(facts.lead + " ")
            if self.captioner is None:
                # Never cached: once the model is pulled, the same image must get the model's answer.
                yield self._text_found(image)
                yield self._missing_note()
                return
            if task == "question" and not self._answers_questions():
                yield cannot_follow(self.captioner)  # then what it can do: its caption, or the text
            yield from self._model_answer(outer, request, grounds, screen_text, key, stop, facts)

        outer = Generation(chunks(), stop, name)
        return outer

    def _missing_note(self) -> str:
        """What follows the text read where the model is missing: one short sentence the first time
        (the whole message, with the command that fetches the model, goes to the log: printed on
        stderr, never spoken), "Text only." after."""
        if self.told_missing:
            return TEXT_ONLY
        self.told_missing = True
        log.warning("%s", self.missing)
        return not_here(self.missing)

    def _cached(self, key: bytes, stop: threading.Event) -> Generation:
        """The answer kept for an image seen again, with the screen text it was grounded in."""
        self._cache.move_to_end(key)
        text, cached_screen = self._cache[key]
        cached = Generation(_once(text), stop, "cache")
        cached.screen_text = cached_screen
        return cached

    def _text_found(self, image: Image.Image) -> str:
        """The text OCR finds on ``image``, said where the model cannot describe it."""
        lines = self.read_text(image)
        return ("\n".join(lines) + "\n") if lines else "No text found.\n"

    def _model_answer(self, outer: Generation, request: Request, grounds: str | None,
                      screen_text: ScreenText | None, key: bytes, stop: threading.Event, facts=None) -> Iterator[str]:
        """The model's answer to ``request``, grounded as ``grounds`` says; what is learnt on the way
        (the screen text, tokens, quotes replaced) goes on ``outer``. A complete answer is cached."""
        grounded = self._grounded(outer, request, grounds, screen_text, stop, facts)
        if grounded is None:
            return  # stopped while reading
        asked, checker, pending = grounded
        self._settle()
        inner = self.captioner.generate(asked, self.options, stop)
        try:
            yield from (checker.check(inner) if checker is not None else inner)
        except ServerUnreachable as e:
            if self.config.fallback != "ocr" or outer.text:
                raise
            # The server is down: the text on the image, read here, and why (never cached).
            yield self._text_found(request.image)
            yield str(e)
            return
        self._note_answer(outer, inner, checker, pending)
        if self._add_ocr(request.task) and not stop.is_set():
            lines = self.read_text(request.image)
            if lines:
                yield "\nText found:\n" + "\n".join(lines)
        if not stop.is_set():  # only a real model's complete answer
            self._remember(key, (outer.text, outer.screen_text))

    def _grounded(self, outer: Generation, request: Request, grounds: str | None, screen_text: ScreenText | None,
                  stop: threading.Event, facts=None) -> tuple[Request, QuoteChecker | None, Pending | None] | None:
        """What the model is asked, the checker of its quotes, and the OCR the quotes are checked
        against where it runs beside the model (``grounds`` "check"); None if Stop came while the
        screen's text was read for the prompt."""
        screen = screen_text
        if grounds == "prompt" and screen is None:
            screen = self._read_while_prefilling(request.image, request, stop)
            if screen is None:
                return None
            if not screen.lines and request.task in ("photo", "alt_text"):
                screen = None  # a photo without text: nothing to ground a photo description in
            screen = with_tree_text(screen, facts)  # the tree's own strings are on the screen too
        if screen is not None:
            outer.screen_text = screen
            return replace(request, screen_text=screen), QuoteChecker(screen), None
        if grounds == "check":
            pending = self._pending_screen_text(request.image, stop, self.ocr_alongside, facts)
            outer.screen_text = with_tree_text(None, facts)  # a small object: its tree strings, in the prompt
            return replace(request, screen_text=outer.screen_text), QuoteChecker(pending), pending
        return request, None, None

    @staticmethod
    def _note_answer(outer: Generation, inner: Generation, checker: QuoteChecker | None,
                     pending: Pending | None) -> None:
        """Put on ``outer`` what the model's answer ``inner`` and its quote check found."""
        outer.new_tokens, outer.first_token_at = inner.new_tokens, inner.first_token_at
        if pending is not None:  # grounds "check": the OCR that ran beside the model
            outer.checked_against = pending.result
            if pending.error is not None:
                log_unexpected(log, "reading the screen's text to check quotes", pending.error)
        if checker is not None and checker.unconfirmed:
            outer.unconfirmed_quotes = checker.unconfirmed
            # A count only: the quotes themselves may be screen text (or invented text).
            log.info("%d quoted string(s) not found on the screen were replaced", checker.unconfirmed)

    def tags(self, image: Image.Image, caption: str | None = None) -> list[str]:
        """Short lowercase tags for ``image``: a chat model is asked for them; a captioner's
        caption (``caption`` if it was made already, else a new alt text) is split into words.

        Raises:
            ModelNotFound: the model is missing (OCR text makes no tags).
        """
        from ..captioner.prompts import TAGS_PROMPT
        from .tags import tags_from

        self.load()
        if self.missing is not None:
            raise self.missing
        if self._answers_questions():
            return tags_from(self.describe(image, "question", TAGS_PROMPT).collect().text)
        return tags_from(caption if caption is not None else self.describe(image, "alt_text").collect().text)

    def _grounds(self, task: Task, history, screen_text: ScreenText | None) -> str | None:
        """How this description is grounded in OCR text (see grounding.py): "prompt" (the lines go
        into the prompt, and quotes are checked against them), "check" (OCR runs alongside the
        model, and only the quotes are checked) or None. "auto" and "check" apply to screens,
        windows and questions by a chat model; BLIP cannot follow a list of lines, and gets the
        text found appended instead (``add_ocr_text``)."""
        if screen_text is not None:
            return "prompt"
        if history or task == "read" or not self._answers_questions():
            return None  # a follow-up is grounded by the first turn's text, or not at all
        mode = self.config.ground_in_ocr
        on_screen = task in ("screen", "window", "question", "object")
        return "prompt" if mode == "always" or (mode == "auto" and on_screen) else \
            "check" if mode == "check" and on_screen else None

    def _add_ocr(self, task: Task) -> bool:
        if task in ("alt_text", "question", "read") or self._text_only():
            return False
        mode = self.config.add_ocr_text
        return mode == "always" or (mode == "auto" and not self.captioner.reads_text)

    def _key(self, image: Image.Image, task: str, question: str | None, history=()) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{image.size}{image.mode}{task}\0{question}\0{self.config.language}\0{history}".encode())
        h.update(image.tobytes())
        return h.digest()

    def _remember(self, key: bytes, answer: tuple[str, ScreenText | None]) -> None:
        self._cache[key] = answer
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def _once(text: str) -> Iterator[str]:
    yield WholeText(text)  # all of it at once: spoken as whole sentences, nothing released early
