"""Walking the folders: finding the image files, and the run that describes each new one."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import A11yCaptionError
from ..safe_text import path_text
from .store import IndexStore

__all__ = ["IMAGE_SUFFIXES", "Summary", "file_hash", "find_images", "index_folders", "why_not_indexed"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ico",
                            ".ppm", ".pgm", ".pbm", ".tga"})


def find_images(roots: Iterable[str | os.PathLike], problems: list[tuple[str, str]]) -> list[Path]:
    """Image files (by name) under ``roots``, sorted, absolute. Symbolic links inside the folders
    are not followed (they could lead out of them); folders that cannot be read go to ``problems``.

    Raises:
        A11yCaptionError: a root is missing.
    """
    found: set[str] = set()
    for root in roots:
        root = Path(os.path.abspath(root))
        if root.is_file():
            found.add(str(root))
            continue
        if not root.is_dir():
            raise A11yCaptionError(f"{root} is not a folder.")
        pending = [str(root)]
        while pending:  # os.scandir: the entry types come with the listing, no stat per file
            folder = pending.pop()
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.is_symlink():
                            continue
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                        elif os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES:
                            found.add(entry.path)
            except OSError as e:
                problems.append((folder, f"could not be read ({e.strerror or e})."))
    return [Path(p) for p in sorted(found)]


def file_hash(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=20)).hexdigest()


# -- the run ----------------------------------------------------------------------------------------

@dataclass
class Summary:
    found: int = 0
    described: int = 0  # new descriptions made by the model in this run
    unchanged: int = 0  # known path, size and mtime: not even hashed
    known: int = 0  # hashed, and its content was described already (moved, copied or touched)
    pruned: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path, why) per file that could not be read


def index_folders(roots: Iterable[str | os.PathLike], store: IndexStore, analyser, *, prune: bool = False,
                  summary: Summary | None = None,
                  progress: Callable[[int, int, Summary], None] | None = None) -> Summary:
    """Describe every image under ``roots`` that ``analyser.model`` has not described yet.

    ``summary`` is filled in as the run goes (so a caller that is interrupted still knows how far
    it got). ``progress(done, total, summary)`` is called once with ``done`` 0, then after each
    file that may need the model: ``total`` counts those, not the unchanged ones (known path,
    size and mtime), which are counted first. A file that cannot be read or is not an image goes
    to ``summary.bad`` and the run goes on.

    Raises:
        KeyboardInterrupt: everything committed so far stays; the next run resumes.
        A11yCaptionError: the model cannot be loaded (nothing more can be described).
    """
    from ..errors import ImageError

    summary = summary if summary is not None else Summary()
    roots = [Path(os.path.abspath(r)) for r in roots]
    paths = find_images(roots, summary.bad)
    summary.found = len(paths)
    known = store.files_under(roots)
    described = store.described(analyser.model)
    todo = []  # what may need the model: the rest is unchanged, not even hashed
    for path in paths:
        key = path_text(path)  # the real path reads the file; the key is what the index stores
        if _unchanged(path, known.get(key), described):
            summary.unchanged += 1
        else:
            todo.append((path, key))
    if progress is not None:
        progress(0, len(todo), summary)
    for done, (path, key) in enumerate(todo, 1):
        try:
            _index_file(path, key, store, analyser, known, described, summary)
        except ImageError as e:
            summary.bad.append((key, str(e)))
            if key in known:  # it changed into something unreadable: its old text is wrong now
                store.forget_file(key)
        except OSError as e:
            summary.bad.append((key, f"{path.name} could not be read ({e.strerror or e})."))
        if progress is not None:
            progress(done, len(todo), summary)
    if prune:
        present = {path_text(p) for p in paths}
        gone = [k for k in known if k not in present and not any(os.path.exists(p) for p in _paths_of(k))]
        summary.pruned = store.prune(gone)
    return summary


def _unchanged(path: Path, old: tuple[int, int, str] | None, described: set[str]) -> bool:
    """Known path, size and mtime, and its content described by this model: nothing to do."""
    if old is None or old[2] not in described:
        return False
    try:
        st = path.stat()
    except OSError:
        return False  # the run says why
    return old[:2] == (st.st_size, st.st_mtime_ns)


def _index_file(path: Path, key: str, store: IndexStore, analyser, known: dict[str, tuple[int, int, str]],
                described: set[str], summary: Summary) -> None:
    """One file of the run that is not unchanged: pointed at its content's record when that was
    described already, else described (and ``described`` gets its hash)."""
    st = path.stat()
    digest = file_hash(path)
    if digest in described:
        store.put_file(key, digest, st.st_size, st.st_mtime_ns)
        summary.known += 1
        return
    from ..images import open_image

    image = open_image(path)
    analysis = analyser.analyse(path, image)
    store.put_description(key, digest, st.st_size, st.st_mtime_ns, analysis)
    described.add(digest)
    summary.described += 1


def why_not_indexed(path: str | os.PathLike) -> str:
    """One sentence for ``show`` of a file the index does not hold: why not, and what to do."""
    from ..errors import ImageError
    from ..images import open_image

    p = Path(os.path.abspath(path))
    shown = path_text(p)
    if not os.path.lexists(p):
        return f"{shown} does not exist."
    if p.is_symlink():
        return f"{shown} is a symbolic link, which the index does not follow; show the file it points to."
    if p.is_dir():
        return f"{shown} is a folder; give one image file (search finds images by words)."
    if not p.is_file():
        return f"{shown} is not a file."
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        return f"{shown} is not in the index: only image files (.png, .jpg and the like) are indexed."
    try:  # a regular file (checked above): opening it cannot wait on a FIFO or a device
        os.close(os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)))
    except OSError as e:
        return f"{shown} cannot be read ({e.strerror or e}); make it readable to you, then index its folder again."
    try:
        open_image(p).close()
    except ImageError as e:
        return f"{shown} cannot be indexed: {e}"
    except OSError as e:
        return f"{shown} cannot be read ({e.strerror or e}); make it readable to you, then index its folder again."
    return f"{shown} is not in the index; index its folder first."


def _paths_of(key: str) -> tuple[str, ...]:
    """The real paths whose ``path_text`` may be ``key``: itself, and, when it holds ``\\xNN``
    escapes of bytes that are not UTF-8 on their own (80 to ff), the path with those bytes."""
    raw = re.sub(rb"\\x([89a-f][0-9a-f])", lambda m: bytes([int(m[1], 16)]), key.encode("utf-8"))
    return (key,) if raw == key.encode("utf-8") else (key, os.fsdecode(raw))
