"""What a desktop's accessibility tree tells of one object, and the small interface each platform's
tree answers (``atspi`` on Linux). Data only: no bus is touched here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

__all__ = ["AccessibleObject", "Box", "Tree", "bounded", "is_unlabeled", "own_name"]

# Names that say nothing of a picture: what toolkits and pages put where no one wrote one.
_GENERIC = {"", "image", "img", "graphic", "picture", "photo", "icon", "unlabeled", "unlabelled", "untitled", "spacer"}
# What browsers put in place of a missing name: Chromium names an <img> without alt by its own
# offer to describe it (seen in Chromium 156's tree), and "Unlabeled image"/"Unlabeled graphic".
_PLACEHOLDERS = {"to get missing image descriptions, open the context menu.", "unlabeled image",
                 "unlabeled graphic", "unlabelled image", "unlabelled graphic"}
_FILE_NAME = re.compile(r"^\S+\.(png|jpe?g|gif|svg|webp|bmp|ico|tiff?|avif)$", re.IGNORECASE)


@dataclass(frozen=True)
class Box:
    """A rectangle in screen pixels (what mss captures)."""

    left: int
    top: int
    width: int
    height: int

    def padded(self, pad: int) -> "Box":
        return Box(self.left - pad, self.top - pad, self.width + 2 * pad, self.height + 2 * pad)

    def as_json(self) -> list[int]:
        return [self.left, self.top, self.width, self.height]


@dataclass(frozen=True)
class AccessibleObject:
    """One object of the tree as the screen reader knows it. Strings are the toolkit's, bounded."""

    role: str  # "push button", "image", "check box" (AT-SPI's role names)
    name: str = ""
    description: str = ""
    states: tuple[str, ...] = ()  # the ones a listener needs: "checked", "unavailable", "selected", ...
    text: str = ""  # the object's own text (an entry's content, a paragraph), bounded
    box: Box | None = None

    def as_json(self) -> dict:
        return {"role": self.role, "name": self.name, "description": self.description, "states": list(self.states),
                "text": self.text, "box": self.box.as_json() if self.box else None}


def is_unlabeled(obj: AccessibleObject) -> bool:
    """Whether the object's name says nothing of it: empty, generic ("image", "graphic") or a file name."""
    name = " ".join(obj.name.split()).casefold()
    return (name in _GENERIC or name in _PLACEHOLDERS or bool(_FILE_NAME.match(name))
            or name.startswith(("http://", "https://", "data:")))


def own_name(obj: AccessibleObject) -> str:
    """The object's name, on one line; "" where it is a browser's placeholder for a missing one."""
    name = " ".join(obj.name.split())
    return "" if name.casefold() in _PLACEHOLDERS else name


class Tree(Protocol):
    """A desktop's accessibility tree. Each call answers within about a second or raises."""

    def focused(self) -> AccessibleObject | None: ...

    def at_point(self, x: int, y: int) -> AccessibleObject | None: ...

    def images(self, limit: int) -> list[AccessibleObject]:
        """The images of the active window, in the tree's order, at most ``limit``."""
        ...


def bounded(text, limit: int) -> str:
    """A string from a platform's tree, on one line and at most ``limit`` characters ("" for None
    or anything not a string): any text from outside may be hostile or huge."""
    from ..safe_text import one_line

    return one_line(text if isinstance(text, str) else "")[:limit]
