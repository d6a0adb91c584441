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

from .config import MODEL_ACTIONS, Binding, Config
from .errors import A11yCaptionError, AlreadyRunning, ConfigError, HotkeysUnavailable, describe_unexpected

__all__ = ["Agent", "Job", "check_hotkeys_possible", "run_agent", "single_instance"]

log = logging.getLogger(__name__)

CUES = {
    "describe_screen": "Describing the screen.",
    "describe_window": "Describing the window.",
    "describe_clipboard": "Describing the clipboard image.",
    "alt_text_to_clipboard": "Writing alt text.",
    "read_text": "Reading.",
}
TASKS = {"describe_screen": "screen", "describe_window": "window", "describe_clipboard": "photo",
         "alt_text_to_clipboard": "alt_text"}
SOMETHING_WRONG = "Something went wrong. Details are in the log."


@dataclass
class Job:
    action: str
    image: Image.Image | None = field(default=None, repr=False)
    prompt: str = ""
    epoch: int | None = None  # the speech epoch of the job's cue: a later cue or Stop silences the job
    stop: threading.Event = field(default_factory=threading.Event)


class Agent:
    """Everything but the keyboard listener, so tests and other front ends can drive ``press``."""

    def __init__(self, config: Config, speaker, *, describer=None, capture=None, clipboard=None):
        from . import capture as capture_module
        from . import clipboard as clipboard_module
        from .describer import Describer

        self.config = config
        self.speaker = speaker
        self.describer = describer or Describer(config.model)
        self.capture = capture or capture_module
        self.clipboard = clipboard or clipboard_module
        self.last: str | None = None
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
        self._press: tuple[Binding, int] | None = None  # the newest press the dispatcher has not taken
        self._job: Job | None = None  # the newest job the worker has not taken
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
        if binding.action == "stop":
            self.stop()
            return
        with self._lock:
            self._press = (binding, self._stops)  # replaces a press not yet answered: the latest wins
            self._press_waiting.notify()

    def stop(self) -> None:
        """Silence speech and cancel generation, at once; drop whatever was pressed before."""
        with self._answering:
            with self._lock:
                self._stops += 1
                self._press = self._job = None
                if self._current is not None:
                    self._current.stop.set()
            self.speaker.stop()
            self.speaker.say("Stopped.")

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.state = "loading"
        self.speaker.say("a11y-caption is on. Loading the model.")
        self._loader.start()
        for t in self._threads:
            t.start()

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the threads. Returns False if the model was still loading after ``timeout`` seconds
        (a load cannot be interrupted; it then releases the model and says nothing)."""
        with self._lock:
            self._closing = True
            self._press = self._job = None
            if self._current is not None:
                self._current.stop.set()
            self._press_waiting.notify_all()
            self._job_waiting.notify_all()
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
                (binding, stops), self._press = self._press, None
            try:
                self._dispatch(binding, stops)
            except A11yCaptionError as e:
                self._say_now(str(e), stops)
            except Exception as e:  # a bug: keep running, keep a trace of it (never what was on screen)
                self._unexpected(e, "press")
                self._say_now(SOMETHING_WRONG, stops)

    def _dispatch(self, b: Binding, stops: int) -> None:
        action = b.action
        if action == "repeat_last":  # a second press starts it again from the beginning
            self._say_now(self.last or "Nothing has been described yet.", stops)
            return
        if action == "copy_last":
            if self.last:
                self.clipboard.copy_text(self.last)
                self._say_now("Copied.", stops)
            else:
                self._say_now("Nothing has been described yet.", stops)
            return
        if action == "release_model":
            self._put_job(Job("release_model", epoch=self.speaker.epoch), stops)
            return
        # Describing actions: answer at once, capture now, let the worker do the rest.
        self._cancel_current()
        cue = CUES[action]
        if action in MODEL_ACTIONS and self.state in ("starting", "loading"):
            cue += " Still loading the model; it will follow."
        epoch = self._say_now(cue, stops)
        if epoch is None:
            return  # Stop came first
        if action == "describe_screen":
            image = self.capture.grab_screen(self.config.capture.screen)
        elif action in ("describe_window", "read_text"):
            image = self.capture.grab_window()
        else:
            image = self.capture.grab_clipboard_image()
        self._put_job(Job(action, image, b.prompt, epoch), stops)

    def _say_now(self, text: str, stops: int) -> int | None:
        """Interrupt whatever is being said and say ``text``, the answer to a press made when Stop
        had been pressed ``stops`` times. Never skipped for being said before: silence after a
        press is the one answer that is always wrong. Returns the speech epoch of the answer, or
        None when Stop has been pressed since (Stop's own answer stands).
        """
        with self._answering:
            if stops != self._stops:
                return None
            self.speaker.stop()
            self.speaker.say(text)
            return self.speaker.epoch

    def _cancel_current(self) -> None:
        with self._lock:
            if self._current is not None:
                self._current.stop.set()

    def _put_job(self, job: Job, stops: int) -> None:
        """Hand ``job`` to the worker, replacing one still waiting; dropped if Stop came since the press."""
        with self._lock:
            if stops != self._stops or self._closing:
                return
            if self._current is not None:
                self._current.stop.set()
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
                if self._job is None and not self._closing:
                    self._job_waiting.wait(idle_limit)
                if self._closing:
                    return
                job, self._job = self._job, None
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
                self.speaker.say(str(e), epoch=job.epoch)
            except Exception as e:
                self._unexpected(e, "job")
                self.speaker.say(SOMETHING_WRONG, epoch=job.epoch)
            finally:
                with self._lock:
                    self._current = None
                self.jobs_run += 1
                idle_since = time.monotonic()

    def _unexpected(self, e: Exception, what: str) -> None:
        summary = describe_unexpected(e)
        self.unexpected.append(summary)
        log.error("%s failed: %s", what, summary)
        log.debug("the traceback, shown because of --debug (it may quote screen text):", exc_info=e)

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
        self.state = "released"

    def _wait_for_first_load(self, job: Job) -> bool:
        while not self._model_ready.wait(0.1):
            if job.stop.is_set() or self._closing:
                return False
        return True

    def _run(self, job: Job) -> None:
        say = lambda text: self.speaker.say(text, epoch=job.epoch)  # noqa: E731
        if job.action == "read_text":  # OCR only: never waits for the model
            text, _ = self.describer.read(job.image, "screen")
            if not job.stop.is_set():
                for line in text.splitlines():
                    say(line)
                self.last = text
            return
        if not self._wait_for_first_load(job):
            return
        if job.action == "release_model":
            self._release()
            say("Model released.")
            return
        if not self.describer.loaded:
            say("Loading the model.")
            if not self._load(announce=None, epoch=job.epoch) or job.stop.is_set():
                return
        task = "question" if job.prompt and job.action != "alt_text_to_clipboard" else TASKS[job.action]
        start = time.perf_counter()
        generation = self.describer.describe(job.image, task, job.prompt or None, job.stop)
        if job.action == "alt_text_to_clipboard":
            text = generation.collect().text
            self._log_generation(job, generation, start)
            if job.stop.is_set():
                return
            self.clipboard.copy_text(text)
            self.last = text
            say("Alt text copied.")
            say(text)
            return
        text = self.speaker.say_stream(generation, epoch=job.epoch).strip()
        self._log_generation(job, generation, start)
        if not job.stop.is_set() and text:
            self.last = text

    @staticmethod
    def _log_generation(job: Job, generation, start: float) -> None:
        # Counts and timings only: what was on screen is never logged.
        log.info("%s by %s: %d new tokens in %.2f s%s", job.action, generation.model, generation.new_tokens,
                 time.perf_counter() - start, " (stopped)" if job.stop.is_set() else "")


def check_hotkeys_possible() -> None:
    """Raise HotkeysUnavailable, with what to do instead, where global hotkeys cannot work."""
    from .session import display_server

    server = display_server()
    if server in ("windows", "macos"):
        return
    advice = ("Bind commands such as 'a11y-caption describe --screen' to your desktop's own keyboard "
              "shortcuts instead.")
    if server == "wayland":
        raise HotkeysUnavailable(f"Global hotkeys cannot work under Wayland. {advice}")
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


class single_instance:
    """An exclusive lock on a file in the user's runtime folder; a second agent gets AlreadyRunning."""

    def __init__(self, path: Path | None = None):
        if path is None:
            base = os.environ.get("A11Y_CAPTION_RUNTIME_DIR")
            if not base:
                from platformdirs import user_runtime_dir

                base = user_runtime_dir("a11y-caption", appauthor=False)
            path = Path(base) / "agent.lock"
        self.path = path
        self._file = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
    from .hotkeys import start_listener
    from .speech import open_speaker

    if not config.hotkeys:
        raise ConfigError(config.path, None, "binds no hotkeys ([[hotkey]] tables), so the agent would answer "
                                             "no key; copy them from the packaged hotkeys.toml")
    check_hotkeys_possible()
    with single_instance():
        speaker = open_speaker(config.speech, echo_when_silent=True)
        agent = Agent(config, speaker)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        listener = start_listener((b.keys, lambda b=b: agent.press(b)) for b in config.hotkeys)
        agent.start()
        print(f"a11y-caption: listening for {len(config.hotkeys)} hotkeys from {config.path}; Ctrl+C quits.",
              file=sys.stderr)
        try:
            while not done.wait(0.5):
                if not listener.is_alive():
                    raise HotkeysUnavailable("The hotkey listener stopped; see the log.")
        except KeyboardInterrupt:
            pass
        finally:
            listener.stop()
            finished = agent.close()
            speaker.close()
        print("a11y-caption: stopped.", file=sys.stderr)
    if not finished:  # a model load cannot be interrupted; nothing is lost by not waiting for it
        sys.stderr.flush()
        os._exit(0)
    return 0
