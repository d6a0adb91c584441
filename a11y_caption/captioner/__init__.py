"""Captioning backends behind one interface, and the factory that picks one for a checkpoint."""

from ._hf import pick_dtype
from .base import Captioner, Description, Generation, GenerationOptions, Request
from .factory import load_captioner

__all__ = ["Captioner", "Description", "Generation", "GenerationOptions", "Request", "load_captioner", "pick_dtype"]
