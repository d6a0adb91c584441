"""What ``--help`` says, written for the ear: each command's purpose in one sentence on one line, then
a few real examples, one to a line. The desktop commands (shortcuts, autostart) keep theirs with
their parsers."""

from __future__ import annotations

import argparse

__all__ = ["ByEarFormatter", "page", "TOP_EPILOG"]


class ByEarFormatter(argparse.RawDescriptionHelpFormatter):
    """A one-line usage (``usage: a11y-caption describe [options] [IMAGE...]``) instead of every flag
    in brackets, and the purpose and examples kept as written: a screen reader reads each line as
    one piece, so a sentence broken over two lines is heard as two."""

    def _format_usage(self, usage, actions, groups, prefix):
        if usage is None:  # "[options]" for the flags one may leave out, beyond --help; the others named
            optional = [a for a in actions if a.option_strings and not a.required]
            words = [self._prog] + ["[options]"] * any(not isinstance(a, argparse._HelpAction) for a in optional)
            words += [f"{a.option_strings[0]} {self._format_args(a, a.dest.upper())}".strip()
                      for a in actions if a.option_strings and a.required]
            words += [self._positional(a) for a in actions if not a.option_strings]
            usage = " ".join(words).replace("%", "%%")
        return super()._format_usage(usage, actions, groups, prefix)

    def _positional(self, action) -> str:
        name = self._metavar_formatter(action, action.dest)(1)[0]
        if action.nargs == argparse.PARSER:  # a command or an action: what follows is its own
            return name
        return {argparse.OPTIONAL: f"[{name}]", argparse.ZERO_OR_MORE: f"[{name}...]",
                argparse.ONE_OR_MORE: f"{name}..."}.get(action.nargs, name)


def _examples(*lines: str) -> str:
    return "Examples:\n" + "\n".join(f"  a11y-caption {line}" for line in lines)


TOP_EPILOG = _examples("describe photo.jpg", "describe --screen", "run") + \
    "\n\nRun a11y-caption COMMAND --help for one command's options and examples."

# command (its words, joined by spaces): (purpose, examples)
_PAGES = {
    "describe": ("Describe image files, the screen, the active window or the clipboard's image aloud with "
                 "the local vision model.",
                 ("describe photo.jpg", 'describe --screen --prompt "Which button is selected?"',
                  "describe --alt-text --copy chart.png")),
    "read": ("Read the exact text of image files, the screen, the active window or the clipboard's image "
             "with text recognition (OCR), no download needed.",
             ("read scan.png", "read --window --copy")),
    "run": ("Start the hotkey agent, which keeps the model loaded and answers the hotkeys until you stop it.",
            ("run", "run --model blip-base --rate 220")),
    "ask": ("Ask the running agent a follow-up question about what it described last.",
            ('ask "What does the error message say?"', 'ask --no-speak "Which buttons are there?"', "ask")),
    "stop": ("Make the running agent stop speaking and stop generating its answer.", ("stop",)),
    "keys": ("Say and print each hotkey in words with what it does; the running agent says them, else this "
             "command does.", ("keys", "keys --no-speak")),
    "repeat": ("Make the running agent say its last answer again, which is printed here too.",
               ("repeat", "repeat --no-speak")),
    "copy-last": ("Make the running agent copy its last answer to the clipboard.", ("copy-last",)),
    "release": ("Make the running agent free the model's memory; the next description loads the model again.",
                ("release",)),
    "status": ("Say whether an agent is running, and with which model.", ("status", "status --json")),
    "voices": ("List the voices --voice can choose, one a line: id, name and language.",
               ("voices", "voices --speech espeak-ng")),
    "models": ("Download, list or remove the vision models on this computer.",
               ("models list", "models pull", "models pull blip-base")),
    "models pull": ("Download a model: its configs, tokenizer and safetensors weights, nothing else.",
                    ("models pull", "models pull blip-base")),
    "models list": ("List the models on this computer with their size on disk, or the models of a server.",
                    ("models list", "models list --server http://127.0.0.1:11434/v1")),
    "models remove": ("Delete a downloaded model and its int8 copy.", ("models remove blip-base",)),
    "config": ("Show where the settings file is, or check one and list its hotkeys.",
               ("config path", "config check")),
    "config path": ("Print where your hotkeys.toml settings file is read from.", ("config path",)),
    "config check": ("Check a settings file and list its hotkeys, without starting anything.",
                     ("config check", "config check my-hotkeys.toml")),
    "index": ("Describe every image in folders once, so that they can be searched and exported; "
              "run it again to go on or to add new files.",
              ("index ~/Pictures", "index --prune ~/Pictures", "index --speak ~/Pictures ~/Documents")),
    "search": ("Find indexed images whose description, tags, text or file and folder names hold all the words you give.",
               ('search "red bicycle"', "search --limit 3 invoice")),
    "show": ("Print everything the index holds for one image file.",
             ("show ~/Pictures/beach.jpg", "show --json ~/Pictures/beach.jpg")),
    "export": ("Write the path, alt text, description and tags of the indexed images to a file in a folder.",
               ("export ~/Desktop", "export --format jsonl ~/Desktop")),
    "bench": ("Time the first spoken word and measure memory on full-size models; it takes minutes.",
              ("bench --models blip-base --precisions int8", "bench --index",
               "bench --report docs/PERFORMANCE.md")),
}


def page(command: str) -> dict:
    """``description`` and ``epilog`` for ``sub.add_parser``, by the command's words ("models pull")."""
    purpose, examples = _PAGES[command]
    return {"description": purpose, "epilog": _examples(*examples)}
