"""The voices ``--voice`` (``[speech] voice``) can choose, listed per engine; `a11y-caption voices`.

The setting chooses the voice of the engine that speaks in voices of ours: pyttsx3 (the system
voice, also where ``auto`` or a screen reader falls back to it), espeak-ng, and speech-dispatcher
when it is named as the engine. A screen reader speaks in the voice set in the screen reader.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

from ..errors import SpeechError
from ..safe_text import one_line

__all__ = ["list_voices", "voices_command", "voices_of"]

Voices = list[tuple[str, str, str]]  # (id, name, language); base.find_voice looks a name up in one


def voices_of(engine: str) -> str:
    """The engine whose voices ``[speech] voice`` chooses when ``engine`` is asked for ("" for none)."""
    if engine == "none":
        return ""
    return engine if engine in ("espeak-ng", "speech-dispatcher") else "pyttsx3"


def list_voices(speech_config) -> Voices:
    """(id, name, language) of each voice the [speech] settings ``speech_config`` can choose with
    ``voice`` (its ``engine`` says whose: see ``voices_of``); the id is what ``--voice`` takes,
    though the name or the language does as well. An empty list for the engine "none".

    Raises:
        SpeechError: that engine cannot be reached, in one sentence.
    """
    engine = voices_of(speech_config.engine)
    if engine == "espeak-ng":
        from .espeak_ng import espeak_voices

        return espeak_voices()
    if engine == "speech-dispatcher":
        from .speech_dispatcher import dispatcher_voices

        return [(name, name, language) for name, language, variant in dispatcher_voices()
                if variant.lower() in ("none", "")]
    if engine == "pyttsx3":
        return _system_voices()
    return []


def voices_command(args) -> int:
    """`a11y-caption voices`: one voice a line, "id<TAB>name<TAB>language", for ``--voice`` or
    ``[speech] voice``. ``args`` may carry ``config`` (a settings file) and ``speech`` (an engine)."""
    from ..config import load_config

    speech = load_config(getattr(args, "config", None)).speech
    engine = getattr(args, "speech", None) or speech.engine
    whose = voices_of(engine)
    if not whose:
        print("a11y-caption: the engine none has no voices.", file=sys.stderr)
        return 0
    voices = list_voices(replace(speech, engine=engine))
    if whose == "pyttsx3" and engine != "pyttsx3":
        print("a11y-caption: the system voice's voices, for when no screen reader speaks; a screen reader "
              "speaks in its own.", file=sys.stderr)
    for voice in voices:
        print("\t".join(one_line(field) for field in voice))
    if not voices:
        print(f"a11y-caption: {whose} lists no voices.", file=sys.stderr)
    return 0


def _system_voices() -> Voices:
    """The voices of pyttsx3, asked in a child process (as it speaks: see pyttsx3_voice)."""
    try:
        r = subprocess.run([sys.executable, "-m", "a11y_caption.speech.tts_worker", json.dumps({"list": True})],
                           capture_output=True, text=True, encoding="utf-8", timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SpeechError(f"The pyttsx3 voice could not list its voices ({type(e).__name__}).") from e
    try:
        reply = json.loads(r.stdout.splitlines()[0])
    except (IndexError, ValueError):
        reply = {"error": "no answer"}
    if "voices" not in reply:
        from .choose import how_to_get_a_voice

        raise SpeechError(f"The pyttsx3 voice could not start ({reply.get('error', 'no answer')}).{how_to_get_a_voice()}")
    return [(str(i), str(n), str(lang)) for i, n, lang in reply["voices"]]
