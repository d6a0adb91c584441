"""Speech: the Speaker (one thread, sentence by sentence, Stop at once), the small Voice interface,
one module per engine, ``choose`` (the one place that picks the engine for "auto"), and
``voices`` (the voices ``--voice`` can choose, listed per engine).

Engines: orca, speech-dispatcher (Linux); nvda, jaws (Windows); voiceover (macOS); pyttsx3 (the
system voice everywhere); espeak-ng; none.
"""

from __future__ import annotations

import os
import sys

from ..errors import SpeechError
from ..safe_text import one_line
from .base import UnknownVoice, Voice, VoiceLost, find_voice
from .choose import FallbackVoice, how_to_get_a_voice, make_voice, preview
from .espeak_ng import EspeakVoice
from .none import NoVoice
from .pyttsx3_voice import Pyttsx3Voice
from .speaker import ENGINE_LABELS, SentenceSplitter, Speaker, WholeText
from .voices import list_voices

__all__ = [
    "ENGINE_LABELS", "EspeakVoice", "FallbackVoice", "NoVoice", "Pyttsx3Voice", "SentenceSplitter", "Speaker",
    "UnknownVoice", "Voice", "VoiceLost", "WholeText", "describe_engine", "find_voice", "how_to_get_a_voice",
    "list_voices", "make_voice", "open_speaker",
]


def open_speaker(config, *, echo_when_silent: bool = False) -> Speaker:
    """A Speaker for the [speech] settings ``config``. If no voice can start, say why on stderr
    (and how to get one) and carry on without one; with ``echo_when_silent`` each utterance then
    goes to stdout instead. A screen reader that was asked for by name but is not there is said in
    one line, too. A voice the engine lacks is said in one sentence, on stderr and aloud, and the
    engine's default voice speaks.
    """
    echo = None
    unknown = None
    transcript = config.transcript or None
    if transcript:
        _check_transcript(transcript)
    try:
        try:
            voice = make_voice(config.engine, config.voice, config.rate, config.volume)
        except UnknownVoice as e:  # the engine works: speak in its own voice rather than not at all
            unknown = str(e)
            voice = make_voice(config.engine, "", config.rate, config.volume)
    except SpeechError as e:
        if echo_when_silent:
            where, echo = "writing what would be said to standard output", (lambda text: print(text, flush=True))
        else:
            where = "text goes to the screen and transcript"
        print(f"a11y-caption: {e} Speaking nothing; {where}.{how_to_get_a_voice()}", file=sys.stderr)
        voice = NoVoice()
    else:
        if isinstance(voice, FallbackVoice) and config.engine != "auto" and voice.engine != config.engine:
            reason = voice.skipped[0].rstrip(".") if voice.skipped else f"{config.engine} is not there"
            print(f"a11y-caption: {reason}; speaking through {ENGINE_LABELS.get(voice.engine, voice.engine)}"
                  " until it is back.", file=sys.stderr)
        unknown = unknown or getattr(voice, "unknown_voice", None)
    speaker = Speaker(voice, transcript, echo=echo, braille=getattr(config, "braille", True))
    if unknown:
        print(f"a11y-caption: {unknown}", file=sys.stderr)
        speaker.say(unknown)
    return speaker


def _check_transcript(path: str) -> None:
    """The transcript can be written (created 0600 if new), or one sentence says why, before any
    speech: a warning at every sentence would go unheard, and the run would seem to succeed."""
    try:
        if os.path.exists(path) and not os.path.isfile(path):
            return  # a FIFO or /dev/stdout: opening it now could wait for a reader
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o600))
    except OSError as e:
        raise SpeechError(f"The transcript {one_line(os.fsdecode(path))} cannot be written ({e.strerror or e}); "
                          "choose another path for it.") from e


def describe_engine(engine: str) -> str:
    """``engine`` as `config check` shows it: "auto (now speech-dispatcher)", or the name itself."""
    return f"auto (now {preview(engine)})" if engine == "auto" else engine
