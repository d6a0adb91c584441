"""VoiceOver (engine "voiceover", macOS): an accessibility announcement
(NSAccessibilityAnnouncementRequestedNotification), which VoiceOver speaks and shows in braille,
with the user's voice and rate. Through pyobjc (AppKit).

VoiceOver tells nothing about the end of an announcement and a new one may cut off the one before,
so each sentence is given the time it takes to say (at the configured words per minute) before the
next. Stop sends an empty high-priority announcement, which interrupts. Exercised only on macOS;
here the tests replace the platform layer.
"""

from __future__ import annotations

import threading

from ..errors import SpeechError
from .base import EndCallback, VoiceLost, pace, speaking_time

__all__ = ["VoiceOverVoice", "available"]


class _AppKit:
    """The few AppKit calls used, so tests can put a stand-in in their place."""

    def __init__(self):
        import AppKit

        self._appkit = AppKit
        self._app = AppKit.NSApplication.sharedApplication()

    def voiceover_running(self) -> bool:
        return bool(self._appkit.NSWorkspace.sharedWorkspace().isVoiceOverEnabled())

    def announce(self, text: str, high: bool = False) -> None:
        ak = self._appkit
        ak.NSAccessibilityPostNotificationWithUserInfo(
            self._app, ak.NSAccessibilityAnnouncementRequestedNotification,
            {ak.NSAccessibilityAnnouncementKey: text,
             ak.NSAccessibilityPriorityKey: ak.NSAccessibilityPriorityHigh if high else ak.NSAccessibilityPriorityMedium})


def available() -> bool:
    try:
        return _AppKit().voiceover_running()
    except Exception:
        return False


class VoiceOverVoice:
    engine = "voiceover"
    can_braille = False  # each announcement is shown in braille already; there is no separate call

    def __init__(self, rate: int = 200, platform=None):
        try:
            self._ak = platform or _AppKit()
            running = self._ak.voiceover_running()
        except Exception as e:
            raise SpeechError(f"VoiceOver cannot be reached ({type(e).__name__}).") from e
        if not running:
            raise SpeechError("VoiceOver is not running.")
        self._rate = rate
        self._cut: threading.Event | None = None

    def speak(self, text: str, on_end: EndCallback) -> None:
        if not self._ak.voiceover_running():
            raise VoiceLost("VoiceOver is off")
        self._cut = cut = threading.Event()  # before announcing: a Stop meanwhile must cut this one
        self._ak.announce(text)
        pace(speaking_time(text, self._rate), cut, on_end, still_there=self._ak.voiceover_running)

    def cancel(self) -> None:
        cut, self._cut = self._cut, None
        if cut is not None:
            cut.set()
            try:
                self._ak.announce(" ", high=True)
            except Exception:
                pass

    def braille(self, text: str) -> None:
        pass

    def close(self) -> None:
        cut, self._cut = self._cut, None
        if cut is not None:
            cut.set()
