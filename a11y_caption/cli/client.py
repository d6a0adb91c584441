"""The client of the running agent: describe and read by its warm model, ask, and the commands
only a running agent can do (stop, repeat, copy-last, release, status). Its replies are read by
``agent.client.read_reply`` and printed by ``show_reply``, as the in-process commands print."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from ..errors import A11yCaptionError
from ..safe_text import one_line, path_text, terminal_text
from .common import capture_asked, emit, speaks

__all__ = ["agent_only", "ask", "keys", "show_reply", "through_agent", "tunes_model"]

log = logging.getLogger("a11y_caption")

_MODEL_FLAGS = ("model", "server", "device", "dtype", "quantize", "max_new_tokens", "temperature", "beams", "language")


def tunes_model(args) -> bool:
    """Flags that choose or tune the model: the agent keeps its own, so these run in-process."""
    return any(getattr(args, name, None) is not None for name in _MODEL_FLAGS) or args.trust_remote_code


def through_agent(args, op: str) -> int | None:
    """describe/read by the running agent; None when no agent runs (the caller works in-process).
    An agent that runs but is busy or stuck is said: a second model is never loaded behind it."""
    from ..agent.client import request
    from ..agent.protocol import MAX_IMAGE_BYTES, AgentBusy, AgentNotRunning

    speak = command_speaks(args)  # the agent speaks, or the screen reader reads what is printed: one voice
    capture = capture_asked(args)
    jobs = [(capture, None)] if capture else [("image", path) for path in args.images]
    fields = {"speak": speak}
    if op == "describe":
        fields["task"] = "alt_text" if args.alt_text else "question" if args.prompt else None
        fields["prompt"] = args.prompt
    failures, last = 0, None
    for number, (source, path) in enumerate(jobs):
        label = path_text(path) if path else source
        try:
            image = _image_bytes(path, MAX_IMAGE_BYTES) if path else None
            working = Working()
            messages = request(op, source=source, image=image, name=path_text(Path(path).name) if path else None,
                               several=len(jobs) > 1, on_alive=working, **fields)
            tags = _agent_tags if op == "describe" and getattr(args, "tags", False) else None
            text = show_reply(args, messages, label, len(jobs) > 1, more=tags, working=working)
        except AgentNotRunning as e:
            if number == 0:
                return None
            raise A11yCaptionError("The agent stopped answering.") from e
        except AgentBusy as e:
            raise A11yCaptionError(f"{e} Or add --local to {op} in this command instead "
                                   "(it loads a model of its own).") from e
        except A11yCaptionError as e:
            failures += 1
            if args.debug:
                log.exception("failed; the traceback may quote your screen or clipboard")
            print(f"a11y-caption: {one_line(str(e))}", file=sys.stderr)
            continue
        if text is None:
            print("a11y-caption: stopped.", file=sys.stderr)
            return 1
        last = text
    if args.copy and last:
        from ..capture.clipboard import copy_text

        copy_text(last)
        print("a11y-caption: copied to the clipboard.", file=sys.stderr)
    return 1 if failures else 0


class Working:
    """The wait's cue for what the agent does, on stderr (the agent speaks its own): said once, at
    the agent's first "still at work" message before any text comes. A frozen agent sends none and
    is said as such instead; a pause in the middle of an answer says nothing."""

    def __init__(self):
        self.quiet = False

    def __call__(self) -> None:
        if not self.quiet:
            self.quiet = True
            print("a11y-caption: The agent is working on it.", file=sys.stderr, flush=True)


def command_speaks(args) -> bool:
    """Whether the agent speaks what this command asked for (``speaks``: one voice at a time)."""
    from dataclasses import replace

    from ..config import load_config

    # The agent speaks through its own engine: only this command's --speech none silences it.
    speech = replace(load_config(getattr(args, "config", None)).speech, engine=getattr(args, "speech", None) or "auto")
    return speaks(args, speech)


def _image_bytes(path: str, limit: int) -> bytes:
    from ..errors import ImageError
    from ..images import image_file

    p = image_file(path)
    if p.stat().st_size > limit:
        raise ImageError(f"{p.name} is larger than {limit // 2**20} MB, too large to send to the agent; "
                         "use --local.")
    return p.read_bytes()


def _agent_tags(text: str) -> dict:
    """describe --tags through the agent: a follow-up question about the image it just described;
    a model that cannot answer questions (BLIP) has its caption split instead."""
    from ..agent.client import read_reply, request
    from ..captioner.prompts import TAGS_PROMPT
    from ..describe.tags import tags_from

    try:
        reply = read_reply(request("ask", question=TAGS_PROMPT, speak=False))
        answer = None if reply.stopped else reply.text
    except A11yCaptionError:
        answer = None
    return {"tags": tags_from(answer if answer is not None else text.partition("\nText found:")[0])}


def show_reply(args, messages, label: str, several: bool, label_key: str = "path", more=None,
               working: Working | None = None) -> str | None:
    """Print an agent's streamed reply as the in-process commands do (``--json``: one object whose
    ``label_key`` is ``label``, plus the fields ``more(text)`` returns). Returns the whole text, or
    None when the request was stopped (by Stop or a newer request)."""
    from ..agent.client import read_reply

    streaming = not getattr(args, "json", False)
    if streaming and several:
        emit(f"{one_line(label)}:\n")
    shown = []

    def show(text: str) -> None:
        if working is not None:
            working.quiet = True  # the text has started: no cue after it
        shown.append(text)
        if streaming:
            emit(terminal_text(text))

    try:
        answer = read_reply(messages, show)
    except A11yCaptionError:
        if streaming and shown:
            emit("\n")
        raise
    if answer.stopped:
        if streaming and shown:
            emit("\n")
        return None
    text = answer.text
    if not streaming:
        emit(json.dumps(_reply_row(answer, label, label_key, more), ensure_ascii=False) + "\n")
    elif not shown and text:
        emit(terminal_text(text) + "\n")
    elif not "".join(shown).endswith("\n"):
        emit("\n")
    return text


def _reply_row(answer, label: str, label_key: str, more) -> dict:
    """``--json``: the reply as the in-process commands write it."""
    text, done = answer.text, answer.done
    row = {label_key: label, "text": text.strip(), "model": done.get("model"), "seconds": done.get("seconds")}
    if done.get("text_on_screen") is not None:
        row["text_on_screen"] = done["text_on_screen"]
    for key in ("box", "object", "images"):  # an object: where it is, what the tree said of it
        if key in done:
            row[key] = done[key]
    if done.get("lines") is not None:
        row = {label_key: label, "text": text, "lines": done["lines"], "seconds": done.get("seconds")}
    if more is not None:
        row.update(more(text))
    return row


def ask(args) -> int:
    from ..agent.client import request
    from ..agent.protocol import AgentNotRunning

    try:
        box = {"box": True} if not (args.question or "").strip() else {}  # the agent's question box asks
        working = Working() if not box else None  # a question box is no wait of the agent's
        messages = request("ask", question=args.question, speak=command_speaks(args), on_alive=working, **box)
        text = show_reply(args, messages, args.question or "", False, label_key="question", working=working)
    except AgentNotRunning as e:
        raise A11yCaptionError(f"{e} Start it with: a11y-caption run") from e
    if text is None:
        print("a11y-caption: stopped.", file=sys.stderr)
        return 1
    return 0


def keys(args) -> int:
    """The hotkeys in words: said by the running agent and printed here; without an agent, from
    the settings file, printed and said by this command (one voice: ``speaks``)."""
    from ..agent.client import request
    from ..agent.protocol import AgentNotRunning

    try:
        return 0 if show_reply(args, request("keys", speak=command_speaks(args)), "", False) is not None else 1
    except AgentNotRunning:
        pass
    from ..agent.keys import key_list
    from ..config import load_config
    from ..speech import open_speaker
    from .common import one_voice

    config = load_config(args.config)
    lines = key_list(config.hotkeys) or ["No keys are bound."]
    emit("".join(f"{line}\n" for line in lines))
    speaker = open_speaker(one_voice(args, config.speech))
    try:
        for line in lines:
            speaker.say(line)
        speaker.wait()
    finally:
        speaker.close()
    return 0


def agent_only(args) -> int:
    """stop, repeat and status: things only a running agent can do."""
    from ..agent.client import read_reply, request
    from ..agent.protocol import AgentNotRunning

    op = {"stop": "stop", "repeat": "repeat", "status": "status", "copy-last": "copy_last",
          "release": "release"}[args.command]
    try:
        messages = request(op, **({"speak": command_speaks(args)} if op == "repeat" else {}))
        if op == "repeat":
            return 0 if show_reply(args, messages, "", False) is not None else 1
        reply = read_reply(messages).done
    except AgentNotRunning as e:
        if op == "status":
            print("not running")
            return 1
        raise A11yCaptionError(f"{e} Start it with: a11y-caption run") from e
    if op == "status":
        if args.json:
            emit(json.dumps({k: v for k, v in reply.items() if k != "type"}) + "\n")
        else:
            print(f"running: {reply.get('state')}, model {reply.get('model')}")
    return 0
