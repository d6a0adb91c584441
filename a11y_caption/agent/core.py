"""The background agent: global hotkeys -> capture -> describe -> speak. Wiring only.

Threads and the rules for presses:
- pynput's listener thread runs the hotkey callbacks. They only note the press (``press``), except
  Stop, which voids everything pressed before it, cancels generation and silences speech at once.
- The dispatcher thread answers every press at once, with a spoken cue or the answer itself
  (repeat, copy), then captures, so the image is what was on screen at the press.
- One worker thread owns the model and runs one job at a time. The model loads at start on a
  loader thread, so reading text (no model needed) is never kept waiting behind it.
- Nothing piles up: at most one press waits for the dispatcher and one job for the worker, each
  replaced by a newer one (the latest press wins), and a describing press cancels the running job.
- Nothing pressed before Stop is said after "Stopped.": presses and jobs carry the Stop count of
  their moment, and a job's speech is tied to the speech epoch of its own cue.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..actions import action as action_of
from ..config import Binding, Config
from ..describe.grounding import ScreenText
from ..errors import (
    A11yCaptionError, AlreadyRunning, ConfigError, HotkeysUnavailable, describe_unexpected, log_unexpected,
)

__all__ = ["Agent", "Conversation", "Job", "Press", "check_hotkeys_possible", "run_agent", "single_instance"]

log = logging.getLogger(__name__)

SOMETHING_WRONG = "Something went wrong. Details are in the log."
NOTHING_YET = "Nothing has been described yet."
MAX_TURNS = 6  # a conversation keeps its first turn (which holds the image) and the latest ones


@dataclass
class Press:
    """A hotkey press, or a command's request through the control endpoint (with ``reply``)."""

    action: str  # a hotkey action, "describe_image" (the command sent the image) or "ask"
    prompt: str = ""
    task: str | None = None  # a command's own task ("alt_text", "question"), else the action's
    source: str | None = None  # read_text: "screen", "window", "clipboard" or "image"
    image: Image.Image | None = field(default=None, repr=False)  # sent by the command
    reply: object = None  # control.Reply: where the answer streams to
    speak: bool = True


@dataclass
class Job:
    action: str
    image: Image.Image | None = field(default=None, repr=False)
    prompt: str = ""
    epoch: int | None = None  # the speech epoch of the job's cue: a later cue or Stop silences the job
    stop: threading.Event = field(default_factory=threading.Event)
    task: str | None = None
    reply: object = None
    speak: bool = True
    # A command's work that must not interrupt the user (the folder index): it waits until the
    # worker is free, and a user's press interrupts it as "replaced", never as Stop.
    background: bool = False
    replaced: bool = False


@dataclass
class Conversation:
    """The image described last and what was said about it, for follow-up questions. In memory only."""

    image: Image.Image = field(repr=False)
    image_kind: str  # "screen" (a screen or window capture) or "photo"
    turns: list[tuple[str, str]] = field(default_factory=list)  # (asked, answered)
    screen_text: ScreenText | None = field(default=None, repr=False)  # the OCR text of a grounded first turn

    def history(self) -> tuple[tuple[str, str], ...]:
        turns = self.turns if len(self.turns) <= MAX_TURNS else self.turns[:1] + self.turns[-(MAX_TURNS - 1):]
        return tuple(turns)


class Agent:
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
                _end_stopped(self._press[0].reply)
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
            _end_stopped(self._press[0].reply)
        for job in (self._job, self._background):
            if job is not None:
                _end_stopped(job.reply)
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
    def start(self, hotkeys: str = "") -> None:
        """``hotkeys``: how presses reach the agent, as a phrase for the first line."""
        self.state = "loading"
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
                _end_error(press.reply, str(e))
            except Exception as e:  # a bug: keep running, keep a trace of it (never what was on screen)
                self._unexpected(e, "press")
                self._say_now(SOMETHING_WRONG, stops, press.speak)
                _end_error(press.reply, SOMETHING_WRONG)

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
        # Describing actions: answer at once, capture now, let the worker do the rest.
        self._cancel_current()
        cue = action_of(action).cue
        if action_of(action).needs_model and self.state in ("starting", "loading"):
            cue += " Still loading the model; it will follow."
        epoch = self._say_now(cue, stops, p.speak)
        if epoch is None:
            _end_stopped(p.reply)
            return  # Stop came first
        task = p.task
        if action == "ask":
            image = None
        elif p.image is not None:
            image = p.image
        else:
            image, captured_as = self._capture(p)
            if task is None and not p.prompt:
                task = captured_as
        self._put_job(Job(action, image, p.prompt, epoch, task=task, reply=p.reply, speak=p.speak), stops)

    def _capture(self, p: Press) -> tuple[Image.Image, str | None]:
        """(image, the task it calls for where not the press's own): a window that cannot be isolated
        is the whole screen, said once and described as a screen."""
        source = p.source or action_of(p.action).source
        if source in ("screen", "window") and p.speak:
            from ..capture import permission_note

            if note := permission_note():  # before the desktop's one-time dialog shows, not after
                self.speaker.say(note)
        if source == "screen":
            return self.capture.grab_screen(self.config.capture.screen), None
        if source == "window":
            shot = self.capture.capture_window()
            if shot.note and p.speak:
                self.speaker.say(shot.note)
            return shot.image, None if shot.isolated else "screen"
        return self.capture.grab_clipboard_image(), None

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
                _end_stopped(job.reply)
                return
            self._interrupt_current()
            if self._job is not None:
                _end_stopped(self._job.reply)
            self._job = job
            self._job_waiting.notify()

    # -- worker: the only thread that runs the model --------------------------------------------
    def _first_load(self) -> None:
        try:
            self._load(announce="Ready.")
        finally:
            self._model_ready.set()
        if self._closing:  # closed while loading: give the memory back, say nothing
            self.describer.release()

    def _work_loop(self) -> None:
        idle_limit = self.config.model.idle_unload_minutes * 60 or None
        idle_since = time.monotonic()
        while True:
            with self._lock:
                if self._job is None and self._background is None and not self._closing:
                    self._job_waiting.wait(idle_limit)
                if self._closing:
                    return
                if self._job is not None:  # the user's own work comes first
                    job, self._job = self._job, None
                else:
                    job, self._background = self._background, None
                self._current = job  # taken and made current in one step: a press can always cancel it
            if job is None:
                if idle_limit and time.monotonic() - idle_since >= idle_limit and self._model_ready.is_set() \
                        and self.describer.loaded:
                    log.info("idle for %s minutes; releasing the model", self.config.model.idle_unload_minutes)
                    self._release()
                continue
            try:
                self._run(job)
            except A11yCaptionError as e:
                if job.speak:
                    self.speaker.say(str(e), epoch=job.epoch)
                _end_error(job.reply, str(e))
            except Exception as e:
                self._unexpected(e, "job")
                if job.speak:
                    self.speaker.say(SOMETHING_WRONG, epoch=job.epoch)
                _end_error(job.reply, SOMETHING_WRONG)
            finally:
                with self._lock:
                    self._current = None
                # A job that ended without an answer was stopped, or made way for the user's own.
                _end_stopped(job.reply, "replaced" if job.replaced else "stop")
                self.jobs_run += 1
                idle_since = time.monotonic()

    def _unexpected(self, e: Exception, what: str) -> None:
        self.unexpected.append(describe_unexpected(e))
        log_unexpected(log, f"{what} failed", e)

    def _load(self, announce: str | None, epoch: int | None = None) -> bool:
        self.state = "loading"
        try:
            self.describer.load()
        except A11yCaptionError as e:
            self.state = "failed"
            if not self._closing:
                self.speaker.say(f"{e} Reading text still works.", epoch=epoch)
            return False
        except Exception as e:
            self.state = "failed"
            self._unexpected(e, "model load")
            if not self._closing:
                self.speaker.say("The model could not be loaded. Details are in the log.", epoch=epoch)
            return False
        self.state = "ready"
        if announce and not self._closing:
            missing = self.describer.missing
            self.speaker.say(f"{announce} {missing} Until then I read text only." if missing else announce)
        return True

    def _release(self) -> None:
        self.describer.release()
        self.conversation = None  # the last image goes with the model's memory
        self.state = "released"

    def _wait_for_first_load(self, job: Job) -> bool:
        while not self._model_ready.wait(0.1):
            if job.stop.is_set() or self._closing:
                return False
        return True

    def _run(self, job: Job) -> None:
        def say(text: str) -> None:
            if job.speak:
                self.speaker.say(text, epoch=job.epoch)

        reply = job.reply
        if job.action == "read_text":  # OCR only: never waits for the model
            text, lines = self.describer.read(job.image, "screen")
            if not job.stop.is_set():
                for line in text.splitlines():
                    say(line)
                    if reply is not None:
                        reply.chunk(line + "\n")
                if not job.background:  # the index's work is not what the user heard last
                    self.last = text
                if reply is not None:
                    reply.done(text=text, lines=lines)
            return
        if not self._wait_for_first_load(job):
            return
        if job.action == "release_model":
            self._release()
            say("Model released.")
            if reply is not None:
                reply.done()
            return
        if not self.describer.loaded:
            say("Loading the model.")
            if not self._load(announce=None, epoch=job.epoch if job.speak else -1) or job.stop.is_set():
                return
        image, task, question, history, image_kind, screen_text = self._what_to_ask(job)
        start = time.perf_counter()
        generation = self.describer.describe(image, task, question, job.stop, history, image_kind, screen_text)
        if job.action == "alt_text_to_clipboard":
            text = generation.collect().text
            self._log_generation(job, generation, start)
            if job.stop.is_set():
                return
            self.clipboard.copy_text(text)
            say("Alt text copied.")
            say(text)
            if job.speak:
                self.speaker.braille(text, epoch=job.epoch)
        else:
            chunks = _tee(generation, reply.chunk) if reply is not None else generation
            if job.speak:
                text = self.speaker.say_stream(chunks, epoch=job.epoch).strip()
            else:
                text = "".join(chunks).strip()
            self._log_generation(job, generation, start)
            if job.stop.is_set() or not text:
                return
        if job.background:  # the index's work: neither the last answer nor a conversation of the user's
            reply.done(text=text, model=generation.model, seconds=round(time.perf_counter() - start, 3))
            return
        self.last = text
        if job.action == "ask":
            self.conversation.turns.append((question, text))
        else:
            from ..captioner.base import Request
            from ..captioner.prompts import prompt_for

            # The prompt the model was actually given (grounded: with the OCR lines), so that a
            # follow-up's conversation starts with the same tokens and reuses the kept cache.
            asked = prompt_for(Request(image, task, question, self.config.model.language or None,
                                       screen_text=generation.screen_text))
            # Follow-ups check their quotes against the first turn's text: the lines in its prompt, or
            # what OCR read to check its quotes (ground_in_ocr "check").
            self.conversation = Conversation(image, image_kind, [(asked, text)],
                                             generation.screen_text or generation.checked_against)
        if reply is not None:
            grounded = {} if generation.screen_text is None else {"text_on_screen": generation.screen_text.as_json()}
            reply.done(text=text, model=generation.model, seconds=round(time.perf_counter() - start, 3), **grounded)

    def _what_to_ask(self, job: Job):
        """(image, task, question, history, image kind, screen text) for a job; a follow-up asks about
        the last image, grounded in the text of the first turn."""
        if job.action != "ask":
            what = action_of(job.action)
            task = "question" if job.prompt and job.action != "alt_text_to_clipboard" else what.task
            kind = what.image_kind
            return job.image, job.task or task, job.prompt or None, (), kind, None
        if self.conversation is None:
            raise A11yCaptionError(f"{NOTHING_YET} Describe something first, then ask about it.")
        if self.describer.missing is not None:
            raise self.describer.missing
        captioner = self.describer.captioner
        if not captioner.answers_questions:
            raise A11yCaptionError(f"The model {captioner.name} cannot answer questions; a chat model such as "
                                   "Qwen2-VL can.")
        c = self.conversation
        return c.image, "question", job.prompt, c.history(), c.image_kind, c.screen_text

    # -- the control endpoint: commands and desktop shortcuts ------------------------------------
    def handle_request(self, request: dict, image: bytes | None, reply) -> None:
        """A command's request (control.ControlServer); returns at once, answers through ``reply``."""
        op, speak = request["op"], request.get("speak", True)
        if op == "status":
            reply.done(state=self.state, model=self.config.model.name, described=self.last is not None,
                       conversation=self.conversation is not None)
            return
        simple = {"stop": "stop", "repeat": "repeat_last", "copy_last": "copy_last", "release": "release_model"}
        if op in simple:
            self.submit(Press(simple[op], reply=reply, speak=speak))
            return
        if op == "ask":
            question = (request.get("question") or "").strip()
            if not question:
                reply.error("Ask a question, for example: a11y-caption ask \"What does the error say?\"")
                return
            press = Press("ask", question, reply=reply, speak=speak)
        else:
            source = request.get("source") or "screen"
            if source not in ("screen", "window", "clipboard", "image"):
                reply.error(f"Unknown source {source[:40]!r}; use screen, window, clipboard or an image.")
                return
            picture = None
            if source == "image":
                if image is None:
                    reply.error("No image was sent.")
                    return
                from ..images import open_image_bytes

                try:
                    picture = open_image_bytes(image, (request.get("name") or "The image")[:200])
                except A11yCaptionError as e:
                    reply.error(str(e))
                    return
            if op == "read":
                press = Press("read_text", source=source, image=picture, reply=reply, speak=speak)
            else:
                task = request.get("task")
                if task not in (None, "photo", "screen", "window", "alt_text", "question"):
                    reply.error(f"Unknown task {task[:40]!r}.")
                    return
                prompt = request.get("prompt") or ""
                if task == "question" and not prompt:
                    reply.error("A question needs a prompt.")
                    return
                action = {"screen": "describe_screen", "window": "describe_window",
                          "clipboard": "describe_clipboard", "image": "describe_image"}[source]
                press = Press(action, prompt, task=task or ("question" if prompt else None), image=picture,
                              reply=reply, speak=speak)
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
                _end_stopped(job.reply)
                return
            if self._background is not None:
                job.reply.error("The agent is already working through another command's images; try again "
                                "when it is done.")
                return
            self._background = job
            self._job_waiting.notify()

    @staticmethod
    def _log_generation(job: Job, generation, start: float) -> None:
        # Counts and timings only: what was on screen is never logged.
        log.info("%s by %s: %d new tokens in %.2f s%s", job.action, generation.model, generation.new_tokens,
                 time.perf_counter() - start, " (stopped)" if job.stop.is_set() else "")


def _end_stopped(reply, reason: str = "stop") -> None:
    if reply is not None:
        reply.stopped(reason)


def _end_error(reply, message: str) -> None:
    if reply is not None:
        reply.error(message)


def _tee(chunks, sink):
    for chunk in chunks:
        sink(chunk)
        yield chunk


def check_hotkeys_possible() -> str:
    """"wayland" (hotkeys through the desktop portal, else the desktop's own shortcuts) or "listener"
    (our own key listener); raise HotkeysUnavailable, with what to do instead, where neither works."""
    from ..session import display_server

    server = display_server()
    if server in ("windows", "macos"):
        return "listener"
    if server == "wayland":
        return "wayland"
    advice = ("Bind commands such as 'a11y-caption describe --screen' to your desktop's own keyboard "
              "shortcuts instead.")
    if server == "none":
        raise HotkeysUnavailable(f"There is no X display (DISPLAY is not set), so hotkeys cannot work. {advice}")
    try:
        from Xlib import display

        d = display.Display()
    except Exception as e:
        raise HotkeysUnavailable(f"The X display {os.environ['DISPLAY']} cannot be opened. {advice}") from e
    try:
        if not d.has_extension("RECORD"):
            raise HotkeysUnavailable(f"The X server lacks the RECORD extension, which global hotkeys need. {advice}")
    finally:
        d.close()
    return "listener"


NO_PORTAL_HOTKEYS = "with no hotkeys of its own; bind keys with: a11y-caption shortcuts install"


def _wayland_hotkeys(config: Config, agent: Agent):
    """(the GlobalShortcuts portal session or None, the phrase for the first line)."""
    from ..capture.portal import PortalUnavailable
    from ..desktop.portal import GlobalShortcuts
    from ..desktop.shortcuts import binding_description, shortcut_ids

    by_id = dict(zip(shortcut_ids(config.hotkeys), config.hotkeys))
    shortcuts = GlobalShortcuts([(sid, binding_description(b), b.keys) for sid, b in by_id.items()],
                                lambda sid: agent.press(by_id[sid]) if sid in by_id else None)
    try:
        shortcuts.start()
    except PortalUnavailable as e:
        print(f"a11y-caption: no global shortcuts portal ({e}).", file=sys.stderr)
        return None, NO_PORTAL_HOTKEYS
    except HotkeysUnavailable as e:
        print(f"a11y-caption: {e}", file=sys.stderr)
        return None, NO_PORTAL_HOTKEYS
    return shortcuts, f"with hotkeys through {shortcuts.label}"


class single_instance:
    """An exclusive lock on a file in the user's runtime folder; a second agent gets AlreadyRunning."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._file = None

    def __enter__(self):
        if self.path is None:
            from .control import runtime_dir

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


def run_agent(config: Config) -> int:
    """Run until Ctrl+C or SIGTERM. Returns the exit status."""
    from .control import ControlServer
    from ..speech import open_speaker

    if not config.hotkeys:
        raise ConfigError(config.path, None, "binds no hotkeys ([[hotkey]] tables), so the agent would answer "
                                             "no key; copy them from the packaged hotkeys.toml")
    mechanism = check_hotkeys_possible()
    with single_instance():
        speaker = open_speaker(config.speech, echo_when_silent=True)
        agent = Agent(config, speaker)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        if mechanism == "wayland":
            listener, hotkeys = _wayland_hotkeys(config, agent)
        else:
            from ..hotkeys import start_listener

            listener, hotkeys = start_listener((b.keys, lambda b=b: agent.press(b)) for b in config.hotkeys), ""
        server = ControlServer(agent.handle_request)
        server.start()
        agent.start(hotkeys)
        print(f"a11y-caption: listening for {len(config.hotkeys) if listener else 0} hotkeys from {config.path}; "
              "Ctrl+C quits.", file=sys.stderr)
        try:
            while not done.wait(0.5):
                if listener is not None and not listener.is_alive():
                    raise HotkeysUnavailable("The hotkey listener stopped; see the log.")
        except KeyboardInterrupt:
            pass
        finally:
            if listener is not None:
                listener.stop()
            server.close()
            finished = agent.close()
            speaker.close()
        print("a11y-caption: stopped.", file=sys.stderr)
    if not finished:  # a model load cannot be interrupted; nothing is lost by not waiting for it
        sys.stderr.flush()
        os._exit(0)
    return 0
