"""Hostile inputs at the edges this file owns: pictures that decode far larger than their files,
command-line text that is not text, bench options, voices and transcripts that do not exist."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from a11y_caption.errors import SpeechError
from conftest import SAMPLE, run_cli

PEAK = """
import resource, sys, threading
from a11y_caption.images import open_image_bytes
data = open(sys.argv[1], "rb").read()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
def decode():
    open_image_bytes(data, "bomb.png")
threads = [threading.Thread(target=decode) for _ in range(int(sys.argv[2]))]
for t in threads: t.start()
for t in threads: t.join()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""


def _peak_rise_mb(path, at_once: int) -> int:
    out = subprocess.run([sys.executable, "-c", PEAK, str(path), str(at_once)], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return int(out.strip())


def test_a_tiny_file_that_decodes_huge_cannot_multiply_the_agents_memory(tmp_path):
    # 79 million pixels in a 20 KB 1-bit PNG: within the pixel limit, so it is opened, but shrunk in
    # its own one byte a pixel, one picture at a time: eight sent at once cost what one does.
    bomb = tmp_path / "bomb.png"
    Image.new("1", (8900, 8900), 1).save(bomb, optimize=True)
    assert bomb.stat().st_size < 64 * 1024
    one, eight = _peak_rise_mb(bomb, 1), _peak_rise_mb(bomb, 8)
    assert one < 300, f"one decode raised the peak by {one} MB"
    assert eight < one + 100, f"eight at once raised it by {eight} MB (one: {one} MB)"


def test_a_picture_beyond_the_pixel_limit_is_refused_before_it_is_decoded(tmp_path):
    from a11y_caption.errors import ImageError
    from a11y_caption.images import MAX_PIXELS, pixel_bound

    big = tmp_path / "big.png"
    Image.new("1", (10_000, 9_000), 1).save(big, optimize=True)
    assert 10_000 * 9_000 > MAX_PIXELS
    with pytest.raises(ImageError, match="too large to open safely"), pixel_bound("The image on the clipboard"):
        # What ImageGrab does with the clipboard's bytes: open and load in one call.
        Image.open(big).load()
    assert _peak_rise_mb_of_refusal(big) < 50


def _peak_rise_mb_of_refusal(path) -> int:
    code = PEAK.replace("    open_image_bytes(data, \"bomb.png\")", "    try:\n        open_image_bytes(data, 'x')\n"
                        "    except Exception:\n        pass")
    out = subprocess.run([sys.executable, "-c", code, str(path), "1"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    return int(out.strip())


def test_command_line_text_that_is_not_valid_text_is_one_line():
    r = run_cli("describe", str(SAMPLE), "--prompt", os.fsdecode(b"caf\xe9?"), "--no-speak", timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == ("a11y-caption: --prompt is not valid text (check the "
                                                      "terminal's character encoding)"), r.stderr
    r = run_cli("ask", os.fsdecode(b"\xff\xfe"), timeout=60)
    assert r.returncode == 2 and "question is not valid text" in r.stderr and "unexpected" not in r.stderr


def test_an_unknown_bench_precision_is_one_line_not_a_traceback():
    r = run_cli("bench", "--precisions", "int8,int3", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("a11y-caption: --precisions must be some of int8, int4, bf16, fp32, separated by "
                                "commas, not 'int3'")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is installed by make test")
def test_an_unknown_espeak_voice_is_said_and_the_default_voice_speaks(tmp_path):
    from a11y_caption.speech.espeak_ng import EspeakVoice, UnknownVoice

    with pytest.raises(UnknownVoice, match="no voice 'zz-bogus'"):
        EspeakVoice(voice="zz-bogus")
    EspeakVoice(voice="en").close()
    transcript = tmp_path / "said.txt"
    r = run_cli("read", str(SAMPLE), "--speech", "espeak-ng", "--voice", "zz-bogus", "--transcript", str(transcript),
                timeout=120)
    assert r.returncode == 0, r.stderr
    assert "a11y-caption: There is no voice 'zz-bogus'; a11y-caption voices lists them." in r.stderr.splitlines()
    assert "Speaking nothing" not in r.stderr and transcript.read_text().strip()


def test_a_transcript_that_cannot_be_written_fails_once_before_anything_is_said(tmp_path):
    missing = tmp_path / "no-such-folder" / "said.txt"
    r = run_cli("read", str(SAMPLE), "--speech", "none", "--transcript", str(missing), timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip() == (f"a11y-caption: The transcript {missing} cannot be written (No such file or "
                                "directory); choose another path for it.")
    assert r.stdout == ""
    from a11y_caption.config import SpeechConfig
    from a11y_caption.speech import open_speaker

    with pytest.raises(SpeechError):
        open_speaker(SpeechConfig(engine="none", transcript=str(missing)))


def test_a_mistyped_model_folder_is_not_told_to_be_downloaded(tmp_path):
    from a11y_caption.errors import ModelNotFound
    from a11y_caption.models import resolve

    missing = tmp_path / "models" / "qwen-typo"
    with pytest.raises(ModelNotFound) as e:
        resolve(str(missing))
    assert str(e.value) == f"The model folder {missing} does not exist; check the path given as the model's name."
    r = run_cli("describe", str(SAMPLE), "--model", str(missing), "--no-speak", "--local", timeout=120)
    assert "models pull" not in r.stdout + r.stderr and "does not exist" in r.stdout + r.stderr
