"""Speech: sentence splitting, the speaker thread, transcript, stop, and real pyttsx3/eSpeak NG audio."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
import time
import wave

import pytest

from a11y_caption.speech import EspeakVoice, Pyttsx3Voice, SentenceSplitter, Speaker

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make test installs it)")


class SlowVoice:
    """A voice that takes ``seconds`` per utterance unless interrupted, recording what it said."""

    def __init__(self, seconds: float = 0.3):
        self.seconds, self.said, self._cut = seconds, [], threading.Event()

    def say(self, text):
        self._cut.clear()
        self.said.append(text)
        self._cut.wait(self.seconds)

    def interrupt(self):
        self._cut.set()

    def close(self):
        pass


def test_splitter_releases_sentences_as_they_end():
    s = SentenceSplitter()
    assert s.feed("The window is a ") == []
    assert s.feed("settings dialog. It has") == ["The window is a settings dialog."]
    assert s.feed(" three buttons: OK, Cancel and Apply!\nVersion 2.5 is") == [
        "It has three buttons: OK, Cancel and Apply!"]
    assert s.flush() == "Version 2.5 is"
    assert s.flush() is None


def test_first_words_are_released_before_the_first_full_stop():
    s = SentenceSplitter(first_words=4)
    assert s.feed("The screen shows a") == []  # "a" may still be growing ("about"...)
    assert s.feed("n editor with") == ["The screen shows an editor"], "every complete word so far"
    assert s.feed(" two files. Then more") == ["with two files."]
    assert s.feed(" words follow here and") == [], "only the first piece is released early"
    assert s.flush() == "Then more words follow here and"


def test_splitter_breaks_run_on_text():
    s = SentenceSplitter(max_chars=40)
    out = s.feed("word " * 20)
    assert out and all(len(x) <= 40 for x in out)


def test_stream_is_spoken_in_order_and_transcribed(tmp_path):
    transcript = tmp_path / "t.txt"
    voice = SlowVoice(0.01)
    speaker = Speaker(voice, transcript)
    whole = speaker.say_stream(iter(["First sentence. Sec", "ond one.\nThird"]))
    assert speaker.wait(5)
    speaker.close()
    assert whole == "First sentence. Second one.\nThird"
    assert voice.said == ["First sentence.", "Second one.", "Third"]
    assert transcript.read_text() == "First sentence.\nSecond one.\nThird\n"


def test_first_sentence_is_spoken_before_the_stream_ends():
    voice = SlowVoice(0.01)
    speaker = Speaker(voice)
    heard_before_end = []

    def chunks():
        yield "Hello there. "
        time.sleep(0.3)
        heard_before_end.extend(voice.said)
        yield "More."

    speaker.say_stream(chunks())
    speaker.wait(5)
    speaker.close()
    assert heard_before_end == ["Hello there."]


def test_stop_silences_at_once_and_drops_the_queue():
    voice = SlowVoice(5.0)
    speaker = Speaker(voice)
    for i in range(5):
        speaker.say(f"Sentence {i}.")
    time.sleep(0.1)
    start = time.perf_counter()
    speaker.stop()
    assert speaker.wait(1.0)
    assert time.perf_counter() - start < 0.5
    assert voice.said == ["Sentence 0."]
    speaker.say("After stop.")
    speaker.wait(6)
    assert voice.said[-1] == "After stop."
    speaker.close()


def _rms(path) -> tuple[float, float]:
    """(seconds, root-mean-square amplitude) of a 16-bit mono WAV."""
    import numpy as np

    with wave.open(str(path)) as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)
        return w.getnframes() / w.getframerate(), float(np.sqrt(np.mean(frames ** 2)))


@needs_espeak
def test_pyttsx3_through_espeak_writes_real_speech(tmp_path):
    voice = Pyttsx3Voice(rate=180)
    try:
        out = tmp_path / "speech.wav"
        voice.save("The screen shows a settings dialog with three buttons.", out)
        seconds, rms = _rms(out)
        assert 1.5 < seconds < 10
        assert rms > 300, "not silence"
        # A second utterance works after the first (one engine, one process, reused).
        voice.save("Second.", tmp_path / "second.wav")
        assert _rms(tmp_path / "second.wav")[1] > 300
    finally:
        voice.close()


@needs_espeak
def test_pyttsx3_interrupt_cuts_speech_and_recovers(tmp_path, monkeypatch):
    """pyttsx3's eSpeak driver plays through a blocking `aplay`; interrupt must cut that off.

    A stand-in `aplay` on PATH keeps a copy of what it was given and "plays" for 30 s, like a long
    utterance on a real sound card (this machine has none).
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    played = tmp_path / "played.wav"
    (bin_dir / "aplay").write_text(f'#!/bin/sh\ncp "$1" {played}\nexec sleep 30\n')
    (bin_dir / "aplay").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    voice = Pyttsx3Voice()
    try:
        done = threading.Event()
        threading.Thread(target=lambda: (voice.say("A sentence that is being played."), done.set()), daemon=True).start()
        deadline = time.monotonic() + 10
        while not played.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert played.exists() and _rms(played)[1] > 300, "speech reached the audio player"
        assert not done.is_set(), "still playing"
        start = time.perf_counter()
        voice.interrupt()
        assert done.wait(2.0)
        assert time.perf_counter() - start < 0.5
        voice.save("Back again.", tmp_path / "after.wav")
        assert _rms(tmp_path / "after.wav")[1] > 300
    finally:
        voice.close()


def _files_under(folder) -> list:
    return [p for p in folder.rglob("*") if not p.is_dir()]


@needs_espeak
def test_pyttsx3_leaves_no_audio_of_the_screen_on_disk(tmp_path, monkeypatch):
    """pyttsx3's eSpeak driver writes each sentence to a tmp*.wav and plays it; a Stop kills the
    player before the driver can remove it. Nothing of the screen may outlive the utterance."""
    bin_dir, temp = tmp_path / "bin", tmp_path / "temp"
    bin_dir.mkdir()
    temp.mkdir()
    (bin_dir / "aplay").write_text("#!/bin/sh\nexec sleep 30\n")
    (bin_dir / "aplay").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("TMPDIR", str(temp))  # the temp folder this process (and its children) are given
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    voice = Pyttsx3Voice()
    try:
        threading.Thread(target=voice.say, args=("Account number 4711 is overdrawn.",), daemon=True).start()
        deadline = time.monotonic() + 10
        while not [p for p in _files_under(temp) if p.suffix == ".wav"] and time.monotonic() < deadline:
            time.sleep(0.05)
        playing = [p for p in _files_under(temp) if p.suffix == ".wav"]
        assert playing, "the driver writes its audio under the temp folder it was given"
        if playing[0].parent != temp:
            assert stat.S_IMODE(playing[0].parent.stat().st_mode) == 0o700, "a private folder"
        voice.interrupt()
        assert _files_under(temp) == [], "nothing left after Stop"
    finally:
        voice.close()
    assert list(temp.iterdir()) == [], "nothing left after close"


def test_transcript_is_private(tmp_path):
    transcript = tmp_path / "t.txt"
    speaker = Speaker(SlowVoice(0.0), transcript)
    speaker.say("Your PIN is 1234.")
    assert speaker.wait(5)
    speaker.close()
    assert stat.S_IMODE(transcript.stat().st_mode) == 0o600
    # A transcript an older version left readable by everyone is made private at the first write.
    old = tmp_path / "old.txt"
    old.write_text("before\n")
    old.chmod(0o644)
    speaker = Speaker(SlowVoice(0.0), old)
    speaker.say("After.")
    assert speaker.wait(5)
    speaker.close()
    assert stat.S_IMODE(old.stat().st_mode) == 0o600 and old.read_text() == "before\nAfter.\n"


def test_espeak_gets_the_text_on_stdin_not_on_its_command_line(tmp_path, monkeypatch):
    """Any local user can read another's command lines (ps); screen text must not be there."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "espeak-ng").write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\ncat > {tmp_path}/stdin\nexec sleep 30\n')
    (bin_dir / "espeak-ng").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    voice = EspeakVoice()
    done = threading.Event()
    threading.Thread(target=lambda: (voice.say("Your PIN is 1234."), done.set()), daemon=True).start()
    deadline = time.monotonic() + 5
    while not (tmp_path / "stdin").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    assert (tmp_path / "stdin").read_text() == "Your PIN is 1234.\n"
    assert "1234" not in (tmp_path / "argv").read_text()
    assert not done.is_set(), "still speaking"
    start = time.perf_counter()
    voice.interrupt()
    assert done.wait(2) and time.perf_counter() - start < 0.5
    voice.close()


@needs_espeak
def test_real_espeak_speaks_text_from_stdin(tmp_path):
    voice = EspeakVoice(rate=180)
    out = tmp_path / "espeak.wav"
    voice.save("The screen shows a settings dialog with three buttons.", out)
    seconds, rms = _rms(out)
    assert 1.5 < seconds < 10 and rms > 300


class ReaderVoice:
    """A screen-reader style voice: ``speak`` returns at once, the end is reported when the test says."""

    engine = "reader"
    can_braille = True

    def __init__(self):
        self.spoken, self.brailled, self.cancels, self._ends = [], [], 0, []

    def speak(self, text, on_end):
        self.spoken.append(text)
        self._ends.append(on_end)

    def finish(self):
        self._ends.pop(0)("done")

    def cancel(self):
        self.cancels += 1
        while self._ends:
            self._ends.pop(0)("cancelled")

    def braille(self, text):
        self.brailled.append(text)

    def close(self):
        pass


def test_each_sentence_waits_for_the_end_of_the_one_before_then_braille_gets_the_whole():
    voice = ReaderVoice()
    speaker = Speaker(voice)
    try:
        assert speaker.engine == "reader"
        speaker.say_stream(iter(["One is here. Two", " is here.\nThree."]))
        time.sleep(0.2)
        assert voice.spoken == ["One is here."], "the next is not sent over the one being said"
        voice.finish()
        _wait_for(lambda: voice.spoken == ["One is here.", "Two is here."])
        voice.finish()
        _wait_for(lambda: len(voice.spoken) == 3)
        assert voice.brailled == [] and not speaker.wait(0.1)
        voice.finish()
        assert speaker.wait(2)
        assert voice.brailled == ["One is here. Two is here. Three."], "once complete, on one line"
    finally:
        speaker.close()


def test_stop_with_a_reader_voice_cancels_and_drops_the_braille_too():
    voice = ReaderVoice()
    speaker = Speaker(voice)
    try:
        speaker.say_stream(iter(["One. Two. Three."]))
        _wait_for(lambda: voice.spoken == ["One."])
        start = time.perf_counter()
        speaker.stop()
        assert speaker.wait(1) and time.perf_counter() - start < 0.5
        time.sleep(0.2)
        assert voice.spoken == ["One."] and voice.cancels == 1 and voice.brailled == []
        speaker.say("Again.")  # repeat_last and the next description work after a Stop
        _wait_for(lambda: voice.spoken[-1] == "Again.")
    finally:
        speaker.close()


def test_braille_off_sends_nothing_to_the_display():
    voice = ReaderVoice()
    speaker = Speaker(voice, braille=False)
    speaker.say_stream(iter(["One."]))
    _wait_for(lambda: voice.spoken == ["One."])
    voice.finish()
    assert speaker.wait(2)
    speaker.close()
    assert voice.brailled == []


def _wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_failing_voice_is_logged_without_what_it_was_saying(caplog):
    """A voice's error may quote the sentence (a command line, a protocol echo): the log names only
    the error's type and place, and the speaker goes on."""
    class Failing:
        def __init__(self):
            self.said = []

        def say(self, text):
            if "PIN" in text:
                raise RuntimeError(f"could not say {text!r}")
            self.said.append(text)

        def interrupt(self):
            pass

        def close(self):
            pass

    voice = Failing()
    speaker = Speaker(voice)
    speaker.say("My bank PIN is 4711.")
    speaker.say("Next sentence.")
    assert speaker.wait(5)
    speaker.close()
    assert voice.said == ["Next sentence."]
    assert "4711" not in caplog.text
    assert "speech failed: RuntimeError" in caplog.text
