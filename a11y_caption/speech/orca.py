"""Orca's D-Bus remote controller (engine "orca", Linux, Orca 49 and later).

Checked against the Orca sources (src/orca/dbus_service.py) and README-REMOTE-CONTROLLER.md:
- Orca 51 and later: service ``org.gnome.Orca1.Service`` at ``/org/gnome/Orca1/Service``, interface
  ``org.gnome.Orca1.Service``; each module at ``/org/gnome/Orca1/Service/NAME`` with interface
  ``org.gnome.Orca1.NAME`` and one method per command taking ``notify_user`` (b):
  ``SpeechManager.InterruptSpeech(b) -> b``.
- Orca 49-50: ``org.gnome.Orca.Service`` at ``/org/gnome/Orca/Service``; modules at
  ``/org/gnome/Orca/Service/SpeechAndVerbosityManager`` (49) or ``.../SpeechManager`` (50) with the
  generic ``org.gnome.Orca.Module.ExecuteCommand(s name, b notify_user) -> b``.
- Both: ``PresentMessage(s) -> b`` speaks the text and flashes it in braille, following the user's
  Orca settings. Newer Orca also has ``DisplayMessage(s, b persistent) -> b`` (braille only), used
  for the whole final description when it is there.

Orca says nothing when a message has been spoken, and a new message interrupts the one before, so
each sentence is given the time it takes to say (from Orca's rate where it tells us, else the
configured words per minute) before the next is sent. Stop interrupts Orca's speech.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from ..errors import SpeechError
from .base import EndCallback, VoiceLost, pace, speaking_time

__all__ = ["DIALECTS", "OrcaVoice", "available"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dialect:
    bus_name: str
    path: str
    interface: str
    speech_paths: tuple[str, ...]
    speech_interface: str
    generic: bool  # commands go through Module.ExecuteCommand(name, notify_user)


DIALECTS = (
    Dialect("org.gnome.Orca1.Service", "/org/gnome/Orca1/Service", "org.gnome.Orca1.Service",
            ("/org/gnome/Orca1/Service/SpeechManager",), "org.gnome.Orca1.SpeechManager", generic=False),
    Dialect("org.gnome.Orca.Service", "/org/gnome/Orca/Service", "org.gnome.Orca.Service",
            ("/org/gnome/Orca/Service/SpeechManager", "/org/gnome/Orca/Service/SpeechAndVerbosityManager"),
            "org.gnome.Orca.Module", generic=True),
)
_GONE_ERRORS = {"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
                "org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Disconnected"}


class _Gone(Exception):
    pass


class _Bus:
    """A session-bus connection (jeepney, blocking) shared by threads under a lock."""

    def __init__(self, timeout: float):
        from jeepney.io.blocking import open_dbus_connection

        if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
            raise _Gone("no session bus (DBUS_SESSION_BUS_ADDRESS is not set)")
        self.timeout = timeout
        try:
            self._conn = open_dbus_connection("SESSION", auth_timeout=timeout)
        except Exception as e:
            raise _Gone(f"the session bus is not reachable ({type(e).__name__})") from e
        self._lock = threading.Lock()

    def call(self, bus_name: str, path: str, interface: str, method: str, signature: str | None = None,
             body: tuple = (), timeout: float | None = None) -> tuple:
        """The reply's body. Raises _Gone if the service or the bus is gone, DBusErrorResponse else."""
        from jeepney import DBusAddress, new_method_call
        from jeepney.wrappers import DBusErrorResponse, unwrap_msg

        msg = new_method_call(DBusAddress(path, bus_name, interface), method, signature, body)
        try:
            with self._lock:
                reply = self._conn.send_and_get_reply(msg, timeout=timeout or self.timeout)
            return unwrap_msg(reply)
        except DBusErrorResponse as e:
            if e.name in _GONE_ERRORS:
                raise _Gone(e.name) from e
            raise
        except (OSError, TimeoutError, EOFError) as e:
            raise _Gone(type(e).__name__) from e

    def has_owner(self, name: str) -> bool:
        try:
            return bool(self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                  "NameHasOwner", "s", (name,))[0])
        except Exception:
            return False

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:
            pass


def available(timeout: float = 0.2) -> bool:
    """Is Orca's remote controller (either name) on the session bus? Quick when there is no bus."""
    try:
        bus = _Bus(timeout)
    except Exception:
        return False
    try:
        return any(bus.has_owner(d.bus_name) for d in DIALECTS)
    finally:
        bus.close()


class OrcaVoice:
    engine = "orca"
    can_braille = True  # PresentMessage flashes each sentence; DisplayMessage shows the whole text

    def __init__(self, rate: int = 200, timeout: float = 1.0):
        try:
            self._bus = _Bus(timeout)
        except _Gone as e:
            raise SpeechError(f"Orca is not reachable: {e}.") from e
        self.dialect = next((d for d in DIALECTS if self._bus.has_owner(d.bus_name)), None)
        if self.dialect is None:
            self._bus.close()
            raise SpeechError("Orca's remote controller is not on the session bus (it needs Orca 49 or later).")
        self._speech_path: str | None = None
        self._display_message = True  # until Orca says it has no such method
        self.words_per_minute = self._orca_words_per_minute() or rate
        self._cut: threading.Event | None = None
        self._lock = threading.Lock()

    def speak(self, text: str, on_end: EndCallback) -> None:
        d = self.dialect
        cut = threading.Event()
        with self._lock:
            self._cut = cut  # before sending: a Stop meanwhile must cut this one
        try:
            self._bus.call(d.bus_name, d.path, d.interface, "PresentMessage", "s", (text,))
        except _Gone as e:
            raise VoiceLost(f"Orca went away ({e})") from e
        # Orca quitting mid-sentence ends it as LOST: the next engine says the sentence again.
        pace(speaking_time(text, self.words_per_minute), cut, on_end,
             still_there=lambda: self._bus.has_owner(d.bus_name))

    def cancel(self) -> None:
        with self._lock:
            cut, self._cut = self._cut, None
        if cut is not None:
            cut.set()
        self._interrupt()

    def braille(self, text: str) -> None:
        if not self._display_message:
            return
        d = self.dialect
        try:
            self._bus.call(d.bus_name, d.path, d.interface, "DisplayMessage", "sb", (text, True))
        except _Gone:
            pass
        except Exception as e:  # Orca 49-51.0: no DisplayMessage; each sentence was flashed already
            log.info("Orca has no DisplayMessage (%s); braille shows each sentence as it is spoken", e)
            self._display_message = False

    def close(self) -> None:
        with self._lock:
            cut, self._cut = self._cut, None
        if cut is not None:
            cut.set()
        self._bus.close()

    def _interrupt(self) -> None:
        d = self.dialect
        paths = [self._speech_path] if self._speech_path else list(d.speech_paths)
        for path in paths:
            try:
                if d.generic:
                    self._bus.call(d.bus_name, path, d.speech_interface, "ExecuteCommand", "sb", ("InterruptSpeech", False))
                else:
                    self._bus.call(d.bus_name, path, d.speech_interface, "InterruptSpeech", "b", (False,))
                self._speech_path = path
                return
            except _Gone:
                return
            except Exception as e:
                log.info("Orca: InterruptSpeech at %s failed: %s", path, e)

    def _orca_words_per_minute(self) -> float | None:
        """Orca's speech rate (0-100, 50 by default) as words a minute: about 175 at 50 with eSpeak
        through speech-dispatcher, doubling every 50 steps. An estimate; None if Orca won't say."""
        d = self.dialect
        for path in d.speech_paths:
            try:
                if d.generic:
                    value = self._bus.call(d.bus_name, path, d.speech_interface, "ExecuteRuntimeGetter", "s", ("Rate",))[0]
                else:
                    value = self._bus.call(d.bus_name, path, "org.freedesktop.DBus.Properties", "Get", "ss",
                                           (d.speech_interface, "Rate"))[0]
                rate = float(value[1] if isinstance(value, tuple) else value)
                return 175.0 * 2 ** ((rate - 50.0) / 50.0)
            except Exception:
                continue
        return None
