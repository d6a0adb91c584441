"""What the user is on: the focused object, the object under the mouse pointer and the unlabeled
images of the active window, from the desktop's accessibility tree (the one the screen reader
reads), each cropped at full resolution from the screen. Where no tree answers (no accessibility
bus, a toolkit without one, a remote desktop), the area around the pointer is captured instead
and one sentence says so.

One small interface (``Tree``) and a module per platform: ``atspi`` (Linux, AT-SPI through
PyGObject), ``uia`` (Windows, UI Automation through ``uiautomation``), ``ax`` (macOS, the AX API
through pyobjc). Where the binding is missing the tree "does not answer" and the pointer's area is
used. The tree's text (names, labels) is screen content: it is never logged.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from PIL import Image

from ..errors import CaptureError
from ..images import normalize
from .tree import AccessibleObject, Box, Tree, is_unlabeled

__all__ = ["NO_TREE", "AccessibleObject", "Box", "ObjectShot", "Tree", "capture_focus", "capture_images",
           "capture_pointer", "is_unlabeled", "open_tree"]

log = logging.getLogger(__name__)

NO_TREE = "No accessibility tree answers here; describing the area around the pointer."
NO_FOCUS = "The accessibility tree shows nothing with the focus; describing the area around the pointer."
NO_IMAGES = "The active window has no images without a description."
PAD = 8  # pixels around an object's box: its edge and a little of what surrounds it
MAX_IMAGES = 20  # a page of a hundred thumbnails is described 20 at a time, not all
MIN_SIDE = 8  # smaller than this is a spacer or a tracking pixel, not a picture


@dataclass(frozen=True)
class ObjectShot:
    """A cropped object, what the tree says of it (None: no tree answered), and a sentence for the
    user when the picture is not what was asked for (the pointer's area instead)."""

    image: Image.Image = field(repr=False)
    obj: AccessibleObject | None
    box: Box
    note: str = ""


def open_tree() -> Tree | None:
    """This desktop's tree, or None where none answers (logged, never raised)."""
    try:
        if sys.platform == "win32":
            from .uia import UiaTree

            return UiaTree.open()
        if sys.platform == "darwin":
            from .ax import AxTree

            return AxTree.open()
        if not sys.platform.startswith("linux"):
            return None
        from .atspi import AtspiTree

        return AtspiTree.open()
    except Exception:  # the binding missing (PyGObject, uiautomation, pyobjc), no accessibility bus
        log.info("no accessibility tree answers", exc_info=log.isEnabledFor(logging.DEBUG))
        return None


def _ask(tree: Tree | None, call):
    """The tree's answer, or None where it fails (a hung application, a bus that went away)."""
    if tree is None:
        return None
    try:
        return call(tree)
    except Exception:
        log.info("the accessibility tree did not answer", exc_info=log.isEnabledFor(logging.DEBUG))
        return None


def capture_focus(pointer_area: tuple[int, int] = (400, 300)) -> ObjectShot:
    """The focused object, cropped; the pointer's area where no tree answers or nothing has focus."""
    tree = open_tree()
    obj = _ask(tree, lambda t: t.focused())
    if obj is None or not _visible(obj.box):
        return _pointer_area(pointer_area, NO_TREE if tree is None else NO_FOCUS)
    return _shot(obj)


def capture_pointer(pointer_area: tuple[int, int] = (400, 300)) -> ObjectShot:
    """The object under the mouse pointer, cropped; the pointer's area where no tree answers there."""
    x, y = pointer_position()
    tree = open_tree()
    obj = _ask(tree, lambda t: t.at_point(x, y))
    if obj is None or not _visible(obj.box):
        return _pointer_area(pointer_area, NO_TREE if tree is None else "")
    return _shot(obj)


def capture_images(limit: int = MAX_IMAGES) -> list[ObjectShot]:
    """Each image of the active window whose name says nothing of it, cropped, in the tree's order.

    Raises:
        CaptureError: no tree answers, or the window has no such image (the sentence says which).
    """
    tree = open_tree()
    if tree is None:
        raise CaptureError("No accessibility tree answers here, so images cannot be found.")
    found = _ask(tree, lambda t: t.images(limit * 5))
    if found is None:
        raise CaptureError("The accessibility tree did not answer; try again.")
    unlabeled = [o for o in found if is_unlabeled(o) and _visible(o.box)
                 and o.box.width >= MIN_SIDE and o.box.height >= MIN_SIDE][:limit]
    if not unlabeled:
        raise CaptureError(NO_IMAGES)
    return [_shot(o, pad=0) for o in unlabeled]


def _visible(box: Box | None) -> bool:
    return box is not None and box.width > 1 and box.height > 1


def _shot(obj: AccessibleObject, pad: int = PAD) -> ObjectShot:
    image, box = _grab(obj.box.padded(pad))
    return ObjectShot(image, obj, box)


def _pointer_area(size: tuple[int, int], note: str) -> ObjectShot:
    x, y = pointer_position()
    width, height = size
    image, box = _grab(Box(x - width // 2, y - height // 2, width, height))
    return ObjectShot(image, None, box, note)


def pointer_position() -> tuple[int, int]:
    """Where the mouse pointer is, in screen pixels ((0, 0) where it cannot be known)."""
    try:
        from pynput.mouse import Controller

        return tuple(int(v) for v in Controller().position)
    except Exception:
        return (0, 0)


def _grab(box: Box) -> tuple[Image.Image, Box]:
    """``box`` of the desktop at full resolution, clipped to the desktop."""
    import mss

    from ..session import display_server

    if display_server() == "wayland":  # the tree's boxes and mss both need X11 (or XWayland's own windows)
        raise CaptureError("Describing an object needs an X11 session for now; describe the window instead.")

    try:
        with mss.MSS() as sct:
            whole = sct.monitors[0]
            left, top = max(box.left, whole["left"]), max(box.top, whole["top"])
            right = min(box.left + box.width, whole["left"] + whole["width"])
            bottom = min(box.top + box.height, whole["top"] + whole["height"])
            if right - left < 2 or bottom - top < 2:
                raise CaptureError("The object is off the screen.")
            shot = sct.grab({"left": left, "top": top, "width": right - left, "height": bottom - top})
            image = Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")
            return normalize(image), Box(left, top, right - left, bottom - top)
    except CaptureError:
        raise
    except Exception as e:  # mss.exception.ScreenShotError, no display ...
        raise CaptureError("The screen could not be captured.") from e
