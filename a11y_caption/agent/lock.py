"""One agent per user: an exclusive lock on a file in the user's own runtime folder."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import AlreadyRunning

__all__ = ["single_instance"]


class single_instance:
    """An exclusive lock on a file in the user's runtime folder; a second agent gets AlreadyRunning."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._file = None

    def __enter__(self):
        if self.path is None:
            from .runtime import runtime_dir

            self.path = runtime_dir(create=True) / "agent.lock"  # checked to be the user's own, 0700
        self._file = open(self.path, "a+")
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(self._file.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            self._file.close()
            raise AlreadyRunning("a11y-caption is already running for this user.") from e
        return self

    def __exit__(self, *exc):
        self._file.close()
