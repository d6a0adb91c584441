"""The Linux accessibility tree: AT-SPI, the bus Orca reads, through PyGObject's ``Atspi``.

Every call has a timeout (a hung application cannot stall a press), searches use the tree's
Collection interface (one bus call, not one per node) where the application has it, and a walk
where it does not is bounded in nodes. Strings are cut to a bound: any text from outside may be
hostile or huge.
"""

from __future__ import annotations

import os
import threading

from .tree import AccessibleObject, Box, bounded

__all__ = ["AtspiTree"]

TIMEOUT_MS = 1000  # per bus call
MAX_NODES = 3000  # a walk where Collection is missing
MAX_TEXT = 500  # characters of an object's own text
MAX_NAME = 300

_INIT = threading.Lock()
_READY = False

# The states a listener needs to hear, by AT-SPI's name, as said.
_SAID_STATES = (("checked", "checked"), ("pressed", "pressed"), ("selected", "selected"),
                ("expanded", "expanded"), ("required", "required"), ("invalid_entry", "invalid"))


def bus_address() -> str | None:
    """The accessibility bus's address where one answers, else None; asked with a timeout.

    libatspi ends the whole process (``g_error``) when it cannot reach the bus, so the bus is found
    and reached here first, the way libatspi finds it: ``AT_SPI_BUS_ADDRESS``, else ``org.a11y.Bus``
    on the session bus (which starts the launcher where the desktop can). The X root window's
    ``AT_SPI_BUS`` property, which libatspi reads before the session bus, may be stale; the address
    checked here is pinned in ``AT_SPI_BUS_ADDRESS`` so libatspi uses the bus that answered.
    """
    import gi

    gi.require_version("Gio", "2.0")
    from gi.repository import Gio, GLib

    flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    address = os.environ.get("AT_SPI_BUS_ADDRESS") or None
    try:
        if address is None:
            session = Gio.bus_get_sync(Gio.BusType.SESSION, None)
            reply = session.call_sync("org.a11y.Bus", "/org/a11y/bus", "org.a11y.Bus", "GetAddress", None,
                                      GLib.VariantType.new("(s)"), Gio.DBusCallFlags.NONE, TIMEOUT_MS, None)
            address = reply.unpack()[0] or None
        if address is None:
            return None
        Gio.DBusConnection.new_for_address_sync(address, flags, None, None).close_sync(None)
    except GLib.Error:  # no session bus, no launcher, a dead socket
        return None
    return address


def _atspi():
    global _READY
    import gi

    gi.require_version("Atspi", "2.0")
    from gi.repository import Atspi

    with _INIT:
        if not _READY:
            address = bus_address()
            if address is None:
                raise LookupError("no accessibility bus answers")
            os.environ["AT_SPI_BUS_ADDRESS"] = address
            Atspi.init()
            Atspi.set_timeout(TIMEOUT_MS, 3 * TIMEOUT_MS)
            _READY = True
    return Atspi


class AtspiTree:
    """The AT-SPI tree of this session's accessibility bus."""

    def __init__(self, atspi):
        self._a = atspi

    @classmethod
    def open(cls) -> "AtspiTree | None":
        atspi = _atspi()
        desktop = atspi.get_desktop(0)
        if desktop is None or desktop.get_child_count() <= 0:  # no bus, or no application on it
            return None
        return cls(atspi)

    # -- the three questions ------------------------------------------------------------------
    def focused(self) -> AccessibleObject | None:
        for window in self._windows(active_only=True):
            found = self._find(window, states=(self._a.StateType.FOCUSED,), limit=1)
            if found:
                return self._object(found[0])
        return None

    def at_point(self, x: int, y: int) -> AccessibleObject | None:
        screen = self._a.CoordType.SCREEN
        for window in self._windows(active_only=False):
            if not self._contains(window, x, y):
                continue
            node, depth = window, 0
            while depth < 64:
                component = node.get_component_iface()
                child = component.get_accessible_at_point(x, y, screen) if component is not None else None
                if child is None or child == node:
                    break
                node, depth = child, depth + 1
            return self._object(node) if node is not window else None
        return None

    def images(self, limit: int) -> list[AccessibleObject]:
        roles = (self._a.Role.IMAGE, self._a.Role.ICON, self._a.Role.CANVAS)
        for window in self._windows(active_only=True):
            return [self._object(n) for n in self._find(window, roles=roles, limit=limit)
                    if self._has(n, self._a.StateType.SHOWING)]
        return []

    # -- the tree -----------------------------------------------------------------------------
    def _windows(self, active_only: bool) -> list:
        """The top-level windows: the active one alone, or (not ``active_only``) every showing one."""
        desktop = self._a.get_desktop(0)
        windows = []
        for i in range(min(desktop.get_child_count(), 200)):
            app = desktop.get_child_at_index(i)
            if app is None:
                continue
            try:
                for j in range(min(app.get_child_count(), 50)):
                    window = app.get_child_at_index(j)
                    if window is not None:
                        windows.append(window)
            except Exception:  # an application that went away or hangs: the others still answer
                continue
        active = [w for w in windows if self._has(w, self._a.StateType.ACTIVE)]
        if not active_only:  # the active window first, then the other showing ones
            return active + [w for w in windows if w not in active and self._has(w, self._a.StateType.SHOWING)]
        # Only the active window: a window behind it keeps a focused control and images of its own,
        # which are not what the user is on. No active window in the tree (a terminal without
        # accessibility, a remote desktop has the focus): nothing.
        return active

    def _find(self, root, states=(), roles=(), limit: int = 1) -> list:
        """Objects under ``root`` with all ``states`` and any of ``roles``: by Collection, else a walk."""
        a = self._a
        collection = root.get_collection_iface()
        if collection is not None:
            try:
                rule = a.MatchRule.new(a.StateSet.new(list(states)), a.CollectionMatchType.ALL, {},
                                       a.CollectionMatchType.ALL, list(roles), a.CollectionMatchType.ANY, [],
                                       a.CollectionMatchType.ALL, False)
                return list(collection.get_matches(rule, a.CollectionSortOrder.CANONICAL, limit, True))[:limit]
            except Exception:
                pass  # an application whose Collection fails: walk instead
        found, queue, seen = [], [root], 0
        while queue and seen < MAX_NODES and len(found) < limit:
            node = queue.pop(0)
            seen += 1
            if node is not root and all(self._has(node, s) for s in states) \
                    and (not roles or node.get_role() in roles):
                found.append(node)
            try:
                queue.extend(c for c in (node.get_child_at_index(i) for i in range(min(node.get_child_count(), 500)))
                             if c is not None)
            except Exception:
                continue
        return found

    def _has(self, node, state) -> bool:
        try:
            return node.get_state_set().contains(state)
        except Exception:
            return False

    def _contains(self, window, x: int, y: int) -> bool:
        box = self._box(window)
        return box is not None and box.left <= x < box.left + box.width and box.top <= y < box.top + box.height

    def _box(self, node) -> Box | None:
        component = node.get_component_iface()
        if component is None:
            return None
        e = component.get_extents(self._a.CoordType.SCREEN)
        return Box(e.x, e.y, e.width, e.height) if e.width > 0 and e.height > 0 else None

    def _object(self, node) -> AccessibleObject:
        states = node.get_state_set()
        said = tuple(word for name, word in _SAID_STATES
                     if states.contains(getattr(self._a.StateType, name.upper())))
        if not states.contains(self._a.StateType.ENABLED) and not states.contains(self._a.StateType.SENSITIVE):
            said += ("unavailable",)
        return AccessibleObject(role=bounded(node.get_role_name(), 60), name=bounded(node.get_name(), MAX_NAME),
                                description=bounded(node.get_description(), MAX_NAME), states=said,
                                text=self._text(node), box=self._box(node))

    @staticmethod
    def _text(node) -> str:
        text = node.get_text_iface()
        if text is None:
            return ""
        try:
            count = text.get_character_count()
            return bounded(text.get_text(0, min(count, MAX_TEXT)), MAX_TEXT) if count > 0 else ""
        except Exception:
            return ""
