"""What a window capture gives back, for the X11, Windows, macOS and Wayland ways alike."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

__all__ = ["WINDOW_NOT_ISOLATED", "WindowShot"]

WINDOW_NOT_ISOLATED = "The window could not be isolated; using the whole screen."


@dataclass(frozen=True)
class WindowShot:
    """What a window capture got: the active window, or the screen when the window could not be
    isolated (macOS and Wayland give no window geometry here; a window may be off-screen)."""

    image: Image.Image = field(repr=False)
    isolated: bool

    @property
    def task(self) -> str:
        """The describing task that matches the picture: a screen prompt for a whole screen."""
        return "window" if self.isolated else "screen"

    @property
    def note(self) -> str:
        """One sentence for the user when the picture is not the window, else ""."""
        return "" if self.isolated else WINDOW_NOT_ISOLATED
