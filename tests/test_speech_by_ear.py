"""Speech as a new user hears it: whole sentences where the text is whole, voices that can be
listed and a wrong voice said out loud, and one sentence on how to get a voice where none starts."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import threading
from argparse import Namespace
from pathlib import Path

import pytest
from PIL import Image

from a11y_caption.captioner.base import Captioner, Generation
from a11y_caption.config import ModelConfig, SpeechConfig
from a11y_caption.describe.describer import Describer
from a11y_caption.errors import SpeechError
from a11y_caption.speech import Speaker, WholeText, choose, list_voices, open_speaker

REPO = Path(__file__).resolve().parents[1]
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make test installs it)")


class Recorder:
    """A reader-style voice that says each utterance at once and remembers it."""

    engine = "test"
    can_braille = False

    def __init__(self):
        self.said: list[str] = []
        self.spoken = threading.Event()

    def speak(self, text, on_end):
        self.said.append(text)
        self.spoken.set()
        on_end("done")

    def cancel(self):
        pass

    def braille(self, text):
        pass

    def close(self):
        pass


def _heard(chunks) -> list[str]:
    voice = Recorder()
    speaker = Speaker(voice)
    try:
        speaker.say_stream(chunks)
        assert speaker.wait(5)
    finally:
        speaker.close()
    return voice.said


# -- whole sentences where the text is whole -------------------------------------------------------

BLANK = "The screen is a single plain colour, with no text or pictures."


def test_a_whole_sentence_given_as_one_chunk_is_one_utterance():
    assert _heard(iter([BLANK])) == [BLANK]
    assert _heard(iter(["Saved. " + BLANK])) == ["Saved.", BLANK]


def test_the_blank_check_is_spoken_as_one_sentence():
    generation = Describer(ModelConfig(name="ocr")).describe(Image.new("RGB", (800, 600), (128, 128, 128)), "screen")
    said = _heard(generation)
    assert len(said) == 1 and said[0] == generation.text.strip(), said


def test_whole_text_without_a_full_stop_is_one_utterance():
    caption = "a red car parked on the side of a street"  # a caption model writes no full stop
    assert _heard(iter([WholeText(caption)])) == [caption]


class WordByWord(Captioner):
    """A captioner whose answer comes a word at a time, as a model writes it."""

    name = "words"
    reads_text = True
    answers_questions = False

    def __init__(self, answer: str):
        self.answer = answer

    def generate(self, request, options, stop=None):
        def chunks():
            for i, word in enumerate(self.answer.split(" ")):
                yield word if i == 0 else " " + word

        return Generation(chunks(), stop or threading.Event(), self.name)

    def close(self):
        pass


def test_an_answer_from_the_cache_is_spoken_whole_and_a_model_stream_early():
    caption = "a red car parked on the side of a street"
    describer = Describer(ModelConfig(name="words"))
    describer.captioner = WordByWord(caption)
    photo = Image.frombytes("RGB", (64, 48), random.Random(0).randbytes(64 * 48 * 3))  # not blank
    assert _heard(describer.describe(photo, "alt_text")) == ["a red car parked on the", "side of a street"]
    assert _heard(describer.describe(photo, "alt_text")) == [caption], "the same answer, from the cache"


def test_the_tree_facts_are_said_at_once_and_the_model_still_gets_its_early_first_words():
    """A focused object: the tree's sentence is whole and said first; the model's first six words
    after it are still said before its first full stop, not held back because something was said."""
    from a11y_caption.capture.tree import AccessibleObject
    from a11y_caption.describe.objects import facts_of

    describer = Describer(ModelConfig(name="words"))
    describer.captioner = WordByWord("a red car parked on the side of a street")
    photo = Image.frombytes("RGB", (64, 48), random.Random(1).randbytes(64 * 48 * 3))
    heard = _heard(describer.describe(photo, "object", facts=facts_of(AccessibleObject("push button"))))
    assert heard == ["Push button, no label.", "a red car parked on the", "side of a street"]


def test_a_slow_stream_of_words_still_gets_its_first_piece_after_six_words():
    voice = Recorder()
    speaker = Speaker(voice)
    heard_while_writing = []

    def chunks():
        for word in "The settings window shows three tabs".split():
            yield word + " "
        voice.spoken.wait(5)  # the model has not written the rest yet
        heard_while_writing.extend(voice.said)
        yield "and a search field."

    try:
        speaker.say_stream(chunks())
        assert speaker.wait(5)
    finally:
        speaker.close()
    assert heard_while_writing == ["The settings window shows three tabs"]
    assert voice.said == ["The settings window shows three tabs", "and a search field."]


# -- voices: listed, and a wrong one said ----------------------------------------------------------

NO_SUCH_VOICE = "There is no voice 'zz-bogus'; a11y-caption voices lists them."


@needs_espeak
def test_espeak_ng_voices_are_listed():
    voices = list_voices(SpeechConfig(engine="espeak-ng"))
    assert ("gmw/en-US", "English (America)", "en-us") in voices
    assert len(voices) > 50 and all(len(v) == 3 and all(v) for v in voices)


@needs_espeak
def test_the_system_voices_are_listed_for_auto_and_pyttsx3():
    voices = list_voices(SpeechConfig(engine="pyttsx3"))
    assert any(language == "en-us" for _, _, language in voices), voices[:5]
    assert list_voices(SpeechConfig(engine="auto")) == voices  # no screen reader here: the system voice
    assert list_voices(SpeechConfig(engine="none")) == []


def test_speech_dispatcher_voices_are_listed_and_a_wrong_one_said(monkeypatch, capsys, tmp_path):
    from screen_readers import SpeechDispatcher

    daemon = SpeechDispatcher()
    try:
        monkeypatch.setenv("SPEECHD_ADDRESS", daemon.address)
        voices = list_voices(SpeechConfig(engine="speech-dispatcher"))
        assert ("English (America)", "English (America)", "en-US") in voices
        assert not any("+" in name for _, name, _ in voices), "the variants of each voice are left out"
        speaker = open_speaker(SpeechConfig(engine="speech-dispatcher", voice="English (America)"))
        speaker.close()
        assert capsys.readouterr().err == ""
        transcript = tmp_path / "said.txt"
        speaker = open_speaker(SpeechConfig(engine="speech-dispatcher", voice="zz-bogus", transcript=str(transcript)))
        try:
            assert speaker.engine == "speech-dispatcher" and speaker.wait(10)
        finally:
            speaker.close()
        assert capsys.readouterr().err.splitlines() == [f"a11y-caption: {NO_SUCH_VOICE}"]
        assert transcript.read_text().splitlines() == [NO_SUCH_VOICE]
    finally:
        daemon.close()


@needs_espeak
@pytest.mark.parametrize("engine", ["pyttsx3", "auto", "espeak-ng"])
def test_an_unknown_voice_is_said_in_one_sentence_and_the_default_voice_speaks(engine, capsys, tmp_path):
    transcript = tmp_path / "said.txt"
    speaker = open_speaker(SpeechConfig(engine=engine, voice="zz-bogus", transcript=str(transcript)))
    try:
        assert speaker.engine == ("espeak-ng" if engine == "espeak-ng" else "pyttsx3")
        assert speaker.wait(60)
    finally:
        speaker.close()
    assert capsys.readouterr().err.splitlines() == [f"a11y-caption: {NO_SUCH_VOICE}"]
    assert transcript.read_text().splitlines() == [NO_SUCH_VOICE]


@needs_espeak
@pytest.mark.parametrize("voice", ["gmw/en-us", "English (America)", "en-us"])
def test_a_system_voice_named_by_id_name_or_language_is_taken(voice, capsys):
    speaker = open_speaker(SpeechConfig(engine="pyttsx3", voice=voice))
    speaker.close()
    assert capsys.readouterr().err == ""


@needs_espeak
def test_the_voices_command_prints_one_voice_a_line(capsys):
    from a11y_caption.speech.voices import voices_command

    assert voices_command(Namespace(config=None, speech="espeak-ng", voice=None)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "gmw/en-US\tEnglish (America)\ten-us" in lines
    assert all(len(line.split("\t")) == 3 for line in lines)


# -- no voice at all: say how to get one -----------------------------------------------------------

NO_ESPEAK = "The pyttsx3 voice could not start (RuntimeError: This means you probably do not have eSpeak or eSpeak-ng installed!)."


def _no_espeak_here(monkeypatch, tmp_path, apt: bool = True, aplay: bool = True) -> None:
    """A Linux machine without eSpeak NG: the system voice's driver fails, no espeak-ng on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("apt-get",) * apt + ("aplay",) * aplay:
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(choose, "PLATFORM", "linux")

    def fails(**settings):
        raise SpeechError(NO_ESPEAK)

    monkeypatch.setitem(choose.ENGINES, "pyttsx3", choose.Engine(lambda: True, fails))


@pytest.mark.parametrize("apt, aplay, how", [
    (True, True, "install eSpeak NG (sudo apt install espeak-ng) or run a screen reader."),
    (True, False, "install eSpeak NG (sudo apt install espeak-ng alsa-utils) or run a screen reader."),
    (False, True, "install eSpeak NG (the espeak-ng package) or run a screen reader."),
])
def test_when_no_voice_can_start_one_sentence_says_how_to_get_one(apt, aplay, how, monkeypatch, tmp_path, capsys):
    _no_espeak_here(monkeypatch, tmp_path, apt, aplay)
    open_speaker(SpeechConfig(engine="auto")).close()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"a11y-caption: {NO_ESPEAK} Speaking nothing;"), err
    assert err[0].endswith(f" No voice could start; {how}"), err


def test_with_espeak_ng_there_the_advice_is_not_to_install_it(monkeypatch, tmp_path, capsys):
    _no_espeak_here(monkeypatch, tmp_path)
    (tmp_path / "bin" / "espeak-ng").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "bin" / "espeak-ng").chmod(0o755)
    open_speaker(SpeechConfig(engine="pyttsx3")).close()
    assert "install eSpeak NG" not in capsys.readouterr().err


# -- make demo: a voice first ----------------------------------------------------------------------

def _stub(folder: Path, name: str, body: str) -> None:
    (folder / name).write_text("#!/bin/sh\n" + body + "\n")
    (folder / name).chmod(0o755)


def _make_voice(tmp_path: Path, uid: int, *, sudo: bool, apt: bool, espeak: bool = False,
                sudo_refuses: bool = False, aplay: bool = False) -> tuple[str, list[str]]:
    """`make voice` (what `make demo` runs first) on a machine made of stand-in commands; returns
    its output and the package commands it ran."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    ran = tmp_path / "ran"
    _stub(stubs, "id", f"echo {uid}")
    _stub(stubs, "uname", "echo Linux")
    if apt:
        _stub(stubs, "apt-get", f'echo "apt-get $*" >> {ran}')
    if sudo:
        _stub(stubs, "sudo", "exit 1" if sudo_refuses else f'echo "sudo" >> {ran}; "$@"')
    if espeak:
        _stub(stubs, "espeak-ng", "exit 0")
    if aplay:
        _stub(stubs, "aplay", "exit 0")
    make = shutil.which("make")
    r = subprocess.run([make, "-s", "-C", str(REPO), "voice"], capture_output=True, text=True, timeout=60,
                       env={"PATH": str(stubs), "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    return r.stdout + r.stderr, ran.read_text().splitlines() if ran.exists() else []


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
class TestMakeDemo:
    def test_demo_gets_a_voice_before_it_speaks(self):
        makefile = (REPO / "Makefile").read_text()
        assert re.search(r"^demo:.*\bvoice\b", makefile, re.M), "make demo runs `make voice` first"

    def test_as_root_with_apt_it_installs_espeak_ng(self, tmp_path):
        out, ran = _make_voice(tmp_path, 0, sudo=False, apt=True)
        installed = [line.split() for line in ran if line.startswith("apt-get install")]
        assert installed and {"espeak-ng", "alsa-utils"} <= set(installed[0]), ran

    def test_with_sudo_it_installs_espeak_ng_through_sudo(self, tmp_path):
        out, ran = _make_voice(tmp_path, 1000, sudo=True, apt=True)
        assert "sudo" in ran and any("install" in line and "espeak-ng" in line.split() for line in ran), ran

    def test_without_a_way_to_install_it_says_how_in_one_line(self, tmp_path):
        out, ran = _make_voice(tmp_path, 1000, sudo=False, apt=False)
        assert ran == []
        lines = [line for line in out.splitlines() if line.strip()]
        assert len(lines) == 1 and "eSpeak NG" in lines[0] and "espeak-ng" in lines[0], out

    def test_when_sudo_refuses_it_says_how_in_one_line(self, tmp_path):
        out, ran = _make_voice(tmp_path, 1000, sudo=True, apt=True, sudo_refuses=True)
        assert ran == [] and len(out.strip().splitlines()) == 1 and "install eSpeak NG" in out, out

    def test_with_espeak_ng_there_it_does_nothing(self, tmp_path):
        out, ran = _make_voice(tmp_path, 0, sudo=False, apt=True, espeak=True, aplay=True)
        assert ran == [] and out.strip() == ""

    def test_without_aplay_the_system_voice_is_silent_so_it_is_installed_too(self, tmp_path):
        out, ran = _make_voice(tmp_path, 0, sudo=False, apt=True, espeak=True, aplay=False)
        assert any("alsa-utils" in line.split() for line in ran), ran


def test_the_readme_says_what_make_demo_does_about_a_voice():
    readme = (REPO / "README.md").read_text()
    assert "a11y-caption voices" in readme
    assert re.search(r"make demo.{0,400}eSpeak NG", readme, re.S)
