"""Handing memory that a finished step freed back to the system."""

from __future__ import annotations

import sys

__all__ = ["give_back_freed_memory"]


def give_back_freed_memory() -> None:
    """Return the memory freed by a finished step (a model load's float copies, an OCR read's
    buffers) to the system. glibc keeps freed blocks for reuse, in arenas that threads mostly keep
    to themselves: what one thread freed is seldom reused by another, and an agent that loaded a
    model or read a screen once would hold it for its lifetime. A few milliseconds; elsewhere than
    glibc, nothing."""
    import ctypes

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # another C library (musl): nothing to trim this way
            pass
