"""Screen, active window and clipboard image -> PIL images, held in memory only (never on disk)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image

from .errors import CaptureError, ImageError, NoImageOnClipboard
from .images import normalize, open_image

__all__ = ["grab_clipboard_image", "grab_screen", "grab_window"]

log = logging.getLogger(__name__)


def _rgb(shot) -> Image.Image:
    return Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")


def grab_screen(which: str = "pointer") -> Image.Image:
    """The monitor under the mouse pointer (``"pointer"``) or all monitors together (``"all"``)."""
    import mss

    try:
        with mss.MSS() as sct:
            monitors = sct.monitors
            if which == "all" or len(monitors) == 2:
                return normalize(_rgb(sct.grab(monitors[0] if which == "all" else monitors[1])))
            x, y = _pointer()
            for mon in monitors[1:]:
                if mon["left"] <= x < mon["left"] + mon["width"] and mon["top"] <= y < mon["top"] + mon["height"]:
                    return normalize(_rgb(sct.grab(mon)))
            return normalize(_rgb(sct.grab(monitors[1])))
    except Exception as e:  # mss.exception.ScreenShotError, no display ...
        raise CaptureError("The screen could not be captured.") from e


def _pointer() -> tuple[int, int]:
    try:
        from pynput.mouse import Controller

        return tuple(int(v) for v in Controller().position)
    except Exception:
        return (0, 0)


def grab_window() -> Image.Image:
    """The active window. Falls back to the screen where the platform gives no window geometry."""
    box = _active_window_box()
    if box is None:
        log.info("no active-window geometry here; capturing the screen instead")
        return grab_screen("pointer")
    import mss

    left, top, width, height = box
    try:
        with mss.MSS() as sct:
            whole = sct.monitors[0]
            # Clip to the desktop: a window partly off-screen has nothing to show there.
            l, t = max(left, whole["left"]), max(top, whole["top"])
            r = min(left + width, whole["left"] + whole["width"])
            b = min(top + height, whole["top"] + whole["height"])
            if r - l < 2 or b - t < 2:
                return grab_screen("pointer")
            return normalize(_rgb(sct.grab({"left": l, "top": t, "width": r - l, "height": b - t})))
    except Exception as e:
        raise CaptureError("The active window could not be captured.") from e


def _active_window_box() -> tuple[int, int, int, int] | None:
    """(left, top, width, height) of the focused top-level window, or None."""
    try:
        if sys.platform == "win32":
            import ctypes
            from ctypes import wintypes

            hwnd = ctypes.windll.user32.GetForegroundWindow()
            rect = wintypes.RECT()
            if not hwnd or not ctypes.windll.user32.GetWindowRect(hwnd, ctypes.byref(rect)):
                return None
            return rect.left, rect.top, rect.right - rect.left, rect.bottom - rect.top
        if sys.platform.startswith("linux"):
            return _x11_active_window_box()
    except Exception:
        log.debug("active window lookup failed", exc_info=True)
    return None


def _x11_active_window_box() -> tuple[int, int, int, int] | None:
    from Xlib import X, display

    d = display.Display()
    try:
        root = d.screen().root
        window = None
        prop = root.get_full_property(d.intern_atom("_NET_ACTIVE_WINDOW"), X.AnyPropertyType)
        if prop is not None and prop.value and prop.value[0]:
            window = d.create_resource_object("window", prop.value[0])
        else:  # no window manager: the input focus, walked up to its top-level window
            window = d.get_input_focus().focus
            if not hasattr(window, "query_tree"):
                return None
            while True:
                parent = window.query_tree().parent
                if parent is None or parent.id == root.id:
                    break
                window = parent
        if window.id == root.id:
            return None
        geometry = window.get_geometry()
        origin = window.translate_coords(root, 0, 0)
        return -origin.x, -origin.y, geometry.width, geometry.height
    finally:
        d.close()


def grab_clipboard_image() -> Image.Image:
    """The image on the clipboard, or the image file whose path or file list was copied.

    Raises:
        NoImageOnClipboard: the clipboard is empty or holds text that names no image file.
        ImageError: a copied file is not a readable image.
    """
    from PIL import ImageGrab, UnidentifiedImageError

    try:
        content = ImageGrab.grabclipboard()
    except UnidentifiedImageError:  # Linux: text on the clipboard
        content = None
    except Exception as e:  # no clipboard tool, no display, data changed while read
        raise NoImageOnClipboard("The clipboard could not be read.") from e
    if isinstance(content, Image.Image):
        try:
            return normalize(content)
        except ImageError:
            raise
        except Exception as e:
            raise ImageError("The image on the clipboard is damaged.") from e
    paths = list(content) if isinstance(content, list) else _copied_paths()
    for p in paths:
        path = Path(p)
        if _is_file(path):
            return open_image(path)
    raise NoImageOnClipboard()


def _is_file(path: Path) -> bool:
    """Whether copied text names a file. Any text can be on the clipboard: a line too long for a
    file name (OSError) or one with a NUL (ValueError) is simply not a file, and must not turn into
    an error whose message quotes it."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _copied_paths() -> list[str]:
    """Paths named by a copied file list (text/uri-list) or plain text, on Linux."""
    from .clipboard import paste_text

    found = []
    for target in ("text/uri-list", None):
        text = paste_text(target) or ""
        for line in text.splitlines()[:64]:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("file://"):
                line = unquote(urlparse(line).path)
            found.append(line)
        if found:
            break
    return found
