"""What we ask a chat model for each task. Screens are mostly text, so screen prompts ask to read."""

from __future__ import annotations

from .captioner.base import Request

__all__ = ["prompt_for"]

_PROMPTS = {
    "screen": (
        "This is a screenshot of a computer screen, described for a blind user. Say which application "
        "is shown, then read the important text exactly as written: titles, messages, buttons, fields. "
        "Be brief and do not guess at text you cannot read."
    ),
    "window": (
        "This is a screenshot of one application window, described for a blind user. Say what the "
        "window is, then read its important text exactly as written. Be brief; do not guess."
    ),
    "photo": "Describe this image for a blind person in two or three sentences. Mention any text in it.",
    "alt_text": (
        "Write alt text for this image: one concise sentence. Do not begin with 'image of' or "
        "'picture of'. Include important text exactly."
    ),
    "read": "Read all the text in this image exactly, line by line, in reading order.",
}


def prompt_for(request: Request) -> str:
    """The instruction for a chat model, with the answer language appended when one is set."""
    if request.task == "question":
        if not request.question:
            raise ValueError("a question task needs a question")
        text = request.question
    else:
        text = _PROMPTS[request.task]
    if request.language:
        text += f" Answer in {request.language}."
    return text
