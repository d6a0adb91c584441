"""Describe a whole folder of images once, keep the text, and find pictures by what is in them.

- ``store``: the SQLite file (files, descriptions, full-text search) and its migrations.
- ``walk``: finding the image files under folders, and the run that describes each new one.
- ``analysers``: what describes an image, in this process or through the running agent.
- ``exporting``: the index as a CSV or JSON-lines file.
- ``progress``: what a run says of its progress, by ear and on a terminal, and when.
"""

from __future__ import annotations

from .analysers import BUSY_WAIT_S, AgentAnalyser, LocalAnalyser
from .exporting import csv_cell, export
from .progress import ProgressReport, duration_words, progress_voice, reporter
from .store import (MIGRATIONS, SCHEMA_VERSION, Analysis, IndexStore, default_db_path, first_sentence, fts_query,
                    fts_terms)
from .walk import IMAGE_SUFFIXES, Summary, file_hash, find_images, index_folders, why_not_indexed

__all__ = [
    "BUSY_WAIT_S", "IMAGE_SUFFIXES", "MIGRATIONS", "SCHEMA_VERSION", "AgentAnalyser", "Analysis", "IndexStore",
    "LocalAnalyser", "ProgressReport", "Summary", "csv_cell", "default_db_path", "duration_words", "export",
    "file_hash", "find_images", "first_sentence", "fts_query", "fts_terms", "index_folders", "progress_voice",
    "reporter", "why_not_indexed",
]
