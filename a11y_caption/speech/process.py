"""Shared part of voices that speak in a child process: interrupt = end the process group."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

__all__ = ["ProcessVoice"]


class ProcessVoice:
    """Shared part of voices that speak in a child process: interrupt = end the process group."""

    def __init__(self):
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def _popen(self, args: list[str], **kwargs) -> subprocess.Popen:
        if os.name == "posix":
            kwargs["start_new_session"] = True  # so the audio player it starts dies with it
        else:
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        return subprocess.Popen(args, **kwargs)

    def interrupt(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                if os.name == "posix":
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()

    def close(self) -> None:
        self.interrupt()
