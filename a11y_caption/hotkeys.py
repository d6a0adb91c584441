"""Global hotkeys: the chords of hotkeys.toml matched against pynput's key events.

pynput's own GlobalHotKeys remembers, per chord, which of its keys it saw go down, and fires when
the last one does. A release it never sees (events lost while a secure desktop had the keyboard, a
slow hook that Windows skipped) leaves a key "down" for good, and the chord never fires again
until the user happens to press and release that key once more: a key that silently does nothing.
It also never fires a chord with a sided modifier such as ``<ctrl_r>``.

``ChordMatcher`` instead fires on each press of a chord's main key when the modifiers held at that
moment are exactly the chord's. "Held" comes from the platform where it reports it (X11 sends the
modifier state with every key event; Windows and macOS are asked at the press), and from our own
bookkeeping only where it does not; a press of a key we think is already down counts as a new press
unless it is auto-repeat (the keyboard repeating the last key pressed, with no other key event in
between). So a lost release heals at the very next press.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import log_unexpected

__all__ = ["Chord", "ChordMatcher", "chord_name", "chord_parts", "chord_words", "key_names", "parse_chord",
           "start_listener"]

log = logging.getLogger(__name__)

# Modifier keys as pynput names them, by family. A chord's "<ctrl>" accepts either side, "<ctrl_r>"
# only the right one. pynput's unsided names (Key.ctrl...) are the left key on every backend.
FAMILIES = {
    "ctrl": ("ctrl_l", "ctrl_r"), "alt": ("alt_l", "alt_r"), "shift": ("shift_l", "shift_r"),
    "cmd": ("cmd_l", "cmd_r"), "alt_gr": ("alt_gr",),
}
MODIFIERS = frozenset(FAMILIES) | {name for sides in FAMILIES.values() for name in sides}
_FAMILY_OF = {name: family for family, sides in FAMILIES.items() for name in (family, *sides)}

# Special keys pynput can listen for, by platform (pynput.keyboard.Key on each backend).
_SPECIAL_KEYS = {
    "backspace", "caps_lock", "delete", "down", "end", "enter", "esc", "home", "left", "page_down", "page_up",
    "right", "space", "tab", "up", "media_play_pause", "media_volume_mute", "media_volume_down",
    "media_volume_up", "media_previous", "media_next",
} | {f"f{i}" for i in range(1, 21)}
_NOT_ON_MACOS = {"insert", "menu", "num_lock", "pause", "print_screen", "scroll_lock"}
_PLATFORM_KEYS = {
    "darwin": {"media_eject"},
    "win32": _NOT_ON_MACOS | {"media_stop", "f21", "f22", "f23", "f24"},
    "linux": _NOT_ON_MACOS,
}
_PLATFORM_NAMES = {"darwin": "macOS", "win32": "Windows", "linux": "Linux"}

def _platform(platform: str | None = None) -> str:
    platform = platform or sys.platform
    return "linux" if platform.startswith("linux") else platform


def key_names(platform: str | None = None) -> frozenset[str]:
    """The key names a chord may use in angle brackets on ``platform`` (default: this one)."""
    return frozenset(MODIFIERS | _SPECIAL_KEYS | _PLATFORM_KEYS.get(_platform(platform), _NOT_ON_MACOS))


# Keys that type, edit or move (and so read, with a screen reader): a chord with one of them needs a
# modifier that typing never uses. Shift is part of typing (<shift>+a types "A"); F-keys, media keys,
# print_screen, pause and scroll_lock may stand alone.
_TYPING_KEYS = {
    "space", "enter", "tab", "backspace", "delete", "esc", "up", "down", "left", "right", "home", "end",
    "page_up", "page_down", "menu", "num_lock",
}
_TYPING_MODIFIERS = frozenset({"shift"})


def _check_takeover(keys: str, main: str, families: set[str]) -> None:
    """Refuse a chord that takes a key from typing or from the screen reader (ValueError)."""
    if main == "caps_lock":  # NVDA's and Orca's laptop-layout key: a hotkey on it breaks the screen reader
        raise ValueError(f"chord {keys!r} uses Caps Lock, which is the screen reader key (NVDA, Orca); "
                         "choose another key, like <ctrl>+<alt>+d")
    if main == "insert" and not families & {"ctrl", "alt"}:  # NVDA's and Orca's desktop-layout key
        raise ValueError(f"chord {keys!r} uses Insert, which is the screen reader key (NVDA, Orca), "
                         "without <ctrl> or <alt>; add one of them")
    typing = len(main) == 1 or main.isdigit() or main in _TYPING_KEYS  # a key code may be a letter's
    if typing and not families - _TYPING_MODIFIERS:
        held = "has only Shift as modifier" if families else "has no modifier key"
        raise ValueError(f"chord {keys!r} {held} and would take over typing; "
                         "add <ctrl>, <alt> or <cmd>, as in <ctrl>+<alt>+d")


def parse_chord(keys: str, platform: str | None = None) -> frozenset[str]:
    """``"<ctrl>+<alt>+d"`` -> ``{"ctrl", "alt", "d"}``; raises ValueError saying what is wrong.

    A key that pynput cannot listen for on ``platform`` (default: this one) is refused here, at
    ``config check`` time, rather than crashing the agent when it starts.
    """
    parts = keys.split("+") if keys else []
    if keys.endswith("++"):  # "<ctrl>++" means ctrl and the plus key
        parts = parts[:-2] + ["+"]
    if not parts or any(p == "" for p in parts):
        raise ValueError(f"cannot parse chord {keys!r}; write it like \"<ctrl>+<alt>+d\"")
    known = key_names(platform)
    names = []
    for part in parts:
        if part.startswith("<") and part.endswith(">") and len(part) > 2:
            name = part[1:-1].lower()
            if not name.isdigit() and name not in known:
                if name in key_names("linux") | key_names("win32") | key_names("darwin"):
                    where = _PLATFORM_NAMES.get(_platform(platform), _platform(platform))
                    raise ValueError(f"key <{name}> in chord {keys!r} cannot be used as a hotkey on {where}")
                raise ValueError(f"unknown key <{name}> in chord {keys!r}")
        elif len(part) == 1:
            name = part.lower()
        else:
            raise ValueError(f"cannot parse {part!r} in chord {keys!r}; name special keys like <f5>")
        if name in names:
            raise ValueError(f"key {part} appears twice in chord {keys!r}")
        names.append(name)
    main = [n for n in names if n not in MODIFIERS]
    if not main:
        raise ValueError(f"chord {keys!r} has only modifier keys; add the key to press with them, as in <ctrl>+<alt>+d")
    if len(main) > 1:
        raise ValueError(f"chord {keys!r} has more than one key besides modifiers; use one, like <ctrl>+<alt>+d")
    _check_takeover(keys, main[0], {_FAMILY_OF[n] for n in names if n in MODIFIERS})
    return frozenset(names)


@dataclass(frozen=True)
class Chord:
    keys: str  # as written in hotkeys.toml
    modifiers: frozenset[str]  # "ctrl" (either side), "ctrl_r" (that side only), ...
    main: str  # the one other key ("d", "f5", or a key code "65")

    @classmethod
    def parse(cls, keys: str, platform: str | None = None) -> Chord:
        names = parse_chord(keys, platform)
        main = next(n for n in names if n not in MODIFIERS)
        return cls(keys, frozenset(n for n in names if n in MODIFIERS), main)

    def families(self) -> frozenset[str]:
        return frozenset(_FAMILY_OF[m] for m in self.modifiers)

    def held_by(self, held: frozenset[str]) -> bool:
        """True when the modifier keys ``held`` (sided names, or a bare family when the side is
        unknown) are exactly this chord's: the same families, and the right side where one is named."""
        if frozenset(_FAMILY_OF[h] for h in held) != self.families():
            return False
        return all(m in held for m in self.modifiers if m not in FAMILIES)

    def overlaps(self, other: Chord) -> bool:
        """True when pressing one of the two chords, with no more keys than it needs, fires the other
        too: the same main key and families, and in each family the sides one names include the
        other's (``<ctrl>`` names none, so it overlaps ``<ctrl_l>``; ``<ctrl_l>`` and ``<ctrl_r>`` do not)."""
        if self.main != other.main or self.families() != other.families():
            return False
        for family in self.families():
            mine = {m for m in self.modifiers if m != family and _FAMILY_OF[m] == family}
            theirs = {m for m in other.modifiers if m != family and _FAMILY_OF[m] == family}
            if not (mine <= theirs or theirs <= mine):
                return False
        return True


class ChordMatcher:
    """Turns key presses and releases into chord activations (see the module docstring).

    ``press``/``release`` take a key's names (its character or key name first, then its key code);
    modifiers are named by side (``ctrl_l``, ``ctrl_r``). Not thread-safe: one listener thread calls it.
    """

    def __init__(self, chords: Iterable[tuple[Chord, Callable[[], None]]]):
        self._chords = list(chords)
        self._down: set[str] = set()  # keys we believe are down
        self._last_event: tuple[str, bool] | None = None  # (key, pressed) of the latest event

    def held_modifiers(self) -> frozenset[str]:
        return frozenset(k for k in self._down if k in MODIFIERS)

    def press(self, names: tuple[str, ...], held_families: frozenset[str] | None = None) -> None:
        """A key went down. ``held_families``: the modifier families the platform says were held
        when it did ("ctrl", "alt", ...), where it can say; it overrides our own bookkeeping."""
        if not names:
            return
        key = names[0]
        if held_families is not None:
            self._sync_modifiers(held_families)
        # Auto-repeat presses the last key again and again, nothing in between (on X11 the first
        # repeat comes 660 ms after the press, then every 40 ms): it is not a new press. Any other
        # press of a key we think is down is new; its release was lost.
        auto_repeat = key in self._down and self._last_event == (key, True)
        self._down.add(key)
        self._last_event = (key, True)
        if auto_repeat:
            return
        held = self.held_modifiers()
        matches = [cb for chord, cb in self._chords if chord.main in names and chord.held_by(held)]
        for callback in matches:
            callback()

    def release(self, names: tuple[str, ...]) -> None:
        if names:
            self._down.discard(names[0])
            self._last_event = (names[0], False)
            if names[0] in MODIFIERS:  # a bare family added by _sync_modifiers is released with its keys
                family = _FAMILY_OF[names[0]]
                if not any(_FAMILY_OF[k] == family for k in self._down if k in MODIFIERS and k != family):
                    self._down.discard(family)

    def _sync_modifiers(self, families: frozenset[str]) -> None:
        """Make our idea of the held modifiers agree with the platform's: drop those it says are up
        (their release was lost), add a bare family for those it says are down that we never saw."""
        for key in [k for k in self._down if k in MODIFIERS and _FAMILY_OF[k] not in families]:
            self._down.discard(key)
        for family in families:
            if family in FAMILIES and not any(_FAMILY_OF[k] == family for k in self._down if k in MODIFIERS):
                self._down.add(family)


# -- pynput -----------------------------------------------------------------------------------

_UNSIDED = {"ctrl": "ctrl_l", "alt": "alt_l", "shift": "shift_l", "cmd": "cmd_l"}


def key_event_names(key) -> tuple[str, ...]:
    """A pynput key as ChordMatcher names it: (character or key name, key code), best name first."""
    from pynput.keyboard import Key, KeyCode

    if isinstance(key, Key):
        name = _UNSIDED.get(key.name, key.name)
        vk = getattr(key.value, "vk", None)
        return (name, str(vk)) if vk is not None else (name,)
    if isinstance(key, KeyCode):
        vk = key.vk
        names = []
        if key.char and key.char.isprintable():
            names.append(key.char.lower())
        elif vk is not None and (0x30 <= vk <= 0x39 or 0x41 <= vk <= 0x5A):
            names.append(chr(vk).lower())  # Windows with Ctrl held: a control character, but a letter's key code
        if vk is not None:
            names.append(str(vk))
        return tuple(names)
    return ()


def _x11_families(display, state: int, cache: dict) -> frozenset[str]:
    """Modifier families from an X event's state mask, using the server's modifier mapping."""
    if "bits" not in cache:
        from Xlib import XK

        bits = {0: "shift", 2: "ctrl"}
        kinds = {"Alt_L": "alt", "Alt_R": "alt", "Meta_L": "alt", "Meta_R": "alt", "Super_L": "cmd",
                 "Super_R": "cmd", "Hyper_L": "cmd", "Hyper_R": "cmd", "ISO_Level3_Shift": "alt_gr",
                 "Mode_switch": "alt_gr"}
        by_keysym = {XK.string_to_keysym(name): family for name, family in kinds.items()}
        for index, keycodes in enumerate(display.get_modifier_mapping()):
            for keycode in keycodes if index >= 3 else ():
                family = by_keysym.get(display.keycode_to_keysym(keycode, 0)) if keycode else None
                if family:
                    bits.setdefault(index, family)
        cache["bits"] = bits
    return frozenset(family for bit, family in cache["bits"].items() if state & (1 << bit))


def _queried_families() -> frozenset[str] | None:
    """The modifiers held right now, asked of Windows or macOS (None elsewhere). Called from the
    keyboard hook, where the answer is the state at the key press being handled."""
    if sys.platform == "win32":
        import ctypes

        held = ctypes.windll.user32.GetAsyncKeyState
        vks = {"shift": (0x10,), "ctrl": (0x11,), "alt": (0x12,), "cmd": (0x5B, 0x5C)}
        return frozenset(f for f, codes in vks.items() if any(held(vk) & 0x8000 for vk in codes))
    if sys.platform == "darwin":
        import Quartz  # pyobjc, a dependency of pynput on macOS

        flags = Quartz.CGEventSourceFlagsState(Quartz.kCGEventSourceStateHIDSystemState)
        masks = {"shift": 0x20000, "ctrl": 0x40000, "alt": 0x80000, "cmd": 0x100000}
        return frozenset(f for f, mask in masks.items() if flags & mask)
    return None


def start_listener(bindings: Iterable[tuple[str, Callable[[], None]]]):
    """Start listening for ``(keys, callback)`` chords; returns the running pynput listener.

    Callbacks run on the listener's thread: they must only hand the press on, never block.
    """
    from pynput import keyboard

    matcher = ChordMatcher((Chord.parse(keys), callback) for keys, callback in bindings)
    x11 = keyboard.Listener.__module__.endswith("_xorg")

    class Listener(keyboard.Listener):
        _event_families: frozenset[str] | None = None
        _mapping: dict = {}

        if x11:
            def _handle_message(self, display, event, injected):
                # X11 records the modifier state with each key event: the truth at that moment.
                self._event_families = _x11_families(display, event.state, self._mapping)
                super()._handle_message(display, event, injected)

    def on_press(key, injected=False):
        if injected:  # pynput's own synthetic events, as GlobalHotKeys ignores them
            return
        names = key_event_names(key)
        held = listener._event_families if x11 else (
            _queried_families() if names and names[0] not in MODIFIERS else None)
        try:
            matcher.press(names, held)
        except Exception as e:  # never let a bug kill the listener thread: every later press would be lost
            log_unexpected(log, "hotkey press handling failed", e)

    def on_release(key, injected=False):
        if not injected:
            matcher.release(key_event_names(key))

    listener = Listener(on_press=on_press, on_release=on_release)
    listener._mapping = {}
    listener.start()
    return listener


def chord_parts(keys: str) -> tuple[list[str], str]:
    """hotkeys.toml chord -> (modifier families in the order written, the main key's name)."""
    parse_chord(keys)  # refuses what the config check refuses
    parts = keys.split("+")
    if keys.endswith("++"):
        parts = parts[:-2] + ["+"]
    mods, main = [], ""
    for part in parts:
        name = part[1:-1].lower() if part.startswith("<") and part.endswith(">") and len(part) > 2 else part
        if name in MODIFIERS:
            family = next(f for f, sides in FAMILIES.items() if name == f or name in sides)
            if family not in mods:
                mods.append(family)
        else:
            main = name
    return mods, main


# How people name the keys: one spelling for what is printed (``chord_name``) and what is said
# (``chord_words``), for config check, shortcuts show and the agent's spoken list alike.
_MODIFIER_NAMES = {"ctrl": ("Ctrl", "Control"), "alt": ("Alt", "Alt"), "shift": ("Shift", "Shift"),
                   "cmd": ("Super", "Super"), "alt_gr": ("AltGr", "Alt Gr")}
_KEY_NAMES = {
    "esc": "Escape", "enter": "Enter", "space": "Space", "tab": "Tab", "backspace": "Backspace",
    "delete": "Delete", "insert": "Insert", "home": "Home", "end": "End", "page_up": "Page Up",
    "page_down": "Page Down", "up": "Up", "down": "Down", "left": "Left", "right": "Right",
    "print_screen": "Print Screen", "caps_lock": "Caps Lock", "num_lock": "Num Lock",
    "scroll_lock": "Scroll Lock", "pause": "Pause", "menu": "Menu",
}
_SYMBOL_WORDS = {
    "+": "plus", "-": "minus", "=": "equals", ",": "comma", ".": "period", "/": "slash", "\\": "backslash",
    ";": "semicolon", "'": "apostrophe", "`": "grave", "[": "left bracket", "]": "right bracket",
    "?": "question mark", "!": "exclamation mark", "#": "number sign", "*": "star",
}


def _main_key_name(main: str) -> str:
    if main in _KEY_NAMES:
        return _KEY_NAMES[main]
    if main.startswith("media_"):
        return main[len("media_"):].replace("_", " ").title()
    return main.upper() if len(main) == 1 else main.title() if main.startswith("f") and main[1:].isdigit() \
        else main.replace("_", " ").title()


def chord_name(keys: str) -> str:
    """A hotkeys.toml chord as people write it: ``<ctrl>+<alt>+<shift>+d`` -> "Ctrl+Alt+Shift+D"."""
    mods, main = chord_parts(keys)
    return "+".join([*(_MODIFIER_NAMES[m][0] for m in mods), _main_key_name(main)])


def chord_words(keys: str) -> str:
    """The chord as a voice says it: "Control Alt Shift D", "Control Alt plus"."""
    mods, main = chord_parts(keys)
    key = _SYMBOL_WORDS.get(main, _main_key_name(main))
    return " ".join([*(_MODIFIER_NAMES[m][1] for m in mods), key])
