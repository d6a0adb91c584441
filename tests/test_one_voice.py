"""By ear in a terminal: one voice at a time (a command prints only where the screen reader reads
its output), a cue for every wait longer than about a second, and each file's name said before its
description. Run as a user runs them: the real command in a pseudo-terminal, a real process named
orca running, and eSpeak NG's command-line interface stood in for by a script that notes what it is
given (a contract test of that interface: text on standard input)."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import pytest

from a11y_caption.cli import cues
from a11y_caption.cli.common import speaks
from a11y_caption.cli.local import _started
from a11y_caption.config import SpeechConfig
from a11y_caption.speech.screen_reader import screen_reader_running
from by_ear import fake_espeak, in_terminal, orca_running  # noqa: F401  (fixtures)
from conftest import REPO, SAMPLE, TranscriptVoice, run_cli, wait_for
from model_server import stand_in  # noqa: F401  (fixture)

def test_screen_reader_found_by_its_process(orca_running):
    assert screen_reader_running()
    orca_running.kill()
    orca_running.wait()
    assert wait_for(lambda: not screen_reader_running(), timeout=10)


def test_in_a_terminal_with_a_screen_reader_a_command_prints_and_does_not_speak(fake_espeak, orca_running):
    env, spoken = fake_espeak
    status, out, err = in_terminal("read", str(SAMPLE), "--local", "--speech", "espeak-ng", env=env)
    assert status == 0, err
    assert "Save" in out or out.strip(), out
    assert spoken.read_text() == "", "the screen reader reads the printed text; a second voice read it again"


def test_speak_flag_speaks_even_there(fake_espeak, orca_running):
    env, spoken = fake_espeak
    status, out, err = in_terminal("read", str(SAMPLE), "--local", "--speech", "espeak-ng", "--speak", env=env)
    assert status == 0, err
    assert spoken.read_text().strip(), "--speak: spoken as well as printed"
    text = [line for line in spoken.read_text().splitlines() if line != "Reading."]  # the wait's cue
    assert text and text[0] in out


def test_without_a_screen_reader_a_terminal_command_speaks(fake_espeak):
    env, spoken = fake_espeak
    assert not screen_reader_running()
    status, out, err = in_terminal("read", str(SAMPLE), "--local", "--speech", "espeak-ng", env=env)
    assert status == 0, err
    assert spoken.read_text().strip(), "nobody else reads the terminal: the command speaks"


def test_output_to_a_pipe_is_spoken_with_a_screen_reader(fake_espeak, orca_running):
    env, spoken = fake_espeak
    r = run_cli("read", str(SAMPLE), "--local", "--speech", "espeak-ng", env=env)
    assert r.returncode == 0, r.stderr
    assert spoken.read_text().strip(), "output to a pipe or file is read by no one: it is spoken"


def test_cli_setting_print_and_speak(fake_espeak, tmp_path):
    env, spoken = fake_espeak
    config = tmp_path / "hotkeys.toml"
    text = (REPO / "hotkeys.toml").read_text()
    assert 'cli = "auto"' in text
    config.write_text(text.replace('cli = "auto"', 'cli = "print"'))
    r = run_cli("read", str(SAMPLE), "--local", "--speech", "espeak-ng", "--config", str(config), env=env)
    assert r.returncode == 0, r.stderr
    assert spoken.read_text() == "", 'cli = "print": never spoken'
    config.write_text(text.replace('cli = "auto"', 'cli = "bogus"'))
    r = run_cli("read", str(SAMPLE), "--local", "--config", str(config))
    assert r.returncode == 1 and "cli must be one of auto, print, speak" in r.stderr, r.stderr


@pytest.mark.parametrize("cli, tty, reader, flags, expected", [
    ("auto", True, True, {}, False),
    ("auto", True, False, {}, True),
    ("auto", False, True, {}, True),
    ("auto", True, True, {"speak": True}, True),
    ("speak", True, True, {}, True),
    ("speak", False, False, {"no_speak": True}, False),
    ("print", False, False, {}, False),
    ("print", True, True, {"speak": True}, True),
])
def test_who_speaks(monkeypatch, cli, tty, reader, flags, expected):
    monkeypatch.setattr("a11y_caption.speech.screen_reader.screen_reader_running", lambda: reader)

    class Out:
        def isatty(self):
            return tty

    monkeypatch.setattr(sys, "stdout", Out())
    args = argparse.Namespace(**{"speak": False, "no_speak": False, **flags})
    assert speaks(args, SpeechConfig(cli=cli)) is expected


def test_several_files_are_each_said_with_their_name(tmp_path):
    second = tmp_path / "second picture.png"
    shutil.copy(SAMPLE, second)
    transcript = tmp_path / "said.txt"
    r = run_cli("read", str(SAMPLE), str(second), "--local", "--speech", "none", "--transcript", str(transcript))
    assert r.returncode == 0, r.stderr
    said = transcript.read_text().splitlines()
    names = [line for line in said if line in (f"File {SAMPLE.name}:", "File second picture.png:")]
    assert names == [f"File {SAMPLE.name}:", "File second picture.png:"], said
    assert said.index(names[1]) > said.index(names[0]) + 1, "each name comes before its own text"
    assert f"{SAMPLE}:" in r.stdout and f"{second}:" in r.stdout


def test_a_wait_for_the_first_words_is_said(stand_in, tmp_path):
    server = stand_in()
    server.first_word_delay = 2.5
    transcript = tmp_path / "said.txt"
    r = run_cli("describe", str(SAMPLE), "--server", server.url, "--model", "stand-in-model", "--speech", "none",
                "--transcript", str(transcript))
    assert r.returncode == 0, r.stderr
    said = transcript.read_text().splitlines()
    assert "Describing." in said, said
    assert "Press OK" in " ".join(said[said.index("Describing.") + 1:]), "the cue comes before the answer"
    assert "a11y-caption: Describing." in r.stderr
    assert "Loading the model" not in r.stderr, "a server's model is not loaded here"


class _SlowDescriber:
    """Loads in ``load_seconds`` (as a model does), then describes."""

    def __init__(self, load_seconds: float):
        self.load_seconds, self.captioner, self.loaded = load_seconds, None, False

    def describe(self):
        if not self.loaded:
            time.sleep(self.load_seconds)
            self.captioner, self.loaded = object(), True
        return iter(["A dialog."])


def _speaker():
    from a11y_caption.speech import Speaker

    voice = TranscriptVoice()
    return Speaker(voice), voice


def test_a_slow_load_is_said_with_the_time_it_took_last_time():
    speaker, voice = _speaker()
    try:
        describer = _SlowDescriber(1.4)
        generation, cue = _started(describer, speaker, "some/model", describer.describe)
        list(cues.cancelled_at_first(generation, cue))
        generation, cue = _started(describer, speaker, "some/model", describer.describe)  # loaded: no cue
        list(cues.cancelled_at_first(generation, cue))
        assert cues.load_cue("some/model") == "Loading the model; last time it took about 1 second."
        speaker.wait()
    finally:
        speaker.close()
    assert voice.said == ["Loading the model."], "the first load is said; a quick one is not"


def test_a_quick_answer_has_no_cue():
    speaker, voice = _speaker()
    try:
        describer = _SlowDescriber(0.0)
        describer.loaded, describer.captioner = True, object()
        generation, cue = _started(describer, speaker, "m", describer.describe)
        assert list(cues.cancelled_at_first(generation, cue)) == ["A dialog."]
        time.sleep(cues.CUE_AFTER + 0.3)
        speaker.wait()
    finally:
        speaker.close()
    assert voice.said == []


def test_load_times_file_is_private_and_survives_garbage():
    cues.remember_load_seconds("m", 12.34)
    path = Path(cues._times_file())
    assert path.stat().st_mode & 0o777 == 0o600
    assert cues.load_cue("m") == "Loading the model; last time it took about 12 seconds."
    path.write_text("[not a dict")
    assert cues.load_cue("m") == "Loading the model."
    cues.remember_load_seconds("m", 200)
    assert cues.load_cue("m") == "Loading the model; last time it took about 3 minutes."
