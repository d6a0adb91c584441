"""The folder index: describe once, find by what is in it (tiny random models; OCR finds real text)."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from a11y_caption import index
from a11y_caption.config import ModelConfig
from a11y_caption.errors import A11yCaptionError
from a11y_caption.index import IndexStore, LocalAnalyser, Summary, fts_query, index_folders
from a11y_caption.describe.tags import tags_from
from conftest import run_cli, wait_for
from screens import render_screen

WORDS = {"receipt.png": "Receipt from the bakery", "error.jpg": "Error: disk is full",
         "holiday.png": "Holiday at the seaside"}


def text_image(text: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    render_screen([text], size=(520, 90), px=28, buttons=()).image.save(path)
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    """Three images with text, one in a subfolder, a broken PNG, a text file named .jpg and a note."""
    root = tmp_path / "pictures"
    text_image(WORDS["receipt.png"], root / "receipt.png")
    text_image(WORDS["error.jpg"], root / "shots" / "error.jpg")
    text_image(WORDS["holiday.png"], root / "holiday.png")
    whole = text_image("Cut short", tmp_path / "whole.png").read_bytes()
    (root / "broken.png").write_bytes(whole[: len(whole) // 2])  # a download that stopped halfway
    (root / "letter.jpg").write_text("Dear friend, this is not a picture.")
    (root / "notes.txt").write_text("not an image file name: ignored")
    return root


@pytest.fixture
def counted(monkeypatch):
    """Counts calls of the BLIP backend's generate: proof of what was (not) described."""
    from a11y_caption.captioner.blip import BlipCaptioner

    calls = []
    real = BlipCaptioner.generate

    def generate(self, request, options, stop=None):
        calls.append(request.task)
        return real(self, request, options, stop)

    monkeypatch.setattr(BlipCaptioner, "generate", generate)
    return calls


def run(folder, db, model, **kw) -> Summary:
    with IndexStore(db) as store:
        analyser = LocalAnalyser(ModelConfig(name=str(model), max_new_tokens=12))
        try:
            return index_folders([folder], store, analyser, **kw)
        finally:
            analyser.close()


def test_index_lists_bad_files_exits_zero_and_search_finds_an_ocr_word(folder, tmp_path, tiny_blip):
    db = tmp_path / "index.sqlite3"
    r = run_cli("index", str(folder), "--db", str(db), "--model", str(tiny_blip))
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[:2] == [f"a11y-caption: {folder / 'broken.png'}: broken.png is damaged and could not be read.",
                         f"a11y-caption: {folder / 'letter.jpg'}: letter.jpg is not an image this program can read."]
    assert lines[2].startswith("a11y-caption: 5 images: 3 described, 0 already indexed, 2 could not be read.")
    assert "notes.txt" not in r.stderr
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert c.execute("PRAGMA user_version").fetchone()[0] == index.SCHEMA_VERSION
        assert "PNG" not in " ".join(str(v) for row in c.execute("SELECT * FROM descriptions") for v in row)

    transcript = tmp_path / "said.txt"
    r = run_cli("search", "bakery", "--db", str(db), "--speech", "none", "--transcript", str(transcript))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith(f"{folder / 'receipt.png'}: ")
    assert len(r.stdout.splitlines()) == 1
    assert transcript.read_text().startswith("receipt.png: ")

    r = run_cli("search", "seaside holiday", "--db", str(db), "--json", "--no-speak")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["path"] for row in rows] == [str(folder / "holiday.png")]
    assert set(rows[0]) >= {"path", "model", "text", "description", "alt_text", "tags", "score"}

    r = run_cli("show", str(folder / "shots" / "error.jpg"), "--db", str(db), "--json")
    record = json.loads(r.stdout)
    assert record["path"] == str(folder / "shots" / "error.jpg")
    [d] = record["descriptions"]
    assert d["model"] == str(tiny_blip) and d["description"] and d["alt_text"]
    assert d["ocr_text"] == WORDS["error.jpg"]
    assert d["tags"] == tags_from(d["description"])


def test_second_run_describes_nothing_and_hashes_nothing(folder, tmp_path, tiny_blip, counted, monkeypatch):
    db = tmp_path / "i.db"
    first = run(folder, db, tiny_blip)
    assert (first.described, first.unchanged, len(first.bad)) == (3, 0, 2)
    assert counted == ["photo"] * 3  # BLIP: one caption per image; its alt text and tags come from it

    hashed = []
    real_hash = index.file_hash
    monkeypatch.setattr(index.walk, "file_hash", lambda p: hashed.append(p) or real_hash(p))  # what the run calls
    counted.clear()
    with IndexStore(db) as store:
        analyser = LocalAnalyser(ModelConfig(name=str(tiny_blip)))
        second = index_folders([folder], store, analyser)
    assert (second.described, second.unchanged, second.known) == (0, 3, 0)
    assert counted == [] and analyser._describer is None  # the model was not even loaded
    assert [p.name for p in hashed] == ["broken.png", "letter.jpg"]  # only the files never stored


def test_moved_changed_and_deleted_files(folder, tmp_path, tiny_blip, counted):
    db = tmp_path / "i.db"
    run(folder, db, tiny_blip)
    with IndexStore(db) as store:
        before = store.show(str(folder / "receipt.png"))["descriptions"]

    (folder / "archive").mkdir()
    shutil.move(folder / "receipt.png", folder / "archive" / "receipt-2024.png")
    text_image("Invoice for the plumber", folder / "holiday.png")  # the same name, new content
    counted.clear()
    summary = run(folder, db, tiny_blip)
    assert (summary.described, summary.known, summary.unchanged) == (1, 1, 1)
    assert len(counted) == 1
    with IndexStore(db) as store:
        assert store.show(str(folder / "archive" / "receipt-2024.png"))["descriptions"] == before
        assert [r["path"] for r in store.search("plumber")] == [str(folder / "holiday.png")]
        assert store.search("seaside") == []  # the old content's text is gone with it
        # The old path stays known until --prune (it might be on a disk that is not mounted).
        assert [r["path"] for r in store.search("bakery")] == [str(folder / "archive" / "receipt-2024.png"),
                                                               str(folder / "receipt.png")]

    (folder / "shots" / "error.jpg").unlink()
    summary = run(folder, db, tiny_blip, prune=True)
    assert summary.pruned == 2 and summary.described == 0
    with IndexStore(db) as store:
        assert store.show(str(folder / "receipt.png")) is None
        assert store.search("disk") == []
        assert [r["path"] for r in store.search("bakery")] == [str(folder / "archive" / "receipt-2024.png")]
        assert store.counts() == (2, 2)


def test_results_of_two_models_are_kept_apart(folder, tmp_path, tiny_blip, tiny_qwen):
    db = tmp_path / "i.db"
    for f in ("receipt.png", "broken.png", "letter.jpg", "holiday.png"):
        (folder / f).unlink()
    run(folder, db, tiny_blip)
    second = run(folder, db, tiny_qwen)
    assert second.described == 1  # another model: described again, the first model's text kept
    with IndexStore(db) as store:
        record = store.show(str(folder / "shots" / "error.jpg"))
        assert [d["model"] for d in record["descriptions"]] == [str(tiny_blip), str(tiny_qwen)]
        assert all(isinstance(d["tags"], list) for d in record["descriptions"])
        assert [r["model"] for r in store.search("disk", model=str(tiny_qwen))] == [str(tiny_qwen)]
        assert len(store.search("disk")) == 1  # one result per file


@pytest.mark.parametrize("query", ['bakery"', '"bakery', "bakery AND", "NOT bakery", "(bakery", "bakery)",
                                   "ocr_text:bakery", "bak*ery", "NEAR(bakery from)", "^bakery", "-bakery",
                                   "bakery's", "bakery OR", "{bakery}", "bakery + -"])
def test_search_text_is_never_fts_syntax(folder, tmp_path, tiny_blip, query):
    db = tmp_path / "i.db"
    (folder / "holiday.png").unlink()
    run(folder, db, tiny_blip)
    with IndexStore(db) as store:
        store.search(query)  # no sqlite3.OperationalError, whatever the user types
        assert store.search(query.replace("bakery", "Bakery")) == store.search(query)
    assert fts_query('say "hi"') == '"say" """hi"""'


def test_search_with_only_punctuation_is_one_line(tmp_path):
    r = run_cli("search", '" * ( )', "--db", str(tmp_path / "i.db"), "--no-speak")
    assert (r.returncode, r.stderr) == (1, "a11y-caption: Give a word to search for.\n")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export(folder, tmp_path, tiny_blip, fmt):
    db = tmp_path / "i.db"
    run(folder, db, tiny_blip)
    out = tmp_path / "out"
    out.mkdir()
    r = run_cli("export", str(out), "--format", fmt, "--db", str(db))
    assert r.returncode == 0, r.stderr
    written = out / f"a11y-caption-index.{fmt}"
    assert r.stdout.strip() == str(written)
    assert r.stderr.strip() == f"a11y-caption: wrote 3 rows to {written}"
    if fmt == "csv":
        with open(written, newline="") as f:
            rows = list(csv.DictReader(f))
        tags = [row["tags"].split(", ") for row in rows]
    else:
        rows = [json.loads(line) for line in written.read_text().splitlines()]
        tags = [row["tags"] for row in rows]
    assert [Path(row["path"]).name for row in rows] == ["holiday.png", "receipt.png", "error.jpg"]
    assert all(row["alt_text"] and row["description"] and row["model"] == str(tiny_blip) for row in rows)
    assert all(t == [w.lower() for w in t] for t in tags)


def _as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # see tests/test_control.py


def _described(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
            return c.execute("SELECT count(*) FROM descriptions").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def _consistent(db: Path) -> int:
    """Checks a database left by an interrupted run; returns how many descriptions it holds."""
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        c.execute("INSERT INTO descriptions_fts (descriptions_fts) VALUES ('integrity-check')")
        assert c.execute("SELECT count(*) FROM files f LEFT JOIN descriptions d ON d.hash = f.hash "
                         "WHERE d.id IS NULL").fetchone()[0] == 0, "a file without its description"
        n = c.execute("SELECT count(*) FROM descriptions").fetchone()[0]
        assert c.execute("SELECT count(*) FROM files").fetchone()[0] == n
        assert c.execute("SELECT count(*) FROM descriptions WHERE description = '' OR ocr_text = ''").fetchone()[0] == 0
        return n


N_PAGES = 4  # the signal comes within ~50 ms of the first stored image; each image takes longer than that


@pytest.mark.parametrize("how", ["ctrl-c", "kill-9"])
def test_an_interrupted_run_leaves_a_consistent_index_and_the_next_one_resumes(tmp_path, tiny_blip, how):
    root = tmp_path / "many"
    for i in range(N_PAGES):
        text_image(f"Page {i} of the manual", root / f"page{i}.png")
    db = tmp_path / "i.db"
    args = [sys.executable, "-m", "a11y_caption", "index", str(root), "--db", str(db), "--model", str(tiny_blip)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, preexec_fn=_as_in_a_terminal)
    try:
        wait_for(lambda: _described(db) >= 1 or proc.poll() is not None, timeout=120)
        proc.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if how == "ctrl-c":
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1].startswith("a11y-caption: Stopped after ")
        assert "Traceback" not in err
    else:
        assert proc.returncode == -signal.SIGKILL
    kept = _consistent(db)
    assert 1 <= kept < N_PAGES

    r = run_cli("index", str(root), "--db", str(db), "--model", str(tiny_blip))
    assert r.returncode == 0, r.stderr
    assert f"{N_PAGES} images: {N_PAGES - kept} described, {kept} already indexed" in r.stderr
    assert _consistent(db) == N_PAGES


def test_schema_migrations(tmp_path, monkeypatch):
    db = tmp_path / "i.db"
    with IndexStore(db) as store:
        assert store.version == index.SCHEMA_VERSION == len(index.MIGRATIONS)
        store.put_file("/x.png", "abc", 1, 2)
    # A later version adds a step: an existing index is brought up to date and keeps its rows.
    step = ("ALTER TABLE files ADD COLUMN note TEXT NOT NULL DEFAULT ''",)
    monkeypatch.setattr(index.store, "MIGRATIONS", (*index.MIGRATIONS, step))  # where the store reads them
    monkeypatch.setattr(index.store, "SCHEMA_VERSION", index.SCHEMA_VERSION + 1)
    with IndexStore(db) as store:
        assert store.version == index.store.SCHEMA_VERSION == index.SCHEMA_VERSION + 1
        assert store.db.execute("SELECT path, note FROM files").fetchall() == [("/x.png", "")]
    monkeypatch.undo()
    # An index made by a newer version is refused, not damaged.
    with pytest.raises(A11yCaptionError, match="made by a newer a11y-caption"):
        IndexStore(db)


def test_a_file_that_is_no_index_is_one_line(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_text("this is no database " * 100)
    r = run_cli("search", "anything", "--db", str(bad), "--no-speak")
    assert r.returncode == 1
    assert r.stderr.startswith(f"a11y-caption: The index {bad} is damaged or not an index")
    assert len(r.stderr.splitlines()) == 1


def test_symlinks_out_of_the_folder_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    text_image("Secret", outside / "secret.png")
    root = tmp_path / "root"
    text_image("Inside", root / "inside.png")
    (root / "link.png").symlink_to(outside / "secret.png")
    (root / "linked-folder").symlink_to(outside, target_is_directory=True)
    assert index.find_images([root], []) == [root / "inside.png"]


def test_tags_are_lowercase_words():
    assert tags_from("Cat, dog, RED car, cat, 42, a, the image of a sofa.") == ["cat", "dog", "red", "car", "sofa"]
    assert tags_from("a man riding a skateboard down a street") == ["man", "riding", "skateboard", "down", "street"]
    assert len(tags_from(" ".join(f"word{chr(97 + i)}x" for i in range(26)))) == 12


@pytest.mark.parametrize("family", ["qwen2-vl-2b", "blip-base"])
def test_describe_tags_in_json(tiny_models, family):
    from conftest import SAMPLE

    r = run_cli("describe", str(SAMPLE), "--model", str(tiny_models[family]), "--no-speak", "--json", "--tags",
                "--max-new-tokens", "12")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert isinstance(row["tags"], list) and row["tags"], row
    assert all(t == t.lower() and " " not in t for t in row["tags"])


class StandInAgent:
    """Answers like the agent's control endpoint (control.py): status, describe by task, read."""

    def __init__(self):
        self.requests = []

    def __call__(self, request, image, reply):
        self.requests.append((request, image))
        op, task = request["op"], request.get("task")
        if op == "status":
            reply.done(state="ready", model="Salesforce/blip-image-captioning-base")
        elif op == "read":
            reply.done(text="Total 12 euros", lines=["Total 12 euros"])
        elif op == "ask":
            reply.chunk("Receipt, ")
            reply.done(text="Receipt, Table")
        elif task == "question":
            reply.chunk("Receipt, paper, ")
            reply.done(text="Receipt, paper, bakery")
        else:
            reply.chunk("A paper receipt on a wooden table. ")
            reply.done(text={"photo": "A paper receipt on a wooden table. It is crumpled.",
                              "alt_text": "A crumpled paper receipt."}[task or "photo"], model="stand-in")


@pytest.fixture
def agent_at_endpoint(tmp_path, monkeypatch):
    """Contract tests: a stand-in for the agent's request handler behind the real control endpoint."""
    from a11y_caption.agent import control

    monkeypatch.setenv("A11Y_CAPTION_RUNTIME_DIR", str(tmp_path / "run"))
    agent = StandInAgent()
    server = control.ControlServer(agent, control.runtime_dir(create=True))
    server.start()
    try:
        yield agent
    finally:
        server.close()


def test_index_goes_through_the_running_agent(tmp_path, agent_at_endpoint):
    from a11y_caption.captioner.prompts import TAGS_PROMPT

    root = tmp_path / "pictures"
    picture = text_image("Total 12 euros", root / "r.png")
    db = tmp_path / "i.db"
    said = tmp_path / "said.txt"
    r = run_cli("index", str(root), "--db", str(db), "--speak", "--speech", "none", "--transcript", str(said))
    assert r.returncode == 0, r.stderr
    assert "1 image: 1 described" in r.stderr
    assert said.read_text() == "1 image to describe.\n1 image: 1 described, 0 already indexed, 0 could not be read.\n"
    r = run_cli("search", "crumpled euros", "--db", str(db), "--json", "--no-speak")
    [row] = [json.loads(line) for line in r.stdout.splitlines()]
    assert row == {"path": str(picture), "model": "Salesforce/blip-image-captioning-base",
                   "text": "A paper receipt on a wooden table.",
                   "description": "A paper receipt on a wooden table. It is crumpled.",
                   "alt_text": "A crumpled paper receipt.", "tags": ["receipt", "paper", "bakery"],
                   "score": row["score"]}
    sent = [(q["op"], q.get("task"), q.get("prompt"), q.get("speak"), image) for q, image in agent_at_endpoint.requests]
    data = picture.read_bytes()
    assert sent[1:] == [("describe", "photo", None, False, data), ("describe", "alt_text", None, False, data),
                        ("describe", "question", TAGS_PROMPT, False, data), ("read", None, None, False, data)]


@pytest.mark.parametrize("family", ["qwen2-vl-2b", "blip-base"])
def test_batched_captions_match_one_at_a_time(tiny_models, family):
    """generate_batch (measured against one image per call by `bench --index`) pads images of
    different sizes and prompts of different lengths without changing any answer (greedy)."""
    from a11y_caption.captioner.base import GenerationOptions, Request
    from a11y_caption.captioner.factory import load_captioner

    captioner = load_captioner(str(tiny_models[family]), quantize="none", dtype="fp32")
    requests = [Request(render_screen(["Hello"], size=(320, 120)).image, "photo"),
                Request(Image.effect_mandelbrot((200, 300), (-2, -1.2, 1, 1.2), 30).convert("RGB"), "alt_text"),
                Request(render_screen(size=(640, 400)).image, "screen")]
    options = GenerationOptions(max_new_tokens=8)
    alone = []
    for r in requests:
        alone.append(captioner.generate(r, options).collect().text)
        captioner.forget()  # each alone, with nothing kept from the one before
    assert captioner.generate_batch(requests, options) == alone


def test_describe_tags_through_the_running_agent(tmp_path, agent_at_endpoint):
    """describe --json --tags asks the agent a follow-up for the tags."""
    from a11y_caption.captioner.prompts import TAGS_PROMPT

    picture = text_image("Total 12 euros", tmp_path / "r.png")
    r = run_cli("describe", str(picture), "--json", "--tags", "--no-speak")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert (row["text"], row["tags"]) == ("A paper receipt on a wooden table. It is crumpled.", ["receipt", "table"])
    assert [(q["op"], q.get("question")) for q, _ in agent_at_endpoint.requests][-2:] == [("describe", None), ("ask", TAGS_PROMPT)]
