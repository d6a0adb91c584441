"""A command's request, as the press it stands for: the one place that reads what a command sent
(op, source, task, prompt, question, the image's bytes) and says in one sentence what is wrong."""

from __future__ import annotations

from ..errors import A11yCaptionError
from .jobs import Press

__all__ = ["BadRequest", "press_for"]

SIMPLE = {"stop": "stop", "repeat": "repeat_last", "copy_last": "copy_last", "release": "release_model",
          "keys": "say_hotkeys"}
SOURCES = ("screen", "window", "clipboard", "image", "focus", "pointer", "images")
OBJECTS = ("focus", "pointer", "images")  # described only, never read
TASKS = (None, "photo", "screen", "window", "alt_text", "question")
DESCRIBE = {"screen": "describe_screen", "window": "describe_window", "clipboard": "describe_clipboard",
            "image": "describe_image", "focus": "describe_focus", "pointer": "describe_pointer",
            "images": "describe_images"}


class BadRequest(Exception):
    """What is wrong with a request, as the sentence its reply carries."""


def press_for(request: dict, image: bytes | None, reply) -> Press:
    """The press for a request of any op but "status"; BadRequest where it cannot be one."""
    op, speak = request["op"], request.get("speak", True)
    if op in SIMPLE:
        return Press(SIMPLE[op], reply=reply, speak=speak)
    if op == "ask":
        question = (request.get("question") or "").strip()
        if not question and request.get("box") is True:  # the question comes from the question box
            return Press("ask", reply=reply, speak=speak)
        if not question:
            raise BadRequest("Ask a question, for example: a11y-caption ask \"What does the error say?\"")
        return Press("ask", question, reply=reply, speak=speak)
    source = request.get("source") or "screen"
    if source not in SOURCES:
        raise BadRequest(f"Unknown source {source[:40]!r}; use screen, window, clipboard, focus, pointer, "
                         "images or an image.")
    picture = _picture(request, image) if source == "image" else None
    title = _title(request) if source == "image" else ""
    if op == "read" and source in OBJECTS:
        raise BadRequest("Read the window's text instead: a11y-caption read --window.")
    if op == "read":
        return Press("read_text", source=source, image=picture, reply=reply, speak=speak, title=title)
    task = request.get("task")
    if task not in TASKS:
        raise BadRequest(f"Unknown task {task[:40]!r}.")
    prompt = request.get("prompt") or ""
    if task == "question" and not prompt:
        raise BadRequest("A question needs a prompt.")
    return Press(DESCRIBE[source], prompt, task=task or ("question" if prompt else None), image=picture,
                 reply=reply, speak=speak, title=title)


def _title(request: dict) -> str:
    """One of several files a command sent: its name, said first ("File cat.png:")."""
    from ..safe_text import one_line

    name = one_line(request.get("name") or "")[:120]
    return f"File {name}:" if request.get("several") and name else ""


def _picture(request: dict, image: bytes | None):
    if image is None:
        raise BadRequest("No image was sent.")
    from ..images import open_image_bytes

    try:
        return open_image_bytes(image, (request.get("name") or "The image")[:200])
    except A11yCaptionError as e:
        raise BadRequest(str(e)) from e
