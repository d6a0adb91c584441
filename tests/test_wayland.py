"""Wayland: capture through grim on a real headless sway, the active window through sway's IPC,
and (contract tests) the xdg-desktop-portal Screenshot and GlobalShortcuts interfaces through a
stand-in portal on a private D-Bus daemon (tests/portal_standin.py)."""

from __future__ import annotations

import pytest

from conftest import run_cli
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
    assert r.stderr == ""  # grim needs no permission sentence, and nothing failed


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
    assert r.stderr == "a11y-caption: The window could not be isolated; using the whole screen.\n"
