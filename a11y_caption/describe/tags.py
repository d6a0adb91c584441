"""Tags: a short list of lowercase words for what is in an image, from a model's answer or a caption."""

from __future__ import annotations

import re

__all__ = ["MAX_TAGS", "tags_from"]

MAX_TAGS = 12

# Words a caption is made of that say nothing about what is in the picture.
_STOPWORDS = frozenset("""
a an the and or but nor of in on at to for from by with without into onto over under near next as is are was
were be been being it its this that these those there here some any one two three four five several many
much very image picture photo photograph shows showing shown tags tag""".split())


def tags_from(text: str) -> list[str]:
    """Lowercase words of ``text``, in order, each once: a chat model's comma-separated answer, or a
    caption split into words (BLIP). Stop words and single letters are left out; at most MAX_TAGS."""
    tags: list[str] = []
    for word in re.findall(r"[^\W\d_]+(?:[-'][^\W\d_]+)*", text.lower()):
        if len(word) > 1 and word not in _STOPWORDS and word not in tags:
            tags.append(word)
            if len(tags) == MAX_TAGS:
                break
    return tags
