"""The background agent: global hotkeys -> capture -> describe -> speak. Wiring only.

Threads and the rules for presses:
- pynput's listener thread runs the hotkey callbacks. They only note the press (``press``), except
  Stop, which voids everything pressed before it, cancels generation and silences speech at once.
- The dispatcher thread answers every press at once, with a spoken cue or the answer itself
  (repeat, copy), then captures, so the image is what was on screen at the press.
- One worker thread owns the model and runs one job at a time (worker.py). The model loads at start
  on a loader thread, so reading text (no model needed) is never kept waiting behind it.
- Nothing piles up: at most one press waits for the dispatcher and one job for the worker, each
  replaced by a newer one (the latest press wins), and a describing press cancels the running job.
- Nothing pressed before Stop is said after "Stopped.": presses and jobs carry the Stop count of
  their moment, and a job's speech is tied to the speech epoch of its own cue.
- The ask key's question box waits on a thread of its own (asking.py), so every other key answers
  while it is open; its question comes back as a press.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from PIL import Image

from ..actions import action as action_of
from ..config import Binding, Config
from ..errors import A11yCaptionError
from .asking import Asking
from .jobs import NOTHING_YET, SOMETHING_WRONG, Conversation, Job, Press, end_error, end_stopped
from .keys import key_list
from .requests import BadRequest, press_for
from .worker import Worker

__all__ = ["SOMETHING_WRONG", "Agent", "Conversation", "Job", "Press"]


class Agent(Worker, Asking):
    """Everything but the keyboard listener, so tests and other front ends can drive ``press``."""

    def __init__(self, config: Config, speaker, *, describer=None, capture=None, clipboard=None):
        from .. import capture as capture_module
        from ..capture import clipboard as clipboard_module
        from ..describe.describer import Describer

        self.config = config
        self.speaker = speaker
        self.describer = describer or Describer(config.model)
        self.capture = capture or capture_module
        self.clipboard = clipboard or clipboard_module
        self.last: str | None = None
        self.conversation: Conversation | None = None
        self.state = "starting"  # starting -> loading -> ready | failed (-> released -> loading ...)
        self.keys_reach_us = True  # the bound keys press it (not the desktop's shortcuts running commands)
        # Bugs, as "TypeError at agent.py:12": bounded, and no traceback (it would keep screenshots alive).
        self.unexpected: deque[str] = deque(maxlen=20)
        self.jobs_run = 0
        self._lock = threading.Lock()
        # Held while an answer is checked against the Stop count and spoken, and while Stop speaks:
        # so an answer to a press from before Stop can never cut off "Stopped." or follow it.
        self._answering = threading.Lock()
        self._press_waiting = threading.Condition(self._lock)
        self._job_waiting = threading.Condition(self._lock)
        self._press: tuple[Press, int] | None = None  # the newest press the dispatcher has not taken
        self._job: Job | None = None  # the newest job the worker has not taken
        self._background: Job | None = None  # a background job waiting for the worker to be free
        self._current: Job | None = None
        self._stops = 0  # Stop presses so far; a press or job from before the latest Stop is void
        self._closing = False
        self._model_ready = threading.Event()  # the first load has ended, well or not
        self._threads = [
            threading.Thread(target=self._dispatch_loop, name="a11y-dispatch", daemon=True),
            threading.Thread(target=self._work_loop, name="a11y-worker", daemon=True),
        ]
        self._loader = threading.Thread(target=self._first_load, name="a11y-load", daemon=True)

    # -- called from the hotkey thread: never block here -------------------------------------
    def press(self, binding: Binding) -> None:
        self.submit(Press(binding.action, binding.prompt))

    def submit(self, press: Press) -> None:
        """Hand on a press or a command's request; returns at once."""
        if press.action == "stop":
            self.stop()
            if press.reply is not None:
                press.reply.done()
            return
        with self._lock:
            if self._press is not None:
                end_stopped(self._press[0].reply)
            self._press = (press, self._stops)  # replaces a press not yet answered: the latest wins
            self._press_waiting.notify()

    def stop(self) -> None:
        """Silence speech and cancel generation, at once; drop whatever was pressed before."""
        with self._answering:
            with self._lock:
                self._stops += 1
                self._void_waiting()
            self.speaker.stop()
            self.speaker.say("Stopped.")

    def _void_waiting(self) -> None:
        """Drop the press and the job still waiting, and stop the running job (hold the lock)."""
        if self._press is not None:
            end_stopped(self._press[0].reply)
        for job in (self._job, self._background):
            if job is not None:
                end_stopped(job.reply)
        self._press = self._job = self._background = None
        if self._current is not None:
            self._current.stop.set()

    def cancel_reply(self, reply) -> None:
        """The command waiting for ``reply`` went away (Ctrl+C): drop or stop its work, silently."""
        with self._lock:
            if self._press is not None and self._press[0].reply is reply:
                self._press = None
            if self._job is not None and self._job.reply is reply:
                self._job = None
            if self._background is not None and self._background.reply is reply:
                self._background = None
            if self._current is not None and self._current.reply is reply:
                self._current.stop.set()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, hotkeys: str = "", keys: bool = True) -> None:
        """``hotkeys``: how presses reach the agent, as a phrase for the first line; ``keys``: whether
        the bound keys reach it (the ready line names them only then)."""
        self.state = "loading"
        self.keys_reach_us = keys
        how = f", {hotkeys}" if hotkeys else ""
        self.speaker.say(f"a11y-caption is on, speaking through {self.speaker.engine_label}{how}. Loading the model.")
        self._loader.start()
        for t in self._threads:
            t.start()

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the threads. Returns False if the model was still loading after ``timeout`` seconds
        (a load cannot be interrupted; it then releases the model and says nothing)."""
        with self._lock:
            self._closing = True
            self._void_waiting()
            self._press_waiting.notify_all()
            self._job_waiting.notify_all()
        self._close_question_box()
        self.conversation = None  # the last image lives in memory only, and not past exit
        deadline = time.monotonic() + timeout
        for t in [*self._threads, self._loader]:
            if t.ident is not None:  # started
                t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in [*self._threads, self._loader])

    # -- dispatcher: instant answers and captures ---------------------------------------------
    def _dispatch_loop(self) -> None:
        while True:
            with self._lock:
                while self._press is None and not self._closing:
                    self._press_waiting.wait()
                if self._closing:
                    return
                (press, stops), self._press = self._press, None
            try:
                self._dispatch(press, stops)
            except A11yCaptionError as e:
                self._say_now(str(e), stops, press.speak)
                end_error(press.reply, str(e))
            except Exception as e:  # a bug: keep running, keep a trace of it (never what was on screen)
                self._unexpected(e, "press")
                self._say_now(SOMETHING_WRONG, stops, press.speak)
                end_error(press.reply, SOMETHING_WRONG)

    def _dispatch(self, p: Press, stops: int) -> None:
        action = p.action
        if action == "repeat_last":  # a second press starts it again from the beginning
            text = self.last or NOTHING_YET
            epoch = self._say_now(text, stops, p.speak)
            if epoch is not None and self.last and p.speak:
                self.speaker.braille(self.last, epoch=epoch)
            if epoch is not None and p.reply is not None:
                p.reply.chunk(text)
                p.reply.done(text=text)
            return
        if action == "copy_last":
            if self.last:
                self.clipboard.copy_text(self.last)
            answer = "Copied." if self.last else NOTHING_YET
            if self._say_now(answer, stops, p.speak) is not None and p.reply is not None:
                if self.last:
                    p.reply.done(text=self.last)
                else:
                    p.reply.error(NOTHING_YET)
            return
        if action == "release_model":
            self._put_job(Job("release_model", epoch=self.speaker.epoch, reply=p.reply, speak=p.speak), stops)
            return
        if action == "say_hotkeys":
            self._say_lines(key_list(self.config.hotkeys) or ["No keys are bound."], stops, p)
            return
        if action == "ask" and not p.prompt:  # the ask key: the question comes from the question box
            self._open_question_box(p, stops)
            return
        # Describing actions: answer at once, capture now, let the worker do the rest.
        self._cancel_current()
        what = action_of(action)
        cue = what.prompt_cue if p.prompt and what.prompt_cue else what.cue
        if what.needs_model and self.state in ("starting", "loading"):
            cue += " Still loading the model; it will follow."
        if p.title:  # one of several files a command sent: which one, first
            cue = f"{p.title} {cue}"
        epoch = self._say_now(cue, stops, p.speak)
        if epoch is None:
            end_stopped(p.reply)
            return  # Stop came first
        task, found = p.task, {}
        if action == "ask":
            image = None
        elif p.image is not None:
            image = p.image
        else:
            image, captured_as, found = self._capture(p)
            if task is None and not p.prompt:
                task = captured_as
        self._put_job(Job(action, image, p.prompt, epoch, task=task, reply=p.reply, speak=p.speak, **found), stops)

    def _say_lines(self, lines: list[str], stops: int, p: Press) -> None:
        """Say ``lines`` one after another, at once (a later press or Stop cuts them)."""
        epoch = self._say_now(lines[0], stops, p.speak)
        if epoch is None:
            end_stopped(p.reply)
            return
        if p.speak:
            for line in lines[1:]:
                self.speaker.say(line, epoch=epoch)
        if p.reply is not None:
            text = "\n".join(lines)
            p.reply.chunk(text)
            p.reply.done(text=text)

    def _capture(self, p: Press) -> tuple[Image.Image | None, str | None, dict]:
        """(image, the task it calls for where not the press's own, what else the job needs): a window
        that cannot be isolated is the whole screen, said once and described as a screen; an object
        comes with what the accessibility tree says of it."""
        source = p.source or action_of(p.action).source
        if source in ("focus", "pointer", "images"):
            return self._capture_objects(source, p.speak)
        if source in ("screen", "window") and p.speak:
            from ..capture import permission_note

            if note := permission_note():  # before the desktop's one-time dialog shows, not after
                self.speaker.say(note)
        if source == "screen":
            return self.capture.grab_screen(self.config.capture.screen), None, {}
        if source == "window":
            shot = self.capture.capture_window()
            if shot.note and p.speak:
                self.speaker.say(shot.note)
            return shot.image, None if shot.isolated else "screen", {}
        return self.capture.grab_clipboard_image(), None, {}

    def _capture_objects(self, source: str, speak: bool) -> tuple[Image.Image | None, str, dict]:
        from ..describe.objects import facts_of

        if source == "images":  # each described in turn by the worker
            return None, "object", {"shots": self.capture.capture_images()}
        area = (self.config.capture.pointer_width, self.config.capture.pointer_height)
        shot = (self.capture.capture_focus if source == "focus" else self.capture.capture_pointer)(area)
        if shot.note and speak:
            self.speaker.say(shot.note)
        return shot.image, "object", {"shots": [shot], "facts": facts_of(shot.obj) if shot.obj else None}

    def _say_now(self, text: str, stops: int, speak: bool = True) -> int | None:
        """Interrupt whatever is being said and say ``text``, the answer to a press made when Stop
        had been pressed ``stops`` times. Never skipped for being said before: silence after a
        press is the one answer that is always wrong. Returns the speech epoch of the answer, or
        None when Stop has been pressed since (Stop's own answer stands). With ``speak`` false (a
        command run with --no-speak) nothing is said, but the press still takes over.
        """
        with self._answering:
            if stops != self._stops:
                return None
            if speak:
                self.speaker.stop()
                if text:
                    self.speaker.say(text)
            return self.speaker.epoch

    def _cancel_current(self) -> None:
        with self._lock:
            self._interrupt_current()

    def _interrupt_current(self) -> None:
        """Stop the running job for a newer one (hold the lock): a background job is "replaced"."""
        if self._current is not None:
            self._current.replaced = self._current.background
            self._current.stop.set()

    def _put_job(self, job: Job, stops: int) -> None:
        """Hand ``job`` to the worker, replacing one still waiting; dropped if Stop came since the press."""
        with self._lock:
            if stops != self._stops or self._closing:
                end_stopped(job.reply)
                return
            self._interrupt_current()
            if self._job is not None:
                end_stopped(self._job.reply)
            self._job = job
            self._job_waiting.notify()

    # -- the control endpoint: commands and desktop shortcuts ------------------------------------
    def handle_request(self, request: dict, image: bytes | None, reply) -> None:
        """A command's request (control.ControlServer); returns at once, answers through ``reply``."""
        if request["op"] == "status":
            reply.done(state=self.state, model=self.config.model.name, described=self.last is not None,
                       conversation=self.conversation is not None)
            return
        try:
            press = press_for(request, image, reply)
        except BadRequest as e:
            reply.error(str(e))
            return
        reply.cancel = lambda: self.cancel_reply(reply)
        if request.get("background") is True:
            if press.image is None:
                reply.error("Only an image sent with the request can be described in the background.")
                return
            self._put_background(press)
            return
        self.submit(press)

    def _put_background(self, p: Press) -> None:
        """A command's image for when the worker is free (the folder index): no cue, no capture, and
        it interrupts nothing; a second one while one waits is refused, so two indexes cannot take
        turns replacing each other."""
        job = Job(p.action, p.image, p.prompt, None, task=p.task or ("screen" if p.action == "read_text" else None),
                  reply=p.reply, speak=False, background=True)
        with self._lock:
            if self._closing:
                end_stopped(job.reply)
                return
            if self._background is not None:
                job.reply.error("The agent is already working through another command's images; try again "
                                "when it is done.")
                return
            self._background = job
            self._job_waiting.notify()
