"""Settings files that are not what they seem: a FIFO, a device, a huge file, numbers and nesting
past what the parser takes, a hotkey that is not a table, a prompt of several lines. Each is one
ConfigError sentence with file (and line where there is one), never a hang or "unexpected error"."""

from __future__ import annotations

import os
import resource
import sys

import pytest

from a11y_caption.config import load_config
from a11y_caption.errors import ConfigError
from conftest import run_cli


def refused(tmp_path, content: str) -> ConfigError:
    path = tmp_path / "hotkeys.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    return e.value


@pytest.mark.parametrize("prompt", [
    '"""Describe the window.\nexec rm -rf ~"""',  # sway ran the second line as a command of its own
    '"one\\ntwo"', '"one\\rtwo"', '"a\\ttab"', '"an \\u001b[31m escape"', '"a line\\u2028separator"',
])
def test_a_prompt_must_be_one_line(tmp_path, prompt):
    error = refused(tmp_path, f'[[hotkey]]\nkeys = "<ctrl>+<alt>+w"\naction = "describe_window"\nprompt = {prompt}\n')
    assert str(error) == f"{tmp_path / 'hotkeys.toml'}:4: prompt must be one line, with no line break or other " \
                         "control character"


def test_a_one_line_prompt_with_quotes_and_symbols_is_kept(tmp_path):
    path = tmp_path / "hotkeys.toml"
    prompt = "What's \"here\"; $HOME, `id`, 100% \\ done? 日本語"
    path.write_text('[[hotkey]]\nkeys = "<ctrl>+<alt>+w"\naction = "describe_window"\n'
                    f"prompt = '''{prompt}'''\n", encoding="utf-8")
    assert load_config(path).hotkeys[0].prompt == prompt


@pytest.mark.parametrize("content, line, message", [
    ("hotkey = [1]\n", 1, "each hotkey is a [[hotkey]] table with keys and action"),
    ('hotkey = ["<ctrl>+<alt>+d"]\n', 1, "each hotkey is a [[hotkey]] table with keys and action"),
    ('hotkey = "<ctrl>+<alt>+d"\n', 1, "hotkeys are written as [[hotkey]] tables"),
    ("model = 3\n", 1, "[model] must be a table"),
    ("[speech]\nrate = 200\nvolume = 1" + "0" * 400 + "\n", 3,
     "volume must be between 0.0 and 1.0, not a number of 401 digits"),
    ("[model]\ntemperature = -1" + "0" * 400 + "\n", 2, "temperature must be between 0.0 and 2.0"),
    ("[speech]\nrate = 1" + "0" * 400 + "\n", 2,
     "rate must be between 50 and 600 words a minute, not a number of 401 digits"),
    ("[model]\nname = \"x\"\n\nmax_new_tokens = 1" + "0" * 5000 + "\n", 4, "a number has more than 4300 digits"),
    ("[model]\nname = \"x\"\nx = " + "[" * 5000 + "]" * 5000 + "\n", 3, "arrays or tables are nested too deeply"),
    ("[model]\nx = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n", 2, "arrays or tables are nested too deeply"),
])
def test_values_past_the_parsers_limits_are_a_sentence_with_file_and_line(tmp_path, content, line, message):
    error = refused(tmp_path, content)
    assert str(error).startswith(f"{tmp_path / 'hotkeys.toml'}:{line}: "), str(error)[:300]
    assert message in str(error)
    assert len(str(error)) < 200, "short enough to hear"


def test_a_file_over_one_mib_is_refused_unread(tmp_path):
    path = tmp_path / "hotkeys.toml"
    with open(path, "wb") as f:
        f.write(b"# a comment\n")
        f.truncate(2 * 1024 * 1024)  # sparse: no disk used
    with pytest.raises(ConfigError, match=r"hotkeys.toml: the file is larger than 1 MiB"):
        load_config(path)


def _limited_memory():
    resource.setrlimit(resource.RLIMIT_AS, (2 * 1024 ** 3, 2 * 1024 ** 3))


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
@pytest.mark.parametrize("named_by", ["argument", "environment"])
def test_only_a_regular_file_is_read(tmp_path, kind, named_by):
    """A FIFO hung `config check` (and, through A11Y_CAPTION_CONFIG, every command) waiting for a
    writer; /dev/zero was read until the memory ran out (here: a 2 GiB limit, so the test cannot)."""
    if kind == "fifo":
        path = tmp_path / "hotkeys.toml"
        os.mkfifo(path)
    else:
        path = "/dev/zero" if kind == "device" else tmp_path
    args, env = (["config", "check", str(path)], None) if named_by == "argument" else \
        (["config", "check"], {"A11Y_CAPTION_CONFIG": str(path)})
    r = run_cli(*args, env=env, timeout=60, preexec_fn=_limited_memory)
    assert r.returncode == 1, r
    what = "this is a folder" if kind == "folder" else "this is not a regular file (a pipe or a device)"
    assert r.stderr == f"a11y-caption: {path}: {what}; " + (
        "name the settings file itself\n" if kind == "folder" else "name a settings file\n"), r.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_a_link_to_a_fifo_is_refused_too(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "hotkeys.toml").symlink_to(tmp_path / "fifo")
    r = run_cli("config", "check", str(tmp_path / "hotkeys.toml"), timeout=60)
    assert r.returncode == 1 and "not a regular file" in r.stderr, r
