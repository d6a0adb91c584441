"""Follow-up questions in the agent: what stops one being asked (nothing described yet, no model),
and the ask key's question box, shown on a thread of its own so that every other key still
answers while it is open.

``Asking`` is a part of ``Agent`` (agent/core.py), which owns the lock, the speaker and the
conversation it reads.
"""

from __future__ import annotations

import logging
import threading

from .jobs import NOTHING_YET, Press, end_error, end_stopped
from .question_box import NO_BOX, QUESTION_SECONDS, QuestionBox, box_command, timed_out

__all__ = ["Asking"]

log = logging.getLogger(__name__)

BOX_OPEN = "The question box is already open."
BOX_FAILED = "The question box could not be opened; ask from a terminal with: a11y-caption ask QUESTION"


class Asking:
    question_seconds = QUESTION_SECONDS  # how long an open question box waits for a question
    _box: QuestionBox | None = None

    def _cannot_ask(self) -> str | None:
        """The sentence that says why no follow-up question can be asked now, or None."""
        if self.conversation is None:
            return f"{NOTHING_YET} Describe something first, then ask about it."
        missing = self.describer.missing
        if missing is not None:
            from ..describe.missing import not_here

            log.warning("%s", missing)  # the command that fetches it, printed; the voice says the short name
            return f"{not_here(missing)} Questions need it."
        return None

    def _open_question_box(self, p: Press, stops: int) -> None:
        """The ask key without a prompt: the desktop's question box, then the question it gave."""
        command = None
        why = self._cannot_ask()
        if why is None:
            command = box_command()
            why = None if command else NO_BOX
        box = None
        if why is None:
            with self._lock:
                if self._box is None and not self._closing:
                    self._box = box = QuestionBox(command, self.question_seconds)
            why = None if box is not None else BOX_OPEN
        if why is not None:
            self._say_now(why, stops, p.speak)
            end_error(p.reply, why)
            return
        if self._say_now("", stops, p.speak) is None:  # quiet, so the screen reader reads the box
            with self._lock:
                self._box = None
            end_stopped(p.reply)
            return
        threading.Thread(target=self._wait_for_question, args=(box, p), name="a11y-question", daemon=True).start()

    def _wait_for_question(self, box: QuestionBox, p: Press) -> None:
        try:
            outcome, question = box.ask()
        finally:
            with self._lock:
                self._box = None
        if outcome == "asked" and not self._closing:
            self.submit(Press("ask", question, reply=p.reply, speak=p.speak))
            return
        said = {"timeout": timed_out(box.seconds), "failed": BOX_FAILED}.get(outcome)
        if said and not self._closing:
            self._say_now(said, self._stops, p.speak)
            end_error(p.reply, said)
        else:  # cancelled: the screen reader has said where the focus went back to
            end_stopped(p.reply)

    def _close_question_box(self) -> None:
        with self._lock:
            box = self._box
        if box is not None:
            box.close()
