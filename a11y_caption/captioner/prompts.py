"""What we ask a chat model for each task. Screens are mostly text, so screen prompts ask to read;
a grounded prompt (Request.screen_text) gives the model the text OCR found and lets it quote only that."""

from __future__ import annotations

from .base import Request

__all__ = ["TAGS_PROMPT", "grounded_prefix", "prompt_for"]

# Asked as a question (task "question"); the answer is parsed by index.tags_from.
TAGS_PROMPT = (
    "List five to ten tags for this image: single lowercase words, nouns and adjectives for what is "
    "in it, separated by commas. Reply with the tags only."
)

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
    "object": (
        "This picture is one object cropped from a computer screen: a control, an icon, an image or "
        "a chart. A blind user already knows what the accessibility tree says of it:\n{facts}\n"
        "In one or two sentences say what the picture adds: what an icon shows, what an image or "
        "chart depicts. Do not repeat those facts, and do not guess at text you cannot read."
    ),
}
# Grounded: the image is too small for the model to read interface text, so it is not asked to.
_GROUNDED_PROMPTS = {
    "screen": (
        "This is a screenshot of a computer screen, described for a blind user. Say which application "
        "is shown and what needs attention (a message, a dialog, an error, a selected field). Be brief."
    ),
    "window": (
        "This is a screenshot of one application window, described for a blind user. Say what the "
        "window is and what needs attention in it (a message, a dialog, an error). Be brief."
    ),
}
# An object where no accessibility tree answered: the area around the mouse pointer.
_AREA = (
    "This picture is the part of a computer screen around the mouse pointer, described for a blind "
    "user. In one or two sentences say what is there: the control, icon, image or chart in the middle, "
    "and its text exactly as written. Do not guess at text you cannot read."
)
_GROUND_RULE = (
    "Quote text only from the list below, exactly as it is written there, in double quotes; never "
    "quote text that is not in it. The text found on the image, in reading order, under where it is:"
)
_NO_TEXT = "No text was found on the image: do not quote any text."


def prompt_for(request: Request) -> str:
    """The instruction for a chat model, with the answer language appended when one is set, and
    for a grounded first turn the text found on the image.

    The OCR lines come last, so that everything before them (``grounded_prefix``) is the same for
    every screen: a model reads it, with the image, while OCR still runs.
    """
    if request.screen_text is None or request.history:  # later turns have the lines already
        return _instruction(request, False)
    listed = request.screen_text.listed()
    if not listed:
        return _instruction(request, True) + "\n\n" + _NO_TEXT
    text = grounded_prefix(request) + "\n" + _listing(listed)
    more = len(request.screen_text.lines) - len(listed)
    if more:
        text += f"\n(and {more} more lines, not listed)"
    return text


def grounded_prefix(request: Request) -> str:
    """How ``prompt_for`` begins for ``request`` (a first turn) grounded in any screen text that
    has lines: what a model can read, with the image, before OCR has found them."""
    return _instruction(request, True) + "\n\n" + _GROUND_RULE


def _instruction(request: Request, grounded: bool) -> str:
    if request.task == "question":
        if not request.question:
            raise ValueError("a question task needs a question")
        text = request.question
    else:
        text = (_GROUNDED_PROMPTS if grounded else _PROMPTS).get(request.task, _PROMPTS[request.task])
        if request.task == "object":
            text = text.format(facts="\n".join(request.facts)) if request.facts else _AREA
    if request.language:
        text += f" Answer in {request.language}."
    return text


def _listing(lines) -> str:
    """One line per OCR line; a position heading only where the position changes (fewer prompt
    tokens, and every one of them is read before the first word)."""
    out, where = [], None
    for line in lines:
        if line.position != where:
            where = line.position
            out.append(f"[{where}]")
        out.append(line.text)
    return "\n".join(out)
