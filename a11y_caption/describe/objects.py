"""What the accessibility tree says of an object, made into what a description of it needs: the
sentence said at once (its role and name, as the screen reader would: "Push button, no label."),
the facts the model is told, and the tree's own strings, which are on the screen exactly and so
may be quoted (they join the OCR lines the quote check accepts)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..capture.tree import AccessibleObject, is_unlabeled, own_name
from ..captioner.screen_text import ScreenLine, ScreenText

__all__ = ["TREE", "ObjectFacts", "facts_of", "grounding_of", "with_tree_text"]

TREE = "accessibility tree"  # where the tree's strings are, in a grounded prompt's listing
# An object smaller than this on both sides (an icon, a toolbar button) has its quotes checked
# against OCR run beside the model instead of OCR's lines in the prompt: OCR costs about 0.8 s at
# any size (its detector works at a fixed minimum side) where reading a 64x64 icon costs the model
# 0.1 s, and such an object's words are what the tree names. Measured on the full-size Qwen2-VL-2B
# replica, int8, Intel Xeon with AVX-512 VNNI: a 64x64 icon's first token 1.5-2.6 s with OCR in the
# prompt, 0.72 s without.
SMALL_OBJECT = 128
_TEXT_SAID = 120  # characters of an object's text said in the first sentence


@dataclass(frozen=True)
class ObjectFacts:
    lead: str  # said first, before the model has a word: "Push button, no label."
    facts: tuple[str, ...]  # told to the model: "Role: push button", "Name: none", ...
    strings: tuple[str, ...]  # the tree's strings, quotable
    unlabeled: bool


def facts_of(obj: AccessibleObject) -> ObjectFacts:
    unlabeled = is_unlabeled(obj)
    role = obj.role or "object"
    name = own_name(obj)
    # A control's text that only repeats its name (a web button's "Go") is said and told once.
    obj = replace(obj, text="") if " ".join(obj.text.split()).casefold() == name.casefold() else obj
    said = [role[:1].upper() + role[1:], "no label" if unlabeled and not name else name]
    said += list(obj.states)
    if obj.text:
        said.append(obj.text[:_TEXT_SAID] + ("..." if len(obj.text) > _TEXT_SAID else ""))
    facts = [f"Role: {role}", f"Name: {name or 'none'}"]
    if obj.description:
        facts.append(f"Description: {obj.description}")
    if obj.states:
        facts.append("States: " + ", ".join(obj.states))
    if obj.text:
        facts.append(f"Text: {obj.text}")
    strings = tuple(s for s in (name, obj.description, obj.text) if s.strip())
    return ObjectFacts(", ".join(said) + ".", tuple(facts), strings, unlabeled)


def with_tree_text(screen: ScreenText | None, facts: ObjectFacts | None) -> ScreenText | None:
    """The OCR lines with the tree's strings first: both are text a description may quote."""
    if facts is None or not facts.strings:
        return screen
    tree = tuple(ScreenLine(s, TREE) for s in facts.strings)
    return ScreenText(tree + (screen.lines if screen is not None else ()))


def grounding_of(grounds: str | None, task: str, image) -> str | None:
    """How a description is grounded (Describer._grounds), with a small object's OCR moved beside the model."""
    if task == "object" and grounds == "prompt" and max(image.size) < SMALL_OBJECT:
        return "check"
    return grounds
