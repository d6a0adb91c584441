"""The folder index against hostile names and files: a name that is not UTF-8, line breaks and
escape sequences in names and texts, a symbolic link planted where the export goes, text that a
spreadsheet would run as a formula, an index others can read, a --limit past SQLite's integers.
Each is indexed, printed on one line, refused in one sentence or tightened; never "unexpected error"."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from a11y_caption import index
from a11y_caption.errors import A11yCaptionError
from a11y_caption.index import Analysis, IndexStore
from a11y_caption.safe_text import path_text
from conftest import run_cli
from screens import render_screen
from test_index import run

NOBODY = 65534
as_root = pytest.mark.skipif(os.getuid() != 0, reason="needs root, to make a file owned by another user")


def write_bytes_path(path: bytes, data: bytes) -> None:
    """A file whose name may be any bytes (a str path could not hold them)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with open(fd, "wb") as f:
        f.write(data)


def png_with(text: str, tmp_path: Path) -> bytes:
    scratch = tmp_path / f"scratch-{abs(hash(text))}.png"
    render_screen([text], size=(520, 90), px=28, buttons=()).image.save(scratch)
    data = scratch.read_bytes()
    scratch.unlink()
    return data


def stored(db: Path, path: str, analysis: Analysis) -> None:
    """One described file in the index, as an index run leaves it (no model needed)."""
    with IndexStore(db) as store:
        store.put_description(path, hashlib.blake2b(os.fsencode(path), digest_size=20).hexdigest(), 10, 0, analysis)


# -- item 3: a file name that is not UTF-8 -----------------------------------------------------------

def test_a_name_that_is_not_utf8_is_indexed_with_the_files_after_it(tmp_path, tiny_blip):
    # Latin-1 names, as an old camera, a zip file or another system's disk gives them: the folder's too.
    root = os.fsencode(tmp_path) + b"/fotos-\xe9t\xe9"
    os.mkdir(root)
    odd = root + b"/caf\xe9.png"
    write_bytes_path(odd, png_with("Receipt from the bakery", tmp_path))
    write_bytes_path(root + b"/zebra.png", png_with("Zebra crossing", tmp_path))
    db = tmp_path / "i.db"

    r = run_cli("index", os.fsdecode(root), "--db", str(db), "--model", str(tiny_blip))
    assert r.returncode == 0, r.stderr
    assert "2 images: 2 described, 0 already indexed, 0 could not be read." in r.stderr
    r = run_cli("index", os.fsdecode(root), "--db", str(db), "--model", str(tiny_blip))  # the same keys again
    assert "2 images: 0 described, 2 already indexed, 0 could not be read." in r.stderr, r.stderr

    key = f"{tmp_path}/fotos-\\xe9t\\xe9/caf\\xe9.png"
    assert path_text(os.fsdecode(odd)) == key
    r = run_cli("show", os.fsdecode(odd), "--db", str(db), "--json")  # the real name, as a shell passes it
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["path"] == key
    r = run_cli("show", os.fsdecode(odd), "--db", str(db))
    assert r.returncode == 0 and f"path: {key}" in r.stdout.splitlines(), r.stderr
    r = run_cli("search", "bakery", "--db", str(db), "--json", "--no-speak")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["path"] for line in r.stdout.splitlines()] == [key]


def test_prune_keeps_a_name_that_is_not_utf8_while_the_file_is_there(tmp_path, tiny_blip):
    root = tmp_path / "pictures"
    (root / "sub").mkdir(parents=True)
    odd = os.fsencode(root / "sub") + b"/caf\xe9.png"
    write_bytes_path(odd, png_with("Receipt from the bakery", tmp_path))
    db = tmp_path / "i.db"
    assert run(root, db, tiny_blip).described == 1

    # The walk no longer reaches it (its folder is now a symbolic link), but the file is there.
    (root / "sub").rename(tmp_path / "elsewhere")
    (root / "sub").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert os.path.exists(odd)
    summary = run(root, db, tiny_blip, prune=True)
    assert (summary.found, summary.pruned) == (0, 0)
    with IndexStore(db) as store:
        assert store.show(os.fsdecode(odd)) is not None

    os.unlink(os.fsencode(tmp_path / "elsewhere") + b"/caf\xe9.png")  # gone: now it is forgotten
    assert run(root, db, tiny_blip, prune=True).pruned == 1
    with IndexStore(db) as store:
        assert store.show(os.fsdecode(odd)) is None and store.counts() == (0, 0)


# -- item 17: names and texts that would rewrite the terminal or split a line -------------------------

HOSTILE_NAME = "a\nb\x1b]0;pwned\x07\x1b[2J\r.png"


def test_search_and_show_print_a_hostile_name_and_text_on_their_lines(tmp_path):
    db = tmp_path / "i.db"
    path = str(tmp_path / "pics" / HOSTILE_NAME)
    stored(db, path, Analysis("tiny", "A bakery receipt.\x1b[31m Red\nsecond line", "Alt\x1b[1m text",
                              ["bakery", "red\x1b[0m"], "Total\n12 euros\x1b[0m"))

    r = run_cli("search", "bakery", "--db", str(db), "--no-speak")
    assert r.returncode == 0, r.stderr
    [line] = r.stdout.splitlines()
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout and "\r" not in r.stdout
    assert line == f"{tmp_path / 'pics'}/a\\x0ab\\x1b]0;pwned\\x07\\x1b[2J\\x0d.png: " \
                   "A bakery receipt.\\x1b[31m Red second line"

    r = run_cli("search", "bakery", "--db", str(db), "--json", "--no-speak")
    [row] = [json.loads(line) for line in r.stdout.splitlines()]
    assert row["path"] == path and row["tags"] == ["bakery", "red\x1b[0m"]  # JSON keeps the text as it is

    r = run_cli("show", path, "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout and "\r" not in r.stdout
    lines = r.stdout.splitlines()
    assert lines[-3] == f"path: {tmp_path / 'pics'}/a\\x0ab\\x1b]0;pwned\\x07\\x1b[2J\\x0d.png"
    assert lines[:7] == ["alt text: Alt\\x1b[1m text",
                         "description: A bakery receipt.\\x1b[31m Red", "second line",  # text keeps its lines
                         "tags: bakery, red\\x1b[0m", "text found:", "Total", "12 euros\\x1b[0m"]


def test_index_problems_are_one_line_each(tmp_path, tiny_blip):
    root = tmp_path / "pictures"
    root.mkdir()
    (root / HOSTILE_NAME).write_bytes(b"\x89PNG not really")
    write_bytes_path(os.fsencode(root) + b"/caf\xe9\n.png", b"")
    r = run_cli("index", str(root), "--db", str(tmp_path / "i.db"), "--model", str(tiny_blip))
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr and "\r" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 3, lines
    assert lines[0] == f"a11y-caption: {root}/a\\x0ab\\x1b]0;pwned\\x07\\x1b[2J\\x0d.png: " \
                       "a\\x0ab\\x1b]0;pwned\\x07\\x1b[2J\\x0d.png is not an image this program can read."
    assert lines[1] == f"a11y-caption: {root}/caf\\xe9\\x0a.png: caf\\xe9\\x0a.png is empty."
    assert lines[2].startswith("a11y-caption: 2 images: 0 described, 0 already indexed, 2 could not be read.")


# -- item 17: CSV cells that a spreadsheet would run ------------------------------------------------

@pytest.mark.parametrize("text", ['=HYPERLINK("http://x","y")', "+1 555", "-2+3", "@SUM(A1)", "\tTab",
                                  "\rReturn", "=cmd|' /C calc'!A0"])
def test_csv_cells_never_start_a_formula(tmp_path, text):
    db = tmp_path / "i.db"
    stored(db, str(tmp_path / "p.png"), Analysis(text, text, text, [text], "ocr"))
    out = tmp_path / "out"
    out.mkdir()
    with IndexStore(db) as store:
        written, n = index.export(store, out, "csv")
    with open(written, newline="", encoding="utf-8") as f:
        [header, row] = list(csv.reader(f))
    assert n == 1 and header == ["path", "model", "alt_text", "description", "tags"]
    assert row == [str(tmp_path / "p.png"), "'" + text, "'" + text, "'" + text, "'" + text]


def test_csv_cells_of_plain_text_are_unchanged(tmp_path):
    assert [index.csv_cell(t) for t in ("A cat.", "", "'quoted", "1 + 1 = 2", " =x")] == \
           ["A cat.", "", "'quoted", "1 + 1 = 2", " =x"]


# -- item 10: the export file -----------------------------------------------------------------------

@pytest.fixture
def exportable(tmp_path) -> Path:
    db = tmp_path / "i.db"
    stored(db, str(tmp_path / "p.png"), Analysis("tiny", "A cat on a sofa.", "A cat.", ["cat"], ""))
    return db


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_never_writes_through_a_planted_link(tmp_path, exportable, fmt):
    victim = tmp_path / "precious.txt"
    victim.write_text("the user's own file\n")
    out = tmp_path / "shared"
    out.mkdir()
    planted = out / f"a11y-caption-index.{fmt}"
    planted.symlink_to(victim)

    r = run_cli("export", str(out), "--format", fmt, "--db", str(exportable))
    assert (r.returncode, r.stdout) == (1, ""), r.stderr
    assert r.stderr == f"a11y-caption: {planted} exists already; use --force to replace it.\n"
    assert planted.is_symlink() and victim.read_text() == "the user's own file\n"

    r = run_cli("export", str(out), "--format", fmt, "--db", str(exportable), "--force")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{planted}\n"
    assert victim.read_text() == "the user's own file\n"  # replaced the link, never followed it
    assert not planted.is_symlink() and "A cat on a sofa." in planted.read_text()
    assert stat.S_IMODE(planted.stat().st_mode) == 0o600
    assert sorted(os.listdir(out)) == [planted.name]  # no temporary file left beside it


def test_an_export_is_private_and_replaced_only_with_force(tmp_path, exportable):
    out = tmp_path / "out"
    out.mkdir()
    with IndexStore(exportable) as store:
        written, n = index.export(store, out, "csv")
        assert n == 1 and stat.S_IMODE(written.stat().st_mode) == 0o600  # as private as the index
        written.write_text("edited by hand\n")
        with pytest.raises(A11yCaptionError, match=r"exists already; use --force to replace it\.$"):
            index.export(store, out, "csv")
        assert written.read_text() == "edited by hand\n"
        index.export(store, out, "csv", force=True)
    assert "A cat on a sofa." in written.read_text() and stat.S_IMODE(written.stat().st_mode) == 0o600
    assert sorted(os.listdir(out)) == [written.name]


# -- item 19: an index others can read ---------------------------------------------------------------

def test_an_index_others_can_read_is_made_private_with_its_journal(tmp_path):
    db = tmp_path / "i.db"
    with IndexStore(db) as store:
        store.put_file("/x.png", "abc", 1, 2)
    other = sqlite3.connect(db, isolation_level=None)  # another reader keeps the -wal and -shm files there
    try:
        other.execute("INSERT INTO files (path, hash, size, mtime_ns) VALUES ('/y.png', 'def', 1, 2)")
        journal = [tmp_path / "i.db-wal", tmp_path / "i.db-shm"]
        assert all(p.exists() for p in journal)
        for p in [db, *journal]:
            os.chmod(p, 0o644)  # as an older version, or a copy, left them
        with IndexStore(db) as store:
            assert store.counts() == (2, 0)
            assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in [db, *journal]} == \
                   {"i.db": 0o600, "i.db-wal": 0o600, "i.db-shm": 0o600}
    finally:
        other.close()


@as_root
def test_an_index_of_another_user_is_not_changed(tmp_path):
    db = tmp_path / "i.db"
    IndexStore(db).close()
    os.chmod(db, 0o644)
    os.chown(db, NOBODY, NOBODY)
    IndexStore(db).close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o644


# -- item 15: --limit ------------------------------------------------------------------------------

@pytest.mark.parametrize("limit", ["99999999999999999999", "0", "-1", "10001", "ten"])
def test_search_limit_out_of_range_is_one_argparse_line(tmp_path, limit):
    r = run_cli("search", "cat", "--limit", limit, "--db", str(tmp_path / "i.db"), "--no-speak")
    assert r.returncode == 2
    assert r.stderr == f"a11y-caption: argument --limit: must be a whole number from 1 to 10000, not '{limit}' " \
                       "(see a11y-caption search --help)\n"
    assert not (tmp_path / "i.db").exists()  # refused before anything was opened


def test_search_limit_at_the_bound_works(tmp_path, exportable):
    r = run_cli("search", "cat", "--limit", "10000", "--db", str(exportable), "--no-speak")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{tmp_path / 'p.png'}: A cat on a sofa.\n"
