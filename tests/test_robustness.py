"""Odd and hostile input: every image kind, the clipboard's moods, model faults, speech faults."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from a11y_caption.capture import grab_clipboard_image
from a11y_caption.errors import ImageError, NoImageOnClipboard
from a11y_caption.images import MAX_SIDE, open_image
from conftest import SAMPLE, run_cli, stderr_lines


def _content(size=(320, 240)) -> Image.Image:
    im = Image.effect_mandelbrot(size, (-2, -1.2, 1, 1.2), 40).convert("RGB")
    ImageDraw.Draw(im).text((10, 10), "Hello", fill="white")
    return im


def _bomb_png(path: Path, width: int, height: int) -> None:
    """A tiny PNG file that claims width x height pixels (it compresses to almost nothing)."""
    raw = zlib.compress(b"\x00" * (width // 8 + 1) * 16, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def make_odd_valid(folder: Path) -> dict[str, Path]:
    """Valid images in unusual forms; each must be described."""
    files = {}
    base = _content()
    files["cmyk"] = folder / "cmyk.jpg"
    base.convert("CMYK").save(files["cmyk"])
    files["16bit"] = folder / "grey16.png"
    Image.frombytes("I;16", (64, 48), bytes(range(256)) * 24).save(files["16bit"])
    files["palette_alpha"] = folder / "palette.png"
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    pal.save(files["palette_alpha"], transparency=0)
    files["rgba"] = folder / "rgba.png"
    base.convert("RGBA").save(files["rgba"])
    files["animated"] = folder / "anim.gif"
    frames = [base, base.rotate(90), base.rotate(180)]
    frames[0].save(files["animated"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    files["exif_rotated"] = folder / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.new("RGB", (200, 100), "red").save(files["exif_rotated"], exif=exif)
    files["huge"] = folder / "huge.png"
    huge = Image.new("L", (9000, 6000), 255)
    ImageDraw.Draw(huge).text((100, 100), "Huge", fill=0)
    huge.save(files["huge"])
    files["tiny"] = folder / "one-pixel.png"
    Image.new("RGB", (1, 1), "blue").save(files["tiny"])
    files["webp"] = folder / "photo.webp"
    base.save(files["webp"])
    return files


def make_invalid(folder: Path) -> dict[str, tuple[Path, str]]:
    """Invalid inputs and the one line each must produce."""
    files = {}
    (folder / "empty.png").write_bytes(b"")
    files["zero_byte"] = (folder / "empty.png", "empty.png is empty.")
    good = io.BytesIO()
    _content().save(good, "PNG")
    (folder / "truncated.png").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    files["truncated_png"] = (folder / "truncated.png", "truncated.png is damaged and could not be read.")
    jpeg = io.BytesIO()
    _content().save(jpeg, "JPEG")
    (folder / "truncated.jpg").write_bytes(jpeg.getvalue()[:400])
    files["truncated_jpeg"] = (folder / "truncated.jpg", "truncated.jpg is damaged and could not be read.")
    _bomb_png(folder / "bomb.png", 60000, 60000)
    files["decompression_bomb"] = (folder / "bomb.png", "bomb.png is too large to open safely.")
    (folder / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    files["svg"] = (folder / "drawing.svg", "drawing.svg is not an image this program can read.")
    (folder / "doc.pdf").write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    files["pdf"] = (folder / "doc.pdf", "doc.pdf is not an image this program can read.")
    (folder / "notes.png").write_text("These are my notes, not a picture.")
    files["text_named_png"] = (folder / "notes.png", "notes.png is not an image this program can read.")
    (folder / "a-folder.png").mkdir()
    files["directory"] = (folder / "a-folder.png", f"{folder / 'a-folder.png'} is not a file.")
    files["missing"] = (folder / "gone.png", f"{folder / 'gone.png'} does not exist.")
    return files


def test_odd_but_valid_images_open_as_bounded_rgb(tmp_path):
    files = make_odd_valid(tmp_path)
    for name, path in files.items():
        im = open_image(path)
        assert im.mode == "RGB" and max(im.size) <= MAX_SIDE, name
    assert open_image(files["exif_rotated"]).size == (100, 200), "EXIF orientation applied"
    assert open_image(files["palette_alpha"]).getpixel((0, 0)) is not None
    grey = open_image(files["16bit"])
    assert grey.getextrema()[0][1] > 200, "16-bit grey scaled to 8 bits, not clipped"


def test_invalid_images_raise_one_sentence(tmp_path):
    for name, (path, message) in make_invalid(tmp_path).items():
        with pytest.raises(ImageError) as e:
            open_image(path)
        assert str(e.value) == message, name


def test_cli_describes_odd_images_and_reports_each_invalid_one(tmp_path, tiny_qwen):
    (tmp_path / "ok").mkdir()
    (tmp_path / "bad").mkdir()
    valid = make_odd_valid(tmp_path / "ok")
    invalid = make_invalid(tmp_path / "bad")
    paths = [str(p) for p in valid.values()] + [str(p) for p, _ in invalid.values()]
    r = run_cli("describe", *paths, "--model", str(tiny_qwen), "--no-speak", "--json", "--max-new-tokens", "3",
                timeout=600)
    assert r.returncode == 1
    described = [json.loads(line)["path"] for line in r.stdout.splitlines()]
    assert described == [str(p) for p in valid.values()]
    assert stderr_lines(r.stderr) == [f"a11y-caption: {message}" for _, message in invalid.values()]


@pytest.mark.desktop
def test_clipboard_moods(desktop, tmp_path):
    # Nothing on the clipboard at all (no owner on a fresh X server).
    with pytest.raises(NoImageOnClipboard, match="There is no image on the clipboard."):
        grab_clipboard_image()
    desktop.run("xclip", "-selection", "clipboard", "-i", input="plain words".encode())
    with pytest.raises(NoImageOnClipboard):
        grab_clipboard_image()
    photo = tmp_path / "my photo.png"
    _content().save(photo)
    # A file manager's copied file list, and a copied path as text.
    desktop.run("xclip", "-selection", "clipboard", "-t", "text/uri-list", "-i",
                input=f"file://{str(photo).replace(' ', '%20')}\r\n".encode())
    assert grab_clipboard_image().size == (320, 240)
    desktop.run("xclip", "-selection", "clipboard", "-i", input=str(photo).encode())
    assert grab_clipboard_image().size == (320, 240)
    # A copied file that is not an image.
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    desktop.run("xclip", "-selection", "clipboard", "-i", input=str(notes).encode())
    with pytest.raises(ImageError):
        grab_clipboard_image()
    # A huge image is shrunk to a bounded size.
    big = tmp_path / "big.png"
    Image.new("RGB", (8000, 6000), "white").save(big)
    desktop.copy_png(big)
    assert max(grab_clipboard_image().size) == MAX_SIDE


@pytest.mark.desktop
def test_clipboard_that_changes_while_read(desktop, tmp_path):
    png, other = tmp_path / "a.png", tmp_path / "b.png"
    _content().save(png)
    _content((200, 100)).save(other)
    done = threading.Event()

    def churn():
        while not done.is_set():
            desktop.copy_png(png)
            desktop.run("xclip", "-selection", "clipboard", "-i", input=b"text now")
            desktop.copy_png(other)

    t = threading.Thread(target=churn, daemon=True)
    t.start()
    outcomes, slowest = [], 0.0
    try:
        for _ in range(30):
            start = time.monotonic()
            try:
                outcomes.append(grab_clipboard_image().size)
            except (NoImageOnClipboard, ImageError) as e:  # anything else fails the test
                outcomes.append(type(e).__name__)
            slowest = max(slowest, time.monotonic() - start)
    finally:
        done.set()
        t.join()
    # Each read ends in one of the images as copied (never a mix or a garbled size), or in a
    # one-sentence error, and none hangs.
    assert set(outcomes) <= {(320, 240), (200, 100), "NoImageOnClipboard", "ImageError"}, outcomes
    assert len(outcomes) == 30 and slowest < 10, slowest


def test_speech_engine_that_cannot_start_falls_back(tmp_path):
    fake = tmp_path / "fake_site"
    fake.mkdir()
    (fake / "pyttsx3.py").write_text("def init(*a, **k):\n    raise RuntimeError('no speech driver')\n")
    r = run_cli("describe", str(SAMPLE), "--speech", "pyttsx3", "--transcript", str(tmp_path / "said.txt"),
                env={"PYTHONPATH": str(fake)})
    assert r.returncode == 0
    assert "The pyttsx3 voice could not start (RuntimeError: no speech driver). Speaking nothing" in r.stderr
    assert "Night light turns on at 9:30 PM" in r.stdout
    assert "Night light turns on at 9:30 PM" in (tmp_path / "said.txt").read_text()
    r = run_cli("describe", str(SAMPLE), "--speech", "espeak-ng", env={"PATH": str(tmp_path)})
    assert r.returncode == 0 and "espeak-ng is not installed" in r.stderr


def test_out_of_memory_is_one_sentence_and_next_try_works(tiny_qwen, monkeypatch):
    from a11y_caption.captioner import chat_vlm
    from a11y_caption.config import ModelConfig
    from a11y_caption.describe.describer import Describer
    from a11y_caption.errors import ModelLoadError

    real_init = chat_vlm.ChatVLMCaptioner.__init__
    calls = []

    def flaky_init(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError()
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(chat_vlm.ChatVLMCaptioner, "__init__", flaky_init)
    describer = Describer(ModelConfig(name=str(tiny_qwen), max_new_tokens=3))
    with pytest.raises(ModelLoadError, match="Not enough memory to load"):
        describer.load()
    assert describer.describe(_content(), "photo").collect().text


def test_model_pulled_after_start_is_used_on_the_next_press(tiny_qwen, tmp_path):
    from a11y_caption.config import ModelConfig
    from a11y_caption.describe.describer import Describer

    folder = tmp_path / "later"
    describer = Describer(ModelConfig(name=str(folder), max_new_tokens=3))
    first = describer.describe(_content(), "photo").collect()
    assert first.model == "ocr" and "does not exist" in first.text
    shutil.copytree(tiny_qwen, folder)
    second = describer.describe(_content((300, 200)), "photo").collect()
    assert second.model == str(folder)


def test_remote_code_needs_opt_in(tmp_path):
    from a11y_caption.captioner.factory import backend_for
    from a11y_caption.errors import UnsupportedModel

    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "my_custom_vlm", "architectures": ["MyVLM"],
        "auto_map": {"AutoModelForImageTextToText": "modeling_my.MyVLM"}}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(UnsupportedModel):
        backend_for(tmp_path)
    assert backend_for(tmp_path, trust_remote_code=True) == "chat_vlm"
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
