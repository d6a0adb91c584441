"""What every command shares: its settings (the settings file with the flags over it), which
capture was asked for, and writing a result to stdout."""

from __future__ import annotations

import sys
from dataclasses import replace

from ..errors import A11yCaptionError

__all__ = ["capture_asked", "emit", "given", "one_voice", "settings", "speaks"]


def settings(args):
    """The settings file (``--config``, else the user's) with the command's flags over it."""
    from ..config import load_config

    config = load_config(getattr(args, "config", None))
    speech = config.speech
    engine = "none" if getattr(args, "no_speak", False) else given(args.speech, speech.engine)
    speech = replace(speech, engine=engine, voice=given(args.voice, speech.voice), rate=given(args.rate, speech.rate),
                     volume=given(args.volume, speech.volume), transcript=given(args.transcript, speech.transcript))
    model = config.model
    if getattr(args, "model", None):
        model = replace(model, name=args.model)
    if getattr(args, "server", None) is not None:
        model = replace(model, server=args.server)
    return replace(config, speech=speech, model=model)


def speaks(args, speech) -> bool:
    """Whether a command typed by the user speaks its answer as well as printing it: one voice at
    a time. ``--no-speak`` (or ``--speech none``) and ``--speak`` decide for once; else
    ``[speech] cli``: "print", "speak", or "auto" = print only when the output is a terminal and a
    screen reader runs (it reads the new text itself; a second voice would read it again)."""
    if getattr(args, "no_speak", False) or speech.engine == "none":
        return False
    if getattr(args, "speak", False):
        return True
    if speech.cli != "auto":
        return speech.cli == "speak"
    from ..speech.screen_reader import screen_reader_running

    return not (_is_terminal(sys.stdout) and screen_reader_running())


def one_voice(args, speech):
    """The command's [speech] settings, silent where the screen reader reads its output (``speaks``)."""
    return speech if speaks(args, speech) else replace(speech, engine="none")


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced, or closed
        return False


def given(flag, setting):
    """The flag's value when it was given, else the setting: 0 and "" are values, not "not given"."""
    return setting if flag is None else flag


def capture_asked(args) -> str | None:
    """"screen", "window", "clipboard", "focus", "pointer" or "images" when a capture was asked for,
    None for image files."""
    flags = (("screen", "screen"), ("window", "window"), ("clipboard", "clipboard"), ("focus", "focus"),
             ("pointer", "pointer"), ("unlabeled_images", "images"))
    capture = next((source for flag, source in flags if getattr(args, flag, False)), None)
    if capture is None and not args.images:
        raise A11yCaptionError("Give at least one image file, or --screen, --window or --clipboard.")
    return capture


def emit(text: str) -> None:
    """A result on stdout, at once (a listener hears it while the rest is still coming)."""
    sys.stdout.write(text)
    sys.stdout.flush()
