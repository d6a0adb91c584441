"""Start the agent at login: ``a11y-caption autostart on|off|status``.

- Linux and other XDG desktops: ``$XDG_CONFIG_HOME/autostart/a11y-caption.desktop`` (the XDG
  autostart spec), whose Exec is the installed command's absolute path and ``run``.
- Windows: a value in HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run (no console window
  needs a shortcut file, and the Run key needs no COM).
- macOS: a LaunchAgent, ``~/Library/LaunchAgents/io.github.a11y_caption.agent.plist``, RunAtLoad.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from .errors import A11yCaptionError

__all__ = ["autostart", "desktop_entry", "desktop_exec", "desktop_string", "launch_agent_plist", "windows_run_value"]

RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "a11y-caption"
LAUNCH_AGENT = "io.github.a11y_caption.agent"


# What needs quoting in an Exec argument (the desktop entry specification's reserved characters, and
# the carriage return, so that every escaped line break sits inside quotes).
_EXEC_RESERVED = frozenset(' \t\n\r"\'\\><~|&;$*?#()`')
# The string escapes a desktop entry's values have (the specification's "\s \n \t \r \\").
_DESKTOP_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def desktop_string(text: str) -> str:
    """``text`` as the value of a desktop entry's string key: backslashes, line breaks, tabs and
    carriage returns escaped, a leading space written ``\\s``.

    Raises:
        A11yCaptionError: another control character (an escape, a NUL...), which no value may hold.
    """
    bad = next((ch for ch in text if ch not in _DESKTOP_ESCAPES and unicodedata.category(ch) in ("Cc", "Zl", "Zp")),
               None)
    if bad is not None:
        raise A11yCaptionError(f"{_shown(text)} holds the control character {bad!r}, "
                               "which a desktop entry cannot hold.")
    value = "".join(_DESKTOP_ESCAPES.get(ch, ch) for ch in text)
    return "\\s" + value[1:] if value.startswith(" ") else value


def _exec_quote(arg: str) -> str:
    """One argument of a desktop entry's Exec key as the file holds it: quoted by the Exec rules,
    ``%`` doubled (it starts a field code), then escaped as a string value. The string escapes are
    undone before the quoting, so a backslash in the argument is four in the file."""
    if arg and not any(c in _EXEC_RESERVED for c in arg):
        quoted = arg
    else:
        quoted = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
    return desktop_string(quoted.replace("%", "%%"))


def desktop_exec(args: Sequence[str]) -> str:
    """The value of an Exec key that runs ``args`` as they are, whatever they hold (A11yCaptionError
    for a control character other than a line break, tab or carriage return)."""
    return " ".join(_exec_quote(a) for a in args)


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:50]) + "..."


def desktop_entry(command: Sequence[str]) -> str:
    return ("[Desktop Entry]\nType=Application\nName=a11y-caption\n"
            "Comment=Describe the screen aloud with a local model (hotkeys)\n"
            f"Exec={desktop_exec([*command, 'run'])}\nTerminal=false\nNoDisplay=true\n"
            "X-GNOME-Autostart-enabled=true\n")


def launch_agent_plist(command: Sequence[str], log_dir: Path) -> bytes:
    return plistlib.dumps({
        "Label": LAUNCH_AGENT, "ProgramArguments": [*command, "run"], "RunAtLoad": True,
        "ProcessType": "Interactive", "StandardErrorPath": str(log_dir / "a11y-caption.log"),
    })


def windows_run_value(command: Sequence[str]) -> str:
    return subprocess.list2cmdline([*command, "run"])


def _xdg_file() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "autostart" / "a11y-caption.desktop"


def _mac_file() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT}.plist"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def autostart(what: str, command: Sequence[str] | None = None, platform: str | None = None,
              registry=None) -> str:
    """``what``: "on", "off" or "status"; returns one line for the user.

    ``registry``: a winreg-like module (OpenKey/CreateKey/SetValueEx/QueryValueEx/DeleteValue), the
    real winreg by default on Windows.
    """
    from .shortcuts import command_path

    platform = platform or sys.platform
    command = list(command or command_path())
    if platform == "win32":
        return _windows(what, command, registry)
    if platform == "darwin":
        path = _mac_file()
        data = launch_agent_plist(command, Path.home() / "Library" / "Logs")
    else:
        path = _xdg_file()
        data = desktop_entry(command).encode()
    if what == "on":
        _write(path, data)
        return f"a11y-caption will start at login ({path})."
    if what == "off":
        if path.exists():
            path.unlink()
            return f"a11y-caption will no longer start at login (removed {path})."
        return "a11y-caption was not set to start at login."
    if path.exists():
        return f"on: {path}" + ("" if path.read_bytes() == data else " (written for another install; run "
                                                                    "'a11y-caption autostart on' to renew it)")
    return "off"


def _windows(what: str, command: list[str], registry) -> str:
    if registry is None:
        import winreg as registry
    value = windows_run_value(command)
    where = f"HKEY_CURRENT_USER\\{RUN_KEY}"
    if what == "on":
        with registry.CreateKey(registry.HKEY_CURRENT_USER, RUN_KEY) as key:
            registry.SetValueEx(key, RUN_VALUE, 0, registry.REG_SZ, value)
        return f"a11y-caption will start at login ({where}, {RUN_VALUE})."
    try:
        with registry.OpenKey(registry.HKEY_CURRENT_USER, RUN_KEY, 0,
                              registry.KEY_SET_VALUE | registry.KEY_QUERY_VALUE) as key:
            current = registry.QueryValueEx(key, RUN_VALUE)[0]
            if what == "off":
                registry.DeleteValue(key, RUN_VALUE)
                return "a11y-caption will no longer start at login."
    except FileNotFoundError:
        return "a11y-caption was not set to start at login." if what == "off" else "off"
    except OSError as e:
        raise A11yCaptionError("The Windows registry could not be changed.") from e
    return f"on: {where}\\{RUN_VALUE}" + ("" if current == value else " (written for another install)")


def cli(args) -> int:
    print(autostart(args.state))
    return 0


def add_parser(sub) -> None:
    a = sub.add_parser("autostart", help="start the agent at login: on, off or status")
    a.add_argument("state", choices=("on", "off", "status"))
