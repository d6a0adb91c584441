"""Screen, active window and clipboard image -> PIL images, held in memory only (never on disk)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image

from ..errors import CaptureError, ImageError, NoImageOnClipboard
from ..images import normalize, open_image, pixel_bound
from .accessible import capture_focus, capture_images, capture_pointer, pointer_position
from .shot import WINDOW_NOT_ISOLATED, WindowShot

__all__ = ["NO_DISPLAY", "capture_focus", "capture_images", "capture_pointer", "WINDOW_NOT_ISOLATED", "WindowShot", "capture_window", "grab_clipboard_image", "grab_screen",
           "permission_note", "pointer_position"]

log = logging.getLogger(__name__)

def _rgb(shot) -> Image.Image:
    return Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")


NO_DISPLAY = "There is no display to capture: neither WAYLAND_DISPLAY nor DISPLAY is set."


def _session() -> str:
    """The display server; "none" is refused here with the reason, never as a bare failure."""
    from ..session import display_server

    server = display_server()
    if server == "none":
        raise CaptureError(NO_DISPLAY)
    return server


def permission_note() -> str:
    """One sentence to say before a capture that may first show the desktop's permission dialog
    (the Wayland screenshot portal, until its first use), else ""."""
    from ..session import display_server

    if display_server() != "wayland":
        return ""
    from . import wayland

    return wayland.permission_note()


def grab_screen(which: str = "pointer") -> Image.Image:
    """The monitor under the mouse pointer (``"pointer"``) or all monitors together (``"all"``)."""
    if _session() == "wayland":  # DISPLAY may name XWayland, whose capture is black for Wayland windows
        from . import wayland

        return wayland.grab_screen(which)
    import mss

    try:
        with mss.MSS() as sct:
            monitors = sct.monitors
            if which == "all" or len(monitors) == 2:
                return normalize(_rgb(sct.grab(monitors[0] if which == "all" else monitors[1])))
            x, y = pointer_position()
            for mon in monitors[1:]:
                if mon["left"] <= x < mon["left"] + mon["width"] and mon["top"] <= y < mon["top"] + mon["height"]:
                    return normalize(_rgb(sct.grab(mon)))
            return normalize(_rgb(sct.grab(monitors[1])))
    except Exception as e:  # mss.exception.ScreenShotError, no display ...
        raise CaptureError("The screen could not be captured.") from e


def capture_window() -> WindowShot:
    """The active window; the monitor under the pointer where the window cannot be isolated."""
    if _session() == "wayland":
        from . import wayland

        return wayland.capture_window()
    box = _active_window_box()
    if box is None:
        log.info("no active-window geometry here; capturing the screen instead")
        return WindowShot(grab_screen("pointer"), isolated=False)
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
                return WindowShot(grab_screen("pointer"), isolated=False)
            return WindowShot(normalize(_rgb(sct.grab({"left": l, "top": t, "width": r - l, "height": b - t}))),
                              isolated=True)
    except Exception as e:
        raise CaptureError("The active window could not be captured.") from e


def _active_window_box() -> tuple[int, int, int, int] | None:
    """(left, top, width, height) of the focused top-level window in the pixels mss uses, or None.

    None on macOS: its window list needs pyobjc (Quartz), which is not a dependency.
    """
    try:
        if sys.platform == "win32":
            return _windows_active_window_box()
        if sys.platform.startswith("linux"):
            return _x11_active_window_box()
    except Exception:
        log.debug("active window lookup failed", exc_info=True)
    return None


def _windows_active_window_box() -> tuple[int, int, int, int] | None:
    import ctypes
    from ctypes import wintypes

    _make_dpi_aware()
    user32 = ctypes.windll.user32
    hwnd = user32.GetForegroundWindow()
    if not hwnd:
        return None
    rect = wintypes.RECT()
    # The visible frame, in physical pixels: GetWindowRect adds the invisible resize borders
    # (about 7 px a side on Windows 10 and later), which would show what lies behind the window.
    dwmwa_extended_frame_bounds = 9
    try:
        framed = ctypes.windll.dwmapi.DwmGetWindowAttribute(
            wintypes.HWND(hwnd), dwmwa_extended_frame_bounds, ctypes.byref(rect), ctypes.sizeof(rect)) == 0
    except (AttributeError, OSError):  # no desktop window manager library
        framed = False
    if not framed and not user32.GetWindowRect(hwnd, ctypes.byref(rect)):
        return None
    return rect.left, rect.top, rect.right - rect.left, rect.bottom - rect.top


def _make_dpi_aware() -> None:
    """Make this process per-monitor DPI aware, as mss does for its screenshots, so that window
    rectangles come in the same physical pixels as mss's monitors. mss does so only when it is
    first used, which is after the window's rectangle is read; before that Windows reports a
    scaled display (125 %, 150 %) in scaled-down pixels, and the wrong area would be captured.
    Asking again once it is set fails harmlessly."""
    import ctypes

    user32 = ctypes.windll.user32
    try:  # Windows 10 1703 and later: DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2
        if user32.SetProcessDpiAwarenessContext(ctypes.c_void_p(-4)):
            return
    except AttributeError:
        pass
    try:  # Windows 8.1 and later: PROCESS_PER_MONITOR_DPI_AWARE, what mss sets
        ctypes.windll.shcore.SetProcessDpiAwareness(2)
        return
    except (AttributeError, OSError):
        pass
    user32.SetProcessDPIAware()  # Vista to 8: system DPI aware, as mss does there


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
        with pixel_bound("The image on the clipboard"):  # ImageGrab decodes as it opens: bound it first
            content = ImageGrab.grabclipboard()
    except ImageError:
        raise
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
