"""What every command shares: its settings (the settings file with the flags over it), which
capture was asked for, and writing a result to stdout."""

from __future__ import annotations

import sys
from dataclasses import replace

from ..errors import A11yCaptionError

__all__ = ["capture_asked", "emit", "given", "settings"]


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


def given(flag, setting):
    """The flag's value when it was given, else the setting: 0 and "" are values, not "not given"."""
    return setting if flag is None else flag


def capture_asked(args) -> str | None:
    """"screen", "window" or "clipboard" when a capture was asked for, None for image files."""
    capture = "screen" if args.screen else "window" if args.window else "clipboard" if args.clipboard else None
    if capture is None and not args.images:
        raise A11yCaptionError("Give at least one image file, or --screen, --window or --clipboard.")
    return capture


def emit(text: str) -> None:
    """A result on stdout, at once (a listener hears it while the rest is still coming)."""
    sys.stdout.write(text)
    sys.stdout.flush()
