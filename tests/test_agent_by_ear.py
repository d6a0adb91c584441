"""The agent as a user who listens hears it: what it says at start, without a model, when asked for
its keys, when a key asks a question, when the model cannot follow one, and how fast it goes away.
Real agents under Xvfb with a transcript voice, fake dialog programs on PATH, and the tiny models."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from a11y_caption.config import Binding, load_config
from a11y_caption.models import KNOWN_MODELS
from conftest import REPO, SAMPLE, TranscriptVoice, wait_for

MESSAGE = "Invoice 2041 is overdue. Pay by Friday."
QUESTION = "What is the number of the overdue invoice?"
DEFAULT = "Qwen/Qwen2-VL-2B-Instruct"
NOT_HERE = "The Qwen2-VL 2B model is not on this computer."
KEYS_LINE = "Control Alt Shift D describes the screen; Control Alt Shift H says all the keys."
NO_BOX = "No question box is available; ask from a terminal with: a11y-caption ask QUESTION"


# -- by name: no desktop needed ---------------------------------------------------------------------

def test_known_models_have_short_spoken_names_and_others_their_last_part():
    from a11y_caption.describe.missing import spoken_name

    assert spoken_name(DEFAULT) == "the Qwen2-VL 2B model"
    assert spoken_name("qwen2-vl-2b") == "the Qwen2-VL 2B model"  # the alias too
    assert spoken_name("Qwen/Qwen2.5-VL-3B-Instruct") == "the Qwen2.5-VL 3B model"
    assert spoken_name("HuggingFaceTB/SmolVLM-256M-Instruct") == "the SmolVLM 256M model"
    assert spoken_name("Salesforce/blip-image-captioning-base") == "the BLIP base model"
    assert spoken_name("Salesforce/blip-image-captioning-large") == "the BLIP large model"
    for known in KNOWN_MODELS:  # a model added to the list gets a name a voice can say
        name = spoken_name(known.repo_id)
        assert "/" not in name and "Instruct" not in name and len(name.split()) <= 4, name
    assert spoken_name("someone/not-downloaded") == "the model not-downloaded"
    assert spoken_name("/home/me/models/my-vlm/") == "the model my-vlm"


def test_missing_sentences_are_short_and_the_pull_command_is_only_printed():
    from a11y_caption.describe.missing import not_here
    from a11y_caption.errors import ModelNotFound

    assert not_here(ModelNotFound(DEFAULT)) == NOT_HERE
    assert not_here(ModelNotFound("/no/such/folder/tiny", folder=True)) == "The model folder tiny does not exist."


def _sample() -> Image.Image:
    return Image.open(SAMPLE).convert("RGB")


def test_without_a_model_describe_says_so_once_then_text_only(caplog):
    """One describer (the agent's, or a CLI describing several files): the short sentence at the
    first description, "Text only." after; the pull command goes to the log, never into the text."""
    from a11y_caption.config import ModelConfig
    from a11y_caption.describe.describer import Describer

    describer = Describer(ModelConfig())
    with caplog.at_level("WARNING"):
        first = describer.describe(_sample(), "screen").collect().text
    assert "Night light turns on at 9:30 PM" in first
    assert first.strip().splitlines()[-1] == NOT_HERE
    assert "models pull" not in first and DEFAULT not in first
    assert f"a11y-caption models pull {DEFAULT}" in caplog.text
    second = describer.describe(_sample(), "screen").collect().text
    assert "Night light turns on at 9:30 PM" in second and second.strip().splitlines()[-1] == "Text only."
    assert NOT_HERE not in second


def test_blip_given_a_question_says_so_in_one_sentence_and_captions(tiny_blip):
    from a11y_caption.config import ModelConfig
    from a11y_caption.describe.describer import Describer

    describer = Describer(replace(ModelConfig(), name=str(tiny_blip), max_new_tokens=6, quantize="none"))
    text = describer.describe(_sample(), "question", "What does the error say?").collect().text
    lead = "This model cannot follow a question; here is its caption."
    assert text.startswith(lead) and text[len(lead):].strip(), text
    plain = describer.describe(_sample(), "photo").collect().text
    assert "cannot follow" not in plain and plain.strip()


def test_the_ready_lines_say_what_the_agent_is_ready_for():
    from a11y_caption.agent.keys import ready_lines

    hotkeys = load_config(REPO / "hotkeys.toml").hotkeys
    assert ready_lines(hotkeys, None) == ["Ready.", KEYS_LINE]
    assert ready_lines(hotkeys, "the Qwen2-VL 2B model") == [
        "Ready to read text; the Qwen2-VL 2B model is not on this computer.",
        "Control Alt Shift R reads the window; Control Alt Shift H says all the keys."]
    assert ready_lines((), None) == ["Ready."]  # no keys of its own (the desktop's shortcuts)
    assert ready_lines((Binding("<ctrl>+<alt>+d", "describe_screen"),), None) == [
        "Ready.", "Control Alt D describes the screen."]


def test_the_key_list_says_each_key_in_words():
    from a11y_caption.agent.keys import key_list

    lines = key_list(load_config(REPO / "hotkeys.toml").hotkeys)
    assert lines[0] == "Control Alt Shift D: describe the screen."
    assert "Control Alt Shift S: stop speaking." in lines
    assert "Control Alt Shift H: say all the keys." in lines
    assert "Control Alt Shift Q: ask about the last answer." in lines
    assert "Control Alt Shift E: ask about the window: Is there an error message in this window?" in lines
    assert not any("<" in line or "+" in line for line in lines)
    assert len(lines) == len(load_config(REPO / "hotkeys.toml").hotkeys)


def test_the_question_box_is_the_desktops_own():
    """Which program opens the box, and with what (the programs themselves are faked below)."""
    from a11y_caption.agent.question_box import box_command

    def which(*names):
        return lambda name: f"/usr/bin/{name}" if name in names else None

    zenity = box_command("linux", which("zenity", "kdialog"), {"DISPLAY": ":0"})
    assert zenity[0] == "/usr/bin/zenity" and "--entry" in zenity
    kdialog = box_command("linux", which("kdialog"), {"WAYLAND_DISPLAY": "wayland-0"})
    assert kdialog[0] == "/usr/bin/kdialog" and "--inputbox" in kdialog
    assert box_command("linux", which(), {"DISPLAY": ":0"}) is None
    assert box_command("linux", which("zenity"), {}) is None  # no display to show it on
    # Elsewhere the agent says how to ask from a terminal: a background program's dialog may come
    # up behind the window in use there.
    assert box_command("darwin", which("osascript"), {}) is None
    assert box_command("win32", which("powershell"), {}) is None


# -- real agents ----------------------------------------------------------------------------------

def _fake_program(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return folder


def _agent(desktop, tmp_path, model, extra_env: dict | None = None, max_new_tokens: int = 8):
    from test_agent import AgentProcess, write_config

    transcript = tmp_path / "said.txt"
    config = write_config(tmp_path / "hotkeys.toml", model, transcript, max_new_tokens)
    return AgentProcess(desktop, tmp_path, config, transcript, extra_env)


def _show_message(desktop, text: str = MESSAGE) -> None:
    desktop.spawn(["xmessage", "-fn", "10x20", "-geometry", "+200+150", text])
    desktop.wait_for(lambda: "xmessage" in desktop.run("xdotool", "getactivewindow", "getwindowname").stdout)


@pytest.mark.desktop
def test_without_a_model_the_agent_says_so_at_start_and_first_press_then_text_only(desktop, tmp_path):
    _show_message(desktop)
    agent = _agent(desktop, tmp_path, Path(DEFAULT))  # not in the test's empty model cache
    try:
        ready = agent.wait_line(lambda line: line.startswith("Ready"))
        agent.wait_line(lambda line: "says all the keys" in line, after=ready)
        assert agent.lines()[ready:ready + 2] == [
            "Ready to read text; the Qwen2-VL 2B model is not on this computer.",
            "Control Alt Shift R reads the window; Control Alt Shift H says all the keys."]
        desktop.key("ctrl+alt+shift+d")
        cue = agent.wait_line(lambda line: line == "Describing the screen.", after=ready)
        told = agent.wait_line(lambda line: line == NOT_HERE, after=cue)
        assert "Invoice 2041 is overdue." in agent.lines()[cue:told]
        desktop.key("ctrl+alt+shift+d")
        cue = agent.wait_line(lambda line: line == "Describing the screen.", after=told)
        only = agent.wait_line(lambda line: line == "Text only.", after=cue)
        assert "Invoice 2041 is overdue." in agent.lines()[cue:only]
        time.sleep(0.5)
        said = agent.lines()
        assert said.count(NOT_HERE) == 1 and not any(NOT_HERE in line for line in said[told + 1:])
        assert not any("models pull" in line or "Qwen/" in line for line in said), said
        assert f"a11y-caption models pull {DEFAULT}" in agent.log(), "the command is printed, for a terminal"
        assert agent.stop() == 0
    finally:
        if agent.proc.poll() is None:
            agent.stop()


@pytest.mark.desktop
def test_the_say_keys_key_lists_every_key_and_the_question_key_has_its_own_cue(desktop, tiny_qwen, tmp_path):
    from a11y_caption.agent.keys import key_list

    _show_message(desktop)
    agent = _agent(desktop, tmp_path, tiny_qwen)
    try:
        ready = agent.wait_line(lambda line: line == "Ready.")
        assert agent.wait_line(lambda line: line == KEYS_LINE, after=ready) == ready + 1
        desktop.key("ctrl+alt+shift+h")
        expected = key_list(load_config(tmp_path / "hotkeys.toml").hotkeys)
        first = agent.wait_line(lambda line: line == expected[0], after=ready + 2)
        agent.wait_line(lambda line: line == expected[-1], after=first)
        assert agent.lines()[first:first + len(expected)] == expected
        # The error-message key asks a question about the window: its cue is not the window key's.
        desktop.key("ctrl+alt+shift+e")
        agent.wait_line(lambda line: line == "Asking about the window.", after=first)
        desktop.wait_for(lambda: agent.generations() == ["describe_window"], 60)
        assert "Describing the window." not in agent.lines()
        assert agent.stop() == 0
    finally:
        if agent.proc.poll() is None:
            agent.stop()


@pytest.mark.desktop
def test_the_ask_key_opens_the_question_box_and_asks_about_the_last_description(desktop, tiny_qwen, tmp_path):
    """A fake zenity stands in for the desktop's box: it notes how it was started and answers with a
    fixed question, as a user typing it and pressing Enter would."""
    calls = tmp_path / "zenity-calls"
    bin_dir = _fake_program(tmp_path / "bin", "zenity", f'echo "$@" >> {calls}\necho "{QUESTION}"\n')
    _show_message(desktop)
    agent = _agent(desktop, tmp_path, tiny_qwen, {"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    try:
        ready = agent.wait_line(lambda line: line == "Ready.")
        desktop.key("ctrl+alt+shift+q")  # nothing described yet: said, and no box opens
        agent.wait_line(lambda line: line.startswith("Nothing has been described yet."), after=ready)
        assert not calls.exists()
        desktop.key("ctrl+alt+shift+d")
        desktop.wait_for(lambda: agent.generations() == ["describe_screen"], 60)
        start = len(agent.lines())
        desktop.key("ctrl+alt+shift+q")
        asking = agent.wait_line(lambda line: line == "Asking.", after=start)
        desktop.wait_for(lambda: agent.generations() == ["describe_screen", "ask"], 60)
        assert "--entry" in calls.read_text()
        assert len(agent.lines()) > asking + 1 or desktop.wait_for(lambda: len(agent.lines()) > asking + 1, 10)
        assert agent.stop() == 0
        assert QUESTION not in agent.log() and "overdue invoice" not in agent.log(), "the question is never logged"
    finally:
        if agent.proc.poll() is None:
            agent.stop()


@contextlib.contextmanager
def _in_process_agent(model, **model_overrides):
    """A started Agent on the test's display with a transcript voice, once it is Ready."""
    from a11y_caption.agent import Agent
    from a11y_caption.speech import Speaker

    config = load_config(REPO / "hotkeys.toml")
    config = replace(config, model=replace(config.model, name=str(model), max_new_tokens=6, **model_overrides))
    voice = TranscriptVoice()
    speaker = Speaker(voice)
    agent = Agent(config, speaker)
    agent.start()
    try:
        wait_for(lambda: any(line.startswith("Ready") for line in voice.said), 60)
        yield agent, voice
    finally:
        agent.close()
        speaker.close()
    assert list(agent.unexpected) == []


def _ask_key(agent) -> Binding:
    return next(b for b in agent.config.hotkeys if b.action == "ask" and not b.prompt)


@pytest.mark.desktop
def test_the_ask_key_without_a_box_says_how_to_ask_from_a_terminal(desktop, tiny_qwen, tmp_path, monkeypatch):
    with _in_process_agent(tiny_qwen) as (agent, voice):
        agent.press(Binding("x", "describe_window"))
        wait_for(lambda: agent.jobs_run == 1, 60)
        monkeypatch.setenv("PATH", str(_fake_program(tmp_path / "empty", "nothing", "")))  # no zenity, no kdialog
        agent.press(_ask_key(agent))
        wait_for(lambda: voice.said[-1:] == [NO_BOX], 10)


@pytest.mark.desktop
def test_a_question_box_left_open_is_closed_after_its_time(desktop, tiny_qwen, tmp_path, monkeypatch):
    pids = tmp_path / "pids"
    bin_dir = _fake_program(tmp_path / "bin", "zenity", f"echo $$ >> {pids}\nexec sleep 60\n")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    with _in_process_agent(tiny_qwen) as (agent, voice):
        agent.question_seconds = 1.0
        agent.press(Binding("x", "describe_window"))
        wait_for(lambda: agent.jobs_run == 1, 60)
        agent.press(_ask_key(agent))
        wait_for(lambda: pids.exists() and pids.read_text().strip(), 10)
        pid = int(pids.read_text().split()[0])
        wait_for(lambda: voice.said[-1:] == ["The question box closed after 1 second without a question."], 10)
        wait_for(lambda: not os.path.exists(f"/proc/{pid}") or "sleep" not in _cmdline(pid), 5)
        assert agent.jobs_run == 1, "nothing was asked"


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.desktop
def test_a_follow_up_to_blip_says_it_cannot_follow_a_question_and_gives_its_caption(desktop, tiny_blip):
    _show_message(desktop)  # not a black screen, which is said without the model
    with _in_process_agent(tiny_blip, quantize="none") as (agent, voice):
        agent.press(Binding("x", "describe_window"))
        wait_for(lambda: agent.jobs_run == 1, 60)
        said = len(voice.said)
        from a11y_caption.agent import Press

        agent.submit(Press("ask", "What does the error say?"))
        wait_for(lambda: agent.jobs_run == 2, 60)
        agent.speaker.wait(10)
        after = voice.said[said:]
        lead = "This model cannot follow a question; here is its caption."
        assert after[0] == "Asking." and after[1] == lead and len(after) > 2, after


@pytest.mark.desktop
def test_the_agent_exits_promptly_on_sigterm_even_while_it_reads_the_screen(desktop, tiny_qwen, tmp_path):
    """SIGTERM while the worker is inside OCR (which cannot be interrupted) and the model is loaded:
    the agent is gone within a second or so, not when the reading and the interpreter's teardown end."""
    text = "\n".join(f"Line {i}: invoice {2000 + i} is overdue, pay it by Friday the {i + 1}th." for i in range(30))
    desktop.spawn(["xmessage", "-fn", "10x20", "-geometry", "+0+0", text])
    desktop.wait_for(lambda: "xmessage" in desktop.run("xdotool", "getactivewindow", "getwindowname").stdout)
    agent = _agent(desktop, tmp_path, tiny_qwen)
    try:
        ready = agent.wait_line(lambda line: line == "Ready.")
        desktop.key("ctrl+alt+shift+r")
        agent.wait_line(lambda line: line == "Reading.", after=ready)
        time.sleep(0.3)
        start = time.monotonic()
        agent.proc.terminate()
        code = agent.proc.wait(timeout=20)
        took = time.monotonic() - start
        assert code == 0 and "Traceback" not in agent.log()
        assert took < 2.5, f"the agent took {took:.1f} s to exit on SIGTERM"
    finally:
        if agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait()


def test_a_command_can_ask_for_the_keys_and_for_the_question_box():
    """What a desktop shortcut's command sends: `keys` says and returns the list; `ask` with
    ``box`` opens the question box (here: nothing described yet, so it says that instead)."""
    from a11y_caption.agent.control import Reply
    from a11y_caption.agent.keys import key_list

    def answer(agent, request: dict) -> list[dict]:
        reply = Reply()
        agent.handle_request({"v": 1, **request}, None, reply)
        messages = []
        while (message := reply._messages.get(timeout=10)) is not None:
            messages.append(message)
        return messages

    with _in_process_agent("ocr") as (agent, voice):
        expected = key_list(agent.config.hotkeys)
        messages = answer(agent, {"op": "keys", "speak": True})
        assert messages[-1] == {"type": "done", "text": "\n".join(expected)}
        wait_for(lambda: voice.said[-len(expected):] == expected, 10)
        messages = answer(agent, {"op": "ask", "box": True, "speak": False})
        assert messages[-1]["type"] == "error" and messages[-1]["message"].startswith("Nothing has been described")
        assert answer(agent, {"op": "ask", "speak": False})[-1]["message"].startswith("Ask a question")
