"""Findings of the review in issue 17, each pinned by a test that failed before its fix."""

from __future__ import annotations

import pytest

from conftest import run_cli

# More than 255 bytes on one line, so it cannot be a file name, and a secret inside it.
SECRET = "4711"
SECRET_LINE = ("My bank PIN is " + SECRET + " and my password is hunter2. ") * 6
assert len(SECRET_LINE.encode()) > 255


# -- 2. clipboard, screen and description text never reach a traceback, a log or an error line --

@pytest.mark.desktop
def test_long_clipboard_line_is_no_image_and_stays_private(desktop):
    desktop.run("xclip", "-selection", "clipboard", "-i", input=SECRET_LINE.encode())
    r = run_cli("describe", "--clipboard", "--no-speak", env={"DISPLAY": desktop.display})
    assert r.returncode == 1
    assert r.stderr.splitlines() == ["a11y-caption: There is no image on the clipboard."]
    assert SECRET not in r.stdout and SECRET not in r.stderr


def test_describe_unexpected_names_type_and_package_line_only():
    import inspect

    from a11y_caption.captioner import ocr
    from a11y_caption.errors import describe_unexpected

    with pytest.raises(TypeError) as caught:
        ocr.order_lines([None], [SECRET_LINE])  # a bug's exception, raised inside the package
    source, first = inspect.getsourcelines(ocr.order_lines)
    line = first + next(i for i, text in enumerate(source) if "xs = [p[0] for p in box]" in text)
    assert describe_unexpected(caught.value) == f"TypeError at captioner/ocr.py:{line}"
    # Raised outside the package: the type alone, and never the message.
    assert describe_unexpected(OSError(36, "File name too long", SECRET_LINE)) == "OSError"


def _fail_with_a_secret():
    raise OSError(36, "File name too long", SECRET_LINE)


@pytest.mark.parametrize("debug", [False, True])
def test_cli_reports_an_unexpected_error_by_type_and_place(monkeypatch, capsys, caplog, debug):
    from a11y_caption import capture, cli

    monkeypatch.setattr(capture, "grab_clipboard_image", _fail_with_a_secret)
    status = cli.main([*(["--debug"] if debug else []), "describe", "--clipboard", "--no-speak"])
    out, err = capsys.readouterr()
    assert status == 1 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("a11y-caption: unexpected error (OSError at cli.py:")
    # The traceback goes to the log, which a real --debug run prints on stderr (test_cli checks that).
    tracebacks = [r for r in caplog.records if r.exc_info]
    if debug:
        assert lines[0].endswith("); the traceback above may contain text from your screen or clipboard.")
        assert [r.exc_info[0] for r in tracebacks] == [OSError]
    else:
        assert lines[0].endswith("); run with --debug for details.")
        assert tracebacks == []
        assert SECRET not in err and SECRET not in caplog.text


def test_cli_still_stops_quietly_on_ctrl_c(monkeypatch, capsys):
    from a11y_caption import capture, cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(capture, "grab_clipboard_image", interrupted)
    assert cli.main(["describe", "--clipboard", "--no-speak"]) == 130
    assert capsys.readouterr().err == "a11y-caption: stopped.\n"


# -- 5. a fallback answer is never cached ---------------------------------------------------------

def _text_image():
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (320, 120), "white")
    ImageDraw.Draw(image).text((10, 40), "Invoice 42 due Friday", fill="black")
    return image


def test_answer_without_the_model_is_not_cached_for_after_the_pull(tiny_qwen, tmp_path):
    import shutil

    from a11y_caption.config import ModelConfig
    from a11y_caption.describer import Describer

    folder = tmp_path / "model-pulled-later"
    describer = Describer(ModelConfig(name=str(folder), max_new_tokens=3))
    image = _text_image()
    first = describer.describe(image, "photo").collect()
    assert first.model == "ocr" and "is not on this computer" in first.text
    shutil.copytree(tiny_qwen, folder)
    again = describer.describe(image, "photo").collect()
    assert again.model == str(folder), "the same image is described by the model now on disk"
    assert "is not on this computer" not in again.text
    # The model's complete answer is what gets cached.
    cached = describer.describe(image, "photo").collect()
    assert (cached.model, cached.text) == ("cache", again.text)


# -- 6. releasing the "ocr" model does not break reading ------------------------------------------

def test_release_with_the_ocr_model_leaves_reading_working():
    from a11y_caption.config import ModelConfig
    from a11y_caption.describer import Describer

    describer = Describer(ModelConfig(name="ocr"))
    image = _text_image()
    assert describer.describe(image, "photo").collect().text == "Invoice 42 due Friday"
    assert describer.read(image) == ("Invoice 42 due Friday", ["Invoice 42 due Friday"])
    describer.release()
    assert describer.read(image) == ("Invoice 42 due Friday", ["Invoice 42 due Friday"])
    assert describer.describe(image, "photo").collect().text == "Invoice 42 due Friday"
