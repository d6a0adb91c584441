"""Chord matching: a lost key release heals at the next press, sided modifiers fire, auto-repeat
does not; and the real pynput listener under Xvfb, pressed with xdotool."""

from __future__ import annotations

import threading
import time

import pytest

from a11y_caption.hotkeys import Chord, ChordMatcher, parse_chord


def matcher(*chords: str):
    fired: list[str] = []
    m = ChordMatcher((Chord.parse(c), (lambda c=c: fired.append(c))) for c in chords)
    return m, fired


def tap(m: ChordMatcher, *keys: str) -> None:
    """Press ``keys`` in order, then release them in reverse, as xdotool and people do."""
    for k in keys:
        m.press((k,))
    for k in reversed(keys):
        m.release((k,))


def test_chord_fires_once_per_press_and_only_with_exactly_its_modifiers():
    m, fired = matcher("<ctrl>+<alt>+d", "<ctrl>+<alt>+<shift>+d")
    tap(m, "ctrl_l", "alt_l", "d")
    assert fired == ["<ctrl>+<alt>+d"]
    tap(m, "ctrl_r", "alt_l", "shift_l", "d")
    assert fired == ["<ctrl>+<alt>+d", "<ctrl>+<alt>+<shift>+d"], "either Ctrl; shift makes it the other chord"
    tap(m, "alt_l", "d")
    tap(m, "d")
    assert len(fired) == 2, "a chord never fires with modifiers missing"


def test_a_lost_release_of_the_main_key_heals_at_the_next_press():
    """pynput's GlobalHotKeys never fires this chord again after the release of d is lost."""
    m, fired = matcher("<ctrl>+<alt>+d")
    m.press(("ctrl_l",)), m.press(("alt_l",)), m.press(("d",))
    m.release(("alt_l",)), m.release(("ctrl_l",))  # the release of d never arrives
    tap(m, "ctrl_l", "alt_l", "d")
    assert fired == ["<ctrl>+<alt>+d"] * 2


def test_a_lost_release_of_a_modifier_heals_from_the_platforms_modifier_state():
    m, fired = matcher("<ctrl>+<alt>+d")
    m.press(("shift_l",))  # its release never arrives: we think Shift is still down
    tap(m, "ctrl_l", "alt_l", "d")
    assert fired == [], "with our bookkeeping alone, Shift looks held"
    for k in ("ctrl_l", "alt_l"):
        m.press((k,))
    m.press(("d",), held_families=frozenset({"ctrl", "alt"}))  # what X11 reports with the event
    assert fired == ["<ctrl>+<alt>+d"]
    m.release(("d",))
    assert "shift_l" not in m.held_modifiers(), "our bookkeeping now agrees with the platform"


def test_a_modifier_we_never_saw_go_down_counts_when_the_platform_reports_it():
    m, fired = matcher("<ctrl>+<alt>+d")
    m.press(("alt_l",))
    m.press(("d",), held_families=frozenset({"ctrl", "alt"}))  # Ctrl went down before we listened
    assert fired == ["<ctrl>+<alt>+d"]


def test_auto_repeat_does_not_fire_again_but_a_new_press_does():
    m, fired = matcher("<ctrl>+<alt>+d")
    m.press(("ctrl_l",)), m.press(("alt_l",)), m.press(("d",))
    for _ in range(20):  # held down: the keyboard repeats the press, with no release in between
        m.press(("d",))
    assert fired == ["<ctrl>+<alt>+d"]
    m.release(("d",))
    m.press(("d",))
    assert len(fired) == 2, "released and pressed again, however quickly, is a new press"
    m.press(("shift_l",)), m.release(("shift_l",))
    m.press(("d",))  # d's release was lost, but another key came in between: not auto-repeat
    assert len(fired) == 3


def test_sided_modifiers_need_their_side():
    m, fired = matcher("<ctrl_r>+<alt>+x", "<shift_r>+<f9>")
    tap(m, "ctrl_l", "alt_l", "x")
    tap(m, "shift_l", "f9")
    assert fired == []
    tap(m, "ctrl_r", "alt_r", "x")
    tap(m, "shift_r", "f9")
    assert fired == ["<ctrl_r>+<alt>+x", "<shift_r>+<f9>"]


def test_key_names_are_checked_for_the_platform():
    for key in ("insert", "menu", "num_lock", "pause", "print_screen", "scroll_lock"):
        assert parse_chord(f"<ctrl>+<{key}>", "linux") == {"ctrl", key}
        with pytest.raises(ValueError, match=f"<{key}> .* cannot be used as a hotkey on macOS"):
            parse_chord(f"<ctrl>+<{key}>", "darwin")
    assert parse_chord("<ctrl>+<f24>", "win32") == {"ctrl", "f24"}
    with pytest.raises(ValueError, match="cannot be used as a hotkey on Linux"):
        parse_chord("<ctrl>+<f24>", "linux")
    with pytest.raises(ValueError, match="more than one key besides modifiers"):
        parse_chord("<ctrl>+a+b", "linux")


@pytest.mark.desktop
def test_real_listener_fires_sided_and_plain_chords_under_x(desktop):
    """pynput's listener on a real X server, keys pressed with xdotool (XTEST)."""
    from a11y_caption.hotkeys import start_listener

    fired: list[str] = []
    got = threading.Condition()

    def note(name):
        with got:
            fired.append(name)
            got.notify_all()

    chords = {"<ctrl>+<alt>+<shift>+d": "plain", "<ctrl_r>+<alt>+x": "right ctrl", "<shift>+<f9>": "f9"}
    listener = start_listener((keys, (lambda n=name: note(n))) for keys, name in chords.items())
    try:
        listener.wait()
        for keys, expected in [("ctrl+alt+shift+d", ["plain"]), ("Control_L+alt+x", []),
                               ("Control_R+alt+x", ["right ctrl"]), ("shift+F9", ["f9"]), ("F9", []),
                               ("ctrl+alt+d", [])]:
            before = len(fired)
            desktop.key(keys)
            desktop.key("ctrl+alt+shift+d")  # a marker: everything before it has been handled
            with got:
                assert got.wait_for(lambda: fired[-1:] == ["plain"] and len(fired) > before, 10), (keys, fired)
            assert fired[before:-1] == expected, (keys, fired[before:])
        # Held down, the X server auto-repeats d (first after 660 ms, then every 40 ms): one activation.
        before = len(fired)
        desktop.run("xdotool", "keydown", "ctrl", "keydown", "alt", "keydown", "shift", "keydown", "d")
        time.sleep(1.5)
        desktop.run("xdotool", "keyup", "d", "keyup", "shift", "keyup", "alt", "keyup", "ctrl")
        desktop.key("ctrl+alt+shift+d")
        with got:
            assert got.wait_for(lambda: len(fired) >= before + 2, 10), fired
        time.sleep(0.3)
        assert fired[before:] == ["plain", "plain"], "once for the held chord, once for the marker"
    finally:
        listener.stop()
        # pynput's stop request reaches the X server with the next event it handles: give it one.
        desktop.key("shift")
        listener.join(5)
    assert not listener.is_alive()


@pytest.mark.parametrize("keys, why", [
    ("<space>", "has no modifier key and would take over typing"),
    ("<enter>", "has no modifier key and would take over typing"),
    ("<tab>", "has no modifier key and would take over typing"),
    ("<backspace>", "has no modifier key and would take over typing"),
    ("<down>", "has no modifier key and would take over typing"),
    ("<65>", "has no modifier key and would take over typing"),  # a key code may be a letter's
    ("<shift>+a", "has only Shift as modifier and would take over typing"),  # it types a capital A
    ("<shift_r>+<space>", "has only Shift as modifier and would take over typing"),
    ("<caps_lock>", "uses Caps Lock, which is the screen reader key"),
    ("<ctrl>+<alt>+<caps_lock>", "uses Caps Lock, which is the screen reader key"),
    ("<insert>", "uses Insert, which is the screen reader key (NVDA, Orca), without <ctrl> or <alt>"),
    ("<shift>+<insert>", "uses Insert, which is the screen reader key (NVDA, Orca), without <ctrl> or <alt>"),
    ("<ctrl>", "has only modifier keys"),
    ("<ctrl>+<alt>+<shift>", "has only modifier keys"),
    ("<cmd_r>", "has only modifier keys"),
])
def test_chords_that_take_over_typing_or_the_screen_reader_are_refused(keys, why):
    with pytest.raises(ValueError) as e:
        parse_chord(keys, "linux")
    assert str(e.value).startswith(f"chord {keys!r} {why}"), str(e.value)


@pytest.mark.parametrize("keys", [
    "<f9>", "<shift>+<f9>", "<media_play_pause>", "<media_next>", "<print_screen>", "<ctrl>+<space>",
    "<alt>+<enter>", "<cmd>+a", "<alt_gr>+<tab>", "<ctrl>+<insert>", "<alt>+<insert>", "<ctrl>+<shift>+a",
    "<ctrl>+<alt>+<shift>+d", "<ctrl_r>+<65>", "<ctrl>++",
])
def test_chords_that_leave_typing_alone_are_accepted(keys):
    parse_chord(keys, "linux")


def test_a_sided_modifier_overlaps_its_family_and_both_chords_would_fire():
    """Why load_config refuses the second of two overlapping chords: one press fires both."""
    m, fired = matcher("<ctrl>+<alt>+d", "<ctrl_l>+<alt>+d")
    tap(m, "ctrl_l", "alt_l", "d")
    assert fired == ["<ctrl>+<alt>+d", "<ctrl_l>+<alt>+d"]
    overlapping = [("<ctrl>+<alt>+d", "<ctrl_l>+<alt>+d"), ("<ctrl>+<alt>+d", "<alt_r>+<ctrl_r>+D"),
                   ("<ctrl_l>+<ctrl_r>+x", "<ctrl>+x"), ("<ctrl_l>+<ctrl_r>+x", "<ctrl_l>+x"),
                   ("<shift>+<f9>", "<shift_l>+<f9>")]
    for a, b in overlapping:
        assert Chord.parse(a).overlaps(Chord.parse(b)) and Chord.parse(b).overlaps(Chord.parse(a)), (a, b)
    apart = [("<ctrl_l>+<alt>+d", "<ctrl_r>+<alt>+d"), ("<ctrl>+<alt>+d", "<ctrl>+<alt>+<shift>+d"),
             ("<ctrl>+<alt>+d", "<ctrl>+<alt>+e"), ("<ctrl>+<alt>+d", "<ctrl>+<cmd>+d")]
    for a, b in apart:
        assert not Chord.parse(a).overlaps(Chord.parse(b)), (a, b)
    m, fired = matcher("<ctrl_l>+<alt>+d", "<ctrl_r>+<alt>+d")
    tap(m, "ctrl_l", "alt_l", "d")
    tap(m, "ctrl_r", "alt_l", "d")
    assert fired == ["<ctrl_l>+<alt>+d", "<ctrl_r>+<alt>+d"], "one side each: never both at once"
