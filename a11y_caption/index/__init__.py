"""Describe a whole folder of images once, keep the text, and find pictures by what is in them.

Storage is one SQLite file (WAL, one transaction per image, so a crash or kill loses at most the
image being described). Text only: never the images themselves.

- ``files``: where each file is and what it holds (path, content hash, size, mtime). A file whose
  path, size and mtime are unchanged is not even hashed again.
- ``descriptions``: per content hash and model, the description, alt text, tags (JSON) and OCR text.
  Keyed by content, so a moved or copied file keeps its record and is never described twice; a
  second model's results sit beside the first's.
- ``descriptions_fts``: an FTS5 index over description, tags, alt text and OCR text (bm25 ranking).

Schema changes are migrations: ``MIGRATIONS[n]`` brings ``PRAGMA user_version`` n to n + 1.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import logging
import os
import re
import sqlite3
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import A11yCaptionError
from ..safe_text import path_text

__all__ = [
    "IMAGE_SUFFIXES", "MIGRATIONS", "SCHEMA_VERSION", "AgentAnalyser", "Analysis", "IndexStore", "LocalAnalyser",
    "Summary", "csv_cell", "default_db_path", "export", "find_images", "first_sentence", "fts_query",
    "index_folders",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ico",
                            ".ppm", ".pgm", ".pbm", ".tga"})

_V1 = (
    """CREATE TABLE files (
        path TEXT PRIMARY KEY,
        hash TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL
    )""",
    "CREATE INDEX files_by_hash ON files (hash)",
    """CREATE TABLE descriptions (
        id INTEGER PRIMARY KEY,
        hash TEXT NOT NULL,
        model TEXT NOT NULL,
        description TEXT NOT NULL,
        alt_text TEXT NOT NULL,
        tags TEXT NOT NULL,
        ocr_text TEXT NOT NULL,
        seconds REAL NOT NULL,
        described_at REAL NOT NULL,
        UNIQUE (hash, model)
    )""",
    """CREATE VIRTUAL TABLE descriptions_fts USING fts5 (
        description, tags, alt_text, ocr_text,
        content = 'descriptions', content_rowid = 'id', tokenize = 'porter unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER descriptions_added AFTER INSERT ON descriptions BEGIN
        INSERT INTO descriptions_fts (rowid, description, tags, alt_text, ocr_text)
        VALUES (new.id, new.description, new.tags, new.alt_text, new.ocr_text);
    END""",
    """CREATE TRIGGER descriptions_removed AFTER DELETE ON descriptions BEGIN
        INSERT INTO descriptions_fts (descriptions_fts, rowid, description, tags, alt_text, ocr_text)
        VALUES ('delete', old.id, old.description, old.tags, old.alt_text, old.ocr_text);
    END""",
    """CREATE TRIGGER descriptions_changed AFTER UPDATE ON descriptions BEGIN
        INSERT INTO descriptions_fts (descriptions_fts, rowid, description, tags, alt_text, ocr_text)
        VALUES ('delete', old.id, old.description, old.tags, old.alt_text, old.ocr_text);
        INSERT INTO descriptions_fts (rowid, description, tags, alt_text, ocr_text)
        VALUES (new.id, new.description, new.tags, new.alt_text, new.ocr_text);
    END""",
)
# MIGRATIONS[n]: the statements that bring a database at user_version n to n + 1. Append, never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1,)
SCHEMA_VERSION = len(MIGRATIONS)


def default_db_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("a11y-caption", appauthor=False)) / "index.sqlite3"


@dataclass
class Analysis:
    """What is stored about one image for one model: text only."""

    model: str
    description: str
    alt_text: str
    tags: list[str]
    ocr_text: str
    seconds: float = 0.0


def _make_private(fd: int) -> None:
    """chmod 0600 the open file ``fd`` when others may read or write it and it is ours (someone
    else's file is left as it is: chmod would fail, and it is not ours to change)."""
    if os.name != "posix":
        return
    st = os.fstat(fd)
    if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
        os.fchmod(fd, 0o600)


def _make_private_if_there(path: Path) -> None:
    try:  # not through a symbolic link: SQLite's own -wal and -shm files are never links
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return
    except OSError as e:
        if e.errno == errno.ELOOP:
            return
        raise
    try:
        _make_private(fd)
    finally:
        os.close(fd)


class IndexStore:
    """The SQLite file. One writer at a time (SQLite's lock); readers may run alongside (WAL).

    Paths are keys as ``safe_text.path_text`` writes them: a file name that is not valid UTF-8
    (which SQLite cannot store) gets its odd bytes as ``\\xNN``. Every method taking a path takes
    the real one or that text alike.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # It holds the text of screenshots: private to the user (SQLite gives its -wal and -shm
            # files the same permissions).
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                _make_private(fd)  # an index made before 0600 was the rule, or copied in, may be readable
            finally:
                os.close(fd)
            for journal in ("-wal", "-shm"):
                _make_private_if_there(self.path.with_name(self.path.name + journal))
            # Autocommit: every transaction below is an explicit BEGIN ... COMMIT.
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a killed process loses nothing committed
            self.db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise A11yCaptionError(f"The index {self.path} is damaged or not an index ({e}).") from e
        except OSError as e:
            raise A11yCaptionError(f"Could not open the index {self.path} ({e.strerror or e}).") from e

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "IndexStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @property
    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        version = self.version
        if version > SCHEMA_VERSION:
            raise A11yCaptionError(f"The index {self.path} was made by a newer a11y-caption (schema {version}); "
                                   "update a11y-caption or use another --db.")
        for step in range(version, SCHEMA_VERSION):
            with self.transaction() as db:
                for statement in MIGRATIONS[step]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {step + 1}")
            log.info("index %s: schema %d -> %d", self.path, step, step + 1)

    # -- what is known ----------------------------------------------------------------------------
    def files_under(self, roots: Iterable[Path]) -> dict[str, tuple[int, int, str]]:
        """path -> (size, mtime_ns, hash) of every known file under ``roots``."""
        out = {}
        for root in roots:
            root = path_text(root)
            prefix = root.rstrip(os.sep) + os.sep
            rows = self.db.execute("SELECT path, size, mtime_ns, hash FROM files WHERE path = ? OR "
                                   "substr(path, 1, ?) = ?", (root, len(prefix), prefix))
            out.update((p, (s, m, h)) for p, s, m, h in rows)
        return out

    def described(self, model: str) -> set[str]:
        """Content hashes with a description by ``model``."""
        return {h for (h,) in self.db.execute("SELECT hash FROM descriptions WHERE model = ?", (model,))}

    # -- writing (each call one transaction) -------------------------------------------------------
    def put_file(self, path: str | os.PathLike, digest: str, size: int, mtime_ns: int) -> None:
        with self.transaction() as db:
            self._put_file(db, path_text(path), digest, size, mtime_ns)

    def put_description(self, path: str | os.PathLike, digest: str, size: int, mtime_ns: int,
                        analysis: Analysis) -> None:
        """Store ``analysis`` for content ``digest`` and point ``path`` at it, in one transaction."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO descriptions (hash, model, description, alt_text, tags, ocr_text, seconds, described_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hash, model) DO UPDATE SET "
                "description = excluded.description, alt_text = excluded.alt_text, tags = excluded.tags, "
                "ocr_text = excluded.ocr_text, seconds = excluded.seconds, described_at = excluded.described_at",
                (digest, analysis.model, analysis.description, analysis.alt_text,
                 json.dumps(analysis.tags, ensure_ascii=False), analysis.ocr_text, analysis.seconds, time.time()))
            self._put_file(db, path_text(path), digest, size, mtime_ns)

    def forget_file(self, path: str | os.PathLike) -> None:
        path = path_text(path)
        with self.transaction() as db:
            old = db.execute("SELECT hash FROM files WHERE path = ?", (path,)).fetchone()
            db.execute("DELETE FROM files WHERE path = ?", (path,))
            if old:
                self._drop_orphans(db, old[0])

    def prune(self, paths: Iterable[str | os.PathLike]) -> int:
        """Forget ``paths`` and every description no file refers to any more. Returns how many files."""
        paths = [path_text(p) for p in paths]
        with self.transaction() as db:
            db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])
            db.execute("DELETE FROM descriptions WHERE hash NOT IN (SELECT hash FROM files)")
        return len(paths)

    @staticmethod
    def _put_file(db, path: str, digest: str, size: int, mtime_ns: int) -> None:
        old = db.execute("SELECT hash FROM files WHERE path = ?", (path,)).fetchone()
        db.execute("INSERT INTO files (path, hash, size, mtime_ns) VALUES (?, ?, ?, ?) ON CONFLICT (path) DO UPDATE "
                   "SET hash = excluded.hash, size = excluded.size, mtime_ns = excluded.mtime_ns",
                   (path, digest, size, mtime_ns))
        if old and old[0] != digest:  # the file changed: its old text must not be found any more
            IndexStore._drop_orphans(db, old[0])

    @staticmethod
    def _drop_orphans(db, digest: str) -> None:
        if db.execute("SELECT 1 FROM files WHERE hash = ? LIMIT 1", (digest,)).fetchone() is None:
            db.execute("DELETE FROM descriptions WHERE hash = ?", (digest,))

    # -- reading ------------------------------------------------------------------------------------
    def search(self, query: str, limit: int = 10, model: str | None = None) -> list[dict]:
        """The best matches for ``query`` (bm25; tags weigh double), one per file."""
        match = fts_query(query)
        sql = ("SELECT f.path, d.model, d.description, d.alt_text, d.tags, d.ocr_text, "
               "bm25(descriptions_fts, 1.0, 2.0, 1.0, 1.0) AS score FROM descriptions_fts "
               "JOIN descriptions d ON d.id = descriptions_fts.rowid JOIN files f ON f.hash = d.hash "
               "WHERE descriptions_fts MATCH ?" + (" AND d.model = ?" if model else "") +
               " ORDER BY score, f.path LIMIT ?")
        params = [match, *([model] if model else []), limit * 4]
        rows, seen = [], set()
        for path, model_name, description, alt, tags, ocr, score in self.db.execute(sql, params):
            if path in seen:
                continue
            seen.add(path)
            rows.append({"path": path, "model": model_name, "text": first_sentence(description or alt or ocr),
                         "description": description, "alt_text": alt, "tags": json.loads(tags),
                         "score": round(-score, 4)})
            if len(rows) == limit:
                break
        return rows

    def show(self, path: str | os.PathLike) -> dict | None:
        row = self.db.execute("SELECT path, hash, size, mtime_ns FROM files WHERE path = ?",
                              (path_text(path),)).fetchone()
        if row is None:
            return None
        path, digest, size, mtime_ns = row
        results = [{"model": m, "description": d, "alt_text": a, "tags": json.loads(t), "ocr_text": o,
                    "seconds": s, "described_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))}
                   for m, d, a, t, o, s, at in self.db.execute(
                       "SELECT model, description, alt_text, tags, ocr_text, seconds, described_at FROM descriptions "
                       "WHERE hash = ? ORDER BY described_at", (digest,))]
        return {"path": path, "hash": digest, "size": size,
                "modified": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(mtime_ns / 1e9)),
                "descriptions": results}

    def rows(self, model: str | None = None) -> Iterator[dict]:
        """Every described file: path, model, alt text, description, tags (for export)."""
        sql = ("SELECT f.path, d.model, d.alt_text, d.description, d.tags FROM files f JOIN descriptions d "
               "ON d.hash = f.hash" + (" WHERE d.model = ?" if model else "") + " ORDER BY f.path, d.model")
        for path, model_name, alt, description, tags in self.db.execute(sql, (model,) if model else ()):
            yield {"path": path, "model": model_name, "alt_text": alt, "description": description,
                   "tags": json.loads(tags)}

    def counts(self) -> tuple[int, int]:
        """(files, descriptions)."""
        return (self.db.execute("SELECT count(*) FROM files").fetchone()[0],
                self.db.execute("SELECT count(*) FROM descriptions").fetchone()[0])


def fts_query(query: str) -> str:
    """The user's words as an FTS5 query that cannot be a syntax error: each word a quoted string
    (quotes inside doubled), all of them required. Operators and brackets are searched as text.

    Raises:
        A11yCaptionError: no word to search for.
    """
    terms = [t for t in query.split() if re.search(r"\w", t)]
    if not terms:
        raise A11yCaptionError("Give a word to search for.")
    return " ".join('"' + t.replace('"', '""') + '"' for t in terms)


def first_sentence(text: str) -> str:
    text = " ".join(text.split())
    return re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])", text, maxsplit=1)[0] if text else ""


# -- finding the images ---------------------------------------------------------------------------

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


# -- describing -------------------------------------------------------------------------------------

class LocalAnalyser:
    """Describes in this process with the configured model (describer.Describer)."""

    def __init__(self, model_config):
        from dataclasses import replace

        from ..models import canonical_id

        self.model = canonical_id(model_config.name)
        # The OCR text is stored on its own: it is not appended to BLIP's caption here.
        self._config = replace(model_config, add_ocr_text="never")
        self._describer = None

    @property
    def describer(self):
        if self._describer is None:
            from ..describe.describer import Describer

            self._describer = Describer(self._config)
        return self._describer

    def analyse(self, path: Path, image) -> Analysis:
        """Raises: ModelNotFound (the weights are not here), ModelLoadError."""
        d = self.describer
        d.load()
        if d.missing is not None:
            raise d.missing
        start = time.perf_counter()
        ocr_text = "\n".join(d.read_text(image)) if d.captioner.name != "ocr" else ""
        description = d.describe(image, "photo").collect().text
        if d.captioner.name == "ocr":
            ocr_text = description
        if d.captioner.answers_questions:
            alt = d.describe(image, "alt_text").collect().text
        else:  # a captioner's caption is one sentence already
            alt = first_sentence(description)
        tags = d.tags(image, caption=description)
        return Analysis(self.model, description, alt, tags, ocr_text, time.perf_counter() - start)

    def close(self) -> None:
        if self._describer is not None:
            self._describer.release()


BUSY_WAIT_S = 60.0  # how long an index waits for room in a busy agent before it gives up


class AgentAnalyser:
    """Describes through the running agent (its warm model), as ``describe`` does when one runs."""

    def __init__(self, model: str):
        from ..models import canonical_id

        self.model = canonical_id(model)

    @classmethod
    def if_running(cls) -> "AgentAnalyser | None":
        from ..agent.control import AgentNotRunning, request

        try:  # an agent that is there but stuck is said so (AgentNotAnswering), never loaded beside
            reply = list(request("status"))[-1]
        except AgentNotRunning:
            return None
        if reply.get("type") != "done" or not reply.get("model"):
            return None
        return cls(reply["model"])

    def analyse(self, path: Path, image) -> Analysis:
        from ..agent.control import MAX_IMAGE_BYTES
        from ..errors import ImageError
        from ..captioner.prompts import TAGS_PROMPT
        from ..describe.tags import tags_from

        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise ImageError(f"{path_text(path.name)} is larger than {MAX_IMAGE_BYTES // 2**20} MB, too large to send to the "
                             "agent; index with --local.")
        data = path.read_bytes()
        name = path_text(path.name)  # the agent takes text: a name that is not UTF-8 goes as \xNN
        start = time.perf_counter()
        description, model = self._ask("describe", data, name, task="photo")
        alt, _ = self._ask("describe", data, name, task="alt_text")
        tags, _ = self._ask("describe", data, name, task="question", prompt=TAGS_PROMPT)
        ocr, _ = self._ask("read", data, name)
        return Analysis(self.model, description, first_sentence(alt) or first_sentence(description),
                        tags_from(tags), "" if ocr == "No text found." else ocr, time.perf_counter() - start)

    @staticmethod
    def _ask(op: str, data: bytes, name: str, **fields) -> tuple[str, str | None]:
        """One request in the agent's background: it waits for the worker to be free, and when the
        user presses a key meanwhile it makes way ("replaced") and is sent again."""
        from ..agent.control import AgentBusy, AgentNotRunning, read_reply, request

        busy_since = None
        while True:
            try:
                reply = read_reply(request(op, source="image", image=data, name=name, speak=False, background=True,
                                           **fields))
            except AgentNotRunning as e:
                raise A11yCaptionError("The agent stopped answering.") from e
            except AgentBusy:
                busy_since = busy_since or time.monotonic()
                if time.monotonic() - busy_since > BUSY_WAIT_S:
                    raise
                time.sleep(1.0)
                continue
            if reply.stopped == "replaced":
                continue  # the user's own press went first; this image waits for the worker again
            if reply.stopped:
                raise KeyboardInterrupt  # Stop pressed in the agent: stop indexing, as Ctrl+C does
            return reply.text.strip(), reply.model

    def close(self) -> None:
        pass


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
    it got); ``progress(done, total, summary)`` is called after each file. A file that cannot be
    read or is not an image goes to ``summary.bad`` and the run goes on.

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
    if progress is not None:
        progress(0, len(paths), summary)
    for done, path in enumerate(paths, 1):
        key = path_text(path)  # the real path reads the file; the key is what the index stores
        try:
            st = path.stat()
            old = known.get(key)
            if old and old[:2] == (st.st_size, st.st_mtime_ns) and old[2] in described:
                summary.unchanged += 1
            else:
                digest = file_hash(path)
                if digest in described:
                    store.put_file(key, digest, st.st_size, st.st_mtime_ns)
                    summary.known += 1
                else:
                    from ..images import open_image

                    image = open_image(path)
                    analysis = analyser.analyse(path, image)
                    store.put_description(key, digest, st.st_size, st.st_mtime_ns, analysis)
                    described.add(digest)
                    summary.described += 1
        except ImageError as e:
            summary.bad.append((key, str(e)))
            if key in known:  # it changed into something unreadable: its old text is wrong now
                store.forget_file(key)
        except OSError as e:
            summary.bad.append((key, f"{path.name} could not be read ({e.strerror or e})."))
        if progress is not None:
            progress(done, len(paths), summary)
    if prune:
        present = {path_text(p) for p in paths}
        gone = [k for k in known if k not in present and not any(os.path.exists(p) for p in _paths_of(k))]
        summary.pruned = store.prune(gone)
    return summary


def _paths_of(key: str) -> tuple[str, ...]:
    """The real paths whose ``path_text`` may be ``key``: itself, and, when it holds ``\\xNN``
    escapes of bytes that are not UTF-8 on their own (80 to ff), the path with those bytes."""
    raw = re.sub(rb"\\x([89a-f][0-9a-f])", lambda m: bytes([int(m[1], 16)]), key.encode("utf-8"))
    return (key,) if raw == key.encode("utf-8") else (key, os.fsdecode(raw))


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
