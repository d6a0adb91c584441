"""The Speaker: one thread owns the voice; whole texts or streams spoken sentence by sentence.

``stop()`` is safe from any thread and silences at once: queued sentences are dropped and the
sentence being spoken is cut off. Each sentence is handed to the voice only when the one before it
has ended, so none is cut off by the next on any engine. A transcript file (one utterance per line)
works with any engine.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import stat
import threading
from collections.abc import Iterable
from pathlib import Path

from ..errors import log_unexpected
from .base import Voice, adapt
from .none import NoVoice

__all__ = ["SentenceSplitter", "Speaker", "WholeText"]

log = logging.getLogger(__name__)

# Spoken names of the engines, for "speaking through ..." lines.
ENGINE_LABELS = {
    "orca": "Orca", "speech-dispatcher": "Speech Dispatcher", "nvda": "NVDA", "jaws": "JAWS",
    "voiceover": "VoiceOver", "pyttsx3": "the system voice", "espeak-ng": "eSpeak NG", "none": "no voice",
}


_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+|\n+")
_ENDS_A_SENTENCE = re.compile(r"[.!?…。！？][\"'”’)\]]*$")


class WholeText(str):
    """A chunk of a stream that holds all the rest of its text (a canned sentence, an answer from
    the cache): it is spoken as whole sentences, with no early release of its first words."""


class SentenceSplitter:
    """Feed streamed text; get back whole sentences as soon as each one ends.

    With ``first_words``, the very first piece is released once that many words are complete,
    without waiting for its full stop: a model writes faster than a voice speaks, so the rest of
    the sentence is ready before those words are said, and the listener hears something sooner.
    Only while the rest is still to come: not when the sentence is already here up to its full
    stop, nor for a chunk fed with ``rest=True`` (all the rest of the text, e.g. a WholeText).
    """

    def __init__(self, max_chars: int = 240, first_words: int = 0):
        self._buffer = ""
        self._max = max_chars
        self._first_words = first_words
        self._released = False

    def feed(self, text: str, *, rest: bool = False) -> list[str]:
        self._buffer += text
        parts = _SENTENCE_END.split(self._buffer)
        self._buffer = parts.pop()
        early = self._first_words and not rest and not _ENDS_A_SENTENCE.search(self._buffer)
        if not parts and not self._released and early:
            words = self._buffer.split()
            complete = words if self._buffer[-1:].isspace() else words[:-1]
            if len(complete) >= self._first_words:
                parts.append(" ".join(complete))
                self._buffer = "" if len(complete) == len(words) else words[-1]
        if len(self._buffer) > self._max:  # a run-on with no full stop: break at the last space
            cut = self._buffer.rfind(" ", 0, self._max)
            if cut > 0:
                parts.append(self._buffer[:cut])
                self._buffer = self._buffer[cut + 1:]
        out = [p.strip() for p in parts if p.strip()]
        # Whole text said first (an object's tree facts, "Push button, no label.") does not use up
        # the early release: the model's first words after it are still said before its full stop.
        self._released = self._released or (bool(out) and not rest)
        return out

    def flush(self) -> str | None:
        rest, self._buffer = self._buffer.strip(), ""
        return rest or None


class Speaker:
    """Owns a Voice on one thread. ``say`` queues and returns; ``stop`` silences everything queued.

    ``voice`` may be a screen-reader style Voice (``speak``/``cancel``) or a blocking one
    (``say``/``interrupt``), which is adapted. With ``braille``, the whole text of each
    ``say_stream`` goes to the braille display once it is complete (where the engine can).
    """

    def __init__(self, voice: Voice | None = None, transcript: str | os.PathLike | None = None,
                 echo=None, first_words: int = 6, braille: bool = True):
        self.voice = adapt(voice) if voice is not None else NoVoice()
        self.first_words = first_words  # see SentenceSplitter
        self.braille_enabled = braille
        self._echo = echo  # also hand each utterance to this callable (stdout when there is no voice)
        self._transcript = Path(transcript) if transcript else None
        self._transcript_private = False  # checked (and tightened) at the first write
        self._transcript_failed = False
        self._queue: queue.Queue = queue.Queue(maxsize=256)
        self._epoch = 0
        self._busy = False  # an utterance has been taken off the queue and is not finished
        self._ended: threading.Event | None = None  # set when the utterance being spoken is over
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="a11y-speech", daemon=True)
        self._thread.start()

    @property
    def engine(self) -> str:
        """The engine speaking now ("speech-dispatcher", "pyttsx3"...); it changes on a fallback."""
        return self.voice.engine

    @property
    def engine_label(self) -> str:
        """The engine's spoken name ("Speech Dispatcher", "the system voice"...)."""
        return ENGINE_LABELS.get(self.engine, self.engine)

    def say(self, text: str, *, epoch: int | None = None) -> None:
        """Queue ``text``. With ``epoch``, it is dropped if ``stop`` was called since that epoch."""
        self._put("say", text, epoch)

    def braille(self, text: str, *, epoch: int | None = None) -> None:
        """Queue ``text`` for the braille display, after what is queued to be said. Nothing happens
        when braille is off in the settings or the engine cannot show braille."""
        if self.braille_enabled:
            self._put("braille", text, epoch)

    @property
    def epoch(self) -> int:
        """Counts ``stop`` calls: text said with ``epoch=`` an older value is dropped."""
        return self._epoch

    def say_stream(self, chunks: Iterable[str], *, epoch: int | None = None) -> str:
        """Speak streamed text sentence by sentence as it arrives; returns the whole text.

        The first words of a stream are said early (``first_words``), unless its text is already
        whole: a sentence that arrives up to its full stop, or a ``WholeText`` chunk.

        Once the stream ends, the whole text goes to braille (see ``braille``). After a ``stop``
        (since ``epoch``, default: since the call) nothing more of this stream is spoken or
        brailled, though it is still read to the end.
        """
        splitter, whole = SentenceSplitter(first_words=self.first_words), []
        epoch = self._epoch if epoch is None else epoch
        for chunk in chunks:
            whole.append(chunk)
            for sentence in splitter.feed(chunk, rest=isinstance(chunk, WholeText)):
                self.say(sentence, epoch=epoch)
        rest = splitter.flush()
        if rest:
            self.say(rest, epoch=epoch)
        text = "".join(whole)
        self.braille(text, epoch=epoch)
        return text

    def stop(self) -> None:
        """Drop everything queued and cut off the current utterance, at once."""
        with self._lock:
            self._epoch += 1
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            if self._ended is not None:
                self._ended.set()
            if not self._busy:
                self._idle.set()
        try:
            self.voice.cancel()
        except Exception as e:
            log_unexpected(log, "cancelling speech failed", e)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until everything queued has been handed over and said; False on timeout."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        self.stop()
        self._queue.put((None, None, None))
        self._thread.join(timeout=5)
        self.voice.close()

    def _put(self, kind: str, text: str, epoch: int | None) -> None:
        text = " ".join(text.split())
        if not text:
            return
        with self._lock:
            if epoch is not None and epoch != self._epoch:
                return
            self._idle.clear()
            try:
                self._queue.put_nowait((self._epoch, kind, text))
            except queue.Full:
                log.warning("speech queue full; dropping an utterance")

    def _run(self) -> None:
        while True:
            epoch, kind, text = self._queue.get()
            if text is None:
                return
            with self._lock:
                self._busy = True
                current = epoch == self._epoch
                ended = self._ended = threading.Event()
            if current:
                try:
                    if kind == "braille":
                        if self.voice.can_braille:
                            self.voice.braille(text)
                    else:
                        self._write_transcript(text)
                        if self._echo is not None:
                            self._echo(text)
                        # Bound now: a late report about an earlier utterance must not end this one.
                        self.voice.speak(text, lambda outcome, ended=ended: ended.set())
                        # A voice that never reports back (a hung engine) holds us up for a while, not forever.
                        if not ended.wait(30 + 0.2 * len(text)):
                            log.warning("the %s voice did not report the end of an utterance", self.engine)
                except Exception as e:  # a voice failing mid-run must not kill the speech thread
                    log_unexpected(log, "speech failed", e)
            with self._lock:
                self._busy = False
                self._ended = None
                if self._queue.empty():
                    self._idle.set()

    def _write_transcript(self, text: str) -> None:
        """Append ``text``. The file holds what was on screen: it is created 0600, and an existing
        file of ours that others can read (made by an older version) is made private once."""
        if self._transcript is None:
            return
        try:
            fd = os.open(self._transcript, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                if not self._transcript_private:
                    self._transcript_private = True
                    _make_private(fd, self._transcript)
                f.write(text + "\n")
        except OSError as e:
            if not self._transcript_failed:  # once: a warning per sentence helps nobody
                self._transcript_failed = True
                log.warning("cannot write the transcript %s: %s", self._transcript, e)


def _make_private(fd: int, path) -> None:
    """Drop group/other access from the regular file ``fd`` if we own it (not a FIFO or /dev/stdout)."""
    if os.name != "posix":
        return
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and st.st_mode & 0o077:
        os.fchmod(fd, stat.S_IMODE(st.st_mode) & 0o700)
        log.warning("the transcript %s was readable by other users; it is now private (0600)", path)
