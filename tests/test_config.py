"""hotkeys.toml parsing: the packaged default is valid and every mistake is reported as file:line."""

from __future__ import annotations

import pytest

from a11y_caption.config import ACTIONS, default_config_path, load_config, parse_chord
from a11y_caption.errors import ConfigError
from conftest import REPO


def test_packaged_default_is_the_repo_file_and_valid():
    # Two real files (a symlink breaks Windows checkouts): the packaged copy must match byte for byte.
    assert default_config_path().read_bytes() == (REPO / "hotkeys.toml").read_bytes(), (
        "a11y_caption/hotkeys.toml and hotkeys.toml differ; copy one over the other")
    config = load_config(default_config_path())
    assert {b.action for b in config.hotkeys} == set(ACTIONS), "every action has a default chord"
    assert config.speech.engine == "auto" and config.speech.braille is True
    assert config.model.name == "Qwen/Qwen2-VL-2B-Instruct"
    assert config.model.ground_in_ocr == "auto", "screens grounded in their OCR lines by default (README)"


def test_packaged_file_is_a_real_file_that_the_wheel_ships():
    """A git symlink becomes a text file reading "../hotkeys.toml" on Windows without symlink support."""
    import tomllib

    packaged = REPO / "a11y_caption" / "hotkeys.toml"
    assert not packaged.is_symlink() and packaged.is_file()
    assert packaged.stat().st_size > 1000
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "hotkeys.toml" in package_data["a11y_caption"]


def test_user_file_wins_over_default(tmp_path, monkeypatch):
    user = tmp_path / "mine.toml"
    user.write_text('[model]\nname = "blip-base"\n')
    monkeypatch.setenv("A11Y_CAPTION_CONFIG", str(user))
    config = load_config()
    assert config.path == user and config.model.name == "blip-base" and config.hotkeys == ()


def test_every_documented_key_exists():
    """hotkeys.toml documents every key; each one is a real setting (unknown keys would be refused)."""
    text = default_config_path().read_text()
    for section in ("model", "speech", "capture"):
        assert f"[{section}]" in text
    load_config(default_config_path())  # raises on any unknown key


@pytest.mark.parametrize("content, line, message", [
    ('[model]\nname = "x"\nnmae = "y"\n', 3, "unknown key 'nmae' in [model]"),
    ('[speech]\nengine = "festival"\n', 2, "engine must be one of auto, orca, speech-dispatcher, nvda, jaws, voiceover, pyttsx3, espeak-ng, none"),
    ('[speech]\nrate = "fast"\n', 2, "rate must be a int"),
    ('[sound]\nx = 1\n', 1, "unknown table [sound]"),
    ('[[hotkey]]\nkeys = "<ctrl>+<alt>+d"\naction = "describe_everything"\n', 3, "unknown action 'describe_everything'"),
    ('[[hotkey]]\nkeys = "<ctrl>+<alt>+<bogus>"\naction = "stop"\n', 2, "unknown key <bogus>"),
    ('[[hotkey]]\nkeys = "ctrl+alt+d"\naction = "stop"\n', 2, "cannot parse 'ctrl'"),
    ('[[hotkey]]\nkeys = "d"\naction = "stop"\n', 2, "no modifier key"),
    ('[[hotkey]]\nkeys = "<ctrl>+<alt>+d"\naction = "stop"\n\n[[hotkey]]\nkeys = "<alt>+<ctrl>+D"\naction = "repeat_last"\n',
     6, "is already bound on line 2"),
    ('[[hotkey]]\naction = "stop"\n', 1, "has no 'keys'"),
    ('[model]\nname = "x"\n[model\n', 3, "invalid TOML"),
])
def test_mistakes_are_refused_with_file_and_line(tmp_path, content, line, message):
    path = tmp_path / "hotkeys.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}:{line}: "), str(e.value)
    assert message in str(e.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path / "bin.toml")


def test_chords():
    assert parse_chord("<ctrl>+<alt>+<shift>+d") == {"ctrl", "alt", "shift", "d"}
    assert parse_chord("<ctrl>+<alt>+D") == parse_chord("<alt>+<ctrl>+d")
    assert parse_chord("<f9>") == {"f9"}
    assert parse_chord("<ctrl>++") == {"ctrl", "+"}
    for bad in ("", "<ctrl>+", "<ctrl>+<ctrl>+d", "<hyper>+x"):
        with pytest.raises(ValueError):
            parse_chord(bad)


def test_cli_refuses_a_bad_config_with_file_line(tmp_path):
    from conftest import run_cli

    bad = tmp_path / "bad.toml"
    bad.write_text('[[hotkey]]\nkeys = "<ctrl>+<alt>+d"\naction = "explode"\n')
    r = run_cli("run", "--config", str(bad), "--speech", "none")
    assert r.returncode == 1
    assert r.stderr.strip().startswith(f"a11y-caption: {bad}:3: unknown action 'explode'")


@pytest.mark.parametrize("first, second", [
    ("<ctrl>+<alt>+d", "<ctrl_l>+<alt>+d"), ("<ctrl_r>+<alt>+d", "<alt>+<ctrl>+D"), ("<ctrl>+<f9>", "<ctrl_r>+<f9>"),
])
def test_chords_that_one_press_fires_together_are_duplicates(tmp_path, first, second):
    path = tmp_path / "hotkeys.toml"
    path.write_text(f'[[hotkey]]\nkeys = "{first}"\naction = "stop"\n\n'
                    f'[[hotkey]]\nkeys = "{second}"\naction = "repeat_last"\n')
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == (f"{path}:6: chord {second!r} is already bound on line 2 as {first!r}, and one press "
                            "would fire both")


def test_chords_on_different_sides_are_not_duplicates(tmp_path):
    path = tmp_path / "hotkeys.toml"
    path.write_text('[[hotkey]]\nkeys = "<ctrl_l>+<alt>+d"\naction = "stop"\n\n'
                    '[[hotkey]]\nkeys = "<ctrl_r>+<alt>+d"\naction = "repeat_last"\n')
    assert [b.keys for b in load_config(path).hotkeys] == ["<ctrl_l>+<alt>+d", "<ctrl_r>+<alt>+d"]


@pytest.mark.parametrize("keys, message", [
    ("<space>", "would take over typing"), ("<shift>+a", "would take over typing"),
    ("<caps_lock>", "Caps Lock, which is the screen reader key"), ("<ctrl>+<alt>", "has only modifier keys"),
])
def test_chords_that_take_over_typing_are_refused_with_file_and_line(tmp_path, keys, message):
    path = tmp_path / "hotkeys.toml"
    path.write_text(f'[[hotkey]]\naction = "stop"\nkeys = "{keys}"\n')
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}:3: chord {keys!r} ") and message in str(e.value), str(e.value)
