"""What each action is, in one table: its name, the cue said at once, the task it asks the model
for, what it captures, whether it needs the model, its desktop shortcut's text (which the spoken
list of keys says too) and the command a shortcut runs. The config, the agent and the shortcut
installer read this table; adding an action is one entry here plus its handler in the agent.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TABLE", "BY_NAME", "HOTKEY_ACTIONS", "MODEL_ACTIONS", "Action", "action"]


@dataclass(frozen=True)
class Action:
    name: str
    cue: str = ""  # said the moment the key is pressed ("" where the answer itself comes at once)
    task: str | None = None  # the captioner task it asks for, where it describes
    source: str | None = None  # what it captures: "screen", "window", "clipboard", "focus", "pointer", "images"
    needs_model: bool = False  # waits for the captioning model (the others answer at once)
    image_kind: str = "photo"  # how the describer treats the picture: "screen" (grounded in its text) or "photo"
    shortcut: str = ""  # a desktop shortcut's description
    command: tuple[str, ...] = ()  # what a desktop shortcut runs: the CLI's arguments
    hotkey: bool = True  # a [[hotkey]] may name it (False: only a command's request reaches it)
    # What a key with a ``prompt`` does, for a describing action: "ask about the window". Its cue,
    # ``prompt_cue``, is its own, so that the error-message key does not sound like the window key.
    asks: str = ""

    @property
    def prompt_cue(self) -> str:
        """The cue of a key with a prompt ("Asking about the window."); "" where a prompt changes nothing."""
        return f"Asking{self.asks.removeprefix('ask')}." if self.asks else ""

    @property
    def spoken(self) -> str:
        """What the key does, as the spoken list of keys says it: "describe the screen"."""
        return self.shortcut[:1].lower() + self.shortcut[1:]


TABLE: tuple[Action, ...] = (
    Action("describe_screen", "Describing the screen.", "screen", "screen", True, "screen",
           "Describe the screen", ("describe", "--screen"), asks="ask about the screen"),
    Action("describe_window", "Describing the window.", "window", "window", True, "screen",
           "Describe the active window", ("describe", "--window"), asks="ask about the window"),
    Action("describe_focus", "Describing the focus.", "object", "focus", True, "photo",
           "Describe the focused object", ("describe", "--focus"), asks="ask about the focused object"),
    Action("describe_pointer", "Describing under the pointer.", "object", "pointer", True, "photo",
           "Describe the object under the mouse pointer", ("describe", "--pointer"),
           asks="ask about the object under the pointer"),
    Action("describe_images", "Finding images.", "object", "images", True, "photo",
           "Describe the images that have no description", ("describe", "--images")),
    Action("describe_clipboard", "Describing the clipboard image.", "photo", "clipboard", True, "photo",
           "Describe the image on the clipboard", ("describe", "--clipboard"), asks="ask about the clipboard image"),
    Action("alt_text_to_clipboard", "Writing alt text.", "alt_text", "clipboard", True, "photo",
           "Copy alt text for the image on the clipboard", ("describe", "--clipboard", "--alt-text", "--copy")),
    Action("read_text", "Reading.", None, "window", False, "screen",
           "Read the text of the active window", ("read", "--window")),
    Action("repeat_last", shortcut="Say the last answer again", command=("repeat",)),
    Action("copy_last", shortcut="Copy the last answer", command=("copy-last",)),
    Action("stop", shortcut="Stop speaking", command=("stop",)),
    Action("release_model", shortcut="Free the model's memory", command=("release",)),
    Action("say_hotkeys", shortcut="Say all the keys", command=("keys",)),
    # A follow-up question about the last description: a command's question, a key's prompt, or
    # (a key without one) the question typed into the desktop's question box.
    Action("ask", "Asking.", "question", None, True, shortcut="Ask about the last answer", command=("ask",)),
    # Reached only through a command's request: an image the command sent.
    Action("describe_image", "Describing the image.", "photo", None, True, "photo", hotkey=False,
           asks="ask about the image"),
)
BY_NAME = {a.name: a for a in TABLE}
HOTKEY_ACTIONS = tuple(a.name for a in TABLE if a.hotkey)
MODEL_ACTIONS = tuple(a.name for a in TABLE if a.needs_model and a.hotkey)


def action(name: str) -> Action:
    """The table's entry for ``name`` (KeyError for a name the table does not have)."""
    return BY_NAME[name]
