"""Speech: the Speaker (one thread, sentence by sentence, Stop at once), the small Voice interface,
one module per engine, and ``choose`` (the one place that picks the engine for "auto").

Engines: orca, speech-dispatcher (Linux); nvda, jaws (Windows); voiceover (macOS); pyttsx3 (the
system voice everywhere); espeak-ng; none.
"""

from __future__ import annotations

import sys

from ..errors import SpeechError
from .base import Voice, VoiceLost
from .choose import FallbackVoice, make_voice, preview
from .espeak_ng import EspeakVoice
from .none import NoVoice
from .pyttsx3_voice import Pyttsx3Voice
from .speaker import ENGINE_LABELS, SentenceSplitter, Speaker

__all__ = [
    "ENGINE_LABELS", "EspeakVoice", "FallbackVoice", "NoVoice", "Pyttsx3Voice", "SentenceSplitter", "Speaker",
    "Voice", "VoiceLost", "describe_engine", "make_voice", "open_speaker",
]


def open_speaker(config, *, echo_when_silent: bool = False) -> Speaker:
    """A Speaker for the [speech] settings ``config``. If no voice can start, say why on stderr
    and carry on without one; with ``echo_when_silent`` each utterance then goes to stdout instead.
    A screen reader that was asked for by name but is not there is said in one line, too.
    """
    echo = None
    try:
        voice = make_voice(config.engine, config.voice, config.rate, config.volume)
    except SpeechError as e:
        if echo_when_silent:
            where, echo = "writing what would be said to standard output", (lambda text: print(text, flush=True))
        else:
            where = "text goes to the screen and transcript"
        print(f"a11y-caption: {e} Speaking nothing; {where}.", file=sys.stderr)
        voice = NoVoice()
    else:
        if isinstance(voice, FallbackVoice) and config.engine != "auto" and voice.engine != config.engine:
            reason = voice.skipped[0].rstrip(".") if voice.skipped else f"{config.engine} is not there"
            print(f"a11y-caption: {reason}; speaking through {ENGINE_LABELS.get(voice.engine, voice.engine)}"
                  " until it is back.", file=sys.stderr)
    return Speaker(voice, config.transcript or None, echo=echo, braille=getattr(config, "braille", True))


def describe_engine(engine: str) -> str:
    """``engine`` as `config check` shows it: "auto (now speech-dispatcher)", or the name itself."""
    return f"auto (now {preview(engine)})" if engine == "auto" else engine
