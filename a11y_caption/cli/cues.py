"""Cues for the waits of a command: a wait longer than about a second is said on stderr (which the
screen reader reads in a terminal) and spoken where the command speaks, so that a cold
``describe`` is never tens of seconds of silence. How long the model took to load last time is
kept (seconds only, per model name) so that the cue can say what to expect."""

from __future__ import annotations

import json
import math
import os
import sys
import threading
from pathlib import Path

__all__ = ["CUE_AFTER", "Cue", "cancelled_at_first", "load_cue", "remember_load_seconds"]

CUE_AFTER = 1.0  # seconds of silence before a wait is said


class Cue:
    """Says ``text`` (on stderr, and by ``speaker``) once the wait it covers (a ``with`` block, or
    until ``cancel``) has lasted ``after`` seconds; a wait that ends sooner says nothing."""

    def __init__(self, speaker, text: str, after: float = CUE_AFTER):
        self._speaker, self.text = speaker, text
        self._timer = threading.Timer(after, self._say)
        self._timer.daemon = True

    def start(self) -> Cue:
        self._timer.start()
        return self

    def cancel(self) -> None:
        self._timer.cancel()

    def __enter__(self) -> Cue:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cancel()

    def _say(self) -> None:
        print(f"a11y-caption: {self.text}", file=sys.stderr, flush=True)
        self._speaker.say(self.text)


def cancelled_at_first(chunks, cue: Cue):
    """``chunks``, with ``cue`` cancelled when the first one comes (or the stream ends)."""
    try:
        for chunk in chunks:
            cue.cancel()
            yield chunk
    finally:
        cue.cancel()


def _times_file() -> Path:
    from platformdirs import user_cache_path

    return user_cache_path("a11y-caption") / "load-seconds.json"


def _times() -> dict:
    try:
        times = json.loads(_times_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return times if isinstance(times, dict) else {}


def load_cue(model: str) -> str:
    """"Loading the model." with the time it took last time, where known."""
    seconds = _times().get(model)
    if isinstance(seconds, (int, float)) and math.isfinite(seconds) and 0 < seconds < 3600:
        about = f"{max(1, round(seconds))} second" + ("" if round(seconds) == 1 else "s")
        if seconds >= 90:
            about = f"{round(seconds / 60)} minutes"
        return f"Loading the model; last time it took about {about}."
    return "Loading the model."


def remember_load_seconds(model: str, seconds: float) -> None:
    """Keep how long ``model`` took to load (private file; a failure to write is not the user's
    problem and is ignored)."""
    times = _times()
    times[model] = round(seconds, 1)
    path = _times_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(dict(list(times.items())[-32:]), f)
        os.replace(tmp, path)
    except OSError:
        pass
