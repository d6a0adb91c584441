"""A user's hotkeys.toml is read over the packaged defaults: it holds only what the user changes.

Settings: each key the user writes replaces the default's, every other one stays as the packaged
file has it. Hotkeys: the user's [[hotkey]] entries come first, then every default binding that
none of them replaces; a default is replaced by a user entry on a chord that one press would fire
too, or by one for the same action with the same prompt (the action moved to another key).
``[hotkeys] replace = true``, or ``hotkey = []``, keeps none of the default hotkeys.
"""

from __future__ import annotations

import dataclasses

import pytest

from a11y_caption.config import Binding, default_config_path, load_config
from a11y_caption.errors import ConfigError
from conftest import REPO, run_cli


@pytest.fixture
def defaults():
    return load_config(default_config_path())


def user_file(tmp_path, text: str):
    path = tmp_path / "user-config" / "a11y-caption" / "hotkeys.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_with_only_the_rate_keeps_every_default_setting_and_hotkey(tmp_path, defaults):
    path = user_file(tmp_path, "[speech]\nrate = 200\n")
    config = load_config()  # the user's file, found where `config path` says
    assert config.path == path and config.defaults == default_config_path()
    assert config.hotkeys == defaults.hotkeys and len(config.hotkeys) >= 10
    assert (config.model, config.speech, config.capture) == (defaults.model, defaults.speech, defaults.capture)


def test_the_keys_a_user_writes_replace_only_those_keys(tmp_path, defaults):
    config = load_config(user_file(tmp_path, '[speech]\nrate = 260\n\n[model]\nname = "blip-base"\n'))
    assert config.speech == dataclasses.replace(defaults.speech, rate=260)
    assert config.model == dataclasses.replace(defaults.model, name="blip-base")
    assert config.hotkeys == defaults.hotkeys


def test_settings_come_from_the_packaged_file_not_only_from_the_code(tmp_path, monkeypatch):
    """The defaults are the packaged file's values: one that differs from the code's default is kept."""
    packaged = tmp_path / "packaged.toml"
    packaged.write_text('[speech]\nrate = 300\nvolume = 0.5\n\n[[hotkey]]\nkeys = "<f9>"\naction = "stop"\n')
    monkeypatch.setattr("a11y_caption.config.default_config_path", lambda: packaged)
    config = load_config(user_file(tmp_path, "[speech]\nvolume = 0.8\n"))
    assert (config.speech.rate, config.speech.volume) == (300, 0.8)
    assert config.hotkeys == (Binding("<f9>", "stop"),)


def test_a_users_hotkey_is_added_to_the_defaults(tmp_path, defaults):
    config = load_config(user_file(
        tmp_path, '[[hotkey]]\nkeys = "<ctrl>+<alt>+<shift>+k"\naction = "describe_window"\nprompt = "Any link?"\n'))
    assert config.hotkeys == (Binding("<ctrl>+<alt>+<shift>+k", "describe_window", "Any link?"), *defaults.hotkeys)
    assert config.own_hotkeys == 1 and config.replaced_hotkeys == ()


def test_a_users_hotkey_on_a_default_chord_replaces_that_default(tmp_path, defaults):
    """One press would fire both: the user's wins, and the default it displaced is named."""
    config = load_config(user_file(
        tmp_path, '[[hotkey]]\nkeys = "<ctrl_l>+<alt>+<shift>+d"\naction = "describe_window"\nprompt = "Read it."\n'))
    describe_screen = next(b for b in defaults.hotkeys if b.action == "describe_screen")
    assert config.replaced_hotkeys == (describe_screen,)
    assert config.hotkeys == (Binding("<ctrl_l>+<alt>+<shift>+d", "describe_window", "Read it."),
                              *(b for b in defaults.hotkeys if b != describe_screen))


def test_a_users_hotkey_for_a_default_action_moves_it(tmp_path, defaults):
    """An action bound again with the same prompt moved: its old chord is free (a user who moved a key
    because another program needs it must not find the old one still firing)."""
    config = load_config(user_file(tmp_path, '[[hotkey]]\nkeys = "<f9>"\naction = "describe_screen"\n'))
    assert config.hotkeys[0] == Binding("<f9>", "describe_screen")
    assert [b.action for b in config.hotkeys].count("describe_screen") == 1
    assert "<ctrl>+<alt>+<shift>+d" not in [b.keys for b in config.hotkeys]
    # The same action with another prompt is another binding: both default describe_window keys stay.
    windows = [b for b in defaults.hotkeys if b.action == "describe_window"]
    assert len(windows) == 2 and all(b in config.hotkeys for b in windows)


def test_a_full_copy_of_the_defaults_gives_the_defaults(tmp_path, defaults):
    """What the README said to do before: copy the whole file. It reads as it did."""
    config = load_config(user_file(tmp_path, (REPO / "hotkeys.toml").read_text()))
    assert config.hotkeys == defaults.hotkeys and config.replaced_hotkeys == defaults.hotkeys


@pytest.mark.parametrize("text", [
    '[hotkeys]\nreplace = true\n\n[[hotkey]]\nkeys = "<f9>"\naction = "stop"\n',
    '[[hotkey]]\nkeys = "<f9>"\naction = "stop"\n\n[hotkeys]\nreplace = true\n',
])
def test_replace_true_keeps_only_the_users_hotkeys(tmp_path, text):
    config = load_config(user_file(tmp_path, text))
    assert config.hotkeys == (Binding("<f9>", "stop"),)


@pytest.mark.parametrize("text", ["hotkey = []\n\n[speech]\nrate = 220\n", "[hotkeys]\nreplace = true\n"])
def test_an_empty_hotkey_list_or_replace_alone_means_no_hotkeys(tmp_path, text):
    config = load_config(user_file(tmp_path, text))
    assert config.hotkeys == ()


@pytest.mark.parametrize("content, line, message", [
    ('[speech]\nrate = 20\n', 2, "rate must be between 50 and 600 words a minute, not 20"),
    ('\n[[hotkey]]\nkeys = "<f9>"\naction = "explode"\n', 4, "unknown action 'explode'"),
    ('[[hotkey]]\nkeys = "<f9>"\naction = "stop"\n[[hotkey]]\nkeys = "<f9>"\naction = "repeat_last"\n', 5,
     "chord '<f9>' is already bound on line 2"),
    ('[hotkeys]\nreplace = "yes"\n', 2, "replace must be a bool, not 'yes'"),
    ('[hotkeys]\nreplace = true\nkeep = 1\n', 3, "unknown key 'keep' in [hotkeys]; known keys: replace"),
    ('[speech]\nrate = 220\nhotkey = []\n', 3,
     "unknown key 'hotkey' in [speech]; hotkey = [] goes at the top of the file, before the first [table]"),
    ('[sound]\nx = 1\n', 1, "unknown table [sound]; known: [model], [speech], [capture], [hotkeys], [[hotkey]]"),
])
def test_mistakes_in_the_users_file_name_the_users_file_and_line(tmp_path, content, line, message):
    path = user_file(tmp_path, content)
    with pytest.raises(ConfigError) as e:
        load_config()
    assert str(e.value).startswith(f"{path}:{line}: {message}"), str(e.value)


def test_config_check_says_what_it_read_and_names_chords_as_people_do(tmp_path):
    path = user_file(tmp_path, '[speech]\nrate = 200\n\n[[hotkey]]\nkeys = "<f9>"\naction = "describe_screen"\n')
    r = run_cli("config", "check")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{path}: OK, read over the packaged defaults {default_config_path()}"), lines[0]
    assert "F9  describe_screen: describe the screen (yours)" in lines
    assert "Ctrl+Alt+Shift+W  describe_window: describe the active window" in lines
    assert any(line.startswith("Ctrl+Alt+Shift+E  describe_window: describe the active window, asking: Is there")
               for line in lines), lines
    assert not any("<ctrl>" in line for line in lines[1:]), "no pynput syntax for people"
    assert any("Ctrl+Alt+Shift+D" in line and "describe_screen" in line and "replaced" in line for line in lines)


def test_config_check_of_the_packaged_file_says_so():
    r = run_cli("config", "check")
    assert r.returncode == 0, r.stderr
    first, *rest = r.stdout.splitlines()
    assert first.startswith(f"{default_config_path()}: OK, the packaged defaults"), first
    assert "Ctrl+Alt+Shift+D  describe_screen: describe the screen" in rest


def test_config_check_of_a_bad_user_file_names_its_line(tmp_path):
    path = user_file(tmp_path, '[speech]\nrate = 200\n\n[[hotkey]]\nkeys = "<f9>"\naction = "explode"\n')
    r = run_cli("config", "check", str(path))
    assert r.returncode == 1 and r.stderr.startswith(f"a11y-caption: {path}:6: unknown action 'explode'"), r.stderr


def test_config_path_no_longer_says_to_copy_the_whole_file(tmp_path, monkeypatch):
    monkeypatch.setenv("A11Y_CAPTION_CONFIG", str(tmp_path / "mine.toml"))
    r = run_cli("config", "path")
    assert r.returncode == 0 and "only the settings you change" in r.stderr, r.stderr
