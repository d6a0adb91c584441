"""speech-dispatcher (engine "speech-dispatcher", Linux): what Orca itself speaks through, so the
user's synthesizer, default voice and rate are used; our rate is not applied, and our voice only
where speech-dispatcher is the engine asked for (not when ``auto`` finds it).

Messages are sent with priority TEXT, one at a time: the next only after the daemon reports the
END (or CANCEL) of the one before, so none is cut off by the next. Stop cancels our own messages
only (CANCEL SELF). The daemon going away ends the current utterance as LOST.
"""

from __future__ import annotations

import logging

from ..errors import SpeechError
from .base import CANCELLED, DONE, LOST, EndCallback, UnknownVoice, VoiceLost, find_voice
from .ssip import EndTracker, SSIPConnection, SSIPError, default_address

__all__ = ["SpeechDispatcherVoice", "available", "dispatcher_voices"]

log = logging.getLogger(__name__)


def available(timeout: float = 0.2) -> bool:
    """Is a daemon listening where SPEECHD_ADDRESS (or the usual socket) says? Quick: one connect."""
    import os
    import socket

    try:
        kind, where = default_address()
    except SSIPError:
        return False
    if kind == "unix" and not os.path.exists(where):
        return False
    family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(where)
        except OSError:
            return False
    return True


def dispatcher_voices(timeout: float = 5.0) -> list[tuple[str, str, str]]:
    """(name, language, variant) of each voice of speech-dispatcher's output module.

    Raises:
        SpeechError: the daemon is not reachable.
    """
    try:
        conn = SSIPConnection(on_event=lambda msg_id, event: None, on_lost=lambda: None, timeout=timeout)
    except SSIPError as e:
        raise SpeechError(f"{e}.") from e
    try:
        return _voices(conn)
    except SSIPError as e:
        raise SpeechError(f"{e}.") from e
    finally:
        conn.close()


def _voices(conn: SSIPConnection) -> list[tuple[str, str, str]]:
    _, lines = conn.command("LIST SYNTHESIS_VOICES")
    voices = []
    for line in lines:
        name, _, rest = line.partition("\t")
        language, _, variant = rest.partition("\t")
        if name:
            voices.append((name, language, variant))
    return voices


class SpeechDispatcherVoice:
    engine = "speech-dispatcher"
    can_braille = False

    def __init__(self, timeout: float = 2.0, voice: str = ""):
        self._ends = EndTracker()
        try:
            self._conn = SSIPConnection(on_event=self._event, on_lost=self._lost, timeout=timeout)
            self._conn.command("SET SELF PRIORITY TEXT")
            if voice:
                self._set_voice(voice)
        except SSIPError as e:
            self._conn_close()
            raise SpeechError(f"{e}.") from e
        except UnknownVoice:
            self._conn_close()
            raise

    def _set_voice(self, wanted: str) -> None:
        """Speak in the voice ``wanted`` (a name or language of the list); UnknownVoice if there is none."""
        found = find_voice(wanted, [(name, name, language) for name, language, _ in _voices(self._conn)])
        if found is None or "\n" in found or "\r" in found:
            raise UnknownVoice(wanted)
        self._conn.command(f"SET SELF SYNTHESIS_VOICE {found}")

    def _conn_close(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()

    def speak(self, text: str, on_end: EndCallback) -> None:
        try:
            msg_id = self._conn.speak(text)
        except SSIPError as e:
            raise VoiceLost(str(e)) from e
        self._ends.expect(msg_id, lambda event: on_end({"end": DONE, "cancel": CANCELLED}.get(event, LOST)))

    def cancel(self) -> None:
        try:
            self._conn.command("CANCEL SELF")
        except SSIPError as e:
            log.info("cancel: %s", e)

    def braille(self, text: str) -> None:
        pass

    def close(self) -> None:
        self._conn.close()

    def _event(self, msg_id: int, event: str) -> None:
        self._ends.event(msg_id, event)

    def _lost(self) -> None:
        log.info("speech-dispatcher went away")
        self._ends.fail_all(LOST)
