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
from collections.abc import Sequence
from pathlib import Path

from ..errors import A11yCaptionError
from ..launcher import desktop_exec

__all__ = ["autostart", "desktop_entry", "launch_agent_plist", "windows_run_value"]

RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "a11y-caption"
LAUNCH_AGENT = "io.github.a11y_caption.agent"


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
    from ..launcher import command_path

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
    a = sub.add_parser("autostart", help="start the agent at login: on, off or status",
                       description="Start the hotkey agent when you log in (on), no longer (off), or say which "
                                   "it is (status).",
                       epilog="Examples:\n" + "\n".join(f"  a11y-caption autostart {state}"
                                                           for state in ("on", "status", "off")))
    a.add_argument("state", choices=("on", "off", "status"), metavar="STATE", help="on, off or status")
