"""The hotkey agent under a real virtual X server: pynput listener, xdotool presses, mss capture,
xclip clipboard, a transcript in place of a sound card, and a tiny model."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from a11y_caption.agent import SOMETHING_WRONG, Agent, check_hotkeys_possible
from a11y_caption.config import Binding, load_config
from a11y_caption.describe.describer import Describer
from a11y_caption.errors import HotkeysUnavailable
from a11y_caption.speech import Speaker
from conftest import REPO, SAMPLE, Desktop, TranscriptVoice, non_word_start_tokens

pytestmark = pytest.mark.desktop

MESSAGE = "Invoice 2041 is overdue. Pay by Friday."


@pytest.fixture(scope="module")
def wordy_qwen(tiny_models, tmp_path_factory) -> Path:
    """The tiny Qwen2-VL with a generation_config.json that only allows word-start tokens, so its
    stream has spaces (a random model's text has few) and speech gets sentence-sized pieces."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("wordy") / "qwen"
    shutil.copytree(tiny_models["qwen2-vl-2b"], folder)
    vocab = AutoTokenizer.from_pretrained(folder).get_vocab()
    gen_path = folder / "generation_config.json"
    gen = json.loads(gen_path.read_text())
    gen["suppress_tokens"] = non_word_start_tokens(vocab)
    gen_path.write_text(json.dumps(gen))
    return folder


@pytest.fixture(scope="module")
def slow_wordy_qwen(wordy_qwen, tmp_path_factory) -> Path:
    """wordy_qwen with a wider and deeper language model (random weights, 124 MB): about 150 tokens
    a second instead of 450, so that a 4000-token answer lasts about half a minute and is surely
    still being generated when a Stop test, slowed by a busy machine, presses Stop."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    folder = tmp_path_factory.mktemp("slow-wordy") / "qwen"
    shutil.copytree(wordy_qwen, folder)
    config = AutoConfig.from_pretrained(folder)
    text = config.text_config
    text.hidden_size, text.intermediate_size, text.num_hidden_layers = 512, 2048, 8
    text.num_attention_heads, text.num_key_value_heads = 64, 16  # the tiny model's head size, 8
    text.layer_types = [text.layer_types[0]] * text.num_hidden_layers
    config.vision_config.hidden_size = text.hidden_size  # the vision merger's output feeds the text model
    AutoModelForImageTextToText.from_config(config).save_pretrained(folder)
    shutil.copy(wordy_qwen / "generation_config.json", folder)  # saving wrote a default one
    return folder


def write_config(path: Path, model: Path, transcript: Path, max_new_tokens: int = 24, extra: str = "",
                 engine: str = "none") -> Path:
    """The packaged hotkeys (default chords) with a tiny model and a transcribed voice (silent by default)."""
    default_hotkeys = (REPO / "hotkeys.toml").read_text().split("\n[[hotkey]]\n", 1)[1]  # the first table's
    path.write_text(
        f'[model]\nname = "{model}"\nmax_new_tokens = {max_new_tokens}\n{extra}\n'
        f'[speech]\nengine = "{engine}"\ntranscript = "{transcript}"\n\n[[hotkey]]\n{default_hotkeys}'
    )
    return path


class AgentProcess:
    """`a11y-caption -v run` as a user starts it, on the test's X display."""

    def __init__(self, desktop: Desktop, tmp_path: Path, config: Path, transcript: Path, env: dict | None = None):
        self.transcript = transcript
        self.stderr_path = tmp_path / "agent.err"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "a11y_caption", "-v", "run", "--config", str(config)],
            env={**os.environ, **desktop.env, "A11Y_CAPTION_RUNTIME_DIR": str(tmp_path / "run"), **(env or {})},
            stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "w"), stdin=subprocess.DEVNULL)

    def lines(self) -> list[str]:
        return self.transcript.read_text().splitlines() if self.transcript.exists() else []

    def log(self) -> str:
        return self.stderr_path.read_text()

    def wait_line(self, predicate, after: int = 0, timeout: float = 60) -> int:
        """Index of the first transcript line at or after ``after`` that satisfies ``predicate``."""
        def find():
            for i, line in enumerate(self.lines()[after:], start=after):
                if predicate(line):
                    return i + 1  # +1 so index 0 is truthy
            assert self.proc.poll() is None, f"agent exited: {self.log()}"
            return None
        return Desktop.wait_for(find, timeout) - 1

    def generations(self) -> list[str]:
        return re.findall(r"^a11y-caption: (\w+) by .*new tokens.*$", self.log(), re.M)

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout=20)


@pytest.fixture
def agent_factory(desktop, tmp_path):
    started = []

    def start(model: Path, max_new_tokens: int = 24, extra: str = "", engine: str = "none",
              env: dict | None = None) -> AgentProcess:
        transcript = tmp_path / f"transcript{len(started)}.txt"
        config = write_config(tmp_path / f"hotkeys{len(started)}.toml", model, transcript, max_new_tokens, extra,
                              engine)
        agent = AgentProcess(desktop, tmp_path, config, transcript, env)
        started.append(agent)
        agent.wait_line(lambda line: line == "Ready.")
        return agent

    yield start
    for agent in started:
        if agent.proc.poll() is None:
            agent.stop()


def test_hotkeys_describe_read_alt_text_repeat(desktop, agent_factory, wordy_qwen, tmp_path):
    desktop.spawn(["xmessage", "-fn", "10x20", "-geometry", "+200+150", MESSAGE])
    desktop.wait_for(lambda: "xmessage" in desktop.run("xdotool", "getactivewindow", "getwindowname").stdout)
    agent = agent_factory(wordy_qwen)
    assert agent.lines()[:2] == ["a11y-caption is on, speaking through no voice. Loading the model.", "Ready."]

    # describe_screen: an immediate cue, then the model's (nonsense) description.
    desktop.key("ctrl+alt+shift+d")
    cue = agent.wait_line(lambda line: line == "Describing the screen.")
    agent.wait_line(lambda line: True, after=cue + 1)
    desktop.wait_for(lambda: agent.generations() == ["describe_screen"])

    # read_text: the active window's text, exactly, from a real capture of the xmessage window.
    desktop.key("ctrl+alt+shift+r")
    cue = agent.wait_line(lambda line: line == "Reading.", after=cue + 1)
    said = agent.wait_line(lambda line: line == MESSAGE, after=cue + 1)

    # alt_text_to_clipboard: copy a PNG with xclip, press, read the clipboard back.
    photo = tmp_path / "photo.png"
    Image.effect_mandelbrot((320, 240), (-2, -1.2, 1, 1.2), 60).convert("RGB").save(photo)
    desktop.copy_png(photo)
    desktop.key("ctrl+alt+shift+a")
    copied = agent.wait_line(lambda line: line == "Alt text copied.", after=said + 1)
    alt_index = agent.wait_line(lambda line: True, after=copied + 1)
    alt_text = agent.lines()[alt_index]
    assert " ".join(desktop.clipboard_text().split()) == alt_text
    assert agent.generations() == ["describe_screen", "alt_text_to_clipboard"]

    # repeat_last: says the alt text again without running the model.
    desktop.key("ctrl+alt+shift+l")
    agent.wait_line(lambda line: line == alt_text, after=alt_index + 1)
    # copy_last: puts it on the clipboard again, after we overwrite the clipboard.
    desktop.run("xclip", "-selection", "clipboard", "-i", input=b"something else")
    desktop.key("ctrl+alt+shift+c")
    agent.wait_line(lambda line: line == "Copied.", after=alt_index + 1)
    assert " ".join(desktop.clipboard_text().split()) == alt_text
    time.sleep(0.5)
    assert agent.generations() == ["describe_screen", "alt_text_to_clipboard"], "no model run for repeat/copy"

    # A second agent for the same user refuses to start.
    second = subprocess.run([sys.executable, "-m", "a11y_caption", "run", "--config", str(tmp_path / "hotkeys0.toml")],
                            env={**os.environ, **desktop.env, "A11Y_CAPTION_RUNTIME_DIR": str(tmp_path / "run")},
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert second.returncode == 1
    assert second.stderr.strip() == "a11y-caption: a11y-caption is already running for this user."

    assert agent.stop() == 0, "SIGTERM is a clean exit"
    assert "Traceback" not in agent.log()


def test_stop_ends_speech_and_generation(desktop, agent_factory, slow_wordy_qwen, tmp_path, capsys):
    """Stop with the real default voice (pyttsx3 through eSpeak NG): a stand-in `aplay` on PATH "plays"
    each sentence for 30 s, as a long sentence on a sound card would; Stop must end it at once."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (make test installs it)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    players = tmp_path / "players"
    (bin_dir / "aplay").write_text(f'#!/bin/sh\necho $$ >> {players}\nexec sleep 30\n')
    (bin_dir / "aplay").chmod(0o755)
    desktop.spawn(["xmessage", "-fn", "10x20", "-geometry", "+200+150", MESSAGE])  # not a blank screen
    agent = agent_factory(slow_wordy_qwen, max_new_tokens=4000, engine="pyttsx3",
                          env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    desktop.key("ctrl+alt+shift+d")
    cue = agent.wait_line(lambda line: line == "Describing the screen.")
    agent.wait_line(lambda line: True, after=cue + 1)  # the description is being spoken
    def started() -> list[int]:
        return [int(p) for p in players.read_text().split()] if players.exists() else []

    # A sentence is playing (the cue's player may have been cut by the description already: wait
    # for one that is alive).
    Desktop.wait_for(lambda: [pid for pid in started() if os.path.exists(f"/proc/{pid}")], 10)
    playing = started()
    pressed = time.monotonic()
    desktop.key("ctrl+alt+shift+s")
    stopped = agent.wait_line(lambda line: line == "Stopped.", after=cue + 1, timeout=10)
    heard_stop = time.monotonic() - pressed
    try:
        desktop.wait_for(lambda: "(stopped)" in agent.log(), timeout=10)
    except AssertionError:
        raise AssertionError(agent.log() + "\n" + "\n".join(agent.lines()[-5:]))
    generation_ended = time.monotonic() - pressed
    desktop.wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") and "sleep" in _cmdline(pid)
                                     for pid in playing), timeout=2)
    player_ended = time.monotonic() - pressed
    tokens = int(re.search(r"describe_screen by .*: (\d+) new tokens .*\(stopped\)", agent.log()).group(1))
    assert tokens < 4000, "generation itself ended early"
    time.sleep(1.0)
    assert agent.lines()[stopped:] == ["Stopped."], agent.lines()[stopped - 3:]
    assert heard_stop < 2.0 and generation_ended < 3.0
    with capsys.disabled():
        print(f"\n[stop latency] key press -> 'Stopped.' in transcript {heard_stop * 1000:.0f} ms; "
              f"-> generation ended {generation_ended * 1000:.0f} ms ({tokens} of 4000 tokens generated); "
              f"the playing sentence cut off within {player_ended * 1000:.0f} ms")


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    except OSError:
        return ""


class CountingDescriber(Describer):
    """The real describer with a gate on loading and a count of model runs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.describe_calls = 0

    def load(self):
        self.gate.wait(30)
        super().load()

    def describe(self, *args, **kwargs):
        self.describe_calls += 1
        return super().describe(*args, **kwargs)


Transcript = TranscriptVoice


@contextlib.contextmanager
def in_process_agent(model: Path, *, loaded: bool = True, capture=None, **model_overrides):
    """A started Agent on the test's display, with a transcript voice; ``loaded`` waits for Ready.

    Yields (agent, describer, voice); on exit the agent is closed and must have hit no bug.
    """
    from dataclasses import replace

    config = load_config(REPO / "hotkeys.toml")
    config = replace(config, model=replace(config.model, name=str(model), max_new_tokens=8, **model_overrides))
    voice = Transcript()
    speaker = Speaker(voice)
    describer = CountingDescriber(config.model)
    agent = Agent(config, speaker, describer=describer, capture=capture)
    if loaded:
        describer.gate.set()
    agent.start()
    try:
        if loaded:
            Desktop.wait_for(lambda: "Ready." in voice.said, 60)
        yield agent, describer, voice
    finally:
        describer.gate.set()
        agent.close()
        speaker.close()
    assert list(agent.unexpected) == []


def test_press_while_loading_is_answered_then_done(desktop, tiny_qwen):
    with in_process_agent(tiny_qwen, loaded=False) as (agent, describer, voice):
        agent.press(Binding("<ctrl>+<alt>+<shift>+d", "describe_screen"))
        Desktop.wait_for(lambda: "Describing the screen. Still loading the model; it will follow." in voice.said, 10)
        assert describer.describe_calls == 0
        describer.gate.set()
        Desktop.wait_for(lambda: describer.describe_calls == 1 and agent.jobs_run == 1, 60)
        agent.speaker.wait(10)
        assert voice.said.index("Ready.") > voice.said.index(
            "Describing the screen. Still loading the model; it will follow.")
        assert agent.last
        # repeat_last speaks the same text without another model run.
        agent.press(Binding("x", "repeat_last"))
        Desktop.wait_for(lambda: voice.said[-1] == " ".join(agent.last.split()), 10)
        assert describer.describe_calls == 1


def test_release_model_then_next_press_reloads(desktop, tiny_qwen):
    import gc
    import weakref

    with in_process_agent(tiny_qwen) as (agent, describer, voice):
        agent.press(Binding("x", "describe_window"))
        Desktop.wait_for(lambda: agent.jobs_run == 1, 60)
        model = weakref.ref(describer.captioner.model)
        agent.press(Binding("x", "release_model"))
        Desktop.wait_for(lambda: "Model released." in voice.said, 10)
        gc.collect()
        assert describer.captioner is None
        assert model() is None, "the model's memory is free: nothing holds it any more"
        agent.press(Binding("x", "describe_window"))
        Desktop.wait_for(lambda: "Loading the model." in voice.said and agent.jobs_run == 3, 60)
        assert describer.captioner is not None and describer.describe_calls == 2


def test_idle_unload(desktop, tiny_qwen):
    with in_process_agent(tiny_qwen, idle_unload_minutes=0.01) as (agent, describer, voice):
        Desktop.wait_for(lambda: agent.state == "released" and describer.captioner is None, 10)


def test_empty_clipboard_is_one_sentence_and_agent_keeps_running(desktop, tiny_qwen):
    with in_process_agent(tiny_qwen) as (agent, describer, voice):
        desktop.run("xclip", "-selection", "clipboard", "-i", input=b"just some words")
        agent.press(Binding("x", "describe_clipboard"))
        Desktop.wait_for(lambda: voice.said[-1:] == ["There is no image on the clipboard."], 10)
        desktop.copy_png(SAMPLE)
        agent.press(Binding("x", "describe_clipboard"))
        Desktop.wait_for(lambda: describer.describe_calls == 1 and agent.jobs_run == 1, 30)


def test_hotkeys_impossible_is_explained(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert check_hotkeys_possible() == "wayland"  # the desktop portal, else the desktop's own shortcuts
    monkeypatch.delenv("WAYLAND_DISPLAY")
    with pytest.raises(HotkeysUnavailable, match="There is no X display"):
        check_hotkeys_possible()
    norecord = Desktop(extra_args=("-extension", "RECORD"), window_manager=False)
    try:
        monkeypatch.setenv("DISPLAY", norecord.display)
        with pytest.raises(HotkeysUnavailable, match="lacks the RECORD extension"):
            check_hotkeys_possible()
        # XWayland: DISPLAY is set and works, but the session is Wayland, where an X client hears
        # no key pressed in other programs' windows. The session type decides.
        for wayland in ({"WAYLAND_DISPLAY": "wayland-0"}, {"XDG_SESSION_TYPE": "wayland"}):
            with monkeypatch.context() as m:
                for k, v in wayland.items():
                    m.setenv(k, v)
                assert check_hotkeys_possible() == "wayland"
        monkeypatch.setenv("XDG_SESSION_TYPE", "x11")
        monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")  # an X11 session that can also reach a compositor
        with pytest.raises(HotkeysUnavailable, match="lacks the RECORD extension"):
            check_hotkeys_possible()
    finally:
        norecord.close()


def test_agent_without_hotkeys_refuses_to_start(tmp_path):
    """A settings file that opts out of the packaged hotkeys and binds none of its own would give an
    agent that answers no key at all."""
    from conftest import run_cli

    config = tmp_path / "mine.toml"
    config.write_text('hotkey = []\n[model]\nname = "ocr"\n')
    r = run_cli("run", "--config", str(config), "--speech", "none", env={"DISPLAY": ""})
    assert r.returncode == 1
    assert r.stderr.strip() == (f"a11y-caption: {config}: binds no hotkeys, so the agent would answer no key; "
                                "take out 'hotkey = []' (or '[hotkeys] replace = true') to keep the packaged ones, "
                                "or add [[hotkey]] tables")


def test_repeat_pressed_twice_is_said_twice(desktop, tiny_qwen):
    """Screen readers restart the text on a second press; silence would be the worst answer."""
    with in_process_agent(tiny_qwen) as (agent, describer, voice):
        agent.last = "The last description."
        for expected in (1, 2, 3):
            agent.press(Binding("x", "repeat_last"))
            Desktop.wait_for(lambda: voice.said.count("The last description.") == expected, 5)
        agent.press(Binding("x", "describe_window"))
        agent.press(Binding("x", "describe_window"))  # the same cue twice in a row is said again too
        Desktop.wait_for(lambda: voice.said.count("Describing the window.") >= 1, 5)


class GatedCapture:
    """The real capture module, except that grab_screen waits for ``gate`` (a slow capture)."""

    def __init__(self):
        from a11y_caption import capture

        self.real, self.gate, self.started = capture, threading.Event(), threading.Event()

    def grab_screen(self, which="pointer"):
        self.started.set()
        self.gate.wait(30)
        return self.real.grab_screen(which)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_stop_voids_a_capture_in_progress_and_a_press_waiting(desktop, tiny_qwen):
    capture = GatedCapture()
    with in_process_agent(tiny_qwen, capture=capture) as (agent, describer, voice):
        agent.press(Binding("x", "describe_screen"))
        assert capture.started.wait(10)  # the dispatcher is inside the capture
        agent.press(Binding("x", "describe_window"))  # waits behind it
        agent.press(Binding("x", "stop"))
        capture.gate.set()
        time.sleep(1.0)
        assert describer.describe_calls == 0 and agent.jobs_run == 0, "nothing pressed before Stop runs after it"
        # Stop may drop the screen's cue if it was still queued; the window's press is never answered.
        assert voice.said[-1] == "Stopped." and "Describing the window." not in voice.said, voice.said
        # The next press works as usual.
        agent.press(Binding("x", "describe_window"))
        Desktop.wait_for(lambda: agent.jobs_run == 1 and describer.describe_calls == 1, 30)


def test_read_text_is_not_kept_waiting_by_the_first_model_load(desktop, tiny_qwen):
    desktop.spawn(["xmessage", "-fn", "10x20", "-geometry", "+200+150", MESSAGE])
    desktop.wait_for(lambda: "xmessage" in desktop.run("xdotool", "getactivewindow", "getwindowname").stdout)
    with in_process_agent(tiny_qwen, loaded=False) as (agent, describer, voice):
        agent.press(Binding("x", "read_text"))
        Desktop.wait_for(lambda: MESSAGE in voice.said, 30)
        assert agent.state == "loading" and "Ready." not in voice.said


def test_close_while_the_model_loads_returns_and_leaves_nothing_behind(tiny_qwen):
    config = load_config(REPO / "hotkeys.toml")
    from dataclasses import replace

    config = replace(config, model=replace(config.model, name=str(tiny_qwen)))
    voice = Transcript()
    speaker = Speaker(voice)
    describer = CountingDescriber(config.model)
    agent = Agent(config, speaker, describer=describer)
    agent.start()
    start = time.monotonic()
    assert agent.close(timeout=1.0) is False, "the load is still going on"
    assert time.monotonic() - start < 2.0
    describer.gate.set()  # the load ends after close: the model is let go, nothing is said
    Desktop.wait_for(lambda: not agent._loader.is_alive(), 30)
    speaker.wait(5)
    assert describer.captioner is None and "Ready." not in voice.said
    speaker.close()


def test_unexpected_errors_are_bounded_and_carry_no_screen_text(caplog):
    class BrokenCapture:
        def capture_window(self):
            raise TypeError("the window title was 'My bank PIN is 4711'")

    config = load_config(REPO / "hotkeys.toml")
    from dataclasses import replace

    config = replace(config, model=replace(config.model, name="ocr"))
    voice = Transcript()
    speaker = Speaker(voice)
    agent = Agent(config, speaker, capture=BrokenCapture())
    agent.start()
    try:
        for i in range(30):
            agent.press(Binding("x", "describe_window"))
            Desktop.wait_for(lambda: voice.said.count(SOMETHING_WRONG) == i + 1, 10)
    finally:
        agent.close()
        speaker.close()
    assert len(agent.unexpected) == 20, "bounded"
    assert all(re.fullmatch(r"TypeError at agent/core\.py:\d+", u) for u in agent.unexpected), agent.unexpected
    assert "4711" not in caplog.text and "press failed: TypeError at agent/core.py:" in caplog.text


@pytest.mark.desktop
def test_a_wayland_session_is_never_described_as_a_black_screen(desktop):
    """Under Wayland with XWayland, DISPLAY works but an X11 capture shows only black."""
    from conftest import run_cli

    for env in ({"XDG_SESSION_TYPE": "wayland"}, {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": ""}):
        for args in (["read", "--screen"], ["describe", "--window", "--model", "ocr"]):
            r = run_cli(*args, "--no-speak", "--local", env={**desktop.env, **env})
            assert r.returncode == 1, r.stdout
            # No compositor answers at wayland-0 here: one sentence saying why, never an X11 capture.
            assert len(r.stderr.splitlines()) == 1 and "Wayland" in r.stderr, r.stderr
            assert "black" not in r.stdout
