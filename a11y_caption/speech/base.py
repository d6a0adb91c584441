"""The small interface every speech engine meets, and the adapter for engines that block.

Screen readers and speech-dispatcher queue and cancel on their own and return at once, so the
interface is theirs: ``speak`` hands one utterance over and returns, ``on_end`` says when it is over
(said, cancelled, or lost with its engine), ``cancel`` silences what we sent. pyttsx3 and eSpeak NG
block until the audio ends; ``adapt`` runs such a voice on a thread of its own.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..errors import SpeechError, log_unexpected
from ..safe_text import one_line

__all__ = ["CANCELLED", "DONE", "LOST", "BlockingVoice", "EndCallback", "UnknownVoice", "Voice", "VoiceLost", "adapt",
           "find_voice", "pace", "speaking_time"]

log = logging.getLogger(__name__)

DONE, CANCELLED, LOST = "done", "cancelled", "lost"
EndCallback = Callable[[str], None]  # called once with DONE, CANCELLED or LOST


class UnknownVoice(SpeechError):
    """The engine has no voice of the name asked for (the engine itself still works): the message
    is the one sentence the user hears before the engine's default voice speaks instead."""

    def __init__(self, voice: str):
        super().__init__(f"There is no voice {one_line(voice)!r}; a11y-caption voices lists them.")
        self.voice = voice


def find_voice(wanted: str, voices: list[tuple[str, str, str]]) -> str | None:
    """The id of the voice ``wanted`` names: its id, its name or its language (any case; the part
    of an id after its last "/" or "." does too), the first match in that order; None if none."""
    key = _key(wanted)
    if not key:
        return None
    for field in (lambda v: v[0], lambda v: v[1], lambda v: v[2],
                  lambda v: v[0].replace("\\", "/").replace(".", "/").rsplit("/", 1)[-1]):
        for voice in voices:
            if _key(field(voice)) == key:
                return voice[0]
    return None


def _key(text: str) -> str:
    return " ".join(str(text).split()).casefold().replace("_", "-")


class VoiceLost(Exception):
    """The engine went away (screen reader quit, daemon killed); another engine should take over."""


class Voice(Protocol):
    engine: str  # "speech-dispatcher", "orca", "pyttsx3"... (config.SPEECH_ENGINES)
    can_braille: bool

    def speak(self, text: str, on_end: EndCallback) -> None:
        """Hand ``text`` over and return at once; ``on_end`` is called exactly once, from any thread,
        when it has been said (DONE), cancelled (CANCELLED) or its engine vanished (LOST).

        Raises:
            VoiceLost: the engine cannot take it (not running any more).
        """

    def cancel(self) -> None:
        """Silence what we sent, at once; safe from any thread."""

    def braille(self, text: str) -> None:
        """Show ``text`` on the braille display (no-op where ``can_braille`` is False)."""

    def close(self) -> None: ...


class BlockingVoice:
    """Adapts a voice whose ``say(text)`` blocks until the audio ends and whose ``interrupt()`` cuts
    it off (pyttsx3, eSpeak NG, test voices): ``say`` runs on this adapter's own thread."""

    can_braille = False

    def __init__(self, inner):
        self.inner = inner
        self.engine = getattr(inner, "engine", type(inner).__name__)
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"a11y-voice-{self.engine}", daemon=True)
        self._thread.start()

    def speak(self, text: str, on_end: EndCallback) -> None:
        self._jobs.put((text, on_end))

    def cancel(self) -> None:
        self.inner.interrupt()

    def braille(self, text: str) -> None:
        pass

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5)
        self.inner.close()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            text, on_end = job
            try:
                self.inner.say(text)
            except Exception as e:  # a voice failing mid-run must not kill the speech thread
                log_unexpected(log, "speech failed", e)
            on_end(DONE)


def adapt(voice) -> Voice:
    """``voice`` itself if it has the non-blocking interface, else wrapped in a BlockingVoice."""
    return voice if hasattr(voice, "speak") else BlockingVoice(voice)


def speaking_time(text: str, words_per_minute: float) -> float:
    """About how long ``text`` takes to say, for engines that never report the end of speech."""
    return 0.3 + len(text.split()) * 60.0 / max(words_per_minute, 40.0)


def pace(seconds: float, cut: threading.Event, on_end: EndCallback, still_there=None) -> None:
    """On a thread of its own: call ``on_end`` after ``seconds`` (DONE), at once when ``cut`` is set
    (CANCELLED), or when ``still_there()`` turns False (LOST; checked twice a second)."""

    def run() -> None:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                on_end(DONE)
                return
            if cut.wait(min(left, 0.5)):
                on_end(CANCELLED)
                return
            if still_there is not None and not still_there():
                on_end(LOST)
                return

    threading.Thread(target=run, name="a11y-speech-pace", daemon=True).start()
