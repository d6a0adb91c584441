"""The index's SQLite file: what is known about each file, and the text of each image.

Storage is one SQLite file (WAL, one transaction per image, so a crash or kill loses at most the
image being described). Text only: never the images themselves.

- ``files``: where each file is and what it holds (path, content hash, size, mtime). A file whose
  path, size and mtime are unchanged is not even hashed again.
- ``descriptions``: per content hash and model, the description, alt text, tags (JSON) and OCR text.
  Keyed by content, so a moved or copied file keeps its record and is never described twice; a
  second model's results sit beside the first's.
- ``descriptions_fts``: an FTS5 index over description, tags, alt text and OCR text (bm25 ranking).
- ``files_fts``: an FTS5 index over each file's path, so that the words of its name and of its
  folders' names are found too (schema 2; ``files`` got an ``id`` for it, which VACUUM keeps).

Schema changes are migrations: ``MIGRATIONS[n]`` brings ``PRAGMA user_version`` n to n + 1.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import A11yCaptionError
from ..safe_text import path_text

__all__ = [
    "MAX_TERMS", "MIGRATIONS", "SCHEMA_VERSION", "Analysis", "IndexStore", "default_db_path", "first_sentence",
    "fts_query", "fts_terms",
]

log = logging.getLogger(__name__)

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
_V2 = (  # the words of file and folder names are searched too
    """CREATE TABLE files_v2 (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        hash TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL
    )""",
    "INSERT INTO files_v2 (path, hash, size, mtime_ns) SELECT path, hash, size, mtime_ns FROM files ORDER BY path",
    "DROP TABLE files",
    "ALTER TABLE files_v2 RENAME TO files",
    "CREATE INDEX files_by_hash ON files (hash)",
    """CREATE VIRTUAL TABLE files_fts USING fts5 (
        path, content = 'files', content_rowid = 'id', tokenize = 'porter unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER files_added AFTER INSERT ON files BEGIN
        INSERT INTO files_fts (rowid, path) VALUES (new.id, new.path);
    END""",
    """CREATE TRIGGER files_removed AFTER DELETE ON files BEGIN
        INSERT INTO files_fts (files_fts, rowid, path) VALUES ('delete', old.id, old.path);
    END""",
    """CREATE TRIGGER files_moved AFTER UPDATE OF path ON files BEGIN
        INSERT INTO files_fts (files_fts, rowid, path) VALUES ('delete', old.id, old.path);
        INSERT INTO files_fts (rowid, path) VALUES (new.id, new.path);
    END""",
    "INSERT INTO files_fts (files_fts) VALUES ('rebuild')",
)
# MIGRATIONS[n]: the statements that bring a database at user_version n to n + 1. Append, never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
MAX_TERMS = 50  # words in one search (each is a bound parameter, twice)
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
        """The best matches for ``query``, one per file: every word must be in the file's text
        (description, tags, alt text, OCR) or in its name or a folder's name (bm25 of both; tags
        weigh double). Only the number of words shapes the SQL; every word is a bound parameter."""
        terms = fts_terms(query)
        any_term = " OR ".join(terms)
        each = " AND ".join(["(d.id IN (SELECT rowid FROM descriptions_fts WHERE descriptions_fts MATCH ?) "
                             "OR f.id IN (SELECT rowid FROM files_fts WHERE files_fts MATCH ?))"] * len(terms))
        sql = ("WITH text_hits AS (SELECT rowid AS id, bm25(descriptions_fts, 1.0, 2.0, 1.0, 1.0) AS score "
               "FROM descriptions_fts WHERE descriptions_fts MATCH ?), "
               "name_hits AS (SELECT rowid AS id, bm25(files_fts) AS score FROM files_fts WHERE files_fts MATCH ?) "
               "SELECT f.path, d.model, d.description, d.alt_text, d.tags, d.ocr_text, "
               "coalesce(t.score, 0) + coalesce(n.score, 0) AS score "
               "FROM files f JOIN descriptions d ON d.hash = f.hash "
               "LEFT JOIN text_hits t ON t.id = d.id LEFT JOIN name_hits n ON n.id = f.id "
               f"WHERE {each}" + (" AND d.model = ?" if model else "") + " ORDER BY score, f.path LIMIT ?")
        params = [any_term, any_term, *(t for t in terms for _ in range(2)), *([model] if model else []), limit * 4]
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


def fts_terms(query: str) -> list[str]:
    """The user's words as FTS5 strings that cannot be a syntax error: each quoted (quotes inside
    doubled), once each. Operators and brackets are searched as text.

    Raises:
        A11yCaptionError: no word to search for, or more than MAX_TERMS.
    """
    terms = list(dict.fromkeys(t for t in query.split() if re.search(r"\w", t)))
    if not terms:
        raise A11yCaptionError("Give a word to search for.")
    if len(terms) > MAX_TERMS:
        raise A11yCaptionError(f"Give at most {MAX_TERMS} words to search for.")
    return ['"' + t.replace('"', '""') + '"' for t in terms]


def fts_query(query: str) -> str:
    """``fts_terms`` as one FTS5 query: all of the words required."""
    return " ".join(fts_terms(query))


def first_sentence(text: str) -> str:
    text = " ".join(text.split())
    return re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])", text, maxsplit=1)[0] if text else ""
