"""What a model cannot do, as a voice says it: a missing model by a short name ("the Qwen2-VL 2B
model"), never the hub id letter by letter, and without the pull command, which is printed (stderr,
the log) instead; a model that cannot follow a question, in one sentence before what it can do."""

from __future__ import annotations

from pathlib import PurePath

from ..errors import IncompleteModel, ModelNotFound
from ..models import KNOWN_MODELS, canonical_id

__all__ = ["TEXT_ONLY", "cannot_follow", "not_here", "spoken_name"]

# Said after the text of a later description while the model is still missing.
TEXT_ONLY = "Text only."

def spoken_name(model: str) -> str:
    """"the Qwen2-VL 2B model" for a known model (hub id or alias), else "the model NAME" with the
    last part of the id or folder."""
    repo_id = canonical_id(model)
    known = next((k.spoken for k in KNOWN_MODELS if k.repo_id == repo_id), None)
    return f"the {known} model" if known else f"the model {_last_part(model)}"


def _last_part(model: str) -> str:
    return PurePath(model.replace("\\", "/").rstrip("/")).name or model


def not_here(e: ModelNotFound) -> str:
    """The one sentence said for ``e``; ``str(e)``, with the command that fixes it, is printed."""
    name = spoken_name(e.model)
    if isinstance(e, IncompleteModel):
        return f"The download of {name} did not finish."
    if str(e) == str(ModelNotFound(e.model, folder=True)):
        return f"The model folder {_last_part(e.model)} does not exist."
    return f"{name[0].upper()}{name[1:]} is not on this computer."


def cannot_follow(captioner) -> str:
    """The sentence before the answer of a model that cannot follow a question (BLIP, OCR), which
    gives what it can instead: its caption, or the text it read."""
    what = "the text it read" if captioner.text_only else "its caption"
    return f"This model cannot follow a question; here is {what}. "
