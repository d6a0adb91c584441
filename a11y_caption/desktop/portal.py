"""Our hotkeys through the desktop's GlobalShortcuts portal (xdg-desktop-portal over D-Bus):
``CreateSession(a{sv})`` (results ``session_handle``), ``BindShortcuts(o session, a(sa{sv})
shortcuts, s parent_window, a{sv})`` with ``description`` and ``preferred_trigger`` per shortcut,
and the ``Activated(o session, s id, t timestamp, a{sv})`` signal. The portal's calls and requests
are capture/portal.py's, which the Screenshot portal uses too."""

from __future__ import annotations

import logging
import queue
import secrets
import threading
from collections.abc import Callable, Iterable

from ..capture.portal import APP_ID, PATH, Failed, Refused, call, close_router, open_router, portal_request, register
from ..errors import HotkeysUnavailable
from ..hotkeys import chord_parts

__all__ = ["GlobalShortcuts", "portal_trigger"]

log = logging.getLogger(__name__)

_TRIGGER_MODIFIERS = {"ctrl": "CTRL", "alt": "ALT", "shift": "SHIFT", "cmd": "LOGO", "alt_gr": "ALT"}
_TRIGGER_KEYS = {
    "esc": "Escape", "enter": "Return", "space": "space", "tab": "Tab", "backspace": "BackSpace",
    "delete": "Delete", "insert": "Insert", "home": "Home", "end": "End", "page_up": "Prior",
    "page_down": "Next", "up": "Up", "down": "Down", "left": "Left", "right": "Right", "menu": "Menu",
    "pause": "Pause", "print_screen": "Print", "scroll_lock": "Scroll_Lock", "num_lock": "Num_Lock",
    "caps_lock": "Caps_Lock", "+": "plus",
    "media_play_pause": "XF86AudioPlay", "media_volume_mute": "XF86AudioMute",
    "media_volume_down": "XF86AudioLowerVolume", "media_volume_up": "XF86AudioRaiseVolume",
    "media_previous": "XF86AudioPrev", "media_next": "XF86AudioNext",
}




def portal_trigger(keys: str) -> str:
    """``"<ctrl>+<alt>+<shift>+d"`` -> ``"CTRL+ALT+SHIFT+d"``: the XDG shortcuts format the
    GlobalShortcuts portal takes as ``preferred_trigger`` (modifiers CTRL, ALT, SHIFT, LOGO; the key
    as its xkb keysym name)."""
    mods, main = chord_parts(keys)
    key = main.upper() if main.startswith("f") and main[1:].isdigit() else _TRIGGER_KEYS.get(main, main.lower())
    return "+".join([*(_TRIGGER_MODIFIERS[m] for m in mods), key])


class GlobalShortcuts:
    """Our hotkeys bound through the GlobalShortcuts portal; ``on_activated(id)`` runs on this
    object's own thread for each ``Activated`` signal (it must return at once)."""

    label = "the desktop's global shortcuts portal"

    def __init__(self, shortcuts: Iterable[tuple[str, str, str]], on_activated: Callable[[str], None],
                 app_id: str = APP_ID, timeout: float = 120.0):
        """``shortcuts``: (id, description, hotkeys.toml chord) each."""
        self.shortcuts = list(shortcuts)
        self.on_activated = on_activated
        self.app_id = app_id
        self.timeout = timeout
        self.session: str | None = None
        self.bound: list[str] = []  # the ids the portal confirmed
        self._router = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> "GlobalShortcuts":
        """Create the session and bind the shortcuts (a desktop may ask the user to confirm them).

        Raises:
            PortalUnavailable: no session bus, no portal or no GlobalShortcuts in it.
            HotkeysUnavailable: the user or the desktop refused the shortcuts.
        """
        from jeepney import MatchRule, message_bus

        iface = "org.freedesktop.portal.GlobalShortcuts"
        self._router = router = open_router()
        try:
            register(router, self.app_id)
            try:
                created = portal_request(router, iface, "CreateSession", "a{sv}", (),
                                   {"session_handle_token": ("s", "a11y_caption_" + secrets.token_hex(6))},
                                   self.timeout)
                self.session = str(created["session_handle"])
                rule = MatchRule(type="signal", interface=iface, member="Activated", path=PATH)
                router.send_and_get_reply(message_bus.AddMatch(rule), timeout=10)
                self._activations = router.filter(rule, bufsize=64)
                wanted = [(sid, {"description": ("s", description), "preferred_trigger": ("s", portal_trigger(keys))})
                          for sid, description, keys in self.shortcuts]
                bound = portal_request(router, iface, "BindShortcuts", "oa(sa{sv})sa{sv}", (self.session, wanted, ""),
                                 {}, self.timeout)
            except (Refused, Failed) as e:
                raise HotkeysUnavailable("The desktop refused the global shortcuts; bind them with: "
                                         "a11y-caption shortcuts install") from e
            self.bound = [sid for sid, _props in bound.get("shortcuts", [])]
        except BaseException:
            self.stop()
            raise
        self._thread = threading.Thread(target=self._listen, name="a11y-portal-shortcuts", daemon=True)
        self._thread.start()
        return self

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                message = self._activations.queue.get(timeout=0.5)
            except queue.Empty:
                if not self._router._rcv_thread.is_alive():  # the bus went away
                    return
                continue
            session, shortcut_id = message.body[0], message.body[1]
            if session == self.session:
                self.on_activated(shortcut_id)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stopping.set()
        if self._router is None:
            return
        if self.session:
            try:
                call(self._router, "org.freedesktop.portal.Session", "Close", "", (), timeout=2, path=self.session)
            except Exception:
                log.debug("closing the portal session failed", exc_info=True)
        if self._thread is not None:
            self._thread.join(2)
        close_router(self._router)
        self._router = None
