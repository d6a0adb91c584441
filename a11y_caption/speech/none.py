"""Engine "none": speaks nothing; the transcript and stdout still get every word."""

from __future__ import annotations

from .base import DONE, EndCallback

__all__ = ["NoVoice"]


class NoVoice:
    engine = "none"
    can_braille = False

    def speak(self, text: str, on_end: EndCallback) -> None:
        on_end(DONE)

    def cancel(self) -> None:
        pass

    def braille(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass
