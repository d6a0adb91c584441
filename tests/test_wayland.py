"""Wayland: capture through grim on a real headless sway, the active window through sway's IPC,
and (contract tests) the xdg-desktop-portal Screenshot and GlobalShortcuts interfaces through a
stand-in portal on a private D-Bus daemon (tests/portal_standin.py)."""

from __future__ import annotations

import pytest

from conftest import run_cli, stderr_lines
from wayland_session import Sway, wait_drawn

pytestmark = pytest.mark.desktop


@pytest.fixture
def sway():
    s = Sway()
    yield s
    s.close()


def _wayland_env(sway: Sway) -> dict:
    return {**sway.env, "DISPLAY": ""}


def test_read_screen_reads_the_terminal_on_sway(sway):
    term = sway.terminal("Invoice total 4711 euros\nPress Enter to continue", "invoice")
    wait_drawn(sway, term)
    r = run_cli("read", "--screen", "--no-speak", "--local", env=_wayland_env(sway))
    assert r.returncode == 0, r.stderr
    assert "Invoice total 4711 euros" in r.stdout and "Press Enter to continue" in r.stdout, r.stdout
    assert stderr_lines(r.stderr) == []  # grim needs no permission sentence, and nothing failed


def test_window_is_the_focused_sway_window_only(sway):
    left = sway.terminal("Left window says apples", "left")
    right = sway.terminal("Right window says oranges", "right")  # opened last: focused, right half
    wait_drawn(sway, left)
    wait_drawn(sway, right)
    assert right["focused"] and right["rect"]["x"] >= 600, right["rect"]
    r = run_cli("read", "--window", "--no-speak", "--local", "--json", env=_wayland_env(sway))
    assert r.returncode == 0, r.stderr
    assert "oranges" in r.stdout and "apples" not in r.stdout, r.stdout

    from a11y_caption import capture

    with pytest.MonkeyPatch.context() as m:
        for k, v in _wayland_env(sway).items():
            m.setenv(k, v)
        shot = capture.capture_window()
        assert shot.isolated and shot.image.size == (right["rect"]["width"], right["rect"]["height"])
        screen = capture.grab_screen("pointer")
        assert screen.size == (1280, 800)


def test_window_without_sway_ipc_is_the_screen_said_once(sway):
    term = sway.terminal("Only the screen can be seen", "screen")
    wait_drawn(sway, term)
    env = {**_wayland_env(sway), "SWAYSOCK": str(sway.root / "no-such-socket")}
    r = run_cli("read", "--window", "--no-speak", "--local", env=env)
    assert r.returncode == 0, r.stderr
    assert "Only the screen can be seen" in r.stdout
    assert stderr_lines(r.stderr) == ["a11y-caption: The window could not be isolated; using the whole screen."]


# -- the Screenshot portal (contract tests against tests/portal_standin.py) ----------------------

from conftest import SAMPLE  # noqa: E402
from screen_readers import PrivateBus  # noqa: E402
from wayland_session import PortalStandIn  # noqa: E402


@pytest.fixture
def bus():
    b = PrivateBus()
    yield b
    b.close()


def _gnome_env(bus, tmp_path) -> dict:
    """A GNOME Wayland session as our process sees it; its compositor is never asked (the portal is)."""
    return {"DISPLAY": "", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland",
            "XDG_CURRENT_DESKTOP": "GNOME", "DBUS_SESSION_BUS_ADDRESS": bus.address,
            "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_DATA_HOME": str(tmp_path / "data")}


def test_screenshot_portal_contract(bus, tmp_path):
    """Contract test: Registry.Register, then Screenshot("", {handle_token, interactive: false}) and
    its Request's Response; the picture is read and its file deleted; the permission sentence comes
    before the first portal capture only."""
    from a11y_caption.capture.portal import APP_ID
    from a11y_caption.capture.wayland import PERMISSION_NOTE

    portal = PortalStandIn(bus, SAMPLE)
    try:
        expected = run_cli("read", str(SAMPLE), "--no-speak", "--local")
        assert expected.returncode == 0 and "\n" in expected.stdout.strip(), expected
        env = _gnome_env(bus, tmp_path)
        first = run_cli("read", "--screen", "--no-speak", "--local", env=env)
        assert first.returncode == 0, first.stderr
        assert first.stdout == expected.stdout
        assert stderr_lines(first.stderr) == [f"a11y-caption: {PERMISSION_NOTE}"]
        second = run_cli("read", "--screen", "--no-speak", "--local", env=env)
        assert second.returncode == 0 and second.stdout == expected.stdout and stderr_lines(second.stderr) == []
        assert list(portal.pictures.iterdir()) == [], "the portal's screenshot file must not stay on disk"
        members = [c["member"] for c in portal.calls()]
        assert members == ["Register", "Screenshot", "Register", "Screenshot"], members
        register, shot = portal.calls()[:2]
        assert register["args"] == [APP_ID, {}]
        parent, options = shot["args"]
        assert parent == "" and options["interactive"] == ["b", False] and options["handle_token"][0] == "s"
        assert (tmp_path / "data" / "applications" / f"{APP_ID}.desktop").is_file()
    finally:
        portal.close()


@pytest.mark.parametrize("flags, sentence", [
    (("--screenshot", "refuse"), "Screen capture was refused; allow a11y-caption to take screenshots in your "
                                 "desktop's privacy settings."),
    (("--screenshot", "missing", "--no-registry"), "This Wayland screen cannot be captured: the desktop portal "
                                                  "has no Screenshot interface."),
])
def test_screenshot_portal_failures_say_why(bus, tmp_path, flags, sentence):
    """Contract test: a refusal (response 1) and a portal without Screenshot are one sentence each."""
    portal = PortalStandIn(bus, SAMPLE, *flags)
    try:
        r = run_cli("describe", "--screen", "--model", "ocr", "--no-speak", "--local",
                    env={**_gnome_env(bus, tmp_path), "XDG_STATE_HOME": str(tmp_path / "used")})
        assert r.returncode == 1
        assert r.stderr.splitlines()[-1] == f"a11y-caption: {sentence}", r.stderr
    finally:
        portal.close()


def test_no_portal_on_the_bus_says_so(tmp_path):
    from wayland_session import BareBus

    bus = BareBus()
    try:
        r = run_cli("read", "--screen", "--no-speak", "--local", env={**_gnome_env(bus, tmp_path), "PATH": "/nonexistent"})
    finally:
        bus.close()
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == ("a11y-caption: This Wayland screen cannot be captured: grim is not installed, "
                                         "and no desktop portal (xdg-desktop-portal) runs on the session bus."), r.stderr


# -- the agent under Wayland -----------------------------------------------------------------------

import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from conftest import wait_for  # noqa: E402


class Agent:
    """`a11y-caption run --model ocr --speech none --transcript FILE` in a Wayland session."""

    def __init__(self, tmp_path, env: dict):
        self.transcript = tmp_path / "transcript.txt"
        self.err = tmp_path / "agent.err"
        self.env = {**os.environ, "A11Y_CAPTION_RUNTIME_DIR": str(tmp_path / "run"), **env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "a11y_caption", "run", "--model", "ocr", "--speech", "none",
             "--transcript", str(self.transcript)], env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=open(self.err, "w"))

    def lines(self) -> list[str]:
        return self.transcript.read_text().splitlines() if self.transcript.exists() else []

    def wait_line(self, predicate, after: int = 0) -> int:
        def find():
            assert self.proc.poll() is None, f"the agent exited: {self.err.read_text()}"
            return next((i + 1 for i, line in enumerate(self.lines()) if i >= after and predicate(line)), None)
        return wait_for(find, timeout=60) - 1

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return run_cli(*args, env=self.env)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def test_run_under_sway_without_a_portal_stays_up_and_serves_commands(sway, tmp_path):
    term = sway.terminal("Quarterly report draft\nSaved two minutes ago", "report")
    wait_drawn(sway, term)
    agent = Agent(tmp_path, {**_wayland_env(sway), "XDG_DATA_HOME": str(tmp_path / "data")})
    try:
        agent.wait_line(lambda line: line.startswith("a11y-caption is on"))
        assert agent.lines()[0] == ("a11y-caption is on, speaking through no voice, with no hotkeys of its own; "
                                    "bind keys with: a11y-caption shortcuts install. Loading the model.")
        assert "no global shortcuts portal (there is no D-Bus session bus" in agent.err.read_text()
        # What a desktop shortcut runs: the command reaches the running agent over its socket.
        r = agent.cli("read", "--window", "--no-speak")
        assert r.returncode == 0, r.stderr
        assert "Quarterly report draft" in r.stdout and "Saved two minutes ago" in r.stdout
        assert agent.proc.poll() is None
        status = agent.cli("status")
        assert status.returncode == 0 and status.stdout.startswith("running:"), status
        # The other bound commands: copy-last (the Wayland clipboard, wl-copy) and release.
        copied = agent.cli("copy-last")
        assert copied.returncode == 0, copied.stderr
        pasted = subprocess.run(["wl-paste", "--no-newline"], env={**os.environ, **sway.env}, capture_output=True,
                                text=True, timeout=30)
        assert "Quarterly report draft" in pasted.stdout, pasted
        released = agent.cli("release")
        assert released.returncode == 0, released.stderr
        agent.wait_line(lambda line: line == "Model released.")
    finally:
        assert agent.stop() == 0, agent.err.read_text()


def test_run_binds_hotkeys_through_the_global_shortcuts_portal(bus, tmp_path):
    """Contract test: CreateSession, BindShortcuts with each [[hotkey]] (keys as preferred_trigger, a
    description), and an Activated signal runs the action: here read_text, whose capture goes
    through the Screenshot portal of the same stand-in."""
    from a11y_caption.capture.portal import APP_ID
    from a11y_caption.capture.wayland import PERMISSION_NOTE

    portal = PortalStandIn(bus, SAMPLE)
    agent = Agent(tmp_path, _gnome_env(bus, tmp_path))
    try:
        agent.wait_line(lambda line: line.startswith("a11y-caption is on"))
        assert agent.lines()[0] == ("a11y-caption is on, speaking through no voice, with hotkeys through the "
                                    "desktop's global shortcuts portal. Loading the model.")
        members = [c["member"] for c in portal.calls()]
        assert members[:3] == ["Register", "CreateSession", "BindShortcuts"], members
        assert portal.calls("Register")[0]["args"][0] == APP_ID
        session, shortcuts, parent, _options = portal.calls("BindShortcuts")[0]["args"]
        assert session.startswith("/org/freedesktop/portal/desktop/session/") and parent == ""
        bound = {sid: props for sid, props in shortcuts}
        assert bound["describe_screen"] == {"description": ["s", "Describe the screen"],
                                            "preferred_trigger": ["s", "CTRL+ALT+SHIFT+d"]}
        assert bound["read_text"]["preferred_trigger"] == ["s", "CTRL+ALT+SHIFT+r"]
        assert len(bound) == 15, sorted(bound)  # every packaged hotkey

        agent.wait_line(lambda line: line == "Ready.")  # so that it does not fall among the lines read
        portal.activate("repeat_last")
        agent.wait_line(lambda line: line == "Nothing has been described yet.")
        start = len(agent.lines())
        portal.activate("read_text")
        agent.wait_line(lambda line: line == "Reading.", after=start)
        expected = run_cli("read", str(SAMPLE), "--no-speak", "--local").stdout.splitlines()
        agent.wait_line(lambda line: line == expected[-1], after=start)
        said = agent.lines()[start:]
        assert said[:3] == ["Reading.", PERMISSION_NOTE, "The window could not be isolated; using the whole screen."]
        assert said[3:] == expected, said
        assert list(portal.pictures.iterdir()) == []
        assert agent.stop() == 0, agent.err.read_text()
        assert [c["member"] for c in portal.calls()][-1] == "Close"  # the session ends with the agent
    finally:
        agent.stop()
        portal.close()
