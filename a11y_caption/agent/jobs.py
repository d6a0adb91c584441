"""What moves between the agent's threads: a press, a job for the worker, the conversation kept
for follow-up questions, and the ends a command's reply can have."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from PIL import Image

from ..captioner.screen_text import ScreenText

__all__ = ["MAX_TURNS", "NOTHING_YET", "SOMETHING_WRONG", "Conversation", "Job", "Press", "end_error",
           "end_stopped", "tee"]

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
    title: str = ""  # said before the cue: "File cat.png:" for one of several files a command sent


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
    # What the accessibility tree said of the object in ``image`` (describe/objects.ObjectFacts), and
    # the objects captured (capture/accessible.ObjectShot): one, or each image of describe_images.
    facts: object = None
    shots: list = field(default_factory=list, repr=False)


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


def end_stopped(reply, reason: str = "stop") -> None:
    if reply is not None:
        reply.stopped(reason)


def end_error(reply, message: str) -> None:
    if reply is not None:
        reply.error(message)


def tee(chunks, sink):
    for chunk in chunks:
        sink(chunk)
        yield chunk
