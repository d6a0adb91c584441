"""The index by ear: its progress said and printed as plain text (the count at the start, the time
left once the first images have shown how long one takes, then every 10 % or every minute, never
more often than every 30 s), `show` with the description first, a file that cannot be read said
so, and search by the names of files and folders. The timing is a pure function of a given clock;
one run of the real command with a transcript voice, and one in a pseudo-terminal, check the rest."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from a11y_caption import index
from a11y_caption.index import Analysis, IndexStore
from by_ear import fake_espeak, in_terminal, orca_running  # noqa: F401  (fixtures)
from conftest import run_cli
from test_index import text_image


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_images(report, clock: Clock, seconds: list[float]) -> list[tuple[float, str]]:
    """Each image takes its seconds and is described; the reports made, with when."""
    said = [(clock.now, report.start())]
    for done, s in enumerate(seconds, 1):
        clock.now += s
        message = report.step(done, described=True)
        if message:
            said.append((clock.now, message))
    return said


# -- what is said, and when ------------------------------------------------------------------------

def test_the_start_says_how_many_images_there_are_to_describe():
    assert index.ProgressReport(30, 30, clock=Clock()).start() == "30 images to describe."
    assert index.ProgressReport(1, 1, clock=Clock()).start() == "1 image to describe."
    assert index.ProgressReport(12, 1000, clock=Clock()).start() == "12 of 1000 images to describe."
    assert index.ProgressReport(0, 1000, clock=Clock()).start() is None  # nothing new: the summary says it all


def test_the_time_left_comes_once_the_first_images_gave_a_time_per_image():
    clock = Clock()
    report = index.ProgressReport(30, 30, clock=clock)
    said = run_images(report, clock, [25.0] + [18.0] * 5)  # the first one loads the model too
    assert said == [(0.0, "30 images to describe."),
                    (43.0, "About 8 minutes left."),  # 28 more at 18 s each; the first one's 25 s do not count
                    (79.0, "4 of 30, 13 %, 8 minutes left."),  # 10 % passed, and 30 s since the last
                    (115.0, "6 of 30, 20 %, 7 minutes left.")]


def test_every_minute_when_ten_percent_takes_longer():
    clock = Clock()
    report = index.ProgressReport(1000, 1000, clock=clock)
    said = run_images(report, clock, [5.0] * 60)
    times = [t for t, _ in said]
    assert times == [0.0, 10.0, 70.0, 130.0, 190.0, 250.0]
    assert said[1][1] == "About 1 hour 25 minutes left."  # 998 at 5 s
    assert said[2][1] == "14 of 1000, 1 %, 1 hour 20 minutes left."


def test_never_more_often_than_every_30_seconds_and_not_at_the_end():
    clock = Clock()
    report = index.ProgressReport(20, 20, clock=clock)
    said = run_images(report, clock, [10.0] * 20)  # every image passes 5 %: 10 % every 20 s
    regular = [t for t, m in said if " of 20, " in m]
    assert regular == [50.0, 80.0, 110.0, 140.0, 170.0]
    assert all(b - a >= 30 for a, b in zip(regular, regular[1:]))
    assert said[1] == (20.0, "About 3 minutes left.")
    assert not any(m.startswith("20 of 20") for _, m in said)  # the summary follows at once


def test_a_slow_first_image_is_reported_without_a_guess():
    clock = Clock()
    report = index.ProgressReport(30, 30, clock=clock)
    report.start()
    clock.now = 75.0  # loading the model took a while
    assert report.step(1, described=True) == "1 of 30, 3 %."  # no time per image yet: no estimate
    clock.now = 80.0
    assert report.step(2, described=True) == "About 2 minutes left."  # 28 at 5 s, said at once


def test_the_pace_is_taken_from_after_the_first_described_image():
    clock = Clock()
    report = index.ProgressReport(100, 100, clock=clock)
    report.start()
    for done in (1, 2, 3):  # known content or a broken file: fast, no model
        clock.now += 0.01
        assert report.step(done, described=False) is None
    clock.now += 20.0
    assert report.step(4, described=True) is None  # the first described one: the model was loading
    clock.now += 6.0
    assert report.step(5, described=True) == "About 10 minutes left."  # 95 more at 6 s


@pytest.mark.parametrize("seconds, words", [(0, "less than a minute"), (59, "less than a minute"),
                                            (60, "1 minute"), (89, "1 minute"), (90, "2 minutes"),
                                            (9 * 60, "9 minutes"), (59 * 60, "59 minutes"), (3600, "1 hour"),
                                            (75 * 60, "1 hour 15 minutes"), (2 * 3600 + 7 * 60, "2 hours 5 minutes"),
                                            (2 * 3600 + 58 * 60, "3 hours")])
def test_durations_in_words(seconds, words):
    assert index.duration_words(seconds) == words


@pytest.mark.parametrize("speak, no_speak, engine, cli, reader, voice", [
    (False, False, "auto", "auto", False, None),  # nobody listens: the terminal line only
    (False, False, "auto", "auto", True, "reader"),  # a screen reader: progress is said through it
    (True, False, "auto", "auto", False, "speak"),
    (True, False, "auto", "auto", True, "speak"),
    (False, True, "auto", "auto", True, None),
    (False, False, "none", "auto", True, None),
    (True, False, "none", "auto", False, "speak"),  # --speech none --transcript: the transcript has it
    (False, False, "auto", "print", True, None),
    (False, False, "auto", "speak", False, "speak"),
])
def test_who_says_the_progress(speak, no_speak, engine, cli, reader, voice):
    asked = []
    got = index.progress_voice(speak=speak, no_speak=no_speak, engine=engine, cli=cli,
                         reader=lambda: asked.append(1) or reader)
    assert got == voice
    assert len(asked) <= 1


# -- the real command ----------------------------------------------------------------------------------

@pytest.fixture
def three(tmp_path) -> Path:
    root = tmp_path / "pictures"
    for i in range(3):
        text_image(f"Page {i} of the letter", root / f"page{i}.png")
    return root


PROGRESS = re.compile(r"(Less than a minute left|About [\w ]+ left|\d+ of 3, \d+ %(, [\w ]+ left)?)\.")


def test_speak_says_the_count_at_the_start_and_the_summary_at_the_end(three, tmp_path, tiny_blip):
    said = tmp_path / "said.txt"
    r = run_cli("index", str(three), "--db", str(tmp_path / "i.db"), "--model", str(tiny_blip), "--speak",
                "--speech", "none", "--transcript", str(said))
    assert r.returncode == 0, r.stderr
    lines = said.read_text().splitlines()
    assert lines[0] == "3 images to describe."
    assert lines[-1] == "3 images: 3 described, 0 already indexed, 0 could not be read."
    assert all(PROGRESS.fullmatch(line) for line in lines[1:-1]), lines
    # A second run has nothing to describe: only the summary.
    said.unlink()
    r = run_cli("index", str(three), "--db", str(tmp_path / "i.db"), "--model", str(tiny_blip), "--speak",
                "--speech", "none", "--transcript", str(said))
    assert said.read_text() == "3 images: 0 described, 3 already indexed, 0 could not be read.\n"


def _stderr_in_terminal(*args: str, env: dict | None = None, timeout: float = 240) -> tuple[int, str]:
    """The command with its standard error on a pseudo-terminal, as in a terminal window."""
    status, shown, _out = in_terminal(*args, env=env, stream="stderr", timeout=timeout)
    return status, shown


def test_on_a_terminal_progress_is_plain_lines_not_a_redrawn_bar(three, tmp_path, tiny_blip):
    status, err = _stderr_in_terminal("index", str(three), "--db", str(tmp_path / "i.db"), "--model", str(tiny_blip),
                                      "--no-speak")
    assert status == 0, err
    assert "\r" not in err, "a line redrawn in place: a screen reader reads each redraw, or nothing"
    assert not re.search("[\u2580-\u259f|#]{2,}", err), "block characters are read as noise"
    lines = err.splitlines()
    assert lines[0] == "a11y-caption: 3 images to describe."
    assert lines[-1].startswith("a11y-caption: 3 images: 3 described, 0 already indexed, 0 could not be read.")
    assert all(PROGRESS.fullmatch(line.removeprefix("a11y-caption: ")) for line in lines[1:-1]), lines


def test_with_a_screen_reader_progress_is_said_once_not_printed_too(three, tmp_path, tiny_blip, fake_espeak,
                                                                    orca_running):
    env, spoken = fake_espeak
    status, err = _stderr_in_terminal("index", str(three), "--db", str(tmp_path / "i.db"), "--model", str(tiny_blip),
                                      "--speech", "espeak-ng", env=env)
    assert status == 0, err
    said = [line for line in spoken.read_text().splitlines() if line.strip()]
    assert said[0] == "3 images to describe."
    assert said[-1] == "3 images: 3 described, 0 already indexed, 0 could not be read."
    # The screen reader reads the terminal too: the progress is not printed a second time.
    lines = err.splitlines()
    assert not any("to describe" in line or " left." in line for line in lines), lines
    assert lines[-1].startswith("a11y-caption: 3 images: 3 described, 0 already indexed, 0 could not be read.")


# -- show ---------------------------------------------------------------------------------------------

def stored(db: Path, path: str, analysis: Analysis) -> str:
    digest = hashlib.blake2b(os.fsencode(path), digest_size=20).hexdigest()
    with IndexStore(db) as store:
        store.put_description(path, digest, 10, 0, analysis)
    return digest


def test_show_says_the_description_first_and_the_hash_last(tmp_path):
    db = tmp_path / "i.db"
    path = str(tmp_path / "beach.png")
    digest = stored(db, path, Analysis("tiny", "A beach at sunset. Two people walk.", "A beach at sunset.",
                                       ["beach", "sunset"], "WELCOME"))
    r = run_cli("show", path, "--db", str(db))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:5] == ["alt text: A beach at sunset.", "description: A beach at sunset. Two people walk.",
                         "tags: beach, sunset", "text found:", "WELCOME"]
    assert lines[5].startswith("model: tiny (described ")
    assert lines[-1] == f"hash: {digest}"
    assert lines.index(f"path: {path}") > 5


def test_show_says_why_a_file_is_not_in_the_index(tmp_path):
    db = tmp_path / "i.db"
    stored(db, str(tmp_path / "other.png"), Analysis("tiny", "A cat.", "A cat.", ["cat"], ""))
    picture = text_image("Hello", tmp_path / "new.png")
    (tmp_path / "letter.jpg").write_text("Dear friend, this is not a picture.")
    (tmp_path / "notes.txt").write_text("words")

    def show(path) -> str:
        r = run_cli("show", str(path), "--db", str(db))
        assert r.returncode == 1 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r
        return r.stderr.removeprefix("a11y-caption: ").strip()

    assert show(picture) == f"{picture} is not in the index; index its folder first."
    assert show(tmp_path / "gone.png") == f"{tmp_path / 'gone.png'} does not exist."
    assert show(tmp_path) == f"{tmp_path} is a folder; give one image file (search finds images by words)."
    assert show(tmp_path / "letter.jpg") == \
        f"{tmp_path / 'letter.jpg'} cannot be indexed: letter.jpg is not an image this program can read."
    assert show(tmp_path / "notes.txt") == \
        f"{tmp_path / 'notes.txt'} is not in the index: only image files (.png, .jpg and the like) are indexed."


def test_show_says_a_file_that_cannot_be_read_cannot_be_read(tmp_path, monkeypatch):
    picture = text_image("Hello", tmp_path / "locked.png")
    real_open = os.open

    def refuse(path, flags, *a, **kw):  # as root a chmod 000 file can still be read: refuse it here
        if os.fspath(path) == str(picture):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", refuse)
    assert index.why_not_indexed(picture) == \
        f"{picture} cannot be read (Permission denied); make it readable to you, then index its folder again."


@pytest.mark.skipif(os.getuid() == 0, reason="root reads a file of mode 000")
def test_show_of_an_unreadable_file_in_the_command(tmp_path):
    picture = text_image("Hello", tmp_path / "locked.png")
    picture.chmod(0)
    r = run_cli("show", str(picture), "--db", str(tmp_path / "i.db"))
    assert r.returncode == 1
    assert r.stderr == f"a11y-caption: {picture} cannot be read (Permission denied); make it readable to you, " \
                       "then index its folder again.\n"


# -- search by name ---------------------------------------------------------------------------------

def test_search_finds_file_and_folder_names(tmp_path):
    db = tmp_path / "i.db"
    beach = str(tmp_path / "Holidays 2023" / "IMG_0042 sunset-beach.png")
    invoice = str(tmp_path / "scans" / "invoice_plumber.jpg")
    stored(db, beach, Analysis("tiny", "Two people on sand.", "Two people.", ["people", "sand"], ""))
    stored(db, invoice, Analysis("tiny", "A sheet of paper.", "A paper.", ["paper"], "Total 12 euros"))
    with IndexStore(db) as store:
        def found(query):
            return [r["path"] for r in store.search(query)]

        assert found("sunset") == [beach]  # a word of the file name
        assert found("holiday") == [beach]  # a folder's name, stemmed as the descriptions are
        assert found("IMG_0042") == [beach]
        assert found("holidays people") == [beach]  # one word in the path, one in the description
        assert found("plumber euros") == [invoice]
        assert found("plumber sand") == []  # every word must match, somewhere in the same file
        assert found("scans") == [invoice]
        assert found("png OR jpg") == []  # still no operators: "OR" is a word to find


def test_search_by_name_survives_hostile_names_and_queries(tmp_path):
    db = tmp_path / "i.db"
    odd = str(tmp_path / 'x" OR 1=1; DROP TABLE files; --' / "a'b\"c NEAR(d).png")
    stored(db, odd, Analysis("tiny", "A cat.", "A cat.", ["cat"], ""))
    with IndexStore(db) as store:
        assert [r["path"] for r in store.search("DROP TABLE")] == [odd]
        assert [r["path"] for r in store.search('NEAR(d)')] == [odd]
        assert [r["path"] for r in store.search('"c cat')] == [odd]
        assert store.counts() == (1, 1)


def test_an_index_of_schema_1_is_migrated_and_its_names_found(tmp_path, monkeypatch):
    db = tmp_path / "i.db"
    monkeypatch.setattr(index.store, "MIGRATIONS", index.MIGRATIONS[:1])
    monkeypatch.setattr(index.store, "SCHEMA_VERSION", 1)
    path = str(tmp_path / "birthday" / "cake.png")
    stored(db, path, Analysis("tiny", "A cake with candles.", "A cake.", ["cake"], ""))
    monkeypatch.undo()
    with IndexStore(db) as store:
        assert store.version == index.SCHEMA_VERSION >= 2
        assert [r["path"] for r in store.search("birthday candles")] == [path]
        store.forget_file(path)
        assert store.search("birthday") == [] and store.counts() == (0, 0)
