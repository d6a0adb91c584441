"""What the NVDA and JAWS engines share: speechlight reaches each screen reader through functions
named PREFIX_running, PREFIX_say, PREFIX_silence and PREFIX_braille ("nvda", "jfw"). Both queue
what they are given and tell nothing about the end of speech, so each sentence is handed over at
once and they say them in order. Exercised only on Windows; here the tests replace the platform.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import SpeechError
from .base import DONE, EndCallback, VoiceLost

__all__ = ["SpeechlightVoice", "running"]


def running(load: Callable[[], object], prefix: str) -> bool:
    try:
        return bool(getattr(load(), f"{prefix}_running")())
    except Exception:
        return False


class SpeechlightVoice:
    engine = prefix = name = ""  # set by each screen reader's class
    can_braille = True

    def __init__(self, load: Callable[[], object], load_error: str):
        try:
            self._sr = load()
            up = self._call("running")
        except Exception as e:
            raise SpeechError(f"{load_error} ({type(e).__name__}).") from e
        if not up:
            raise SpeechError(f"{self.name} is not running.")

    def _call(self, what: str, *args):
        return getattr(self._sr, f"{self.prefix}_{what}")(*args)

    def speak(self, text: str, on_end: EndCallback) -> None:
        if not self._call("running"):
            raise VoiceLost(f"{self.name} is not running any more")
        self._call("say", text)
        on_end(DONE)

    def cancel(self) -> None:
        try:
            self._call("silence")
        except Exception:
            pass

    def braille(self, text: str) -> None:
        if self._call("running"):
            self._call("braille", text)

    def close(self) -> None:
        pass
