"""How a desktop starts a11y-caption: the command line of this install, and the quoting a
desktop entry's Exec and string values need (shared by the portal's app file, the shortcut files
and autostart)."""

from __future__ import annotations

import os
import shutil
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from .errors import A11yCaptionError

__all__ = ["command_path", "desktop_exec", "desktop_string"]


def command_path() -> list[str]:
    """The installed command by absolute path; ``python -m a11y_caption`` where it is not installed."""
    beside = Path(sys.executable).with_name("a11y-caption.exe" if os.name == "nt" else "a11y-caption")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("a11y-caption")
    return [os.path.abspath(found)] if found else [os.path.abspath(sys.executable), "-m", "a11y_caption"]


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
