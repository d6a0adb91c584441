"""JAWS (engine "jaws", Windows) through its COM API (FreedomSci.JawsApi: SayString, StopSpeech,
and the BrailleString script function), reached through speechlight (MIT) and pywin32. JAWS
queues what it is given (SayString without interrupt). See _speechlight.py.
"""

from __future__ import annotations

from ._speechlight import SpeechlightVoice, running

__all__ = ["JawsVoice", "available"]


def _platform():
    from speechlight import speech

    return speech


def available() -> bool:
    return running(_platform, "jfw")


class JawsVoice(SpeechlightVoice):
    engine, prefix, name = "jaws", "jfw", "JAWS"

    def __init__(self, platform=None):
        super().__init__((lambda: platform) if platform else _platform, "The JAWS interface could not load")
