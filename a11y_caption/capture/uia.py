"""The Windows accessibility tree: UI Automation (what Narrator and NVDA read), through the
``uiautomation`` package (installed with the package on Windows).

Not run on this project's machines (there is no Windows there): it is held to the package's
documented interface by a contract test with the package replaced (tests/test_accessible.py).
Every call is made with COM set up for the calling thread (the agent asks from its worker), a walk
is bounded in nodes, and strings are cut to a bound, as on Linux.
"""

from __future__ import annotations

from collections import deque

from .tree import AccessibleObject, Box, bounded

__all__ = ["UiaTree"]

MAX_NODES = 3000
MAX_TEXT = 500
MAX_NAME = 300
_IMAGES = ("ImageControl",)


class UiaTree:
    """The UI Automation tree of this desktop."""

    def __init__(self, auto):
        self._auto = auto

    @classmethod
    def open(cls) -> "UiaTree | None":
        import uiautomation as auto

        return cls(auto)

    def focused(self) -> AccessibleObject | None:
        with self._auto.UIAutomationInitializerInThread():
            control = self._auto.GetFocusedControl()
            return self._object(control) if control else None

    def at_point(self, x: int, y: int) -> AccessibleObject | None:
        with self._auto.UIAutomationInitializerInThread():
            control = self._auto.ControlFromPoint(x, y)
            return self._object(control) if control else None

    def images(self, limit: int) -> list[AccessibleObject]:
        """The images of the foreground window, in the tree's order (a bounded walk)."""
        with self._auto.UIAutomationInitializerInThread():
            window = self._auto.GetForegroundControl()
            if not window:
                return []
            found, queue, seen = [], deque([window]), 0
            while queue and seen < MAX_NODES and len(found) < limit:
                node = queue.popleft()
                seen += 1
                if node.ControlTypeName in _IMAGES and not node.IsOffscreen:
                    found.append(self._object(node))
                queue.extend(node.GetChildren())
            return found

    def _object(self, control) -> AccessibleObject:
        rect = control.BoundingRectangle
        box = Box(rect.left, rect.top, rect.width(), rect.height()) if rect.width() > 0 and rect.height() > 0 else None
        states = []
        toggle = _pattern(control, "GetTogglePattern")
        if toggle is not None and toggle.ToggleState == self._auto.ToggleState.On:
            states.append("checked")
        selection = _pattern(control, "GetSelectionItemPattern")
        if selection is not None and selection.IsSelected:
            states.append("selected")
        expand = _pattern(control, "GetExpandCollapsePattern")
        if expand is not None and expand.ExpandCollapseState == self._auto.ExpandCollapseState.Expanded:
            states.append("expanded")
        if not control.IsEnabled:
            states.append("unavailable")
        value = _pattern(control, "GetValuePattern")
        text = value.Value if value is not None else ""
        return AccessibleObject(role=bounded(control.LocalizedControlType, 60), name=bounded(control.Name, MAX_NAME),
                                description=bounded(control.HelpText, MAX_NAME), states=tuple(states),
                                text=bounded(text, MAX_TEXT), box=box)


def _pattern(control, getter: str):
    """The control's pattern where it has it (None: it has not, or asking failed)."""
    try:
        return getattr(control, getter)()
    except Exception:
        return None
