"""Where model weights come from: a local folder, or the Hugging Face cache filled by ``models pull``.

Describing never downloads: a missing model is a ModelNotFound naming the pull command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelLoadError, ModelNotFound

__all__ = ["KNOWN_MODELS", "WEIGHT_PATTERNS", "KnownModel", "canonical_id", "list_local", "pull", "resolve"]


@dataclass(frozen=True)
class KnownModel:
    alias: str
    repo_id: str
    download: str  # size of the files `models pull` fetches
    memory: str  # resident memory when loaded as the defaults load it
    note: str


KNOWN_MODELS = (
    KnownModel("qwen2-vl-2b", "Qwen/Qwen2-VL-2B-Instruct", "4.4 GB", "about 5 GB (bf16/fp32 mix), 3 GB int8",
               "default; describes screens and reads large text"),
    KnownModel("qwen2.5-vl-3b", "Qwen/Qwen2.5-VL-3B-Instruct", "7.5 GB", "about 8 GB", "better reading, slower"),
    KnownModel("smolvlm", "HuggingFaceTB/SmolVLM-256M-Instruct", "0.5 GB", "about 1 GB", "smallest chat model"),
    KnownModel("blip-base", "Salesforce/blip-image-captioning-base", "0.9 GB", "about 1 GB",
               "fast photo captions; cannot read text (OCR is added)"),
    KnownModel("blip-large", "Salesforce/blip-image-captioning-large", "1.8 GB", "about 2 GB",
               "better photo captions; cannot read text"),
)

# Only what from_pretrained needs: configs, tokenizer files, chat template and safetensors weights.
WEIGHT_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]


def canonical_id(ref: str) -> str:
    """A short alias such as ``blip-base`` -> its hub id; anything else unchanged."""
    for known in KNOWN_MODELS:
        if ref.lower() == known.alias:
            return known.repo_id
    return ref


def _looks_like_path(ref: str) -> bool:
    return ref.startswith((".", "/", "~", "\\")) or os.path.isabs(ref) or ref.count("/") > 1 or "\\" in ref


def resolve(ref: str) -> Path:
    """The local folder holding model ``ref`` (hub id, alias or folder). Never downloads.

    Raises:
        ModelNotFound: a hub id not in the cache, or a folder that does not exist.
    """
    ref = canonical_id(ref)
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if _looks_like_path(ref) or path.exists():
        raise ModelNotFound(ref, folder=True) if not path.exists() else ModelLoadError(f"{ref} is not a model folder.")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(ref, local_files_only=True, allow_patterns=WEIGHT_PATTERNS))
    except (LocalEntryNotFoundError, OSError, ValueError) as e:
        raise ModelNotFound(ref) from e
    if not (folder / "config.json").exists():
        raise ModelNotFound(ref)
    return folder


def pull(ref: str) -> Path:
    """Download model ``ref`` into the Hugging Face cache (progress bar on stderr); returns its folder."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(canonical_id(ref), allow_patterns=WEIGHT_PATTERNS))


def list_local() -> list[tuple[str, int, str]]:
    """(hub id, bytes on disk, folder) for every model in the Hugging Face cache."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir()
    except CacheNotFound:
        return []
    rows = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id.lower()):
        if repo.repo_type == "model":
            rows.append((repo.repo_id, repo.size_on_disk, str(repo.repo_path)))
    return rows

