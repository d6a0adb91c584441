"""The worker half of the agent: the only thread that runs the model. It loads the model at start
(on a loader thread, so reading text never waits behind it), takes one job at a time (the user's
own before a command's background work), answers it, and releases the model when idle.

``Worker`` is a part of ``Agent`` (agent/core.py), which owns the slots and the lock it reads:
``_job``, ``_background``, ``_current``, ``_closing``, ``_job_waiting``, ``_model_ready``.
"""

from __future__ import annotations

import logging
import time

from ..actions import action as action_of
from ..errors import A11yCaptionError, ModelNotFound, describe_unexpected, log_unexpected
from .jobs import SOMETHING_WRONG, Conversation, Job, end_error, end_stopped, tee
from .keys import ready_lines

__all__ = ["Worker"]

log = logging.getLogger(__name__)


class Worker:
    # -- worker: the only thread that runs the model --------------------------------------------
    def _first_load(self) -> None:
        try:
            self._load(announce=True)
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
                    self.speaker.say(self._said_for(e, job), epoch=job.epoch)
                end_error(job.reply, str(e))  # printed by the command, in full
            except Exception as e:
                self._unexpected(e, "job")
                if job.speak:
                    self.speaker.say(SOMETHING_WRONG, epoch=job.epoch)
                end_error(job.reply, SOMETHING_WRONG)
            finally:
                with self._lock:
                    self._current = None
                # A job that ended without an answer was stopped, or made way for the user's own.
                end_stopped(job.reply, "replaced" if job.replaced else "stop")
                self.jobs_run += 1
                idle_since = time.monotonic()

    @staticmethod
    def _said_for(e: A11yCaptionError, job: Job) -> str:
        """What is said for an error: a missing model by its short name, the command that fetches it
        printed (the log) rather than spelt out by the voice."""
        if not isinstance(e, ModelNotFound):
            return str(e)
        from ..describe.missing import not_here

        log.warning("%s", e)
        return f"{not_here(e)} Alt text needs it." if job.action == "alt_text_to_clipboard" else not_here(e)

    def _unexpected(self, e: Exception, what: str) -> None:
        self.unexpected.append(describe_unexpected(e))
        log_unexpected(log, f"{what} failed", e)

    def _load(self, announce: bool, epoch: int | None = None) -> bool:
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
            self._say_ready()
        return True

    def _say_ready(self) -> None:
        """What it is ready for and the first keys to know; a missing model by its short name, the
        command that fetches it printed (the log), not spoken."""
        from ..describe.missing import spoken_name

        missing = self.describer.missing
        if missing is not None:
            log.warning("%s", missing)
        bindings = self.config.hotkeys if self.keys_reach_us else ()
        for line in ready_lines(bindings, spoken_name(missing.model) if missing is not None else None):
            self.speaker.say(line)

    def _release(self) -> None:
        self.describer.release()
        self.conversation = None  # the last image goes with the model's memory
        self.state = "released"

    def _wait_for_first_load(self, job: Job) -> bool:
        while not self._model_ready.wait(0.1):
            if job.stop.is_set() or self._closing:
                return False
        return True

    def _say_for(self, job: Job, text: str) -> None:
        if job.speak:
            self.speaker.say(text, epoch=job.epoch)

    def _run(self, job: Job) -> None:
        if job.action == "read_text":  # OCR only: never waits for the model
            self._read_text(job)
            return
        if not self._wait_for_first_load(job):
            return
        if job.action == "release_model":
            self._release()
            self._say_for(job, "Model released.")
            if job.reply is not None:
                job.reply.done()
            return
        if not self.describer.loaded:
            self._say_for(job, "Loading the model.")
            if not self._load(announce=False, epoch=job.epoch if job.speak else -1) or job.stop.is_set():
                return
        if job.action == "describe_images":
            self._describe_images(job)
            return
        image, task, question, history, image_kind, screen_text = self._what_to_ask(job)
        facts = job.facts if job.action != "ask" and task != "alt_text" else None  # alt text: the picture's alone
        start = time.perf_counter()
        generation = self.describer.describe(image, task, question, job.stop, history, image_kind, screen_text,
                                             facts)
        alt_text = job.action == "alt_text_to_clipboard"
        text = generation.collect().text if alt_text else self._spoken(job, generation)  # alt text: whole, then said
        self._log_generation(job, generation, start)
        if job.stop.is_set() or not (text or alt_text):
            return
        if alt_text:
            self._copy_alt_text(job, text)
        if job.background:  # the index's work: neither the last answer nor a conversation of the user's
            job.reply.done(text=text, model=generation.model, seconds=round(time.perf_counter() - start, 3))
            return
        self.last = text
        self._remember(job, image, task, question, image_kind, generation, text, facts)
        if job.reply is not None:
            grounded = {} if generation.screen_text is None else {"text_on_screen": generation.screen_text.as_json()}
            if job.shots:  # an object: where it is and what the tree said of it
                grounded.update(_object_json(job.shots[0]))
            job.reply.done(text=text, model=generation.model, seconds=round(time.perf_counter() - start, 3),
                           **grounded)

    def _describe_images(self, job: Job) -> None:
        """Each image of describe_images in turn, "Image 2 of 5." first; Stop ends the run, and the
        last one described is what repeat says."""
        from ..describe.objects import facts_of

        rows, start = [], time.perf_counter()
        for number, shot in enumerate(job.shots, 1):
            title = f"Image {number} of {len(job.shots)}."
            self._say_for(job, title)
            if job.reply is not None:
                job.reply.chunk(title + " ")
            facts, began = facts_of(shot.obj), time.perf_counter()
            generation = self.describer.describe(shot.image, "object", None, job.stop, facts=facts)
            text = self._spoken(job, generation)
            self._log_generation(job, generation, began)
            if job.stop.is_set():
                return
            if job.reply is not None:
                job.reply.chunk("\n")
            self.last = f"{title} {text}"
            self._remember(job, shot.image, "object", None, "photo", generation, text, facts)
            rows.append({"text": text, "model": generation.model, **_object_json(shot),
                         **({} if generation.screen_text is None
                            else {"text_on_screen": generation.screen_text.as_json()})})
        if job.reply is not None:
            job.reply.done(text="\n".join(f"Image {i} of {len(rows)}. {r['text']}" for i, r in enumerate(rows, 1)),
                           model=rows[-1]["model"] if rows else "", images=rows,
                           seconds=round(time.perf_counter() - start, 3))

    def _read_text(self, job: Job) -> None:
        text, lines = self.describer.read(job.image, "screen")
        if job.stop.is_set():
            return
        for line in text.splitlines():
            self._say_for(job, line)
            if job.reply is not None:
                job.reply.chunk(line + "\n")
        if not job.background:  # the index's work is not what the user heard last
            self.last = text
        if job.reply is not None:
            job.reply.done(text=text, lines=lines)

    def _copy_alt_text(self, job: Job, text: str) -> None:
        self.clipboard.copy_text(text)
        self._say_for(job, "Alt text copied.")
        self._say_for(job, text)
        if job.speak:
            self.speaker.braille(text, epoch=job.epoch)

    def _spoken(self, job: Job, generation) -> str:
        """The answer, said (and sent to the command) as the model writes it."""
        chunks = tee(generation, job.reply.chunk) if job.reply is not None else generation
        if job.speak:
            return self.speaker.say_stream(chunks, epoch=job.epoch).strip()
        return "".join(chunks).strip()

    def _remember(self, job: Job, image, task, question, image_kind, generation, text: str, facts=None) -> None:
        """The conversation a follow-up question continues."""
        if job.action == "ask":
            self.conversation.turns.append((question, text))
            return
        from ..captioner.base import Request
        from ..captioner.prompts import prompt_for

        # The prompt the model was actually given (grounded: with the OCR lines), so that a
        # follow-up's conversation starts with the same tokens and reuses the kept cache.
        asked = prompt_for(Request(image, task, question, self.config.model.language or None,
                                   screen_text=generation.screen_text, facts=facts.facts if facts else ()))
        # Follow-ups check their quotes against the first turn's text: the lines in its prompt, or
        # what OCR read to check its quotes (ground_in_ocr "check").
        self.conversation = Conversation(image, image_kind, [(asked, text)],
                                         generation.screen_text or generation.checked_against)

    def _what_to_ask(self, job: Job):
        """(image, task, question, history, image kind, screen text) for a job; a follow-up asks about
        the last image, grounded in the text of the first turn."""
        if job.action != "ask":
            what = action_of(job.action)
            task = "question" if job.prompt and job.action != "alt_text_to_clipboard" else what.task
            kind = what.image_kind
            return job.image, job.task or task, job.prompt or None, (), kind, None
        why = self._cannot_ask()
        if why is not None:
            raise A11yCaptionError(why)
        c = self.conversation
        if not self.describer.captioner.answers_questions:  # says so, and gives what it can: its caption
            return c.image, "question", job.prompt, (), c.image_kind, None
        return c.image, "question", job.prompt, c.history(), c.image_kind, c.screen_text

    @staticmethod
    def _log_generation(job: Job, generation, start: float) -> None:
        # Counts and timings only: what was on screen is never logged.
        log.info("%s by %s: %d new tokens in %.2f s%s", job.action, generation.model, generation.new_tokens,
                 time.perf_counter() - start, " (stopped)" if job.stop.is_set() else "")


def _object_json(shot) -> dict:
    """An object's box on the screen and what the tree said of it (None: no tree answered)."""
    return {"box": shot.box.as_json(), "object": shot.obj.as_json() if shot.obj is not None else None}
