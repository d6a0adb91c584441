"""The one table of actions: every entry is whole, and the config, shortcuts and agent read it."""

from __future__ import annotations

import pytest

from a11y_caption.actions import BY_NAME, HOTKEY_ACTIONS, MODEL_ACTIONS, TABLE, action


def test_names_are_unique():
    names = [a.name for a in TABLE]
    assert len(names) == len(set(names)) == len(BY_NAME)


@pytest.mark.parametrize("entry", [a for a in TABLE if a.hotkey], ids=lambda a: a.name)
def test_every_hotkey_action_has_a_shortcut_text_and_a_command(entry):
    assert entry.shortcut and entry.shortcut[0].isupper() and not entry.shortcut.endswith(".")
    assert entry.command and entry.command[0] in ("describe", "read", "repeat", "copy-last", "stop", "release", "ask",
                                                  "keys")


@pytest.mark.parametrize("entry", [a for a in TABLE if a.source or a.needs_model], ids=lambda a: a.name)
def test_what_captures_or_waits_says_so_at_once(entry):
    """A press that captures or waits for the model is answered by a cue before the work."""
    assert entry.cue.endswith(".")
    assert entry.image_kind in ("screen", "photo")
    assert entry.task is not None or entry.name == "read_text"


def test_the_config_and_shortcuts_take_their_actions_from_the_table():
    from a11y_caption.config import ACTIONS, MODEL_ACTIONS as CONFIG_MODEL_ACTIONS
    from a11y_caption.desktop.shortcuts import COMMANDS, DESCRIPTIONS

    assert ACTIONS == HOTKEY_ACTIONS and CONFIG_MODEL_ACTIONS == MODEL_ACTIONS
    assert "describe_image" not in ACTIONS  # only a command's request reaches it
    assert "ask" in ACTIONS and "say_hotkeys" in ACTIONS
    for name in HOTKEY_ACTIONS:
        assert DESCRIPTIONS[name] == action(name).shortcut and COMMANDS[name] == list(action(name).command)


def test_every_action_and_every_question_key_has_its_own_cue():
    """By ear, a cue is all that tells two keys apart: the error-message key (a question about the
    window) must not sound like the window key."""
    cues = [a.cue for a in TABLE if a.cue] + [a.prompt_cue for a in TABLE if a.prompt_cue]
    assert len(cues) == len(set(cues)), cues
    assert action("describe_window").prompt_cue == "Asking about the window."
    for entry in TABLE:
        if entry.prompt_cue:
            assert entry.prompt_cue.endswith(".") and entry.prompt_cue != entry.cue


def test_every_hotkey_action_can_be_said_in_the_key_list():
    for name in HOTKEY_ACTIONS:
        said = action(name).spoken
        assert said and said[0].islower() and not said.endswith("."), (name, said)


def test_an_unknown_name_is_not_in_the_table():
    with pytest.raises(KeyError):
        action("describe_everything")
