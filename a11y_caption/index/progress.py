"""What an index run says of its progress, the same words by ear and on a terminal: how many images
there are to describe at the start, the time left once the first images have shown how long one
takes, then every 10 % or every minute, whichever comes first, but never more often than every
30 s; the run's summary says the end. Plain sentences, never a bar redrawn in place: a screen
reader reads each one once.

``ProgressReport`` decides when and what from a clock it is given (tests give their own);
``reporter`` turns it into the ``progress`` callback of ``index_folders``; ``progress_voice``
decides whether the sentences are spoken.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["MAX_GAP_S", "MIN_GAP_S", "ProgressReport", "duration_words", "progress_voice", "reporter"]

MIN_GAP_S = 30.0  # never two reports closer than this (the first estimate excepted)
MAX_GAP_S = 60.0  # a report at least this often, even when 10 % takes longer


def duration_words(seconds: float) -> str:
    """"less than a minute", "9 minutes", "1 hour 15 minutes" (hours to the nearest 5 minutes)."""
    if seconds < 60:
        return "less than a minute"
    minutes = int(seconds / 60 + 0.5)
    if minutes < 60:
        return f"{minutes} minute{'s' * (minutes != 1)}"
    hours, minutes = divmod(int(minutes / 5 + 0.5) * 5, 60)
    words = f"{hours} hour{'s' * (hours != 1)}"
    return words + (f" {minutes} minutes" if minutes else "")


class ProgressReport:
    """The reports of one run over ``total`` files to look at (of ``found`` images in all).

    The time per image is measured from the end of the first image the model described (that one
    also waited for the model to load) to the latest file, so it is known from the second image on.
    """

    def __init__(self, total: int, found: int | None = None, *, clock: Callable[[], float] = time.monotonic):
        self.total = total
        self.found = total if found is None else found
        self.clock = clock
        self._last_at = 0.0
        self._last_done = 0
        self._pace_from: tuple[float, int] | None = None  # (when, done) at the end of the first described image
        self._estimated = False

    def start(self) -> str | None:
        """The count, said at once; None when there is nothing to describe (the summary says it)."""
        self._last_at = self.clock()
        if not self.total:
            return None
        if self.total == self.found:
            return f"{self.total} image{'s' * (self.total != 1)} to describe."
        return f"{self.total} of {self.found} images to describe."

    def step(self, done: int, described: bool) -> str | None:
        """After the ``done``-th file (``described``: the model described it): what to say now, if anything."""
        now = self.clock()
        if described and self._pace_from is None:
            self._pace_from = (now, done)
        if done >= self.total:
            return None  # the summary follows at once
        left = self.seconds_left(now, done)
        since = now - self._last_at
        tenth_passed = done * 10 // self.total > self._last_done * 10 // self.total
        if since >= MIN_GAP_S and (since >= MAX_GAP_S or tenth_passed):
            words = f"{done} of {self.total}, {done * 100 // self.total} %"
            if left is not None:
                words += f", {duration_words(left)} left"
            return self._said(now, done, words + ".", left is not None)
        if left is not None and not self._estimated:  # the start's estimate: said as soon as it is known
            words = "Less than a minute left." if left < 60 else f"About {duration_words(left)} left."
            return self._said(now, done, words, True)
        return None

    def seconds_left(self, now: float, done: int) -> float | None:
        if self._pace_from is None or done <= self._pace_from[1]:
            return None
        since, at = self._pace_from
        return (now - since) / (done - at) * (self.total - done)

    def _said(self, now: float, done: int, words: str, estimated: bool) -> str:
        self._last_at, self._last_done = now, done
        self._estimated = self._estimated or estimated
        return words


def reporter(tell: Callable[[str], None], *, clock: Callable[[], float] = time.monotonic):
    """``progress(done, total, summary)`` for ``index_folders``: each report goes to ``tell``."""
    state: dict = {}

    def progress(done: int, total: int, summary) -> None:
        if done == 0:
            state["report"] = report = ProgressReport(total, summary.found, clock=clock)
            state["described"] = summary.described
            words = report.start()
        else:
            described = summary.described > state["described"]
            state["described"] = summary.described
            words = state["report"].step(done, described)
        if words:
            tell(words)

    return progress


def progress_voice(*, speak: bool, no_speak: bool, engine: str, cli: str, reader: Callable[[], bool]) -> str | None:
    """Who speaks an index run's progress: "speak" (asked for: ``--speak`` or ``[speech] cli =
    "speak"``; printed on a terminal too), "reader" (a screen reader runs: said through the voice,
    and not printed as well, since the screen reader would read it a second time), or None (not
    spoken: ``--no-speak``, ``--speech none``, ``cli = "print"``, or nobody listening)."""
    if no_speak:
        return None
    if speak:
        return "speak"
    if engine == "none" or cli == "print":
        return None
    if cli == "speak":
        return "speak"
    return "reader" if reader() else None
