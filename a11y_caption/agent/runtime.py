"""The agent's runtime folder, where its socket, key and lock live: checked from the top to be the
user's own before anything is made, read or trusted there."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import A11yCaptionError

__all__ = ["runtime_dir"]


def runtime_dir(create: bool = False) -> Path:
    """The agent's private runtime folder: ``$A11Y_CAPTION_RUNTIME_DIR``, else the platform's.

    With ``create``, it is made 0700 if missing. Either way it is checked from the top: every
    folder above it must belong to you or to root and be closed to others' writes (or sticky, as
    /tmp is), every symbolic link on the way must be yours or root's, and the folder itself yours
    and 0700. Anything else could let another user swap the socket or the key for their own.

    Raises:
        A11yCaptionError: one sentence naming the folder and what is wrong.
    """
    base = os.environ.get("A11Y_CAPTION_RUNTIME_DIR")
    if not base:
        import warnings

        from platformdirs import user_runtime_dir

        with warnings.catch_warnings():  # no XDG_RUNTIME_DIR (a console, CI): the fallback is checked below
            warnings.simplefilter("ignore")
            base = user_runtime_dir("a11y-caption", appauthor=False)
    path = Path(os.path.abspath(base))
    if os.name != "posix":
        if create:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path
    fix = "remove it or set A11Y_CAPTION_RUNTIME_DIR to a folder of your own"
    _check_ancestors(path.parent, fix)
    if create:
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise A11yCaptionError(f"The runtime folder {path} cannot be made ({e.strerror or e}); {fix}.") from e
        _check_ancestors(path.parent, fix)  # folders made just now are ours; check what they sit in again
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path  # no agent has made it: nothing listens there
    except OSError as e:
        raise A11yCaptionError(f"The runtime folder {path} cannot be checked ({e.strerror or e}); {fix}.") from e
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise A11yCaptionError(f"The runtime folder {path} is not a folder of its own; {fix}.")
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise A11yCaptionError(f"The runtime folder {path} is not private to you (it must be yours, mode 0700); "
                               f"{fix}.")
    return path


def _check_ancestors(folder: Path, fix: str) -> None:
    """Walk ``folder`` from the root, following symbolic links as the system would, and refuse a
    component another user could change: owned by neither you nor root, or writable by others
    without the sticky bit; a link owned by someone else. Missing components end the walk (they
    will be made by us)."""
    me = os.getuid()
    pending = list(folder.parts[1:])
    current = Path(folder.parts[0])
    links = 0
    while pending:
        current = current / pending.pop(0)
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return
        except OSError as e:
            raise A11yCaptionError(f"The runtime folder's parent {current} cannot be checked "
                                   f"({e.strerror or e}); {fix}.") from e
        if info.st_uid not in (me, 0):
            raise A11yCaptionError(f"The runtime folder lies in {current}, which belongs to another user; {fix}.")
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > 40:
                raise A11yCaptionError(f"The runtime folder's path has too many symbolic links; {fix}.")
            target = Path(os.readlink(current))
            if target.is_absolute():
                pending = list(target.parts[1:]) + pending
                current = Path(target.parts[0])
            else:
                pending = list(target.parts) + pending
                current = current.parent
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise A11yCaptionError(f"The runtime folder lies below {current}, which is not a folder; {fix}.")
        if stat.S_IMODE(info.st_mode) & 0o022 and not info.st_mode & stat.S_ISVTX:
            raise A11yCaptionError(f"The runtime folder lies in {current}, which other users can write to; {fix}.")
