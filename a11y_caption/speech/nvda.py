"""NVDA (engine "nvda", Windows) through its Controller Client: speakText, brailleMessage,
cancelSpeech, testIfRunning. The client DLL comes with speechlight (MIT; it bundles NVDA's
nvdaControllerClient32/64.dll, which NVDA ships under the LGPL 2.1).

NVDA queues what it is given and tells nothing about the end of speech, so each sentence is
handed over at once and NVDA says them in order. Exercised only on Windows; here the tests replace
the platform layer.
"""

from __future__ import annotations

from ..errors import SpeechError
from .base import DONE, EndCallback, VoiceLost

__all__ = ["NvdaVoice", "available"]


def _platform():
    from speechlight import speech  # Windows only: loads the NVDA controller client

    return speech


def available() -> bool:
    try:
        return bool(_platform().nvda_running())
    except Exception:
        return False


class NvdaVoice:
    engine = "nvda"
    can_braille = True

    def __init__(self, platform=None):
        try:
            self._sr = platform or _platform()
            running = self._sr.nvda_running()
        except Exception as e:
            raise SpeechError(f"The NVDA controller client could not load ({type(e).__name__}).") from e
        if not running:
            raise SpeechError("NVDA is not running.")

    def speak(self, text: str, on_end: EndCallback) -> None:
        if not self._sr.nvda_running():
            raise VoiceLost("NVDA is not running any more")
        self._sr.nvda_say(text)
        on_end(DONE)

    def cancel(self) -> None:
        try:
            self._sr.nvda_silence()
        except Exception:
            pass

    def braille(self, text: str) -> None:
        if self._sr.nvda_running():
            self._sr.nvda_braille(text)

    def close(self) -> None:
        pass
