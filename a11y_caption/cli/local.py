"""describe and read: by the running agent when one runs (``client``), else in this process, one
image (file or capture) after another."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import replace

from ..errors import A11yCaptionError
from ..safe_text import one_line, path_text, terminal_text
from .client import through_agent, tunes_model
from .common import capture_asked, emit, given, one_voice, settings
from .cues import Cue, cancelled_at_first, load_cue, remember_load_seconds

__all__ = ["describe_images", "describe_inputs", "read_images"]

log = logging.getLogger("a11y_caption")


def describe_inputs(args):
    """(label, loader) pairs: files given, or the one capture asked for. A loader returns the
    image, its task, and a sentence for the user when the image is not what was asked for."""
    from ..capture import capture_window, grab_clipboard_image, grab_screen, permission_note
    from ..images import open_image

    if capture_asked(args) in ("screen", "window") and (note := permission_note()):
        print(f"a11y-caption: {note}", file=sys.stderr)  # before the desktop's one-time dialog shows
    if args.screen:
        return [("screen", lambda: (grab_screen("pointer"), "screen", ""))]
    if args.window:
        def window():
            shot = capture_window()  # the whole screen where the window cannot be isolated: say so
            return shot.image, shot.task, shot.note

        return [("window", window)]
    if args.clipboard:
        return [("clipboard", lambda: (grab_clipboard_image(), "photo", ""))]
    objects = _object_inputs(args)
    if objects is not None:
        return objects
    return [(path_text(path), lambda p=path: (open_image(p), "photo", "")) for path in args.images]


def _object_inputs(args):
    """(label, loader) for the focused object, the one under the pointer, or each unlabeled image
    (captured now, in one go); None where none of them was asked for. A loader gives the shot too."""
    from ..capture import accessible

    source = capture_asked(args)
    if source not in ("focus", "pointer", "images"):
        return None
    if source == "images":
        shots = accessible.capture_images()
        return [(f"Image {n} of {len(shots)}", lambda s=shot: (s.image, "object", "", s))
                for n, shot in enumerate(shots, 1)]
    area = settings(args).capture
    capture = accessible.capture_focus if source == "focus" else accessible.capture_pointer

    def load():
        shot = capture((area.pointer_width, area.pointer_height))
        return shot.image, "object", shot.note, shot

    return [(source, load)]


def _each_image(args, inputs, speaker, handle) -> int:
    """``handle(label, image, task[, shot])`` -> text, for each input in turn (a shot: an object).

    A failing input is one line on stderr and one spoken sentence; the others still run. With
    --copy the last text goes to the clipboard. Returns the exit status.
    """
    failures, last = 0, None
    try:
        for label, load in inputs:
            try:
                image, task, note, *shot = load()
                if note:
                    print(f"a11y-caption: {note}", file=sys.stderr)
                    speaker.say(note)
                last = handle(label, image, task, *shot)
            except A11yCaptionError as e:
                failures += 1
                if args.debug:
                    log.exception("failed; the traceback may quote your screen or clipboard")
                print(f"a11y-caption: {one_line(str(e))}", file=sys.stderr)
                speaker.say(_spoken_error(e))
        if args.copy and last:
            from ..capture.clipboard import copy_text

            copy_text(last)
            print("a11y-caption: copied to the clipboard.", file=sys.stderr)
        speaker.wait()
    finally:
        speaker.close()
    return 1 if failures else 0


def _tuned_model(args, m):
    """The model settings with describe's model flags over them."""
    return replace(
        m, language=given(args.language, m.language), max_new_tokens=given(args.max_new_tokens, m.max_new_tokens),
        temperature=given(args.temperature, m.temperature), num_beams=given(args.beams, m.num_beams),
        device=given(args.device, m.device), dtype=given(args.dtype, m.dtype),
        quantize=given(args.quantize, m.quantize), trust_remote_code=args.trust_remote_code or m.trust_remote_code,
    )


def describe_images(args) -> int:
    from ..describe.describer import Describer
    from ..speech import open_speaker

    if not args.local and not tunes_model(args):
        status = through_agent(args, "describe")
        if status is not None:
            return status
    config = settings(args)
    m = _tuned_model(args, config.model)
    inputs = describe_inputs(args)
    speaker = open_speaker(one_voice(args, config.speech))
    describer = Describer(m)

    def describe(label, image, task, shot=None) -> str:
        from ..describe.objects import facts_of

        kind = "screen" if task in ("screen", "window") else "photo"
        facts = facts_of(shot.obj) if shot is not None and shot.obj is not None else None
        if args.alt_text:  # alt text is the picture's alone: the tree's sentence is not part of it
            task, facts = "alt_text", None
        elif args.prompt:
            task = "question"
        if shot is not None and len(inputs) > 1 and not args.json:
            emit(f"{label}:\n")
            speaker.say(f"{label}.")
        elif len(inputs) > 1 and not args.json:
            _say_name(speaker, label)
        start = time.perf_counter()
        generation, cue = _started(describer, speaker, "" if m.server else m.name, lambda: describer.describe(
            image, task, args.prompt, image_kind=kind, facts=facts))
        chunks = cancelled_at_first(generation, cue)
        if args.json:
            text = speaker.say_stream(chunks).strip()
            row = {"path": label, "text": text, "model": generation.model,
                   "seconds": round(time.perf_counter() - start, 3)}
            if generation.screen_text is not None:  # a grounded description: the OCR lines it was given
                row["text_on_screen"] = generation.screen_text.as_json()
            if shot is not None:  # an object: where it is, and what the tree said of it
                row.update(box=shot.box.as_json(), object=shot.obj.as_json() if shot.obj is not None else None)
            if args.tags:
                row["tags"] = describer.tags(image)
            emit(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            # A server's answer is text from outside: no escape sequence of its reaches the terminal.
            text = speaker.say_stream(_tee(chunks, lambda chunk: emit(terminal_text(chunk)))).strip()
            emit("\n")
        return text

    return _each_image(args, inputs, speaker, describe)


def _say_name(speaker, label: str) -> None:
    """Several files: each description starts with the file's name, printed and said."""
    emit(f"{one_line(label)}:\n")
    speaker.say(f"File {one_line(label.replace(chr(92), '/').rsplit('/', 1)[-1])}:")


def _spoken_error(e: A11yCaptionError) -> str:
    """What is said of a failure: a missing model by its short name (the pull command is printed,
    not spelled out by the voice)."""
    from ..describe.missing import not_here
    from ..errors import ModelNotFound

    return not_here(e) if isinstance(e, ModelNotFound) else str(e)


def _started(describer, speaker, model: str, describe):
    """``describe()`` (which loads the model the first time) with a cue for each wait that lasts:
    loading the model (``model`` "": a model server's), then the first words. Returns the
    generation and the cue its first words cancel."""
    cold = not describer.loaded
    first = (load_cue(model) if model else "Connecting to the model server.") if cold else "Describing."
    cue = Cue(speaker, first).start()
    start = time.perf_counter()
    try:
        generation = describe()
    except BaseException:
        cue.cancel()
        raise
    if cold:
        if describer.captioner is not None and model:
            remember_load_seconds(model, time.perf_counter() - start)
        cue.cancel()  # loaded: what is left to wait for is the first words, or the text read instead
        cue = Cue(speaker, "Describing." if describer.captioner is not None else "Reading.").start()
    return generation, cue


def _tee(chunks, sink):
    for chunk in chunks:
        sink(chunk)
        yield chunk


def read_images(args) -> int:
    from ..describe.describer import Describer
    from ..speech import open_speaker

    if not args.local:
        status = through_agent(args, "read")
        if status is not None:
            return status
    config = settings(args)
    inputs = describe_inputs(args)
    speaker = open_speaker(one_voice(args, config.speech))
    describer = Describer(config.model)  # only its OCR reader is used: no model is loaded

    def read(label, image, task) -> str:
        if len(inputs) > 1 and not args.json:
            _say_name(speaker, label)
        start = time.perf_counter()
        with Cue(speaker, "Reading."):
            text, lines = describer.read(image, "screen" if task in ("screen", "window") else "image")
        if args.json:
            emit(json.dumps({"path": label, "text": text, "lines": lines,
                             "seconds": round(time.perf_counter() - start, 3)}, ensure_ascii=False) + "\n")
        else:
            emit(terminal_text(text) + "\n")
        for line in text.splitlines():
            speaker.say(line)
        return text

    return _each_image(args, inputs, speaker, read)
