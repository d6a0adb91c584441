"""Is a screen reader running? A command typed in a terminal prints only when one is, since the
screen reader reads the new text aloud (``[speech] cli = "auto"``): one voice at a time."""

from __future__ import annotations

import os
import sys

__all__ = ["screen_reader_running"]


def screen_reader_running() -> bool:
    """Orca, NVDA, JAWS or VoiceOver is running now.

    Orca is also found without its remote controller (versions before 49 have none but read the
    terminal all the same), by its process name. Checks only; starts nothing.
    """
    from .choose import ENGINES, PLATFORM

    readers = {"linux": ("orca",), "win32": ("nvda", "jaws"), "darwin": ("voiceover",)}.get(PLATFORM, ())
    if any(ENGINES[name].available() for name in readers):
        return True
    return sys.platform.startswith("linux") and _process_named("orca")


def _process_named(name: str) -> bool:
    """A process of this user's whose name is ``name`` (Linux /proc)."""
    uid = os.getuid()
    try:
        entries = os.scandir("/proc")
    except OSError:
        return False
    with entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                if entry.stat().st_uid != uid:
                    continue
                with open(f"/proc/{entry.name}/comm", encoding="utf-8", errors="replace") as f:
                    if f.read().strip() == name:
                        return True
            except OSError:  # the process ended meanwhile, or is not ours to read
                continue
    return False
