"""Describing what the user is on, against a real accessibility tree: Xvfb, a private D-Bus session
bus, at-spi2-core's bus launcher and a real GTK 3 window (tests/atspi_app.py), read through
PyGObject's Atspi as Orca reads it. The window has an icon-only button without a label (focused at
start), a labelled button, an entry with text, an image without a name and one named "Sales chart".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import Desktop, run_cli
from screen_readers import PrivateBus, _stop_group
from test_agent import agent_factory, wordy_qwen  # noqa: F401 (fixtures)

from a11y_caption.capture.accessible import NO_FOCUS, NO_TREE, AccessibleObject, is_unlabeled
from a11y_caption.captioner.base import Request
from a11y_caption.captioner.prompts import prompt_for
from a11y_caption.describe.objects import TREE, facts_of

HERE = Path(__file__).resolve().parent
LAUNCHER = "/usr/libexec/at-spi-bus-launcher"
PAD = 8


def _require_atspi() -> None:
    try:
        import gi

        gi.require_version("Atspi", "2.0")
        gi.require_version("Gtk", "3.0")
        ok = os.path.exists(LAUNCHER)
    except (ImportError, ValueError):
        ok = False
    if not ok:
        message = "AT-SPI missing: PyGObject, at-spi2-core, gir1.2-atspi-2.0, gir1.2-gtk-3.0 (make test installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


class AtspiDesktop:
    """Xvfb with openbox, a private session bus with the accessibility bus on it, and the GTK window."""

    def __init__(self, tmp_path: Path, desktop: Desktop, app: str = "gtk"):
        _require_atspi()
        self.desktop = desktop  # the same display the agent's hotkeys listen on
        self.bus = PrivateBus()
        self.env = {**self.desktop.env, "DBUS_SESSION_BUS_ADDRESS": self.bus.address, "NO_AT_BRIDGE": "",
                    "GTK_A11Y": ""}
        env = {**os.environ, **self.env}
        env.pop("NO_AT_BRIDGE")
        self.launcher = subprocess.Popen([LAUNCHER, "--launch-immediately"], env=env, start_new_session=True,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.app, self.tmp = None, None
        try:  # a start that fails still stops what it started
            (self._chromium if app == "chromium" else self._gtk)(tmp_path, env)
        except BaseException:
            self.close()
            raise

    def _gtk(self, tmp_path: Path, env: dict) -> None:
        ready = tmp_path / "app-ready"
        self.app = subprocess.Popen([sys.executable, str(HERE / "atspi_app.py"), str(ready)], env=env,
                                    start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.desktop.wait_for(lambda: ready.exists() and ready.read_text().endswith("\n"), timeout=30)
        self.boxes = json.loads(ready.read_text())

    def _chromium(self, tmp_path: Path, env: dict) -> None:
        """Chromium showing _web_page's page. It puts its tree on the bus where the bus says a screen reader
        runs (org.a11y.Status ScreenReaderEnabled, which Orca sets) or ACCESSIBILITY_ENABLED is 1."""
        if shutil.which("chromium") is None:
            message = "chromium missing (make test installs it)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        self.desktop.wait_for(lambda: subprocess.run(
            ["dbus-send", "--session", "--print-reply", "--dest=org.a11y.Bus", "/org/a11y/bus",
             "org.freedesktop.DBus.Properties.Set", "string:org.a11y.Status", "string:ScreenReaderEnabled",
             "variant:boolean:true"], env=env, capture_output=True).returncode == 0, timeout=10)
        page = _web_page(tmp_path)
        # Its own temp folder (it leaves its singleton socket behind), with a short path: a
        # socket's path has ~100 bytes.
        self.app = subprocess.Popen(["chromium", "--no-sandbox", "--force-renderer-accessibility", "--no-first-run",
                                     "--disable-gpu", "--password-store=basic", "--noerrdialogs",
                                     f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-position=0,0",
                                     "--window-size=1000,700", page.as_uri()],
                                    env={**env, "ACCESSIBILITY_ENABLED": "1", "TMPDIR": self._short_tmp()},
                                    start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def ready() -> bool:  # the page's images are in the tree: what --images finds, by OCR alone
            out = run_cli("describe", "--images", "--json", "--local", "--model", "ocr", env=self.env)
            return out.returncode == 0 and len(out.stdout.splitlines()) == 2

        self.desktop.wait_for(ready, timeout=90, interval=0.5)

    def _short_tmp(self) -> str:
        self.tmp = tempfile.mkdtemp(prefix="a11y-cr-", dir="/tmp")
        return self.tmp

    def key(self, chord: str) -> None:
        self.desktop.key(chord)

    def close(self) -> None:
        for p in (self.app, self.launcher):
            if p is not None:
                _stop_group(p)
        self.bus.close()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _web_page(folder: Path) -> Path:
    """A page with four pictures: no alt, a real alt, a file name as alt, and alt="" (decorative,
    which a browser leaves out of its tree), and a button."""
    from PIL import Image, ImageDraw

    for name, colour in (("chart.png", (40, 90, 160)), ("sales.png", (160, 60, 40)),
                         ("IMG_2041.JPG", (30, 140, 60)), ("rule.png", (120, 120, 120))):
        picture = Image.new("RGB", (160, 120), "white")
        ImageDraw.Draw(picture).rectangle((20, 20, 140, 100), fill=colour)
        picture.save(folder / name, "JPEG" if name.endswith(".JPG") else "PNG")
    page = folder / "page.html"
    page.write_text("""<!doctype html><html lang="en"><head><title>Report page</title></head><body>
<h1>Quarterly report</h1>
<p><img src="chart.png" width="160" height="120"></p>
<p><img src="sales.png" alt="Sales chart" width="160" height="120"></p>
<p><img src="IMG_2041.JPG" alt="IMG_2041.JPG" width="160" height="120"></p>
<p><img src="rule.png" alt="" width="160" height="120"></p>
<p><button>Go</button></p></body></html>""")
    return page


@pytest.fixture
def tree(tmp_path, desktop):
    d = AtspiDesktop(tmp_path, desktop)
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def web(tmp_path, desktop):
    d = AtspiDesktop(tmp_path, desktop, app="chromium")
    try:
        yield d
    finally:
        d.close()


def _describe(tree, model: Path, *flags: str, env: dict | None = None):
    out = run_cli("describe", *flags, "--json", "--local", "--model", str(model), "--max-new-tokens", "4",
                  env={**(env if env is not None else tree.env)})
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()], out.stderr


def _padded(box: list[int]) -> list[int]:
    x, y, w, h = box
    return [x - PAD, y - PAD, w + 2 * PAD, h + 2 * PAD]


def test_focus_crops_the_focused_control_and_grounds_the_prompt_in_its_tree_facts(tree, tiny_qwen):
    [row], _ = _describe(tree, tiny_qwen, "--focus")
    assert row["object"]["role"] == "push button" and row["object"]["name"] == ""
    assert row["object"]["box"] == tree.boxes["icon_button"]  # the tree's box is GTK's own
    assert row["box"] == _padded(tree.boxes["icon_button"])  # cropped at full resolution, padded
    assert row["text"].startswith("Push button, no label.")  # said at once, before the model's words

    tree.key("Tab")  # the focus moves to "Save report": the next press describes that
    tree.desktop.wait_for(lambda: _describe(tree, tiny_qwen, "--focus")[0][0]["object"]["name"] == "Save report")
    [row], _ = _describe(tree, tiny_qwen, "--focus")
    assert row["box"] == _padded(tree.boxes["save"])
    assert row["text"].startswith("Push button, Save report.")
    # The tree's name is exact screen text: it is in the lines the model may quote.
    assert {"text": "Save report", "position": TREE} in row["text_on_screen"]


def test_focus_in_a_window_without_a_tree_is_said_not_taken_from_a_window_behind(tree, tiny_qwen):
    """The GTK window behind still has a focused button; the user is on the xmessage window, which
    has no accessibility: that is said, and the pointer's area described."""
    tree.desktop.spawn(["xmessage", "-geometry", "+500+400", "No tree here"])
    tree.desktop.wait_for(lambda: "xmessage" in tree.desktop.run("xdotool", "getactivewindow", "getwindowname").stdout)
    tree.desktop.run("xdotool", "mousemove", "600", "450")
    [row], stderr = _describe(tree, tiny_qwen, "--focus")
    assert NO_FOCUS in stderr and row["object"] is None
    assert row["box"] == [400, 300, 400, 300]


def test_alt_text_for_the_focused_image_is_the_pictures_alone_and_goes_to_the_clipboard(tree, tiny_qwen):
    x, y, w, h = tree.boxes["unnamed_image"]
    tree.desktop.run("xdotool", "mousemove", str(x + w // 2), str(y + h // 2))
    [row], _ = _describe(tree, tiny_qwen, "--pointer", "--alt-text", "--copy")
    assert row["box"] == _padded(tree.boxes["unnamed_image"])
    assert row["text"] and "no label" not in row["text"]  # the tree's sentence ("Icon, no label.") is not alt text
    assert tree.desktop.wait_for(lambda: tree.desktop.clipboard_text().strip() == row["text"], timeout=10)


def test_pointer_describes_the_object_under_the_mouse(tree, tiny_qwen):
    x, y, w, h = tree.boxes["named_image"]
    tree.desktop.run("xdotool", "mousemove", str(x + w // 2), str(y + h // 2))
    [row], _ = _describe(tree, tiny_qwen, "--pointer")
    assert row["object"]["name"] == "Sales chart" and row["object"]["role"] == "icon"
    assert row["box"] == _padded(tree.boxes["named_image"])
    x, y, w, h = tree.boxes["entry"]
    tree.desktop.run("xdotool", "mousemove", str(x + 20), str(y + h // 2))
    [row], _ = _describe(tree, tiny_qwen, "--pointer")
    assert row["object"]["role"] == "text" and row["object"]["text"] == "Quarterly sales 2026"
    assert {"text": "Quarterly sales 2026", "position": TREE} in row["text_on_screen"]


def test_images_finds_exactly_the_images_without_a_description(tree, tiny_qwen):
    rows, _ = _describe(tree, tiny_qwen, "--images")
    assert [r["box"] for r in rows] == [tree.boxes["unnamed_image"]]  # not "Sales chart", not the icon button
    assert rows[0]["object"]["name"] == ""


def test_a_web_page_in_chromium_its_images_without_alt_text_and_its_focused_button(web, tiny_qwen):
    rows, _ = _describe(web, tiny_qwen, "--images")
    # Not "Sales chart", not the decorative alt="": the one without alt (Chromium names it by its
    # own offer to describe it) and the one whose alt is a file name, top to bottom.
    assert [r["object"]["name"] for r in rows] == ["To get missing image descriptions, open the context menu.",
                                                   "IMG_2041.JPG"]
    assert all(r["object"]["role"] == "image" and r["box"] == r["object"]["box"] for r in rows)  # not padded
    assert all(abs(r["box"][2] - 160) <= 2 and abs(r["box"][3] - 120) <= 2 for r in rows), rows
    assert rows[0]["box"][1] < rows[1]["box"][1]
    assert rows[0]["text"].startswith("Image, no label.")
    web.key("Tab")  # from the page to its one control
    web.desktop.wait_for(lambda: (_describe(web, tiny_qwen, "--focus")[0][0]["object"] or {}).get("name") == "Go")
    [row], _ = _describe(web, tiny_qwen, "--focus")
    assert row["object"]["role"] == "push button" and row["box"] == _padded(row["object"]["box"])
    assert row["text"].startswith("Push button, Go.")  # its text, also "Go", is not said twice


def test_without_a_tree_the_area_around_the_pointer_is_described_and_said(desktop, tiny_qwen):
    desktop.run("xdotool", "mousemove", "600", "400")
    rows, stderr = _describe(desktop, tiny_qwen, "--focus", env={**desktop.env, "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"})
    assert NO_TREE in stderr
    assert rows[0]["object"] is None and rows[0]["box"] == [400, 250, 400, 300]
    out = run_cli("describe", "--images", "--local", "--model", str(tiny_qwen),
                  env={**desktop.env, "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"})
    assert out.returncode != 0 and "No accessibility tree answers here" in out.stderr


def test_the_focus_key_in_the_agent_says_the_tree_facts_first(tree, agent_factory, wordy_qwen, tmp_path):  # noqa: F811
    agent = agent_factory(wordy_qwen, env={"DBUS_SESSION_BUS_ADDRESS": tree.bus.address})
    tree.key("ctrl+alt+shift+f")
    cue = agent.wait_line(lambda line: line == "Describing the focus.")
    agent.wait_line(lambda line: line.startswith("Push button, no label."), after=cue + 1)
    tree.key("ctrl+alt+shift+i")
    cue = agent.wait_line(lambda line: line == "Finding images.", after=cue + 1)
    said = agent.wait_line(lambda line: line == "Image 1 of 1.", after=cue + 1)
    tree.desktop.wait_for(lambda: agent.generations()[-1:] == ["describe_images"])
    described = agent.wait_line(lambda line: True, after=said + 1)
    tree.key("ctrl+alt+shift+l")  # repeat says the last image again, with its number
    agent.wait_line(lambda line: line.startswith("Image 1 of 1.") and len(line) > len("Image 1 of 1."),
                    after=described + 1)
    x, y, w, h = tree.boxes["save"]
    tree.desktop.run("xdotool", "mousemove", str(x + w // 2), str(y + h // 2))
    tree.key("ctrl+alt+shift+p")
    cue = agent.wait_line(lambda line: line == "Describing under the pointer.")
    agent.wait_line(lambda line: line.startswith("Push button, Save report."), after=cue + 1)

    # The commands go through the warm agent: the same object, its box and facts in --json.
    env = {**tree.env, "A11Y_CAPTION_RUNTIME_DIR": str(tmp_path / "run")}
    out = run_cli("describe", "--pointer", "--json", "--no-speak", env=env)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["model"] == str(wordy_qwen)  # the agent's warm model, not a command's own
    assert row["object"]["name"] == "Save report" and row["box"] == _padded(tree.boxes["save"])
    assert row["text"].startswith("Push button, Save report.")
    out = run_cli("describe", "--pointer", "--alt-text", "--json", "--no-speak", env=env)
    assert out.returncode == 0, out.stderr
    assert "Save report." not in json.loads(out.stdout)["text"][:30]  # alt text: the picture's alone
    assert agent.proc.poll() is None


def test_unlabeled_names_and_the_facts_a_prompt_carries():
    for name in ("", "  ", "image", "Graphic", "IMG_2041.JPG", "https://example.org/a.png", "icon"):
        assert is_unlabeled(AccessibleObject("image", name)), name
    placeholder = AccessibleObject("image", "To get missing image descriptions, open the context menu.")
    assert is_unlabeled(placeholder) and facts_of(placeholder).lead == "Image, no label."  # Chromium's
    for name in ("Sales chart", "Save report", "png files"):
        assert not is_unlabeled(AccessibleObject("image", name)), name
    facts = facts_of(AccessibleObject("check box", "Remember me", states=("checked",)))
    assert facts.lead == "Check box, Remember me, checked."
    prompt = prompt_for(Request(None, "object", facts=facts.facts))
    assert "Role: check box" in prompt and "Name: Remember me" in prompt and "States: checked" in prompt
    assert facts_of(AccessibleObject("push button")).lead == "Push button, no label."
    assert facts_of(AccessibleObject("push button", "Go", text=" Go ")).lead == "Push button, Go."
    # Hostile strings from the tree stay data: one line, bounded, never a format field.
    odd = facts_of(AccessibleObject("push button", "{facts} \x1b[2J"))
    assert "{facts}" in prompt_for(Request(None, "object", facts=odd.facts))


@pytest.mark.parametrize("platform", ["win32", "darwin", "freebsd14"])
def test_where_no_tree_answers_the_pointer_area_is_described_and_said(monkeypatch, platform):
    """Windows without the uiautomation package, macOS without pyobjc's ApplicationServices, and a
    system with no tree module have no tree: there a press describes the area around the pointer
    and says why, and --images is one sentence, never a traceback."""
    from PIL import Image

    from a11y_caption.capture import accessible
    from a11y_caption.capture.tree import Box
    from a11y_caption.errors import CaptureError

    grabbed = []

    def grab(box):
        grabbed.append(box)
        return Image.new("RGB", (box.width, box.height), "white"), box

    monkeypatch.setattr(accessible.sys, "platform", platform)
    monkeypatch.setitem(sys.modules, "uiautomation", None)  # not installed: importing it fails
    monkeypatch.setitem(sys.modules, "ApplicationServices", None)
    monkeypatch.setattr(accessible, "_grab", grab)
    monkeypatch.setattr(accessible, "pointer_position", lambda: (500, 300))
    assert accessible.open_tree() is None
    for shot in (accessible.capture_focus((200, 100)), accessible.capture_pointer((200, 100))):
        assert shot.obj is None and shot.note == NO_TREE and shot.box == Box(400, 250, 200, 100)
    with pytest.raises(CaptureError, match="No accessibility tree answers here"):
        accessible.capture_images()


def test_a_small_object_has_its_quotes_checked_beside_the_model_not_ocr_in_the_prompt():
    """OCR costs the same at any size; an icon costs the model almost nothing: its OCR runs beside
    the model (grounds "check"), a chart's goes into the prompt first."""
    from PIL import Image

    from a11y_caption.describe.objects import SMALL_OBJECT, grounding_of

    icon, chart = Image.new("RGB", (64, 64)), Image.new("RGB", (400, 300))
    assert grounding_of("prompt", "object", icon) == "check"
    assert grounding_of("prompt", "object", chart) == "prompt"
    assert grounding_of("prompt", "object", Image.new("RGB", (SMALL_OBJECT, 20))) == "prompt"
    assert grounding_of("prompt", "screen", icon) == "prompt"  # a screen is never "small"
    assert grounding_of(None, "object", icon) is None  # grounding switched off stays off


class _UiaRect:  # uiautomation.Rect: left, top, right, bottom, width(), height()
    def __init__(self, left, top, right, bottom):
        self.left, self.top, self.right, self.bottom = left, top, right, bottom

    def width(self):
        return self.right - self.left

    def height(self):
        return self.bottom - self.top


class _UiaControl:
    """A stand-in for uiautomation.Control with the properties the tree module reads (2.0.29)."""

    def __init__(self, type_name, localized, name, rect, children=(), help_text="", enabled=True,
                 offscreen=False, toggle=None, value=None):
        self.ControlTypeName, self.LocalizedControlType, self.Name = type_name, localized, name
        self.BoundingRectangle, self.HelpText = _UiaRect(*rect), help_text
        self.IsEnabled, self.IsOffscreen, self._children = enabled, offscreen, list(children)
        if toggle is not None:  # only controls with the pattern have the getter, as in uiautomation
            self.GetTogglePattern = lambda: SimpleNamespace(ToggleState=toggle)
        if value is not None:
            self.GetValuePattern = lambda: SimpleNamespace(Value=value)

    def GetChildren(self):  # noqa: N802 (uiautomation's name)
        return self._children


def _stand_in_uiautomation(focused, window, at_point):
    import types

    module = types.ModuleType("uiautomation")
    module.inits = []

    class UIAutomationInitializerInThread:
        def __enter__(self):
            module.inits.append(True)
            return self

        def __exit__(self, *exc):
            return False

    module.UIAutomationInitializerInThread = UIAutomationInitializerInThread
    module.GetFocusedControl = lambda: focused
    module.GetForegroundControl = lambda: window
    module.ControlFromPoint = lambda x, y: at_point
    module.ToggleState = SimpleNamespace(Off=0, On=1, Indeterminate=2)
    module.ExpandCollapseState = SimpleNamespace(Collapsed=0, Expanded=1, PartiallyExpanded=2, LeafNode=3)
    return module


def test_windows_ui_automation_contract(monkeypatch):
    """Contract test: the Windows tree module (capture/uia.py) against a stand-in for the
    ``uiautomation`` package with its documented interface (no Windows runs here)."""
    from PIL import Image

    from a11y_caption.capture import accessible
    from a11y_caption.capture.tree import Box
    from a11y_caption.describe.objects import facts_of

    gear = _UiaControl("ButtonControl", "button", "", (100, 50, 132, 82), help_text="Settings")
    remember = _UiaControl("CheckBoxControl", "check box", "Remember me", (100, 90, 220, 110), toggle=1)
    photo = _UiaControl("ImageControl", "image", "IMG_2041.JPG", (300, 50, 460, 170))
    named = _UiaControl("ImageControl", "image", "Sales chart", (300, 200, 460, 320))
    hidden = _UiaControl("ImageControl", "image", "", (300, 900, 460, 1020), offscreen=True)
    entry = _UiaControl("EditControl", "edit", "Title", (100, 130, 300, 150), value="Quarterly sales 2026")
    pane = _UiaControl("PaneControl", "pane", "", (0, 0, 800, 600), [photo, named, hidden])
    window = _UiaControl("WindowControl", "window", "Report", (0, 0, 800, 600), [gear, remember, pane, entry])
    module = _stand_in_uiautomation(gear, window, remember)
    monkeypatch.setitem(sys.modules, "uiautomation", module)
    monkeypatch.setattr(accessible.sys, "platform", "win32")
    grabbed = []
    monkeypatch.setattr(accessible, "_grab", lambda box: (grabbed.append(box) or
                                                          (Image.new("RGB", (box.width, box.height)), box)))

    shot = accessible.capture_focus()
    assert shot.obj.role == "button" and shot.obj.name == "" and shot.obj.description == "Settings"
    assert shot.box == Box(100 - PAD, 50 - PAD, 32 + 2 * PAD, 32 + 2 * PAD) and shot.note == ""
    assert facts_of(shot.obj).lead == "Button, no label."
    pointed = accessible.capture_pointer()
    assert pointed.obj.name == "Remember me" and pointed.obj.states == ("checked",)
    assert facts_of(pointed.obj).lead == "Check box, Remember me, checked."
    found = accessible.capture_images()
    assert [s.obj.name for s in found] == ["IMG_2041.JPG"]  # not "Sales chart", not the one off screen
    assert found[0].box == Box(300, 50, 160, 120)  # an image: not padded
    tree = accessible.open_tree()
    assert tree.focused().name == "" and module.inits  # COM set up in the asking thread
    module.GetFocusedControl = lambda: entry
    assert accessible.open_tree().focused().text == "Quarterly sales 2026"


def _stand_in_application_services(elements: dict, system_focus, app, at_point):
    """A stand-in for pyobjc's ApplicationServices (HIServices): every AX call takes its output
    argument as None and returns (error, value), as pyobjc maps C output pointers."""
    import types

    ax = types.ModuleType("ApplicationServices")
    ax.kAXErrorSuccess, ax.kAXErrorNoValue = 0, -25212
    ax.kAXValueCGPointType, ax.kAXValueCGSizeType = 1, 2
    ax.timeouts = []
    system = object()

    def copy_attribute(element, name, out):
        assert out is None
        if element is system:
            value = {"AXFocusedUIElement": system_focus, "AXFocusedApplication": app}.get(name)
        else:
            value = elements.get(element, {}).get(name)
        return (ax.kAXErrorSuccess, value) if value is not None else (ax.kAXErrorNoValue, None)

    def value_of(value, kind, out):
        assert out is None and kind in (1, 2)
        x, y = value
        return True, (SimpleNamespace(x=x, y=y) if kind == 1 else SimpleNamespace(width=x, height=y))

    ax.AXIsProcessTrusted = lambda: True
    ax.AXUIElementCreateSystemWide = lambda: system
    ax.AXUIElementSetMessagingTimeout = lambda element, seconds: ax.timeouts.append(seconds) or 0
    ax.AXUIElementCopyAttributeValue = copy_attribute
    ax.AXUIElementCopyElementAtPosition = lambda element, x, y, out: (0, at_point) if at_point else (-25212, None)
    ax.AXValueGetValue = value_of
    return ax


def test_macos_ax_contract(monkeypatch):
    """Contract test: the macOS tree module (capture/ax.py) against a stand-in for pyobjc's
    ApplicationServices with the AX API's attributes (no Mac runs here)."""
    from PIL import Image

    from a11y_caption.capture import accessible
    from a11y_caption.capture.tree import Box
    from a11y_caption.describe.objects import facts_of

    elements = {
        "gear": {"AXRole": "AXButton", "AXRoleDescription": "button", "AXPosition": (100, 50), "AXSize": (32, 32),
                 "AXEnabled": True, "AXHelp": "Settings"},
        "remember": {"AXRole": "AXCheckBox", "AXRoleDescription": "checkbox", "AXTitle": "Remember me",
                     "AXValue": 1, "AXPosition": (100, 90), "AXSize": (120, 20), "AXEnabled": True},
        "photo": {"AXRole": "AXImage", "AXRoleDescription": "image", "AXDescription": "IMG_2041.JPG",
                  "AXPosition": (300, 50), "AXSize": (160, 120)},
        "chart": {"AXRole": "AXImage", "AXRoleDescription": "image", "AXDescription": "Sales chart",
                  "AXPosition": (300, 200), "AXSize": (160, 120)},
        "group": {"AXRole": "AXGroup", "AXChildren": ["photo", "chart"]},
        "window": {"AXRole": "AXWindow", "AXChildren": ["gear", "remember", "group"]},
        "app": {"AXRole": "AXApplication", "AXFocusedWindow": "window"},
    }
    ax = _stand_in_application_services(elements, "gear", "app", "remember")
    monkeypatch.setitem(sys.modules, "ApplicationServices", ax)
    monkeypatch.setattr(accessible.sys, "platform", "darwin")
    monkeypatch.setattr(accessible, "_grab", lambda box: (Image.new("RGB", (box.width, box.height)), box))

    shot = accessible.capture_focus()
    assert (shot.obj.role, shot.obj.name, shot.obj.description) == ("button", "", "Settings")
    assert shot.box == Box(100 - PAD, 50 - PAD, 32 + 2 * PAD, 32 + 2 * PAD) and ax.timeouts == [1.0]
    assert facts_of(shot.obj).lead == "Button, no label."
    pointed = accessible.capture_pointer()
    assert facts_of(pointed.obj).lead == "Checkbox, Remember me, checked."
    found = accessible.capture_images()
    assert [s.obj.name for s in found] == ["IMG_2041.JPG"] and found[0].box == Box(300, 50, 160, 120)
    ax.AXIsProcessTrusted = lambda: False  # no Accessibility permission: no tree, said so
    assert accessible.capture_focus().note == NO_TREE
