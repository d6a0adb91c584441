"""Speaking through the user's screen reader.

- speech-dispatcher: a real daemon (Debian's speech-dispatcher 0.11), private and throwaway.
- Orca: Orca 49+ is not packaged for this Debian (it has 43), so the D-Bus path is tested against
  a stand-in with exactly Orca's interface on a private bus: contract tests, named so.
- NVDA, JAWS (Windows) and VoiceOver (macOS): their platform layer is replaced here; the real
  calls are exercised only on their own platform.
"""

from __future__ import annotations

import time

import pytest

from a11y_caption.config import SpeechConfig
from a11y_caption.speech import Speaker, choose, make_voice, open_speaker
from conftest import SAMPLE, TranscriptVoice, run_cli, serving
from screen_readers import OrcaStandIn, PrivateBus, SpeechDispatcher, wait_for

STREAM = ["The window is a settings dialog. It has three", " buttons: OK, Cancel and Apply.\nBelow them",
          " is a check box."]
SENTENCES = ["The window is a settings dialog.", "It has three buttons: OK, Cancel and Apply.",
             "Below them is a check box."]
WHOLE = " ".join(SENTENCES)  # what braille shows: the whole description on one line


class RecordingVoice(TranscriptVoice):
    """Stands in for the system voice (pyttsx3) so a fallback can be seen."""

    engine = "pyttsx3"


@pytest.fixture
def system_voice(monkeypatch) -> RecordingVoice:
    voice = RecordingVoice()
    monkeypatch.setitem(choose.ENGINES, "pyttsx3", choose.Engine(lambda: True, lambda **s: voice))
    return voice


@pytest.fixture
def speechd(monkeypatch):
    yield from serving(monkeypatch, d := SpeechDispatcher(), "SPEECHD_ADDRESS", d.address)


@pytest.fixture
def slow_speechd(monkeypatch):
    """Each message takes 0.5 s to "say"; `spoken` shows starts and ends."""
    yield from serving(monkeypatch, d := SpeechDispatcher(slow=True, seconds=0.5), "SPEECHD_ADDRESS", d.address)


@pytest.fixture
def bus(monkeypatch):
    yield from serving(monkeypatch, b := PrivateBus(), "DBUS_SESSION_BUS_ADDRESS", b.address)


def _pairs(lines: list[str]) -> list[tuple[str, bool]]:
    """(text, finished) for each `start TEXT` line of the slow module."""
    out = []
    for i, line in enumerate(lines):
        if line.startswith("start "):
            out.append((line[6:], i + 1 < len(lines) and lines[i + 1] == "end"))
    return out


# -- speech-dispatcher, real daemon ----------------------------------------------------------------

def test_speech_dispatcher_says_streamed_sentences_whole_and_in_order(slow_speechd):
    speaker = Speaker(make_voice("speech-dispatcher"))
    try:
        assert speaker.engine == "speech-dispatcher"
        assert speaker.say_stream(iter(STREAM)) == "".join(STREAM)
        assert speaker.wait(15)
    finally:
        speaker.close()
    assert _pairs(slow_speechd.spoken_lines()) == [(s, True) for s in SENTENCES], "each said to its end, in order"
    assert slow_speechd.queued() == [(s, 3) for s in SENTENCES], "received whole, priority TEXT"


def test_speech_dispatcher_stop_cancels_at_once(slow_speechd):
    speaker = Speaker(make_voice("speech-dispatcher"))
    try:
        for s in SENTENCES:
            speaker.say(s)
        wait_for(lambda: slow_speechd.spoken_lines(), timeout=10)
        start = time.perf_counter()
        speaker.stop()
        assert speaker.wait(1.0) and time.perf_counter() - start < 0.5
        time.sleep(1.0)  # longer than one message: nothing more comes, the cut one never ends
        assert _pairs(slow_speechd.spoken_lines()) == [(SENTENCES[0], False)]
        assert [t for t, _ in slow_speechd.queued()] == [SENTENCES[0]]
        assert "CANCEL SELF" in slow_speechd.log()
        speaker.say("After stop.")
        assert speaker.wait(10)
        assert _pairs(slow_speechd.spoken_lines())[-1] == ("After stop.", True)
    finally:
        speaker.close()


def _falls_back_mid_sentence_and_comes_back(engine, system_voice, saying, cut, back, said_again):
    """The engine goes away while a sentence plays (``cut``): that sentence is said again by the
    system voice, then the next; once it returns (``back``) the engine speaks again
    (``said_again(speaker, text)``: the last sentence reached it)."""
    voice = make_voice(engine)
    voice.recheck_seconds = 0.2
    speaker = Speaker(voice)
    try:
        speaker.say(SENTENCES[0])
        wait_for(saying, timeout=10)
        cut()
        speaker.say(SENTENCES[1])
        assert speaker.wait(10)
        assert speaker.engine == "pyttsx3"
        assert system_voice.said == SENTENCES[:2], "the cut sentence is said again by the next engine, then the next"
        back()
        time.sleep(0.3)
        speaker.say(SENTENCES[2])
        wait_for(lambda: said_again(speaker, SENTENCES[2]), timeout=30)
        assert speaker.engine == engine, "back to it once it returns"
    finally:
        speaker.close()


def test_speech_dispatcher_killed_mid_description_falls_back_and_comes_back(slow_speechd, system_voice):
    _falls_back_mid_sentence_and_comes_back(
        "speech-dispatcher", system_voice, saying=slow_speechd.spoken_lines, cut=slow_speechd.kill,  # mid-sentence
        back=slow_speechd.start,
        said_again=lambda speaker, text: speaker.wait(10) and [t for t, _ in slow_speechd.queued()][-1:] == [text])


def test_read_command_speaks_through_speech_dispatcher_and_survives_without_it(speechd, tmp_path):
    for engine in ("speech-dispatcher", "auto"):
        r = run_cli("read", str(SAMPLE), "--speech", engine, env={"SPEECHD_ADDRESS": speechd.address})
        assert r.returncode == 0, r.stderr
        assert "Night light turns on at 9:30 PM" in r.stdout
        assert "Night light turns on at 9:30 PM" in [t for t, _ in speechd.queued()], engine
    speechd.kill()
    transcript = tmp_path / "said.txt"
    r = run_cli("read", str(SAMPLE), "--speech", "speech-dispatcher", "--transcript", str(transcript),
                env={"SPEECHD_ADDRESS": speechd.address})
    assert r.returncode == 0 and "Night light turns on at 9:30 PM" in r.stdout
    assert "Night light turns on at 9:30 PM" in transcript.read_text()
    notes = [line for line in r.stderr.splitlines() if "speech-dispatcher" in line]
    assert len(notes) == 1 and "until it is back" in notes[0], r.stderr


def test_auto_uses_speech_dispatcher_when_there_and_the_system_voice_when_not(monkeypatch, system_voice):
    monkeypatch.setattr(choose, "PLATFORM", "linux")
    speaker = open_speaker(SpeechConfig(engine="auto"))
    assert speaker.engine == "pyttsx3" and speaker.engine_label == "the system voice"
    speaker.close()
    d = SpeechDispatcher()
    try:
        monkeypatch.setenv("SPEECHD_ADDRESS", d.address)
        speaker = open_speaker(SpeechConfig(engine="auto"))
        speaker.say("a11y-caption is on.")
        assert speaker.wait(10)
        speaker.close()
        assert speaker.engine == "speech-dispatcher" and speaker.engine_label == "Speech Dispatcher"
        assert ("a11y-caption is on.", 3) in d.queued()
        assert system_voice.said == []
    finally:
        d.close()


def test_auto_probe_is_quick_when_nothing_is_there(tmp_path, monkeypatch):
    monkeypatch.setattr(choose, "PLATFORM", "linux")
    dead = tmp_path / "dead.sock"
    import socket

    with socket.socket(socket.AF_UNIX) as s:  # a socket file with no daemon (as after a crash)
        s.bind(str(dead))
    for address in (f"unix_socket:{tmp_path / 'missing.sock'}", f"unix_socket:{dead}"):
        monkeypatch.setenv("SPEECHD_ADDRESS", address)
        start = time.perf_counter()
        assert choose.preview("auto") == "pyttsx3"
        assert time.perf_counter() - start < 0.5


def test_config_check_names_the_engine_auto_picks(speechd):
    r = run_cli("config", "check", env={"SPEECHD_ADDRESS": speechd.address})
    assert r.returncode == 0 and "speech auto (now speech-dispatcher)" in r.stdout


# -- Orca: contract tests against a stand-in with Orca's D-Bus interface ------------------------------

@pytest.mark.parametrize("dialect", ["orca51", "orca50", "orca49"])
def test_orca_contract_sentences_paced_stop_interrupts_braille_last(bus, dialect, system_voice, monkeypatch):
    monkeypatch.setattr(choose, "PLATFORM", "linux")
    orca = OrcaStandIn(bus, dialect, rate=100)  # Orca's fastest: about 350 words a minute
    speaker = Speaker(make_voice("auto"))
    try:
        assert speaker.engine == "orca"
        speaker.say_stream(iter(STREAM))
        assert speaker.wait(15)
        calls = orca.calls("PresentMessage")
        assert [c["args"][0] for c in calls] == SENTENCES
        for before, after in zip(calls, calls[1:]):  # Orca cuts a message off with the next one
            words = len(before["args"][0].split())
            assert after["t"] - before["t"] >= 0.9 * words * 60 / 350, "the next waits until this one is said"
        shown = orca.calls("DisplayMessage")
        assert shown and shown[-1]["args"] == [WHOLE, True], "the whole description, to read at leisure"
        speaker.say("A long sentence " + "and more " * 30 + "end.")
        speaker.say("Never said.")
        wait_for(lambda: len(orca.presented()) == 4)
        start = time.perf_counter()
        speaker.stop()
        assert speaker.wait(1.0) and time.perf_counter() - start < 0.5
        interrupts = orca.calls("InterruptSpeech" if dialect == "orca51" else "ExecuteCommand")
        assert interrupts and interrupts[-1]["args"] == ([False] if dialect == "orca51" else ["InterruptSpeech", False])
        time.sleep(0.3)
        assert "Never said." not in orca.presented()
        assert system_voice.said == []
    finally:
        speaker.close()
        orca.close()


def test_orca_contract_quits_mid_description_falls_back_and_comes_back(bus, system_voice, monkeypatch):
    monkeypatch.setattr(choose, "PLATFORM", "linux")
    orca = OrcaStandIn(bus, "orca51", rate=0)  # slowest rate: each sentence is given a few seconds
    try:  # Orca restarted or quit mid-sentence
        _falls_back_mid_sentence_and_comes_back("orca", system_voice, saying=orca.presented, cut=orca.quit,
                                                back=orca.start, said_again=lambda _, text: text in orca.presented())
    finally:
        orca.close()


def test_no_session_bus_or_no_orca_is_quick_and_quiet(bus, monkeypatch, system_voice):
    monkeypatch.setattr(choose, "PLATFORM", "linux")
    start = time.perf_counter()
    assert choose.preview("auto") == "pyttsx3"  # a bus, but no Orca on it and no speech-dispatcher
    assert time.perf_counter() - start < 0.5
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    assert choose.preview("auto") == "pyttsx3"


# -- Windows and macOS: the choice and fallback, with their platform layer replaced ----------------

class FakeSpeechlight:
    """speechlight's Speech object as NVDA and JAWS see it."""

    def __init__(self, nvda=True, jaws=False):
        self.nvda, self.jaws, self.log = nvda, jaws, []

    def nvda_running(self):
        return self.nvda

    def jfw_running(self):
        return self.jaws

    def __getattr__(self, name):  # nvda_say, nvda_braille, nvda_silence, jfw_say, ...
        return lambda *args: self.log.append((name, *args))


def _windows(monkeypatch, sl: FakeSpeechlight) -> None:
    from a11y_caption.speech import jaws, nvda

    monkeypatch.setattr(choose, "PLATFORM", "win32")
    monkeypatch.setattr(nvda, "_platform", lambda: sl)
    monkeypatch.setattr(jaws, "_platform", lambda: sl)


def test_windows_auto_picks_nvda_then_jaws_then_sapi(monkeypatch, system_voice):
    sl = FakeSpeechlight(nvda=True, jaws=True)
    _windows(monkeypatch, sl)
    assert choose.chain_for("auto") == ("nvda", "jaws", "pyttsx3")
    assert choose.preview("auto") == "nvda"
    sl.nvda = False
    assert choose.preview("auto") == "jaws"
    sl.jaws = False
    assert choose.preview("auto") == "pyttsx3"


def test_windows_nvda_speaks_brailles_cancels_and_falls_back_when_it_quits(monkeypatch, system_voice):
    sl = FakeSpeechlight(nvda=True)
    _windows(monkeypatch, sl)
    voice = make_voice("auto")
    voice.recheck_seconds = 0.0
    speaker = Speaker(voice)
    try:
        assert speaker.engine == "nvda"
        speaker.say_stream(iter(STREAM))
        assert speaker.wait(5)
        assert [e for e in sl.log if e[0] == "nvda_say"] == [("nvda_say", s) for s in SENTENCES]
        assert sl.log[-1] == ("nvda_braille", WHOLE)
        speaker.stop()
        assert ("nvda_silence",) in sl.log
        sl.nvda = False  # NVDA quit
        speaker.say("While NVDA is away.")
        assert speaker.wait(5) and system_voice.said == ["While NVDA is away."]
        sl.nvda = True
        speaker.say("NVDA is back.")
        assert speaker.wait(5) and sl.log[-1] == ("nvda_say", "NVDA is back.")
    finally:
        speaker.close()


def test_windows_jaws_when_nvda_is_not_running(monkeypatch, system_voice):
    sl = FakeSpeechlight(nvda=False, jaws=True)
    _windows(monkeypatch, sl)
    speaker = Speaker(make_voice("auto"))
    try:
        assert speaker.engine == "jaws"
        speaker.say_stream(iter(["Hello. World."]))
        assert speaker.wait(5)
        assert [e for e in sl.log if e[0] in ("jfw_say", "jfw_braille")] == [
            ("jfw_say", "Hello."), ("jfw_say", "World."), ("jfw_braille", "Hello. World.")]
    finally:
        speaker.close()


class FakeAppKit:
    def __init__(self, running=True):
        self.running, self.announced = running, []

    def voiceover_running(self):
        return self.running

    def announce(self, text, high=False):
        self.announced.append((text, high))


def test_macos_voiceover_announces_paced_and_stops(monkeypatch, system_voice):
    from a11y_caption.speech import voiceover

    ak = FakeAppKit()
    monkeypatch.setattr(choose, "PLATFORM", "darwin")
    monkeypatch.setattr(voiceover, "_AppKit", lambda: ak)
    assert choose.chain_for("auto") == ("voiceover", "pyttsx3")
    speaker = Speaker(make_voice("auto", rate=600))
    try:
        assert speaker.engine == "voiceover"
        speaker.say_stream(iter(STREAM))
        assert speaker.wait(10)
        assert ak.announced == [(s, False) for s in SENTENCES]
        speaker.say("A long sentence " + "and more " * 40)
        wait_for(lambda: len(ak.announced) == 4)
        speaker.stop()
        assert speaker.wait(1.0) and ak.announced[-1] == (" ", True), "an empty high-priority announcement interrupts"
        ak.running = False
        speaker.say("VoiceOver is off.")
        assert speaker.wait(5) and system_voice.said == ["VoiceOver is off."]
    finally:
        speaker.close()
    ak.running = False
    assert choose.preview("auto") == "pyttsx3"


def test_a_named_screen_reader_that_is_not_there_is_one_line_and_the_system_voice(system_voice, capsys):
    speaker = open_speaker(SpeechConfig(engine="speech-dispatcher"))
    try:
        assert speaker.engine == "pyttsx3"
    finally:
        speaker.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("a11y-caption: speech-dispatcher is not reachable")
    assert err[0].endswith("speaking through the system voice until it is back.")


def test_braille_can_be_turned_off(monkeypatch):
    sl = FakeSpeechlight(nvda=True)
    _windows(monkeypatch, sl)
    speaker = open_speaker(SpeechConfig(engine="nvda", braille=False))
    speaker.say_stream(iter(["One. Two."]))
    assert speaker.wait(5)
    speaker.close()
    assert [e[0] for e in sl.log] == ["nvda_say", "nvda_say", "nvda_silence"]


def test_every_engine_is_known_to_the_config():
    from a11y_caption.config import SPEECH_ENGINES

    assert set(SPEECH_ENGINES) == {"auto", *choose.ENGINES}


def test_speechd_address_follows_speechd_address(monkeypatch):
    from a11y_caption.speech.ssip import SSIPError, default_address

    monkeypatch.setenv("SPEECHD_ADDRESS", "unix_socket:/run/x/speechd.sock")
    assert default_address() == ("unix", "/run/x/speechd.sock")
    monkeypatch.setenv("SPEECHD_ADDRESS", "inet_socket:127.0.0.1:6561")
    assert default_address() == ("inet", ("127.0.0.1", 6561))
    monkeypatch.setenv("SPEECHD_ADDRESS", "carrier_pigeon:roof")
    with pytest.raises(SSIPError):
        default_address()
    monkeypatch.delenv("SPEECHD_ADDRESS")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert default_address() == ("unix", "/run/user/1000/speech-dispatcher/speechd.sock")


def test_an_end_event_that_beats_the_message_id_is_not_lost():
    from a11y_caption.speech.ssip import EndTracker

    ends, got = EndTracker(), []
    ends.event(7, "end")  # the daemon can report the end before SPEAK's reply is read
    ends.expect(7, got.append)
    ends.expect(8, got.append)
    ends.event(8, "cancel")
    ends.expect(9, got.append)
    ends.fail_all("lost")
    assert got == ["end", "cancel", "lost"]


class QuietDescriber:
    """Loads at once; enough for the agent's start-up lines."""

    loaded, missing = False, None

    def load(self):
        self.loaded = True

    def release(self):
        self.loaded = False


def test_agent_with_auto_speaks_through_speech_dispatcher_else_the_system_voice(monkeypatch, system_voice):
    from dataclasses import replace

    from a11y_caption.agent.core import Agent
    from a11y_caption.config import load_config
    from conftest import REPO

    monkeypatch.setattr(choose, "PLATFORM", "linux")
    config = load_config(REPO / "hotkeys.toml")
    assert config.speech.engine == "auto"

    def run_agent_start() -> Speaker:
        speaker = open_speaker(config.speech)
        agent = Agent(replace(config, hotkeys=()), speaker, describer=QuietDescriber())
        agent.start()
        try:
            wait_for(lambda: agent.state == "ready", timeout=10)
            assert speaker.wait(10)
        finally:
            agent.close()
            speaker.close()
        return speaker

    d = SpeechDispatcher()
    try:
        monkeypatch.setenv("SPEECHD_ADDRESS", d.address)
        assert run_agent_start().engine == "speech-dispatcher"
        said = [t for t, _ in d.queued()]
        assert said[0].startswith("a11y-caption is on") and said[-1] == "Ready."
        assert system_voice.said == []
    finally:
        d.close()
    assert run_agent_start().engine == "pyttsx3"  # the daemon is gone: the system voice speaks
    assert system_voice.said[0].startswith("a11y-caption is on") and system_voice.said[-1] == "Ready."
