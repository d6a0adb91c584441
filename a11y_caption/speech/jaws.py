"""JAWS (engine "jaws", Windows) through its COM API (FreedomSci.JawsApi: SayString, StopSpeech,
and the BrailleString script function), reached through speechlight (MIT) and pywin32.

JAWS queues what it is given (SayString without interrupt) and tells nothing about the end of
speech. Exercised only on Windows; here the tests replace the platform layer.
"""

from __future__ import annotations

from ..errors import SpeechError
from .base import DONE, EndCallback, VoiceLost

__all__ = ["JawsVoice", "available"]


def _platform():
    from speechlight import speech

    return speech


def available() -> bool:
    try:
        return bool(_platform().jfw_running())
    except Exception:
        return False


class JawsVoice:
    engine = "jaws"
    can_braille = True

    def __init__(self, platform=None):
        try:
            self._sr = platform or _platform()
            running = self._sr.jfw_running()
        except Exception as e:
            raise SpeechError(f"The JAWS interface could not load ({type(e).__name__}).") from e
        if not running:
            raise SpeechError("JAWS is not running.")

    def speak(self, text: str, on_end: EndCallback) -> None:
        if not self._sr.jfw_running():
            raise VoiceLost("JAWS is not running any more")
        self._sr.jfw_say(text)
        on_end(DONE)

    def cancel(self) -> None:
        try:
            self._sr.jfw_silence()
        except Exception:
            pass

    def braille(self, text: str) -> None:
        if self._sr.jfw_running():
            self._sr.jfw_braille(text)

    def close(self) -> None:
        pass
