"""Capturing the active window: where it can be isolated, and where it cannot (the screen is said
and described as such). The Windows and macOS cases replace the platform layer (capture's
sys.platform, ctypes.windll): the real Windows and macOS paths run only on those systems."""

from __future__ import annotations

import ctypes

import pytest


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
    from a11y_caption.cli.local import describe_inputs
    from a11y_caption.cli.parser import build_parser

    # macOS gives no window geometry without pyobjc. Only capture's view of the platform changes:
    # mss and ctypes.util must go on finding the X server's libraries.
    monkeypatch.setattr(capture, "sys", SimpleNamespace(platform="darwin"))
    shot = capture.capture_window()
    assert (shot.isolated, shot.task, shot.image.size) == (False, "screen", (1280, 800))
    assert shot.note == "The window could not be isolated; using the whole screen."
    args = build_parser().parse_args(["describe", "--window"])
    [(label, load)] = describe_inputs(args)
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
