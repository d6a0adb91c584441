"""The describe / read / config commands end to end, in a separate process, with tiny models."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from conftest import REPO, SAMPLE, run_cli


@pytest.mark.parametrize("family", ["qwen2-vl-2b", "qwen2.5-vl", "blip-base"])
def test_describe_prints_text_and_exits_zero(tiny_models, family):
    r = run_cli("describe", str(SAMPLE), "--model", str(tiny_models[family]), "--no-speak", "--max-new-tokens", "8")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "a description was printed"
    assert "Traceback" not in r.stderr


def test_blip_description_is_followed_by_the_text_on_screen(tiny_blip):
    r = run_cli("describe", str(SAMPLE), "--model", str(tiny_blip), "--no-speak", "--max-new-tokens", "5")
    assert r.returncode == 0, r.stderr
    caption, _, found = r.stdout.partition("Text found:")
    assert caption.strip()
    assert "Screen resolution: 1920 x 1080 (recommended)" in found
    assert "OK Cancel Apply" in found


def test_missing_image_is_one_line_and_nonzero():
    r = run_cli("describe", "missing.png", "--no-speak")
    assert r.returncode == 1
    assert r.stderr.strip() == "a11y-caption: missing.png does not exist."
    assert r.stdout == ""


def test_debug_shows_the_traceback():
    r = run_cli("--debug", "describe", "missing.png", "--no-speak")
    assert r.returncode == 1
    assert "Traceback" in r.stderr


def test_json_several_images_and_alt_text(tiny_qwen, tmp_path):
    second = tmp_path / "photo.jpg"
    Image.effect_mandelbrot((320, 240), (-2, -1.2, 1, 1.2), 60).convert("RGB").save(second)
    r = run_cli("describe", str(SAMPLE), str(second), "--model", str(tiny_qwen), "--no-speak", "--json",
                "--alt-text", "--max-new-tokens", "6")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["path"] for row in rows] == [str(SAMPLE), str(second)]
    for row in rows:
        assert set(row) == {"path", "text", "model", "seconds"}
        assert row["text"] and row["model"] == str(tiny_qwen) and row["seconds"] > 0


def test_one_bad_image_among_good_ones_loses_nothing(tiny_qwen, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    r = run_cli("describe", str(bad), str(SAMPLE), "--model", str(tiny_qwen), "--no-speak", "--json",
                "--max-new-tokens", "4")
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if not line.startswith("a11y-caption: Loading the model")]
    assert errors == ["a11y-caption: bad.png is not an image this program can read."], r.stderr  # and the wait's cue
    assert [json.loads(line)["path"] for line in r.stdout.splitlines()] == [str(SAMPLE)]


def test_missing_model_reads_text_and_names_the_pull_command():
    """The embedded default: no weights, no network -> the text is read and the fix is named."""
    r = run_cli("describe", str(SAMPLE), "--no-speak")
    assert r.returncode == 0, r.stderr
    assert "Night light turns on at 9:30 PM" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "The Qwen2-VL 2B model is not on this computer."
    assert ("a11y-caption: The model Qwen/Qwen2-VL-2B-Instruct is not on this computer. "
            "Download it with: a11y-caption models pull Qwen/Qwen2-VL-2B-Instruct") in r.stderr.splitlines()


def test_alt_text_refuses_ocr_fallback(tmp_path):
    transcript = tmp_path / "said.txt"
    r = run_cli("describe", str(SAMPLE), "--alt-text", "--speech", "none", "--transcript", str(transcript))
    assert r.returncode == 1
    assert "models pull Qwen/Qwen2-VL-2B-Instruct" in r.stderr
    assert r.stdout == ""
    assert transcript.read_text().splitlines() == ["The Qwen2-VL 2B model is not on this computer."], (
        "the voice says the short name; the hub id and the pull command are printed, not spelled out")


def test_transcript_gets_each_sentence_in_order(tmp_path):
    transcript = tmp_path / "said.txt"
    r = run_cli("describe", str(SAMPLE), "--speech", "none", "--transcript", str(transcript))
    assert r.returncode == 0, r.stderr
    said = [line for line in transcript.read_text().splitlines() if line != "Reading."]  # the wait, said first
    assert said[0] == "Settings - Display"
    assert "Warning: changes apply after you sign out." in said
    assert said[-1] == "The Qwen2-VL 2B model is not on this computer.", "by its short name, once"
    assert not any("models pull" in line for line in said), "the pull command is printed, not spoken"


def test_read_prints_text_and_black_is_blank(tmp_path):
    black = tmp_path / "black.png"
    Image.new("RGB", (1280, 800), "black").save(black)
    r = run_cli("read", str(SAMPLE), "--no-speak")
    assert r.returncode == 0, r.stderr
    assert "Scale text and apps to 125 percent" in r.stdout
    r = run_cli("read", str(black), "--no-speak", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["text"] == "The image is blank: plain black, with no text or pictures."


def test_black_image_is_described_without_loading_a_model(tmp_path):
    black = tmp_path / "black.png"
    Image.new("RGB", (640, 480), (3, 3, 3)).save(black)
    # A model folder that does not exist: proof that no model is loaded for a blank image.
    r = run_cli("describe", str(black), "--model", str(tmp_path / "no-such-model"), "--no-speak")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "The image is blank: plain black, with no text or pictures."


def test_config_check_lists_the_packaged_hotkeys():
    r = run_cli("config", "check")
    assert r.returncode == 0, r.stderr
    assert "Ctrl+Alt+Shift+D  describe_screen: describe the screen" in r.stdout.splitlines(), "people's spelling of keys"


def test_keys_are_said_in_words_without_an_agent(tmp_path):
    transcript = tmp_path / "said.txt"
    r = run_cli("keys", "--config", str(REPO / "hotkeys.toml"), "--transcript", str(transcript), "--no-speak")
    assert r.returncode == 2 and "--transcript" in r.stderr, "keys takes only the flags it uses"
    r = run_cli("keys", "--no-speak")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "Control Alt Shift D: describe the screen." in lines
    assert "Control Alt Shift H: say all the keys." in lines
    assert all("<" not in line for line in lines), "people's words, not the settings file's syntax"
