"""The agent's keys in words: the lines said when it is ready (what it is ready for, and the two
keys a new user needs first) and the list the say_hotkeys key says."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..actions import action as action_of
from ..config import Binding
from ..hotkeys import chord_words

__all__ = ["key_list", "ready_lines"]


def _first_key(bindings: Sequence[Binding], action: str) -> str | None:
    return next((chord_words(b.keys) for b in bindings if b.action == action and not b.prompt), None)


def ready_lines(bindings: Sequence[Binding], missing: str | None) -> list[str]:
    """What the agent says once it can answer: "Ready." and the describe and say-keys keys, or,
    with ``missing`` (the spoken name of a model not on this computer), that it reads text only
    and the read key. ``bindings``: the keys that reach it (none where the desktop's own shortcuts
    run commands instead)."""
    if missing:
        first = f"Ready to read text; {missing} is not on this computer."
        main = _first_key(bindings, "read_text"), "reads the window"
    else:
        first = "Ready."
        main = _first_key(bindings, "describe_screen"), "describes the screen"
    keys = [f"{words} {does}" for words, does in (main, (_first_key(bindings, "say_hotkeys"), "says all the keys"))
            if words]
    return [first, "; ".join(keys) + "."] if keys else [first]


def key_list(bindings: Sequence[Binding]) -> list[str]:
    """Each key and what it does, one sentence each: "Control Alt Shift D: describe the screen."; a
    key with a prompt says the prompt's first sentence ("...: ask about the window: Is there an
    error message in this window?")."""
    lines = []
    for b in bindings:
        what = action_of(b.action)
        does = what.spoken
        if b.prompt and (what.asks or b.action == "ask"):
            does = f"{what.asks or does}: {_first_sentence(b.prompt)}"
        elif not does.endswith((".", "?", "!")):
            does += "."
        lines.append(f"{chord_words(b.keys)}: {does}")
    return lines


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    m = re.match(r".+?[.?!](?=\s|$)", text)
    sentence = m.group(0) if m else text
    return sentence if sentence.endswith((".", "?", "!")) else sentence + "."
