"""Describe a whole folder of images once, keep the text, and find pictures by what is in them.

- ``store``: the SQLite file (files, descriptions, full-text search) and its migrations.
- ``walk``: finding the image files under folders, and the run that describes each new one.
- ``analysers``: what describes an image, in this process or through the running agent.
- ``exporting``: the index as a CSV or JSON-lines file.
"""

from __future__ import annotations

from .analysers import BUSY_WAIT_S, AgentAnalyser, LocalAnalyser
from .exporting import csv_cell, export
from .store import MIGRATIONS, SCHEMA_VERSION, Analysis, IndexStore, default_db_path, first_sentence, fts_query
from .walk import IMAGE_SUFFIXES, Summary, file_hash, find_images, index_folders

__all__ = [
    "BUSY_WAIT_S", "IMAGE_SUFFIXES", "MIGRATIONS", "SCHEMA_VERSION", "AgentAnalyser", "Analysis", "IndexStore",
    "LocalAnalyser", "Summary", "csv_cell", "default_db_path", "export", "file_hash", "find_images",
    "first_sentence", "fts_query", "index_folders",
]
