"""The background agent: global hotkeys -> capture -> describe -> speak. Wiring only.

Threads and the rule for presses:
- pynput's listener thread runs the hotkey callbacks. They only enqueue (``press``), except
  ``stop``, which just sets flags and silences speech, so it works even while everything is busy.
- The dispatcher thread answers every press at once: a spoken cue, repeat/copy of the last result,
  and the capture (so the image is what was on screen at the press).
- One worker thread owns the model: it loads it at start, then runs one job at a time.
- At most one job waits. A new describing press cancels the running one and replaces the waiting
  one: the latest press wins, so hammering a key never piles up work.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .config import MODEL_ACTIONS, Binding, Config
from .errors import A11yCaptionError, AlreadyRunning, HotkeysUnavailable

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


@dataclass
class Job:
    action: str
    image: Image.Image | None = None
    prompt: str = ""
    stop: threading.Event = None  # type: ignore[assignment]

    def __post_init__(self):
        self.stop = self.stop or threading.Event()


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
        self.state = "starting"  # starting -> loading -> ready (-> released -> loading ...)
        self.unexpected: list[BaseException] = []  # bugs, kept for tests and the log
        self.jobs_run = 0
        self._intake: queue.Queue = queue.Queue(maxsize=32)
        self._slot: queue.Queue = queue.Queue(maxsize=1)
        self._slot_lock = threading.Lock()
        self._current: Job | None = None
        self._last_cue = ("", 0.0)
        self._threads = [
            threading.Thread(target=self._dispatch_loop, name="a11y-dispatch", daemon=True),
            threading.Thread(target=self._work_loop, name="a11y-worker", daemon=True),
        ]

    # -- called from the hotkey thread: never block here -------------------------------------
    def press(self, binding: Binding) -> None:
        if binding.action == "stop":
            self.stop()
            return
        try:
            self._intake.put_nowait(binding)
        except queue.Full:
            log.debug("intake full; press dropped")

    def stop(self) -> None:
        """Silence speech and cancel generation, at once."""
        with self._slot_lock:
            self._drain(self._slot)
        self._cancel_current()
        self.speaker.stop()
        self.speaker.say("Stopped.")
        self._last_cue = ("Stopped.", time.monotonic())

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.state = "loading"
        self.speaker.say("a11y-caption is on. Loading the model.")
        for t in self._threads:
            t.start()

    def close(self) -> None:
        self._cancel_current()
        self._intake.put(None)
        self._put_job(None)
        for t in self._threads:
            t.join(timeout=10)

    # -- dispatcher: instant answers and captures ---------------------------------------------
    def _dispatch_loop(self) -> None:
        while True:
            binding = self._intake.get()
            if binding is None:
                return
            # Coalesce a burst: only the newest waiting press counts.
            while True:
                try:
                    newer = self._intake.get_nowait()
                except queue.Empty:
                    break
                if newer is None:
                    return
                binding = newer
            try:
                self._dispatch(binding)
            except A11yCaptionError as e:
                self._say_now(str(e))
            except Exception as e:  # a bug: keep running, keep the evidence
                self.unexpected.append(e)
                log.exception("press failed")
                self._say_now("Something went wrong. Details are in the log.")

    def _dispatch(self, b: Binding) -> None:
        action = b.action
        if action == "repeat_last":
            self._say_now(self.last or "Nothing has been described yet.")
            return
        if action == "copy_last":
            if self.last:
                self.clipboard.copy_text(self.last)
                self._say_now("Copied.")
            else:
                self._say_now("Nothing has been described yet.")
            return
        if action == "release_model":
            self._cancel_current()
            self._put_job(Job("release_model"))
            return
        # Describing actions: answer at once, capture now, let the worker do the rest.
        self._cancel_current()
        cue = CUES[action]
        if action in MODEL_ACTIONS and self.state in ("starting", "loading"):
            cue += " Still loading the model; it will follow."
        self._say_now(cue)
        if action == "describe_screen":
            image = self.capture.grab_screen(self.config.capture.screen)
        elif action in ("describe_window", "read_text"):
            image = self.capture.grab_window()
        else:
            image = self.capture.grab_clipboard_image()
        self._put_job(Job(action, image, b.prompt))

    def _say_now(self, text: str) -> None:
        """Interrupt whatever is being said and say ``text`` (repeated cues within 0.5 s are skipped)."""
        now = time.monotonic()
        if self._last_cue[0] == text and now - self._last_cue[1] < 0.5:
            return
        self._last_cue = (text, now)
        self.speaker.stop()
        self.speaker.say(text)

    def _cancel_current(self) -> None:
        with self._slot_lock:
            if self._current is not None:
                self._current.stop.set()

    def _put_job(self, job: Job | None) -> None:
        with self._slot_lock:
            self._drain(self._slot)
            self._slot.put_nowait(job)

    @staticmethod
    def _drain(q: queue.Queue) -> None:
        while True:
            try:
                q.get_nowait()
            except queue.Empty:
                return

    # -- worker: the only thread that touches the model ----------------------------------------
    def _work_loop(self) -> None:
        self._load(announce="Ready.")
        idle_limit = self.config.model.idle_unload_minutes * 60 or None
        while True:
            try:
                job = self._slot.get(timeout=idle_limit)
            except queue.Empty:
                if self.describer.loaded:
                    log.info("idle for %s minutes; releasing the model", self.config.model.idle_unload_minutes)
                    self.describer.release()
                    self.state = "released"
                continue
            if job is None:
                return
            with self._slot_lock:
                if job.stop.is_set():
                    continue
                self._current = job
            try:
                self._run(job)
            except A11yCaptionError as e:
                if not job.stop.is_set():
                    self.speaker.say(str(e))
            except Exception as e:
                self.unexpected.append(e)
                log.exception("job failed")
                self.speaker.say("Something went wrong. Details are in the log.")
            finally:
                with self._slot_lock:
                    self._current = None
                self.jobs_run += 1

    def _load(self, announce: str | None) -> bool:
        self.state = "loading"
        try:
            self.describer.load()
        except A11yCaptionError as e:
            self.state = "failed"
            self.speaker.say(f"{e} Reading text still works.")
            return False
        except Exception as e:
            self.state = "failed"
            self.unexpected.append(e)
            log.exception("model load failed")
            self.speaker.say("The model could not be loaded. Details are in the log.")
            return False
        self.state = "ready"
        if announce:
            missing = self.describer.missing
            self.speaker.say(f"{announce} {missing} Until then I read text only." if missing else announce)
        return True

    def _run(self, job: Job) -> None:
        if job.action == "release_model":
            self.describer.release()
            self.state = "released"
            self.speaker.say("Model released.")
            return
        if job.action == "read_text":
            text, _ = self.describer.read(job.image, "screen")
            if not job.stop.is_set():
                for line in text.splitlines():
                    self.speaker.say(line)
                self.last = text
            return
        if not self.describer.loaded:
            self.speaker.say("Loading the model.")
            if not self._load(announce=None):
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
            self.speaker.say("Alt text copied.")
            self.speaker.say(text)
            return
        text = self.speaker.say_stream(generation).strip()
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
    if not sys.platform.startswith("linux"):
        return
    advice = ("Bind commands such as 'a11y-caption describe --screen' to your desktop's own keyboard "
              "shortcuts instead.")
    if not os.environ.get("DISPLAY"):
        if os.environ.get("WAYLAND_DISPLAY") or os.environ.get("XDG_SESSION_TYPE") == "wayland":
            raise HotkeysUnavailable(f"Global hotkeys cannot work under Wayland. {advice}")
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
    from pynput import keyboard

    from .speech import open_speaker

    check_hotkeys_possible()
    with single_instance():
        speaker = open_speaker(config.speech, echo_when_silent=True)
        agent = Agent(config, speaker)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        mapping = {b.keys: (lambda b=b: agent.press(b)) for b in config.hotkeys}
        listener = keyboard.GlobalHotKeys(mapping)
        listener.start()
        agent.start()
        print(f"a11y-caption: listening for {len(mapping)} hotkeys from {config.path}; Ctrl+C quits.", file=sys.stderr)
        try:
            while not done.wait(0.5):
                if not listener.is_alive():
                    raise HotkeysUnavailable("The hotkey listener stopped; see the log.")
        except KeyboardInterrupt:
            pass
        finally:
            listener.stop()
            agent.close()
            speaker.close()
        print("a11y-caption: stopped.", file=sys.stderr)
    return 0
