"""Every numeric flag is checked with the settings' own ranges, in one line, before any work."""

from __future__ import annotations

import pytest

from conftest import SAMPLE, run_cli


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
    from a11y_caption.cli.parser import FLAG_SETTINGS, LIST_FLAG_SETTINGS
    from a11y_caption.config import RULES, ModelConfig, SpeechConfig

    settings = {*FLAG_SETTINGS.values(), *LIST_FLAG_SETTINGS.values()}
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
