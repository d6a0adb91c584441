"""Which display server this session runs on, decided once for capture and hotkeys alike."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

__all__ = ["display_server"]


def display_server(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """"wayland", "x11" or "none" on Linux and other Unix desktops; "windows" or "macos" elsewhere.

    A Wayland session with XWayland sets DISPLAY as well: an X11 client there sees only other X11
    windows and captures black for the rest, so the session type decides before DISPLAY does.
    """
    environ = os.environ if environ is None else environ
    platform = platform or sys.platform
    if platform == "win32":
        return "windows"
    if platform == "darwin":
        return "macos"
    session = environ.get("XDG_SESSION_TYPE", "").lower()
    if session == "wayland" or (environ.get("WAYLAND_DISPLAY") and session != "x11"):
        return "wayland"
    return "x11" if environ.get("DISPLAY") else "none"
