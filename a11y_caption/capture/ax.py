"""The macOS accessibility tree: the AX API (what VoiceOver reads), through pyobjc's
``ApplicationServices`` (installed with the package on macOS). It needs the Accessibility permission
the hotkeys already ask for (System Settings, Privacy & Security, Accessibility).

Not run on this project's machines (there is no Mac there): it is held to pyobjc's documented
calling convention (an output argument passed as None comes back in a tuple with the error code)
by a contract test with the framework replaced (tests/test_accessible.py). Every message to an
application has a one-second timeout, a walk is bounded in nodes, and strings are cut to a bound.
"""

from __future__ import annotations

from collections import deque

from .tree import AccessibleObject, Box, bounded

__all__ = ["AxTree"]

TIMEOUT_S = 1.0
MAX_NODES = 3000
MAX_TEXT = 500
MAX_NAME = 300
_IMAGES = ("AXImage",)


class AxTree:
    """The AX tree of this desktop, asked through the system-wide element."""

    def __init__(self, ax):
        self._ax = ax
        self._system = ax.AXUIElementCreateSystemWide()
        ax.AXUIElementSetMessagingTimeout(self._system, TIMEOUT_S)

    @classmethod
    def open(cls) -> "AxTree | None":
        import ApplicationServices as ax

        if not ax.AXIsProcessTrusted():  # no Accessibility permission: no tree answers
            return None
        return cls(ax)

    def focused(self) -> AccessibleObject | None:
        element = self._attribute(self._system, "AXFocusedUIElement")
        return self._object(element) if element is not None else None

    def at_point(self, x: int, y: int) -> AccessibleObject | None:
        error, element = self._ax.AXUIElementCopyElementAtPosition(self._system, float(x), float(y), None)
        return self._object(element) if error == self._ax.kAXErrorSuccess and element is not None else None

    def images(self, limit: int) -> list[AccessibleObject]:
        """The images of the focused application's focused window, in the tree's order (bounded)."""
        app = self._attribute(self._system, "AXFocusedApplication")
        window = self._attribute(app, "AXFocusedWindow") if app is not None else None
        if window is None:
            return []
        found, queue, seen = [], deque([window]), 0
        while queue and seen < MAX_NODES and len(found) < limit:
            node = queue.popleft()
            seen += 1
            if self._attribute(node, "AXRole") in _IMAGES:
                found.append(self._object(node))
            queue.extend(self._attribute(node, "AXChildren") or ())
        return found

    def _attribute(self, element, name: str):
        error, value = self._ax.AXUIElementCopyAttributeValue(element, name, None)
        return value if error == self._ax.kAXErrorSuccess else None

    def _object(self, element) -> AccessibleObject:
        get = lambda name: self._attribute(element, name)  # noqa: E731
        role = get("AXRole") or ""
        # An image's alt text is its AXDescription; a control's label its AXTitle.
        name = get("AXTitle") or get("AXDescription") or ""
        value = get("AXValue")
        states = []
        if role in ("AXCheckBox", "AXRadioButton") and value == 1:
            states.append("checked")
        if get("AXSelected"):
            states.append("selected")
        if get("AXExpanded"):
            states.append("expanded")
        if get("AXEnabled") is False:
            states.append("unavailable")
        text = value if isinstance(value, str) else ""
        return AccessibleObject(role=bounded(get("AXRoleDescription") or role, 60), name=bounded(name, MAX_NAME),
                                description=bounded(get("AXHelp"), MAX_NAME), states=tuple(states),
                                text=bounded(text, MAX_TEXT), box=self._box(get("AXPosition"), get("AXSize")))

    def _box(self, position, size) -> Box | None:
        if position is None or size is None:
            return None
        ok, point = self._ax.AXValueGetValue(position, self._ax.kAXValueCGPointType, None)
        ok_size, extent = self._ax.AXValueGetValue(size, self._ax.kAXValueCGSizeType, None)
        if not (ok and ok_size) or extent.width <= 0 or extent.height <= 0:
            return None
        return Box(int(point.x), int(point.y), int(extent.width), int(extent.height))
