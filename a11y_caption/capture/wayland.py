"""Screen and active-window capture in a Wayland session.

- wlroots compositors (sway, Hyprland, river, labwc): the wlr-screencopy protocol through ``grim``
  where it is installed; the picture comes over a pipe, never through a file.
- GNOME and KDE (no wlr-screencopy): the xdg-desktop-portal Screenshot interface, non-interactive
  (capture/portal.py). Its first use may show the desktop's one-time permission dialog.
- The active window: portals do not tell where it is. On sway, ``swaymsg -t get_tree`` gives the
  focused window's rectangle and grim captures just that; elsewhere the screen is described and
  the user hears once that the window could not be isolated.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

from PIL import Image

from ..errors import CaptureError
from ..images import normalize

__all__ = ["PERMISSION_NOTE", "capture_window", "grab_screen", "method", "permission_note"]

log = logging.getLogger(__name__)

PERMISSION_NOTE = ("Your desktop may ask once whether a11y-caption may take screenshots; choose Allow, "
                   "or Share, to let it see the screen.")
_NO_GRIM = "grim is not installed"
_TIMEOUT = 15


def _desktops(environ=None) -> set[str]:
    environ = os.environ if environ is None else environ
    return {d.strip().lower() for d in environ.get("XDG_CURRENT_DESKTOP", "").split(":") if d.strip()}


def method(environ=None) -> str:
    """"grim" or "portal": grim where it is installed and the desktop is not GNOME or KDE (neither
    has wlr-screencopy), else the portal."""
    if shutil.which("grim") and not _desktops(environ) & {"gnome", "kde", "ubuntu", "unity", "pantheon"}:
        return "grim"
    return "portal"


def _marker() -> Path:
    import platformdirs

    return platformdirs.user_state_path("a11y-caption") / "screenshot-portal-used"


def permission_note() -> str:
    """The sentence to say before a capture that may show the portal's permission dialog, else ""."""
    from .portal import session_bus_address

    if method() != "portal" or _marker().exists() or not session_bus_address():
        return ""
    return PERMISSION_NOTE


def _grim(*args: str) -> Image.Image:
    try:
        done = subprocess.run(["grim", "-t", "ppm", *args, "-"], capture_output=True, timeout=_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError as e:
        raise _NoScreencopy(_NO_GRIM) from e
    except subprocess.TimeoutExpired as e:
        raise CaptureError("grim did not capture the screen within 15 seconds.") from e
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        log.info("grim failed: %s", reason[-1][:200] if reason else done.returncode)
        if any("screencopy" in line for line in reason):
            raise _NoScreencopy("the compositor has no wlr-screencopy, which grim needs")
        if any("display" in line for line in reason):
            raise CaptureError(f"grim could not connect to the Wayland display "
                               f"{os.environ.get('WAYLAND_DISPLAY') or 'wayland-0'}.")
        raise CaptureError("grim could not capture the screen.")
    try:
        return normalize(Image.open(io.BytesIO(done.stdout)))
    except Exception as e:
        raise CaptureError("grim gave a picture that could not be read.") from e


class _NoScreencopy(Exception):
    """The compositor lacks wlr-screencopy (GNOME, KDE): grim cannot work there."""


def _portal_screen(why: str = "") -> Image.Image:
    """The screen through the portal; ``why`` says why grim was not used (for a failure's sentence)."""
    from .portal import PortalUnavailable, take_screenshot

    try:
        data = take_screenshot()
    except PortalUnavailable as e:
        raise CaptureError(f"This Wayland screen cannot be captured: {why}, and {e}." if why else
                           f"This Wayland screen cannot be captured: {e}.") from e
    try:
        marker = _marker()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        log.debug("could not note that the screenshot portal was used", exc_info=True)
    try:
        return normalize(Image.open(io.BytesIO(data)))
    except Exception as e:
        raise CaptureError("The desktop's screenshot portal gave a picture that could not be read.") from e


def grab_screen(which: str = "pointer") -> Image.Image:
    """The focused output on sway with ``"pointer"`` (the keyboard's output stands in for the
    pointer's), else every output together."""
    if method() == "grim":
        output = _sway_focused_output() if which == "pointer" else None
        try:
            return _grim(*(("-o", output) if output else ()))
        except _NoScreencopy as e:
            log.info("%s; asking the screenshot portal", e)
            return _portal_screen(str(e))
    return _portal_screen("" if shutil.which("grim") else _NO_GRIM)


def capture_window():
    """A capture.WindowShot: the focused window on sway, else the screen (not isolated)."""
    from .shot import WindowShot

    if method() == "grim":
        box = _sway_focused_window()
        if box is not None:
            x, y, w, h = box
            try:
                return WindowShot(_grim("-g", f"{x},{y} {w}x{h}"), isolated=True)
            except _NoScreencopy:
                pass
    return WindowShot(grab_screen("pointer"), isolated=False)


def _swaymsg(kind: str):
    """The parsed answer of ``swaymsg -t KIND``, or None where sway does not answer (not sway)."""
    if not shutil.which("swaymsg") or not (os.environ.get("SWAYSOCK") or os.environ.get("XDG_RUNTIME_DIR")):
        return None
    try:
        done = subprocess.run(["swaymsg", "-r", "-t", kind], capture_output=True, timeout=5,
                              stdin=subprocess.DEVNULL, text=True)
        return json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        log.debug("swaymsg failed", exc_info=True)
        return None


def _sway_focused_output() -> str | None:
    outputs = _swaymsg("get_outputs") or []
    return next((o.get("name") for o in outputs if o.get("focused") and o.get("active", True)), None)


def _sway_focused_window() -> tuple[int, int, int, int] | None:
    """(x, y, width, height) of sway's focused window in layout coordinates, or None (not sway, or
    the focus is on an empty workspace)."""
    tree = _swaymsg("get_tree")
    if not tree:
        return None
    stack = [tree]
    while stack:
        node = stack.pop()
        if node.get("focused"):
            if node.get("type") not in ("con", "floating_con") or node.get("nodes"):
                return None  # a workspace or a container, not a window
            r = node.get("rect") or {}
            if r.get("width", 0) < 2 or r.get("height", 0) < 2:
                return None
            return r["x"], r["y"], r["width"], r["height"]
        stack.extend(node.get("nodes", []) + node.get("floating_nodes", []))
    return None
