"""The small question prompt the ask key opens: the desktop's own input box, which screen readers
read (zenity or kdialog on Linux), run with a time limit so that nothing waits for it forever.
What is typed into it goes to the model and nowhere else: never to the log.

Windows and macOS get no box: a dialog opened by a background program there may come up behind
the window in use, where a blind user cannot find it, so the agent says how to ask from a
terminal instead."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping

__all__ = ["MAX_QUESTION", "NO_BOX", "QUESTION_SECONDS", "QuestionBox", "box_command", "timed_out"]

log = logging.getLogger(__name__)

NO_BOX = "No question box is available; ask from a terminal with: a11y-caption ask QUESTION"
QUESTION_SECONDS = 300.0  # then the box is closed, as if cancelled
MAX_QUESTION = 2000  # characters kept of what was typed
TITLE = "a11y-caption"
LABEL = "Ask about the last description:"


def box_command(platform: str | None = None, which: Callable[[str], str | None] = shutil.which,
                environ: Mapping[str, str] | None = None) -> list[str] | None:
    """The command that shows the box and prints the question, or None where there is none."""
    platform = platform or sys.platform
    environ = os.environ if environ is None else environ
    if not platform.startswith("linux") and "bsd" not in platform:
        return None
    if not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return None  # no desktop to show it on
    if zenity := which("zenity"):
        return [zenity, "--entry", f"--title={TITLE}", f"--text={LABEL}", "--width=420"]
    if kdialog := which("kdialog"):
        return [kdialog, "--title", TITLE, "--inputbox", LABEL]
    return None


def timed_out(seconds: float) -> str:
    """The sentence said when the box was closed for taking too long."""
    n = round(seconds / 60) if seconds >= 120 else round(seconds)
    unit = "minute" if seconds >= 120 else "second"
    return f"The question box closed after {n} {unit}{'' if n == 1 else 's'} without a question."


class QuestionBox:
    """One box, shown by ``ask``; ``close`` (from another thread) takes it away."""

    def __init__(self, command: list[str], seconds: float = QUESTION_SECONDS):
        self.command, self.seconds = command, seconds
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._closed = False

    def ask(self) -> tuple[str, str]:
        """(outcome, question): "asked" with the question, or "cancelled", "timeout", "failed",
        "closed" with ""."""
        with self._lock:
            if self._closed:
                return "closed", ""
            try:
                self._proc = proc = subprocess.Popen(
                    self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    text=True, encoding="utf-8", errors="replace", start_new_session=True)
            except OSError as e:
                log.warning("the question box could not start (%s)", type(e).__name__)
                return "failed", ""
        try:
            out, _ = proc.communicate(timeout=self.seconds)
        except subprocess.TimeoutExpired:
            self._kill()
            proc.communicate()
            return "timeout", ""
        if self._closed:
            return "closed", ""
        if proc.returncode != 0:
            if proc.returncode != 1:  # 1: Cancel or Escape; anything else is the box failing
                log.warning("the question box ended with status %s", proc.returncode)  # never what was typed
                return "failed", ""
            return "cancelled", ""
        question = " ".join(out.split())[:MAX_QUESTION]
        return ("asked", question) if question else ("cancelled", "")

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._kill()

    def _kill(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: a wrapper script's children too
        except OSError:  # gone already
            pass
