"""Grounding a chat model in the text OCR found, so that it never speaks text that is not on screen.

Two halves. Before generation: the OCR lines of the full-resolution capture, in reading order, each
with a coarse position (the nearest cell of a 3x3 grid), go into the prompt; the model's own view
of the image is too small to read interface text (a 1920x1080 screen reaches it scaled by about
0.31). After generation: every quoted string the model writes is checked against that text before
it is printed or spoken; a quote that is not found is replaced by ``UNCONFIRMED``.

Nothing here logs or keeps screen text: the caller counts unconfirmed quotes, never their text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator

from ..captioner.screen_text import MAX_PROMPT_CHARS, ScreenLine, ScreenText, position_label, screen_text_from

__all__ = ["MAX_PROMPT_CHARS", "UNCONFIRMED", "Pending", "QuoteChecker", "ScreenLine", "ScreenText", "position_label",
           "screen_text_from"]

# Said in place of a quote that is not on the screen. The sentence around it (which comes from the
# picture: "an error dialog says ...") is kept; the listener learns that the model claimed some
# text there and can have it read exactly with the read hotkey.
UNCONFIRMED = "(unconfirmed text)"


# -- the quote check --------------------------------------------------------------------------------

_CLOSERS = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201c", "\u00ab": "\u00bb", "'": "'", "\u2018": "\u2019"}
_SINGLE = {"'", "\u2018"}  # also apostrophes ("don't"): they may close a quote only before a non-letter
_GIVE_UP = 300  # characters held for an unclosed quote before it is judged as it stands


class Pending:
    """A result made on a thread of its own (OCR and a model's forward pass cannot be interrupted),
    waited for in steps, so that Stop is never kept waiting: the screen's text, or a prompt's start
    read into a model's cache while OCR runs."""

    def __init__(self, make: "Callable[[], object]", stop: threading.Event, name: str):
        self._make, self._stop, self._name = make, stop, name
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.result = None
        self.error: BaseException | None = None

    def start(self) -> "Pending":
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()
        return self

    def get(self):
        """The result; None if Stop came first or making it failed (``error``)."""
        self.start()
        while not self._done.wait(0.05):
            if self._stop.is_set():
                return None
        return self.result

    def join(self) -> None:
        """Wait until the work has ended, Stop or not (before its resources are used again)."""
        if self._thread is not None:
            self._thread.join()

    def _work(self) -> None:
        try:
            self.result = self._make()
        except Exception as e:  # reported by the caller
            self.error = e
        finally:
            self._done.set()


class QuoteChecker:
    """Checks the quoted strings of streamed text against ``screen`` as the text arrives.

    Text outside quotes passes at once (so speech is not held up); from an opening quote mark to
    its closing mark the text is held, then passed on if the quote is on the screen, else replaced
    by UNCONFIRMED. ``unconfirmed`` counts the replacements.
    """

    def __init__(self, screen: "ScreenText | Pending"):
        # Pending: OCR starts when the first quote opens and is waited for when it closes; an answer
        # without quotes costs no OCR at all.
        self.screen = screen
        self.unconfirmed = 0
        self._opener: str | None = None  # the quote mark of the quote being held
        self._held = ""
        self._previous = " "  # the last character passed on, to tell an opening mark from an apostrophe
        self._maybe_closed = False  # a single quote mark that closes unless a letter follows it

    def check(self, chunks: Iterable[str]) -> Iterator[str]:
        for chunk in chunks:
            out = self.feed(chunk)
            if out:
                yield out
        out = self.flush()
        if out:
            yield out

    def feed(self, text: str) -> str:
        out: list[str] = []
        for ch in text:
            if self._opener is None:
                self._pass(ch, out)
                continue
            if self._maybe_closed:
                self._maybe_closed = False
                if ch.isalnum():  # an apostrophe inside the quote: 'Don't save'
                    self._held += ch
                    continue
                self._resolve(out)
                self._pass(ch, out)
                continue
            self._held += ch
            if ch == _CLOSERS[self._opener]:
                if self._opener in _SINGLE:
                    self._maybe_closed = True
                else:
                    self._resolve(out)
            elif ch == "\n" or len(self._held) > _GIVE_UP:
                if self._opener in _SINGLE:  # never closed: it was an apostrophe ('90s), not a quote
                    held, self._opener, self._held = self._held, None, ""
                    out.append(held)
                    self._previous = held[-1]
                else:
                    self._resolve(out)
        return "".join(out)

    def flush(self) -> str:
        """The text still held at the end of the stream (an unclosed quote is judged as it stands)."""
        out: list[str] = []
        if self._opener is not None:
            self._maybe_closed = False
            self._resolve(out)
        return "".join(out)

    def _pass(self, ch: str, out: list[str]) -> None:
        # A quote opens only after a non-letter: after a letter or digit the mark is an apostrophe
        # ("it's") or an inch or minute mark (24" monitor), and holding text there would swallow it.
        if ch in _CLOSERS and not self._previous.isalnum():
            self._opener, self._held = ch, ch
            if isinstance(self.screen, Pending):
                self.screen.start()  # read while the model writes the quote
            return
        out.append(ch)
        self._previous = ch

    def _resolve(self, out: list[str]) -> None:
        held, opener = self._held, self._opener
        self._opener, self._held = None, ""
        body = held[1:]
        trailing = ""
        if body.endswith(_CLOSERS[opener]):
            body = body[:-1]
        elif body.endswith("\n"):  # an unclosed quote that ran to the end of the line
            body, trailing = body[:-1], "\n"
        if isinstance(self.screen, Pending):
            self.screen = self.screen.get() or ScreenText(())  # unreadable: no quote is confirmed
        if self.screen.contains(body):
            out.append(held)
        else:
            self.unconfirmed += 1
            out.append(UNCONFIRMED + trailing)
        self._previous = out[-1][-1]
