"""The desktop's own keyboard shortcuts for our hotkeys, where no global-shortcuts portal binds them.

Each shortcut runs the matching ``a11y-caption`` command (by the absolute path of the installed
command), which hands the job to the running agent over its control socket, or does it in-process
when none runs.
- GNOME: custom keybindings in ``org.gnome.settings-daemon.plugins.media-keys`` (gsettings). Ours
  live at their own paths (``.../custom-keybindings/a11y-caption-ACTION/``) and are added to, or
  taken out of, the user's list; the user's own entries are never touched.
- sway: one include file, ``$XDG_CONFIG_HOME/sway/config.d/a11y-caption.conf``, of ``bindsym`` lines.
- KDE Plasma: a service file for kglobalacceld, ``$XDG_DATA_HOME/kglobalaccel/a11y-caption.desktop``,
  one ``[Desktop Action]`` per hotkey with its default keys in ``X-KDE-Shortcuts`` (the format
  kglobalacceld's KServiceActionComponent reads); Plasma picks it up at the next login.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..actions import TABLE
from ..launcher import command_path, desktop_exec, desktop_string
from ..config import Binding
from ..errors import A11yCaptionError

__all__ = ["DESKTOPS", "binding_description", "command_for", "command_path", "install", "remove", "shortcut_ids",
           "show"]

DESKTOPS = ("gnome", "kde", "sway")
# Each hotkey action's shortcut text and the command it runs, from the one table of actions.
DESCRIPTIONS = {a.name: a.shortcut for a in TABLE if a.hotkey}
COMMANDS = {a.name: list(a.command) for a in TABLE if a.hotkey}
MEDIA_KEYS = "org.gnome.settings-daemon.plugins.media-keys"
GNOME_BASE = "/org/gnome/settings-daemon/plugins/media-keys/custom-keybindings/"
GNOME_PREFIX = GNOME_BASE + "a11y-caption-"
# xkb's keysym names of the ASCII punctuation keys: sway and GNOME name a key by its keysym, and the
# character itself (a quote, a semicolon) would be read as their own syntax.
KEYSYMS = {
    "!": "exclam", '"': "quotedbl", "#": "numbersign", "$": "dollar", "%": "percent", "&": "ampersand",
    "'": "apostrophe", "(": "parenleft", ")": "parenright", "*": "asterisk", "+": "plus", ",": "comma",
    "-": "minus", ".": "period", "/": "slash", ":": "colon", ";": "semicolon", "<": "less", "=": "equal",
    ">": "greater", "?": "question", "@": "at", "[": "bracketleft", "\\": "backslash", "]": "bracketright",
    "^": "asciicircum", "_": "underscore", "`": "grave", "{": "braceleft", "|": "bar", "}": "braceright",
    "~": "asciitilde",
}


def shortcut_ids(bindings: Iterable[Binding]) -> list[str]:
    """A stable id per binding: its action, with -2, -3 ... for the same action bound again."""
    seen: dict[str, int] = {}
    ids = []
    for b in bindings:
        seen[b.action] = seen.get(b.action, 0) + 1
        ids.append(b.action if seen[b.action] == 1 else f"{b.action}-{seen[b.action]}")
    return ids


def binding_description(b: Binding) -> str:
    text = DESCRIPTIONS[b.action]
    return f"{text}: {b.prompt}" if b.prompt else text


def command_for(b: Binding, program: Sequence[str] | None = None) -> list[str]:
    args = COMMANDS[b.action]
    if b.prompt and args[0] == "describe" and "--alt-text" not in args:
        args = [*args, "--prompt", b.prompt]
    return [*(program or command_path()), *args]


def _keys(keys: str, style: str) -> str:
    """A hotkeys.toml chord in a desktop's own notation."""
    from ..hotkeys import chord_parts
    from .portal import portal_trigger

    mods, _main = chord_parts(keys)
    key = portal_trigger(keys).split("+")[-1]
    names = {
        "gnome": {"ctrl": "<Control>", "alt": "<Alt>", "shift": "<Shift>", "cmd": "<Super>", "alt_gr": "<Alt>"},
        "sway": {"ctrl": "Ctrl+", "alt": "Mod1+", "shift": "Shift+", "cmd": "Mod4+", "alt_gr": "Mod5+"},
        "kde": {"ctrl": "Ctrl+", "alt": "Alt+", "shift": "Shift+", "cmd": "Meta+", "alt_gr": "AltGr+"},
    }[style]
    if style == "kde":
        key = {"plus": "+", "Prior": "PgUp", "Next": "PgDown", "Return": "Return", "Escape": "Esc"}.get(
            key, key.upper() if len(key) == 1 else key)
    else:
        key = KEYSYMS.get(key, key)
    return "".join(names[m] for m in mods) + key


def _bound(bindings: Iterable[Binding], program) -> list[tuple[str, Binding, list[str]]]:
    """(id, binding, command) for each binding."""
    bindings = list(bindings)
    return [(sid, b, command_for(b, program)) for sid, b in zip(shortcut_ids(bindings), bindings)]


# -- GNOME --------------------------------------------------------------------------------------

def _gsettings(*args: str) -> str:
    try:
        done = subprocess.run(["gsettings", *args], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError as e:
        raise A11yCaptionError("gsettings is not installed, so GNOME's shortcuts cannot be changed.") from e
    if done.returncode != 0:
        raise A11yCaptionError(f"gsettings failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:200]}")
    return done.stdout.strip()


def _gnome_list() -> list[str]:
    text = _gsettings("get", MEDIA_KEYS, "custom-keybindings")
    if text.startswith("@as "):
        text = text[4:]
    return list(ast.literal_eval(text))


def _gnome_set_list(paths: list[str]) -> None:
    _gsettings("set", MEDIA_KEYS, "custom-keybindings", "[" + ", ".join(_gvariant_string(p) for p in paths) + "]")


def _gvariant_string(text: str) -> str:
    """``text`` as a GVariant string literal, which gsettings stores exactly. gsettings takes a bare
    value as a string only when it does not start like GVariant text: a command that starts with a
    quoted path (``'/opt/my app/a11y-caption' describe``) was refused, and ``'x'`` lost its quotes."""
    if "\0" in text:
        raise A11yCaptionError(f"{text[:60]!r} holds a NUL character, which GNOME's settings cannot hold.")
    escapes = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    return "'" + "".join(escapes.get(ch) or (f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Cc", "Zl", "Zp")
                                          else ch) for ch in text) + "'"


def _gnome_get(schema: str, key: str) -> str | None:
    try:
        return ast.literal_eval(_gsettings("get", schema, key))
    except (SyntaxError, ValueError):
        return None


def _gnome_install(bound) -> list[str]:
    ours, written = [], []
    for sid, b, cmd in bound:
        path = f"{GNOME_PREFIX}{sid}/"
        schema = f"{MEDIA_KEYS}.custom-keybinding:{path}"
        for key, value in (("name", f"a11y-caption: {binding_description(b)}"), ("command", shlex.join(cmd)),
                           ("binding", _keys(b.keys, "gnome"))):
            written.append((schema, key, value, _gvariant_string(value)))  # all checked before any is written
        ours.append(path)
    keep = [p for p in _gnome_list() if not p.startswith(GNOME_PREFIX)]
    for schema, key, _value, literal in written:
        _gsettings("set", schema, key, literal)
    _gnome_set_list(keep + ours)
    # Without a session bus gsettings saves nothing (the dconf backend only warns; the memory backend,
    # where dconf is missing, says nothing) and still exits 0: read back what was written.
    if _gnome_list() != keep + ours or any(_gnome_get(schema, key) != value for schema, key, value, _ in written):
        bus = "" if os.environ.get("DBUS_SESSION_BUS_ADDRESS") else " (there is no session bus here)"
        raise A11yCaptionError(f"GNOME did not save the shortcuts{bus}; run this command in your GNOME session.")
    return [f"{_keys(b.keys, 'gnome')}\t{shlex.join(cmd)}" for _sid, b, cmd in bound]


def _gnome_remove() -> int:
    paths = _gnome_list()
    ours = [p for p in paths if p.startswith(GNOME_PREFIX)]
    for path in ours:
        schema = f"{MEDIA_KEYS}.custom-keybinding:{path}"
        for key in ("name", "command", "binding"):
            _gsettings("reset", schema, key)
    if ours:
        _gnome_set_list([p for p in paths if not p.startswith(GNOME_PREFIX)])
    return len(ours)


# -- sway and KDE: files of our own --------------------------------------------------------------

def _config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def sway_file() -> Path:
    return _config_home() / "sway" / "config.d" / "a11y-caption.conf"


def kde_file() -> Path:
    return _data_home() / "kglobalaccel" / "a11y-caption.desktop"


def _sway_word(arg: str) -> str:
    """One argument of a sway binding's command as ``sh -c`` must read it, in a form sway's own
    parsing leaves alone: sway splits words at spaces outside quotes and commands at ``;`` and ``,``,
    and takes a backslash as an escape even inside single quotes, so each backslash and apostrophe
    is written in double quotes (``"\\\\"``, ``"'"``) and everything else in single quotes."""
    if re.fullmatch(r"[A-Za-z0-9_@%+=:./-]+", arg):
        return arg
    pieces = re.findall(r"'|\\|[^'\\]+", arg)
    return "".join({"'": "\"'\"", "\\": '"\\\\"'}.get(p) or f"'{p}'" for p in pieces) or "''"


def sway_binding(keys: str, cmd: Sequence[str]) -> str:
    """The ``bindsym`` line that runs ``cmd`` on ``keys`` (sway's notation).

    sway replaces ``$name`` twice, when it reads the file and when the binding runs, and undoes
    ``\\\\`` once when it reads the file: so ``$`` is written ``$$$$`` and a backslash ``\\\\\\\\``.

    Raises:
        A11yCaptionError: a line break or another control character, which one config line cannot hold.
    """
    for text in (keys, *cmd):
        if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text):
            raise A11yCaptionError(f"{text[:60]!r} holds a line break or another control character, "
                                   "which a sway config line cannot hold.")
    if not re.fullmatch(r"[A-Za-z0-9_+]+", keys):
        raise A11yCaptionError(f"sway cannot bind the keys {keys!r}.")
    command = "exec " + " ".join(_sway_word(a).replace("$", "$$") for a in cmd)  # as the binding runs it
    return f"bindsym {keys} " + command.replace("\\", "\\\\").replace("$", "$$")  # as sway reads the file


def sway_text(bound) -> str:
    lines = ["# a11y-caption hotkeys (written by: a11y-caption shortcuts install --desktop sway)"]
    lines += [sway_binding(_keys(b.keys, "sway"), cmd) for _sid, b, cmd in bound]
    return "\n".join(lines) + "\n"


def kde_text(bound) -> str:
    lines = ["[Desktop Entry]", "Type=Application", "Name=a11y-caption", "NoDisplay=true",
             "X-KDE-GlobalShortcutType=Service", f"Actions={';'.join(sid for sid, _b, _c in bound)};", ""]
    for sid, b, cmd in bound:
        lines += [f"[Desktop Action {sid}]", f"Name={desktop_string(binding_description(b))}",
                  f"Exec={desktop_exec(cmd)}", f"X-KDE-Shortcuts={desktop_string(_keys(b.keys, 'kde'))}", ""]
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# -- the commands -----------------------------------------------------------------------------

def install(desktop: str, bindings: Sequence[Binding], program: Sequence[str] | None = None) -> list[str]:
    """Bind every hotkey that has a command; returns lines for the user (what was done, what not)."""
    bound = _bound(bindings, program)
    if desktop == "gnome":
        done = _gnome_install(bound)
        notes = ["GNOME: the shortcuts work at once (Settings, Keyboard, Custom Shortcuts lists them)."]
    elif desktop == "sway":
        _write(sway_file(), sway_text(bound))
        done = [f"{_keys(b.keys, 'sway')}\t{shlex.join(cmd)}" for _sid, b, cmd in bound]
        notes = [f"sway: wrote {sway_file()}; make sure your sway config has the line "
                 f"'include {sway_file().parent}/*', then run: swaymsg reload"]
    elif desktop == "kde":
        _write(kde_file(), kde_text(bound))
        done = [f"{_keys(b.keys, 'kde')}\t{shlex.join(cmd)}" for _sid, b, cmd in bound]
        notes = [f"KDE: wrote {kde_file()}; the shortcuts work after you log out and in again (System "
                 "Settings, Shortcuts lists them under a11y-caption)."]
    else:
        raise A11yCaptionError(f"Unknown desktop {desktop!r}; use one of: {', '.join(DESKTOPS)}.")
    return done + notes


def remove(desktop: str) -> str:
    if desktop == "gnome":
        n = _gnome_remove()
        return f"GNOME: removed {n} a11y-caption shortcut(s); your own shortcuts are as they were."
    path = {"sway": sway_file, "kde": kde_file}.get(desktop)
    if path is None:
        raise A11yCaptionError(f"Unknown desktop {desktop!r}; use one of: {', '.join(DESKTOPS)}.")
    if path().exists():
        path().unlink()
        return f"Removed {path()}."
    return f"{path()} was not there; nothing to remove."


def show(bindings: Sequence[Binding], program: Sequence[str] | None = None) -> list[str]:
    """What to bind by hand on any desktop: keys as people write them ("Ctrl+Alt+Shift+D", as
    config check says them), then the command."""
    from ..hotkeys import chord_name

    return [f"{chord_name(b.keys)}\t{shlex.join(cmd)}\t# {binding_description(b)}"
            for _sid, b, cmd in _bound(bindings, program)]


def cli(args) -> int:
    """``a11y-caption shortcuts install|remove|show`` (args from the CLI's parser)."""
    from ..config import load_config

    if args.shortcuts_command == "remove":
        print(remove(args.desktop))
        return 0
    bindings = load_config(args.config).hotkeys
    lines = install(args.desktop, bindings) if args.shortcuts_command == "install" else show(bindings)
    for line in lines:
        print(line)
    return 0


def add_parser(sub) -> None:
    def examples(*lines: str) -> str:
        return "Examples:\n" + "\n".join(f"  a11y-caption shortcuts {line}" for line in lines)

    s = sub.add_parser("shortcuts", help="bind the hotkeys as the desktop's own shortcuts (Wayland without a portal)",
                       description="Bind the hotkeys as the desktop's own keyboard shortcuts, where a Wayland "
                                   "desktop lets no program listen for keys itself.",
                       epilog=examples("show", "install --desktop gnome", "remove --desktop gnome"))
    ssub = s.add_subparsers(dest="shortcuts_command", title="actions", metavar="ACTION")
    for name, text, purpose in (
            ("install", "write the desktop's shortcuts, each running an a11y-caption command",
             "Write the desktop's shortcuts for the hotkeys, each running an a11y-caption command."),
            ("remove", "take them out again", "Take the shortcuts that install wrote out of the desktop again.")):
        a = ssub.add_parser(name, help=text, description=purpose,
                            epilog=examples(*(f"{name} --desktop {d}" for d in DESKTOPS)))
        a.add_argument("--desktop", required=True, choices=DESKTOPS, metavar="DESKTOP",
                       help=", ".join(DESKTOPS[:-1]) + f" or {DESKTOPS[-1]}")
        a.add_argument("--config", metavar="FILE", help="settings file with the hotkeys to bind")
    show_parser = ssub.add_parser("show", help="print the keys and commands to bind by hand on other desktops",
                                  description="Print each key and the command to bind to it, to set them by hand "
                                              "on other desktops.",
                                  epilog=examples("show", "show --config my-hotkeys.toml"))
    show_parser.add_argument("--config", metavar="FILE", help="settings file with the hotkeys to show")
