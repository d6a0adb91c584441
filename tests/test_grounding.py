"""Grounding in OCR (issue 16): the model is given the text OCR found, and quotes that are not on
the screen are never spoken as if they were. Tiny models and real OCR on rendered screens."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import replace

import pytest
from PIL import Image

from a11y_caption.captioner.base import Captioner, Generation, Request
from a11y_caption.config import ModelConfig, load_config
from a11y_caption.describe.describer import Describer
from a11y_caption.describe.grounding import UNCONFIRMED, QuoteChecker, ScreenLine, ScreenText, position_label
from a11y_caption.captioner.prompts import prompt_for
from conftest import REPO, Desktop
from screens import render_screen

TITLE = "Settings - Display"


class RecordingProcessor:
    """The real processor, noting the text it is given: what the model's prompt really was."""

    def __init__(self, inner, texts: list[str]):
        self._inner, self.texts = inner, texts

    def __call__(self, *args, text=None, **kwargs):
        self.texts.extend(text or [])
        return self._inner(*args, text=text, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class ScriptedModel(Captioner):
    """A chat-model captioner whose answer the test writes, streamed in small chunks."""

    name = "scripted"
    reads_text = True
    answers_questions = True

    def __init__(self, answer: str):
        self.answer = answer
        self.requests: list[Request] = []

    def generate(self, request, options, stop=None):
        self.requests.append(request)
        text = self.answer
        return Generation((text[i:i + 3] for i in range(0, len(text), 3)), stop or threading.Event(), self.name)

    def close(self):
        pass


def _describer(model_dir, **overrides) -> Describer:
    overrides.setdefault("ground_in_ocr", "auto")  # the default, whatever a test's settings file says
    overrides.setdefault("max_new_tokens", 6)
    return Describer(ModelConfig(name=str(model_dir), device="cpu", dtype="fp32", quantize="none", **overrides))


def test_the_processor_is_given_the_ocr_lines_with_their_positions(tiny_qwen):
    screen = render_screen()
    describer = _describer(tiny_qwen)
    describer.load()
    texts: list[str] = []
    describer.captioner.processor = RecordingProcessor(describer.captioner.processor, texts)
    generation = describer.describe(screen.image, "window", image_kind="screen")
    generation.collect()
    # On the CPU OCR runs first: one input, the whole prompt with the lines found.
    assert len(texts) == 1
    prompt = texts[0]
    assert f"[top left]\n{TITLE}\n" in prompt  # the title bar, at the top left of the window
    for line in screen.lines:
        assert " ".join(line.split()) in prompt
    assert "read its important text" not in prompt, "the grounded prompt does not ask the model to read"
    assert [line.text for line in generation.screen_text.lines] == [" ".join(x.split()) for x in screen.lines]


def test_on_the_cpu_ocr_runs_before_the_model_on_every_core(tiny_qwen):
    """A model on the CPU takes every core: grounding's OCR runs first, with the reader that uses
    every core, and the model reads the whole prompt after it (nothing is read ahead)."""
    screen = render_screen()
    describer = _describer(tiny_qwen)
    describer.load()
    # The one-thread reader is loaded with the model (a small object's quote check uses it, as
    # grounds "check" does), but a screen's OCR is the every-core reader's.
    events = []
    read, prefill = describer.ocr.read_boxed_lines, describer.captioner.prefill
    describer.ocr.read_boxed_lines = lambda image: events.append("ocr") or read(image)
    beside = describer._ocr_alongside.read_boxed_lines
    describer._ocr_alongside.read_boxed_lines = lambda image: events.append("ocr beside") or beside(image)
    describer.captioner.prefill = lambda request: events.append("prefill") or prefill(request)
    generate = describer.captioner.generate
    describer.captioner.generate = lambda *a, **k: events.append("generate") or generate(*a, **k)
    describer.describe(screen.image, "screen").collect()
    assert events == ["ocr", "generate"] and describer.captioner.reused_tokens == describer.captioner.prefix_tokens


def test_the_prompt_read_while_ocr_runs_is_reused_and_changes_nothing(tiny_qwen):
    """Where OCR runs beside the model (a model on a GPU; here asked for), the image and the
    prompt's start are read into the cache while OCR runs (prefill); the answer is token for
    token the one a single pass over the whole prompt gives."""
    screen = render_screen()
    describer = _describer(tiny_qwen, max_new_tokens=12)
    describer.ocr_beside_model = True
    describer.load()
    model = describer.captioner
    model.model.generation_config.min_new_tokens = 12  # nonsense text may end early; compare 12 tokens
    texts: list[str] = []
    processor, model.processor = model.processor, RecordingProcessor(model.processor, texts)
    generation = describer.describe(screen.image, "screen")
    overlapped = generation.collect().text
    model.processor = processor
    # Two inputs: the image and the prompt's start, read while OCR ran; then the whole prompt.
    assert len(texts) == 2
    prefix, prompt = texts
    assert prompt.startswith(prefix) and TITLE not in prefix and TITLE in prompt
    read = model.reused_tokens
    inputs = model.prepare(Request(screen.image, "screen", screen_text=generation.screen_text,
                                   pixels=describer.config.grounded_image_tokens * 28 * 28))
    instruction = len(model.processor.tokenizer(prompt_for(Request(screen.image, "screen")))["input_ids"])
    assert read > model._last_image_position(inputs) + instruction, "the image and instruction came from the cache"
    assert read < inputs["input_ids"].shape[-1] - len(screen.lines), "the OCR lines were read after OCR"
    describer._cache.clear()
    model.forget()  # else the first answer's cache, same image and prompt, would be reused
    describer.ocr_beside_model = False  # as on the CPU: the whole prompt in one pass
    single = describer.describe(screen.image, "screen").collect().text
    assert model.reused_tokens == model.prefix_tokens
    assert overlapped == single and overlapped.strip()


@pytest.mark.parametrize("mode, task, grounded", [
    ("auto", "screen", True), ("auto", "question", True), ("auto", "photo", False), ("auto", "alt_text", False),
    ("never", "screen", False), ("always", "photo", True), ("check", "screen", False), ("check", "question", False),
])
def test_ground_in_ocr_chooses_the_tasks(tiny_qwen, mode, task, grounded):
    screen = render_screen(["Invoice 2041 is overdue"], buttons=())
    describer = _describer(tiny_qwen, ground_in_ocr=mode)
    describer.captioner = model = ScriptedModel("A window.")
    generation = describer.describe(screen.image, task, "What is it?" if task == "question" else None)
    generation.collect()
    assert (model.requests[0].screen_text is not None) is grounded
    assert (generation.screen_text is not None) is grounded
    # A screen whose lines are in the prompt gets the grounded image budget; nothing else does (a
    # question without image_kind is about a photo).
    expected = 128 * 28 * 28 if grounded and task == "screen" else None
    assert model.requests[0].pixels == expected


def test_a_grounded_screen_reaches_the_model_at_the_grounded_budget(tiny_qwen):
    """With the screen's text in the prompt the image gets [model] grounded_image_tokens: fewer
    image tokens in the real processor's input than an ungrounded description of the same screen."""
    screen = render_screen()
    image_tokens = {}
    for mode in ("never", "auto"):
        describer = _describer(tiny_qwen, ground_in_ocr=mode, grounded_image_tokens=32, screen_image_tokens=256)
        describer.load()
        model = describer.captioner
        seen = []
        prepare = model.prepare
        model.prepare = lambda request, *a, **k: seen.append(request) or prepare(request, *a, **k)
        describer.describe(screen.image, "screen").collect()
        inputs = prepare(seen[-1])
        image_tokens[mode] = int((inputs["input_ids"] == model.model.config.image_token_id).sum())
    assert image_tokens["auto"] <= 32 < image_tokens["never"] <= 256


def test_a_photo_without_text_is_not_grounded_even_always(tiny_qwen):
    describer = _describer(tiny_qwen, ground_in_ocr="always")
    describer.captioner = model = ScriptedModel("A fractal.")
    describer.describe(Image.radial_gradient("L").convert("RGB").resize((320, 240)), "alt_text").collect()
    assert model.requests[0].screen_text is None


def test_a_quote_not_on_the_screen_is_replaced_and_counted_never_logged(tiny_qwen, caplog, tmp_path):
    from a11y_caption.speech import Speaker

    screen = render_screen()
    describer = _describer(tiny_qwen)
    describer.captioner = ScriptedModel(
        'The Display settings say "scale text and apps to 125 percent". A dialog warns '
        '"Your files were deleted". It says "Night light turns on at 9.30 PM".\n'
        "The 'OK' button is at the bottom; 'Format disk' is not.")
    transcript = tmp_path / "spoken.txt"
    speaker = Speaker(transcript=transcript)
    with caplog.at_level(logging.INFO, logger="a11y_caption"):
        generation = describer.describe(screen.image, "window", image_kind="screen")
        printed = speaker.say_stream(generation)
        speaker.wait(10)
        speaker.close()
    assert '"scale text and apps to 125 percent"' in printed  # on screen (case does not matter)
    assert '"Night light turns on at 9.30 PM"' in printed  # one slip in 25 letters: an OCR-sized slip
    assert "'OK'" in printed
    assert "Your files were deleted" not in printed and "Format disk" not in printed
    assert printed.count(UNCONFIRMED) == 2 and generation.unconfirmed_quotes == 2
    spoken = transcript.read_text()
    assert "deleted" not in spoken and "Format" not in spoken and UNCONFIRMED in spoken
    assert "2 quoted string(s) not found on the screen were replaced" in caplog.text
    assert "deleted" not in caplog.text and "Format" not in caplog.text


def test_check_mode_reads_the_screen_only_when_a_quote_comes_and_checks_it(tiny_qwen):
    """ground_in_ocr = "check": the prompt is the plain one, OCR starts when the first
    quote opens (text before it is not held up) and the quotes are checked against what it read; an
    answer without quotes costs no OCR at all."""
    screen = render_screen()
    describer = _describer(tiny_qwen, ground_in_ocr="check")
    reads, received = [], []
    real = describer.ocr_alongside.read_boxed_lines

    def counted(image):
        reads.append("".join(received))
        return real(image)

    describer.ocr_alongside.read_boxed_lines = counted
    describer.captioner = model = ScriptedModel(
        'A settings window. It says "scale text and apps to 125 percent" and "Your files were deleted".')
    generation = describer.describe(screen.image, "window", image_kind="screen")
    for chunk in generation:
        received.append(chunk)
    text = "".join(received)
    assert model.requests[0].screen_text is None and generation.screen_text is None  # the plain prompt
    assert reads == ["A settings window. It says "], "OCR started at the first quote, after the text before it"
    assert '"scale text and apps to 125 percent"' in text and "deleted" not in text
    assert text.count(UNCONFIRMED) == 1 and generation.unconfirmed_quotes == 1
    assert generation.checked_against is not None and any("125" in l.text for l in generation.checked_against.lines)

    describer.captioner = ScriptedModel("A settings window with a list of options.")
    plain = describer.describe(screen.image, "screen")
    assert plain.collect().text == "A settings window with a list of options."
    assert len(reads) == 1 and plain.checked_against is None, "no quote, no OCR"


def test_quote_checker_units():
    screen = ScreenText((ScreenLine("Error: the disk is full", "middle centre"), ScreenLine("Don't save", "bottom left")))

    def check(text: str, step: int) -> tuple[str, int]:
        checker = QuoteChecker(screen)
        out = "".join(checker.check(text[i:i + step] for i in range(0, len(text), step)))
        return out, checker.unconfirmed

    cases = {
        'It says "ERROR:  the disk is full."': ('It says "ERROR:  the disk is full."', 0),
        "It's the 'Don't save' button, the users' choice.": ("It's the 'Don't save' button, the users' choice.", 0),
        "“Disk is empty” it says": (f"{UNCONFIRMED} it says", 1),
        'An unclosed "Format C': (f"An unclosed {UNCONFIRMED}", 1),
        "The '90s look\nnext": ("The '90s look\nnext", 0),
        'Empty "" quotes': ('Empty "" quotes', 0),
        'A 24" monitor shows "Disk is empty".': (f'A 24" monitor shows {UNCONFIRMED}.', 1),
    }
    for text, expected in cases.items():
        for step in (1, 2, 5, 100):  # however the stream happens to be cut
            assert check(text, step) == expected, (text, step)


def test_position_label_is_the_nearest_cell_of_a_3x3_grid():
    assert position_label(0, 0, 100, 20, 1920, 1080) == "top left"
    assert position_label(900, 500, 1000, 520, 1920, 1080) == "middle centre"
    assert position_label(1800, 1050, 1900, 1070, 1920, 1080) == "bottom right"


def test_a_blank_screen_skips_both_ocr_and_model(tiny_qwen, monkeypatch):
    describer = _describer(tiny_qwen)
    describer.captioner = model = ScriptedModel("invented")
    monkeypatch.setattr(describer, "_pending_screen_text", lambda *a, **k: pytest.fail("OCR ran on a blank screen"))
    text = describer.describe(Image.new("RGB", (1920, 1080), "white"), "screen").collect().text
    assert text == "The screen is blank: plain white, with no text or pictures." and model.requests == []


def test_a_follow_up_reuses_the_cache_of_a_grounded_description(tiny_qwen):
    screen = render_screen()
    describer = _describer(tiny_qwen)
    first = describer.describe(screen.image, "screen")
    answer = first.collect().text
    asked = prompt_for(Request(screen.image, "screen", screen_text=first.screen_text))  # as the agent records it
    assert TITLE in asked
    texts: list[str] = []
    describer.captioner.processor = RecordingProcessor(describer.captioner.processor, texts)
    follow_up = describer.describe(screen.image, "question", "What is the title?", history=((asked, answer),),
                                   image_kind="screen", screen_text=first.screen_text)
    follow_up.collect()
    assert describer.captioner.reused_tokens > 0, "the image and the grounded first turn came from the cache"
    assert texts[0].count(TITLE) == 1, "the OCR lines are in the first turn only"
    assert follow_up.screen_text is first.screen_text


def test_stop_cuts_the_ocr_of_a_grounded_description(tiny_qwen):
    """Stop during OCR (about a second on a 1920x1080 screen): the job ends at once, no model runs."""
    from a11y_caption.agent.core import Agent
    from a11y_caption.config import Binding
    from a11y_caption.speech import Speaker

    screen = render_screen(size=(1920, 1080), px=14)

    class Capture:
        @staticmethod
        def grab_screen(which):
            return screen.image.copy()

    config = load_config(REPO / "hotkeys.toml")
    config = replace(config, model=replace(config.model, name=str(tiny_qwen), max_new_tokens=8, dtype="fp32",
                                           quantize="none", ground_in_ocr="auto"))
    speaker = Speaker()
    describer = Describer(config.model)
    describer.load()
    reading, generated = threading.Event(), []
    read_boxed_lines = describer.ocr.read_boxed_lines  # the CPU's way: OCR first, on every core

    def slow_read(image):
        reading.set()
        return read_boxed_lines(image)

    describer.ocr.read_boxed_lines = slow_read
    real_generate = describer.captioner.generate
    describer.captioner.generate = lambda *a, **k: generated.append(1) or real_generate(*a, **k)
    agent = Agent(config, speaker, describer=describer, capture=Capture)
    agent.start()
    try:
        Desktop.wait_for(lambda: agent.state == "ready", 30)
        agent.press(Binding("x", "describe_screen"))
        assert reading.wait(10)
        stopped = time.perf_counter()
        agent.stop()
        Desktop.wait_for(lambda: agent.jobs_run == 1, 10, interval=0.005)
        took = time.perf_counter() - stopped
        assert took < 0.3, f"the job ended {took:.2f} s after Stop"
        assert generated == [] and agent.last is None
        # And the next press is grounded and generates as usual.
        agent.press(Binding("x", "describe_screen"))
        Desktop.wait_for(lambda: agent.jobs_run == 2, 60)
        assert generated == [1] and agent.conversation.screen_text is not None
    finally:
        agent.close()
        speaker.close()
    assert list(agent.unexpected) == []


@pytest.mark.desktop
def test_describe_screen_json_reports_the_text_on_screen_and_the_prompt_had_it(desktop, tiny_qwen, monkeypatch,
                                                                             capsys):
    from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner
    from a11y_caption.cli import main

    message = "Invoice 2041 is overdue. Pay by Friday."
    desktop.spawn(["xmessage", "-fn", "10x20", "-geometry", "+200+150", message])
    # On the screen and drawn (being mapped is not enough; it need not have the focus for --screen).
    from a11y_caption.capture import grab_screen
    from a11y_caption.captioner.ocr import OcrReader

    reader = OcrReader()
    desktop.wait_for(lambda: message in reader.read_lines(grab_screen("pointer")), 30, interval=0.2)
    texts: list[str] = []
    prepare = ChatVLMCaptioner.prepare

    def recording_prepare(self, request):
        if not isinstance(self.processor, RecordingProcessor):
            self.processor = RecordingProcessor(self.processor, texts)
        return prepare(self, request)

    monkeypatch.setattr(ChatVLMCaptioner, "prepare", recording_prepare)
    # The default settings (the packaged hotkeys.toml) ground a screen: no settings file here.
    status = main(["describe", "--screen", "--json", "--model", str(tiny_qwen), "--no-speak",
                   "--max-new-tokens", "6", "--dtype", "fp32", "--quantize", "none"])
    out = capsys.readouterr().out
    assert status == 0
    row = json.loads(out)
    assert set(row) == {"path", "text", "model", "seconds", "text_on_screen"}
    on_screen = [line["text"] for line in row["text_on_screen"]]
    assert message in on_screen, on_screen
    assert len(texts) == 1 and message in texts[0]
    assert next(line["position"] for line in row["text_on_screen"] if line["text"] == message) == "top left"


from test_agent import agent_factory, wordy_qwen  # noqa: E402,F401  (fixtures of the agent tests)
from test_control import warm_agent  # noqa: E402,F401


@pytest.mark.desktop
def test_text_on_screen_comes_through_the_warm_agent_and_a_follow_up_stays_grounded(warm_agent):
    from conftest import run_cli
    from test_agent import MESSAGE

    agent, env = warm_agent(max_new_tokens=8)  # the default settings ground a screen
    r = run_cli("describe", "--screen", "--json", "--no-speak", env=env)
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert MESSAGE in [line["text"] for line in row["text_on_screen"]], row
    assert "text_on_screen" not in row["text"]
    # A follow-up is checked against the same lines (OCR is not run again).
    r = run_cli("ask", "What does it say?", "--json", "--no-speak", env=env)
    assert r.returncode == 0, r.stderr
    follow_up = json.loads(r.stdout)
    assert follow_up["text"] and follow_up["text_on_screen"] == row["text_on_screen"]
