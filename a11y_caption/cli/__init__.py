"""Command line: a thin layer over the library. Results go to stdout, every message to stderr."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from .. import __version__
from ..errors import A11yCaptionError, describe_unexpected
from ..safe_text import one_line, path_text, terminal_text

__all__ = ["main"]

log = logging.getLogger("a11y_caption")


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line and exit status 2, like every other error: a listener should not
    have to hear the whole usage text to learn which flag was wrong."""

    def error(self, message: str):
        self.exit(2, f"a11y-caption: {message} (see {self.prog} --help)\n")


# Flags that set a hotkeys.toml setting accept exactly what the setting accepts (config.RULES).
_FLAG_SETTINGS = {
    "max_new_tokens": ("model", "max_new_tokens"), "temperature": ("model", "temperature"),
    "beams": ("model", "num_beams"), "device": ("model", "device"),
    "rate": ("speech", "rate"), "volume": ("speech", "volume"),
    "new_tokens": ("model", "max_new_tokens"),  # bench
    "server": ("model", "server"),
}
# Comma-separated lists of such values.
_LIST_FLAG_SETTINGS = {"image_tokens": ("model", "screen_image_tokens")}  # bench


# Flags that are text for a model, a voice or a search (not file names, which may be any bytes).
_TEXT_FLAGS = ("prompt", "question", "language", "voice", "model", "server", "query")
_LIST_FLAG_CHOICES = {"precisions": ("int8", "int4", "bf16", "fp32")}


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with one line (status 2) naming the first flag whose value its setting would refuse."""
    from ..config import setting_problem

    def refuse(dest: str, what: str) -> None:
        parser.exit(2, f"a11y-caption: --{dest.replace('_', '-')} {what}\n")

    for dest in _TEXT_FLAGS:  # undecodable bytes in argv arrive as lone surrogates: no model, file or socket takes them
        value = getattr(args, dest, None)
        if isinstance(value, str) and not _is_text(value):
            name = dest if dest in ("question", "query") else f"--{dest.replace('_', '-')}"
            parser.exit(2, f"a11y-caption: {name} is not valid text (check the terminal's character encoding)\n")
    for dest, choices in _LIST_FLAG_CHOICES.items():
        for piece in [] if getattr(args, dest, None) is None else getattr(args, dest).split(","):
            if piece not in choices:
                refuse(dest, f"must be some of {', '.join(choices)}, separated by commas, not {one_line(piece)!r}")
    given = [(dest, setting, getattr(args, dest)) for dest, setting in _FLAG_SETTINGS.items()
             if getattr(args, dest, None) is not None]
    for dest, setting in _LIST_FLAG_SETTINGS.items():
        for piece in [] if getattr(args, dest, None) is None else getattr(args, dest).split(","):
            try:
                given.append((dest, setting, int(piece)))
            except ValueError:
                refuse(dest, f"must be whole numbers separated by commas, not {piece!r}")
    for dest, (section, key), value in given:
        problem = setting_problem(section, key, value)
        if problem:
            refuse(dest, f"{problem}, not {value!r}")


def _parser() -> argparse.ArgumentParser:
    from ..config import DTYPES, QUANTIZE_MODES, SPEECH_ENGINES

    p = _Parser(
        prog="a11y-caption",
        description="Describe screens and images aloud with a local vision model. Nothing leaves this computer "
                    "unless you configure a model server (--server), and then only to that server.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp, *, model: bool = True):
        sp.add_argument("--config", metavar="FILE", help="settings file (default: your hotkeys.toml, else the packaged one)")
        if model:
            sp.add_argument("--model", metavar="ID_OR_DIR", help="hub id, alias (blip-base, ...), local folder, or 'ocr'")
            sp.add_argument("--server", metavar="URL", help="describe with a model on this OpenAI-compatible server, "
                            "e.g. http://127.0.0.1:11434/v1 (--model: its name there)")
        sp.add_argument("--speech", metavar="ENGINE", choices=SPEECH_ENGINES,
                        help=", ".join(SPEECH_ENGINES) + " (auto: your screen reader if one runs, else the system voice)")
        sp.add_argument("--no-speak", action="store_true", help="print only (same as --speech none)")
        sp.add_argument("--voice", help="voice id or name")
        sp.add_argument("--rate", type=int, help="words per minute, 50 to 600")
        sp.add_argument("--volume", type=float, help="0.0 to 1.0")
        sp.add_argument("--transcript", metavar="FILE", help="append every spoken sentence to FILE")

    def sources(sp):
        sp.add_argument("--local", action="store_true",
                        help="work in this process even when the agent is running (it loads the model itself)")
        sp.add_argument("images", nargs="*", metavar="IMAGE", help="image files")
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--screen", action="store_true", help="capture the screen instead of reading files")
        g.add_argument("--window", action="store_true", help="capture the active window")
        g.add_argument("--clipboard", action="store_true", help="use the image on the clipboard")

    d = sub.add_parser("describe", help="describe images (or the screen) aloud")
    sources(d)
    common(d)
    d.add_argument("--prompt", metavar="TEXT", help="ask this instead of the default description (chat models)")
    d.add_argument("--alt-text", action="store_true", help="write one concise sentence of alt text")
    d.add_argument("--language", help="answer language for chat models, e.g. German")
    d.add_argument("--copy", action="store_true", help="copy the (last) result to the clipboard")
    d.add_argument("--json", action="store_true", help="one JSON object per image: path, text, model, seconds "
                   "(and text_on_screen, the OCR lines a grounded description was given)")
    d.add_argument("--max-new-tokens", type=int, metavar="N", help="longest description in tokens, 1 to 4096")
    d.add_argument("--temperature", type=float, metavar="T", help="0 for greedy decoding, up to 2")
    d.add_argument("--beams", type=int, metavar="N", help="beam search width, 1 to 8 (1 streams speech)")
    d.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    d.add_argument("--dtype", choices=DTYPES)
    d.add_argument("--quantize", choices=QUANTIZE_MODES, help="auto: int8 on the CPU, none on a GPU")
    d.add_argument("--trust-remote-code", action="store_true", help="allow code shipped with the model (only if you trust it)")
    d.add_argument("--tags", action="store_true", help="with --json: add tags, a list of lowercase words for what is in it")

    r = sub.add_parser("read", help="read the text of images (or the screen) exactly, with OCR")
    sources(r)
    common(r, model=False)
    r.add_argument("--copy", action="store_true", help="copy the text to the clipboard")
    r.add_argument("--json", action="store_true", help="one JSON object per image: path, text, lines, seconds")

    run = sub.add_parser("run", help="start the hotkey agent")
    common(run)

    a = sub.add_parser("ask", help="ask the running agent about what it described last")
    a.add_argument("question")
    a.add_argument("--no-speak", action="store_true", help="print only; the agent stays silent")
    a.add_argument("--json", action="store_true", help="one JSON object: question, text, model, seconds")
    sub.add_parser("stop", help="make the running agent stop speaking and generating")
    sub.add_parser("copy-last", help="the running agent copies its last answer to the clipboard")
    sub.add_parser("release", help="the running agent frees the model's memory (the next description reloads it)")
    rep = sub.add_parser("repeat", help="the running agent says its last answer again (and it is printed)")
    rep.add_argument("--no-speak", action="store_true", help="print only")
    st = sub.add_parser("status", help="is an agent running, and with which model")
    st.add_argument("--json", action="store_true")

    m = sub.add_parser("models", help="download or list models")
    msub = m.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    pull = msub.add_parser("pull", help="download a model (configs, tokenizer and safetensors weights only)")
    pull.add_argument("model", nargs="?", help="hub id or alias (default: the configured model)")
    pull.add_argument("--config", metavar="FILE")
    mlist = msub.add_parser("list", help="models on this computer, with their size on disk (or on --server)")
    mlist.add_argument("--server", metavar="URL", help="list the models of this OpenAI-compatible server instead")
    mlist.add_argument("--config", metavar="FILE", help="settings file (for api_key_env)")
    rm = msub.add_parser("remove", help="delete a downloaded model and its int8 copy")
    rm.add_argument("model", help="hub id, alias or folder")

    c = sub.add_parser("config", help="show or check the settings file")
    csub = c.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    csub.add_parser("path", help="print where your hotkeys.toml is read from")
    check = csub.add_parser("check", help="check a settings file and list its hotkeys")
    check.add_argument("file", nargs="?")

    from ..desktop import autostart, shortcuts

    shortcuts.add_parser(sub)
    autostart.add_parser(sub)

    b = sub.add_parser("bench", help="time to first spoken word and memory on full-size models (slow; minutes)")
    b.add_argument("--models", default="qwen2-vl-2b,blip-base", help="comma-separated: qwen2-vl-2b, blip-base")
    b.add_argument("--json", action="store_true", help="one JSON object per line")
    b.add_argument("--cache-dir", metavar="DIR", help="where full-size random replicas are built and kept")
    b.add_argument("--new-tokens", type=int, default=20, metavar="N", help="tokens generated per run (default 20)")
    b.add_argument("--image-tokens", default="64,128,256,512", metavar="LIST",
                   help="image-token budgets to time for chat models (default 64,128,256,512)")
    b.add_argument("--precisions", default="int8,int4,bf16,fp32", metavar="LIST", help="default int8,int4,bf16,fp32")
    b.add_argument("--no-baseline", action="store_true", help="skip the slow naive baseline")
    b.add_argument("--plot", metavar="PNG", help="also plot time to first word against image tokens (needs matplotlib)")
    b.add_argument("--report", metavar="MD", help="also write the results as Markdown (docs/PERFORMANCE.md)")
    b.add_argument("--index", action="store_true", help="time the folder index instead: images per minute, "
                   "batched or not, and a second unchanged run over 1,000 files")
    from .index import add_parsers as add_index_parsers

    add_index_parsers(sub, common)  # index, search, show, export
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _check_flags(parser, args)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
        format="a11y-caption: %(message)s", stream=sys.stderr,
    )
    try:
        handler = {"describe": _describe, "read": _read, "run": _run, "models": _models, "config": _config,
                   "bench": _bench, "ask": _ask, "stop": _agent_only, "repeat": _agent_only,
                   "copy-last": _agent_only, "release": _agent_only, "status": _agent_only,
                   "shortcuts": _shortcuts, "autostart": _autostart, **_index_handlers()}[args.command]
        return handler(args)
    except A11yCaptionError as e:
        if args.debug:
            log.exception("failed; the traceback may quote your screen or clipboard")
        print(f"a11y-caption: {one_line(str(e))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("a11y-caption: stopped.", file=sys.stderr)
        return 130
    except Exception as e:  # a bug. Its message may quote the screen or clipboard: say only where it was.
        where = describe_unexpected(e)
        if args.debug:
            log.exception("unexpected error")
            print(f"a11y-caption: unexpected error ({where}); the traceback above may contain text from "
                  "your screen or clipboard.", file=sys.stderr)
        else:
            print(f"a11y-caption: unexpected error ({where}); run with --debug for details.", file=sys.stderr)
        return 1


def _index_handlers() -> dict:
    from .index import HANDLERS

    return HANDLERS


def _settings(args):
    from ..config import load_config

    config = load_config(getattr(args, "config", None))
    speech = config.speech
    engine = "none" if getattr(args, "no_speak", False) else _given(args.speech, speech.engine)
    speech = replace(speech, engine=engine, voice=_given(args.voice, speech.voice), rate=_given(args.rate, speech.rate),
                     volume=_given(args.volume, speech.volume), transcript=_given(args.transcript, speech.transcript))
    model = config.model
    if getattr(args, "model", None):
        model = replace(model, name=args.model)
    if getattr(args, "server", None) is not None:
        model = replace(model, server=args.server)
    return replace(config, speech=speech, model=model)


def _given(flag, setting):
    """The flag's value when it was given, else the setting: 0 and "" are values, not "not given"."""
    return setting if flag is None else flag


def _inputs(args):
    """(label, loader) pairs: files given, or the one capture asked for. A loader returns the
    image, its task, and a sentence for the user when the image is not what was asked for."""
    from ..capture import capture_window, grab_clipboard_image, grab_screen, permission_note
    from ..images import open_image

    if _capture_asked(args) in ("screen", "window") and (note := permission_note()):
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
    return [(path_text(path), lambda p=path: (open_image(p), "photo", "")) for path in args.images]


def _capture_asked(args) -> str | None:
    """"screen", "window" or "clipboard" when a capture was asked for, None for image files."""
    capture = "screen" if args.screen else "window" if args.window else "clipboard" if args.clipboard else None
    if capture is None and not args.images:
        raise A11yCaptionError("Give at least one image file, or --screen, --window or --clipboard.")
    return capture


def _emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _each_image(args, inputs, speaker, handle) -> int:
    """``handle(label, image, task)`` -> text, for each input in turn.

    A failing input is one line on stderr and one spoken sentence; the others still run. With
    --copy the last text goes to the clipboard. Returns the exit status.
    """
    failures, last = 0, None
    try:
        for label, load in inputs:
            try:
                image, task, note = load()
                if note:
                    print(f"a11y-caption: {note}", file=sys.stderr)
                    speaker.say(note)
                last = handle(label, image, task)
            except A11yCaptionError as e:
                failures += 1
                if args.debug:
                    log.exception("failed; the traceback may quote your screen or clipboard")
                print(f"a11y-caption: {one_line(str(e))}", file=sys.stderr)
                speaker.say(str(e))
        if args.copy and last:
            from ..capture.clipboard import copy_text

            copy_text(last)
            print("a11y-caption: copied to the clipboard.", file=sys.stderr)
        speaker.wait()
    finally:
        speaker.close()
    return 1 if failures else 0


def _describe(args) -> int:
    from ..describe.describer import Describer
    from ..speech import open_speaker

    if not args.local and not _tunes_model(args):
        status = _through_agent(args, "describe")
        if status is not None:
            return status
    config = _settings(args)
    m = config.model
    m = replace(
        m, language=_given(args.language, m.language), max_new_tokens=_given(args.max_new_tokens, m.max_new_tokens),
        temperature=_given(args.temperature, m.temperature), num_beams=_given(args.beams, m.num_beams),
        device=_given(args.device, m.device), dtype=_given(args.dtype, m.dtype),
        quantize=_given(args.quantize, m.quantize), trust_remote_code=args.trust_remote_code or m.trust_remote_code,
    )
    inputs = _inputs(args)
    speaker = open_speaker(config.speech)
    describer = Describer(m)

    def describe(label, image, task) -> str:
        kind = "screen" if task in ("screen", "window") else "photo"
        if args.alt_text:
            task = "alt_text"
        elif args.prompt:
            task = "question"
        start = time.perf_counter()
        generation = describer.describe(image, task, args.prompt, image_kind=kind)
        if args.json:
            text = speaker.say_stream(generation).strip()
            row = {"path": label, "text": text, "model": generation.model,
                   "seconds": round(time.perf_counter() - start, 3)}
            if generation.screen_text is not None:  # a grounded description: the OCR lines it was given
                row["text_on_screen"] = generation.screen_text.as_json()
            if args.tags:
                row["tags"] = describer.tags(image)
            _emit(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            if len(inputs) > 1:
                _emit(f"{one_line(label)}:\n")
            # A server's answer is text from outside: no escape sequence of its reaches the terminal.
            text = speaker.say_stream(_tee(generation, lambda chunk: _emit(terminal_text(chunk)))).strip()
            _emit("\n")
        return text

    return _each_image(args, inputs, speaker, describe)


def _tee(chunks, sink):
    for chunk in chunks:
        sink(chunk)
        yield chunk


def _read(args) -> int:
    from ..describe.describer import Describer
    from ..speech import open_speaker

    if not args.local:
        status = _through_agent(args, "read")
        if status is not None:
            return status
    config = _settings(args)
    inputs = _inputs(args)
    speaker = open_speaker(config.speech)
    describer = Describer(config.model)  # only its OCR reader is used: no model is loaded

    def read(label, image, task) -> str:
        start = time.perf_counter()
        text, lines = describer.read(image, "screen" if task in ("screen", "window") else "image")
        if args.json:
            _emit(json.dumps({"path": label, "text": text, "lines": lines,
                              "seconds": round(time.perf_counter() - start, 3)}, ensure_ascii=False) + "\n")
        else:
            _emit((f"{one_line(label)}:\n" if len(inputs) > 1 else "") + terminal_text(text) + "\n")
        for line in text.splitlines():
            speaker.say(line)
        return text

    return _each_image(args, inputs, speaker, read)


# -- through the running agent (warm model, one voice, one Stop) ------------------------------

_MODEL_FLAGS = ("model", "server", "device", "dtype", "quantize", "max_new_tokens", "temperature", "beams", "language")


def _tunes_model(args) -> bool:
    """Flags that choose or tune the model: the agent keeps its own, so these run in-process."""
    return any(getattr(args, name, None) is not None for name in _MODEL_FLAGS) or args.trust_remote_code


def _through_agent(args, op: str) -> int | None:
    """describe/read by the running agent; None when no agent runs (the caller works in-process).
    An agent that runs but is busy or stuck is said: a second model is never loaded behind it."""
    from ..agent.control import MAX_IMAGE_BYTES, AgentBusy, AgentNotRunning, request

    speak = not (args.no_speak or args.speech == "none")
    capture = _capture_asked(args)
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
            messages = request(op, source=source, image=image, name=path_text(Path(path).name) if path else None,
                               **fields)
            tags = _agent_tags if op == "describe" and getattr(args, "tags", False) else None
            text = _show_reply(args, messages, label, len(jobs) > 1, more=tags)
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
    from ..agent.control import read_reply, request
    from ..captioner.prompts import TAGS_PROMPT
    from ..describe.tags import tags_from

    try:
        reply = read_reply(request("ask", question=TAGS_PROMPT, speak=False))
        answer = None if reply.stopped else reply.text
    except A11yCaptionError:
        answer = None
    return {"tags": tags_from(answer if answer is not None else text.partition("\nText found:")[0])}


def _show_reply(args, messages, label: str, several: bool, label_key: str = "path", more=None) -> str | None:
    """Print an agent's streamed reply as the in-process commands do (``--json``: one object whose
    ``label_key`` is ``label``, plus the fields ``more(text)`` returns). Returns the whole text, or
    None when the request was stopped (by Stop or a newer request)."""
    from ..agent.control import read_reply

    streaming = not getattr(args, "json", False)
    if streaming and several:
        _emit(f"{one_line(label)}:\n")
    shown = []

    def show(text: str) -> None:
        shown.append(text)
        if streaming:
            _emit(terminal_text(text))

    try:
        answer = read_reply(messages, show)
    except A11yCaptionError:
        if streaming and shown:
            _emit("\n")
        raise
    if answer.stopped:
        if streaming and shown:
            _emit("\n")
        return None
    text, done = answer.text, answer.done
    if not streaming:
        row = {label_key: label, "text": text.strip(), "model": done.get("model"), "seconds": done.get("seconds")}
        if done.get("text_on_screen") is not None:
            row["text_on_screen"] = done["text_on_screen"]
        if done.get("lines") is not None:
            row = {label_key: label, "text": text, "lines": done["lines"], "seconds": done.get("seconds")}
        if more is not None:
            row.update(more(text))
        _emit(json.dumps(row, ensure_ascii=False) + "\n")
    elif not shown and text:
        _emit(terminal_text(text) + "\n")
    elif not "".join(shown).endswith("\n"):
        _emit("\n")
    return text


def _ask(args) -> int:
    from ..agent.control import AgentNotRunning, request

    try:
        messages = request("ask", question=args.question, speak=not args.no_speak)
        text = _show_reply(args, messages, args.question, False, label_key="question")
    except AgentNotRunning as e:
        raise A11yCaptionError(f"{e} Start it with: a11y-caption run") from e
    if text is None:
        print("a11y-caption: stopped.", file=sys.stderr)
        return 1
    return 0


def _agent_only(args) -> int:
    """stop, repeat and status: things only a running agent can do."""
    from ..agent.control import AgentNotRunning, read_reply, request

    op = {"stop": "stop", "repeat": "repeat", "status": "status", "copy-last": "copy_last",
          "release": "release"}[args.command]
    try:
        messages = request(op, **({"speak": not args.no_speak} if op == "repeat" else {}))
        if op == "repeat":
            return 0 if _show_reply(args, messages, "", False) is not None else 1
        reply = read_reply(messages).done
    except AgentNotRunning as e:
        if op == "status":
            print("not running")
            return 1
        raise A11yCaptionError(f"{e} Start it with: a11y-caption run") from e
    if op == "status":
        if args.json:
            _emit(json.dumps({k: v for k, v in reply.items() if k != "type"}) + "\n")
        else:
            print(f"running: {reply.get('state')}, model {reply.get('model')}")
    return 0


def _run(args) -> int:
    from ..agent import run_agent

    return run_agent(_settings(args))


def _models(args) -> int:
    from ..models import KNOWN_MODELS, list_local, pull

    if args.models_command == "pull":
        ref = args.model
        if not ref:
            from ..config import load_config

            ref = load_config(args.config).model.name
        try:
            folder = pull(ref)
        except Exception as e:
            if isinstance(e, A11yCaptionError):
                raise
            raise A11yCaptionError(f"Could not download {ref} ({type(e).__name__}); check the name and your connection.") from e
        print(folder)
        return 0
    if args.models_command == "remove":
        from ..captioner.factory import remove_model

        for folder in remove_model(args.model):
            print(f"removed {folder}")
        return 0
    if args.server:
        return _server_models(args)
    from ..captioner.int8_store import stores

    rows = list_local()
    for repo_id, size, folder in rows:
        print(f"{repo_id}\t{size / 1e9:.2f} GB\t{folder}")
    for model, size, folder in stores():
        print(f"{model} (int8 copy)\t{size / 1e9:.2f} GB\t{folder}")
    if not rows:
        print("No models downloaded yet. Text reading (OCR) works without one.", file=sys.stderr)
    missing = [k for k in KNOWN_MODELS if k.repo_id not in {r[0] for r in rows}]
    if missing:
        print("Available to pull: " + ", ".join(f"{k.alias} ({k.repo_id}, {k.download})" for k in missing),
              file=sys.stderr)
    return 0


def _server_models(args) -> int:
    """``models list --server URL``: the server's models; a server without a usable list is no error."""
    from ..captioner.server import ServerCaptioner
    from ..config import load_config
    from ..errors import ServerRedirected, ServerUnreachable

    model = load_config(args.config).model
    server = ServerCaptioner("", args.server, api_key_env=model.api_key_env, connect_timeout=model.connect_timeout,
                             first_token_timeout=model.first_token_timeout, answer_timeout=model.answer_timeout,
                             proxy=model.proxy)
    try:
        names = server.list_models()
    except (ServerUnreachable, ServerRedirected):  # not a server without a list: say it, exit 1
        raise
    except A11yCaptionError as e:
        print(f"a11y-caption: {e} Ask for a model by the name the server knows it as (--model).", file=sys.stderr)
        return 0
    finally:
        server.close()
    for name in names:
        print(one_line(name))
    if not names:
        print("a11y-caption: the server lists no models.", file=sys.stderr)
    return 0


def _config(args) -> int:
    from ..config import default_config_path, load_config, user_config_path

    if args.config_command == "path":
        path = user_config_path()
        print(path)
        if not path.exists() and os.environ.get("A11Y_CAPTION_CONFIG"):
            print(f"a11y-caption: {path} does not exist, and A11Y_CAPTION_CONFIG names it, so the other commands "
                  f"stop until it does; copy {default_config_path()} there.", file=sys.stderr)
        elif not path.exists():
            print(f"a11y-caption: {path} does not exist; using the packaged default {default_config_path()}",
                  file=sys.stderr)
        return 0
    config = load_config(args.file)
    from ..speech import describe_engine

    print(f"{config.path}: OK, model {config.model.name}, speech {describe_engine(config.speech.engine)}")
    for b in config.hotkeys:
        print(f"{b.keys}\t{b.action}" + (f"\t{b.prompt}" if b.prompt else ""))
    return 0


def _shortcuts(args) -> int:
    from ..desktop.shortcuts import cli

    return cli(args)


def _autostart(args) -> int:
    from ..desktop.autostart import cli

    return cli(args)


def _bench(args) -> int:
    from ..bench import run_bench

    return run_bench(args)


if __name__ == "__main__":
    sys.exit(main())
