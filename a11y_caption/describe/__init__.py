"""From a picture to what is said: the describer (model, cache, conversation turns), grounding in
the text OCR found, the blank check, tags."""

from .describer import Describer

__all__ = ["Describer"]
