"""hotkeys.toml parsing: the packaged default is valid and every mistake is reported as file:line."""

from __future__ import annotations

import pytest

from a11y_caption.config import ACTIONS, default_config_path, load_config, parse_chord, user_config_path
from a11y_caption.errors import ConfigError
from conftest import REPO, SAMPLE, run_cli


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
    assert config.path == user and config.model.name == "blip-base"
    assert config.hotkeys == load_config(default_config_path()).hotkeys, "read over the defaults: every hotkey kept"


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
    ('[[hotkey]]\nkeys = "d"\naction = "stop"\n', 2, "chord 'd' has no modifier key"),
    ('[[hotkey]]\nkeys = "<ctrl>+<alt>+d"\naction = "stop"\n\n[[hotkey]]\nkeys = "<alt>+<ctrl>+D"\naction = "repeat_last"\n',
     6, "chord '<alt>+<ctrl>+D' is already bound on line 2"),
    ('[[hotkey]]\naction = "stop"\n', 1, "this [[hotkey]] has no 'keys'"),
    ('[model]\nname = "x"\n[model\n', 3, "invalid TOML"),
    # non-finite numbers, an unbounded idle time, a device that is none
    ("[model]\nname = \"x\"\nidle_unload_minutes = inf\n", 3, "idle_unload_minutes must be a finite number, not inf"),
    ("[model]\nidle_unload_minutes = nan\n", 2, "idle_unload_minutes must be a finite number, not nan"),
    ("[model]\nidle_unload_minutes = 20000\n", 2, "idle_unload_minutes must be between 0 and 10080"),
    ("[model]\ntemperature = -inf\n", 2, "temperature must be a finite number, not -inf"),
    ("[speech]\nvolume = nan\n", 2, "volume must be a finite number, not nan"),
    ('[model]\ndevice = "gpu"\n', 2, "device must be one of auto, cpu, cuda, cuda:N or mps, not 'gpu'"),
    ('[model]\ndevice = "cuda:x"\n', 2, "device must be one of auto, cpu, cuda, cuda:N or mps, not 'cuda:x'"),
])
def test_mistakes_are_refused_with_file_and_line(tmp_path, content, line, message):
    path = tmp_path / "hotkeys.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}:{line}: {message}"), str(e.value)


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
    assert [b.keys for b in load_config(path).hotkeys[:2]] == ["<ctrl_l>+<alt>+d", "<ctrl_r>+<alt>+d"]


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


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:3", "mps"])
def test_devices_the_settings_accept(tmp_path, device):
    path = tmp_path / "hotkeys.toml"
    path.write_text(f'[model]\ndevice = "{device}"\n')
    assert load_config(path).model.device == device


# -- non-finite numbers and an unbounded idle time are refused too (see the mistakes above) ------

def test_a_week_of_idle_minutes_is_accepted(tmp_path):
    path = tmp_path / "hotkeys.toml"
    path.write_text("[model]\nidle_unload_minutes = 10080\n")
    assert load_config(path).model.idle_unload_minutes == 10080.0


# -- A11Y_CAPTION_CONFIG naming a missing file is an error, not the default ------------------

def test_config_variable_naming_a_missing_file_stops(tmp_path, monkeypatch):
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
    assert user_config_path() == tmp_path / "user-config" / "a11y-caption" / "hotkeys.toml"
    assert load_config().path == default_config_path()
    r = run_cli("config", "path")
    assert r.returncode == 0 and r.stdout == f"{user_config_path()}\n"
    assert "using the packaged default" in r.stderr
