"""The one place that picks the speech engine, and falls back when it goes away.

``auto`` tries, in order, Linux: Orca's D-Bus service, a reachable speech-dispatcher, pyttsx3;
Windows: NVDA, JAWS, pyttsx3 (SAPI5); macOS: VoiceOver, pyttsx3 (the system voice). A named screen
reader engine falls back the same way to the engines after it. If the engine in use goes away
mid-run, the sentence it was saying is said again by the next one; the first engines are tried
again (at most every few seconds, between sentences) and used as soon as they are back.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import SpeechError, log_unexpected
from .base import CANCELLED, LOST, EndCallback, UnknownVoice, Voice, VoiceLost, adapt

__all__ = ["AUTO_ORDER", "ENGINES", "Engine", "FallbackVoice", "chain_for", "how_to_get_a_voice", "make_voice",
           "preview"]

log = logging.getLogger(__name__)

AUTO_ORDER = {
    "linux": ("orca", "speech-dispatcher", "pyttsx3"),
    "win32": ("nvda", "jaws", "pyttsx3"),
    "darwin": ("voiceover", "pyttsx3"),
}
PLATFORM = sys.platform  # tests set this to exercise another platform's choice


@dataclass(frozen=True)
class Engine:
    available: Callable[[], bool]  # quick check (well under 0.5 s when nothing is there)
    # open(voice=, rate=, volume=, asked=) -> a Voice; raises SpeechError (UnknownVoice: no such
    # voice, though the engine works). ``asked``: the engine the user asked for ("auto"...).
    open: Callable[..., object]


def _orca(**s):
    from .orca import OrcaVoice

    return OrcaVoice(rate=s["rate"])


def _speech_dispatcher(**s):
    from .speech_dispatcher import SpeechDispatcherVoice

    # The user's own voice, unless speech-dispatcher itself was asked for with a voice of ours.
    return SpeechDispatcherVoice(voice=s["voice"] if s.get("asked") == "speech-dispatcher" else "")


def _nvda(**s):
    from .nvda import NvdaVoice

    return NvdaVoice()


def _jaws(**s):
    from .jaws import JawsVoice

    return JawsVoice()


def _voiceover(**s):
    from .voiceover import VoiceOverVoice

    return VoiceOverVoice(rate=s["rate"])


def _pyttsx3(**s):
    from .pyttsx3_voice import Pyttsx3Voice

    return Pyttsx3Voice(s["voice"], s["rate"], s["volume"])


def _espeak(**s):
    from .espeak_ng import EspeakVoice

    return EspeakVoice(s["voice"], s["rate"], s["volume"])


def _none(**s):
    from .none import NoVoice

    return NoVoice()


def _probe(module: str) -> Callable[[], bool]:
    def available() -> bool:
        import importlib

        try:
            return importlib.import_module(f"{__package__}.{module}").available()
        except Exception:
            return False

    return available


ENGINES: dict[str, Engine] = {
    "orca": Engine(_probe("orca"), _orca),
    "speech-dispatcher": Engine(_probe("speech_dispatcher"), _speech_dispatcher),
    "nvda": Engine(_probe("nvda"), _nvda),
    "jaws": Engine(_probe("jaws"), _jaws),
    "voiceover": Engine(_probe("voiceover"), _voiceover),
    "pyttsx3": Engine(lambda: True, _pyttsx3),
    "espeak-ng": Engine(lambda: bool(shutil.which("espeak-ng") or shutil.which("espeak")), _espeak),
    "none": Engine(lambda: True, _none),
}


def chain_for(engine: str) -> tuple[str, ...]:
    """The engines to use, best first: ``auto`` = this platform's order; a screen reader engine is
    followed by the ones after it in that order (ending with the system voice); pyttsx3, espeak-ng
    and none stand alone."""
    order = AUTO_ORDER.get(PLATFORM, ("pyttsx3",))
    if engine == "auto":
        return order
    if engine in ("pyttsx3", "espeak-ng", "none"):
        return (engine,)
    if engine not in ENGINES:
        raise SpeechError(f"Unknown speech engine {engine!r}.")
    return (engine, *order[order.index(engine) + 1:]) if engine in order else (engine, order[-1])


def preview(engine: str) -> str:
    """Which engine ``engine`` would speak through now (checks only; starts nothing)."""
    for name in chain_for(engine):
        if ENGINES[name].available():
            return name
    return "none"


class FallbackVoice:
    """Speaks through the first engine of ``chain`` that works, moving down the chain when one goes
    away (the sentence is said again) and back up when a better one returns."""

    def __init__(self, chain: tuple[str, ...], recheck_seconds: float = 3.0, **settings):
        self.chain = chain
        self.settings = settings
        self.recheck_seconds = recheck_seconds
        self.skipped: list[str] = []  # why engines before the chosen one were passed over
        self.unknown_voice: str | None = None  # the sentence saying the voice asked for is not there
        self._default_voice: set[str] = set()  # engines that lack the voice asked for: their own speaks
        self._voices: dict[str, Voice] = {}
        self._lock = threading.RLock()
        self._cancels = 0
        self._last_check = time.monotonic()
        self._current = self._first_working(0)
        if self._current is None:
            raise SpeechError(self.skipped[-1] if self.skipped else "No speech engine could start.")

    @property
    def engine(self) -> str:
        return self._current

    @property
    def can_braille(self) -> bool:
        voice = self._voices.get(self._current)
        return bool(voice is not None and voice.can_braille)

    def speak(self, text: str, on_end: EndCallback) -> None:
        self._return_if_back()
        with self._lock:
            cancels = self._cancels
        while True:
            with self._lock:
                name = self._current
                voice = self._voices[name]
            try:
                voice.speak(text, lambda outcome, name=name: self._ended(name, text, outcome, on_end, cancels))
                return
            except VoiceLost as e:
                if not self._lose(name, str(e)):
                    on_end(CANCELLED)
                    return

    def cancel(self) -> None:
        with self._lock:
            self._cancels += 1
            voice = self._voices.get(self._current)
        if voice is not None:
            voice.cancel()

    def braille(self, text: str) -> None:
        voice = self._voices.get(self._current)
        if voice is not None and voice.can_braille:
            try:
                voice.braille(text)
            except Exception as e:
                log_unexpected(log, "braille failed", e)

    def close(self) -> None:
        with self._lock:
            voices, self._voices = list(self._voices.values()), {}
        for voice in voices:
            try:
                voice.close()
            except Exception as e:
                log_unexpected(log, "closing a voice failed", e)

    def _ended(self, name: str, text: str, outcome: str, on_end: EndCallback, cancels: int) -> None:
        if outcome != LOST:
            on_end(outcome)
            return
        self._lose(name, f"{name} went away")
        with self._lock:
            stopped = cancels != self._cancels
        if stopped:  # Stop came meanwhile: do not say it again
            on_end(CANCELLED)
        else:
            self.speak(text, on_end)  # the sentence is not lost: the next engine says it

    def _lose(self, name: str, reason: str) -> bool:
        """``name`` is gone: close it and move to the next engine that works. False if none."""
        with self._lock:
            voice = self._voices.pop(name, None)
            if self._current != name:
                return True  # already moved on
            start = self.chain.index(name) + 1
            found = self._first_working(start)
            log.warning("speech: %s; now speaking through %s", reason, found or "nothing")
            if found is None:
                return False
            self._current = found
            self._last_check = time.monotonic()
        if voice is not None:
            threading.Thread(target=_close_quietly, args=(voice,), daemon=True).start()
        return True

    def _first_working(self, start: int) -> str | None:
        for name in self.chain[start:]:
            if name in self._voices:
                return name
            try:
                self._voices[name] = adapt(self._open(name))
                return name
            except SpeechError as e:
                self.skipped.append(str(e))
            except Exception as e:  # an engine's library failing must not take speech down
                log_unexpected(log, f"speech engine {name} failed to start", e)
                self.skipped.append(f"{name} failed to start ({type(e).__name__})")
        return None

    def _open(self, name: str):
        """Open engine ``name``; in its default voice where it lacks the voice asked for."""
        if name not in self._default_voice:
            try:
                return ENGINES[name].open(**self.settings)
            except UnknownVoice as e:  # the engine works: its own voice rather than none at all
                self._default_voice.add(name)
                if getattr(self, "_current", None) is None:  # at the start: open_speaker says it, aloud too
                    self.unknown_voice = str(e)
                else:
                    log.warning("speech: %s", e)
        return ENGINES[name].open(**{**self.settings, "voice": ""})

    def _return_if_back(self) -> None:
        """Between sentences, at most every ``recheck_seconds``: is a better engine back?"""
        with self._lock:
            index = self.chain.index(self._current)
            now = time.monotonic()
            if index == 0 or now - self._last_check < self.recheck_seconds:
                return
            self._last_check = now
        for name in self.chain[:index]:
            if not ENGINES[name].available():
                continue
            try:
                voice = adapt(self._open(name))
            except Exception as e:
                log.info("speech: %s is there but did not open: %s", name, e)
                continue
            with self._lock:
                self._voices[name] = voice
                log.warning("speech: %s is back; speaking through it again", name)
                self._current = name
            return


def _close_quietly(voice) -> None:
    try:
        voice.close()
    except Exception:
        pass


def how_to_get_a_voice() -> str:
    """" No voice could start; install eSpeak NG (...) or run a screen reader." where that is the
    way to a voice (Linux without eSpeak NG), else "". The system voice plays its sound through
    aplay there, so alsa-utils is named too where aplay is missing."""
    if PLATFORM != "linux" or shutil.which("espeak-ng") or shutil.which("espeak"):
        return ""
    packages = "espeak-ng" if shutil.which("aplay") else "espeak-ng alsa-utils"
    how = f"sudo apt install {packages}" if shutil.which("apt-get") else f"the {packages} package{'s' * (' ' in packages)}"
    return f" No voice could start; install eSpeak NG ({how}) or run a screen reader."


def make_voice(engine: str, voice: str = "", rate: int = 200, volume: float = 1.0):
    """The voice for ``engine`` (one of config.SPEECH_ENGINES). pyttsx3, espeak-ng and none are
    returned as themselves; auto and the screen readers as a FallbackVoice over their chain.

    Raises:
        UnknownVoice: pyttsx3 or espeak-ng (alone) has no voice ``voice``; a FallbackVoice
            speaks in its engine's default voice instead and says why in ``unknown_voice``.
        SpeechError: no engine of the chain could start (one sentence saying why).
    """
    chain = chain_for(engine)
    settings = {"voice": voice, "rate": rate, "volume": volume, "asked": engine}
    if len(chain) == 1:
        return ENGINES[chain[0]].open(**settings)
    return FallbackVoice(chain, **settings)
