"""Typed errors whose message is one sentence a user can hear.

Lower layers raise these (``from`` the library error that caused them); only the CLI and the agent
turn them into speech or a printed line. Anything that is not an A11yCaptionError is a bug.
"""

from __future__ import annotations

import os
import traceback

__all__ = [
    "A11yCaptionError",
    "describe_unexpected",
    "log_unexpected",
    "AlreadyRunning",
    "CaptureError",
    "ConfigError",
    "DeviceError",
    "DownloadError",
    "GenerationError",
    "HotkeysUnavailable",
    "ImageError",
    "IncompleteModel",
    "ModelLoadError",
    "ModelNotFound",
    "NoImageOnClipboard",
    "ServerError",
    "ServerUnreachable",
    "SpeechError",
    "UnsupportedModel",
]


class A11yCaptionError(Exception):
    """Base class: ``str(error)`` is the one sentence said to the user."""


class ModelNotFound(A11yCaptionError):
    def __init__(self, model: str, *, folder: bool = False):
        """``folder``: ``model`` was written as a path, which no download can make appear."""
        self.model = model
        super().__init__(
            f"The model folder {model} does not exist; check the path given as the model's name." if folder else
            f"The model {model} is not on this computer. "
            f"Download it with: a11y-caption models pull {model}"
        )


class DownloadError(A11yCaptionError):
    """``models pull`` failed; ``reason`` says which way: "offline" (HF_HUB_OFFLINE is set),
    "network", "proxy", "not_found", "gated", "refused", "hub", "disk_full", "cache", "name" or
    "unknown". The sentence never names the library's exception (--debug shows it)."""

    def __init__(self, message: str, reason: str):
        self.reason = reason
        super().__init__(message)


class IncompleteModel(ModelNotFound):
    """A download of ``model`` that stopped before its end: some of its files are missing."""

    def __init__(self, model: str):
        self.model = model
        A11yCaptionError.__init__(self, f"The download of {model} did not finish, so some of its files are "
                                        f"missing. Finish it with: a11y-caption models pull {model}")


class UnsupportedModel(A11yCaptionError):
    pass


class ModelLoadError(A11yCaptionError):
    pass


class DeviceError(ModelLoadError):
    """The device asked for (``device = "cuda"``, ...) cannot run a model on this computer."""


class ImageError(A11yCaptionError):
    pass


class GenerationError(A11yCaptionError):
    """The model failed while generating (chained to the library's error)."""


class ServerError(A11yCaptionError):
    """The configured model server failed a request (refused it, timed out, broke off the answer)."""


class ServerRedirected(ServerError):
    """The server pointed the request elsewhere; nothing was sent there."""


class ServerUnreachable(ServerError):
    """No connection to the model server at all (nothing listens, or it did not answer in time);
    ``fallback = "ocr"`` reads the text locally instead."""


class NoImageOnClipboard(A11yCaptionError):
    def __init__(self, detail: str = "There is no image on the clipboard."):
        super().__init__(detail)


class CaptureError(A11yCaptionError):
    pass


class SpeechError(A11yCaptionError):
    pass


class HotkeysUnavailable(A11yCaptionError):
    pass


class AlreadyRunning(A11yCaptionError):
    pass


class ConfigError(A11yCaptionError):
    """A problem in hotkeys.toml; the message starts with ``file:line:``."""

    def __init__(self, path, line: int | None, message: str):
        self.path, self.line = path, line
        where = f"{path}:{line}" if line else f"{path}"
        super().__init__(f"{where}: {message}")


_PACKAGE = os.path.normcase(os.path.dirname(os.path.realpath(__file__)))


def describe_unexpected(exc: BaseException) -> str:
    """``"OSError at capture.py:123"``: an unexpected error's type and the innermost line of this
    package that it passed through (``"OSError"`` alone when none did).

    Never the error's message or arguments: those may quote the screen, the clipboard or a
    description (an OSError names the path it was given, and that path can be clipboard text).
    """
    where = None
    for frame, line in traceback.walk_tb(exc.__traceback__):
        path = os.path.normcase(os.path.realpath(frame.f_code.co_filename))
        if path.startswith(_PACKAGE + os.sep):
            where = f"{os.path.relpath(path, _PACKAGE).replace(os.sep, '/')}:{line}"
    return f"{type(exc).__name__} at {where}" if where else type(exc).__name__


def log_unexpected(logger, what: str, exc: BaseException) -> None:
    """Log a bug as "what: TypeError at speech/base.py:84", never with its message or traceback
    (both may quote what was on screen or said); the traceback only at debug level (--debug)."""
    logger.error("%s: %s", what, describe_unexpected(exc))
    logger.debug("the traceback, shown because of --debug (it may quote screen text):", exc_info=exc)
