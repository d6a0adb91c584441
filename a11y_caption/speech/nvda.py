"""NVDA (engine "nvda", Windows) through its Controller Client: speakText, brailleMessage,
cancelSpeech, testIfRunning. The client DLL comes with speechlight (MIT; it bundles NVDA's
nvdaControllerClient32/64.dll, which NVDA ships under the LGPL 2.1). See _speechlight.py.
"""

from __future__ import annotations

from ._speechlight import SpeechlightVoice, running

__all__ = ["NvdaVoice", "available"]


def _platform():
    from speechlight import speech  # Windows only: loads the NVDA controller client

    return speech


def available() -> bool:
    return running(_platform, "nvda")


class NvdaVoice(SpeechlightVoice):
    engine, prefix, name = "nvda", "nvda", "NVDA"

    def __init__(self, platform=None):
        super().__init__((lambda: platform) if platform else _platform, "The NVDA controller client could not load")
