"""Text to and from the clipboard.

On Linux the X11/Wayland tools are run with their output sent to DEVNULL: xclip stays alive to
own the selection, and a caller that captures our output would otherwise wait for it forever.
Elsewhere pyperclip's native calls are used.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from ..errors import A11yCaptionError

__all__ = ["copy_text", "paste_text"]


class ClipboardError(A11yCaptionError):
    pass


def _linux_tools() -> tuple[list[str], list[str]] | None:
    import os

    if os.environ.get("WAYLAND_DISPLAY") and shutil.which("wl-copy"):
        return ["wl-copy"], ["wl-paste", "--no-newline"]
    if shutil.which("xclip"):
        return ["xclip", "-selection", "clipboard", "-in"], ["xclip", "-selection", "clipboard", "-out"]
    if shutil.which("xsel"):
        return ["xsel", "--clipboard", "--input"], ["xsel", "--clipboard", "--output"]
    return None


def copy_text(text: str) -> None:
    """Put ``text`` on the clipboard. Raises ClipboardError with one sentence when it can't."""
    if sys.platform.startswith("linux"):
        tools = _linux_tools()
        if tools is None:
            raise ClipboardError("No clipboard tool found; install xclip or wl-clipboard.")
        try:
            subprocess.run(tools[0], input=text.encode("utf-8"), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True, timeout=5)
        except (OSError, subprocess.SubprocessError) as e:
            raise ClipboardError("The clipboard could not be written.") from e
        return
    import pyperclip

    try:
        pyperclip.copy(text)
    except pyperclip.PyperclipException as e:
        raise ClipboardError("The clipboard could not be written.") from e


def paste_text(target: str | None = None) -> str | None:
    """The clipboard's text (or its ``target`` type on X11, e.g. text/uri-list); None if there is none."""
    if sys.platform.startswith("linux"):
        tools = _linux_tools()
        if tools is None:
            return None
        args = list(tools[1])
        if target:
            if args[0] == "xclip":
                args += ["-t", target]
            elif args[0] == "wl-paste":
                args += ["--type", target]
            else:
                return None
        try:
            out = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 stdin=subprocess.DEVNULL, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else None
    import pyperclip

    try:
        return pyperclip.paste()
    except pyperclip.PyperclipException:
        return None
