"""Findings of the review in issue 17, each pinned by a test that failed before its fix."""

from __future__ import annotations

import ctypes

import pytest

from conftest import SAMPLE, run_cli

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
    import traceback

    from a11y_caption.captioner import ocr
    from a11y_caption.errors import describe_unexpected

    with pytest.raises(TypeError) as caught:
        ocr.order_lines([None], [SECRET_LINE])  # a bug's exception, raised inside the package
    innermost = traceback.extract_tb(caught.value.__traceback__)[-1]  # the line in ocr.py that failed
    assert innermost.filename.endswith("ocr.py")
    assert describe_unexpected(caught.value) == f"TypeError at captioner/ocr.py:{innermost.lineno}"
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
    assert len(lines) == 1 and lines[0].startswith("a11y-caption: unexpected error (OSError at cli/__init__.py:")
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
    from a11y_caption.describe.describer import Describer

    folder = tmp_path / "model-pulled-later"
    describer = Describer(ModelConfig(name=str(folder), max_new_tokens=3))
    image = _text_image()
    first = describer.describe(image, "photo").collect()
    assert first.model == "ocr" and "does not exist" in first.text
    shutil.copytree(tiny_qwen, folder)
    again = describer.describe(image, "photo").collect()
    assert again.model == str(folder), "the same image is described by the model now on disk"
    assert "does not exist" not in again.text
    # The model's complete answer is what gets cached.
    cached = describer.describe(image, "photo").collect()
    assert (cached.model, cached.text) == ("cache", again.text)


# -- 6. releasing the "ocr" model does not break reading ------------------------------------------

def test_release_with_the_ocr_model_leaves_reading_working():
    from a11y_caption.config import ModelConfig
    from a11y_caption.describe.describer import Describer

    describer = Describer(ModelConfig(name="ocr"))
    image = _text_image()
    assert describer.describe(image, "photo").collect().text == "Invoice 42 due Friday"
    assert describer.read(image) == ("Invoice 42 due Friday", ["Invoice 42 due Friday"])
    describer.release()
    assert describer.read(image) == ("Invoice 42 due Friday", ["Invoice 42 due Friday"])
    assert describer.describe(image, "photo").collect().text == "Invoice 42 due Friday"


# -- 7. the device is checked, and a missing GPU is said as such ----------------------------------

@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:3", "mps"])
def test_devices_the_settings_accept(tmp_path, device):
    from a11y_caption.config import load_config

    path = tmp_path / "hotkeys.toml"
    path.write_text(f'[model]\ndevice = "{device}"\n')
    assert load_config(path).model.device == device


@pytest.fixture
def no_gpu(monkeypatch):
    """This computer as one without a usable GPU, also where the tests run on a machine with one."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.parametrize("device, message", [
    ("cuda", 'CUDA was asked for (device = "cuda"), but this computer has no usable GPU; '
             'use device = "auto" or "cpu".'),
    ("cuda:1", 'CUDA was asked for (device = "cuda:1"), but this computer has no usable GPU; '
               'use device = "auto" or "cpu".'),
    ("mps", 'Apple\'s Metal GPU was asked for (device = "mps"), but it is not usable on this computer; '
            'use device = "auto" or "cpu".'),
    ("gpu", 'There is no device "gpu"; device must be one of auto, cpu, cuda, cuda:N or mps.'),
])
def test_a_device_that_is_not_here_is_one_sentence_not_damaged_files(tiny_qwen, no_gpu, device, message):
    from a11y_caption.config import ModelConfig
    from a11y_caption.describe.describer import Describer
    from a11y_caption.errors import DeviceError, ModelLoadError

    describer = Describer(ModelConfig(name=str(tiny_qwen), device=device))
    with pytest.raises(DeviceError) as caught:
        describer.load()
    assert str(caught.value) == message
    assert isinstance(caught.value, ModelLoadError), "the agent and CLI treat it as a load failure"


def test_a_gpu_number_beyond_the_gpus_here(tiny_qwen, monkeypatch):
    import torch

    from a11y_caption.captioner.factory import load_captioner
    from a11y_caption.errors import DeviceError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(DeviceError, match=r'^GPU 2 was asked for \(device = "cuda:2"\), but this computer has '
                                          r'only 1 usable GPU, numbered from 0; use device = "cuda"\.$'):
        load_captioner(str(tiny_qwen), device="cuda:2")


def test_cli_with_cuda_and_no_gpu_says_so(tiny_qwen):
    r = run_cli("describe", str(SAMPLE), "--model", str(tiny_qwen), "--device", "cuda", "--no-speak",
                env={"CUDA_VISIBLE_DEVICES": ""})  # no GPU, also on a machine that has one
    assert r.returncode == 1
    assert r.stderr.splitlines() == ['a11y-caption: CUDA was asked for (device = "cuda"), but this computer has no '
                                     'usable GPU; use device = "auto" or "cpu".']


# -- 8. every numeric flag is checked with the settings' own ranges, in one line ------------------

@pytest.mark.parametrize("flag, value, message", [
    ("--max-new-tokens", "-5", "--max-new-tokens must be between 1 and 4096, not -5"),
    ("--max-new-tokens", "0", "--max-new-tokens must be between 1 and 4096, not 0"),
    ("--beams", "-2", "--beams must be between 1 and 8, not -2"),
    ("--temperature", "-1", "--temperature must be between 0.0 and 2.0, not -1.0"),
    ("--temperature", "nan", "--temperature must be a finite number, not nan"),
    ("--rate", "0", "--rate must be between 50 and 600 words a minute, not 0"),
    ("--volume", "1.5", "--volume must be between 0.0 and 1.0, not 1.5"),
    ("--device", "gpu", "--device must be one of auto, cpu, cuda, cuda:N or mps, not 'gpu'"),
    ("--beams", "two", "argument --beams: invalid int value: 'two' (see a11y-caption describe --help)"),
])
def test_bad_flag_values_are_one_line_and_status_2(flag, value, message):
    r = run_cli("describe", str(SAMPLE), "--no-speak", flag, value)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [f"a11y-caption: {message}"]


@pytest.mark.parametrize("flag, value, message", [
    ("--new-tokens", "0", "--new-tokens must be between 1 and 4096, not 0"),
    ("--image-tokens", "64,8", "--image-tokens must be between 16 and 16384, not 8"),
    ("--image-tokens", "64,,128", "--image-tokens must be whole numbers separated by commas, not ''"),
])
def test_bad_bench_flags_are_one_line_before_any_work(tmp_path, flag, value, message):
    # An unknown model and a scratch cache: should the check ever go, the bench still stops at once
    # instead of building a 4 GB replica.
    r = run_cli("bench", "--models", "none-such", "--cache-dir", str(tmp_path), flag, value, timeout=60)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [f"a11y-caption: {message}"]


def test_flag_ranges_are_the_settings_ranges():
    """The flags share config.RULES with hotkeys.toml: each range is written once."""
    from a11y_caption import cli
    from a11y_caption.config import RULES, ModelConfig, SpeechConfig

    settings = {*cli._FLAG_SETTINGS.values(), *cli._LIST_FLAG_SETTINGS.values()}
    assert settings <= set(RULES)
    for (section, key) in settings:
        assert hasattr({"model": ModelConfig, "speech": SpeechConfig}[section], key)


def test_an_empty_flag_is_a_value_not_a_missing_flag(tmp_path):
    """`flag or setting` dropped 0 and "" given on the command line; now only an absent flag does."""
    said = tmp_path / "said.txt"
    config = tmp_path / "hotkeys.toml"
    config.write_text(f'[speech]\nengine = "none"\ntranscript = "{said}"\n')
    r = run_cli("read", str(SAMPLE), "--config", str(config), "--transcript", "")
    assert r.returncode == 0, r.stderr
    assert "Night light turns on at 9:30 PM" in r.stdout
    assert not said.exists(), "--transcript '' turns the file's transcript off"


# -- 9. non-finite numbers and an unbounded idle time are refused in hotkeys.toml -----------------

@pytest.mark.parametrize("content, line, message", [
    ("[model]\nname = \"x\"\nidle_unload_minutes = inf\n", 3, "idle_unload_minutes must be a finite number, not inf"),
    ("[model]\nidle_unload_minutes = nan\n", 2, "idle_unload_minutes must be a finite number, not nan"),
    ("[model]\nidle_unload_minutes = 20000\n", 2, "idle_unload_minutes must be between 0 and 10080"),
    ("[model]\ntemperature = -inf\n", 2, "temperature must be a finite number, not -inf"),
    ("[speech]\nvolume = nan\n", 2, "volume must be a finite number, not nan"),
    ('[model]\ndevice = "gpu"\n', 2, "device must be one of auto, cpu, cuda, cuda:N or mps, not 'gpu'"),
    ('[model]\ndevice = "cuda:x"\n', 2, "device must be one of auto, cpu, cuda, cuda:N or mps, not 'cuda:x'"),
])
def test_settings_out_of_range_are_refused_with_file_and_line(tmp_path, content, line, message):
    from a11y_caption.config import load_config
    from a11y_caption.errors import ConfigError

    path = tmp_path / "hotkeys.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:{line}: {message}"), str(caught.value)


def test_a_week_of_idle_minutes_is_accepted(tmp_path):
    from a11y_caption.config import load_config

    path = tmp_path / "hotkeys.toml"
    path.write_text("[model]\nidle_unload_minutes = 10080\n")
    assert load_config(path).model.idle_unload_minutes == 10080.0


# -- 10. A11Y_CAPTION_CONFIG naming a missing file is an error, not the default ------------------

def test_config_variable_naming_a_missing_file_stops(tmp_path, monkeypatch):
    from a11y_caption.config import load_config
    from a11y_caption.errors import ConfigError

    missing = tmp_path / "typo.toml"
    monkeypatch.setenv("A11Y_CAPTION_CONFIG", str(missing))
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert str(caught.value) == f"{missing}: A11Y_CAPTION_CONFIG names this file, which does not exist."
    r = run_cli("describe", str(SAMPLE), "--no-speak")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.splitlines() == [f"a11y-caption: {missing}: A11Y_CAPTION_CONFIG names this file, which does not exist."]
    r = run_cli("config", "path")
    assert r.returncode == 0 and r.stdout == f"{missing}\n"
    assert r.stderr.startswith(f"a11y-caption: {missing} does not exist, and A11Y_CAPTION_CONFIG names it")


def test_without_the_variable_a_missing_user_file_means_the_packaged_default(tmp_path):
    from a11y_caption.config import default_config_path, load_config, user_config_path

    assert user_config_path() == tmp_path / "user-config" / "a11y-caption" / "hotkeys.toml"
    assert load_config().path == default_config_path()
    r = run_cli("config", "path")
    assert r.returncode == 0 and r.stdout == f"{user_config_path()}\n"
    assert "using the packaged default" in r.stderr


# -- 13. --window on a scaled Windows display, and where the window cannot be isolated ------------
# These replace the platform layer (capture's sys.platform, ctypes.windll): the real Windows and
# macOS paths run only on those systems.

class _FakeWindows:
    """user32, shcore and dwmapi of a display scaled to 125 %: until the process is DPI aware,
    Windows reports window rectangles in scaled-down pixels (as it does to real programs)."""

    FRAME = (100, 50, 900, 650)  # the window's visible frame in physical pixels: 800 x 600 at (100, 50)

    def __init__(self, *, has_v2: bool = True, has_dwm: bool = True):
        self.aware, self.calls = False, []
        outer = self

        class User32:
            def GetForegroundWindow(self):
                return 0x2A

            def GetWindowRect(self, hwnd, rect):
                outer.calls.append("GetWindowRect")
                left, top, right, bottom = outer.FRAME
                left, top, right, bottom = left - 7, top, right + 7, bottom + 7  # invisible resize borders
                outer._fill(rect, left, top, right, bottom)
                return 1

            def SetProcessDPIAware(self):
                outer.calls.append("SetProcessDPIAware")
                outer.aware = True
                return 1

        if has_v2:
            def set_context(self, context):
                signed = ctypes.c_ssize_t(context.value).value  # a handle whose value is -4
                outer.calls.append(f"SetProcessDpiAwarenessContext({signed})")
                outer.aware = True
                return 1

            User32.SetProcessDpiAwarenessContext = set_context

        class Shcore:
            def SetProcessDpiAwareness(self, level):
                outer.calls.append(f"SetProcessDpiAwareness({level})")
                outer.aware = True
                return 0

        class Dwmapi:
            def DwmGetWindowAttribute(self, hwnd, attribute, rect, size):
                outer.calls.append(f"DwmGetWindowAttribute({attribute})")
                if not has_dwm:
                    return -2147467259  # E_FAIL
                outer._fill(rect, *outer.FRAME)
                return 0

        self.user32, self.shcore, self.dwmapi = User32(), Shcore(), Dwmapi()

    def _fill(self, rect, left, top, right, bottom):
        scale = 1.0 if self.aware else 1 / 1.25
        target = rect._obj  # ctypes.byref(RECT)
        target.left, target.top, target.right, target.bottom = (round(v * scale) for v in (left, top, right, bottom))


@pytest.mark.parametrize("has_v2, has_dwm, first_call, box", [
    (True, True, "SetProcessDpiAwarenessContext(-4)", (100, 50, 800, 600)),
    (False, True, "SetProcessDpiAwareness(2)", (100, 50, 800, 600)),  # Windows 8.1, what mss sets
    (True, False, "SetProcessDpiAwarenessContext(-4)", (93, 50, 814, 607)),  # no DWM: GetWindowRect
])
def test_windows_window_rectangle_is_read_in_physical_pixels(monkeypatch, has_v2, has_dwm, first_call, box):
    from types import SimpleNamespace

    from a11y_caption import capture

    fake = _FakeWindows(has_v2=has_v2, has_dwm=has_dwm)
    monkeypatch.setattr(ctypes, "windll", fake, raising=False)
    monkeypatch.setattr(capture, "sys", SimpleNamespace(platform="win32"))  # only capture's view of it
    assert capture._active_window_box() == box
    assert fake.calls[0] == first_call, "DPI awareness comes before any rectangle is read"


@pytest.mark.desktop
def test_where_the_window_cannot_be_isolated_the_screen_is_said_and_described_as_such(desktop, monkeypatch,
                                                                                          capsys):
    from types import SimpleNamespace

    from a11y_caption import capture, cli

    # macOS gives no window geometry without pyobjc. Only capture's view of the platform changes:
    # mss and ctypes.util must go on finding the X server's libraries.
    monkeypatch.setattr(capture, "sys", SimpleNamespace(platform="darwin"))
    shot = capture.capture_window()
    assert (shot.isolated, shot.task, shot.image.size) == (False, "screen", (1280, 800))
    assert shot.note == "The window could not be isolated; using the whole screen."
    assert capture.grab_window().size == (1280, 800), "grab_window still returns a PIL image"
    args = cli._parser().parse_args(["describe", "--window"])
    [(label, load)] = cli._inputs(args)
    image, task, note = load()
    assert (label, task, note) == ("window", "screen", shot.note), "the screen prompt, not the window prompt"
    assert cli.main(["read", "--window", "--no-speak"]) == 0
    assert capsys.readouterr().err.splitlines() == [f"a11y-caption: {shot.note}"]


@pytest.mark.desktop
def test_an_x11_window_is_isolated(desktop):
    from a11y_caption import capture

    desktop.spawn(["xmessage", "-geometry", "+200+150", "Invoice 42 due Friday"])
    shot = desktop.wait_for(lambda: (s := capture.capture_window()).isolated and s)
    assert (shot.task, shot.note) == ("window", "")
    assert shot.image.size[0] < 1280 and shot.image.size[1] < 800


def test_release_gives_the_gpus_cached_memory_back(monkeypatch):
    """Issue 17 item 14. No GPU here: torch.cuda is replaced, so this checks the call, not CUDA."""
    import torch

    from a11y_caption.config import ModelConfig
    from a11y_caption.describe.describer import Describer

    emptied = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    Describer(ModelConfig(name="ocr")).release()
    assert emptied == [True]
