"""Exporting the index: path, model, alt text, description and tags of every described file, as
CSV (safe to open in a spreadsheet) or JSON lines."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

from ..errors import A11yCaptionError
from .store import IndexStore

__all__ = ["csv_cell", "export"]


# A spreadsheet takes a cell that starts with one of these for a formula (=HYPERLINK(...), =cmd|...):
# text from a screen or a model must never become one (OWASP, "CSV Injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """``text`` as a CSV cell a spreadsheet shows as text: a leading formula character gets a ``'``."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def export(store: IndexStore, folder: str | os.PathLike, fmt: str, model: str | None = None, *,
           force: bool = False) -> tuple[Path, int]:
    """Write path, model, alt text, description and tags of every described file to a file in
    ``folder``; returns (the file, how many rows).

    The file is private (0600, as the index) and appears whole or not at all. Without ``force`` an
    existing one is never replaced; with it, whatever has that name (a symbolic link too) is
    replaced, never written through.

    Raises:
        A11yCaptionError: no such folder; the file exists (without ``force``); it cannot be written.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise A11yCaptionError(f"{folder} is not a folder.")
    out = folder / f"a11y-caption-index.{fmt}"
    exists = A11yCaptionError(f"{out} exists already; use --force to replace it.")
    if not force and os.path.lexists(out):
        raise exists
    n = 0
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".a11y-caption-index.", suffix=".part")  # 0600, O_EXCL
        with open(fd, "w", encoding="utf-8", newline="") as f:
            if fmt == "csv":
                writer = csv.writer(f, quoting=csv.QUOTE_ALL)
                writer.writerow(["path", "model", "alt_text", "description", "tags"])
                for row in store.rows(model):
                    writer.writerow([csv_cell(cell) for cell in (row["path"], row["model"], row["alt_text"],
                                                                 row["description"], ", ".join(row["tags"]))])
                    n += 1
            else:
                for row in store.rows(model):
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                    n += 1
        if force:
            os.replace(tmp, out)  # a rename: a symbolic link of that name is replaced, not followed
        else:
            try:
                os.link(tmp, out)  # fails on any file of that name, a link too, made since the check above
            except FileExistsError:
                raise exists from None
            except OSError:  # a file system without hard links: the check above must do
                os.replace(tmp, out)
    except OSError as e:
        raise A11yCaptionError(f"Could not write {out} ({e.strerror or e}).") from e
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    return out, n
